package detect_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/detect"
	"github.com/lifelinehq/lifeline/detect/simulate"
)

// corpusEvents flattens a simulated corpus into one event stream,
// interleaving visits as a node would see them.
func corpusEvents(b *testing.B, sessions int) []detect.Event {
	b.Helper()
	var evs []detect.Event
	ss := simulate.Generate(simulate.Config{Sessions: sessions, Seed: 42})
	for more := true; more; {
		more = false
		for i := range ss {
			if len(ss[i].Events) > 0 {
				evs = append(evs, ss[i].Events[0])
				ss[i].Events = ss[i].Events[1:]
				more = true
			}
		}
	}
	return evs
}

// BenchmarkObserve measures the engine on realistic traffic from 2,000
// concurrent simulated visits with the default rules, after one warm-up
// pass so that every visit is tracked (steady state).
func BenchmarkObserve(b *testing.B) {
	evs := corpusEvents(b, 2000)
	e := detect.NewEngine(detect.Config{})
	for _, ev := range evs {
		e.Observe(ev)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		e.Observe(evs[i])
		if i++; i == len(evs) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkVisitMemory reports the heap bytes per tracked visit across
// 100,000 visits, each with a page view, clicks, an error and a failed
// request, so that rings, strings and the index are all in use.
func BenchmarkVisitMemory(b *testing.B) {
	const visits = 100_000
	keys := make([]string, visits)
	for i := range keys {
		keys[i] = fmt.Sprintf("site-demo/visitor-%08d", i)
	}
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	script := []detect.Event{
		{Kind: detect.KindPage, Path: "/checkout/payment"},
		{Kind: detect.KindClick, Sel: "button#pay", X: 10, Y: 10},
		{Kind: detect.KindRequest, Method: "POST", Path: "/api/pay", Status: 402},
		{Kind: detect.KindReport, Msg: "Card declined"},
		{Kind: detect.KindError, Msg: "TypeError", FP: "te"},
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		e := detect.NewEngine(detect.Config{MaxVisits: visits})
		for i, k := range keys {
			for j, ev := range script {
				ev.Visit = k
				ev.Time = t0.Add(time.Duration(i+j) * time.Millisecond)
				e.Observe(ev)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if e.Len() != visits {
			b.Fatalf("Len = %d, want %d", e.Len(), visits)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/visits, "B/visit")
		runtime.KeepAlive(e)
	}
}
