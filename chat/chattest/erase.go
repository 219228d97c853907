package chattest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

// testDeleteConversation checks that a deleted conversation is gone from
// every lookup: by ID, by reference, from every listing, its messages and
// notes, and from its agent's load.
func testDeleteConversation(t *testing.T, s chat.Store) {
	ctx := context.Background()
	site, agent := newID("site"), newID("agent")
	c := conv(site, now())
	noErr(t, "CreateConversation", s.CreateConversation(ctx, c))
	keep := conv(site, now())
	keep.VisitorID = c.VisitorID
	noErr(t, "CreateConversation", s.CreateConversation(ctx, keep))
	_, err := s.Assign(ctx, c.ID, agent, 0, now())
	noErr(t, "Assign", err)
	for i := range 3 {
		_, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: c.ID, ClientID: fmt.Sprint("m", i), Text: "secret words"})
		noErr(t, "AppendMessage", err)
	}
	noErr(t, "AddNote", s.AddNote(ctx, chat.Note{ID: newID("note"), ConversationID: c.ID, Text: "note", At: now()}))

	noErr(t, "DeleteConversation", s.DeleteConversation(ctx, c.ID))
	noErr(t, "DeleteConversation again", s.DeleteConversation(ctx, c.ID))
	noErr(t, "DeleteConversation of an absent one", s.DeleteConversation(ctx, newID("conv")))

	_, err = s.Conversation(ctx, c.ID)
	wantErr(t, "Conversation after delete", err, chat.ErrNotFound)
	_, err = s.ConversationByRef(ctx, c.Ref)
	wantErr(t, "ConversationByRef after delete", err, chat.ErrNotFound)
	_, err = s.Messages(ctx, c.ID, 0, 0)
	wantErr(t, "Messages after delete", err, chat.ErrNotFound)
	if notes, err := s.Notes(ctx, c.ID); err == nil && len(notes) > 0 {
		t.Errorf("Notes after delete = %d notes, want none", len(notes))
	}
	if n, err := s.AgentLoad(ctx, agent); err != nil || n != 0 {
		t.Errorf("AgentLoad after delete = %d, %v; want 0", n, err)
	}
	for _, q := range []chat.ConversationQuery{
		{SiteKey: site}, {VisitorID: c.VisitorID}, {AgentID: agent},
		{SiteKey: site, Statuses: []chat.Status{chat.StatusActive}},
	} {
		list, err := s.Conversations(ctx, q)
		noErr(t, "Conversations", err)
		for _, got := range list {
			if got.ID == c.ID {
				t.Errorf("Conversations(%+v) lists the deleted conversation", q)
			}
		}
	}
	list, err := s.Conversations(ctx, chat.ConversationQuery{VisitorID: c.VisitorID})
	noErr(t, "Conversations", err)
	if len(list) != 1 || list[0].ID != keep.ID {
		t.Errorf("Conversations of the visitor = %d, want only the kept one", len(list))
	}
	// The reference is free again.
	again := conv(site, now())
	again.Ref = c.Ref
	noErr(t, "CreateConversation with the deleted reference", s.CreateConversation(ctx, again))
}

func testDeleteVisitor(t *testing.T, s chat.Store) {
	ctx := context.Background()
	site := newID("site")
	v := chat.Visitor{ID: newID("vis"), SiteKey: site, Email: "Erase.Me@example.com", ExternalID: newID("ext"), CreatedAt: now(), LastSeen: now()}
	other := chat.Visitor{ID: newID("vis"), SiteKey: site, Email: "erase.me@example.com", CreatedAt: now(), LastSeen: now()}
	noErr(t, "PutVisitor", s.PutVisitor(ctx, v))
	noErr(t, "PutVisitor", s.PutVisitor(ctx, other))
	noErr(t, "DeleteVisitor", s.DeleteVisitor(ctx, v.ID))
	noErr(t, "DeleteVisitor again", s.DeleteVisitor(ctx, v.ID))
	_, err := s.Visitor(ctx, v.ID)
	wantErr(t, "Visitor after delete", err, chat.ErrNotFound)
	for _, q := range []chat.VisitorQuery{{SiteKey: site, Email: v.Email}, {SiteKey: site, ExternalID: v.ExternalID}, {SiteKey: site}} {
		list, err := s.FindVisitors(ctx, q)
		noErr(t, "FindVisitors", err)
		for _, got := range list {
			if got.ID == v.ID {
				t.Errorf("FindVisitors(%+v) finds the deleted visitor", q)
			}
		}
	}
	list, err := s.FindVisitors(ctx, chat.VisitorQuery{SiteKey: site, Email: v.Email})
	noErr(t, "FindVisitors", err)
	if len(list) != 1 || list[0].ID != other.ID {
		t.Errorf("FindVisitors by email = %v, want only the other visitor", list)
	}
}

func testOutbox(t *testing.T, s chat.Store) {
	ctx := context.Background()
	q := newID("queue")
	t0 := now()
	wantErr(t, "PutOutbox without ID", s.PutOutbox(ctx, q, chat.OutboxItem{Due: t0}), chat.ErrInvalid)
	wantErr(t, "PutOutbox without queue", s.PutOutbox(ctx, "", chat.OutboxItem{ID: "a", Due: t0}), chat.ErrInvalid)
	for i, id := range []string{"c", "a", "b"} {
		noErr(t, "PutOutbox", s.PutOutbox(ctx, q, chat.OutboxItem{ID: id, Due: t0.Add(time.Duration(i) * time.Second), Data: []byte("data " + id)}))
	}
	noErr(t, "PutOutbox in the future", s.PutOutbox(ctx, q, chat.OutboxItem{ID: "later", Due: t0.Add(time.Hour), Data: []byte("x")}))
	items, err := s.OutboxItems(ctx, q, 0)
	noErr(t, "OutboxItems", err)
	if len(items) != 4 || items[0].ID != "c" || items[1].ID != "a" || items[3].ID != "later" || string(items[1].Data) != "data a" || !ms(items[1].Due).Equal(t0.Add(time.Second)) {
		t.Fatalf("OutboxItems = %+v, want c, a, b, later by due time", items)
	}
	// Replacing moves the due time.
	noErr(t, "PutOutbox replace", s.PutOutbox(ctx, q, chat.OutboxItem{ID: "c", Due: t0.Add(3 * time.Second), Data: []byte("data c2")}))

	got, err := s.ClaimOutbox(ctx, q, t0.Add(10*time.Second), time.Minute, 2)
	noErr(t, "ClaimOutbox", err)
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Fatalf("ClaimOutbox = %+v, want a, b", got)
	}
	got, err = s.ClaimOutbox(ctx, q, t0.Add(10*time.Second), time.Minute, 10)
	noErr(t, "ClaimOutbox", err)
	if len(got) != 1 || got[0].ID != "c" || string(got[0].Data) != "data c2" {
		t.Fatalf("second ClaimOutbox = %+v, want only c with its new data", got)
	}
	got, err = s.ClaimOutbox(ctx, q, t0.Add(20*time.Second), time.Minute, 10)
	noErr(t, "ClaimOutbox", err)
	if len(got) != 0 {
		t.Fatalf("ClaimOutbox within the lease = %+v, want nothing", got)
	}
	// After the lease, unacknowledged items come back.
	noErr(t, "DeleteOutbox", s.DeleteOutbox(ctx, q, "a"))
	noErr(t, "DeleteOutbox of an absent item", s.DeleteOutbox(ctx, q, "nope"))
	got, err = s.ClaimOutbox(ctx, q, t0.Add(2*time.Minute), time.Minute, 10)
	noErr(t, "ClaimOutbox", err)
	if len(got) != 2 || got[0].ID == "a" || got[1].ID == "a" {
		t.Fatalf("ClaimOutbox after the lease = %+v, want b and c", got)
	}
	if items, _ := s.OutboxItems(ctx, newID("queue"), 0); len(items) != 0 {
		t.Errorf("OutboxItems of another queue = %v, want none", items)
	}
}

// testOutboxClaimRace checks that racing claims never hand one item to two
// callers.
func testOutboxClaimRace(t *testing.T, s chat.Store) {
	ctx := context.Background()
	q := newID("queue")
	t0 := now()
	const n = 40
	for i := range n {
		noErr(t, "PutOutbox", s.PutOutbox(ctx, q, chat.OutboxItem{ID: fmt.Sprint("item", i), Due: t0}))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				got, err := s.ClaimOutbox(ctx, q, t0.Add(time.Second), time.Hour, 3)
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, it := range got {
					seen[it.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("claimed %d distinct items, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("item %s claimed %d times, want once", id, k)
		}
	}
}
