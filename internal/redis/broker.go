package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/chat"
)

// BrokerOptions configures a Broker. The zero value is usable.
type BrokerOptions struct {
	// Prefix is put before every channel and key name, to isolate
	// deployments (and tests) sharing a server. Defaults to "lifeline:".
	Prefix string
	// Logger receives connection loss and recovery. If nil, logs are discarded.
	Logger *slog.Logger
}

// Broker is a chat.Broker on Redis pub/sub.
//
// Why pub/sub and not streams: the broker is a hint. The Store is the truth
// and every reader resynchronises from it by sequence number, so the
// broker needs low latency and no per-message storage, not replay; streams
// would add a write, memory and trimming per message and a consumer
// position per node for a guarantee nobody uses. With a *redis.ClusterClient
// the broker uses sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7): a message
// goes only to the shard owning its channel's slot instead of being
// broadcast over the cluster bus to every node, so fan-out scales with the
// number of shards. Otherwise it uses PUBLISH/SUBSCRIBE.
//
// A node holds one pub/sub connection (one per cluster master it needs,
// sharded channels being bound to their shard), multiplexing every topic
// with reference counts: the first Subscribe to a topic subscribes in
// Redis, the last cancel unsubscribes. One goroutine per connection reads
// it and hands messages to another that calls the topic's handlers in
// order, so a handler may itself Subscribe without deadlocking. When Redis restarts,
// go-redis reconnects and subscribes again; messages published meanwhile
// are lost, which readers repair from the Store.
//
// Presence entries live in a sorted set scored by expiry (Redis clock) and
// a hash of infos in one slot ({p:SET}); reads prune expired members. Both
// keys also expire as a whole after their longest-lived member, so a set
// nobody reads does not linger. (HEXPIRE would do this per field but needs
// Redis 7.4; Debian 12 ships 7.0.)
type Broker struct {
	rdb     redis.UniversalClient
	cluster *redis.ClusterClient // non-nil: sharded pub/sub
	prefix  string
	log     *slog.Logger

	ctx    context.Context // lifetime of the receive loops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	lanes  map[string]*lane  // by master address ("" without a cluster)
	topics map[string]*topic // by channel
	nextID uint64

	onResub []func()
}

var _ chat.Broker = (*Broker)(nil)

// lane is one pub/sub connection and the goroutine reading it.
type lane struct {
	addr    string
	ps      *redis.PubSub
	topics  int            // topics using this lane
	pending map[string]int // channel -> (un)subscribe acks still due
	// queue hands messages from the reading goroutine to the dispatching
	// one, so that a handler that subscribes (and so waits for a
	// confirmation the reader must see) does not deadlock the lane.
	queue chan *redis.Message
}

// laneQueue is how many messages a lane buffers for its handlers before
// the reader stops reading (and Redis buffers, up to its pubsub output
// limit, after which it drops the connection and the lane resubscribes).
const laneQueue = 1024

// topic is one subscribed channel and its handlers.
type topic struct {
	channel string
	lane    *lane
	subs    []*sub
	ready   chan struct{} // closed when Redis confirmed the subscription
	isReady bool
}

type sub struct {
	id uint64
	h  func([]byte)
}

// NewBroker returns a Broker using client, which may be a *redis.Client or
// a *redis.ClusterClient. The caller keeps ownership of client: Close does
// not close it.
func NewBroker(client redis.UniversalClient, opts BrokerOptions) *Broker {
	if opts.Prefix == "" {
		opts.Prefix = "lifeline:"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		rdb: client, prefix: opts.Prefix, log: opts.Logger,
		ctx: ctx, cancel: cancel,
		lanes: make(map[string]*lane), topics: make(map[string]*topic),
	}
	b.cluster, _ = client.(*redis.ClusterClient)
	return b
}

func (b *Broker) channel(topic string) string { return b.prefix + "t:" + topic }

// Publish sends payload to the topic's subscribers on every node.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return chat.ErrClosed
	}
	var err error
	if b.cluster != nil {
		err = b.cluster.SPublish(ctx, b.channel(topic), payload).Err()
	} else {
		err = b.rdb.Publish(ctx, b.channel(topic), payload).Err()
	}
	if err != nil {
		return fmt.Errorf("redis broker: publish to %s: %w", topic, err)
	}
	return nil
}

// Subscribe calls h with each payload published to topic from now on. It
// returns once Redis has confirmed the subscription, so a Publish that
// starts after it returns reaches h.
func (b *Broker) Subscribe(ctx context.Context, topicName string, h func([]byte)) (func(), error) {
	ch := b.channel(topicName)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, chat.ErrClosed
	}
	b.nextID++
	s := &sub{id: b.nextID, h: h}
	t := b.topics[ch]
	if t == nil {
		var err error
		if t, err = b.subscribeLocked(ctx, ch); err != nil {
			b.mu.Unlock()
			return nil, fmt.Errorf("redis broker: subscribe to %s: %w", topicName, err)
		}
	}
	t.subs = append(t.subs, s)
	ready := t.ready
	b.mu.Unlock()

	var once sync.Once
	cancel := func() { once.Do(func() { b.unsubscribe(ch, s) }) }
	select {
	case <-ready:
		return cancel, nil
	case <-ctx.Done():
		cancel()
		return nil, fmt.Errorf("redis broker: subscribe to %s: waiting for confirmation: %w", topicName, ctx.Err())
	case <-b.ctx.Done():
		cancel()
		return nil, fmt.Errorf("redis broker: subscribe to %s: %w", topicName, chat.ErrClosed)
	}
}

// subscribeLocked creates the topic for ch and sends the subscription on
// its lane. b.mu is held, so the confirmation cannot be processed before
// the topic is registered.
func (b *Broker) subscribeLocked(ctx context.Context, ch string) (*topic, error) {
	addr := ""
	if b.cluster != nil {
		node, err := b.cluster.MasterForKey(ctx, ch)
		if err != nil {
			return nil, fmt.Errorf("find shard: %w", err)
		}
		addr = node.Options().Addr
	}
	l, err := b.joinLaneLocked(ctx, addr, ch)
	if err != nil {
		return nil, err
	}
	t := &topic{channel: ch, lane: l, ready: make(chan struct{})}
	b.topics[ch] = t
	return t, nil
}

// joinLaneLocked subscribes ch on the lane for addr, opening the lane if
// needed, and counts the topic on it.
func (b *Broker) joinLaneLocked(ctx context.Context, addr, ch string) (*lane, error) {
	l := b.lanes[addr]
	fresh := l == nil
	if fresh {
		l = &lane{addr: addr, pending: make(map[string]int), queue: make(chan *redis.Message, laneQueue)}
		if b.cluster != nil {
			l.ps = b.cluster.SSubscribe(ctx) // connects on the first channel, to its shard
		} else {
			l.ps = b.rdb.Subscribe(ctx)
		}
	}
	l.pending[ch]++
	var err error
	if b.cluster != nil {
		err = l.ps.SSubscribe(ctx, ch)
	} else {
		err = l.ps.Subscribe(ctx, ch)
	}
	if err != nil {
		l.unpend(ch)
		// Forget the channel so a reconnect does not subscribe it.
		_ = b.unsubscribeLane(l, ch)
		if fresh {
			_ = l.ps.Close()
		}
		return nil, err
	}
	if fresh {
		b.lanes[addr] = l
		b.wg.Go(func() { b.receive(l) })
		b.wg.Go(func() {
			for m := range l.queue {
				b.dispatch(m)
			}
		})
	}
	l.topics++
	return l, nil
}

// leaveLaneLocked uncounts a topic from its lane; a shard lane left with
// no channels would reconnect to a random node, so it is closed and the
// next Subscribe opens a fresh one. It reports whether the lane is open.
func (b *Broker) leaveLaneLocked(l *lane) bool {
	l.topics--
	if l.topics == 0 && b.cluster != nil {
		delete(b.lanes, l.addr)
		_ = l.ps.Close()
		return false
	}
	return true
}

// rehome moves a topic whose shard dropped it (its slot moved to another
// master during resharding: Redis sends an unsolicited sunsubscribe) to
// the lane of the slot's new owner.
func (b *Broker) rehome(t *topic) {
	backoff := 50 * time.Millisecond
	for range 60 {
		b.cluster.ReloadState(b.ctx)
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
		b.mu.Lock()
		if b.closed || b.topics[t.channel] != t {
			b.mu.Unlock()
			return
		}
		node, err := b.cluster.MasterForKey(b.ctx, t.channel)
		if err != nil || node.Options().Addr == t.lane.addr {
			b.mu.Unlock()
			continue // the client's view of the slots is not updated yet
		}
		old := t.lane
		// Drop the channel from the old connection's set so its reconnects
		// do not try it; the node answers MOVED, which the lane ignores.
		_ = b.unsubscribeLane(old, t.channel)
		b.leaveLaneLocked(old)
		l, err := b.joinLaneLocked(b.ctx, node.Options().Addr, t.channel)
		if err != nil {
			b.mu.Unlock()
			b.log.Warn("redis broker: resubscribe after slot move", "channel", t.channel, "err", err)
			continue
		}
		t.lane = l
		b.mu.Unlock()
		b.log.Info("redis broker: channel moved shard", "channel", t.channel, "shard", l.addr)
		return
	}
	b.log.Error("redis broker: channel dropped by its shard and not resubscribed", "channel", t.channel)
}

func (b *Broker) unsubscribeLane(l *lane, ch string) error {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if b.cluster != nil {
		return l.ps.SUnsubscribe(ctx, ch)
	}
	return l.ps.Unsubscribe(ctx, ch)
}

// unsubscribe removes one handler; the last one of a topic unsubscribes
// in Redis, and the last topic of a shard's lane closes it.
func (b *Broker) unsubscribe(ch string, s *sub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[ch]
	if t == nil {
		return
	}
	i := slices.Index(t.subs, s)
	if i < 0 {
		return
	}
	t.subs = slices.Delete(t.subs, i, i+1)
	if len(t.subs) > 0 || b.closed {
		return
	}
	delete(b.topics, ch)
	l := t.lane
	if !b.leaveLaneLocked(l) {
		return
	}
	l.pending[ch]++
	if err := b.unsubscribeLane(l, ch); err != nil {
		// No acknowledgement will come: do not wait for one, or the next
		// Subscribe to ch would take it for its own and never be ready.
		// The channel is forgotten locally, so a reconnect drops it; until
		// then messages for it are ignored.
		l.unpend(ch)
		b.log.Warn("redis broker: unsubscribe", "channel", ch, "err", err)
	}
}

// receive reads one lane until its connection is closed, dispatching
// messages and subscription confirmations, and reconnecting with backoff
// while Redis is unreachable.
func (b *Broker) receive(l *lane) {
	defer close(l.queue)
	backoff := 50 * time.Millisecond
	down := false
	for {
		msg, err := l.ps.ReceiveTimeout(b.ctx, 30*time.Second)
		if err != nil {
			if b.ctx.Err() != nil || errors.Is(err, redis.ErrClosed) || b.laneClosed(l) {
				return
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				// Idle: a ping proves the connection is alive (or breaks it,
				// and go-redis reconnects on the next receive).
				if err := l.ps.Ping(b.ctx); err != nil && !down {
					b.log.Warn("redis broker: connection lost; reconnecting", "shard", l.addr, "err", err)
					down = true
				}
				continue
			}
			if !down {
				b.log.Warn("redis broker: connection lost; reconnecting", "shard", l.addr, "err", err)
				down = true
			}
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		if down {
			b.log.Info("redis broker: reconnected", "shard", l.addr)
			down = false
			b.mu.Lock()
			// Acknowledgements due on the lost connection never come; the
			// new one resubscribed every channel, and each subscribe
			// acknowledgement readies its topic.
			clear(l.pending)
			fs := slices.Clone(b.onResub)
			b.mu.Unlock()
			for _, f := range fs {
				f()
			}
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			b.confirm(l, m)
		case *redis.Message:
			select {
			case l.queue <- m:
			case <-b.ctx.Done():
				return
			}
		}
	}
}

func (b *Broker) laneClosed(l *lane) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed || b.lanes[l.addr] != l
}

// unpend takes back a pending acknowledgement on ch that will not come.
// The caller holds b.mu.
func (l *lane) unpend(ch string) {
	if l.pending[ch]--; l.pending[ch] <= 0 {
		delete(l.pending, ch)
	}
}

// confirm counts a (un)subscribe acknowledgement and marks the topic ready
// when its latest subscribe has been acknowledged.
func (b *Broker) confirm(l *lane, m *redis.Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := l.pending[m.Channel]
	if n > 1 {
		l.pending[m.Channel] = n - 1
		return
	}
	delete(l.pending, m.Channel)
	if m.Kind == "sunsubscribe" && n == 0 {
		// Unsolicited: the shard no longer owns the channel's slot.
		if t := b.topics[m.Channel]; t != nil && t.lane == l && !b.closed {
			b.wg.Go(func() { b.rehome(t) })
		}
		return
	}
	if m.Kind != "subscribe" && m.Kind != "ssubscribe" {
		return
	}
	if t := b.topics[m.Channel]; t != nil && t.lane == l && !t.isReady {
		t.isReady = true
		close(t.ready)
	}
}

// dispatch calls the topic's handlers, in subscription order, outside the
// lock so that they may subscribe or cancel.
func (b *Broker) dispatch(m *redis.Message) {
	b.mu.Lock()
	t := b.topics[m.Channel]
	var list []*sub
	if t != nil && t.isReady {
		list = slices.Clone(t.subs)
	}
	b.mu.Unlock()
	if len(list) == 0 {
		return
	}
	payload := []byte(m.Payload)
	for _, s := range list {
		s.h(payload)
	}
}

// OnResubscribe registers f to be called after a pub/sub connection was
// lost and re-established (for instance across a Redis restart). Messages
// published while it was down are lost, so a caller holding live state
// should resynchronise it from the Store. f runs on the broker's goroutine
// and must not block. This is an optional capability beyond chat.Broker,
// found by type assertion.
func (b *Broker) OnResubscribe(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onResub = append(b.onResub, f)
}

func (b *Broker) presenceKeys(set string) []string {
	tag := b.prefix + "{p:" + set + "}"
	return []string{tag + ":exp", tag + ":info"}
}

// setPresenceScript: KEYS exp zset, info hash; ARGV member, info, ttl ms.
var setPresenceScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local keep = math.max(tonumber(top[2]) - now, 0) + 1000
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return 1
`)

// presenceScript prunes expired members and returns the rest with infos.
var presenceScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, m in ipairs(gone) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
end
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  out[#out + 1] = m
  out[#out + 1] = redis.call('HGET', KEYS[2], m) or ''
end
return out
`)

func (b *Broker) check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return chat.ErrClosed
	}
	return nil
}

// SetPresence marks member present in set with info for ttl, measured on
// the Redis clock so that nodes' clocks need not agree.
func (b *Broker) SetPresence(ctx context.Context, set, member string, info []byte, ttl time.Duration) error {
	if err := b.check(); err != nil {
		return err
	}
	err := setPresenceScript.Run(ctx, b.rdb, b.presenceKeys(set), member, info, ttl.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("redis broker: set presence in %s: %w", set, err)
	}
	return nil
}

// RemovePresence removes member from set.
func (b *Broker) RemovePresence(ctx context.Context, set, member string) error {
	if err := b.check(); err != nil {
		return err
	}
	keys := b.presenceKeys(set)
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, keys[0], member)
		p.HDel(ctx, keys[1], member)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis broker: remove presence from %s: %w", set, err)
	}
	return nil
}

// Presence returns the unexpired members of set with their info.
func (b *Broker) Presence(ctx context.Context, set string) (map[string][]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	vals, err := presenceScript.Run(ctx, b.rdb, b.presenceKeys(set)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis broker: presence of %s: %w", set, err)
	}
	out := make(map[string][]byte, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		out[vals[i]] = []byte(vals[i+1])
	}
	return out, nil
}

// Ping reports whether Redis answers.
func (b *Broker) Ping(ctx context.Context) error {
	if err := b.check(); err != nil {
		return err
	}
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis broker: ping: %w", err)
	}
	return nil
}

// Close drops every subscription, closes the pub/sub connections and waits
// for their goroutines. It does not close the client. It is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.cancel()
	lanes := b.lanes
	b.lanes = map[string]*lane{}
	b.topics = map[string]*topic{}
	b.mu.Unlock()
	for _, l := range lanes {
		_ = l.ps.Close()
	}
	b.wg.Wait()
	return nil
}
