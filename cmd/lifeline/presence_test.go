package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// An agent who steps away stays away through a reload or a dropped
// connection: their next socket's welcome says away with the capacity
// they chose, the router leaves a new chat in the queue, and choosing
// online again hands it to them and is kept the same way.
func TestAwaySurvivesReconnect(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	session, first := agentConn(t, ctx, n.URL, adminEmail, testPassword)
	if err := first.Send(ctx, map[string]any{"type": "presence", "status": "away", "capacity": 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Until(ctx, "presence", nil); err != nil {
		t.Fatalf("presence away: %v", err)
	}
	// gone waits until the node has let the agent's last socket go, so
	// that the next one starts afresh rather than joining it.
	gone := func(c *client.Conn) {
		t.Helper()
		c.CloseNow()
		for {
			var list struct{ Agents []chat.AgentView }
			if err := session.Do(ctx, "GET", "/api/v1/agents", nil, &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Agents) == 1 && list.Agents[0].Status == "offline" {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("the agent is still %+v after closing their socket", list.Agents)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	gone(first)

	ag, view := agentHello(t, ctx, session)
	if view.Status != "away" || view.Capacity != 3 {
		t.Fatalf("welcome after reconnecting: status %q capacity %d, want away and 3", view.Status, view.Capacity)
	}

	// A new chat waits in the queue while its only agent is away.
	v, _ := visitor(t, ctx, n.URL, "", 0)
	if err := v.Send(ctx, map[string]any{"type": "message", "client_id": "m1", "text": "anyone there?"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Until(ctx, "ack", nil); err != nil {
		t.Fatal(err)
	}
	conv := func(want chat.Status) chat.Conversation {
		t.Helper()
		for {
			f, err := ag.Until(ctx, "conversation", nil)
			if err != nil {
				t.Fatalf("waiting for a conversation %s: %v", want, err)
			}
			c, err := f.Conv()
			if err != nil {
				t.Fatal(err)
			}
			if c.Status == want {
				return c
			}
		}
	}
	waiting := conv(chat.StatusWaiting)
	var tr struct{ Conversation chat.Conversation }
	if err := session.Do(ctx, "GET", "/api/v1/conversations/"+waiting.ID, nil, &tr); err != nil {
		t.Fatal(err)
	}
	if got := tr.Conversation; got.Status != chat.StatusWaiting || got.AgentID != "" {
		t.Fatalf("with the only agent away the chat is %s (agent %q), want it waiting", tr.Conversation.Status, tr.Conversation.AgentID)
	}

	// Online again: the router hands the chat over, and a reconnect keeps it.
	if err := ag.Send(ctx, map[string]any{"type": "presence", "status": "online"}); err != nil {
		t.Fatal(err)
	}
	if c := conv(chat.StatusActive); c.ID != waiting.ID || c.AgentID == "" {
		t.Fatalf("after going online: %+v, want %s assigned", c, waiting.ID)
	}
	gone(ag)
	if _, view = agentHello(t, ctx, session); view.Status != "online" || view.Capacity != 3 {
		t.Fatalf("welcome after going online and reconnecting: status %q capacity %d, want online and 3", view.Status, view.Capacity)
	}
}

// agentHello opens another agent socket for session and returns it with
// the agent as its welcome shows them.
func agentHello(t *testing.T, ctx context.Context, session *client.Session) (*client.Conn, chat.AgentView) {
	t.Helper()
	c, err := session.DialAgent(ctx)
	if err != nil {
		t.Fatalf("dial agent: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Send(ctx, map[string]any{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	f, err := c.Until(ctx, "welcome", nil)
	if err != nil {
		t.Fatalf("agent welcome: %v", err)
	}
	var w struct{ Agent chat.AgentView }
	if err := json.Unmarshal(f.Raw, &w); err != nil {
		t.Fatal(err)
	}
	return c, w.Agent
}

// An agent with consoles on two nodes (two tabs behind a load balancer)
// who steps away in one is away on both: the other node takes the choice
// from the presence event, so its next socket, and its own presence
// refreshes, say away rather than the status it had before.
func TestAwayFollowsAcrossNodes(t *testing.T) {
	rs := redistest.Server(t)
	ctx := testCtx(t)
	addrA, addrB := freePort(t), freePort(t)
	startProc(t, addrA, redisNodeArgs(rs.URL())...)
	startProc(t, addrB, redisNodeArgs(rs.URL())...)
	onA, err := client.Login(ctx, "http://"+addrA, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	onB, err := client.Login(ctx, "http://"+addrB, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	tabA, view := agentHello(t, ctx, onA)
	tabB, _ := agentHello(t, ctx, onB)
	if view.Status != "online" {
		t.Fatalf("first welcome: status %q, want online", view.Status)
	}

	if err := tabA.Send(ctx, map[string]any{"type": "presence", "status": "away", "capacity": 4}); err != nil {
		t.Fatal(err)
	}
	// Node B has handled the event once tab B shows the agent away.
	for {
		f, err := tabB.Until(ctx, "presence", nil)
		if err != nil {
			t.Fatalf("tab B waiting for the agent away: %v", err)
		}
		var p struct{ Agents []chat.AgentView }
		if err := json.Unmarshal(f.Raw, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Agents) == 1 && p.Agents[0].Status == "away" {
			break
		}
	}
	if _, view = agentHello(t, ctx, onB); view.Status != "away" || view.Capacity != 4 {
		t.Fatalf("another socket on node B: status %q capacity %d, want away and 4", view.Status, view.Capacity)
	}
}
