package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Hub. A zero field means its default.
type Config struct {
	// Store holds everything durable. Required.
	Store Store
	// Broker carries live traffic between nodes. Defaults to a new MemoryBroker.
	Broker Broker
	// Secret signs visitor tokens. Required; every node must share it.
	Secret []byte
	// Logger receives the hub's logs. Nil discards them.
	Logger *slog.Logger
	// Metrics receives measurements. Nil discards them.
	Metrics Metrics
	// Detector sees behaviour events and offer answers. Nil disables
	// struggle detection.
	Detector Detector
	// Audit records agents' actions on conversations. Nil records nothing.
	Audit Auditor
	// Node names this node in presence entries. Defaults to "local".
	Node string
	// SendQueue is the number of live frames buffered per socket before
	// the client is closed as too slow, if its write has been blocked for
	// a second; 16 times as many close it anyway (see client.send).
	// Defaults to 256.
	SendQueue int
	// WriteTimeout bounds the write of the frames queued for a socket
	// (one batch, at most SendQueue frames). Defaults to 10 s.
	WriteTimeout time.Duration
	// IdleTimeout closes sockets that sent nothing for this long. Defaults to 75 s.
	IdleTimeout time.Duration
	// FrameRate is the sustained frames per second allowed per socket.
	// Defaults to 20.
	FrameRate float64
	// FrameBurst is the burst of frames allowed per socket. Defaults to 60.
	FrameBurst int
	// PresenceTTL is how long an agent stays present without a refresh.
	// Defaults to 30 s; the hub refreshes at a third of it.
	PresenceTTL time.Duration
	// RouteInterval is how often the router re-checks the queue even
	// without a local change (other nodes, expired presence). Defaults to 2 s.
	RouteInterval time.Duration
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Broker == nil {
		c.Broker = NewMemoryBroker()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Metrics == nil {
		c.Metrics = nopMetrics{}
	}
	if c.Node == "" {
		c.Node = "local"
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 75 * time.Second
	}
	if c.FrameRate <= 0 {
		c.FrameRate = 20
	}
	if c.FrameBurst <= 0 {
		c.FrameBurst = 60
	}
	if c.PresenceTTL <= 0 {
		c.PresenceTTL = 30 * time.Second
	}
	if c.RouteInterval <= 0 {
		c.RouteInterval = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Metrics receives the hub's measurements; internal/metrics implements it
// with Prometheus.
type Metrics interface {
	ConnOpened(kind string)
	ConnClosed(kind string)
	Frame(kind, typ string)
	MessageStored(ackLatency time.Duration)
	ErrorSent(code string)
	QueueLength(n int)
	SlowConsumer()
}

type nopMetrics struct{}

func (nopMetrics) ConnOpened(string)           {}
func (nopMetrics) ConnClosed(string)           {}
func (nopMetrics) Frame(string, string)        {}
func (nopMetrics) MessageStored(time.Duration) {}
func (nopMetrics) ErrorSent(string)            {}
func (nopMetrics) QueueLength(int)             {}
func (nopMetrics) SlowConsumer()               {}

// Hub connects visitors and agents on one node. Create it with NewHub, call
// Start, serve sockets with ServeVisitor and ServeAgent, and call Shutdown.
type Hub struct {
	cfg      Config
	store    Store
	broker   Broker
	values   valueBroker // broker, when it carries values (MemoryBroker)
	log      *slog.Logger
	metrics  Metrics
	detector Detector
	now      func() time.Time

	ctx     context.Context // cancelled by Shutdown
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closing atomic.Bool
	kick    chan struct{} // wakes the router
	resync  chan struct{} // wakes the resync loop

	mu       sync.Mutex
	clients  map[*client]struct{}
	rooms    map[string]*room
	visitors map[string]*visitorGroup // visitor id → local sockets
	agents   map[string]*agentGroup   // agent id → local sockets
	unsubs   []func()

	handle  handleStats // recent handling times for the wait estimate
	workers workers     // run sockets' frames; see ServeVisitor
	marks   readMarks   // read marks waiting for markLoop
}

// NewHub returns a hub; it does nothing until Start.
func NewHub(cfg Config) (*Hub, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("new hub: %w: a Store is required", ErrInvalid)
	}
	if len(cfg.Secret) < 16 {
		return nil, fmt.Errorf("new hub: %w: the token secret must be at least 16 bytes", ErrInvalid)
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	values, _ := cfg.Broker.(valueBroker)
	return &Hub{
		cfg: cfg, store: cfg.Store, broker: cfg.Broker, values: values, log: cfg.Logger, metrics: cfg.Metrics, detector: cfg.Detector, now: cfg.Now,
		ctx: ctx, cancel: cancel, kick: make(chan struct{}, 1), resync: make(chan struct{}, 1),
		clients: make(map[*client]struct{}), rooms: make(map[string]*room),
		visitors: make(map[string]*visitorGroup), agents: make(map[string]*agentGroup),
	}, nil
}

// resubscriber is a Broker that reports when it re-established its
// subscriptions after losing them, as internal/redis.Broker does after a
// Redis restart. Whatever was published meanwhile is lost.
type resubscriber interface {
	OnResubscribe(f func())
}

// Start subscribes to the node-wide topics and starts the router, the
// housekeeping loop and, with a broker that reports resubscriptions, Resync
// after each one.
func (h *Hub) Start(ctx context.Context) error {
	for _, topic := range []string{queueTopic, presenceTopic} {
		cancel, err := h.broker.Subscribe(ctx, topic, h.onNodeEvent)
		if err != nil {
			return fmt.Errorf("start hub: subscribe %s: %w", topic, err)
		}
		h.unsubs = append(h.unsubs, cancel)
	}
	if r, ok := h.broker.(resubscriber); ok {
		r.OnResubscribe(h.Resync)
	}
	h.wg.Go(h.routeLoop)
	h.wg.Go(h.houseLoop)
	h.wg.Go(h.resyncLoop)
	h.wg.Go(h.markLoop)
	h.route()
	return nil
}

// Shutdown closes every socket with 1012 (service restart) so clients
// reconnect, possibly to another node, then waits for the hub's goroutines
// or ctx. Messages being stored when it is called finish storing first.
// It is idempotent.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if !h.closing.CompareAndSwap(false, true) {
		h.mu.Unlock()
		return nil
	}
	clients := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	unsubs := h.unsubs
	h.unsubs = nil
	h.mu.Unlock()
	for _, c := range clients {
		c.close(CloseServiceRestart, "server restarting: reconnect")
	}
	h.cancel()
	for _, u := range unsubs {
		u()
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); h.workers.stop(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("hub shutdown: %w", ctx.Err())
	}
}

// Stats is a snapshot of the hub's local state.
type Stats struct {
	Visitors int // open visitor sockets
	Agents   int // open agent sockets
	Rooms    int // conversations with local subscribers
}

// Stats returns counts of local sockets and rooms.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s Stats
	for c := range h.clients {
		if c.kind == kindAgent {
			s.Agents++
		} else {
			s.Visitors++
		}
	}
	s.Rooms = len(h.rooms)
	return s
}

// spawn runs fn on a goroutine Shutdown waits for, unless shutting down.
func (h *Hub) spawn(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing.Load() {
		return
	}
	h.wg.Go(fn)
}

// register records a new socket; its serving goroutine counts in h.wg so
// Shutdown waits for frames being handled (durable writes) to finish.
func (h *Hub) register(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing.Load() {
		return false
	}
	h.wg.Add(1)
	h.clients[c] = struct{}{}
	h.metrics.ConnOpened(c.kind.String())
	return true
}

// unregister detaches a closed client from everything it joined.
func (h *Hub) unregister(c *client) {
	c.close(CloseNormal, "")
	c.mu.Lock()
	convs := make([]string, 0, len(c.rooms))
	for id := range c.rooms {
		convs = append(convs, id)
	}
	c.mu.Unlock()
	for _, id := range convs {
		h.detach(c, id)
	}
	defer h.wg.Done()
	h.mu.Lock()
	delete(h.clients, c)
	var lastAgent bool
	var vg *visitorGroup
	if c.helloed {
		switch c.kind {
		case kindAgent:
			if g := h.agents[c.agent.ID]; g != nil {
				delete(g.clients, c)
				if len(g.clients) == 0 {
					delete(h.agents, c.agent.ID)
					lastAgent = true
				}
			}
		case kindVisitor:
			if g := h.visitors[c.visitor]; g != nil {
				delete(g.clients, c)
				if len(g.clients) == 0 {
					delete(h.visitors, c.visitor)
					vg = g
				}
			}
		}
	}
	h.mu.Unlock()
	h.metrics.ConnClosed(c.kind.String())
	if vg != nil {
		if vg.cancel != nil {
			vg.cancel()
		}
		if h.detector != nil {
			h.detector.VisitorGone(c.ref())
		}
	}
	if lastAgent {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.broker.RemovePresence(ctx, agentsSet, c.agent.ID); err != nil {
			h.log.Warn("remove agent presence", "agent", c.agent.ID, "err", err)
		}
		h.publishPresence(ctx, nil)
		h.kickRouter()
	}
}

// houseLoop closes idle sockets, refreshes local agents' presence and
// joins them to conversations whose assignment they missed.
func (h *Hub) houseLoop() {
	tick := time.NewTicker(h.cfg.PresenceTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
		}
		now := h.now()
		idle := now.Add(-h.cfg.IdleTimeout).UnixNano()
		h.mu.Lock()
		var stale []*client
		for c := range h.clients {
			if c.lastActive.Load() < idle {
				stale = append(stale, c)
			}
		}
		h.mu.Unlock()
		for _, c := range stale {
			c.close(CloseGoingAway, "idle timeout")
		}
		h.refreshAllPresence(h.ctx)
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.PresenceTTL/3)
		h.attachAssigned(ctx, false)
		cancel()
	}
}

// valueBroker is a Broker that can carry an event as a value to
// subscribers in this process: see MemoryBroker.PublishValue.
type valueBroker interface {
	PublishValue(ctx context.Context, topic string, v any, encode func() []byte) error
	SubscribeValue(ctx context.Context, topic string, h func(payload []byte, v any)) (func(), error)
}

// subscribe calls f with each event on topic: the publisher's own value
// when the broker carries it, else decoded from the payload.
func (h *Hub) subscribe(ctx context.Context, topic string, f func(*event)) (func(), error) {
	if h.values != nil {
		return h.values.SubscribeValue(ctx, topic, func(p []byte, v any) {
			if ev, ok := v.(*event); ok {
				f(ev)
			} else {
				h.dispatch(p, f)
			}
		})
	}
	return h.broker.Subscribe(ctx, topic, func(p []byte) { h.dispatch(p, f) })
}

func (h *Hub) dispatch(payload []byte, f func(*event)) {
	if ev, ok := h.decodeEvent(payload); ok {
		f(&ev)
	}
}

// decodeEvent parses a broker payload.
func (h *Hub) decodeEvent(payload []byte) (event, bool) {
	// Straight to the method: json.Unmarshal would first scan the whole
	// payload to validate it, which the hand parser of message events does
	// as it goes (anything else is validated by encoding/json inside).
	var ev event
	if err := ev.UnmarshalJSON(payload); err != nil {
		h.log.Warn("bad broker event", "err", err)
		return ev, false
	}
	return ev, true
}

// Offer sends a proactive offer to every socket of a visitor, on any node.
// mode is "chat", or "message" when no agent can answer soon.
func (h *Hub) Offer(ctx context.Context, visitorID, offerID, text, mode string) {
	h.publish(ctx, &event{Kind: evOffer, Offer: &offerFrame{Type: TypeOffer, OfferID: offerID, Text: text, Mode: mode}}, visitorTopic(visitorID))
}

// storeErrCode turns a store error into an error frame code. Anything that
// is not a contract error means the store is unreachable or failing.
func storeErrCode(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrConflict):
		return CodeConflict
	case errors.Is(err, ErrCapacity):
		return CodeCapacity
	case errors.Is(err, ErrInvalid):
		return CodeInvalid
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrClosed):
		return CodeUnavailable
	}
	return CodeUnavailable
}
