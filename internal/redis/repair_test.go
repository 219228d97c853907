package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	rstore "github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// TestStoreRepairsAfterCrash plants what a node killed between the steps
// of a multi-slot write leaves behind (an index entry and a committed load
// entry that the conversation record contradicts) and checks that reads
// ignore and remove them.
func TestStoreRepairsAfterCrash(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			prefix := redistest.Prefix(t)
			rdb := be.client(t)
			s := rstore.NewStore(rdb, rstore.StoreOptions{Prefix: prefix})
			newConv(t, s, "c1", time.Now())
			// Left over: c1 listed as resolved and as a1's committed load,
			// and an index entry for a conversation never written.
			rdb.ZAdd(ctx, prefix+"{ix:st:resolved}", redisZ("c1"), redisZ("ghost"))
			rdb.HSet(ctx, prefix+"{a:a1}:open", "c1", "c:0:deadbeef")
			got, err := s.Conversations(ctx, chat.ConversationQuery{Statuses: []chat.Status{chat.StatusResolved}})
			if err != nil || len(got) != 0 {
				t.Fatalf("Conversations(resolved) = %v, %v; want none", got, err)
			}
			if n := rdb.ZCard(ctx, prefix+"{ix:st:resolved}").Val(); n != 0 {
				t.Errorf("stale index entries left: %d", n)
			}
			if n, err := s.AgentLoad(ctx, "a1"); err != nil || n != 0 {
				t.Fatalf("AgentLoad(a1) = %d, %v; want 0", n, err)
			}
			if n := rdb.HLen(ctx, prefix+"{a:a1}:open").Val(); n != 0 {
				t.Errorf("stale load entries left: %d", n)
			}
			// A stale entry does not block Assign at capacity 1.
			rdb.HSet(ctx, prefix+"{a:a1}:open", "ghost", "c:0:deadbeef")
			if _, err := s.Assign(ctx, "c1", "a1", 1, time.Now()); err != nil {
				t.Fatalf("Assign over a stale load entry = %v", err)
			}
			// The waiting queue no longer lists c1; the agent's list does.
			if got, _ := s.Conversations(ctx, chat.ConversationQuery{Statuses: []chat.Status{chat.StatusWaiting}}); len(got) != 0 {
				t.Errorf("waiting after Assign = %d, want 0", len(got))
			}
			if got, _ := s.Conversations(ctx, chat.ConversationQuery{AgentID: "a1"}); len(got) != 1 {
				t.Errorf("agent a1's conversations = %d, want 1", len(got))
			}
		})
	}
}
