package chat

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWorkersRunEachJobOnceAndKeepABoundedFew(t *testing.T) {
	var p workers
	defer p.stop()
	var ran atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	const burst = maxIdleWorkers + 50
	var started sync.WaitGroup
	started.Add(burst)
	for range burst { // all at once: every job needs a worker of its own
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(func() {
				started.Done()
				<-release
				ran.Add(1)
			})
		}()
	}
	started.Wait()
	if n := p.idleCount(); n != 0 {
		t.Fatalf("%d idle workers while all are busy", n)
	}
	close(release)
	wg.Wait()
	if n := ran.Load(); n != burst {
		t.Fatalf("%d jobs ran, want %d", n, burst)
	}
	if n := p.idleCount(); n != maxIdleWorkers {
		t.Fatalf("%d idle workers kept after the burst, want %d", n, maxIdleWorkers)
	}
	// run returns only once its job is done, and reuses a kept worker.
	x := 0
	p.run(func() { x = 42 })
	if x != 42 {
		t.Fatal("run returned before its job ran")
	}
	if n := p.idleCount(); n != maxIdleWorkers {
		t.Fatalf("%d idle workers after one more job, want %d", n, maxIdleWorkers)
	}
	p.stop()
	p.run(func() { x = 7 })
	if x != 7 || p.idleCount() != 0 {
		t.Fatalf("after stop: job ran %v, %d idle workers", x == 7, p.idleCount())
	}
}

func TestWorkersStartReturnsAtOnceAndHandsTheWorkerBack(t *testing.T) {
	var p workers
	defer p.stop()
	p.run(func() {}) // leaves one idle worker
	release, ran := make(chan struct{}), make(chan struct{})
	p.start(func() { <-release; close(ran) }) // would deadlock if start waited
	if n := p.idleCount(); n != 0 {
		t.Fatalf("%d idle workers while the only one runs a started job", n)
	}
	close(release)
	<-ran
	for i := 0; p.idleCount() != 1 && i < 5000; i++ {
		time.Sleep(time.Millisecond)
	}
	if n := p.idleCount(); n != 1 {
		t.Fatalf("%d idle workers after the started job ended, want the one back", n)
	}
	x := 0
	p.run(func() { x = 1 })
	if x != 1 || p.idleCount() != 1 {
		t.Fatalf("run after start: ran %v, %d idle workers, want 1", x == 1, p.idleCount())
	}
}

// inParallel calls fn once for every item, however many there are, and
// reports a failure of any call.
func TestInParallel(t *testing.T) {
	for _, n := range []int{0, 1, resyncWidth - 1, resyncWidth, 1000} {
		items := make([]int, n)
		for i := range items {
			items[i] = i
		}
		var mu sync.Mutex
		seen := make(map[int]int, n)
		ok := inParallel(items, func(i int) bool {
			mu.Lock()
			defer mu.Unlock()
			seen[i]++
			return i != 7
		})
		if len(seen) != n {
			t.Errorf("%d items: %d called", n, len(seen))
		}
		for i, k := range seen {
			if k != 1 {
				t.Errorf("%d items: item %d called %d times", n, i, k)
			}
		}
		if want := n <= 7; ok != want {
			t.Errorf("%d items (item 7 fails): ok = %v, want %v", n, ok, want)
		}
	}
}
