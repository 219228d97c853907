package redis_test

import (
	"testing"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/chat/chattest"
	rstore "github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// TestConformanceStore runs the Store conformance suite, unchanged, on a
// single server and on the three-master cluster. Each store gets its own
// key prefix on the shared servers.
func TestConformanceStore(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			chattest.TestStore(t, func(t *testing.T) chat.Store {
				s := rstore.NewStore(be.client(t), rstore.StoreOptions{Prefix: redistest.Prefix(t)})
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

// TestConformanceBroker runs the Broker conformance suite with two brokers
// on one backend, i.e. two nodes.
func TestConformanceBroker(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			chattest.TestBroker(t, func(t *testing.T) (chat.Broker, chat.Broker) {
				prefix := redistest.Prefix(t)
				a := rstore.NewBroker(be.client(t), rstore.BrokerOptions{Prefix: prefix})
				b := rstore.NewBroker(be.client(t), rstore.BrokerOptions{Prefix: prefix})
				t.Cleanup(func() { a.Close(); b.Close() })
				return a, b
			})
		})
	}
}
