package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// markStore keeps conversations in a map; only UpdateConversation is
// called by storeMarks (the embedded nil Store panics on anything else).
type markStore struct {
	Store
	mu      sync.Mutex // storeMarks updates conversations at once
	convs   map[string]Conversation
	fail    error
	updates int
}

func (s *markStore) UpdateConversation(_ context.Context, id string, fn func(*Conversation) error) (Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return Conversation{}, s.fail
	}
	if strings.ContainsRune(id, 0) {
		return Conversation{}, fmt.Errorf("update %q: %w", id, ErrInvalid)
	}
	c, ok := s.convs[id]
	if !ok {
		return Conversation{}, fmt.Errorf("update %s: %w", id, ErrNotFound)
	}
	if err := fn(&c); err != nil {
		return Conversation{}, err
	}
	s.updates++
	s.convs[id] = c
	return c, nil
}

// Marks are written once per conversation per round, at their furthest,
// never past the last message and never back; a failed write is kept for
// the next round and a conversation that is gone drops its mark.
func TestStoreMarks(t *testing.T) {
	st := &markStore{convs: map[string]Conversation{
		"a": {ID: "a", LastSeq: 10},
		"b": {ID: "b", LastSeq: 4},
	}}
	h := &Hub{store: st, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()
	read := func(id string) int64 { return st.convs[id].VisitorRead }

	for _, seq := range []int64{3, 5, 4, 0, -1} {
		h.marks.note("a", false, seq)
	}
	h.marks.note("a", true, 8)     // the agents' mark, apart
	h.marks.note("b", false, 9)    // past b's last message
	h.marks.note("gone", false, 2) // erased meanwhile
	h.marks.note("x\x00", true, 3) // an ID no store can hold
	if got := h.marks.get("a", false); got != 5 {
		t.Fatalf("pending mark of a is %d, want 5", got)
	}
	h.storeMarks(ctx)
	if read("a") != 5 || st.convs["a"].AgentRead != 8 || read("b") != 4 || st.updates != 3 {
		t.Fatalf("after a round: a=%d (agents %d) b=%d with %d updates, want 5 (8), 4 and 3", read("a"), st.convs["a"].AgentRead, read("b"), st.updates)
	}
	if h.marks.get("gone", false) != 0 || h.marks.get("x\x00", true) != 0 {
		t.Fatal("the mark of a conversation that is gone, or of a bad ID, was kept")
	}

	h.marks.note("a", false, 2)
	h.storeMarks(ctx)
	if read("a") != 5 || st.updates != 3 {
		t.Fatalf("an older mark: a=%d with %d updates, want 5 and still 3", read("a"), st.updates)
	}

	st.fail = errors.New("store down")
	h.marks.note("a", false, 7)
	h.storeMarks(ctx)
	if read("a") != 5 || h.marks.get("a", false) != 7 {
		t.Fatalf("a failed write: stored %d, pending %d, want 5 and 7", read("a"), h.marks.get("a", false))
	}
	st.fail = nil
	h.storeMarks(ctx)
	if read("a") != 7 || h.marks.get("a", false) != 0 {
		t.Fatalf("the retry: stored %d, pending %d, want 7 and 0", read("a"), h.marks.get("a", false))
	}
}
