package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lifelinehq/lifeline/chat"
)

// metaOnly is a Store whose Meta answers data or err, whatever the key.
type metaOnly struct {
	chat.Store
	data []byte
	err  error
}

func (m metaOnly) Meta(context.Context, string) ([]byte, error) { return m.data, m.err }

// MetaJSON tells a missing key from a stored value and from a failure, so
// that callers can default the first and report the others.
func TestMetaJSON(t *testing.T) {
	ctx := context.Background()
	type doc struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	broken := errors.New("disk on fire")
	for _, tc := range []struct {
		name    string
		st      metaOnly
		found   bool
		want    doc
		wantErr func(error) bool
	}{
		{"missing", metaOnly{err: fmt.Errorf("meta k: %w", chat.ErrNotFound)}, false, doc{A: 7}, nil},
		{"stored", metaOnly{data: []byte(`{"a":1,"b":"x"}`)}, true, doc{A: 1, B: "x"}, nil},
		{"store failed", metaOnly{err: broken}, false, doc{A: 7}, func(err error) bool { return errors.Is(err, broken) }},
		{"undecodable", metaOnly{data: []byte(`{"a":`)}, false, doc{A: 7}, func(err error) bool {
			var se *json.SyntaxError
			return errors.As(err, &se) && strings.Contains(err.Error(), "settings/shop")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := doc{A: 7} // a caller's default stays unless a value decodes
			found, err := chat.MetaJSON(ctx, tc.st, "settings/shop", &got)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !tc.wantErr(err) {
				t.Fatalf("error %v", err)
			}
			if found != tc.found {
				t.Errorf("found = %v, want %v", found, tc.found)
			}
			if tc.wantErr == nil && got != tc.want {
				t.Errorf("value %+v, want %+v", got, tc.want)
			}
		})
	}
}
