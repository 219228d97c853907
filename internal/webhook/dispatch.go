package webhook

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

// The dispatcher hands due deliveries to the workers, fairly. A receiver
// that hangs holds a worker for up to Timeout per delivery, and one that
// fails goes on failing: with one shared pool, a single site's broken
// endpoint would hold up every other site's webhooks. So at most
// ReceiverLimit deliveries to one subscription are in flight; the rest
// of those claimed wait in memory for their turn while the others go
// out. A receiver that failed TripAfter times in a row is paused (a
// circuit breaker): its deliveries go back to the outbox due when the
// pause ends, without an attempt and without using up an attempt's
// backoff; an admin's redelivery is tried at once. The pause doubles, up
// to MaxBackoff, while the first attempts after each one fail too; one
// success ends it. The dispatcher claims no more while maxHeld wait in
// memory, so a hanging receiver with a backlog of more than that still
// holds the others up, but only until it is paused: about one Timeout
// with the defaults. Each node keeps its own limits; a pause is stored
// (as the subscription's Health), and the other nodes keep to it once
// they next read it, within subsCacheTTL.

// job is a claimed delivery on its way to a worker.
type job struct {
	it      chat.OutboxItem
	d       delivery
	claimed time.Time
}

// outcome is what an attempt came to, as far as the receiver's health goes.
type outcome int

const (
	notSent   outcome = iota // unsubscribed, or the node is stopping
	delivered                // a 2xx answer
	failed                   // anything else
)

// result is a worker's report of one job.
type result struct {
	sub string
	out outcome
	err error // why it failed
}

// endpoint is the dispatcher's state of one subscription's endpoint.
type endpoint struct {
	busy   int       // dispatched and not yet reported
	held   []job     // claimed, waiting for one of busy to finish
	fails  int       // failed attempts in a row
	pauses int       // pauses in a row
	until  time.Time // paused until
	last   time.Time // when it last dispatched or heard back
}

// putBack is a claimed delivery to return to the outbox, due later.
type putBack struct {
	j   job
	due time.Time
}

// dispatcher is dispatchLoop's state; only that goroutine touches it.
type dispatcher struct {
	s     *Service
	recv  map[string]*endpoint // by subscription ID
	ready []job                // admitted, waiting for a free worker
	back  []putBack            // to write before the next wait
}

// dispatchLoop claims due deliveries and hands them to the workers through
// jobs until ctx ends; workers report on done.
func (s *Service) dispatchLoop(ctx context.Context, jobs chan<- job, done <-chan result) {
	defer close(jobs)
	p := &dispatcher{s: s, recv: map[string]*endpoint{}}
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	claim := true
	for {
		if claim && p.room() {
			claim = p.claim(ctx)
		}
		p.writeBack(ctx)
		var out chan<- job
		var next job
		if len(p.ready) > 0 {
			out, next = jobs, p.ready[0]
		}
		var more <-chan struct{} // ready at once while more may be due
		if claim && p.room() {
			more = closed
		}
		select {
		case <-more:
		case out <- next:
			p.ready[0] = job{}
			p.ready = p.ready[1:]
		case r := <-done:
			p.finish(ctx, r)
		case <-t.C:
			claim = true
			p.sweep()
		case <-s.kick:
			claim = true
		case <-ctx.Done():
			p.stop()
			return
		}
	}
}

// room reports whether the dispatcher may claim more: a worker's worth
// is not already waiting for one, and fewer than maxHeld wait for their
// receivers.
func (p *dispatcher) room() bool {
	if len(p.ready) >= p.s.o.Workers {
		return false
	}
	held := 0
	for _, r := range p.recv {
		held += len(r.held)
	}
	return held < maxHeld
}

// closed is a channel that is always ready.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// claim takes a batch of due deliveries and routes each. It reports
// whether the batch was full, so more may be due.
func (p *dispatcher) claim(ctx context.Context) bool {
	s := p.s
	batch := s.o.Workers * 4
	items, err := s.o.Store.ClaimOutbox(ctx, liveQueue, s.o.Now(), s.o.Timeout+leaseMargin, batch)
	if err != nil {
		if ctx.Err() == nil {
			s.o.Logger.Warn("webhook outbox claim", "err", err)
		}
		return false
	}
	now := s.o.Now()
	for _, it := range items {
		var d delivery
		if err := json.Unmarshal(it.Data, &d); err != nil {
			s.o.Logger.Error("webhook outbox item undecodable; dropped", "delivery", it.ID, "err", err)
			_ = s.o.Store.DeleteOutbox(ctx, liveQueue, it.ID)
			continue
		}
		p.route(ctx, job{it: it, d: d, claimed: now}, now)
	}
	return len(items) == batch
}

// route sends j on, holds it, or puts it back to wait out a pause.
func (p *dispatcher) route(ctx context.Context, j job, now time.Time) {
	limit := p.s.o.ReceiverLimit
	r := p.recv[j.d.SubID]
	if r == nil {
		r = &endpoint{}
		p.recv[j.d.SubID] = r
	}
	r.last = now
	if !now.Before(r.until) {
		// Another node may have paused it: keep to that pause too.
		if h := p.s.cachedHealth(ctx, j.d.SubID); h != nil && now.Before(h.PausedUntil) {
			r.until = h.PausedUntil
			r.fails = max(r.fails, p.s.o.TripAfter)
		}
	}
	switch {
	case now.Before(r.until) && !j.d.Manual:
		p.putPaused(j, r)
	case r.busy < limit:
		r.busy++
		p.ready = append(p.ready, j)
	default:
		r.held = append(r.held, j)
	}
}

// putPaused returns j to the outbox, due when r's pause ends (spread over
// a Poll after it, so that they do not all come back at once).
func (p *dispatcher) putPaused(j job, r *endpoint) {
	due := r.until.Add(rand.N(p.s.o.Poll + 1))
	p.back = append(p.back, putBack{j: j, due: due})
}

// finish takes a worker's report: the receiver's health, then its next
// held delivery.
func (p *dispatcher) finish(ctx context.Context, res result) {
	s := p.s
	r := p.recv[res.sub]
	if r == nil {
		return
	}
	now := s.o.Now()
	r.busy--
	r.last = now
	switch res.out {
	case delivered:
		// A pause this node made, or one it kept to or only found stored,
		// ends here: whichever node succeeds first clears it for all.
		if r.pauses > 0 || s.cachedHealth(ctx, res.sub) != nil {
			s.o.Logger.Info("webhook receiver answering again; deliveries resumed", "subscription", res.sub)
			s.saveHealth(res.sub, nil)
		}
		r.fails, r.pauses, r.until = 0, 0, time.Time{}
	case failed:
		r.fails++
		if r.fails >= s.o.TripAfter && !now.Before(r.until) {
			r.pauses++
			pause := s.o.MaxBackoff
			if r.pauses < 30 {
				pause = min(s.o.Pause<<(r.pauses-1), max(s.o.MaxBackoff, s.o.Pause))
			}
			r.until = now.Add(pause)
			s.paused.Inc()
			s.o.Logger.Warn("webhook receiver failing; deliveries paused", "subscription", res.sub,
				"failures_in_a_row", r.fails, "pause", pause, "err", res.err)
			s.saveHealth(res.sub, &Health{PausedUntil: r.until.UTC(), FailuresInARow: r.fails, LastError: errText(res.err)})
		}
	}
	if now.Before(r.until) {
		for _, j := range r.held {
			p.putPaused(j, r)
		}
		r.held = nil
	} else if len(r.held) > 0 && r.busy < s.o.ReceiverLimit {
		r.busy++
		p.ready = append(p.ready, r.held[0])
		r.held[0] = job{}
		r.held = r.held[1:]
	}
	if r.fails == 0 && r.idle(now) {
		delete(p.recv, res.sub)
	}
}

// idle reports whether r has nothing in flight or held and is not paused:
// all it still knows is its failures in a row.
func (r *endpoint) idle(now time.Time) bool {
	return r.busy == 0 && len(r.held) == 0 && !now.Before(r.until)
}

// maxHeld bounds the claimed deliveries waiting in memory for their
// receivers (a few KiB each at most).
const maxHeld = 1024

// A claim's lease is Timeout plus leaseMargin; a delivery held in memory
// for longer than holdFor goes back to the outbox, due at once, before its
// lease could run out and it be claimed a second time while still held.
const (
	leaseMargin = 30 * time.Second
	holdFor     = 20 * time.Second
)

// sweep returns deliveries held for holdFor to the outbox, and forgets
// idle receivers that have not failed, and those that failed but have had
// nothing to do for MaxAge, such as those of deleted subscriptions.
func (p *dispatcher) sweep() {
	now := p.s.o.Now()
	for id, r := range p.recv {
		kept := r.held[:0]
		for _, j := range r.held {
			if now.Sub(j.claimed) < holdFor {
				kept = append(kept, j)
				continue
			}
			p.back = append(p.back, putBack{j: j, due: now})
		}
		clear(r.held[len(kept):])
		r.held = kept
		if r.idle(now) && (r.fails == 0 || now.Sub(r.last) > p.s.o.MaxAge) {
			delete(p.recv, id)
		}
	}
}

// writeBack returns the put-back deliveries to the outbox, at once so
// that they share the store's commits. One past its MaxAge goes to the
// dead-letter list instead.
func (p *dispatcher) writeBack(ctx context.Context) {
	if len(p.back) == 0 {
		return
	}
	s := p.s
	now := s.o.Now()
	var wg sync.WaitGroup
	for _, b := range p.back {
		wg.Go(func() {
			if now.Sub(b.j.d.First) >= s.o.MaxAge {
				if b.j.d.LastError == "" {
					b.j.d.LastError, b.j.d.LastAt = "not attempted: the receiver was paused", now
				}
				s.bury(ctx, b.j.it.ID, b.j.d, now)
				return
			}
			s.deferred.Inc()
			item := chat.OutboxItem{ID: b.j.it.ID, Due: b.due, Data: b.j.it.Data}
			if err := s.o.Store.PutOutbox(ctx, liveQueue, item); err != nil && ctx.Err() == nil {
				s.o.Logger.Warn("webhook put back", "delivery", b.j.it.ID, "err", err)
			}
		})
	}
	wg.Wait()
	clear(p.back)
	p.back = p.back[:0]
}

// stop hands every claimed delivery not yet with a worker back to the
// outbox, due now, so that the next start sends them without waiting out
// their lease.
func (p *dispatcher) stop() {
	now := p.s.o.Now()
	for _, j := range p.ready {
		p.back = append(p.back, putBack{j: j, due: now})
	}
	for _, r := range p.recv {
		for _, j := range r.held {
			p.back = append(p.back, putBack{j: j, due: now})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.writeBack(ctx)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Health is a subscription's state while its deliveries are paused, for
// the admins: the store keeps it from the pause's start on whichever node
// paused it until a delivery succeeds again.
type Health struct {
	PausedUntil    time.Time `json:"paused_until"`
	FailuresInARow int       `json:"failures_in_a_row"`
	LastError      string    `json:"last_error"`
}

func healthKey(sub string) string { return "webhooks/health/" + sub }

// readHealth returns sub's stored Health, nil when there is none.
func (s *Service) readHealth(ctx context.Context, sub string) (*Health, error) {
	var h Health
	if ok, err := chat.MetaJSON(ctx, s.o.Store, healthKey(sub), &h); !ok {
		return nil, err
	}
	return &h, nil
}

// cachedHealth returns sub's stored Health, read at most every
// subsCacheTTL; nil when there is none or it cannot be read (deliveries
// then go on).
func (s *Service) cachedHealth(ctx context.Context, sub string) *Health {
	now := s.o.Now()
	s.healthMu.Lock()
	c, ok := s.health[sub]
	s.healthMu.Unlock()
	if ok && now.Sub(c.at) < subsCacheTTL {
		return c.v
	}
	h, _ := s.readHealth(ctx, sub)
	s.healthMu.Lock()
	s.health[sub] = cached[*Health]{v: h, at: now}
	s.healthMu.Unlock()
	return h
}

// saveHealth stores h as sub's health, or clears it when h is nil. The
// dispatcher calls it when a pause starts or ends, rarely, and waits for
// it so that the two are written in order.
func (s *Service) saveHealth(sub string, h *Health) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var err error
	if h == nil {
		err = s.o.Store.DeleteMeta(ctx, healthKey(sub))
	} else {
		data, _ := json.Marshal(h)
		err = s.o.Store.PutMeta(ctx, healthKey(sub), data)
	}
	if err != nil {
		s.o.Logger.Warn("webhook health", "subscription", sub, "err", err)
	}
	s.healthMu.Lock()
	s.health[sub] = cached[*Health]{v: h, at: s.o.Now()}
	s.healthMu.Unlock()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
