package load

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// eventsPart is the behaviour-event share of a run: Streamers visitors
// each sending a batch of BatchSize events per interval so that together
// they send EventRate events per second. A Struggle share of them, once,
// at a random moment, send a batch in which a card is declined three times
// on /checkout (three error events with one fingerprint); the detector
// should answer with an offer, and the time from that batch's send to the
// offer frame is the event→offer latency.
type eventsPart struct {
	r *runner

	streamers []*streamer
	failed    int
	live      int

	events, batches, struggles, offers, unprompted, errs atomic.Int64
}

type streamer struct {
	conn     *conn
	idx      int
	struggle bool
	// trigger is the unix nanoseconds at which the triggering batch was
	// sent, 0 before; offered is set by the first offer.
	trigger atomic.Int64
	offered atomic.Bool
}

// setup opens the streamers; every struggler is marked evenly among them.
func (p *eventsPart) setup(ctx context.Context) {
	cfg := p.r.cfg
	p.streamers = make([]*streamer, cfg.Streamers)
	p.failed, _ = p.r.dialAll(ctx, cfg.Streamers, func(ctx context.Context, i int) error {
		c, err := p.r.visitor(ctx, "/products")
		if err != nil {
			return err
		}
		// Streamer i struggles when the running share crosses a whole number.
		s := &streamer{conn: c, idx: i, struggle: int(float64(i+1)*cfg.Struggle) > int(float64(i)*cfg.Struggle)}
		p.streamers[i] = s
		p.r.wg.Go(func() { s.read(p) })
		return nil
	})
	for _, s := range p.streamers {
		if s != nil {
			p.live++
		}
	}
}

func (p *eventsPart) close() {
	for _, s := range p.streamers {
		if s != nil {
			s.conn.closeNow()
		}
	}
}

// stream runs every streamer's open-loop batch loop until stop.
func (p *eventsPart) stream(ctx context.Context, stop <-chan struct{}) {
	if p.live == 0 {
		return
	}
	cfg := p.r.cfg
	interval := time.Duration(float64(time.Second) * float64(p.live) * float64(cfg.BatchSize) / cfg.EventRate)
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range p.streamers {
		if s == nil {
			continue
		}
		// Strugglers hit the declined card between 10 % and 60 % into the window.
		var at time.Time
		if s.struggle {
			at = start.Add(time.Duration((0.1 + 0.5*rand.Float64()) * float64(cfg.Duration)))
		}
		wg.Go(func() { s.loop(ctx, stop, p, interval, at) })
	}
	wg.Wait()
}

func (s *streamer) loop(ctx context.Context, stop <-chan struct{}, p *eventsPart, interval time.Duration, struggleAt time.Time) {
	n := p.r.cfg.BatchSize
	var buf []byte
	pace(stop, interval, func(k int, now time.Time) bool {
		trigger := s.struggle && s.trigger.Load() == 0 && !now.Before(struggleAt)
		buf = s.batch(buf[:0], now, k, n, interval, trigger)
		if trigger {
			s.trigger.Store(now.UnixNano())
		}
		if err := s.conn.send(ctx, buf); err != nil {
			return false
		}
		p.events.Add(int64(n))
		p.batches.Add(1)
		if trigger {
			p.struggles.Add(1)
		}
		return true
	})
}

// batch appends an events frame of n events that happened over the last
// interval. An ordinary batch is a page view and clicks on a product
// page, as a browsing visitor makes; a struggling one is the checkout
// page, clicks on the pay button and the card declined three times.
func (s *streamer) batch(b []byte, now time.Time, k, n int, interval time.Duration, struggle bool) []byte {
	step := min(interval/time.Duration(n), 200*time.Millisecond).Milliseconds()
	t0 := now.UnixMilli() - int64(n-1)*step
	b = append(b, `{"type":"events","events":[`...)
	for j := range n {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"t":`...)
		b = strconv.AppendInt(b, t0+int64(j)*step, 10)
		switch {
		case struggle && j == 0:
			b = append(b, `,"k":"page","path":"/checkout","title":"Checkout","ref":"/cart"}`...)
		case struggle && j >= n-3:
			b = append(b, `,"k":"error","msg":"Payment failed: your card was declined","fp":"e-card-declined","src":"/static/checkout.js","line":42,"col":7}`...)
		case struggle:
			b = append(b, `,"k":"click","sel":"#pay","x":`...)
			b = strconv.AppendInt(b, int64(600+j), 10)
			b = append(b, `,"y":480}`...)
		case j == 0:
			b = append(b, `,"k":"page","path":"/p/`...)
			b = strconv.AppendInt(b, int64(s.idx), 10)
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(k), 10)
			b = append(b, `","title":"Product"}`...)
		case j == n/2:
			b = append(b, `,"k":"track","name":"view_item"}`...)
		default:
			b = append(b, `,"k":"click","sel":"#item-`...)
			b = strconv.AppendInt(b, int64(j), 10)
			b = append(b, `","x":`...)
			b = strconv.AppendInt(b, int64(40*j), 10)
			b = append(b, `,"y":`...)
			b = strconv.AppendInt(b, int64(300+k%200), 10)
			b = append(b, '}')
		}
	}
	return append(b, "]}"...)
}

// read counts offers on a streamer's socket.
func (s *streamer) read(p *eventsPart) {
	s.conn.eachFrame(func(f *frame, now time.Time) {
		switch f.Type {
		case "offer":
			trig := s.trigger.Load()
			if !s.struggle || trig == 0 {
				p.unprompted.Add(1)
				return
			}
			if s.offered.CompareAndSwap(false, true) {
				p.offers.Add(1)
				p.r.offerLat.Record(now.Sub(time.Unix(0, trig)))
			}
		case "error":
			p.errs.Add(1)
		}
	})
}

// drain waits up to d for the offers still due.
func (p *eventsPart) drain(d time.Duration) {
	deadline := time.Now().Add(d)
	for p.offers.Load() < p.struggles.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *eventsPart) report(rep *Report, sending time.Duration) {
	rep.Connections += p.live
	rep.Failed += p.failed
	rep.Errors += p.errs.Load()
	rep.Events = &EventsReport{
		Streamers: p.live, Sent: p.events.Load(), Batches: p.batches.Load(),
		Rate:      float64(p.events.Load()) / sending.Seconds(),
		Struggles: p.struggles.Load(), Offers: p.offers.Load(), Unprompted: p.unprompted.Load(),
	}
}
