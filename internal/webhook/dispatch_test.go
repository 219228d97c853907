package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lifelinehq/lifeline/chat"
)

// gauge counts requests a test endpoint is serving, and the most at once.
type gauge struct {
	mu        sync.Mutex
	now, most int
	total     int
}

// server serves h on 127.0.0.1 until the test ends, counting the
// requests it serves.
func (g *gauge) server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.enter()
		defer g.leave()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (g *gauge) enter() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now++
	g.total++
	g.most = max(g.most, g.now)
}

func (g *gauge) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now--
}

func (g *gauge) read() (now, most, total int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.now, g.most, g.total
}

// counted reads a counter.
func counted(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// A receiver that hangs holds at most its share of the workers, so another
// site's deliveries go out while it hangs, and none of its own is lost.
func TestHangingReceiverHoldsItsShare(t *testing.T) {
	ctx := context.Background()
	st := shopStore(t, "other")
	release := make(chan struct{})
	var g gauge
	slow := g.server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	rcv := newReceiver(t)
	o := fastOptions(st)
	o.Timeout = time.Minute // the hung deliveries stay hung for the whole test
	var skip atomic.Int64
	o.Now = func() time.Time { return time.Now().Add(time.Duration(skip.Load())) }
	s := New(o)
	if _, err := s.Subscribe(ctx, "shop", slow.URL+"/hook", "", nil); err != nil {
		t.Fatal(err)
	}
	rcv.listen(t, s, "other", rcv.srv.URL+"/hook")
	s.Start(ctx)
	defer s.Stop()
	const hung = 200 // more than the workers, and than a claim takes
	for range hung {
		s.Emit(ctx, event(chat.EventConversationCreated))
	}
	waitFor(t, "the slow receiver holding its share", func() bool { n, _, _ := g.read(); return n == s.o.ReceiverLimit })
	const others = 30
	for range others {
		e := event(chat.EventConversationCreated)
		e.SiteKey = "other"
		s.Emit(ctx, e)
	}
	waitFor(t, "the other site's deliveries", func() bool { n, _ := rcv.count(); return n == others })
	if _, most, _ := g.read(); most > s.o.ReceiverLimit {
		t.Errorf("the hanging receiver had %d deliveries at once, want at most %d", most, s.o.ReceiverLimit)
	}
	waitFor(t, "the hung site's deliveries all in the outbox", func() bool {
		items, _ := st.OutboxItems(ctx, liveQueue, 10_000)
		return len(items) == hung
	})

	// Held past holdFor, the waiting ones go back to the outbox before
	// their lease runs out, and are claimed and held again.
	skip.Store(int64(holdFor + time.Second))
	waitFor(t, "the held deliveries put back", func() bool { return counted(s.deferred) >= hung-float64(s.o.ReceiverLimit) })
	if n, most, _ := g.read(); n != s.o.ReceiverLimit || most > s.o.ReceiverLimit {
		t.Errorf("%d deliveries in flight (at most %d), want %d", n, most, s.o.ReceiverLimit)
	}
	items, _ := st.OutboxItems(ctx, liveQueue, 10_000)
	if len(items) != hung {
		t.Errorf("%d deliveries in the outbox, want %d", len(items), hung)
	}
}

// A slow receiver that answers gets every delivery once, never more than
// its share at a time.
func TestSlowReceiverGetsEverythingInTurn(t *testing.T) {
	ctx := context.Background()
	st := shopStore(t)
	var g gauge
	rcv := newReceiver(t)
	slow := g.server(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		rcv.srv.Config.Handler.ServeHTTP(w, r)
	})
	s := New(fastOptions(st))
	rcv.listen(t, s, "shop", slow.URL)
	s.Start(ctx)
	defer s.Stop()
	const n = 60
	for range n {
		s.Emit(ctx, event(chat.EventMessageCreated))
	}
	waitFor(t, "every delivery", func() bool { got, _ := rcv.count(); return got == n })
	rcv.mu.Lock()
	for id, c := range rcv.got {
		if c != 1 {
			t.Errorf("delivery %s arrived %d times", id, c)
		}
	}
	rcv.mu.Unlock()
	if _, most, _ := g.read(); most > s.o.ReceiverLimit {
		t.Errorf("%d deliveries at once, want at most %d", most, s.o.ReceiverLimit)
	}
}

// slowDeletes takes its time to delete from the outbox, as a busy store
// would.
type slowDeletes struct{ chat.Store }

func (s slowDeletes) DeleteOutbox(ctx context.Context, queue, id string) error {
	time.Sleep(200 * time.Millisecond)
	return s.Store.DeleteOutbox(ctx, queue, id)
}

// A delivery answered 2xx is deleted from the outbox before Stop returns,
// even while the deletes lag behind, so a restart does not send it again.
func TestStopDeletesWhatWasDelivered(t *testing.T) {
	ctx := context.Background()
	st := shopStore(t)
	rcv := newReceiver(t)
	o := fastOptions(st)
	o.Store = slowDeletes{st}
	s := New(o)
	rcv.listen(t, s, "shop", rcv.srv.URL)
	s.Start(ctx)
	const n = 100 // many more than the ackers
	for range n {
		s.Emit(ctx, event(chat.EventMessageCreated))
	}
	waitFor(t, "every delivery answered", func() bool { return counted(s.delivered) == n })
	s.Stop()
	if items, _ := st.OutboxItems(ctx, liveQueue, n); len(items) != 0 {
		t.Errorf("%d delivered deliveries still in the outbox after Stop", len(items))
	}
}

// failing starts a service whose clock the test moves, subscribed to a
// receiver answering 500, and queues n events for it.
func failing(t *testing.T, n int) (s *Service, rcv *receiver, g *gauge, skip *atomic.Int64) {
	t.Helper()
	ctx := context.Background()
	st := shopStore(t)
	rcv = newReceiver(t)
	rcv.status.Store(500)
	g = &gauge{}
	srv := g.server(t, rcv.srv.Config.Handler.ServeHTTP)
	skip = &atomic.Int64{}
	o := fastOptions(st)
	o.Pause = time.Hour
	o.Now = func() time.Time { return time.Now().Add(time.Duration(skip.Load())) }
	s = New(o)
	rcv.listen(t, s, "shop", srv.URL, chat.EventMessageCreated)
	s.Start(ctx)
	t.Cleanup(s.Stop)
	for range n {
		s.Emit(ctx, event(chat.EventMessageCreated))
	}
	return s, rcv, g, skip
}

// waitPaused waits until all n deliveries wait out the pause in the outbox.
func waitPaused(t *testing.T, s *Service, n int) []delivery {
	t.Helper()
	var ds []delivery
	waitFor(t, "every delivery put back past the pause", func() bool {
		items, _ := s.o.Store.OutboxItems(context.Background(), liveQueue, 0)
		ds = ds[:0]
		for _, it := range items {
			var d delivery
			if json.Unmarshal(it.Data, &d) != nil || it.Due.Before(s.o.Now().Add(50*time.Minute)) {
				return false
			}
			ds = append(ds, d)
		}
		return len(ds) == n
	})
	return ds
}

// A receiver that fails TripAfter times in a row is paused: the rest of its
// deliveries wait out the pause unattempted, an admin's redelivery is tried
// at once and its success ends the pause, and everything goes out.
func TestFailingReceiverIsPaused(t *testing.T) {
	ctx := context.Background()
	const n = 30
	s, rcv, g, skip := failing(t, n)
	ds := waitPaused(t, s, n)
	_, _, tried := g.read()
	if tried < s.o.TripAfter || tried >= s.o.TripAfter+s.o.ReceiverLimit {
		t.Errorf("%d attempts before the pause, want %d to %d", tried, s.o.TripAfter, s.o.TripAfter+s.o.ReceiverLimit-1)
	}
	untried := 0
	for _, d := range ds {
		if d.Attempts == 0 {
			untried++
		}
	}
	if untried < n-tried {
		t.Errorf("%d deliveries never attempted, want %d: a put-back counted as an attempt", untried, n-tried)
	}
	if p := counted(s.paused); p != 1 {
		t.Errorf("paused %v times, want 1", p)
	}
	list, err := s.List(ctx, "shop")
	if err != nil || len(list) != 1 || list[0].Health == nil {
		t.Fatalf("List = %+v, %v; want the subscription with its health", list, err)
	}
	if h := list[0].Health; h.FailuresInARow != s.o.TripAfter || !strings.Contains(h.LastError, "500") ||
		h.PausedUntil.Sub(s.o.Now()) < 50*time.Minute {
		t.Errorf("health = %+v, want %d failures in a row, the 500, paused for the hour", h, s.o.TripAfter)
	}

	bury := func(id string) {
		t.Helper()
		d := delivery{Site: "shop", SubID: ds[0].SubID, Event: chat.EventMessageCreated, Body: []byte(`{}`), First: s.o.Now()}
		data, _ := json.Marshal(d)
		if err := s.o.Store.PutOutbox(ctx, deadQueue, chat.OutboxItem{ID: id, Due: s.o.Now(), Data: data}); err != nil {
			t.Fatal(err)
		}
	}

	// Sending three dead ones again while the receiver still fails tries
	// only the first; the others wait out the pause.
	for _, id := range []string{"dlv_a", "dlv_b", "dlv_c"} {
		bury(id)
	}
	if q, err := s.RedeliverAll(ctx, "shop"); err != nil || q != 3 {
		t.Fatalf("RedeliverAll = %d, %v; want 3", q, err)
	}
	waitPaused(t, s, n+3)
	if _, _, now := g.read(); now != tried+1 {
		t.Errorf("%d attempts for three redelivered during the pause, want 1", now-tried)
	}

	// The receiver is fixed; an admin redelivers a dead delivery.
	rcv.status.Store(200)
	bury("dlv_dead")
	if err := s.Redeliver(ctx, "shop", "dlv_dead"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redelivery during the pause", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.got["dlv_dead"] == 1
	})
	if got, _ := rcv.count(); got != 1 {
		t.Errorf("%d deliveries during the pause, want only the redelivered one", got)
	}
	waitFor(t, "the health cleared", func() bool {
		list, err := s.List(ctx, "shop")
		return err == nil && len(list) == 1 && list[0].Health == nil
	})
	// Its success ended the pause: a new event goes out at once, while
	// those put back wait until they are due.
	s.Emit(ctx, event(chat.EventMessageCreated))
	waitFor(t, "a new delivery after the pause ended", func() bool { got, _ := rcv.count(); return got == 2 })

	skip.Store(int64(2 * time.Hour))
	waitFor(t, "every delivery after the pause", func() bool { got, _ := rcv.count(); return got == n+5 })
}

// A pause is kept by the other nodes too: a second service on the same
// store, started after the first paused the receiver, puts its
// deliveries back unattempted until the pause ends, and its first
// success after it clears the pause for all.
func TestPauseHoldsOnEveryNode(t *testing.T) {
	ctx := context.Background()
	s, rcv, g, skip := failing(t, 4)
	waitPaused(t, s, 4)
	_, _, before := g.read()
	s.Stop() // only the second node claims from here on

	o := s.o
	o.Registerer = nil
	other := New(o)
	other.Start(ctx)
	defer other.Stop()
	for range 6 {
		other.Emit(ctx, event(chat.EventMessageCreated))
	}
	waitPaused(t, other, 10)
	if _, _, after := g.read(); after != before {
		t.Errorf("the second node attempted %d deliveries during the first node's pause", after-before)
	}

	// The receiver is fixed and the pause ends. The second node, which
	// only kept to the first one's pause, clears the stored health with
	// its first success: the listing no longer shows a pause.
	rcv.status.Store(200)
	skip.Store(int64(2 * time.Hour))
	waitFor(t, "every delivery after the pause", func() bool { got, _ := rcv.count(); return got == 10 })
	waitFor(t, "the health cleared by the second node", func() bool {
		list, err := other.List(ctx, "shop")
		return err == nil && len(list) == 1 && list[0].Health == nil
	})
}

// A delivery whose receiver stays paused past MaxAge ends in the
// dead-letter list rather than being put back for ever.
func TestPausedPastMaxAgeIsDead(t *testing.T) {
	ctx := context.Background()
	const n = 30
	s, _, _, skip := failing(t, n)
	ds := waitPaused(t, s, n)
	skip.Store(int64(25 * time.Hour))
	var dead []DeadDelivery
	waitFor(t, "every delivery dead", func() bool {
		var err error
		dead, err = s.Dead(ctx, "shop", 0)
		return err == nil && len(dead) == n
	})
	untried := 0
	for _, d := range dead {
		if strings.HasPrefix(d.LastError, "not attempted") {
			untried++
		}
	}
	if untried == 0 {
		t.Error("no dead delivery came from the outbox unattempted; the test did not exercise it")
	}
	if err := s.Unsubscribe(ctx, "shop", ds[0].SubID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.o.Store.Meta(ctx, healthKey(ds[0].SubID)); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("health after unsubscribing: %v, want ErrNotFound", err)
	}
}
