package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
	"github.com/lifelinehq/lifeline/internal/struggle"
)

// deafBroker is a node's Broker that can stop hearing, as when Redis cuts
// the node's subscriber connection (a restart, or a subscriber over its
// output buffer limit) while the other nodes carry on: while deaf, what is
// published to its subscriptions is dropped and kept aside. hear ends that
// and reports a resubscription, as the Redis broker does once it has
// subscribed again.
type deafBroker struct {
	chat.Broker
	deaf atomic.Bool

	mu      sync.Mutex
	dropped [][]byte
	resub   []func()
}

func (b *deafBroker) Subscribe(ctx context.Context, topic string, h func([]byte)) (func(), error) {
	return b.Broker.Subscribe(ctx, topic, func(p []byte) {
		if b.deaf.Load() {
			b.mu.Lock()
			b.dropped = append(b.dropped, bytes.Clone(p))
			b.mu.Unlock()
			return
		}
		h(p)
	})
}

func (b *deafBroker) OnResubscribe(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resub = append(b.resub, f)
}

func (b *deafBroker) hear() {
	b.deaf.Store(false)
	b.mu.Lock()
	fs := b.resub
	b.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// waitDropped waits until a payload containing each of parts was dropped.
func (b *deafBroker) waitDropped(ctx context.Context, t *testing.T, parts ...string) {
	t.Helper()
	for _, part := range parts {
		for {
			b.mu.Lock()
			found := false
			for _, p := range b.dropped {
				found = found || bytes.Contains(p, []byte(part))
			}
			b.mu.Unlock()
			if found {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("no event containing %s reached the deaf node", part)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestResyncAfterLostEvents: node B stops hearing the broker while node A
// changes things B's sockets care about, then B resubscribes. Everything B
// missed reaches its sockets as it now stands: the visitor sees their
// conversation claimed by Ann and her message; B's agent gets Ann's note
// in the conversation he has open, a fresh
// queue (the claimed conversation gone, new ones there) and the agent
// list with Ann's new capacity; a visitor's tab follows the conversation
// they started in a tab on A; a visitor erased meanwhile is disconnected.
func TestResyncAfterLostEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rdb := redistest.Shared(t).Client(t)
	prefix := redistest.Prefix(t)
	newStore := func() chat.Store {
		st := redis.NewStore(rdb, redis.StoreOptions{Prefix: prefix})
		t.Cleanup(func() { st.Close() })
		return st
	}
	st := newStore()
	site, err := chat.NewSite("demo", "Demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutSite(ctx, site); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Ann", "Bob"} {
		a := chat.Agent{ID: name, Name: name, Email: name + "@example.com", Role: chat.RoleAgent, Capacity: 3, CreatedAt: time.Now()}
		if err := st.CreateAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	brA := redis.NewBroker(rdb, redis.BrokerOptions{Prefix: prefix})
	t.Cleanup(func() { brA.Close() })
	brB := &deafBroker{Broker: redis.NewBroker(rdb, redis.BrokerOptions{Prefix: prefix})}
	t.Cleanup(func() { brB.Close() })
	nodeA := newHubNode(t, newStore(), brA, "A", nil)
	nodeB := newHubNode(t, newStore(), brB, "B", nil)

	// Both agents away, so conversations wait until claimed.
	agent := func(n *hubNode, id string) *client.Conn {
		c, _, err := n.dialAgent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		mustSend(ctx, t, c, map[string]any{"type": "presence", "status": "away"})
		if _, err := c.Until(ctx, "presence", nil); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ann, bob := agent(nodeA, "Ann"), agent(nodeB, "Bob")
	visitor := func(n *hubNode, token string) (*client.Conn, client.Frame) {
		c, err := client.DialVisitor(ctx, n.url, "demo", client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		mustSend(ctx, t, c, map[string]any{"type": "hello", "token": token})
		w, err := c.Until(ctx, "welcome", nil)
		if err != nil {
			t.Fatal(err)
		}
		return c, w
	}
	ask := func(c *client.Conn, text string) string {
		mustSend(ctx, t, c, map[string]any{"type": "message", "client_id": "m-" + text, "text": text})
		ack, err := c.Until(ctx, "ack", nil)
		if err != nil {
			t.Fatal(err)
		}
		return ack.ConversationID
	}
	v, _ := visitor(nodeB, "")
	claimed := ask(v, "help")
	gone, goneWelcome := visitor(nodeB, "")
	goneID := goneWelcome.VisitorID
	tabB, tabWelcome := visitor(nodeB, "") // a visitor with a tab on each node
	tabA, _ := visitor(nodeA, tabWelcome.Token)
	if _, err := bob.Until(ctx, "conversation", nil); err != nil {
		t.Fatal(err)
	}
	mustSend(ctx, t, bob, map[string]any{"type": "open", "conversation_id": claimed})
	if _, err := bob.Until(ctx, "message", nil); err != nil {
		t.Fatal(err)
	}

	brB.deaf.Store(true)
	mustSend(ctx, t, ann, map[string]any{"type": "claim", "conversation_id": claimed})
	mustSend(ctx, t, ann, map[string]any{"type": "message", "conversation_id": claimed, "client_id": "a1", "text": "Ann here"})
	if _, err := ann.Until(ctx, "ack", nil); err != nil {
		t.Fatal(err)
	}
	mustSend(ctx, t, ann, map[string]any{"type": "note", "conversation_id": claimed, "client_id": "n1", "text": "Issuer outage"})
	mustSend(ctx, t, ann, map[string]any{"type": "presence", "status": "away", "capacity": 7})
	w, _ := visitor(nodeA, "")
	waiting := ask(w, "second")
	otherTab := ask(tabA, "from the other tab")
	if err := st.DeleteVisitor(ctx, goneID); err != nil {
		t.Fatal(err)
	}
	nodeA.hub.DisconnectVisitor(ctx, goneID)
	brB.waitDropped(ctx, t, `"status":"active"`, "Ann here", waiting, otherTab, "Issuer outage", `"capacity":7`, `"erased"`)
	brB.hear()

	// The visitor: Ann's message, and the conversation as it now is.
	var sawMessage, sawClaim bool
	for !sawMessage || !sawClaim {
		f, err := v.Next(ctx)
		if err != nil {
			t.Fatalf("visitor on B: message %v, claim %v: %v", sawMessage, sawClaim, err)
		}
		switch f.Type {
		case "message":
			m, err := f.ChatMessage()
			sawMessage = sawMessage || (err == nil && m.Text == "Ann here")
		case "conversation":
			var c chat.VisitorConversation
			if err := json.Unmarshal(f.Conversation, &c); err != nil {
				t.Fatal(err)
			}
			sawClaim = c.ID == claimed && c.Status == chat.StatusActive && c.Agent != nil && c.Agent.Name == "Ann"
		}
	}

	// The other tab follows the conversation started in the first.
	for {
		f, err := tabB.Until(ctx, "conversation", nil)
		if err != nil {
			t.Fatalf("the tab on B never learnt of the conversation started on A: %v", err)
		}
		var c chat.VisitorConversation
		if json.Unmarshal(f.Conversation, &c) == nil && c.ID == otherTab {
			break
		}
	}

	// Bob: Ann's note in the conversation he has open, a fresh queue, then
	// the agent list.
	var sawNote bool
	welcome, err := bob.Until(ctx, "welcome", func(f client.Frame) {
		sawNote = sawNote || (f.Type == "note" && bytes.Contains(f.Raw, []byte("Issuer outage")))
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawNote {
		t.Error("Bob was not sent the note Ann wrote while his node was deaf")
	}
	queue := map[string]bool{}
	for _, raw := range welcome.Queue {
		var c chat.Conversation
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		queue[c.ID] = true
	}
	if len(queue) != 2 || !queue[waiting] || !queue[otherTab] {
		t.Errorf("Bob's queue after the resync = %v, want %s and %s (%s was claimed)", queue, waiting, otherTab, claimed)
	}
	presence, err := bob.Until(ctx, "presence", nil)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Agents []chat.AgentView }
	if err := json.Unmarshal(presence.Raw, &list); err != nil {
		t.Fatal(err)
	}
	var annCapacity int
	for _, a := range list.Agents {
		if a.ID == "Ann" {
			annCapacity = a.Capacity
		}
	}
	if annCapacity != 7 {
		t.Errorf("Bob's agent list after the resync = %+v, want Ann at capacity 7", list.Agents)
	}

	// The erased visitor's socket is closed.
	for {
		_, err := gone.Next(ctx)
		if err == nil {
			continue
		}
		if websocket.CloseStatus(err) != websocket.StatusCode(chat.ClosePolicy) {
			t.Fatalf("erased visitor's socket on B ended with %v, want close status %d", err, chat.ClosePolicy)
		}
		break
	}
}

// TestOfferReplayedAfterLostEvents: a visitor struggles while their node
// cannot hear the broker, so the offer it publishes never reaches their
// socket. Once the node has resubscribed, the visitor gets that offer,
// the same one, once.
func TestOfferReplayedAfterLostEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb := redistest.Shared(t).Client(t)
	prefix := redistest.Prefix(t)
	st := redis.NewStore(rdb, redis.StoreOptions{Prefix: prefix})
	t.Cleanup(func() { st.Close() })
	site, err := chat.NewSite("demo", "Demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutSite(ctx, site); err != nil {
		t.Fatal(err)
	}
	br := &deafBroker{Broker: redis.NewBroker(rdb, redis.BrokerOptions{Prefix: prefix})}
	t.Cleanup(func() { br.Close() })
	det := struggle.New(struggle.Options{Store: st})
	node := newHubNode(t, st, br, "B", func(c *chat.Config) { c.Detector = det })
	det.Attach(node.hub)

	v, err := client.DialVisitor(ctx, node.url, "demo", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.CloseNow() })
	mustSend(ctx, t, v, map[string]any{"type": "hello"})
	if _, err := v.Until(ctx, "welcome", nil); err != nil {
		t.Fatal(err)
	}

	br.deaf.Store(true)
	now := time.Now().UnixMilli()
	mustSend(ctx, t, v, map[string]any{"type": "events", "events": []map[string]any{
		{"t": now - 10_000, "k": "page", "path": "/checkout"},
		{"t": now - 5_000, "k": "report", "msg": "Your card was declined"},
		{"t": now, "k": "report", "msg": "Your card was declined"},
	}})
	br.waitDropped(ctx, t, `"offer_id"`)
	var lost struct {
		Offer struct {
			OfferID string `json:"offer_id"`
		} `json:"offer"`
	}
	br.mu.Lock()
	for _, p := range br.dropped {
		if bytes.Contains(p, []byte(`"offer_id"`)) {
			_ = json.Unmarshal(p, &lost)
		}
	}
	br.mu.Unlock()
	if lost.Offer.OfferID == "" {
		t.Fatal("the dropped offer has no offer_id")
	}
	br.hear()

	f, err := v.Until(ctx, "offer", nil)
	if err != nil {
		t.Fatalf("the visitor never got the offer lost in the gap: %v", err)
	}
	if f.OfferID != lost.Offer.OfferID {
		t.Errorf("offer %q after the gap, want the lost %q", f.OfferID, lost.Offer.OfferID)
	}
}

func mustSend(ctx context.Context, t *testing.T, c *client.Conn, frame map[string]any) {
	t.Helper()
	if err := c.Send(ctx, frame); err != nil {
		t.Fatal(err)
	}
}
