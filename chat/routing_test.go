package chat

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
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

// discardTransport takes every frame at once and keeps none.
type discardTransport struct{}

func (discardTransport) tryWrite([][]byte) (ok, owed bool)   { return true, false }
func (discardTransport) write([][]byte, time.Duration) error { return nil }
func (discardTransport) close(StatusCode, string)            {}

// addVisitorSocket puts a socket of visitor v, waiting in conversation
// conv, on h as a hello would.
func addVisitorSocket(tb testing.TB, h *Hub, t transport, v, conv string) {
	tb.Helper()
	c := newClient(h, t, kindVisitor, "127.0.0.1")
	c.visitor, c.conv = v, conv
	if err := h.joinVisitorGroup(context.Background(), c); err != nil {
		tb.Fatal(err)
	}
}

// Each queued conversation's visitor, on every tab, hears its place and
// wait; other visitors hear nothing; an unchanged place is not sent again.
func TestQueuePositionsReachQueuedVisitors(t *testing.T) {
	h, err := NewHub(Config{Store: fanoutStore{}, Secret: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	socks := map[string]*recordingTransport{}
	for _, s := range []string{"v0", "v1", "v2", "v3", "v4", "v4-tab"} {
		tr := &recordingTransport{wrote: make(chan struct{}, 10)}
		socks[s] = tr
		v := strings.TrimSuffix(s, "-tab")
		addVisitorSocket(t, h, tr, v, "c"+strings.TrimPrefix(v, "v"))
	}
	queue := []Conversation{{ID: "c3", VisitorID: "v3"}, {ID: "c1", VisitorID: "v1"}, {ID: "c4", VisitorID: "v4"}}
	h.pushQueuePositions(queue, []*onlineAgent{{id: "a", capacity: 2}})
	h.pushQueuePositions(queue, []*onlineAgent{{id: "a", capacity: 2}})

	want := map[string]int{"v3": 1, "v1": 2, "v4": 3, "v4-tab": 3}
	for s, tr := range socks {
		tr.mu.Lock()
		got := tr.tried
		tr.mu.Unlock()
		p, queued := want[s]
		if !queued {
			if len(got) != 0 {
				t.Errorf("%s, not queued, was sent %q", s, got)
			}
			continue
		}
		if len(got) != 1 || !strings.Contains(got[0], `"type":"queue"`) || !strings.Contains(got[0], fmt.Sprintf(`"position":%d,`, p)) {
			t.Errorf("%s was sent %q, want one queue frame at position %d", s, got, p)
		}
	}
}

// BenchmarkQueuePositions is one pass of queue positions on a node
// holding 19,000 visitors, 10 of them waiting, none of whose places
// changed: the pass the router makes every RouteInterval while anyone
// waits.
func BenchmarkQueuePositions(b *testing.B) {
	h, err := NewHub(Config{Store: fanoutStore{}, Secret: []byte("0123456789abcdef")})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	var queue []Conversation
	for i := range 19000 {
		v, conv := fmt.Sprint("v", i), fmt.Sprint("c", i)
		addVisitorSocket(b, h, discardTransport{}, v, conv)
		if i%1900 == 0 {
			queue = append(queue, Conversation{ID: conv, VisitorID: v})
		}
	}
	online := []*onlineAgent{{id: "a", capacity: 2}}
	h.pushQueuePositions(queue, online)
	b.ReportAllocs()
	for b.Loop() {
		h.pushQueuePositions(queue, online)
	}
}
