package chat

import "sync"

// maxIdleWorkers bounds the goroutines a workers keeps waiting for work.
// Each holds a stack grown by the frames it handled (8–16 KiB), so the
// bound costs a few MiB however many sockets there are; bursts beyond it
// start goroutines that end once their work is done.
const maxIdleWorkers = 256

// workers runs jobs on reused goroutines. A socket's own goroutine spends
// nearly all its life waiting for a frame, and stays on a 2 KiB stack if
// it never runs the deep code that handles one: that code runs here, on
// goroutines whose stacks have already grown, so neither a new socket nor
// an idle one pays for a big stack. The zero value is ready to use.
type workers struct {
	mu      sync.Mutex
	idle    []*worker
	stopped bool
}

type worker struct {
	job  chan func()
	done chan struct{}
}

// run runs f on a worker and returns when it has.
func (p *workers) run(f func()) {
	w := p.get()
	w.job <- f
	<-w.done
	p.put(w)
}

func (p *workers) get() *worker {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return w
	}
	p.mu.Unlock()
	w := &worker{job: make(chan func()), done: make(chan struct{})}
	go w.loop()
	return w
}

func (p *workers) put(w *worker) {
	p.mu.Lock()
	if !p.stopped && len(p.idle) < maxIdleWorkers {
		p.idle = append(p.idle, w)
		w = nil
	}
	p.mu.Unlock()
	if w != nil {
		close(w.job)
	}
}

// stop lets the idle workers go; those busy end when their job is done.
// run still works after stop, on goroutines that end with their job.
func (p *workers) stop() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.stopped = nil, true
	p.mu.Unlock()
	for _, w := range idle {
		close(w.job)
	}
}

// loop runs jobs until its worker is let go.
func (w *worker) loop() {
	for f := range w.job {
		f()
		w.done <- struct{}{}
	}
}

// idleCount is how many workers wait for work (for tests).
func (p *workers) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
