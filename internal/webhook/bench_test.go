package webhook

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// benchStore opens a store that syncs, as a node's does, with the site
// "shop"; the benchmark's end closes it.
func benchStore(b *testing.B) *bolt.Store {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.PutSite(context.Background(), chat.Site{Key: "shop"}); err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkEnqueue writes events to the durable outbox (fsync on), one
// subscription each, from one writer (as the service did) and from as
// many as it runs now (enqueuers), as under a burst of events.
func BenchmarkEnqueue(b *testing.B) {
	for _, writers := range []int{1, enqueuers} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) {
			ctx := context.Background()
			st := benchStore(b)
			s := New(Options{Store: st, AllowHosts: []string{"127.0.0.1"}})
			if _, err := s.Subscribe(ctx, "shop", "http://127.0.0.1:9/hook", "", []chat.EventType{chat.EventConversationCreated}); err != nil {
				b.Fatal(err)
			}
			e := event(chat.EventConversationCreated)
			b.ReportAllocs()
			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for range writers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						s.enqueue(ctx, e)
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkDrain delivers a backlog of b.N deliveries (fsync on) to
// receivers on 127.0.0.1 that answer at once: one receiver, whose share
// of the workers bounds it, and eight, which use them all.
func BenchmarkDrain(b *testing.B) {
	for _, receivers := range []int{1, 8} {
		b.Run(fmt.Sprint("receivers=", receivers), func(b *testing.B) {
			ctx := context.Background()
			st := benchStore(b)
			var got atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got.Add(1) }))
			defer srv.Close()
			s := New(Options{Store: st, AllowHosts: []string{"127.0.0.1"}})
			for i := range receivers {
				if _, err := s.Subscribe(ctx, "shop", fmt.Sprintf("%s/%d", srv.URL, i), "", []chat.EventType{chat.EventConversationCreated}); err != nil {
					b.Fatal(err)
				}
			}
			e := event(chat.EventConversationCreated)
			events := (b.N + receivers - 1) / receivers
			var next atomic.Int64
			var wg sync.WaitGroup
			for range enqueuers {
				wg.Go(func() {
					for next.Add(1) <= int64(events) {
						s.enqueue(ctx, e)
					}
				})
			}
			wg.Wait()
			want := int64(events * receivers)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			s.Start(ctx)
			defer s.Stop()
			for got.Load() < want {
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(float64(want)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}
