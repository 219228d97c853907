package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// TestVisitorEraseRecordDirFromEnv erases a visitor with LIFELINE_RECORD_DIR
// set and no --record-dir: the recordings there lose the visitor's
// session, as they would under serve with the same environment.
func TestVisitorEraseRecordDirFromEnv(t *testing.T) {
	ctx := testCtx(t)
	data, rec := t.TempDir(), t.TempDir()
	st, err := bolt.Open(filepath.Join(data, "lifeline.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutVisitor(ctx, chat.Visitor{ID: "v-rec", SiteKey: "demo"}); err != nil {
		t.Fatal(err)
	}
	// A conversation with assist's record of a suggestion used: the
	// command erases both, as the node would.
	if err := st.CreateConversation(ctx, chat.Conversation{ID: "c-rec", Ref: "LF-CREC", SiteKey: "demo", VisitorID: "v-rec", Status: chat.StatusResolved}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutMeta(ctx, "assist/conv/c-rec", []byte(`{"used":{"refund-policy":""}}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(rec, "demo-2025-01-01.jsonl")
	const other = `{"visit":"demo/v-other"}` + "\n"
	if err := os.WriteFile(file, []byte(`{"visit":"demo/v-rec"}`+"\n"+other), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LIFELINE_DATA": data, "LIFELINE_RECORD_DIR": rec, "LIFELINE_LOG_LEVEL": "warn"}
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"visitor", "erase", "v-rec"}, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("visitor erase: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "1 recorded sessions") {
		t.Errorf("visitor erase said %q, want 1 recorded session", stdout.String())
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != other {
		t.Errorf("recording file = %q, %v; want only the other visitor's line", b, err)
	}
	st, err = bolt.Open(filepath.Join(data, "lifeline.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Conversation(ctx, "c-rec"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("conversation after visitor erase: %v, want ErrNotFound", err)
	}
	if raw, err := st.Meta(ctx, "assist/conv/c-rec"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("assist record after visitor erase = %q, %v; want ErrNotFound", raw, err)
	}
}
