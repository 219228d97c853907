package struggle

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

// BenchmarkHandleEvents measures the node's detection path per batch of 20
// events: decode, engine, journey and policy, over 1,000 visitors, one
// batch in ten carrying a struggle ("card declined").
func BenchmarkHandleEvents(b *testing.B) {
	f := newFixture(b)
	const visitors, rounds, batch = 1000, 10, 20
	kinds := []string{
		`"k":"click","sel":"button.add","x":10,"y":20`,
		`"k":"page","path":"/products"`,
		`"k":"request","method":"GET","path":"/api/stock","status":503`,
		`"k":"visibility","visible":true`,
	}
	type job struct {
		ref chat.VisitorRef
		raw [][]byte
	}
	base := f.clock.Now()
	var jobs []job
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
			jobs = append(jobs, job{chat.VisitorRef{SiteKey: "demo", VisitorID: fmt.Sprintf("v%d", v)}, raw})
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		j := &jobs[i%len(jobs)]
		f.svc.HandleEvents(ctx, j.ref, j.raw)
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
}
