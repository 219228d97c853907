package chat

import (
	"encoding/json"
	"testing"
	"time"
)

// The hand-made appenders give exactly the bytes of encoding/json.
func TestAppendersMatchEncodingJSON(t *testing.T) {
	t.Parallel()
	texts := []string{
		"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\r\x00\x01\x1f\x7f",
		"bad utf8 \xff\xfe end", "line sep \u2028 para \u2029", "emoji 🙂 and ünïcödé", "\xed\xa0\x80 surrogate half",
	}
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -7*3600)}
	for i, text := range texts {
		for j, loc := range zones {
			m := &Message{
				ConversationID: "conv-" + text, Seq: int64(i*1000 + j), ClientID: text,
				Author: Author{Kind: AuthorVisitor, ID: text, Name: text},
				Text:   text, At: time.Date(2026, 11, 29, 18, 0, i, j*123456789, loc),
			}
			if i%2 == 1 {
				m.Author = Author{Kind: AuthorAgent}
			}
			for _, v := range []any{
				messageFrame{Type: TypeMessage, Message: m},
				&event{Kind: evMessage, Message: m},
				ackFrame{Type: TypeAck, ClientID: text, ConversationID: m.ConversationID, Seq: m.Seq, Ref: text},
				ackFrame{Type: TypeAck, ID: "id-" + text, ClientID: text, ConversationID: m.ConversationID},
			} {
				want, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if got := encode(v); string(got) != string(want) {
					t.Errorf("encode(%#v) =\n%s\nwant\n%s", v, got, want)
				}
			}
		}
	}
	// Events other than a bare message go through encoding/json.
	ev := &event{Kind: evMessage, Message: &Message{Text: "x"}, AgentName: "Ann"}
	if want, _ := json.Marshal(ev); string(encode(ev)) != string(want) {
		t.Errorf("encode(event with agent name) = %s, want %s", encode(ev), want)
	}
}
