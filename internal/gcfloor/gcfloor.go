// Package gcfloor keeps Go's collector from running while the heap is
// small.
//
// With the default GOGC=100 the collector runs each time the heap doubles.
// A chat node's live heap is small next to the garbage its traffic makes
// (a node with 4,000 sockets carrying 2,000 messages/s holds ≈ 22 MB live
// and allocates ≈ 50 MB/s), so it would collect twice a second, and every
// cycle takes a quarter of the CPU for tens of milliseconds: that is where
// the slowest one percent of messages wait. Floor lets the heap grow to a
// fixed size before collecting, as long as the live heap is small; once the
// live heap is more than half the floor, the collector paces as GOGC says.
// It does what a heap ballast used to do, by re-setting the GC percent
// after each cycle instead of allocating one; GOMEMLIMIT still applies.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds the GC percent Floor sets, so a nearly empty heap does
// not turn the collector off outright.
const maxPercent = 100_000

// Floor makes the collector's heap goal at least floor bytes, re-reading
// the live heap after every collection. base is the GC percent used once
// the live heap is large enough (what GOGC would be; 100 by default).
// floor 0 leaves the collector alone. The returned stop undoes Floor,
// restoring base; it is idempotent.
func Floor(floor uint64, base int) (stop func()) {
	if floor == 0 {
		return func() {}
	}
	f := &floorer{floor: floor, base: base, sample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"},
	}}
	f.adjust()
	f.arm()
	return f.stop
}

type floorer struct {
	floor  uint64
	base   int
	sample []metrics.Sample

	mu      sync.Mutex
	stopped bool
}

// sentinel is garbage as soon as it is made; its cleanup runs once the
// collector has finished the cycle that found it unreachable.
type sentinel struct{ _ [16]byte }

func (f *floorer) arm() {
	runtime.AddCleanup(new(sentinel), func(f *floorer) { f.cycle() }, f)
}

// cycle runs after each collection: it sets the percent for the next one
// and re-arms itself.
func (f *floorer) cycle() {
	if f.adjust() {
		f.arm()
	}
}

// adjust sets the GC percent from the live heap. It reports false once
// stopped.
func (f *floorer) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	metrics.Read(f.sample)
	live, roots := f.sample[0].Value.Uint64(), f.sample[1].Value.Uint64()+f.sample[2].Value.Uint64()
	debug.SetGCPercent(Percent(live, roots, f.floor, f.base))
	return true
}

func (f *floorer) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		f.stopped = true
		debug.SetGCPercent(f.base)
	}
}

// Percent is the GC percent that puts the next heap goal at floor or
// above, and never below base. The runtime's goal is live + (live + roots)
// × percent/100, roots being the goroutine stacks and globals it scans. A
// live heap of 0 means no collection has measured it yet: base.
func Percent(live, roots, floor uint64, base int) int {
	if live == 0 || live >= floor {
		return base
	}
	scanned := live + roots
	p := (floor - live) * 100 / scanned
	if (floor-live)*100%scanned != 0 {
		p++
	}
	switch {
	case p > maxPercent:
		return maxPercent
	case int(p) < base:
		return base
	}
	return int(p)
}
