package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/chat"
	rstore "github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// benchBackends mirrors backends for benchmarks.
func benchBackends() []struct {
	name   string
	client func(b *testing.B) redis.UniversalClient
} {
	return []struct {
		name   string
		client func(b *testing.B) redis.UniversalClient
	}{
		{"single", func(b *testing.B) redis.UniversalClient { return redistest.Shared(b).Client(b) }},
		{"cluster", func(b *testing.B) redis.UniversalClient { return redistest.Cluster(b).Client(b) }},
	}
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkAppend appends to one conversation from one goroutine: the
// latency of one durable append (one Lua script round trip).
func BenchmarkAppend(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			s := rstore.NewStore(be.client(b), rstore.StoreOptions{Prefix: redistest.Prefix(b)})
			c := chat.Conversation{ID: "c", Ref: "LF-C", SiteKey: "s", VisitorID: "v", Status: chat.StatusWaiting, CreatedAt: time.Now()}
			if err := s.CreateConversation(ctx, c); err != nil {
				b.Fatal(err)
			}
			m := chat.Message{ConversationID: "c", Author: chat.Author{Kind: chat.AuthorVisitor}, Text: "hello, I cannot check out"}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				m.ClientID = strconv.Itoa(i)
				if _, _, err := s.AppendMessage(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}

// BenchmarkAppendParallel appends from many goroutines, each to its own
// conversation (spread over the cluster's slots): throughput.
func BenchmarkAppendParallel(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			s := rstore.NewStore(be.client(b), rstore.StoreOptions{Prefix: redistest.Prefix(b)})
			var convs atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprint("c", convs.Add(1))
				c := chat.Conversation{ID: id, Ref: "LF-" + id, SiteKey: "s", VisitorID: "v", Status: chat.StatusWaiting, CreatedAt: time.Now()}
				if err := s.CreateConversation(ctx, c); err != nil {
					b.Error(err)
					return
				}
				m := chat.Message{ConversationID: id, Text: "hello, I cannot check out"}
				i := 0
				for pb.Next() {
					i++
					m.ClientID = strconv.Itoa(i)
					if _, _, err := s.AppendMessage(ctx, m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b)
		})
	}
}

// BenchmarkPublishDeliver publishes on one broker and waits for delivery
// on another (two nodes): the cross-node round trip, one at a time.
func BenchmarkPublishDeliver(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			prefix := redistest.Prefix(b)
			pub := rstore.NewBroker(be.client(b), rstore.BrokerOptions{Prefix: prefix})
			subB := rstore.NewBroker(be.client(b), rstore.BrokerOptions{Prefix: prefix})
			defer pub.Close()
			defer subB.Close()
			got := make(chan struct{}, 1)
			cancel, err := subB.Subscribe(ctx, "conv:bench", func([]byte) { got <- struct{}{} })
			if err != nil {
				b.Fatal(err)
			}
			defer cancel()
			payload := []byte(`{"type":"message","seq":1,"text":"hello, I cannot check out"}`)
			b.ReportAllocs()
			for b.Loop() {
				if err := pub.Publish(ctx, "conv:bench", payload); err != nil {
					b.Fatal(err)
				}
				<-got
			}
			reportRate(b)
		})
	}
}

// BenchmarkPublishDeliverParallel publishes from many goroutines to many
// topics and counts deliveries on the other node: throughput.
func BenchmarkPublishDeliverParallel(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			prefix := redistest.Prefix(b)
			pub := rstore.NewBroker(be.client(b), rstore.BrokerOptions{Prefix: prefix})
			subB := rstore.NewBroker(be.client(b), rstore.BrokerOptions{Prefix: prefix})
			defer pub.Close()
			defer subB.Close()
			const topics = 16
			var delivered atomic.Int64
			done := make(chan struct{}, 1)
			var want atomic.Int64
			want.Store(-1)
			for i := range topics {
				cancel, err := subB.Subscribe(ctx, fmt.Sprint("conv:", i), func([]byte) {
					if delivered.Add(1) == want.Load() {
						done <- struct{}{}
					}
				})
				if err != nil {
					b.Fatal(err)
				}
				defer cancel()
			}
			payload := []byte(`{"type":"message","seq":1,"text":"hello, I cannot check out"}`)
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				topic := fmt.Sprint("conv:", n.Add(1)%topics)
				for pb.Next() {
					if err := pub.Publish(ctx, topic, payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			// Wait for every delivery (pub/sub on loopback loses none).
			if want.Store(int64(b.N)); delivered.Load() < int64(b.N) {
				<-done
			}
			reportRate(b)
		})
	}
}
