package redis_test

import (
	"log/slog"
	"testing"
	"time"

	rstore "github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// TestBrokerSlotMove moves the slot of a subscribed sharded channel to
// another master, as resharding does: Redis drops the subscription, and
// the broker resubscribes on the new owner by itself.
func TestBrokerSlotMove(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cl := redistest.NewCluster(t)
	a := rstore.NewBroker(cl.Client(t), rstore.BrokerOptions{})
	b := rstore.NewBroker(cl.Client(t), rstore.BrokerOptions{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	defer a.Close()
	defer b.Close()
	got := make(collector, 1000)
	if _, err := b.Subscribe(ctx, "conv:1", got.handle); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "conv:1", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if p := got.next(t); p != "before" {
		t.Fatalf("got %q, want before", p)
	}

	nodes := cl.Nodes()
	c0 := nodes[0].Client(t)
	slot, err := c0.ClusterKeySlot(ctx, "lifeline:t:conv:1").Result()
	if err != nil {
		t.Fatal(err)
	}
	src := -1
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.Client(t).ClusterMyID(ctx).Val()
		// Only the owner accepts SPUBLISH; the others answer MOVED.
		if _, err := n.Client(t).Do(ctx, "SPUBLISH", "lifeline:t:conv:1", "probe").Result(); err == nil {
			src = i
		}
	}
	if p := got.next(t); p != "probe" {
		t.Fatalf("got %q, want probe", p)
	}
	if src < 0 {
		t.Fatal("no node owns the slot")
	}
	dst := (src + 1) % len(nodes)
	srcC, dstC := nodes[src].Client(t), nodes[dst].Client(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(dstC.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src]).Err())
	must(srcC.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst]).Err())
	must(dstC.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", ids[dst]).Err())
	must(srcC.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", ids[dst]).Err())
	for i := range nodes {
		if i != src && i != dst {
			must(nodes[i].Client(t).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", ids[dst]).Err())
		}
	}
	for {
		_ = a.Publish(ctx, "conv:1", []byte("after"))
		select {
		case p := <-got:
			if p != "after" {
				t.Fatalf("got %q, want after", p)
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no delivery after the slot moved")
		}
	}
}
