package load

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// runtimeStats is what a node's /metrics says of its Go runtime at one
// moment: how many collections it has run and how long their pauses
// took, and how long its goroutines have waited for a CPU once ready.
// Read at both edges of the window, they tell a slow run on a host short
// of CPU (goroutines queueing) from one slowed by the collector.
type runtimeStats struct {
	gcCycles   uint64
	gcPause    float64       // seconds, summed
	schedCount uint64        // wake-ups counted
	sched      []schedBucket // cumulative, by upper bound
}

// schedBucket is one bucket of go_sched_latencies_seconds.
type schedBucket struct {
	le    float64 // upper bound, seconds
	count uint64  // wake-ups that waited at most le
}

// SchedWait is the share of the node's goroutine wake-ups in the window
// that waited longer than a bound for a CPU.
type SchedWait struct {
	OverMs  float64 `json:"over_ms"`
	Percent float64 `json:"percent"`
}

// readRuntime scrapes the node's /metrics (Prometheus text), giving up
// after 5 s.
func readRuntime(ctx context.Context, t *target) (runtimeStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.u.JoinPath("metrics").String(), nil)
	if err != nil {
		return runtimeStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return runtimeStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return runtimeStats{}, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	return parseRuntime(io.LimitReader(resp.Body, maxMetrics))
}

// maxMetrics bounds the /metrics text read: a node's is tens of KiB.
const maxMetrics = 8 << 20

// parseRuntime takes the runtime series out of a /metrics text. A node
// without them (an older build, a collector turned off) is an error.
func parseRuntime(r io.Reader) (runtimeStats, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return runtimeStats{}, fmt.Errorf("parse /metrics: %w", err)
	}
	var s runtimeStats
	gc := only(fams["go_gc_duration_seconds"]).GetSummary()
	sched := only(fams["go_sched_latencies_seconds"]).GetHistogram()
	if gc == nil || sched == nil {
		return s, fmt.Errorf("/metrics has no go_gc_duration_seconds or go_sched_latencies_seconds")
	}
	s.gcCycles, s.gcPause = gc.GetSampleCount(), gc.GetSampleSum()
	s.schedCount = sched.GetSampleCount()
	for _, b := range sched.GetBucket() {
		s.sched = append(s.sched, schedBucket{le: b.GetUpperBound(), count: b.GetCumulativeCount()})
	}
	return s, nil
}

// only is a family's one series, nil if it has none or several (the
// getters on a nil *dto.Metric return nil).
func only(f *dto.MetricFamily) *dto.Metric {
	if len(f.GetMetric()) != 1 {
		return nil
	}
	return f.GetMetric()[0]
}

// schedWaitOver are the bounds the report gives shares over, in seconds.
// The Go collector's buckets are coarse (0.92, 10.5 and 117 ms among
// them); each share is over the bucket bound nearest the wanted one.
var schedWaitOver = []float64{0.001, 0.01, 0.1}

// since fills u's runtime figures with what happened between a and b.
func (b runtimeStats) since(a runtimeStats, u *ServerUsage) {
	u.GCCycles = b.gcCycles - a.gcCycles
	u.GCPauseMs = (b.gcPause - a.gcPause) * 1000
	total := b.schedCount - a.schedCount
	if len(a.sched) != len(b.sched) || total == 0 {
		return
	}
	for _, over := range schedWaitOver {
		i := nearestBound(b.sched, over)
		if i < 0 || b.sched[i].le != a.sched[i].le {
			continue
		}
		within := b.sched[i].count - a.sched[i].count
		u.SchedWait = append(u.SchedWait, SchedWait{
			OverMs:  b.sched[i].le * 1000,
			Percent: 100 * float64(total-within) / float64(total),
		})
	}
	u.SchedWait = slices.CompactFunc(u.SchedWait, func(x, y SchedWait) bool { return x.OverMs == y.OverMs })
}

// nearestBound is the index of the finite bucket bound nearest x on a log
// scale, or -1 if there is none.
func nearestBound(bs []schedBucket, x float64) int {
	best, dist := -1, math.Inf(1)
	for i, b := range bs {
		if b.le <= 0 || math.IsInf(b.le, 1) {
			continue
		}
		if d := math.Abs(math.Log(b.le / x)); d < dist {
			best, dist = i, d
		}
	}
	return best
}
