package bolt

import (
	"context"
	"fmt"
	"hash/maphash"
	"path/filepath"
	"testing"

	"github.com/lifelinehq/lifeline/chat"
	bbolt "go.etcd.io/bbolt"
)

// retried sends message i of conv (appendN's client ID) again with other
// text, and wants the message stored the first time back.
func retried(t *testing.T, s *Store, conv string, i int) {
	t.Helper()
	m, created, err := s.AppendMessage(context.Background(), chat.Message{
		ConversationID: conv, ClientID: fmt.Sprint("m", i), Text: "retry",
		Author: chat.Author{Kind: chat.AuthorVisitor, ID: "v"},
	})
	if err != nil || created || m.Seq != int64(i) || m.Text != fmt.Sprint("text ", i) {
		t.Fatalf("retry of message %d of %s = seq %d %q, created %v, %v; want the stored one",
			i, conv, m.Seq, m.Text, created, err)
	}
}

func flushT(t *testing.T, s *Store) {
	t.Helper()
	if err := s.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Retries are found by the client ID's hash once a conversation's IDs are
// known, however the first copy got where it is: appended since, pending
// in the log when the IDs were read, or in the B+tree then.
func TestRetryFoundThroughClientIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openT(t, path, Options{CheckpointInterval: never})
	createConv(t, s, "c")

	// Appended after the IDs were read (the first append read them),
	// then checkpointed: only the set says a lookup is needed.
	appendN(t, s, "c", 1, 1)
	flushT(t, s)
	retried(t, s, "c", 1)

	// Pending when the IDs were read, checkpointed after.
	appendN(t, s, "c", 2, 2)
	s.clients = newClientIDs() // as after too many conversations
	appendN(t, s, "c", 3, 3)   // reads the IDs: 1 in the B+tree, 2 pending
	if set, ok := s.clients.known("c"); !ok || len(set) != 3 {
		t.Fatalf("conversation c's set holds %d IDs (known %v), want 3", len(set), ok)
	}
	flushT(t, s)
	for i := 1; i <= 3; i++ {
		retried(t, s, "c", i)
	}
	appendN(t, s, "c", 4, 4)

	// In the B+tree when read, by a store opened on the file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := openT(t, path, Options{CheckpointInterval: never})
	for i := 1; i <= 4; i++ {
		retried(t, r, "c", i)
	}
	appendN(t, r, "c", 5, 6)
	wantMessages(t, r, "c", 6)
}

// A conversation with more client IDs than a set keeps, and a store
// holding more than it keeps in all, still find every retry.
func TestClientIDsBounds(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never})
	s.clients.perConv, s.clients.total = 3, 20
	createConv(t, s, "long")
	appendN(t, s, "long", 1, 4)
	if set, ok := s.clients.known("long"); !ok || set != nil {
		t.Fatalf("a conversation of 4 messages kept a set of %d (known %v), want none", len(set), ok)
	}
	flushT(t, s)
	for i := 1; i <= 4; i++ {
		retried(t, s, "long", i)
	}

	createConv(t, s, "a")
	createConv(t, s, "b")
	appendN(t, s, "a", 1, 3) // two entries (long's, a's: 8 each) and 3 IDs: 19 of 20
	if set, ok := s.clients.known("a"); !ok || len(set) != 3 {
		t.Fatalf("conversation a's set holds %d IDs (known %v), want 3", len(set), ok)
	}
	appendN(t, s, "b", 1, 1) // b's entry and ID take them to 28: dropped after the group
	if _, ok := s.clients.known("a"); ok || s.clients.n != 0 {
		t.Fatalf("sets outlived their bound: a known %v, %d IDs in all", ok, s.clients.n)
	}
	appendN(t, s, "b", 2, 3)
	flushT(t, s)
	for i := 1; i <= 3; i++ {
		retried(t, s, "a", i)
		retried(t, s, "b", i)
	}
	wantMessages(t, s, "a", 3)
	wantMessages(t, s, "b", 3)
}

// Sets read from a view that did not hold (a checkpoint moved messages
// during the read) are forgotten; those of earlier groups stay.
func TestClientIDsForget(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never})
	createConv(t, s, "kept")
	createConv(t, s, "read")
	appendN(t, s, "kept", 1, 2)
	err := s.view(func(tx *bbolt.Tx) error {
		c := &s.clients
		c.read("read", tx.Bucket(bMessages).Cursor(), nil, nil)
		c.forget()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.clients.known("read"); ok {
		t.Error("a forgotten set is still known")
	}
	if set, ok := s.clients.known("kept"); !ok || len(set) != 2 || s.clients.n != 2 {
		t.Errorf("kept set: %d IDs (known %v), %d in all; want 2, 2", len(set), ok, s.clients.n)
	}
}

// The IDs read from the B+tree hash as the writer hashes a message's.
func TestClientHashOfStoredKey(t *testing.T) {
	if maphash.Bytes(clientSeed, []byte("m-1")) != clientHash("m-1") {
		t.Fatal("maphash.Bytes and maphash.String disagree")
	}
}
