package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	rstore "github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

func newConv(t *testing.T, s chat.Store, id string, created time.Time) chat.Conversation {
	t.Helper()
	c := chat.Conversation{
		ID: id, Ref: "LF-" + id, SiteKey: "site", VisitorID: "v-" + id,
		Status: chat.StatusWaiting, CreatedAt: created, UpdatedAt: created,
	}
	if err := s.CreateConversation(context.Background(), c); err != nil {
		t.Fatalf("CreateConversation(%s) = %v", id, err)
	}
	return c
}

func TestStoreAppendConcurrent(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			prefix := redistest.Prefix(t)
			// Two stores on one backend: two nodes appending at once.
			a := rstore.NewStore(be.client(t), rstore.StoreOptions{Prefix: prefix})
			b := rstore.NewStore(be.client(t), rstore.StoreOptions{Prefix: prefix})
			newConv(t, a, "c1", time.Now())
			const n = 50
			var wg sync.WaitGroup
			errs := make(chan error, 2*n)
			for i := range n {
				for _, s := range []chat.Store{a, b} {
					wg.Go(func() {
						// Both nodes send the same client ID: stored once.
						_, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: "c1", ClientID: fmt.Sprint("m", i), Text: fmt.Sprint(i)})
						errs <- err
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("AppendMessage = %v", err)
				}
			}
			msgs, err := a.Messages(ctx, "c1", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != n {
				t.Fatalf("len(Messages) = %d, want %d", len(msgs), n)
			}
			seen := map[string]bool{}
			for i, m := range msgs {
				if m.Seq != int64(i+1) {
					t.Errorf("msgs[%d].Seq = %d, want %d", i, m.Seq, i+1)
				}
				if seen[m.ClientID] {
					t.Errorf("client ID %s stored twice", m.ClientID)
				}
				seen[m.ClientID] = true
			}
			c, err := b.Conversation(ctx, "c1")
			if err != nil || c.LastSeq != n {
				t.Fatalf("Conversation = %+v, %v; want LastSeq %d", c, err, n)
			}
			page, err := b.Messages(ctx, "c1", 10, 5)
			if err != nil || len(page) != 5 || page[0].Seq != 11 || page[4].Seq != 15 {
				t.Fatalf("Messages(after 10, limit 5) = %d msgs, %v", len(page), err)
			}
			if _, _, err := a.AppendMessage(ctx, chat.Message{ConversationID: "nope", ClientID: "x"}); !errors.Is(err, chat.ErrNotFound) {
				t.Fatalf("AppendMessage(missing conversation) = %v, want ErrNotFound", err)
			}
		})
	}
}

// TestStoreAssignRace has two nodes race to assign the same waiting
// conversations to agents with capacity: each is assigned exactly once and
// no agent goes over capacity.
func TestStoreAssignRace(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			prefix := redistest.Prefix(t)
			nodes := []chat.Store{
				rstore.NewStore(be.client(t), rstore.StoreOptions{Prefix: prefix}),
				rstore.NewStore(be.client(t), rstore.StoreOptions{Prefix: prefix}),
			}
			const convs, agents, capacity = 60, 5, 4 // 20 slots for 60 conversations
			base := time.Now()
			for i := range convs {
				newConv(t, nodes[0], fmt.Sprint("c", i), base.Add(time.Duration(i)*time.Millisecond))
			}
			var mu sync.Mutex
			wins := map[string]string{}
			var wg sync.WaitGroup
			for _, s := range nodes {
				wg.Go(func() {
					for i := range convs {
						for a := range agents {
							id, agent := fmt.Sprint("c", i), fmt.Sprint("a", a)
							_, err := s.Assign(ctx, id, agent, capacity, time.Now())
							if err == nil {
								mu.Lock()
								if prev, ok := wins[id]; ok {
									t.Errorf("%s assigned twice: %s and %s", id, prev, agent)
								}
								wins[id] = agent
								mu.Unlock()
								break
							}
							if errors.Is(err, chat.ErrConflict) {
								break
							}
							if !errors.Is(err, chat.ErrCapacity) {
								t.Errorf("Assign(%s, %s) = %v", id, agent, err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			if len(wins) != agents*capacity {
				t.Errorf("%d conversations assigned, want %d", len(wins), agents*capacity)
			}
			for a := range agents {
				agent := fmt.Sprint("a", a)
				n, err := nodes[1].AgentLoad(ctx, agent)
				if err != nil || n != capacity {
					t.Errorf("AgentLoad(%s) = %d, %v; want %d", agent, n, err, capacity)
				}
				mine, err := nodes[0].Conversations(ctx, chat.ConversationQuery{AgentID: agent, Statuses: []chat.Status{chat.StatusActive}})
				if err != nil || len(mine) != capacity {
					t.Errorf("Conversations(agent %s) = %d, %v; want %d", agent, len(mine), err, capacity)
				}
			}
			waiting, err := nodes[0].Conversations(ctx, chat.ConversationQuery{Statuses: []chat.Status{chat.StatusWaiting}, Limit: 1000})
			if err != nil || len(waiting) != convs-agents*capacity {
				t.Fatalf("waiting = %d, %v; want %d", len(waiting), err, convs-agents*capacity)
			}
			// Resolving one frees a slot at once.
			var first string
			for id, agent := range wins {
				if agent == "a0" {
					first = id
					break
				}
			}
			if _, err := nodes[1].UpdateConversation(ctx, first, func(c *chat.Conversation) error {
				c.Status = chat.StatusResolved
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n, err := nodes[0].AgentLoad(ctx, "a0"); err != nil || n != capacity-1 {
				t.Fatalf("AgentLoad(a0) after resolve = %d, %v; want %d", n, err, capacity-1)
			}
			if _, err := nodes[0].Assign(ctx, waiting[0].ID, "a0", capacity, time.Now()); err != nil {
				t.Fatalf("Assign after resolve = %v", err)
			}
		})
	}
}

// TestStoreDurableAcrossRestart: an append acknowledged by a server with
// appendfsync always survives SIGKILL of that server.
func TestStoreDurableAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Server(t, redistest.AOF())
	s := rstore.NewStore(srv.Client(t), rstore.StoreOptions{})
	newConv(t, s, "c1", time.Now())
	for i := range 20 {
		if _, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: "c1", ClientID: fmt.Sprint(i), Text: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Restart(t)
	var msgs []chat.Message
	var err error
	for range 50 { // the pool's old connections fail once
		if msgs, err = s.Messages(ctx, "c1", 0, 0); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || len(msgs) != 20 {
		t.Fatalf("Messages after restart = %d, %v; want 20", len(msgs), err)
	}
	m, created, err := s.AppendMessage(ctx, chat.Message{ConversationID: "c1", ClientID: "19"})
	if err != nil || created || m.Seq != 20 {
		t.Fatalf("retry of acknowledged append = seq %d, created %v, %v; want 20, false", m.Seq, created, err)
	}
	if m, _, err = s.AppendMessage(ctx, chat.Message{ConversationID: "c1", ClientID: "20"}); err != nil || m.Seq != 21 {
		t.Fatalf("append after restart = seq %d, %v; want 21", m.Seq, err)
	}
}

// TestStoreUpdateConcurrent: read-modify-write from two nodes while
// messages are appended loses no update and keeps LastSeq.
func TestStoreUpdateConcurrent(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			prefix := redistest.Prefix(t)
			a := rstore.NewStore(be.client(t), rstore.StoreOptions{Prefix: prefix})
			b := rstore.NewStore(be.client(t), rstore.StoreOptions{Prefix: prefix})
			newConv(t, a, "c1", time.Now())
			const n = 30
			var wg sync.WaitGroup
			for _, s := range []chat.Store{a, b} {
				wg.Go(func() {
					for range n {
						if _, err := s.UpdateConversation(ctx, "c1", func(c *chat.Conversation) error {
							c.Priority++
							c.LastSeq = -1 // must be ignored
							return nil
						}); err != nil {
							t.Errorf("UpdateConversation = %v", err)
							return
						}
					}
				})
				wg.Go(func() {
					for i := range n {
						if _, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: "c1", ClientID: fmt.Sprint(s == a, i)}); err != nil {
							t.Errorf("AppendMessage = %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			c, err := a.Conversation(ctx, "c1")
			if err != nil || c.Priority != 2*n || c.LastSeq != 2*n {
				t.Fatalf("Conversation = priority %d, last seq %d, %v; want %d, %d", c.Priority, c.LastSeq, err, 2*n, 2*n)
			}
			sentinel := errors.New("no")
			if _, err := a.UpdateConversation(ctx, "c1", func(*chat.Conversation) error { return sentinel }); !errors.Is(err, sentinel) {
				t.Fatalf("UpdateConversation(fn error) = %v, want the fn's error", err)
			}
			if _, err := a.UpdateConversation(ctx, "nope", func(*chat.Conversation) error { return nil }); !errors.Is(err, chat.ErrNotFound) {
				t.Fatalf("UpdateConversation(missing) = %v, want ErrNotFound", err)
			}
		})
	}
}
