package backtest

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/detect"
	"github.com/lifelinehq/lifeline/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// visit makes a session whose "hit" track events weigh 8 (one offer each,
// given time to decay) at the given seconds.
func visit(id string, hits []float64, onsets ...float64) Session {
	s := Session{Visit: id, Events: []detect.Event{{Kind: detect.KindPage, Path: "/", Time: t0}}}
	for _, h := range hits {
		s.Events = append(s.Events, detect.Event{Kind: detect.KindTrack, Name: "hit", Time: at(h)})
	}
	for _, o := range onsets {
		s.Episodes = append(s.Episodes, Episode{Page: "/", Onset: at(o), Label: "x"})
	}
	return s
}

func ruleset(t *testing.T) detect.Ruleset {
	t.Helper()
	rs, err := detect.ParseRuleset([]byte(`{"version":1,"max_offers_per_visit":5,"rules":[{"id":"hit","signal":"track","weight":8,"match":{"name":"hit"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestRunMetrics(t *testing.T) {
	sessions := []Session{
		visit("tp", []float64{30}, 10),        // detected after 20 s
		visit("edge", []float64{130}, 10),     // exactly onset + 120 s: a hit
		visit("late", []float64{130.001}, 10), // just past: a false positive and a miss
		visit("early", []float64{5}, 10),      // before onset: a false positive and a miss
		visit("calm", nil),                    // nothing
		visit("fp", []float64{50}),            // alert without struggle
	}
	rep, err := Run(ruleset(t), sessions, Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := rep.Overall
	if o.Alerts != 5 || o.TruePositives != 2 || o.FalsePositives != 3 || o.Episodes != 4 || o.Detected != 2 {
		t.Fatalf("Overall = %+v", o)
	}
	if o.Precision != 0.4 || o.Recall != 0.5 || math.Abs(o.F1-4.0/9) > 1e-9 {
		t.Errorf("P/R/F1 = %g %g %g, want 0.4 0.5 0.444", o.Precision, o.Recall, o.F1)
	}
	if time.Duration(o.TTDMedian) != 20*time.Second || time.Duration(o.TTDP90) != 120*time.Second {
		t.Errorf("TTD median %v p90 %v, want 20s 120s", o.TTDMedian, o.TTDP90)
	}
	if math.Abs(o.OffersPer1000-5000.0/6) > 1e-9 {
		t.Errorf("offers/1000 = %g", o.OffersPer1000)
	}
	if len(rep.Rules) != 1 || rep.Rules[0].Alerts != 5 || rep.Rules[0].TruePositives != 2 {
		t.Errorf("Rules = %+v", rep.Rules)
	}
	if len(rep.Labels) != 1 || rep.Labels[0].Detected != 2 {
		t.Errorf("Labels = %+v", rep.Labels)
	}
	// The sweep row at the ruleset's threshold equals the deployed result,
	// and thresholds above every score alert nothing.
	for _, s := range rep.Sweep {
		if s.Threshold == 8 && (s.Alerts != o.Alerts || s.TruePositives != o.TruePositives) {
			t.Errorf("sweep at 8 = %+v, want the overall result", s.Metrics)
		}
		if s.Threshold > 8 && s.Alerts != 0 {
			t.Errorf("sweep at %g alerts %d, want 0", s.Threshold, s.Alerts)
		}
	}
	if o.PRAUC <= 0 || o.PRAUC > 1 {
		t.Errorf("PR-AUC = %g", o.PRAUC)
	}
}

func TestPRAUCPerfect(t *testing.T) {
	rep, err := Run(ruleset(t), []Session{visit("a", []float64{20}, 10), visit("b", nil)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Overall.PRAUC != 1 || rep.Overall.Precision != 1 || rep.Overall.Recall != 1 {
		t.Errorf("perfect detector: %+v", rep.Overall)
	}
}

func TestRunBadRuleset(t *testing.T) {
	_, err := Run(detect.Ruleset{Version: 9}, nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("Run with a bad ruleset: err = %v", err)
	}
}

func TestDecodeSession(t *testing.T) {
	s, err := DecodeSession([]byte(`{"visit":"v1","site":"demo","outcome":"abandoned","persona":"card_declined",
		"episodes":[{"page":"/checkout","onset":1767603600000,"label":"card_declined"}],
		"events":[{"t":1767603600000,"k":"page","path":"/checkout"},{"t":1767603601000,"k":"report","msg":"Card declined"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Visit != "v1" || len(s.Events) != 2 || s.Events[1].Visit != "v1" || s.Events[1].Site != "demo" || len(s.Episodes) != 1 || s.Episodes[0].Onset.UnixMilli() != 1767603600000 {
		t.Errorf("DecodeSession = %+v", s)
	}
	for _, bad := range []string{`{}`, `{"visit":"a","events":[],"extra":1}`, `{"visit":"a","episodes":[{"page":"/"}],"events":[]}`, `{"visit":"a","events":[{"k":"page"}]}`} {
		if _, err := DecodeSession([]byte(bad)); err == nil {
			t.Errorf("DecodeSession(%s) = nil error", bad)
		}
	}
}
