package webhook

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// BenchmarkEnqueue writes events to the durable outbox (fsync on), one
// subscription each, from one writer (as the service did) and from as
// many as it runs now (enqueuers), as under a burst of events.
func BenchmarkEnqueue(b *testing.B) {
	for _, writers := range []int{1, enqueuers} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) {
			ctx := context.Background()
			st, err := bolt.Open(filepath.Join(b.TempDir(), "db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if err := st.PutSite(ctx, chat.Site{Key: "shop"}); err != nil {
				b.Fatal(err)
			}
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
