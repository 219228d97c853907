package chat

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// assignStore is the truth about assignments that a route round's plan
// may have gone stale on: which conversations another node took, and how
// many conversations each agent already holds. Its first Assign waits for
// a second one to arrive.
type assignStore struct {
	Store
	t *testing.T

	mu       sync.Mutex
	taken    map[string]bool // conversation → assigned by another node
	load     map[string]int  // agent → conversations held
	assigned map[string]string
	calls    int
	overlap  chan struct{} // closed by the second Assign call
}

func (s *assignStore) Assign(_ context.Context, id, agentID string, capacity int, now time.Time) (Conversation, error) {
	s.mu.Lock()
	s.calls++
	first := s.calls == 1
	if s.calls == 2 {
		close(s.overlap)
	}
	s.mu.Unlock()
	if first {
		select {
		case <-s.overlap:
		case <-time.After(10 * time.Second):
			s.t.Error("the first Assign call was still alone after 10 s: a route round stores its assignments one after another")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.taken[id]:
		return Conversation{}, fmt.Errorf("assign %s: %w", id, ErrConflict)
	case s.load[agentID] >= capacity:
		return Conversation{}, fmt.Errorf("assign %s to %s: %w", id, agentID, ErrCapacity)
	}
	s.load[agentID]++
	s.assigned[id] = agentID
	return Conversation{ID: id, AgentID: agentID, Status: StatusActive, AssignedAt: now}, nil
}

func (s *assignStore) Agent(_ context.Context, id string) (Agent, error) {
	return Agent{}, fmt.Errorf("agent %s: %w", id, ErrNotFound)
}

// A route round plans every assignment, least busy first, and stores them
// at once. A conversation another node took counts as settled; one
// refused because its agent filled up meanwhile goes to an agent with room.
func TestAssignAll(t *testing.T) {
	st := &assignStore{t: t, overlap: make(chan struct{}),
		taken:    map[string]bool{"q4": true},
		load:     map[string]int{"b": 2}, // another node filled b
		assigned: map[string]string{}}
	h, err := NewHub(Config{Store: st, Secret: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	// The plan, from the loads this node knows (least busy first, ties to
	// the lower ID): q1 a, q2 b, q3 a, q4 a, q5 b, q6 a. Another node took
	// q4 and filled b, so q2 moves to a and q5 finds no room.
	agents := []*onlineAgent{{id: "a", capacity: 4}, {id: "b", capacity: 2}}
	var queue []Conversation
	for i := range 6 {
		queue = append(queue, Conversation{ID: fmt.Sprint("q", i+1), Status: StatusWaiting})
	}
	done := h.assignAll(context.Background(), queue, agents)

	if want := []bool{true, true, true, true, false, true}; !slices.Equal(done, want) {
		t.Errorf("settled = %v, want %v", done, want)
	}
	want := map[string]string{"q1": "a", "q2": "a", "q3": "a", "q6": "a"}
	if !maps.Equal(st.assigned, want) {
		t.Errorf("assigned = %v, want %v", st.assigned, want)
	}
	if a, b := agents[0], agents[1]; a.load != 4 || b.load != b.capacity {
		t.Errorf("loads after the round: a %d, b %d; want 4 and 2", a.load, b.load)
	}
}
