package idletrim

import (
	"context"
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

var sink [][]byte

func TestRunTrimsWhenQuietAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	trims := make(chan time.Duration, 8)
	done := make(chan struct{})
	// Garbage for the trim to give back.
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	go func() {
		defer close(done)
		// Every period is quiet: one trim after the start, then none.
		Run(ctx, 10*time.Millisecond, 1<<30, func(_ uint64, took time.Duration) { trims <- took })
	}()
	select {
	case took := <-trims:
		if took <= 0 {
			t.Errorf("a trim took %v", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no trim within 10 s of quiet")
	}
	time.Sleep(50 * time.Millisecond) // five more quiet periods
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if n := len(trims); n != 0 {
		t.Errorf("%d more trims in one quiet spell, want none", n)
	}
}
