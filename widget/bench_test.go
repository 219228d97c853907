package widget

import (
	"slices"
	"testing"

	"github.com/lifelinehq/lifeline/internal/browsertest"
)

// BenchmarkCapture measures, in Chromium, the main-thread time per captured
// click and per captured error: each event is dispatched synchronously
// through the page (and so through the widget's listeners) and timed with
// performance.now(), 1,000 of each per iteration, individually (median,
// p95; the page is cross-origin isolated, so the timer resolution is 5 µs)
// and as a batch (mean, finer than the timer). "off" is the same dispatch
// with capture switched off by consent, i.e. the browser's own cost.
// Metrics are medians over iterations, in milliseconds; the target is a
// median under 0.1 ms.
//
//	go test -run '^$' -bench Capture -benchtime 5x ./widget
func BenchmarkCapture(b *testing.B) {
	f := newFixture(b)
	p := browsertest.New(b)
	open(b, p, f.srv.URL+"/t/bench")
	type result struct {
		Isolated                      bool
		ClickButton, ClickText, Error [3]float64 // median, p95, mean
		BaseClick, BaseError          [3]float64
	}
	series := map[string][]float64{}
	isolated := true
	for b.Loop() {
		var r result
		p.Eval(`benchCapture(1000)`, &r)
		isolated = isolated && r.Isolated
		for name, v := range map[string][3]float64{"click": r.ClickButton, "click-text": r.ClickText, "error": r.Error, "click-off": r.BaseClick, "error-off": r.BaseError} {
			series[name+"/median"] = append(series[name+"/median"], v[0])
			series[name+"/p95"] = append(series[name+"/p95"], v[1])
			series[name+"/mean"] = append(series[name+"/mean"], v[2])
		}
	}
	med := func(k string) float64 { s := slices.Clone(series[k]); slices.Sort(s); return s[len(s)/2] }
	b.ReportMetric(med("click/median"), "ms/click")
	b.ReportMetric(med("click/mean"), "ms/click-mean")
	b.ReportMetric(med("error/median"), "ms/error")
	b.ReportMetric(med("error/mean"), "ms/error-mean")
	b.Logf("per captured click on a button: median %.3f ms, p95 %.3f, mean %.4f (capture off: mean %.4f)",
		med("click/median"), med("click/p95"), med("click/mean"), med("click-off/mean"))
	b.Logf("per captured click on text: median %.3f ms, mean %.4f", med("click-text/median"), med("click-text/mean"))
	b.Logf("per captured error: median %.3f ms, p95 %.3f, mean %.4f (capture off: mean %.4f)",
		med("error/median"), med("error/p95"), med("error/mean"), med("error-off/mean"))
	if !isolated {
		b.Logf("performance.now() is coarse (100 µs): the page was not cross-origin isolated")
	}
}
