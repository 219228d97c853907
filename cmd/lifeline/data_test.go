package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// TestEraseVisitorEverywhere erases a visitor who has a conversation (with
// assist's record of a suggestion used) and an open socket: the socket is
// closed, the export is gone, the old token no longer connects, and no key
// or value in the store holds the visitor's ID, the conversation's ID or
// message text.
func TestEraseVisitorEverywhere(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil)
	ctx := testCtx(t)
	_, ag := agentConn(t, ctx, n.URL, adminEmail, testPassword)
	v, w := visitor(t, ctx, n.URL, "", 0)
	const secret = "my-card-4242-was-declined"
	if err := v.Send(ctx, map[string]any{"type": "message", "client_id": "v-1", "text": secret}); err != nil {
		t.Fatal(err)
	}
	ack, err := v.Until(ctx, "ack", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ag.Until(ctx, "message", nil); err != nil {
		t.Fatal(err)
	}
	if err := ag.Send(ctx, map[string]any{"type": "message", "conversation_id": ack.ConversationID, "client_id": "a-1", "text": "agent-reply-xyz"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ag.Until(ctx, "ack", nil); err != nil {
		t.Fatal(err)
	}

	s, err := client.Login(ctx, n.URL, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	var exp struct {
		Version       int
		Visitor       struct{ ID string }
		Conversations []struct {
			ID       string
			Messages []struct{ Text string }
		}
	}
	if err := s.Do(ctx, "GET", "/api/v1/visitors/"+w.VisitorID+"/export", nil, &exp); err != nil {
		t.Fatal(err)
	}
	if exp.Version != 1 || exp.Visitor.ID != w.VisitorID || len(exp.Conversations) != 1 || len(exp.Conversations[0].Messages) != 2 ||
		exp.Conversations[0].Messages[0].Text != secret {
		t.Fatalf("export = %+v, want the visitor with one conversation of two messages", exp)
	}

	// The agent used a suggestion: assist keeps a record under the
	// conversation's ID, which the erasure must remove too.
	if err := s.Do(ctx, "POST", "/api/v1/conversations/"+ack.ConversationID+"/suggestions/refund-policy/used", nil, nil); err != nil {
		t.Fatal(err)
	}

	var erased struct {
		Erased struct{ Conversations, Messages int }
	}
	if err := s.Do(ctx, "DELETE", "/api/v1/visitors/"+w.VisitorID, nil, &erased); err != nil {
		t.Fatal(err)
	}
	if erased.Erased.Conversations != 1 || erased.Erased.Messages != 2 {
		t.Errorf("erase = %+v, want 1 conversation and 2 messages", erased)
	}
	// The open socket is closed.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	for err == nil {
		_, err = v.Next(rctx)
	}
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the erased visitor's socket stayed open")
	}
	err = s.Do(ctx, "GET", "/api/v1/visitors/"+w.VisitorID+"/export", nil, &exp)
	if se, ok := errors.AsType[*client.StatusError](err); !ok || se.Status != http.StatusNotFound {
		t.Errorf("export after erase: err = %v, want 404", err)
	}
	if err := s.Do(ctx, "DELETE", "/api/v1/visitors/"+w.VisitorID, nil, nil); err == nil {
		t.Errorf("second erase succeeded, want 404")
	}
	// The old token no longer connects.
	c, err := client.DialVisitor(ctx, n.URL, "demo", client.Options{Origin: n.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Send(ctx, map[string]any{"type": "hello", "token": w.Token}); err != nil {
		t.Fatal(err)
	}
	f, err := c.Until(ctx, "error", nil)
	if err != nil || !strings.Contains(string(f.Raw), "bad_token") {
		t.Errorf("hello with the erased visitor's token = %s, %v; want a bad_token error", f.Raw, err)
	}
	c.CloseNow()
	ag.CloseNow()
	n.stop()

	// Scan every key and value of the store.
	db, err := bbolt.Open(filepath.Join(dir, "lifeline.db"), 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	needles := [][]byte{[]byte(w.VisitorID), []byte(secret), []byte("agent-reply-xyz"), []byte(ack.ConversationID), []byte(ack.Ref)}
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(k, val []byte) error {
				for _, nd := range needles {
					if bytes.Contains(k, nd) || bytes.Contains(val, nd) {
						t.Errorf("bucket %s key %q still holds %q", name, k, nd)
					}
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBackupRestoreUnderTraffic takes a backup through the running node
// while messages are being sent, restores it into a new directory and
// checks that every message acknowledged before the backup began is there.
func TestBackupRestoreUnderTraffic(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	v, _ := visitor(t, ctx, n.URL, "", 0)
	send := func(i int) (string, int64) {
		if err := v.Send(ctx, map[string]any{"type": "message", "client_id": fmt.Sprint("m", i), "text": fmt.Sprint("message ", i)}); err != nil {
			t.Fatal(err)
		}
		ack, err := v.Until(ctx, "ack", nil)
		if err != nil {
			t.Fatal(err)
		}
		return ack.ConversationID, ack.Seq
	}
	conv, _ := send(0)
	for i := 1; i < 20; i++ {
		send(i)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // traffic during the backup, under the frame rate limit
		for i := 20; i < 60; i++ {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
			if err := v.Send(ctx, map[string]any{"type": "message", "client_id": fmt.Sprint("m", i), "text": fmt.Sprint("message ", i)}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	time.Sleep(200 * time.Millisecond) // let the traffic start
	out := filepath.Join(t.TempDir(), "backup.db")
	var stdout, stderr bytes.Buffer
	env := map[string]string{"LIFELINE_ADMIN_PASSWORD": testPassword}
	err := run(ctx, []string{"backup", "--url", n.URL, "--out", out}, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr.String())
	}

	restored := t.TempDir()
	if err := run(ctx, []string{"restore", "--in", out, "--data", restored}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr.String())
	}
	err = run(ctx, []string{"restore", "--in", out, "--data", restored}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	if err == nil {
		t.Errorf("restore over an existing store without --force succeeded")
	}
	st, err := bolt.Open(filepath.Join(restored, "lifeline.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	msgs, err := st.Messages(ctx, conv, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 20 {
		t.Fatalf("restored conversation has %d messages, want at least the 20 acknowledged before the backup", len(msgs))
	}
	for i, m := range msgs {
		if m.Seq != int64(i+1) || m.Text != fmt.Sprint("message ", i) {
			t.Fatalf("restored message %d = seq %d %q, want seq %d %q", i, m.Seq, m.Text, i+1, fmt.Sprint("message ", i))
		}
	}
	if _, err := st.Site(ctx, "demo"); err != nil {
		t.Errorf("restored store lacks the demo site: %v", err)
	}
	// Restoring over it moves its message log aside with the file.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"restore", "--in", out, "--data", restored, "--force"}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("restore --force: %v\n%s", err, stderr.String())
	}
	for _, name := range bolt.WALFiles(filepath.Join(restored, "lifeline.db")) {
		if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after restore --force, stat %s = %v; want it moved aside", name, err)
		}
		if _, err := os.Stat(name + ".before-restore"); err != nil {
			t.Errorf("after restore --force: %v", err)
		}
	}
}
