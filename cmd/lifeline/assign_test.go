package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// assignLog wraps a node's Store to record what each of its Assign calls
// did.
type assignLog struct {
	chat.Store
	mu        sync.Mutex
	wins      map[string][]string // conversation → agents it was given to
	conflicts int
	full      int
}

func (l *assignLog) Assign(ctx context.Context, id, agentID string, capacity int, now time.Time) (chat.Conversation, error) {
	c, err := l.Store.Assign(ctx, id, agentID, capacity, now)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		l.wins[id] = append(l.wins[id], agentID)
	case errors.Is(err, chat.ErrConflict):
		l.conflicts++
	case errors.Is(err, chat.ErrCapacity):
		l.full++
	}
	return c, err
}

// TestClusterAssignRace: two nodes on one Redis route the same 1,000
// waiting conversations at once to eight agents (four on each node) with
// room for 800: no conversation is assigned twice and no agent goes over
// capacity, counted both from every Assign the nodes made and from the
// store.
func TestClusterAssignRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rdb := redistest.Shared(t).Client(t)
	prefix := redistest.Prefix(t)
	st := redis.NewStore(rdb, redis.StoreOptions{Prefix: prefix})
	t.Cleanup(func() { st.Close() })

	const conversations, agents, capacity = 1000, 8, 100
	start := time.Now().Add(-time.Hour)
	for i := range conversations {
		c := chat.Conversation{ID: fmt.Sprintf("conv-%04d", i), Ref: fmt.Sprintf("LF-%04d", i), SiteKey: "demo",
			VisitorID: fmt.Sprintf("visitor-%04d", i), Status: chat.StatusWaiting,
			CreatedAt: start.Add(time.Duration(i) * time.Millisecond)}
		if err := st.CreateConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for i := range agents {
		a := chat.Agent{ID: fmt.Sprintf("agent-%d", i), Email: fmt.Sprintf("agent%d@example.com", i), Name: fmt.Sprint("Agent ", i),
			Role: chat.RoleAgent, Capacity: capacity, CreatedAt: time.Now()}
		if err := st.CreateAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}

	var logs []*assignLog
	var nodes []*hubNode
	for _, name := range []string{"A", "B"} {
		br := redis.NewBroker(rdb, redis.BrokerOptions{Prefix: prefix})
		t.Cleanup(func() { br.Close() })
		l := &assignLog{Store: redis.NewStore(rdb, redis.StoreOptions{Prefix: prefix}), wins: map[string][]string{}}
		t.Cleanup(func() { l.Close() })
		logs = append(logs, l)
		nodes = append(nodes, newHubNode(t, l, br, name, nil))
	}
	// Agents come online on both nodes together; every node's router races
	// for the whole queue.
	var wg sync.WaitGroup
	errs := make(chan error, agents)
	for i, id := range ids {
		c, _, err := nodes[i%2].dialAgent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		wg.Go(func() { // keep reading, or the node cuts the socket as too slow
			for {
				if _, err := c.Next(ctx); err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("%s: %w", id, err)
					}
					return
				}
			}
		})
	}
	defer wg.Wait()

	want := agents * capacity
	for {
		total := 0
		for _, id := range ids {
			n, err := st.AgentLoad(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		if total >= want {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d conversations assigned in time", total, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The store may show an assignment before the Assign call that made
	// it has returned to its node: wait for the nodes' logs to catch up.
	for {
		recorded := 0
		for _, l := range logs {
			l.mu.Lock()
			recorded += len(l.wins)
			l.mu.Unlock()
		}
		if recorded >= want || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	won := map[string][]string{}
	perAgent := map[string]int{}
	for i, l := range logs {
		l.mu.Lock()
		t.Logf("node %c: %d assignments won, %d lost to the other node, %d refused at capacity", 'A'+i, len(l.wins), l.conflicts, l.full)
		if len(l.wins)+l.conflicts+l.full == 0 {
			t.Errorf("node %c never tried to assign", 'A'+i)
		}
		for conv, to := range l.wins {
			won[conv] = append(won[conv], to...)
			for _, a := range to {
				perAgent[a]++
			}
		}
		l.mu.Unlock()
	}
	for conv, to := range won {
		if len(to) != 1 {
			t.Errorf("%s assigned %d times: %v", conv, len(to), to)
		}
	}
	if len(won) != want {
		t.Errorf("%d conversations assigned, want %d", len(won), want)
	}
	for _, id := range ids {
		load, err := st.AgentLoad(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if perAgent[id] > capacity || load > capacity {
			t.Errorf("%s was given %d conversations (load %d), capacity %d", id, perAgent[id], load, capacity)
		}
	}
	for _, status := range []chat.Status{chat.StatusActive, chat.StatusWaiting} {
		list, err := st.Conversations(ctx, chat.ConversationQuery{Statuses: []chat.Status{status}, Limit: conversations})
		if err != nil {
			t.Fatal(err)
		}
		wantN := want
		if status == chat.StatusWaiting {
			wantN = conversations - want
		}
		if len(list) != wantN {
			t.Errorf("%d conversations %s, want %d", len(list), status, wantN)
		}
		for _, c := range list {
			if status == chat.StatusActive && (len(won[c.ID]) != 1 || won[c.ID][0] != c.AgentID) {
				t.Errorf("%s is active with %s, but its Assign calls gave it to %v", c.ID, c.AgentID, won[c.ID])
			}
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("agent socket: %v", err)
	}
}
