package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	rstore "github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// collector records payloads delivered to a handler.
type collector chan string

func (c collector) handle(p []byte) { c <- string(p) }

// next waits for one payload; the test's own deadline bounds the wait.
func (c collector) next(t *testing.T) string {
	t.Helper()
	select {
	case p := <-c:
		return p
	case <-t.Context().Done():
		t.Fatal("no payload before the test ended")
		return ""
	}
}

func newBrokers(t *testing.T, be backend) (a, b *rstore.Broker) {
	prefix := redistest.Prefix(t)
	a = rstore.NewBroker(be.client(t), rstore.BrokerOptions{Prefix: prefix})
	b = rstore.NewBroker(be.client(t), rstore.BrokerOptions{Prefix: prefix})
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestBrokerFanOutAcrossNodes(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			a, b := newBrokers(t, be)
			// Many topics spread over the cluster's shards.
			const topics = 20
			got := make([]collector, topics)
			for i := range topics {
				got[i] = make(collector, 100)
				if _, err := b.Subscribe(ctx, fmt.Sprint("conv:", i), got[i].handle); err != nil {
					t.Fatal(err)
				}
			}
			for n := range 5 {
				for i := range topics {
					if err := a.Publish(ctx, fmt.Sprint("conv:", i), fmt.Appendf(nil, "%d/%d", i, n)); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i := range topics {
				for n := range 5 {
					if p, want := got[i].next(t), fmt.Sprintf("%d/%d", i, n); p != want {
						t.Fatalf("topic %d: payload %q, want %q (in publish order)", i, p, want)
					}
				}
			}
			// Reference counting: two handlers on one topic, cancel one.
			x, y := make(collector, 10), make(collector, 10)
			cx, err := a.Subscribe(ctx, "shared", x.handle)
			if err != nil {
				t.Fatal(err)
			}
			cy, err := a.Subscribe(ctx, "shared", y.handle)
			if err != nil {
				t.Fatal(err)
			}
			b.Publish(ctx, "shared", []byte("1"))
			if x.next(t) != "1" || y.next(t) != "1" {
				t.Fatal("both handlers should get 1")
			}
			cx()
			cx() // idempotent
			b.Publish(ctx, "shared", []byte("2"))
			if y.next(t) != "2" {
				t.Fatal("y should get 2")
			}
			cy()
			// Resubscribe after the last cancel.
			cz, err := a.Subscribe(ctx, "shared", x.handle)
			if err != nil {
				t.Fatal(err)
			}
			b.Publish(ctx, "shared", []byte("3"))
			if p := x.next(t); p != "3" {
				t.Fatalf("after resubscribe got %q, want 3", p)
			}
			cz()
		})
	}
}

func TestBrokerPresence(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			a, b := newBrokers(t, be)
			if err := a.SetPresence(ctx, "agents", "a1", []byte(`{"s":1}`), time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := a.SetPresence(ctx, "agents", "a2", []byte(`{}`), time.Millisecond); err != nil {
				t.Fatal(err)
			}
			// a2 expires; poll rather than assert a duration.
			for {
				m, err := b.Presence(ctx, "agents")
				if err != nil {
					t.Fatal(err)
				}
				if string(m["a1"]) != `{"s":1}` {
					t.Fatalf("Presence = %q, want a1", m)
				}
				if _, ok := m["a2"]; !ok {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := b.RemovePresence(ctx, "agents", "a1"); err != nil {
				t.Fatal(err)
			}
			if m, err := a.Presence(ctx, "agents"); err != nil || len(m) != 0 {
				t.Fatalf("Presence after remove = %q, %v", m, err)
			}
		})
	}
}

// TestBrokerRedisRestart: subscriptions recover and publishes resume by
// themselves after Redis is killed and restarted.
func TestBrokerRedisRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Server(t)
	a := rstore.NewBroker(srv.Client(t), rstore.BrokerOptions{})
	b := rstore.NewBroker(srv.Client(t), rstore.BrokerOptions{})
	defer a.Close()
	defer b.Close()
	resub := make(chan struct{}, 10)
	b.OnResubscribe(func() { resub <- struct{}{} })
	got := make(collector, 1000)
	if _, err := b.Subscribe(ctx, "conv:1", got.handle); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "conv:1", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if p := got.next(t); p != "before" {
		t.Fatalf("got %q, want before", p)
	}
	srv.Restart(t)
	// Publish until one arrives: the subscriber reconnects on its own.
	for i := 0; ; i++ {
		_ = a.Publish(ctx, "conv:1", []byte("after"))
		select {
		case p := <-got:
			if p != "after" {
				t.Fatalf("got %q, want after", p)
			}
			if err := b.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case <-resub:
			default:
				t.Error("OnResubscribe callback not called after the restart")
			}
			// New subscriptions work too.
			other := make(collector, 1)
			if _, err := b.Subscribe(ctx, "conv:2", other.handle); err != nil {
				t.Fatal(err)
			}
			if err := a.Publish(ctx, "conv:2", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if other.next(t) != "x" {
				t.Fatal("conv:2 after restart")
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no delivery after restart")
		}
	}
}

// TestBrokerResubscribeAfterCancelWhileDown: a subscription cancelled
// while Redis is down (so its unsubscribe is never acknowledged) does not
// stop a later Subscribe to the same topic from becoming ready.
func TestBrokerResubscribeAfterCancelWhileDown(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := redistest.Server(t)
	a := rstore.NewBroker(srv.Client(t), rstore.BrokerOptions{})
	b := rstore.NewBroker(srv.Client(t), rstore.BrokerOptions{})
	defer a.Close()
	defer b.Close()
	resub := make(chan struct{}, 10)
	b.OnResubscribe(func() { resub <- struct{}{} })
	keep := make(collector, 1000) // keeps the connection open throughout
	if _, err := b.Subscribe(ctx, "keep", keep.handle); err != nil {
		t.Fatal(err)
	}
	cancel, err := b.Subscribe(ctx, "conv:1", func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	cancel()
	srv.Start(t)
	select {
	case <-resub:
	case <-ctx.Done():
		t.Fatal("no resubscription after Redis came back")
	}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	got := make(collector, 10)
	if _, err := b.Subscribe(sctx, "conv:1", got.handle); err != nil {
		t.Fatalf("Subscribe after a cancel while Redis was down = %v", err)
	}
	if err := a.Publish(ctx, "conv:1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if p := got.next(t); p != "x" {
		t.Fatalf("got %q, want x", p)
	}
}

// TestBrokerSubscribeFromHandler: a handler may subscribe (as a hub
// joining a room on an event would) without deadlocking the connection.
func TestBrokerSubscribeFromHandler(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			a, b := newBrokers(t, be)
			inner := make(collector, 10)
			done := make(chan error, 1)
			cancel, err := b.Subscribe(ctx, "outer", func([]byte) {
				_, err := b.Subscribe(ctx, "inner", inner.handle)
				done <- err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer cancel()
			if err := a.Publish(ctx, "outer", []byte("go")); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Subscribe from a handler = %v", err)
				}
			case <-ctx.Done():
				t.Fatal("Subscribe from a handler never returned")
			}
			if err := a.Publish(ctx, "inner", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if p := inner.next(t); p != "x" {
				t.Fatalf("inner got %q", p)
			}
		})
	}
}
