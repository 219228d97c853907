// Package idletrim gives a quiet process's free heap back to the
// operating system.
//
// Go's collector frees garbage for the heap to reuse, and its scavenger
// returns to the operating system only what lies beyond the next heap
// goal, about twice the live heap. A chat node spends much of its life
// holding idle sockets: after the traffic that connected them it would
// keep as much memory again as free heap, unused until traffic returns.
// Run notices the quiet and hands that memory back, with
// debug.FreeOSMemory: a collection, then every free page released.
package idletrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// minGap spaces trims: a load that comes and goes every few seconds
// would otherwise pay for a full collection each time it paused, and
// fault the released pages back in when it resumed.
const minGap = time.Minute

// Run checks every period how many bytes the process allocated since the
// last check. After a period with less than quiet bytes that follows one
// with more (or the start), it collects and releases the free heap and
// calls trimmed with the bytes released and the time it took; then it
// waits for the next busy period before doing so again, and for at least
// minGap. It returns when ctx is done.
func Run(ctx context.Context, period time.Duration, quiet uint64, trimmed func(released uint64, took time.Duration)) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	read := func() (allocs, released uint64) {
		metrics.Read(sample)
		return sample[0].Value.Uint64(), sample[1].Value.Uint64()
	}
	allocs, _ := read()
	w := watch{quiet: quiet, last: allocs, busy: true}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		allocs, before := read()
		if !w.quietNow(allocs, time.Now()) {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		took := time.Since(start)
		_, after := read()
		// The rest of the process may take released pages back meanwhile.
		trimmed(max(after, before)-before, took)
		allocs, _ = read() // the trim's own allocations are not traffic
		w.last = allocs
	}
}

// watch tells the first quiet period after a busy one.
type watch struct {
	quiet   uint64    // fewer bytes allocated in a period than this is quiet
	last    uint64    // the cumulative allocation count at the last check
	busy    bool      // a period since the last trim was not quiet
	trimmed time.Time // when quietNow last said to trim
}

// quietNow takes the cumulative bytes allocated so far and the time, and
// reports whether to trim now: this period is quiet, one since the last
// trim was not, and the last trim is minGap ago.
func (w *watch) quietNow(allocs uint64, now time.Time) bool {
	n := allocs - w.last
	w.last = allocs
	if n >= w.quiet {
		w.busy = true
		return false
	}
	if !w.busy || !w.trimmed.IsZero() && now.Sub(w.trimmed) < minGap {
		return false
	}
	w.busy, w.trimmed = false, now
	return true
}
