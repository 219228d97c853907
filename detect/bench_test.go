package detect_test

import (
	"fmt"
	"runtime"
	"testing"

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
// 100,000 visits. Each visit's events are decoded from JSON, so the strings
// a visit keeps (page, selector, error, failed request, the finding that
// explains it) are its own, as on a node.
func BenchmarkVisitMemory(b *testing.B) {
	const visits = 100_000
	keys := make([]string, visits)
	for i := range keys {
		keys[i] = fmt.Sprintf("site-demo/visitor-%08d", i)
	}
	script := []string{
		`{"t":%d,"k":"page","path":"/checkout/payment","title":"Payment","ref":"/checkout"}`,
		`{"t":%d,"k":"click","sel":"form#payment button.primary[type=submit]","x":700,"y":650}`,
		`{"t":%d,"k":"request","method":"POST","path":"/api/checkout/pay","status":402,"dur":412}`,
		`{"t":%d,"k":"report","msg":"Card declined by the issuer"}`,
		`{"t":%d,"k":"error","msg":"Uncaught TypeError: Cannot read properties of undefined (reading 'id')","fp":"3f2a9c1d","src":"/static/app.js"}`,
		`{"t":%d,"k":"click","sel":"form#payment button.primary[type=submit]","x":700,"y":650}`,
		`{"t":%d,"k":"request","method":"POST","path":"/api/checkout/pay","status":402,"dur":398}`,
		`{"t":%d,"k":"report","msg":"Card declined by the issuer"}`,
	}
	const t0 = 1767603600000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		e := detect.NewEngine(detect.Config{MaxVisits: visits})
		offers := 0
		for i, k := range keys {
			for j, tmpl := range script {
				ev, err := detect.DecodeEvent(fmt.Appendf(nil, tmpl, t0+int64(i)+int64(j)*10_000))
				if err != nil {
					b.Fatal(err)
				}
				ev.Visit = k
				e.Observe(ev)
				if e.Verdict().Offer {
					offers++
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if e.Len() != visits || offers < visits {
			b.Fatalf("Len = %d, offers = %d, want %d visits each offered help", e.Len(), offers, visits)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/visits, "B/visit")
		runtime.KeepAlive(e)
	}
}

// BenchmarkDecodeEvent decodes the widget's events: a page view in
// ASCII, the same page titled in French, and an error message.
func BenchmarkDecodeEvent(b *testing.B) {
	for name, raw := range map[string]string{
		"ascii": `{"t":1767603600000,"k":"page","path":"/checkout","title":"Checkout - Shop","ref":"/cart"}`,
		"utf8":  `{"t":1767603600000,"k":"page","path":"/caisse","title":"Paiement — Boutique été","ref":"/panier"}`,
		"error": `{"t":1767603600000,"k":"error","msg":"Carte refusée","fp":"ab12","src":"/app.js","line":3,"col":9}`,
	} {
		b.Run(name, func(b *testing.B) {
			data := []byte(raw)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := detect.DecodeEvent(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// encoded keeps what BenchmarkMarshalEvent encodes, as a caller would.
var encoded []byte

// BenchmarkMarshalEvent encodes decoded events as the struggle service's
// journey saves do.
func BenchmarkMarshalEvent(b *testing.B) {
	for name, raw := range map[string]string{
		"page":  `{"t":1767603600000,"k":"page","path":"/checkout","title":"Checkout - Shop","ref":"/cart"}`,
		"click": `{"t":1767603600000,"k":"click","sel":"button#pay","x":10,"y":20,"dead":true,"rage":4}`,
		"error": `{"t":1767603600000,"k":"error","msg":"Carte refusée","fp":"ab12","src":"/app.js","line":3,"col":9}`,
	} {
		b.Run(name, func(b *testing.B) {
			ev, err := detect.DecodeEvent([]byte(raw))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if encoded, err = ev.MarshalJSON(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
