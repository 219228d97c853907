package idletrim

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWatchTrimsOnceAfterEachBusySpell(t *testing.T) {
	w := watch{quiet: 100, busy: true}
	start := time.Unix(1_000_000, 0)
	for i, c := range []struct {
		allocs uint64
		at     time.Duration
		trim   bool
	}{
		{10, 0, true},                 // quiet after the start
		{20, time.Second, false},      // still quiet: already trimmed
		{500, 2 * time.Second, false}, // busy
		{510, 3 * time.Second, false}, // quiet, but a trim only seconds ago
		{520, minGap, true},           // quiet, busy since the last trim, minGap after it
		{530, 2 * minGap, false},      // quiet since
		{630, 3 * minGap, false},      // exactly quiet bytes: busy
		{631, 3*minGap + time.Second, true},
	} {
		if got := w.quietNow(c.allocs, start.Add(c.at)); got != c.trim {
			t.Fatalf("check %d (allocs %d at %v): trim %v, want %v", i, c.allocs, c.at, got, c.trim)
		}
	}
}

// syncBuffer is a log destination safe for Run's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var sink [][]byte

func TestRunTrimsWhenQuietAndStops(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// Garbage for the trim to give back.
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	go func() {
		defer close(done)
		Run(ctx, 10*time.Millisecond, 1<<30, log) // every period is quiet
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "returned the free heap") {
		if time.Now().After(deadline) {
			t.Fatalf("no trim logged within 10 s; log: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "released_mib=") {
		t.Errorf("the trim's log line says nothing of what it released: %q", out.String())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if n := strings.Count(out.String(), "returned the free heap"); n != 1 {
		t.Errorf("%d trims in a quiet spell, want 1: %q", n, out.String())
	}
}
