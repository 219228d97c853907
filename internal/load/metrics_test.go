package load

import (
	"strconv"
	"strings"
	"testing"
)

// metricsText is the part of a node's /metrics the load reads, with the
// Go collector's real bucket bounds.
func metricsText(gcCount int, gcSum float64, sched [5]int) string {
	return `# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 1e-05
go_gc_duration_seconds{quantile="1"} 0.001
go_gc_duration_seconds_sum ` + ftoa(gcSum) + `
go_gc_duration_seconds_count ` + itoa(gcCount) + `
# HELP go_sched_latencies_seconds Distribution of the time goroutines have spent in the scheduler in a runnable state before actually running.
# TYPE go_sched_latencies_seconds histogram
go_sched_latencies_seconds_bucket{le="6.399999999999999e-08"} ` + itoa(sched[0]) + `
go_sched_latencies_seconds_bucket{le="0.0009175039999999999"} ` + itoa(sched[1]) + `
go_sched_latencies_seconds_bucket{le="0.010485759999999998"} ` + itoa(sched[2]) + `
go_sched_latencies_seconds_bucket{le="0.11744051199999998"} ` + itoa(sched[3]) + `
go_sched_latencies_seconds_bucket{le="+Inf"} ` + itoa(sched[4]) + `
go_sched_latencies_seconds_sum 1.5
go_sched_latencies_seconds_count ` + itoa(sched[4]) + `
# HELP lifeline_connections Open sockets.
# TYPE lifeline_connections gauge
lifeline_connections{kind="visitor"} 3
`
}

// The window's collections, pauses and scheduler waits are the
// differences of two reads; each share is over the bucket nearest 1, 10
// and 100 ms.
func TestRuntimeFiguresOfTheWindow(t *testing.T) {
	a, err := parseRuntime(strings.NewReader(metricsText(10, 0.002, [5]int{100, 900, 990, 999, 1000})))
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseRuntime(strings.NewReader(metricsText(14, 0.0045, [5]int{200, 1800, 1980, 1998, 2000})))
	if err != nil {
		t.Fatal(err)
	}
	var u ServerUsage
	b.since(a, &u)
	if u.GCCycles != 4 || u.GCPauseMs < 2.4999 || u.GCPauseMs > 2.5001 {
		t.Errorf("collections %d, paused %.4f ms; want 4 and 2.5", u.GCCycles, u.GCPauseMs)
	}
	want := []SchedWait{{0.9175, 10}, {10.486, 1}, {117.44, 0.1}}
	if len(u.SchedWait) != len(want) {
		t.Fatalf("sched waits %+v, want %+v", u.SchedWait, want)
	}
	for i, w := range want {
		got := u.SchedWait[i]
		if got.OverMs < w.OverMs*0.999 || got.OverMs > w.OverMs*1.001 || got.Percent < w.Percent-1e-9 || got.Percent > w.Percent+1e-9 {
			t.Errorf("sched wait %d = %+v, want %+v", i, got, w)
		}
	}

	// Nothing scheduled in the window: no shares, and no division by zero.
	var idle ServerUsage
	a.since(a, &idle)
	if idle.GCCycles != 0 || len(idle.SchedWait) != 0 {
		t.Errorf("an empty window gave %+v", idle)
	}
}

func TestRuntimeFiguresMissing(t *testing.T) {
	for _, text := range []string{
		"# TYPE lifeline_connections gauge\nlifeline_connections 1\n",
		"go_gc_duration_seconds_count {\n",
	} {
		if _, err := parseRuntime(strings.NewReader(text)); err == nil {
			t.Errorf("parseRuntime(%q) succeeded", text)
		}
	}
}

func itoa(n int) string     { return strconv.Itoa(n) }
func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
