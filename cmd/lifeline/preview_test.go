package main

import (
	"encoding/json"
	"testing"

	"github.com/lifelinehq/lifeline/chat"
)

// An agent watching the queue sees what a waiting visitor says as they
// say it (each message moves the conversation's preview on), and a fresh
// list from the API carries the same preview.
func TestQueueShowsWhatTheVisitorSays(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	session, agent := awayAgent(t, ctx, n.URL)
	v, _ := visitor(t, ctx, n.URL, "", 0)
	say := func(clientID, text string) {
		t.Helper()
		if err := v.Send(ctx, map[string]any{"type": "message", "client_id": clientID, "text": text}); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Until(ctx, "ack", nil); err != nil {
			t.Fatal(err)
		}
	}
	queued := func(want string, seq int64) {
		t.Helper()
		for {
			f, err := agent.Until(ctx, "conversation", nil)
			if err != nil {
				t.Fatalf("waiting for the queue to show %q: %v", want, err)
			}
			var c chat.Conversation
			if err := json.Unmarshal(f.Conversation, &c); err != nil {
				t.Fatal(err)
			}
			if c.Status != chat.StatusWaiting {
				t.Fatalf("conversation %s is %s, want it waiting", c.Ref, c.Status)
			}
			if c.Last != nil && c.LastSeq == seq {
				if c.Last.Text != want || c.Last.Author != chat.AuthorVisitor {
					t.Fatalf("queue shows %+v at seq %d, want %q by the visitor", c.Last, seq, want)
				}
				return
			}
		}
	}
	say("m1", "help")
	queued("help", 1)
	say("m2", "My card was declined\n\ntwice")
	queued("My card was declined twice", 2)

	var list struct{ Conversations []chat.Conversation }
	if err := session.Do(ctx, "GET", "/api/v1/conversations?status=waiting", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Conversations) != 1 || list.Conversations[0].Last == nil || list.Conversations[0].Last.Text != "My card was declined twice" {
		t.Fatalf("waiting conversations from the API = %+v, want one with the last message's preview", list.Conversations)
	}
}
