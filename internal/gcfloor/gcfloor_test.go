package gcfloor

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, roots, floor uint64
		base, want         int
	}{
		{live: 22 * mib, floor: 128 * mib, base: 100, want: 482}, // 22 × 5.82 ≥ 128
		{live: 22 * mib, roots: 31 * mib, floor: 128 * mib, base: 100, want: 200},
		{live: 64 * mib, floor: 128 * mib, base: 100, want: 100},
		{live: 100 * mib, floor: 128 * mib, base: 100, want: 100}, // base is the least
		{live: 200 * mib, floor: 128 * mib, base: 100, want: 100},
		{live: 200 * mib, floor: 128 * mib, base: 50, want: 50},
		{live: 100 * mib, floor: 128 * mib, base: 20, want: 28},
		{live: 0, floor: 128 * mib, base: 100, want: 100}, // not measured yet
		{live: 1000, floor: 128 * mib, base: 100, want: maxPercent},
	} {
		got := Percent(c.live, c.roots, c.floor, c.base)
		if got != c.want {
			t.Errorf("Percent(%d, %d, %d, %d) = %d, want %d", c.live, c.roots, c.floor, c.base, got, c.want)
		}
		if goal := c.live + (c.live+c.roots)*uint64(got)/100; c.live > 0 && got < maxPercent && goal < c.floor {
			t.Errorf("Percent(%d, %d, %d, %d) = %d puts the goal at %d, below the floor", c.live, c.roots, c.floor, c.base, got, goal)
		}
	}
}

// readGC returns the collector's percent and heap goal.
func readGC() (percent, goal uint64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// collectUntil runs collections, giving the cleanup goroutine time after
// each, until ok holds; at most 50 rounds.
func collectUntil(t *testing.T, what string, ok func(percent, goal uint64) bool) {
	t.Helper()
	for range 50 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		if ok(readGC()) {
			return
		}
	}
	p, g := readGC()
	t.Fatalf("after 50 collections: GC percent %d, heap goal %d; want %s", p, g, what)
}

func TestFloorFollowsTheLiveHeapAndStopRestoresBase(t *testing.T) {
	const floor = 64 << 20 // far above this test's live heap
	stop := Floor(floor, 100)
	collectUntil(t, "goal ≥ 64 MiB", func(p, goal uint64) bool { return p > 100 && goal >= floor })

	// A live heap above the floor: the cleanup, re-armed after every cycle,
	// sees it and hands pacing back to base. (The pages are never touched,
	// so this costs no memory.)
	func() {
		big := make([]byte, 2*floor)
		collectUntil(t, "percent back to 100 with 128 MiB live", func(p, _ uint64) bool { return p == 100 })
		runtime.KeepAlive(big)
	}()
	collectUntil(t, "the floor again once the big slice is garbage", func(p, goal uint64) bool { return p > 100 && goal >= floor })

	stop()
	stop() // idempotent
	collectUntil(t, "percent 100 after stop", func(p, _ uint64) bool { return p == 100 })
	// A cleanup armed before stop must not raise it again.
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p, _ := readGC(); p != 100 {
		t.Fatalf("GC percent %d after stop and more collections, want 100", p)
	}
}

func TestZeroFloorLeavesTheCollectorAlone(t *testing.T) {
	before, _ := readGC()
	Floor(0, 100)()
	runtime.GC()
	if p, _ := readGC(); p != before {
		t.Fatalf("GC percent %d, want %d untouched", p, before)
	}
}
