package main

import (
	"context"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// An agent whose console reconnects (a reload) still sees how far the
// visitor has read: the node remembers the visitor's read mark while the
// conversation's room is open and sends it to agents who join later.
func TestVisitorReadMarkReachesAReconnectedAgent(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	session, ag := agentConn(t, ctx, n.URL, adminEmail, testPassword) // online: the router assigns
	v, _ := visitor(t, ctx, n.URL, "", 0)
	conv, seq := readReply(t, ctx, v, ag)

	ag.CloseNow()
	again, view := agentHello(t, ctx, session)
	if view.Status != "online" {
		t.Fatalf("reconnected agent is %s", view.Status)
	}
	wantMark(t, ctx, again, conv, seq, "after reconnecting")
}

// The mark is stored with the conversation, so it outlives the node: after
// kill -9 and a restart the console still shows "Seen".
func TestVisitorReadMarkSurvivesKill9(t *testing.T) {
	dir, addr := t.TempDir(), freePort(t)
	base := "http://" + addr
	p := startProc(t, addr, "--data", dir)
	ctx := testCtx(t)
	session, ag := agentConn(t, ctx, base, adminEmail, testPassword)
	v, _ := visitor(t, ctx, base, "", 0)
	conv, seq := readReply(t, ctx, v, ag)
	waitStoredMark(t, ctx, session, conv, false, seq)

	p.kill()
	startProc(t, addr, "--data", dir)
	_, again := agentConn(t, ctx, base, adminEmail, testPassword)
	wantMark(t, ctx, again, conv, seq, "after kill -9 and a restart")
}

// A node that held no socket of the conversation when the visitor read
// (here, the agent's second console, on another node) reads the mark from
// the record.
func TestVisitorReadMarkReachesAnotherNode(t *testing.T) {
	rs := redistest.Server(t)
	addrA, addrB := freePort(t), freePort(t)
	startProc(t, addrA, redisNodeArgs(rs.URL())...)
	startProc(t, addrB, redisNodeArgs(rs.URL())...)
	ctx := testCtx(t)
	onA, ag := agentConn(t, ctx, "http://"+addrA, adminEmail, testPassword)
	v, _ := visitor(t, ctx, "http://"+addrA, "", 0)
	conv, seq := readReply(t, ctx, v, ag)
	waitStoredMark(t, ctx, onA, conv, false, seq)

	_, onB := agentConn(t, ctx, "http://"+addrB, adminEmail, testPassword)
	wantMark(t, ctx, onB, conv, seq, "on another node")
}

// The agents' mark reaches the visitor live, and from the record when the
// widget reconnects, so it shows "Seen" under the visitor's message.
func TestAgentReadMarkReachesTheVisitor(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	session, ag := agentConn(t, ctx, n.URL, adminEmail, testPassword)
	v, w := visitor(t, ctx, n.URL, "", 0)
	ack := firstMessage(t, ctx, v, ag)
	if err := ag.Send(ctx, map[string]any{"type": "read", "conversation_id": ack.ConversationID, "seq": ack.Seq}); err != nil {
		t.Fatal(err)
	}
	if _, err := untilFrame(ctx, v, "read", func(f client.Frame) bool { return f.Reader == "agent" && f.Seq == ack.Seq }); err != nil {
		t.Fatalf("visitor waiting for the agent's read mark: %v", err)
	}
	waitStoredMark(t, ctx, session, ack.ConversationID, true, ack.Seq)

	v.CloseNow()
	_, again := visitor(t, ctx, n.URL, w.Token, ack.Seq)
	conv, err := again.Conv()
	if err != nil || conv.ID != ack.ConversationID || conv.AgentRead != ack.Seq {
		t.Fatalf("welcome after reconnecting: conversation %s agent_read %d (%v), want %s %d", conv.ID, conv.AgentRead, err, ack.ConversationID, ack.Seq)
	}
}

// readReply has the visitor write, the assigned agent ag reply and the
// visitor read the reply, then send a bogus mark past the last message:
// both marks are forwarded live, but only the first is kept. It returns
// the conversation and the reply's seq.
func readReply(t *testing.T, ctx context.Context, v, ag *client.Conn) (string, int64) {
	t.Helper()
	conv := firstMessage(t, ctx, v, ag).ConversationID
	if err := ag.Send(ctx, map[string]any{"type": "message", "conversation_id": conv, "client_id": "a1", "text": "Hi, how can I help?"}); err != nil {
		t.Fatal(err)
	}
	reply, err := ag.Until(ctx, "ack", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untilFrame(ctx, v, "message", func(f client.Frame) bool { m, _ := f.ChatMessage(); return m.Seq == reply.Seq }); err != nil {
		t.Fatalf("visitor waiting for the reply: %v", err)
	}
	for _, seq := range []int64{reply.Seq, reply.Seq + 100} {
		if err := v.Send(ctx, map[string]any{"type": "read", "seq": seq}); err != nil {
			t.Fatal(err)
		}
		if _, err := untilFrame(ctx, ag, "read", func(f client.Frame) bool { return f.Seq == seq }); err != nil {
			t.Fatalf("agent waiting for the visitor's read mark %d: %v", seq, err)
		}
	}
	return conv, reply.Seq
}

// firstMessage has the visitor v start a conversation that the agent ag
// is assigned, and returns the visitor's ack.
func firstMessage(t *testing.T, ctx context.Context, v, ag *client.Conn) client.Frame {
	t.Helper()
	if err := v.Send(ctx, map[string]any{"type": "message", "client_id": "v1", "text": "hello?"}); err != nil {
		t.Fatal(err)
	}
	ack, err := v.Until(ctx, "ack", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ag.Until(ctx, "message", nil); err != nil {
		t.Fatalf("agent waiting for the visitor's message: %v", err)
	}
	return ack
}

// waitStoredMark waits up to 10 s for the conversation's record to hold
// the visitor's (or with agent, the agents') mark seq: the node writes
// marks about once a second.
func waitStoredMark(t *testing.T, ctx context.Context, s *client.Session, conv string, agent bool, seq int64) {
	t.Helper()
	var got struct{ Conversation chat.Conversation }
	mark := func() int64 {
		if agent {
			return got.Conversation.AgentRead
		}
		return got.Conversation.VisitorRead
	}
	for range 100 {
		if err := s.Do(ctx, "GET", "/api/v1/conversations/"+conv, nil, &got); err != nil {
			t.Fatal(err)
		}
		if mark() == seq {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("stored mark (agents: %v) is %d after 10 s, want %d (a bogus mark must not be kept)", agent, mark(), seq)
}

// wantMark waits up to 10 s for the visitor's read mark seq of conv on c.
func wantMark(t *testing.T, ctx context.Context, c *client.Conn, conv string, seq int64, when string) {
	t.Helper()
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f, err := c.Until(wait, "read", nil)
	if err != nil {
		t.Fatalf("no read mark %s: %v", when, err)
	}
	if f.ConversationID != conv || f.Seq != seq || f.Reader != "visitor" {
		t.Fatalf("read mark %s: conversation %s seq %d reader %q, want %s %d visitor", when, f.ConversationID, f.Seq, f.Reader, conv, seq)
	}
}

// untilFrame returns the next frame of type typ that match accepts.
func untilFrame(ctx context.Context, c *client.Conn, typ string, match func(client.Frame) bool) (client.Frame, error) {
	for {
		f, err := c.Until(ctx, typ, nil)
		if err != nil || match(f) {
			return f, err
		}
	}
}
