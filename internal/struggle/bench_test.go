package struggle

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

// eventJob is one visitor's batch of behaviour events.
type eventJob struct {
	ref chat.VisitorRef
	raw [][]byte
}

// eventJobs returns rounds of batches of 20 events from 1,000 visitors of
// one site, one batch in ten carrying a struggle ("card declined"), in
// the order a node would see them.
func eventJobs(f *fixture) []eventJob {
	const visitors, rounds, batch = 1000, 10, 20
	kinds := []string{
		`"k":"click","sel":"button.add","x":10,"y":20`,
		`"k":"page","path":"/products"`,
		`"k":"request","method":"GET","path":"/api/stock","status":503`,
		`"k":"visibility","visible":true`,
	}
	base := f.clock.Now()
	var jobs []eventJob
	for r := range rounds {
		for v := range visitors {
			at := base.Add(time.Duration(r) * time.Second)
			raw := make([][]byte, batch)
			for j := range raw {
				k := kinds[j%len(kinds)]
				if v%10 == 0 && j%5 == 0 {
					k = `"k":"report","msg":"card declined"`
				}
				raw[j] = event(at.Add(time.Duration(j)*time.Millisecond), k)
			}
			jobs = append(jobs, eventJob{chat.VisitorRef{SiteKey: "demo", VisitorID: fmt.Sprintf("v%d", v)}, raw})
		}
	}
	return jobs
}

// BenchmarkHandleEvents measures the node's detection path per batch of 20
// events: decode, engine, journey and policy.
func BenchmarkHandleEvents(b *testing.B) {
	f := newFixture(b)
	jobs := eventJobs(f)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		j := &jobs[i%len(jobs)]
		f.svc.HandleEvents(ctx, j.ref, j.raw)
	}
	b.ReportMetric(float64(b.N*len(jobs[0].raw))/time.Since(start).Seconds(), "events/s")
}

// BenchmarkHandleEventsParallel is BenchmarkHandleEvents with batches of
// the one site's visitors handled on every CPU at once, as a node's
// sockets deliver them: what the site's shards are for.
func BenchmarkHandleEventsParallel(b *testing.B) {
	f := newFixture(b)
	jobs := eventJobs(f)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j := &jobs[(next.Add(1)-1)%int64(len(jobs))]
			f.svc.HandleEvents(ctx, j.ref, j.raw)
		}
	})
	b.ReportMetric(float64(b.N*len(jobs[0].raw))/time.Since(start).Seconds(), "events/s")
}
