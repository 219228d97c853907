// Package webhook delivers a site's domain events to the URLs it
// subscribed, signed with HMAC-SHA256, from a durable outbox in the Store:
// deliveries survive restarts, are retried with exponential backoff and
// jitter for up to a day, and then wait in a dead-letter list until an admin
// redelivers them. Emitting never blocks chat.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifelinehq/lifeline/chat"
)

// Options configures a Service. A zero field means its default.
type Options struct {
	// Store holds subscriptions and the outbox. Required.
	Store  chat.Store
	Logger *slog.Logger
	// AllowHosts are hosts (names or literal addresses, as written in the
	// URL) that deliveries may reach even though they are loopback,
	// private or link-local. Empty by default: only public addresses.
	AllowHosts []string
	// Workers is how many deliveries run at once. Defaults to 16: a
	// receiver that hangs holds one for up to Timeout per delivery, and
	// with four, four such deliveries held up every site's webhooks.
	Workers int
	// ReceiverLimit is how many deliveries to one subscription run at
	// once on a node. Defaults to a quarter of Workers (at least one), so
	// a hanging receiver holds no more than a quarter of the pool.
	ReceiverLimit int
	// TripAfter is how many failed attempts in a row pause a
	// subscription's deliveries. Defaults to ReceiverLimit, so that a
	// receiver that hangs is paused once its first deliveries time out.
	TripAfter int
	// Pause is how long the first pause lasts; it doubles, up to
	// MaxBackoff, while the attempts after each pause fail too. Defaults
	// to 30 s.
	Pause time.Duration
	// QueueLen is how many events wait to be written to the outbox before
	// new ones are dropped (and counted). Defaults to 4096.
	QueueLen int
	// Timeout bounds one delivery, connection included. Defaults to 10 s.
	Timeout time.Duration
	// MaxResponse is how much of a response body is read. Defaults to 64 KiB.
	MaxResponse int64
	// MaxAge is how long a delivery is retried before it is dead. Defaults
	// to 24 h.
	MaxAge time.Duration
	// BaseBackoff is the first retry delay, doubled per attempt with
	// jitter, up to MaxBackoff. Defaults to 10 s and 1 h.
	BaseBackoff, MaxBackoff time.Duration
	// Poll is how often the outbox is checked for due retries. Defaults
	// to 1 s.
	Poll time.Duration
	// Registerer receives the delivery metrics. Nil skips them.
	Registerer prometheus.Registerer
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Service manages subscriptions and delivers events. It implements
// chat.Emitter.
type Service struct {
	o      Options
	allow  allowList
	client *http.Client

	events  chan chat.Event
	kick    chan struct{}
	acks    chan string // delivered, to delete from the outbox
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started atomic.Bool
	stopped atomic.Bool

	subsMu sync.Mutex
	subs   map[string]cached[[]Subscription] // by site

	healthMu sync.Mutex
	health   map[string]cached[*Health] // by subscription

	// active is false once a check found no site with a subscription:
	// Emit then drops events at once, so a node without webhooks pays
	// nothing per message. It starts true (not yet known); a subscription
	// made on this node sets it at once, and watchActive sees those made
	// on other nodes within subsCacheTTL. activeMu orders the two, and
	// subsGen counts this node's subscription changes.
	active   atomic.Bool
	activeMu sync.Mutex
	subsGen  uint64

	delivered, retried, dead, dropped, deferred, paused prometheus.Counter
}

// cached is a value read from the store, and when.
type cached[T any] struct {
	v  T
	at time.Time
}

var _ chat.Emitter = (*Service)(nil)

// Queue names in the Store's outbox.
const (
	liveQueue = "webhook"
	deadQueue = "webhook.dead"
)

// New returns a Service; Start begins delivery.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.ReceiverLimit <= 0 {
		o.ReceiverLimit = max(o.Workers/4, 1)
	}
	if o.TripAfter <= 0 {
		o.TripAfter = o.ReceiverLimit
	}
	if o.Pause <= 0 {
		o.Pause = 30 * time.Second
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 4096
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxResponse <= 0 {
		o.MaxResponse = 64 << 10
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 10 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Hour
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{
		o: o, allow: newAllowList(o.AllowHosts),
		events: make(chan chat.Event, o.QueueLen), kick: make(chan struct{}, 1),
		subs: map[string]cached[[]Subscription]{}, health: map[string]cached[*Health]{},
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeline_webhook_delivered_total", Help: "Webhook deliveries answered 2xx."}),
		retried:   prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeline_webhook_retries_total", Help: "Webhook delivery attempts that failed and were rescheduled."}),
		dead:      prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeline_webhook_dead_total", Help: "Webhook deliveries moved to the dead-letter list."}),
		dropped:   prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeline_webhook_dropped_total", Help: "Events dropped because the webhook queue was full."}),
		deferred:  prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeline_webhook_deferred_total", Help: "Webhook deliveries put back in the outbox unattempted: their receiver was paused or busy, or the node was stopping."}),
		paused:    prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeline_webhook_paused_total", Help: "Times a webhook receiver's deliveries were paused after failures in a row."}),
	}
	s.active.Store(true)
	s.client = newClient(s.allow, o.Timeout, 3)
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.delivered, s.retried, s.dead, s.dropped, s.deferred, s.paused)
	}
	return s
}

// Subscription is one URL subscribed to some of a site's events.
type Subscription struct {
	ID      string           `json:"id"`
	Site    string           `json:"site"`
	URL     string           `json:"url"`
	Secret  string           `json:"secret"`
	Events  []chat.EventType `json:"events"`
	Created time.Time        `json:"created_at"`
}

func subsKey(site string) string { return "webhooks/" + site }

// Subscriptions returns a site's subscriptions.
func (s *Service) Subscriptions(ctx context.Context, site string) ([]Subscription, error) {
	list := []Subscription{}
	if _, err := chat.MetaJSON(ctx, s.o.Store, subsKey(site), &list); err != nil {
		return nil, err
	}
	return list, nil
}

// Listed is a subscription as the admins see it: with its Health while
// its deliveries are paused.
type Listed struct {
	Subscription
	Health *Health `json:"health,omitempty"`
}

// List returns a site's subscriptions with their health.
func (s *Service) List(ctx context.Context, site string) ([]Listed, error) {
	subs, err := s.Subscriptions(ctx, site)
	if err != nil {
		return nil, err
	}
	out := make([]Listed, len(subs))
	for i, sub := range subs {
		out[i].Subscription = sub
		if out[i].Health, err = s.readHealth(ctx, sub.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// maxSubscriptions bounds a site's subscriptions.
const maxSubscriptions = 20

// Subscribe adds a subscription. An empty secret gets a random one; empty
// events means all. chat.ErrInvalid for a bad URL, a blocked address or an
// unknown event type; chat.ErrNotFound for an unknown site.
func (s *Service) Subscribe(ctx context.Context, site, url, secret string, events []chat.EventType) (Subscription, error) {
	if err := s.allow.checkURL(url); err != nil {
		return Subscription{}, fmt.Errorf("%w: %w", chat.ErrInvalid, err)
	}
	if len(events) == 0 {
		events = slices.Clone(chat.EventTypes)
	}
	for _, e := range events {
		if !e.Valid() {
			return Subscription{}, fmt.Errorf("unknown event type %q: %w", e, chat.ErrInvalid)
		}
	}
	if _, err := s.o.Store.Site(ctx, site); err != nil {
		return Subscription{}, err
	}
	if secret == "" {
		b := make([]byte, 24)
		_, _ = crand.Read(b)
		secret = "whsec_" + hex.EncodeToString(b)
	}
	sub := Subscription{ID: "wh_" + uuid.NewString(), Site: site, URL: url, Secret: secret, Events: events, Created: s.o.Now().UTC()}
	// Meta has no compare-and-swap; admins edit subscriptions rarely.
	list, err := s.Subscriptions(ctx, site)
	if err != nil {
		return Subscription{}, err
	}
	if len(list) >= maxSubscriptions {
		return Subscription{}, fmt.Errorf("a site has at most %d webhooks: %w", maxSubscriptions, chat.ErrInvalid)
	}
	list = append(list, sub)
	if err := s.saveSubs(ctx, site, list); err != nil {
		return Subscription{}, err
	}
	return sub, nil
}

// Unsubscribe removes a subscription, or returns chat.ErrNotFound.
func (s *Service) Unsubscribe(ctx context.Context, site, id string) error {
	list, err := s.Subscriptions(ctx, site)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(x Subscription) bool { return x.ID == id })
	if i < 0 {
		return fmt.Errorf("webhook %s: %w", id, chat.ErrNotFound)
	}
	if err := s.saveSubs(ctx, site, slices.Delete(list, i, i+1)); err != nil {
		return err
	}
	s.healthMu.Lock()
	delete(s.health, id)
	s.healthMu.Unlock()
	return s.o.Store.DeleteMeta(ctx, healthKey(id))
}

func (s *Service) saveSubs(ctx context.Context, site string, list []Subscription) error {
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := s.o.Store.PutMeta(ctx, subsKey(site), data); err != nil {
		return err
	}
	s.subsMu.Lock()
	delete(s.subs, site)
	s.subsMu.Unlock()
	s.activeMu.Lock()
	s.subsGen++
	if len(list) > 0 {
		s.active.Store(true)
	}
	s.activeMu.Unlock()
	return nil
}

// watchActive runs checkActive now and every subsCacheTTL until ctx ends.
func (s *Service) watchActive(ctx context.Context) {
	t := time.NewTicker(subsCacheTTL)
	defer t.Stop()
	for {
		s.checkActive(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maxActiveSites is the most sites checkActive reads one by one every
// subsCacheTTL; with more, a node queues every event as if some site had
// a subscription, and enqueue sorts them out.
const maxActiveSites = 1000

// checkActive sets active to whether any site has a subscription, reading
// sites until it finds one. A site it cannot read counts as having one,
// and so does a change made on this node meanwhile.
func (s *Service) checkActive(ctx context.Context) {
	s.activeMu.Lock()
	gen := s.subsGen
	s.activeMu.Unlock()
	found := false
	sites, err := s.o.Store.Sites(ctx)
	if err != nil && ctx.Err() == nil {
		s.o.Logger.Warn("webhook sites", "err", err)
	}
	if err != nil || len(sites) > maxActiveSites {
		found = true
	}
	for i := 0; i < len(sites) && !found; i++ {
		list, err := s.Subscriptions(ctx, sites[i].Key)
		found = err != nil || len(list) > 0
	}
	s.activeMu.Lock()
	s.active.Store(found || s.subsGen != gen)
	s.activeMu.Unlock()
}

// subsCacheTTL is how long a node uses its copy of a site's subscriptions.
const subsCacheTTL = 5 * time.Second

func (s *Service) cachedSubscriptions(ctx context.Context, site string) ([]Subscription, error) {
	now := s.o.Now()
	s.subsMu.Lock()
	c, ok := s.subs[site]
	s.subsMu.Unlock()
	if ok && now.Sub(c.at) < subsCacheTTL {
		return c.v, nil
	}
	list, err := s.Subscriptions(ctx, site)
	if err != nil {
		return nil, err
	}
	s.subsMu.Lock()
	s.subs[site] = cached[[]Subscription]{v: list, at: now}
	s.subsMu.Unlock()
	return list, nil
}

// Emit queues e for delivery without blocking; when the queue is full the
// event is dropped and counted. While no site has a subscription it drops
// e at once.
func (s *Service) Emit(_ context.Context, e chat.Event) {
	if s.stopped.Load() || !s.active.Load() {
		return
	}
	select {
	case s.events <- e:
	default:
		s.dropped.Inc()
		s.o.Logger.Warn("webhook queue full: event dropped", "type", e.Type, "site", e.SiteKey)
	}
}

// enqueuers is how many goroutines write queued events to the outbox. Each
// write waits for a durable commit: written one at a time they kept up
// with about 1,200 events a second on the embedded store, so a site
// subscribed to message.created on a busy node filled the queue and lost
// events. Written together they share the store's group commits
// (BenchmarkEnqueue).
const enqueuers = 64

// Start runs the outbox writers, the dispatcher and the workers until Stop.
func (s *Service) Start(ctx context.Context) {
	if !s.started.CompareAndSwap(false, true) {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	jobs := make(chan job)
	// Each worker reports at most one job the dispatcher has not read
	// yet, so none ever waits to report, even after the dispatcher ended.
	done := make(chan result, s.o.Workers)
	for range enqueuers {
		s.wg.Go(func() { s.enqueueLoop(ctx) })
	}
	s.wg.Go(func() { s.watchActive(ctx) })
	s.wg.Go(func() { s.dispatchLoop(ctx, jobs, done) })
	s.acks = make(chan string, ackQueue)
	var workers sync.WaitGroup
	for range s.o.Workers {
		workers.Go(func() {
			for j := range jobs {
				out, err := s.attempt(ctx, j)
				done <- result{sub: j.d.SubID, out: out, err: err}
			}
		})
	}
	s.wg.Go(func() {
		workers.Wait()
		close(s.acks)
	})
	for range ackers {
		s.wg.Go(func() {
			for id := range s.acks {
				s.ack(context.WithoutCancel(ctx), id)
			}
		})
	}
}

// Stop ends delivery and waits for the goroutines. Events still queued in
// memory are written to the outbox first (with a short deadline), and
// claimed deliveries not yet done are handed back, due at once, so the next
// start sends them without waiting out their lease (which only a crash
// needs).
func (s *Service) Stop() {
	if !s.stopped.CompareAndSwap(false, true) || s.cancel == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
}

// enqueueLoop writes queued events to the outbox until ctx ends, then
// what is still queued. Start runs enqueuers of them.
func (s *Service) enqueueLoop(ctx context.Context) {
	for {
		select {
		case e := <-s.events:
			s.enqueue(ctx, e)
		case <-ctx.Done():
			// Drain what is queued so that it survives the restart.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			for {
				select {
				case e := <-s.events:
					s.enqueue(dctx, e)
				default:
					return
				}
			}
		}
	}
}

// delivery is an outbox item's data.
type delivery struct {
	Site      string         `json:"site"`
	SubID     string         `json:"sub"`
	Event     chat.EventType `json:"event"`
	VisitorID string         `json:"visitor,omitempty"`
	Body      []byte         `json:"body"`
	Attempts  int            `json:"attempts"`
	First     time.Time      `json:"first"`
	LastError string         `json:"last_error,omitempty"`
	LastAt    time.Time      `json:"last_at,omitzero"`
	// Manual marks an admin's redelivery: its first attempt is made even
	// while the receiver's deliveries are paused.
	Manual bool `json:"manual,omitempty"`
}

// enqueue writes one outbox item per subscription that wants e. A message
// event from Tap comes without its site and visitor: they are read from
// the conversation here rather than on the chat write path.
func (s *Service) enqueue(ctx context.Context, e chat.Event) {
	if e.SiteKey == "" && e.Message != nil {
		c, err := s.o.Store.Conversation(ctx, e.Message.ConversationID)
		if err != nil {
			s.o.Logger.Warn("webhook message conversation", "conversation", e.Message.ConversationID, "err", err)
			return
		}
		e.SiteKey, e.VisitorID = c.SiteKey, c.VisitorID
	}
	subs, err := s.cachedSubscriptions(ctx, e.SiteKey)
	if err != nil {
		s.o.Logger.Warn("webhook subscriptions", "site", e.SiteKey, "err", err)
		return
	}
	var body []byte
	any := false
	for _, sub := range subs {
		if !slices.Contains(sub.Events, e.Type) {
			continue
		}
		if body == nil {
			if body, err = Payload(e); err != nil {
				s.o.Logger.Error("webhook payload", "type", e.Type, "err", err)
				return
			}
		}
		now := s.o.Now()
		d := delivery{Site: e.SiteKey, SubID: sub.ID, Event: e.Type, VisitorID: e.VisitorID, Body: body, First: now}
		data, _ := json.Marshal(d)
		if err := s.o.Store.PutOutbox(ctx, liveQueue, chat.OutboxItem{ID: "dlv_" + uuid.NewString(), Due: now, Data: data}); err != nil {
			s.o.Logger.Warn("webhook outbox", "site", e.SiteKey, "err", err)
			continue
		}
		any = true
	}
	if any {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// release hands a claimed delivery back to the outbox, due now.
func (s *Service) release(it chat.OutboxItem) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	it.Due = s.o.Now()
	if err := s.o.Store.PutOutbox(ctx, liveQueue, it); err != nil {
		s.o.Logger.Warn("webhook release", "delivery", it.ID, "err", err)
	}
}

// attempt makes one delivery attempt and records its outcome; a failed
// one comes with its error.
func (s *Service) attempt(ctx context.Context, j job) (outcome, error) {
	it, d := j.it, j.d
	subs, err := s.cachedSubscriptions(ctx, d.Site)
	if err != nil {
		if ctx.Err() != nil {
			s.release(it)
		}
		return notSent, nil // else the lease brings it back
	}
	i := slices.IndexFunc(subs, func(x Subscription) bool { return x.ID == d.SubID })
	if i < 0 {
		_ = s.o.Store.DeleteOutbox(ctx, liveQueue, it.ID) // unsubscribed
		return notSent, nil
	}
	err = s.send(ctx, subs[i], it.ID, d.Event, d.Body)
	if err != nil && ctx.Err() != nil {
		s.release(it) // stopping: hand it back for the next start
		return notSent, nil
	}
	now := s.o.Now()
	if err == nil { // delivered, even if the node is stopping now
		s.delivered.Inc()
		select {
		case s.acks <- it.ID:
		default:
			s.ack(ctx, it.ID)
		}
		return delivered, nil
	}
	d.Attempts++
	d.LastError, d.LastAt, d.Manual = err.Error(), now, false
	if now.Sub(d.First) >= s.o.MaxAge {
		s.bury(ctx, it.ID, d, now)
		return failed, err
	}
	s.retried.Inc()
	data, _ := json.Marshal(d)
	next := now.Add(s.backoff(d.Attempts))
	if err := s.o.Store.PutOutbox(ctx, liveQueue, chat.OutboxItem{ID: it.ID, Due: next, Data: data}); err != nil {
		s.o.Logger.Warn("webhook reschedule", "delivery", it.ID, "err", err)
	}
	return failed, err
}

// Deliveries answered 2xx are deleted from the outbox by ackers, up to
// ackQueue waiting, so that a worker (and its receiver's share) is free
// as soon as the answer is in rather than after a durable write. Until
// the delete, the claim's lease keeps the delivery from being sent again;
// a crash in between sends it again after the lease, as delivery is at
// least once anyway.
const (
	ackers   = 16
	ackQueue = 1024
)

// ack deletes a delivered delivery from the outbox.
func (s *Service) ack(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.o.Store.DeleteOutbox(ctx, liveQueue, id); err != nil {
		s.o.Logger.Warn("webhook ack", "delivery", id, "err", err)
	}
}

// bury moves a delivery past its MaxAge to the dead-letter list.
func (s *Service) bury(ctx context.Context, id string, d delivery, now time.Time) {
	s.dead.Inc()
	s.o.Logger.Warn("webhook delivery dead", "delivery", id, "site", d.Site, "attempts", d.Attempts, "err", d.LastError)
	data, _ := json.Marshal(d)
	if err := s.o.Store.PutOutbox(ctx, deadQueue, chat.OutboxItem{ID: id, Due: now, Data: data}); err != nil {
		return
	}
	_ = s.o.Store.DeleteOutbox(ctx, liveQueue, id)
}

// backoff is BaseBackoff·2^(attempt-1), capped at MaxBackoff, with the
// upper half jittered so that retries of many deliveries spread out.
func (s *Service) backoff(attempt int) time.Duration {
	d := s.o.MaxBackoff
	if attempt < 30 {
		d = min(s.o.BaseBackoff<<(attempt-1), s.o.MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// send posts one signed delivery; nil means a 2xx answer.
func (s *Service) send(ctx context.Context, sub Subscription, id string, typ chat.EventType, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	SignRequest(req, sub.Secret, "Lifeline-Webhooks/1", string(typ), id, body, s.o.Now())
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, s.o.MaxResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// Headers of a signed request, an event delivery or an assist action: the
// signature is Sign's "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." +
// body)), the timestamp in Unix seconds; receivers can check it with Verify.
const (
	HeaderSignature = "X-Lifeline-Signature"
	HeaderTimestamp = "X-Lifeline-Timestamp"
	HeaderDelivery  = "X-Lifeline-Delivery"
	HeaderEvent     = "X-Lifeline-Event"
)

// SignRequest sets the headers of a signed JSON request: content type,
// user agent, event, delivery ID, the timestamp of now and the signature
// of body with secret.
func SignRequest(req *http.Request, secret, userAgent, event, delivery string, body []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderEvent, event)
	req.Header.Set(HeaderDelivery, delivery)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
}

// Sign returns the X-Lifeline-Signature value:
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's signature and that its timestamp is within
// tolerance of now, as a receiver would.
func Verify(secret, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return false
	}
	return hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body)))
}

// DeadDelivery is a delivery that failed for MaxAge.
type DeadDelivery struct {
	ID           string          `json:"id"`
	Site         string          `json:"site"`
	Subscription string          `json:"subscription"`
	Event        chat.EventType  `json:"event"`
	Attempts     int             `json:"attempts"`
	FirstAt      time.Time       `json:"first_attempt_at"`
	DiedAt       time.Time       `json:"died_at"`
	LastError    string          `json:"last_error"`
	Body         json.RawMessage `json:"body"`
}

// maxDeadScan bounds the dead-letter list read at once.
const maxDeadScan = 10_000

// Dead lists a site's dead deliveries, oldest first.
func (s *Service) Dead(ctx context.Context, site string, limit int) ([]DeadDelivery, error) {
	items, err := s.o.Store.OutboxItems(ctx, deadQueue, maxDeadScan)
	if err != nil {
		return nil, err
	}
	out := []DeadDelivery{}
	for _, it := range items {
		var d delivery
		if json.Unmarshal(it.Data, &d) != nil || d.Site != site {
			continue
		}
		out = append(out, DeadDelivery{ID: it.ID, Site: d.Site, Subscription: d.SubID, Event: d.Event, Attempts: d.Attempts,
			FirstAt: d.First, DiedAt: it.Due, LastError: d.LastError, Body: d.Body})
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// Redeliver moves a dead delivery of site back to the outbox, due now,
// with a fresh retry budget; it is tried even while its receiver's
// deliveries are paused. chat.ErrNotFound if there is none.
func (s *Service) Redeliver(ctx context.Context, site, id string) error {
	n, err := s.redeliver(ctx, site, func(it chat.OutboxItem) bool { return it.ID == id })
	if err == nil && n == 0 {
		err = fmt.Errorf("dead delivery %s: %w", id, chat.ErrNotFound)
	}
	return err
}

// RedeliverAll moves every dead delivery of site back to the outbox, as
// Redeliver does, and returns how many. Only the first of each
// subscription is tried during a pause: if it succeeds the pause ends and
// the rest follow, and if not they wait it out rather than all failing
// again.
func (s *Service) RedeliverAll(ctx context.Context, site string) (int, error) {
	return s.redeliver(ctx, site, func(chat.OutboxItem) bool { return true })
}

// redeliver moves the dead deliveries of site that match back to the
// outbox, marking the first of each subscription Manual.
func (s *Service) redeliver(ctx context.Context, site string, match func(chat.OutboxItem) bool) (int, error) {
	items, err := s.o.Store.OutboxItems(ctx, deadQueue, maxDeadScan)
	if err != nil {
		return 0, err
	}
	probed := map[string]bool{}
	n := 0
	for _, it := range items {
		var d delivery
		if !match(it) || json.Unmarshal(it.Data, &d) != nil || d.Site != site {
			continue
		}
		now := s.o.Now()
		d.Attempts, d.First, d.Manual = 0, now, !probed[d.SubID]
		probed[d.SubID] = true
		data, _ := json.Marshal(d)
		if err := s.o.Store.PutOutbox(ctx, liveQueue, chat.OutboxItem{ID: it.ID, Due: now, Data: data}); err != nil {
			return n, err
		}
		if err := s.o.Store.DeleteOutbox(ctx, deadQueue, it.ID); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return n, nil
}

// ForgetVisitor deletes queued and dead deliveries about a visitor, for
// erasure.
func (s *Service) ForgetVisitor(ctx context.Context, _, visitorID string) error {
	for _, q := range []string{liveQueue, deadQueue} {
		items, err := s.o.Store.OutboxItems(ctx, q, maxDeadScan)
		if err != nil {
			return err
		}
		for _, it := range items {
			var d delivery
			if json.Unmarshal(it.Data, &d) == nil && d.VisitorID == visitorID {
				if err := s.o.Store.DeleteOutbox(ctx, q, it.ID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
