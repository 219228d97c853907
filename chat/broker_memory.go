package chat

import (
	"context"
	"sync"
	"time"
)

// MemoryBroker is the single-node, in-process Broker. Handlers run
// synchronously inside Publish, in publish order.
type MemoryBroker struct {
	mu       sync.RWMutex
	closed   bool
	nextID   uint64
	subs     map[string]map[uint64]func([]byte)
	presence map[string]map[string]presenceEntry
	now      func() time.Time
}

type presenceEntry struct {
	info    []byte
	expires time.Time
}

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns an empty in-process broker.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{
		subs:     make(map[string]map[uint64]func([]byte)),
		presence: make(map[string]map[string]presenceEntry),
		now:      time.Now,
	}
}

// Publish calls every handler subscribed to topic before returning.
func (b *MemoryBroker) Publish(_ context.Context, topic string, payload []byte) error {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	hs := b.subs[topic]
	// Copy under the lock so handlers may subscribe or cancel re-entrantly.
	var buf [8]func([]byte)
	list := buf[:0]
	for _, h := range hs {
		list = append(list, h)
	}
	b.mu.RUnlock()
	for _, h := range list {
		h(payload)
	}
	return nil
}

// Subscribe registers h for topic.
func (b *MemoryBroker) Subscribe(_ context.Context, topic string, h func([]byte)) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	b.nextID++
	id := b.nextID
	m := b.subs[topic]
	if m == nil {
		m = make(map[uint64]func([]byte))
		b.subs[topic] = m
	}
	m[id] = h
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if m := b.subs[topic]; m != nil {
				delete(m, id)
				if len(m) == 0 {
					delete(b.subs, topic)
				}
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
