package chat

import "sync"

// maxIdleWorkers bounds the goroutines a workers keeps waiting for work.
// Each holds a stack grown by the frames it handled (8–16 KiB), so the
// bound costs at most 16 MiB however many sockets there are, and less
// once the collector shrinks the stacks of workers left idle; bursts
// beyond it start goroutines that grow fresh stacks and end once their
// work is done. A connection storm keeps about a thousand hellos in
// flight: with 256 kept, starting and growing the others was ≈ 4 % of
// the node's CPU there, and 1,024 made 10,000 connections usable in 2.65
// s rather than 2.90 (medians of 7 interleaved runs) with idle memory
// unchanged (18.0 against 17.9 KiB a connection).
const maxIdleWorkers = 1024

// workers runs jobs on reused goroutines. A socket's own goroutine spends
// nearly all its life waiting for a frame, and stays on a 2 KiB stack if
// it never runs the deep code that handles one: that code runs here, on
// goroutines whose stacks have already grown, so neither a new socket nor
// an idle one pays for a big stack. The same holds for a client's writer,
// which exists only while the client has frames to write: started as a
// goroutine of its own it would grow a fresh stack (copying it twice)
// for every burst it writes. The zero value is ready to use.
type workers struct {
	mu      sync.Mutex
	idle    []*worker
	stopped bool
}

type worker struct {
	pool *workers
	job  chan job
	done chan struct{}
}

// job is one function for a worker; wait says whether someone waits on
// the worker's done channel for it to finish.
type job struct {
	f    func()
	wait bool
}

// run runs f on a worker and returns when it has.
func (p *workers) run(f func()) {
	w := p.get()
	w.job <- job{f: f, wait: true}
	<-w.done
}

// start runs f on a worker and returns at once.
func (p *workers) start(f func()) {
	p.get().job <- job{f: f}
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
	w := &worker{pool: p, job: make(chan job), done: make(chan struct{})}
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

// loop runs jobs until its worker is let go. A worker goes back to the
// pool before it tells whoever waits that the job is done: a caller that
// takes it meanwhile blocks sending its job until that signal is
// received, so the signal cannot reach the wrong waiter.
func (w *worker) loop() {
	for j := range w.job {
		j.f()
		w.pool.put(w)
		if j.wait {
			w.done <- struct{}{}
		}
	}
}

// idleCount is how many workers wait for work (for tests).
func (p *workers) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// maxAtOnce bounds the calls eachAtOnce has in flight.
const maxAtOnce = 64

// eachAtOnce calls fn(i) for every i in [0, n), up to maxAtOnce at a
// time, and returns when all have returned. A store's durable writes made
// this way share its group commits; made one after another, each would
// wait for a commit of its own.
func eachAtOnce(n int, fn func(i int)) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxAtOnce)
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			fn(i)
		})
	}
	wg.Wait()
}
