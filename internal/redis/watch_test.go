package redis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/chat"
	rstore "github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// Many more updates at once than the client has connections: each WATCH
// transaction holds a connection while it updates indexes and agent loads
// on others, and none may wait forever for one. With the transactions
// unbounded, a pool of four connections deadlocked on the first four
// until their contexts ended.
func TestStoreUpdatesAtOnce(t *testing.T) {
	const pool, n = 4, 64
	for _, be := range []backend{
		{"single", func(t *testing.T) redis.UniversalClient {
			c := redis.NewClient(&redis.Options{Addr: redistest.Shared(t).Addr(), Protocol: 2, PoolSize: pool})
			t.Cleanup(func() { c.Close() })
			return c
		}},
		{"cluster", func(t *testing.T) redis.UniversalClient {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: redistest.Cluster(t).Addrs(), Protocol: 2, PoolSize: pool})
			t.Cleanup(func() { c.Close() })
			return c
		}},
	} {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s := rstore.NewStore(be.client(t), rstore.StoreOptions{Prefix: redistest.Prefix(t)})
			for i := range n {
				newConv(t, s, fmt.Sprint("c", i), time.Now())
				if err := s.PutVisitor(ctx, chat.Visitor{ID: fmt.Sprint("v", i), SiteKey: "site", CreatedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					if _, err := s.Assign(ctx, fmt.Sprint("c", i), fmt.Sprint("agent-", i), 1, time.Now()); err != nil {
						t.Errorf("Assign(c%d) = %v", i, err)
					}
				})
				wg.Go(func() {
					_, err := s.UpdateVisitor(ctx, fmt.Sprint("v", i), func(v *chat.Visitor) error {
						v.Email = fmt.Sprintf("v%d@example.com", i) // a new index entry
						return nil
					})
					if err != nil {
						t.Errorf("UpdateVisitor(v%d) = %v", i, err)
					}
				})
			}
			wg.Wait()
			for i := range n {
				if load, err := s.AgentLoad(ctx, fmt.Sprint("agent-", i)); err != nil || load != 1 {
					t.Fatalf("AgentLoad(agent-%d) = %d, %v; want 1", i, load, err)
				}
			}
		})
	}
}
