package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/leaktest"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// vectors are the published test vectors of docs/webhooks.md.
var vectors = []struct{ secret, ts, body, sig string }{
	{"whsec_test_secret", "1700000000", `{}`, "sha256=ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3"},
	{"whsec_test_secret", "1700000000", `{"version":1,"id":"evt_1","type":"message.created","site":"demo","created_at":"2023-11-14T22:13:20Z","data":{"visitor_id":"v1","message":{"conversation_id":"c1","seq":1,"author":{"kind":"visitor","id":"v1"},"text":"Hello","at":"2023-11-14T22:13:20Z"}}}`,
		"sha256=bf9eb76bcb072c7732fbbd79bbf9dcf3f03fccb0248a81ef78e227b8ea4e5a16"},
}

func TestSignatureVectors(t *testing.T) {
	for _, v := range vectors {
		if got := Sign(v.secret, v.ts, []byte(v.body)); got != v.sig {
			t.Errorf("Sign(%q, %q, %q) = %s, want %s", v.secret, v.ts, v.body, got, v.sig)
		}
		at := time.Unix(1700000000, 0)
		if !Verify(v.secret, v.ts, v.sig, []byte(v.body), at.Add(time.Minute), 5*time.Minute) {
			t.Errorf("Verify of vector %q = false", v.body)
		}
		if Verify(v.secret, v.ts, v.sig, []byte(v.body), at.Add(time.Hour), 5*time.Minute) {
			t.Errorf("Verify of a stale timestamp = true")
		}
		if Verify("other", v.ts, v.sig, []byte(v.body), at, 5*time.Minute) {
			t.Errorf("Verify with another secret = true")
		}
	}
}

// receiver is a local webhook endpoint that checks signatures.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server
	status atomic.Int32

	mu    sync.Mutex
	got   map[string]int // delivery id -> count
	types map[chat.EventType]int
	bad   int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, got: map[string]int{}, types: map[chat.EventType]int{}}
	r.status.Store(200)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		st := int(r.status.Load())
		if st == 200 {
			r.mu.Lock()
			if !Verify(r.secret, req.Header.Get("X-Lifeline-Timestamp"), req.Header.Get("X-Lifeline-Signature"), body, time.Now(), 5*time.Minute) {
				r.bad++
			}
			var b Body
			if err := json.Unmarshal(body, &b); err != nil || b.Version != SchemaVersion || string(b.Type) != req.Header.Get("X-Lifeline-Event") {
				r.bad++
			}
			r.got[req.Header.Get("X-Lifeline-Delivery")]++
			r.types[b.Type]++
			r.mu.Unlock()
		}
		w.WriteHeader(st)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// listen subscribes url to site's events on s (every event when none are
// given), and checks what arrives against the new subscription's secret.
func (r *receiver) listen(t *testing.T, s *Service, site, url string, events ...chat.EventType) {
	t.Helper()
	sub, err := s.Subscribe(context.Background(), site, url, "", events)
	if err != nil {
		t.Fatal(err)
	}
	r.secret = sub.Secret
}

func (r *receiver) count() (deliveries, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got), r.bad
}

func openStore(t *testing.T, path string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func fastOptions(st chat.Store) Options {
	return Options{Store: st, AllowHosts: []string{"127.0.0.1"}, Poll: 10 * time.Millisecond,
		BaseBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, Pause: 40 * time.Millisecond, Timeout: 2 * time.Second}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// shopStore opens a store for the test, closed at its end, with the site
// "shop" and the sites named in more.
func shopStore(t *testing.T, more ...string) *bolt.Store {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "db"))
	t.Cleanup(func() { st.Close() })
	addSite(t, st, more...)
	return st
}

// addSite stores the site "shop", and the sites named in more.
func addSite(t *testing.T, st chat.Store, more ...string) {
	t.Helper()
	for _, key := range append([]string{"shop"}, more...) {
		if err := st.PutSite(context.Background(), chat.Site{Key: key}); err != nil {
			t.Fatal(err)
		}
	}
}

func event(typ chat.EventType) chat.Event {
	c := chat.Conversation{ID: "c1", Ref: "LF-1", SiteKey: "shop", VisitorID: "v1", Status: chat.StatusActive}
	e := chat.Event{Type: typ, SiteKey: "shop", VisitorID: "v1", At: time.Now(), Conversation: &c}
	switch typ {
	case chat.EventMessageCreated:
		e.Conversation, e.Message = nil, &chat.Message{ConversationID: "c1", Seq: 1, Text: "hi"}
	case chat.EventVisitorIdentified:
		e.Conversation, e.Visitor = nil, &chat.Visitor{ID: "v1", ExternalID: "u1", Verified: true}
	case chat.EventStruggleDetected:
		e.Conversation, e.Finding = nil, &chat.FindingSeen{Rule: "rage", Sentence: "Rage clicks"}
	case chat.EventOfferShown, chat.EventOfferAccepted, chat.EventOfferDeclined:
		e.Conversation, e.Offer = nil, &chat.OfferEvent{ID: "o1", Rule: "rage"}
	}
	return e
}

// TestEveryEventOnceSigned subscribes a local receiver to everything and
// checks that one event of each type arrives exactly once, correctly
// signed.
func TestEveryEventOnceSigned(t *testing.T) {
	ctx := context.Background()
	st := shopStore(t)
	rcv := newReceiver(t)
	s := New(fastOptions(st))
	rcv.listen(t, s, "shop", rcv.srv.URL+"/hook")
	s.Start(ctx)
	defer s.Stop()
	for _, typ := range chat.EventTypes {
		s.Emit(ctx, event(typ))
	}
	waitFor(t, "every event type", func() bool { n, _ := rcv.count(); return n == len(chat.EventTypes) })
	time.Sleep(100 * time.Millisecond) // a duplicate would arrive by now
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.bad != 0 {
		t.Errorf("%d deliveries failed signature or schema checks", rcv.bad)
	}
	for _, typ := range chat.EventTypes {
		if rcv.types[typ] != 1 {
			t.Errorf("%s arrived %d times, want 1", typ, rcv.types[typ])
		}
	}
	if items, _ := st.OutboxItems(ctx, liveQueue, 0); len(items) != 0 {
		t.Errorf("outbox holds %d items after delivery, want 0", len(items))
	}
}

// TestRetryAcrossRestart keeps the receiver down while the service is
// stopped and the store reopened, then brings it up: every delivery
// arrives.
func TestRetryAcrossRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	st := openStore(t, path)
	addSite(t, st)
	rcv := newReceiver(t)
	rcv.status.Store(503)
	s := New(fastOptions(st))
	rcv.listen(t, s, "shop", rcv.srv.URL, chat.EventMessageCreated)
	s.Start(ctx)
	for range 5 {
		s.Emit(ctx, event(chat.EventMessageCreated))
	}
	s.Emit(ctx, event(chat.EventOfferShown)) // not subscribed
	waitFor(t, "failed attempts", func() bool {
		items, _ := st.OutboxItems(ctx, liveQueue, 0)
		if len(items) != 5 {
			return false
		}
		for _, it := range items {
			var d delivery
			if json.Unmarshal(it.Data, &d) != nil || d.Attempts == 0 {
				return false
			}
		}
		return true
	})
	s.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openStore(t, path) // the "restart"
	defer st.Close()
	rcv.status.Store(200)
	s = New(fastOptions(st))
	s.Start(ctx)
	defer s.Stop()
	waitFor(t, "deliveries after the restart", func() bool { n, _ := rcv.count(); return n == 5 })
	if _, bad := rcv.count(); bad != 0 {
		t.Errorf("%d deliveries failed signature checks", bad)
	}
}

// TestDeadLetterAndRedeliver: a receiver that always fails ends in the
// dead-letter list; redelivery after it recovers succeeds.
func TestDeadLetterAndRedeliver(t *testing.T) {
	ctx := context.Background()
	st := shopStore(t)
	rcv := newReceiver(t)
	rcv.status.Store(500)
	o := fastOptions(st)
	o.MaxAge = 150 * time.Millisecond
	s := New(o)
	rcv.listen(t, s, "shop", rcv.srv.URL)
	s.Start(ctx)
	defer s.Stop()
	s.Emit(ctx, event(chat.EventConversationResolved))
	var dead []DeadDelivery
	waitFor(t, "a dead delivery", func() bool {
		var err error
		dead, err = s.Dead(ctx, "shop", 0)
		return err == nil && len(dead) == 1
	})
	if dead[0].Attempts < 2 || dead[0].LastError == "" || dead[0].Event != chat.EventConversationResolved {
		t.Errorf("dead delivery = %+v, want several attempts, an error, the event", dead[0])
	}
	if other, _ := s.Dead(ctx, "elsewhere", 0); len(other) != 0 {
		t.Errorf("another site's dead list = %v, want empty", other)
	}
	rcv.status.Store(200)
	if err := s.Redeliver(ctx, "shop", "nope"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("Redeliver of an unknown delivery = %v, want ErrNotFound", err)
	}
	if err := s.Redeliver(ctx, "shop", dead[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redelivery", func() bool { n, _ := rcv.count(); return n == 1 })
	rcv.mu.Lock()
	if rcv.got[dead[0].ID] != 1 {
		t.Errorf("redelivered with another delivery id: %v", rcv.got)
	}
	rcv.mu.Unlock()
	if d, _ := s.Dead(ctx, "shop", 0); len(d) != 0 {
		t.Errorf("dead list after redelivery = %d, want 0", len(d))
	}
}

// TestRedeliverAll: every dead delivery of a site goes out again once its
// receiver answers; another site's stay dead.
func TestRedeliverAll(t *testing.T) {
	ctx := context.Background()
	st := shopStore(t, "other")
	rcv := newReceiver(t)
	rcv.status.Store(500)
	o := fastOptions(st)
	o.MaxAge = time.Nanosecond // dead at the first failure
	o.TripAfter = 1000         // and no pause, which would bury them again at once
	s := New(o)
	rcv.listen(t, s, "shop", rcv.srv.URL)
	if _, err := s.Subscribe(ctx, "other", rcv.srv.URL, "", nil); err != nil {
		t.Fatal(err)
	}
	s.Start(ctx)
	defer s.Stop()
	for range 6 {
		s.Emit(ctx, event(chat.EventConversationResolved))
	}
	e := event(chat.EventConversationResolved)
	e.SiteKey = "other"
	s.Emit(ctx, e)
	waitFor(t, "seven dead deliveries", func() bool {
		a, _ := s.Dead(ctx, "shop", 0)
		b, _ := s.Dead(ctx, "other", 0)
		return len(a) == 6 && len(b) == 1
	})
	rcv.status.Store(200)
	n, err := s.RedeliverAll(ctx, "shop")
	if err != nil || n != 6 {
		t.Fatalf("RedeliverAll = %d, %v; want 6", n, err)
	}
	waitFor(t, "the six delivered", func() bool { got, _ := rcv.count(); return got == 6 })
	if d, _ := s.Dead(ctx, "shop", 0); len(d) != 0 {
		t.Errorf("%d dead deliveries of the site left", len(d))
	}
	if d, _ := s.Dead(ctx, "other", 0); len(d) != 1 {
		t.Errorf("the other site's dead deliveries: %d, want 1", len(d))
	}
}

// TestEmitNeverBlocks fills the queue of a service that was never started.
func TestEmitNeverBlocks(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "db"))
	defer st.Close()
	s := New(Options{Store: st, QueueLen: 2})
	done := make(chan struct{})
	go func() {
		for range 100 {
			s.Emit(context.Background(), event(chat.EventMessageCreated))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Emit blocked on a full queue")
	}
}

func TestBlocked(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true,
		"169.254.169.254": true, "fe80::1": true, "fd00:ec2::254": true, "0.0.0.0": true, "100.100.100.200": true,
		"::ffff:127.0.0.1": true, "::ffff:169.254.169.254": true,
		"93.184.216.34": false, "2606:2800:220:1:248:1893:25c8:1946": false, "8.8.8.8": false,
	} {
		if got := Blocked(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Blocked(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestGuardRefusesLocalAddresses checks that subscriptions and deliveries
// to loopback and metadata addresses are refused unless the host is
// allowed, also when a name resolves to loopback and when an allowed
// receiver redirects there.
func TestGuardRefusesLocalAddresses(t *testing.T) {
	ctx := context.Background()
	st := shopStore(t)
	s := New(Options{Store: st})
	for _, u := range []string{"http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://localhost:8080/", "http://10.0.0.1/", "ftp://example.com/", "http://user:pw@example.com/"} {
		if _, err := s.Subscribe(ctx, "shop", u, "", nil); !errors.Is(err, chat.ErrInvalid) {
			t.Errorf("Subscribe(%s) = %v, want ErrInvalid", u, err)
		}
	}
	allowed := New(Options{Store: st, AllowHosts: []string{"127.0.0.1"}})
	if _, err := allowed.Subscribe(ctx, "shop", "http://127.0.0.1:9/x", "", nil); err != nil {
		t.Errorf("Subscribe to an allowed host = %v", err)
	}

	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer target.Close()
	port := target.Listener.Addr().(*net.TCPAddr).Port

	// Dialling: loopback by address and by name.
	guarded := newClient(newAllowList(nil), 2*time.Second, 3)
	defer guarded.CloseIdleConnections()
	for _, u := range []string{target.URL, "http://localhost:" + strconv.Itoa(port) + "/"} {
		resp, err := guarded.Post(u, "application/json", nil)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, ErrBlocked) {
			t.Errorf("POST %s without allowing it: err = %v, want ErrBlocked", u, err)
		}
	}

	// Redirects from an allowed receiver to a name resolving to loopback
	// and to the metadata address.
	for _, to := range []string{"http://localhost:" + strconv.Itoa(port) + "/", "http://169.254.169.254/latest/meta-data/"} {
		redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, to, http.StatusTemporaryRedirect)
		}))
		c := newClient(newAllowList([]string{"127.0.0.1"}), 2*time.Second, 3)
		resp, err := c.Post(redir.URL, "application/json", nil)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, ErrBlocked) {
			t.Errorf("redirect to %s: err = %v, want ErrBlocked", to, err)
		}
		c.CloseIdleConnections()
		redir.Close()
	}
}

// While no site has a subscription, Emit drops events at once instead of
// queueing them; a subscription made on this node counts at once, one
// made on another node at its next check, and removing the last one
// counts at the next check. Before the first check nothing is known and
// events are queued.
func TestEmitDropsWhileNoSiteSubscribes(t *testing.T) {
	ctx := context.Background()
	st := shopStore(t, "blog")
	s, other := New(fastOptions(st)), New(fastOptions(st))
	// emit emits one event on svc and checks how many are queued since.
	emit := func(svc *Service, want int, when string) {
		t.Helper()
		svc.Emit(ctx, event(chat.EventMessageCreated))
		if n := len(svc.events); n != want {
			t.Fatalf("%s: %d events queued, want %d", when, n, want)
		}
	}
	emit(s, 1, "before the first check")
	s.checkActive(ctx)
	emit(s, 1, "with no subscriptions")
	sub, err := s.Subscribe(ctx, "blog", "http://127.0.0.1:1/hook", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	emit(s, 2, "after subscribing on this node")
	other.checkActive(ctx)
	emit(other, 1, "on another node after its check")
	if err := s.Unsubscribe(ctx, "blog", sub.ID); err != nil {
		t.Fatal(err)
	}
	emit(s, 3, "after unsubscribing, before a check")
	s.checkActive(ctx)
	emit(s, 3, "after the last subscription went and a check")
}

// metaHook is a store that calls after once, just after a Meta read.
type metaHook struct {
	chat.Store
	after func(key string)
}

func (m *metaHook) Meta(ctx context.Context, key string) ([]byte, error) {
	v, err := m.Store.Meta(ctx, key)
	if f := m.after; f != nil {
		m.after = nil
		f(key)
	}
	return v, err
}

// A subscription made on this node while a check is reading the sites
// (after it read that site) is not undone by the check's answer.
func TestSubscribeDuringCheckStaysActive(t *testing.T) {
	ctx := context.Background()
	st := shopStore(t)
	hooked := &metaHook{Store: st}
	s := New(fastOptions(hooked))
	hooked.after = func(key string) {
		if _, err := s.Subscribe(ctx, strings.TrimPrefix(key, "webhooks/"), "http://127.0.0.1:1/hook", "", nil); err != nil {
			t.Error(err)
		}
	}
	s.checkActive(ctx)
	if !s.active.Load() {
		t.Fatal("the check that raced a subscription left the node inactive")
	}
}

// overlapStore holds the first outbox write until a second one arrives.
type overlapStore struct {
	chat.Store
	t       *testing.T
	calls   atomic.Int32
	overlap chan struct{}
}

func (s *overlapStore) PutOutbox(ctx context.Context, queue string, item chat.OutboxItem) error {
	switch s.calls.Add(1) {
	case 1:
		select {
		case <-s.overlap:
		case <-time.After(10 * time.Second):
			s.t.Error("the first outbox write was still alone after 10 s: events are written one at a time")
		}
	case 2:
		close(s.overlap)
	}
	return s.Store.PutOutbox(ctx, queue, item)
}

// Queued events are written to the outbox by several writers at once, so
// that their durable writes share commits instead of queueing behind each
// other; every event still lands once.
func TestEventsWrittenAtOnce(t *testing.T) {
	ctx := context.Background()
	st := shopStore(t)
	ost := &overlapStore{Store: st, t: t, overlap: make(chan struct{})}
	o := fastOptions(ost)
	o.Poll = time.Hour // keep the items in the outbox: nothing is delivered
	s := New(o)
	if _, err := s.Subscribe(ctx, "shop", "http://127.0.0.1:9/hook", "", []chat.EventType{chat.EventConversationCreated}); err != nil {
		t.Fatal(err)
	}
	s.Start(ctx)
	defer s.Stop()
	for range 2 {
		s.Emit(ctx, event(chat.EventConversationCreated))
	}
	waitFor(t, "both events in the outbox", func() bool {
		items, _ := st.OutboxItems(ctx, liveQueue, 0)
		return len(items) == 2
	})
}
