package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// Benchmarks of a visitor's message reaching an agent over real sockets:
// on one node with the embedded store, on one node on Redis, and across two
// nodes on one Redis (visitor on A, agent on B). Run with
//
//	go test -run '^$' -bench VisitorToAgent -benchtime 2000x ./cmd/lifeline

// benchSetup builds the nodes of a mode and returns the visitors' node and
// the agent's node.
type benchSetup struct {
	name  string
	nodes func(b *testing.B) (visitors, agent *hubNode, st chat.Store)
}

var benchSetups = []benchSetup{
	{"embedded-one-node", func(b *testing.B) (*hubNode, *hubNode, chat.Store) {
		st, err := bolt.Open(filepath.Join(b.TempDir(), "lifeline.db"), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		br := chat.NewMemoryBroker()
		b.Cleanup(func() { br.Close() })
		n := newHubNode(b, st, br, "A", benchTune)
		return n, n, st
	}},
	{"redis-one-node", func(b *testing.B) (*hubNode, *hubNode, chat.Store) {
		st, nodes := redisBenchNodes(b, 1)
		return nodes[0], nodes[0], st
	}},
	{"redis-cross-node", func(b *testing.B) (*hubNode, *hubNode, chat.Store) {
		st, nodes := redisBenchNodes(b, 2)
		return nodes[0], nodes[1], st
	}},
}

// benchTune lifts the per-socket frame rate limit, which a benchmark
// would otherwise measure.
func benchTune(c *chat.Config) {
	c.FrameRate, c.FrameBurst, c.SendQueue = 1e9, 1<<30, 4096
}

// redisBenchNodes starts n nodes on a Redis with appendfsync always, the
// setting under which acknowledged messages survive a Redis restart, so
// both stores pay for durability before the ack.
func redisBenchNodes(b *testing.B, n int) (chat.Store, []*hubNode) {
	rdb := redistest.Server(b, redistest.AOF()).Client(b)
	prefix := redistest.Prefix(b)
	st := redis.NewStore(rdb, redis.StoreOptions{Prefix: prefix})
	b.Cleanup(func() { st.Close() })
	var nodes []*hubNode
	for i := range n {
		br := redis.NewBroker(rdb, redis.BrokerOptions{Prefix: prefix})
		b.Cleanup(func() { br.Close() })
		nodes = append(nodes, newHubNode(b, st, br, string(rune('A'+i)), benchTune))
	}
	return st, nodes
}

// benchAgent reads an agent socket, counting visitor messages and passing
// their client ids on.
type benchAgent struct {
	received atomic.Int64
	got      chan string
}

// benchVisitor is a visitor socket whose acks are passed on.
type benchVisitor struct {
	c    *client.Conn
	acks chan string
}

// benchConversations connects an agent and k visitors, starts one
// conversation per visitor and waits until the agent sees each.
func benchConversations(ctx context.Context, b *testing.B, s benchSetup, k int) (*benchAgent, []*benchVisitor) {
	vnode, anode, st := s.nodes(b)
	site, err := chat.NewSite("demo", "Demo", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.PutSite(ctx, site); err != nil {
		b.Fatal(err)
	}
	agent := chat.Agent{ID: "agent", Email: "agent@example.com", Role: chat.RoleAgent, Capacity: k, CreatedAt: time.Now()}
	if err := st.CreateAgent(ctx, agent); err != nil {
		b.Fatal(err)
	}
	ac, _, err := anode.dialAgent(ctx, agent.ID)
	if err != nil {
		b.Fatal(err)
	}
	a := &benchAgent{got: make(chan string, 1024)}
	var wg sync.WaitGroup
	conns := []*client.Conn{ac}
	b.Cleanup(func() {
		for _, c := range conns {
			c.CloseNow()
		}
		wg.Wait()
	})
	wg.Go(func() {
		for {
			f, err := ac.Next(ctx)
			if err != nil {
				return
			}
			if f.Type != "message" {
				continue
			}
			if m, err := f.ChatMessage(); err == nil && m.Author.Kind == chat.AuthorVisitor {
				a.received.Add(1)
				select {
				case a.got <- m.ClientID:
				default:
				}
			}
		}
	})
	var visitors []*benchVisitor
	for i := range k {
		c, err := vnode.dialVisitor(ctx, "demo")
		if err != nil {
			b.Fatal(err)
		}
		v := &benchVisitor{c: c, acks: make(chan string, 16)}
		conns = append(conns, c)
		wg.Go(func() {
			for {
				f, err := c.Next(ctx)
				if err != nil {
					return
				}
				if f.Type == "ack" {
					v.acks <- f.ClientID
				}
			}
		})
		if err := c.Send(ctx, map[string]any{"type": "message", "client_id": "start", "text": fmt.Sprint("visitor ", i, " here")}); err != nil {
			b.Fatal(err)
		}
		<-v.acks
		visitors = append(visitors, v)
	}
	for a.received.Load() < int64(k) { // assigned, joined and shown the first message
		if ctx.Err() != nil {
			b.Fatalf("the agent saw %d of %d conversations start", a.received.Load(), k)
		}
		time.Sleep(time.Millisecond)
	}
	for len(a.got) > 0 {
		<-a.got
	}
	return a, visitors
}

// BenchmarkVisitorToAgent measures a visitor's message to the agent's
// screen: latency with one message in flight (p50 and p99 from send to
// the agent's socket), and throughput with 16 visitors each sending as fast
// as acknowledgements allow.
func BenchmarkVisitorToAgent(b *testing.B) {
	for _, s := range benchSetups {
		b.Run(s.name+"/latency", func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			a, vs := benchConversations(ctx, b, s, 1)
			v := vs[0]
			var lat []time.Duration
			i := 0
			for b.Loop() {
				i++
				id := strconv.Itoa(i)
				t0 := time.Now()
				if err := v.c.Send(ctx, map[string]any{"type": "message", "client_id": id, "text": "where is my order?"}); err != nil {
					b.Fatal(err)
				}
				for got := range a.got {
					if got == id {
						break
					}
				}
				lat = append(lat, time.Since(t0))
				<-v.acks
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run(s.name+"/throughput", func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			const senders = 16
			a, vs := benchConversations(ctx, b, s, senders)
			base := a.received.Load()
			work := make(chan int, senders)
			var wg sync.WaitGroup
			for _, v := range vs {
				wg.Go(func() {
					for i := range work {
						id := strconv.Itoa(i)
						if err := v.c.Send(ctx, map[string]any{"type": "message", "client_id": id, "text": "where is my order?"}); err != nil {
							b.Error(err)
							return
						}
						for got := range v.acks {
							if got == id {
								break
							}
						}
					}
				})
			}
			start := time.Now()
			n := 0
			for b.Loop() {
				n++
				work <- n
			}
			close(work)
			wg.Wait()
			for a.received.Load()-base < int64(n) && ctx.Err() == nil {
				time.Sleep(100 * time.Microsecond)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
