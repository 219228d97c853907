package main

import (
	"context"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/internal/client"
)

// An agent whose console reconnects (a reload) still sees how far the
// visitor has read: the node remembers the visitor's read mark while the
// conversation's room is open and sends it to agents who join later.
func TestVisitorReadMarkReachesAReconnectedAgent(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	session, ag := agentConn(t, ctx, n.URL, adminEmail, testPassword) // online: the router assigns
	v, _ := visitor(t, ctx, n.URL, "", 0)
	if err := v.Send(ctx, map[string]any{"type": "message", "client_id": "v1", "text": "hello?"}); err != nil {
		t.Fatal(err)
	}
	ack, err := v.Until(ctx, "ack", nil)
	if err != nil {
		t.Fatal(err)
	}
	conv := ack.ConversationID
	if _, err := ag.Until(ctx, "message", nil); err != nil {
		t.Fatalf("agent waiting for the visitor's message: %v", err)
	}
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
	// The visitor reads the reply; a bogus mark past the last message is
	// forwarded live but not remembered beyond what was delivered.
	for _, seq := range []int64{reply.Seq, reply.Seq + 100} {
		if err := v.Send(ctx, map[string]any{"type": "read", "seq": seq}); err != nil {
			t.Fatal(err)
		}
		if _, err := untilFrame(ctx, ag, "read", func(f client.Frame) bool { return f.Seq == seq }); err != nil {
			t.Fatalf("agent waiting for the visitor's read mark %d: %v", seq, err)
		}
	}

	ag.CloseNow()
	again, view := agentHello(t, ctx, session)
	if view.Status != "online" {
		t.Fatalf("reconnected agent is %s", view.Status)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f, err := again.Until(wait, "read", nil)
	if err != nil {
		t.Fatalf("the reconnected agent got no read mark: %v", err)
	}
	if f.ConversationID != conv || f.Seq != reply.Seq || f.Reader != "visitor" {
		t.Fatalf("read mark after reconnecting: conversation %s seq %d reader %q, want %s %d visitor", f.ConversationID, f.Seq, f.Reader, conv, reply.Seq)
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
