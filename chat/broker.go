package chat

import (
	"context"
	"time"
)

// Broker carries live traffic between the nodes of a deployment: topic
// fan-out and presence. It is a fast hint, not the truth: delivery is
// at-most-once, so readers resynchronise from the Store by sequence number.
// The in-process default is MemoryBroker; internal/redis spans many nodes.
// Every implementation passes chattest.TestBroker.
type Broker interface {
	// Publish sends payload to every current subscriber of topic, on every
	// node. Publishing to a topic with no subscribers is not an error.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Subscribe calls h with each payload published to topic from now on,
	// until the returned cancel func is called. For one publisher, payloads
	// arrive in publish order. h runs on the broker's goroutine and must
	// not block; it must not retain payload after it returns.
	Subscribe(ctx context.Context, topic string, h func(payload []byte)) (cancel func(), err error)

	// SetPresence marks member present in set with info for ttl. Calling it
	// again refreshes the entry.
	SetPresence(ctx context.Context, set, member string, info []byte, ttl time.Duration) error
	// RemovePresence removes member from set; removing an absent member is
	// not an error.
	RemovePresence(ctx context.Context, set, member string) error
	// Presence returns the unexpired members of set with their info.
	Presence(ctx context.Context, set string) (map[string][]byte, error)

	// Ping reports whether the broker can serve requests.
	Ping(ctx context.Context) error
	// Close releases the broker. Calls after Close return ErrClosed.
	Close() error
}
