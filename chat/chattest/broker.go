package chattest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

// TestBroker checks that a chat.Broker keeps the contracts documented in
// chat/broker.go: a subscription is live when Subscribe returns, payloads
// reach subscribers on every node in per-publisher order, cancel stops
// delivery and is idempotent, topics are isolated, presence is shared
// between nodes and expires, and every call after Close returns
// chat.ErrClosed.
//
// newPair returns two brokers on one backend, as two nodes would have; an
// in-process broker returns the same instance twice. Each subtest runs in
// parallel with the others and calls newPair for its own pair, which the
// suite closes in a t.Cleanup registered right after newPair returns (a
// second Close, or Close of the same instance twice, may return nil or
// chat.ErrClosed). Cleanups registered by newPair run after that.
//
// Every topic and presence set has a fresh random name, so the backend may
// be shared. Waits poll with a deadline of 10 s; presence expiry uses TTLs
// of 1 s and more, so a store with second precision passes.
func TestBroker(t *testing.T, newPair func(t *testing.T) (a, b chat.Broker)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b chat.Broker)
	}{
		{"Ping", testBrokerPing},
		{"SubscribeIsLiveOnReturn", testSubscribeIsLiveOnReturn},
		{"Order", testBrokerOrder},
		{"ManySubscribers", testManySubscribers},
		{"Cancel", testCancel},
		{"TopicsIsolated", testTopicsIsolated},
		{"PayloadCopied", testPayloadCopied},
		{"Presence", testPresence},
		{"PresenceExpires", testPresenceExpires},
		{"PresenceRefresh", testPresenceRefresh},
		{"Closed", testBrokerClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := newPair(t)
			t.Cleanup(func() {
				closeQuietly(t, "a", a)
				closeQuietly(t, "b", b)
			})
			tt.fn(t, a, b)
		})
	}
}

// recorder is a subscription handler that keeps copies of what it gets.
type recorder struct {
	mu  sync.Mutex
	got [][]byte
}

func (r *recorder) handle(p []byte) {
	c := bytes.Clone(p)
	r.mu.Lock()
	r.got = append(r.got, c)
	r.mu.Unlock()
}

// payloads returns what r got so far, as strings.
func (r *recorder) payloads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.got))
	for i, p := range r.got {
		out[i] = string(p)
	}
	return out
}

// waitFor waits until r has got n payloads and returns them.
func (r *recorder) waitFor(t *testing.T, what string, n int) []string {
	t.Helper()
	var got []string
	eventually(t, fmt.Sprintf("%s: waiting for %d payloads", what, n), func() bool {
		got = r.payloads()
		return len(got) >= n
	})
	return got
}

func subscribe(t *testing.T, b chat.Broker, topic string, r *recorder) func() {
	t.Helper()
	cancel, err := b.Subscribe(context.Background(), topic, r.handle)
	noErr(t, fmt.Sprintf("Subscribe(%s)", topic), err)
	t.Cleanup(cancel)
	return cancel
}

func publish(t *testing.T, b chat.Broker, topic, payload string) {
	t.Helper()
	noErr(t, fmt.Sprintf("Publish(%s, %q)", topic, payload), b.Publish(context.Background(), topic, []byte(payload)))
}

func testBrokerPing(t *testing.T, a, b chat.Broker) {
	noErr(t, "a.Ping", a.Ping(context.Background()))
	noErr(t, "b.Ping", b.Ping(context.Background()))
	noErr(t, "Publish(no subscribers)", a.Publish(context.Background(), newID("topic"), []byte("x")))
}

func testSubscribeIsLiveOnReturn(t *testing.T, a, b chat.Broker) {
	// Each round subscribes and publishes at once, with no pause between.
	for i := range 5 {
		topic := newID("topic")
		var onA, onB recorder
		subscribe(t, a, topic, &onA)
		subscribe(t, b, topic, &onB)
		publish(t, a, topic, "from a")
		publish(t, b, topic, "from b")
		for name, r := range map[string]*recorder{"subscriber on a": &onA, "subscriber on b": &onB} {
			got := r.waitFor(t, name, 2)
			slices.Sort(got)
			if want := []string{"from a", "from b"}; !slices.Equal(got, want) {
				t.Errorf("round %d: %s got %q, want %q", i, name, got, want)
			}
		}
	}
}

func testBrokerOrder(t *testing.T, a, b chat.Broker) {
	const n = 1000
	topic := newID("topic")
	var onA, onB recorder
	subscribe(t, a, topic, &onA)
	subscribe(t, b, topic, &onB)
	var want []string
	for i := range n {
		p := fmt.Sprint(i)
		publish(t, a, topic, p)
		want = append(want, p)
	}
	for name, r := range map[string]*recorder{"subscriber on a": &onA, "subscriber on b": &onB} {
		if got := r.waitFor(t, name, n); !slices.Equal(got, want) {
			t.Errorf("%s got %d payloads out of publish order (first %q), want 0..%d in order", name, len(got), got[:min(len(got), 10)], n-1)
		}
	}
}

func testManySubscribers(t *testing.T, a, b chat.Broker) {
	topic := newID("topic")
	rs := make([]*recorder, 5)
	for i := range rs {
		rs[i] = &recorder{}
		node := a
		if i%2 == 1 {
			node = b
		}
		subscribe(t, node, topic, rs[i])
	}
	publish(t, a, topic, "one")
	publish(t, b, topic, "two")
	for i, r := range rs {
		got := r.waitFor(t, fmt.Sprintf("subscriber %d", i), 2)
		slices.Sort(got)
		if want := []string{"one", "two"}; !slices.Equal(got, want) {
			t.Errorf("subscriber %d got %q, want %q", i, got, want)
		}
	}
}

func testCancel(t *testing.T, a, b chat.Broker) {
	for _, tc := range []struct {
		name string
		sub  chat.Broker
	}{{"same node", a}, {"other node", b}} {
		t.Run(tc.name, func(t *testing.T) {
			topic := newID("topic")
			var cancelled, kept recorder
			cancel := subscribe(t, tc.sub, topic, &cancelled)
			subscribe(t, tc.sub, topic, &kept)
			publish(t, a, topic, "before")
			cancelled.waitFor(t, "cancelled subscriber", 1)
			kept.waitFor(t, "kept subscriber", 1)
			cancel()
			cancel() // idempotent
			publish(t, a, topic, "after")
			publish(t, a, topic, "last")
			// kept sees both; ordering per publisher means the cancelled
			// subscriber would have had "after" by then.
			kept.waitFor(t, "kept subscriber", 3)
			if got, want := cancelled.payloads(), []string{"before"}; !slices.Equal(got, want) {
				t.Errorf("cancelled subscriber got %q, want %q", got, want)
			}
			// After its last subscriber cancels, a topic can be subscribed again.
			var again recorder
			subscribe(t, tc.sub, topic, &again)
			publish(t, a, topic, "again")
			if got := again.waitFor(t, "new subscriber", 1); got[0] != "again" {
				t.Errorf("new subscriber got %q, want %q", got, "again")
			}
		})
	}
}

func testTopicsIsolated(t *testing.T, a, b chat.Broker) {
	base := newID("topic")
	topics := []string{base, base + ".sub", base + "*", "x" + base}
	rs := make([]*recorder, len(topics))
	for i, topic := range topics {
		rs[i] = &recorder{}
		subscribe(t, b, topic, rs[i])
	}
	for _, topic := range topics {
		publish(t, a, topic, topic)
	}
	for i, r := range rs {
		got := r.waitFor(t, topics[i], 1)
		if want := []string{topics[i]}; !slices.Equal(got, want) {
			t.Errorf("subscriber of %q got %q, want %q", topics[i], got, want)
		}
	}
	publish(t, a, base, "late")
	rs[0].waitFor(t, base, 2)
	for i, r := range rs[1:] {
		if got := r.payloads(); len(got) != 1 {
			t.Errorf("subscriber of %q got %q, want only its own payload", topics[i+1], got)
		}
	}
}

func testPayloadCopied(t *testing.T, a, b chat.Broker) {
	// The publisher reuses one buffer; subscribers must see what was
	// published, not what the buffer later holds.
	const n = 100
	topic := newID("topic")
	var onA, onB recorder
	subscribe(t, a, topic, &onA)
	subscribe(t, b, topic, &onB)
	buf := make([]byte, 16)
	var want []string
	for i := range n {
		p := fmt.Appendf(buf[:0], "payload-%04d", i)
		want = append(want, string(p))
		noErr(t, "Publish", a.Publish(context.Background(), topic, p))
		for j := range p {
			p[j] = '#'
		}
	}
	for name, r := range map[string]*recorder{"subscriber on a": &onA, "subscriber on b": &onB} {
		if got := r.waitFor(t, name, n); !slices.Equal(got, want) {
			t.Errorf("%s got %q, want %q", name, got[:min(len(got), 5)], want[:5])
		}
	}
}

func presence(t *testing.T, b chat.Broker, set string) map[string]string {
	t.Helper()
	m, err := b.Presence(context.Background(), set)
	noErr(t, fmt.Sprintf("Presence(%s)", set), err)
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func samePresence(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %q, want %q", what, got, want)
		return
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %q, want %q", what, got, want)
			return
		}
	}
}

func testPresence(t *testing.T, a, b chat.Broker) {
	ctx := context.Background()
	set, other := newID("set"), newID("set")
	const ttl = time.Minute
	info := []byte(`{"status":"online","load":1}`)
	noErr(t, "SetPresence", a.SetPresence(ctx, set, "agent-1", info, ttl))
	info[2] = 'X' // the broker keeps its own copy
	noErr(t, "SetPresence", b.SetPresence(ctx, set, "agent-2", []byte("away"), ttl))
	noErr(t, "SetPresence(other set)", b.SetPresence(ctx, other, "agent-3", []byte("x"), ttl))
	want := map[string]string{"agent-1": `{"status":"online","load":1}`, "agent-2": "away"}
	samePresence(t, "Presence on a", presence(t, a, set), want)
	samePresence(t, "Presence on b", presence(t, b, set), want)
	samePresence(t, "Presence(other set)", presence(t, a, other), map[string]string{"agent-3": "x"})

	// Setting again replaces the info.
	noErr(t, "SetPresence(update)", b.SetPresence(ctx, set, "agent-1", []byte("busy"), ttl))
	want["agent-1"] = "busy"
	samePresence(t, "Presence after update", presence(t, a, set), want)

	noErr(t, "RemovePresence", b.RemovePresence(ctx, set, "agent-1"))
	delete(want, "agent-1")
	samePresence(t, "Presence after remove", presence(t, a, set), want)
	noErr(t, "RemovePresence(again)", a.RemovePresence(ctx, set, "agent-1"))
	noErr(t, "RemovePresence(unknown set)", a.RemovePresence(ctx, newID("set"), "nobody"))
	samePresence(t, "Presence(empty set)", presence(t, b, newID("set")), map[string]string{})
}

func testPresenceExpires(t *testing.T, a, b chat.Broker) {
	ctx := context.Background()
	set := newID("set")
	noErr(t, "SetPresence(short)", a.SetPresence(ctx, set, "short", []byte("s"), time.Second))
	noErr(t, "SetPresence(long)", a.SetPresence(ctx, set, "long", []byte("l"), time.Minute))
	if got := presence(t, b, set); got["short"] != "s" || got["long"] != "l" {
		t.Fatalf("Presence right after SetPresence = %q, want short and long", got)
	}
	eventually(t, "short-lived member expires", func() bool {
		_, ok := presence(t, b, set)["short"]
		return !ok
	})
	samePresence(t, "Presence after expiry", presence(t, a, set), map[string]string{"long": "l"})
}

func testPresenceRefresh(t *testing.T, a, b chat.Broker) {
	ctx := context.Background()
	const ttl = 2 * time.Second
	// A refreshed member outlives its first TTL. The check is only
	// conclusive if it ran within ttl of the refresh; on a machine so busy
	// that it did not, try again.
	for try := range 3 {
		set := newID("set")
		noErr(t, "SetPresence", a.SetPresence(ctx, set, "m", []byte("1"), ttl))
		first := time.Now()
		time.Sleep(ttl / 2)
		refreshed := time.Now()
		noErr(t, "SetPresence(refresh)", b.SetPresence(ctx, set, "m", []byte("2"), ttl))
		time.Sleep(time.Until(first.Add(ttl + 300*time.Millisecond)))
		got := presence(t, a, set)
		if time.Since(refreshed) >= ttl {
			t.Logf("try %d: inconclusive, the check ran %v after the refresh", try, time.Since(refreshed))
			continue
		}
		if got["m"] != "2" {
			t.Fatalf("Presence %v after the first SetPresence (ttl %v), %v after a refresh = %q, want m = %q",
				time.Since(first), ttl, time.Since(refreshed), got, "2")
		}
		eventually(t, "refreshed member expires", func() bool {
			_, ok := presence(t, b, set)["m"]
			return !ok
		})
		return
	}
	t.Errorf("presence refresh: every try inconclusive; machine too busy")
}

func testBrokerClosed(t *testing.T, a, b chat.Broker) {
	ctx := context.Background()
	topic := newID("topic")
	var r recorder
	cancel, err := a.Subscribe(ctx, topic, r.handle)
	noErr(t, "Subscribe", err)
	for _, nb := range []struct {
		name string
		br   chat.Broker
	}{{"a", a}, {"b", b}} {
		name, br := nb.name, nb.br
		err := br.Close()
		if br == a && name == "b" && errors.Is(err, chat.ErrClosed) {
			err = nil // the same instance twice: closed already
		}
		noErr(t, name+".Close", err)
		calls := []struct {
			name string
			call func() error
		}{
			{"Ping", func() error { return br.Ping(ctx) }},
			{"Publish", func() error { return br.Publish(ctx, topic, []byte("x")) }},
			{"Subscribe", func() error {
				cancel, err := br.Subscribe(ctx, topic, func([]byte) {})
				if err == nil {
					cancel()
				}
				return err
			}},
			{"SetPresence", func() error { return br.SetPresence(ctx, "set", "m", nil, time.Minute) }},
			{"RemovePresence", func() error { return br.RemovePresence(ctx, "set", "m") }},
			{"Presence", func() error { _, err := br.Presence(ctx, "set"); return err }},
		}
		for _, c := range calls {
			wantErr(t, fmt.Sprintf("%s.%s after Close", name, c.name), c.call(), chat.ErrClosed)
		}
		if err := br.Close(); err != nil && !errors.Is(err, chat.ErrClosed) {
			t.Errorf("%s: second Close = %v, want nil or %v", name, err, chat.ErrClosed)
		}
	}
	cancel() // cancelling after Close is harmless
}
