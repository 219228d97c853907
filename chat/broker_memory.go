package chat

import (
	"context"
	"slices"
	"sync"
	"time"
)

// MemoryBroker is the single-node, in-process Broker. Handlers run
// synchronously inside Publish, in publish order.
//
// Besides bytes it can carry the value a payload encodes (PublishValue,
// SubscribeValue): the hub hands its events to its own rooms that way,
// sparing an encode and a decode per message on a single node.
type MemoryBroker struct {
	mu       sync.RWMutex
	closed   bool
	nextID   uint64
	subs     map[string][]memSub // copied on change, so Publish reads without copying
	presence map[string]map[string]presenceEntry
	now      func() time.Time
}

// memSub is one subscription: bytes from Subscribe, or value from
// SubscribeValue.
type memSub struct {
	id    uint64
	bytes func([]byte)
	value func([]byte, any)
}

type presenceEntry struct {
	info    []byte
	expires time.Time
}

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns an empty in-process broker.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{
		subs:     make(map[string][]memSub),
		presence: make(map[string]map[string]presenceEntry),
		now:      time.Now,
	}
}

// Publish calls every handler subscribed to topic before returning.
// Handlers from SubscribeValue get the payload and no value.
func (b *MemoryBroker) Publish(_ context.Context, topic string, payload []byte) error {
	subs, err := b.subscribers(topic)
	for _, s := range subs {
		if s.value != nil {
			s.value(payload, nil)
		} else {
			s.bytes(payload)
		}
	}
	return err
}

// PublishValue is Publish for a payload this process holds as a value v:
// handlers from SubscribeValue get v itself and no payload, the others the
// bytes encode returns (called once, and only if such a handler exists).
// Handlers run before PublishValue returns, like Publish's; they must not
// change v or keep it.
func (b *MemoryBroker) PublishValue(_ context.Context, topic string, v any, encode func() []byte) error {
	subs, err := b.subscribers(topic)
	var payload []byte
	for _, s := range subs {
		if s.value != nil {
			s.value(nil, v)
			continue
		}
		if payload == nil {
			payload = encode()
		}
		s.bytes(payload)
	}
	return err
}

// subscribers returns topic's subscriptions. The slice is never changed in
// place, so handlers may subscribe or cancel re-entrantly.
func (b *MemoryBroker) subscribers(topic string) ([]memSub, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, ErrClosed
	}
	return b.subs[topic], nil
}

// Subscribe registers h for topic.
func (b *MemoryBroker) Subscribe(_ context.Context, topic string, h func([]byte)) (func(), error) {
	return b.subscribe(topic, memSub{bytes: h})
}

// SubscribeValue registers h for topic. h gets (nil, v) for what
// PublishValue sent and (payload, nil) for what Publish sent.
func (b *MemoryBroker) SubscribeValue(_ context.Context, topic string, h func(payload []byte, v any)) (func(), error) {
	return b.subscribe(topic, memSub{value: h})
}

func (b *MemoryBroker) subscribe(topic string, s memSub) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	b.nextID++
	s.id = b.nextID
	b.subs[topic] = append(slices.Clip(b.subs[topic]), s)
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.closed {
				return // Close dropped every subscription
			}
			subs := slices.DeleteFunc(slices.Clone(b.subs[topic]), func(x memSub) bool { return x.id == s.id })
			if len(subs) == 0 {
				delete(b.subs, topic)
			} else {
				b.subs[topic] = subs
			}
		})
	}, nil
}

// SetPresence records member in set until ttl passes.
func (b *MemoryBroker) SetPresence(_ context.Context, set, member string, info []byte, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	m := b.presence[set]
	if m == nil {
		m = make(map[string]presenceEntry)
		b.presence[set] = m
	}
	m[member] = presenceEntry{info: append([]byte(nil), info...), expires: b.now().Add(ttl)}
	return nil
}

// RemovePresence deletes member from set.
func (b *MemoryBroker) RemovePresence(_ context.Context, set, member string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	delete(b.presence[set], member)
	return nil
}

// Presence returns the live members of set, pruning expired ones.
func (b *MemoryBroker) Presence(_ context.Context, set string) (map[string][]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	now := b.now()
	out := make(map[string][]byte, len(b.presence[set]))
	for k, e := range b.presence[set] {
		if !now.Before(e.expires) {
			delete(b.presence[set], k)
			continue
		}
		out[k] = append([]byte(nil), e.info...)
	}
	return out, nil
}

// Ping reports ErrClosed after Close.
func (b *MemoryBroker) Ping(context.Context) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

// Close drops every subscription. It is idempotent.
func (b *MemoryBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.subs = nil
	b.presence = nil
	return nil
}
