package simulate

import (
	"reflect"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/detect"
	"github.com/lifelinehq/lifeline/detect/backtest"
	"github.com/lifelinehq/lifeline/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// TestDefaultRulesOnCorpus is the acceptance bar: on 10,000
// generated sessions with hard negatives, the default rules reach precision
// >= 0.9 and recall >= 0.8.
func TestDefaultRulesOnCorpus(t *testing.T) {
	sessions := Generate(Config{Sessions: 10_000, Seed: 1})
	rep, err := backtest.Run(detect.DefaultRuleset(), sessions, backtest.Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	o := rep.Overall
	t.Logf("precision %.3f recall %.3f F1 %.3f PR-AUC %.3f TTD median %v p90 %v offers/1000 %.1f",
		o.Precision, o.Recall, o.F1, o.PRAUC, o.TTDMedian, o.TTDP90, o.OffersPer1000)
	if o.Precision < 0.9 {
		t.Errorf("precision = %.3f, want >= 0.9", o.Precision)
	}
	if o.Recall < 0.8 {
		t.Errorf("recall = %.3f, want >= 0.8", o.Recall)
	}
	for _, l := range rep.Labels {
		if l.Recall < 0.8 {
			t.Errorf("recall on %s = %.3f, want >= 0.8", l.Label, l.Recall)
		}
	}
	if o.Episodes < 2000 {
		t.Errorf("episodes = %d, want a corpus with >= 2000 struggles", o.Episodes)
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a := Generate(Config{Sessions: 200, Seed: 7})
	b := Generate(Config{Sessions: 200, Seed: 7})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Generate with the same seed gave different sessions")
	}
	c := Generate(Config{Sessions: 200, Seed: 8})
	if reflect.DeepEqual(a, c) {
		t.Fatal("Generate with different seeds gave the same sessions")
	}
}

func TestGenerateWellFormed(t *testing.T) {
	personas := map[string]bool{}
	for _, s := range Generate(Config{Sessions: 2000, Seed: 3}) {
		personas[s.Persona] = true
		for i := 1; i < len(s.Events); i++ {
			arrival := func(ev *detect.Event) time.Time {
				if held(ev) {
					return ev.Time.Add(holdClick)
				}
				return ev.Time
			}
			if arrival(&s.Events[i]).Before(arrival(&s.Events[i-1])) {
				t.Fatalf("%s: event %d arrives before event %d", s.Visit, i, i-1)
			}
		}
		for _, ep := range s.Episodes {
			if ep.Onset.Before(s.Events[0].Time) || ep.Onset.After(s.Events[len(s.Events)-1].Time.Add(holdClick)) {
				t.Errorf("%s: onset %v outside the visit", s.Visit, ep.Onset)
			}
		}
		// Each session survives the recording format.
		b, err := s.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: MarshalJSON: %v", s.Visit, err)
		}
		got, err := backtest.DecodeSession(b)
		if err != nil {
			t.Fatalf("%s: DecodeSession: %v", s.Visit, err)
		}
		if len(got.Episodes) != len(s.Episodes) || len(got.Events) != len(s.Events) {
			t.Fatalf("%s: round trip changed the session", s.Visit)
		}
		for i, ep := range got.Episodes {
			if !ep.Onset.Equal(s.Episodes[i].Onset) || ep.Label != s.Episodes[i].Label || ep.Page != s.Episodes[i].Page {
				t.Fatalf("%s: episode %d = %+v, want %+v", s.Visit, i, ep, s.Episodes[i])
			}
		}
		for i, ev := range got.Events {
			want := s.Events[i]
			want.Time = time.UnixMilli(want.Time.UnixMilli())
			want.Site = s.Site
			if !reflect.DeepEqual(ev, want) {
				t.Fatalf("%s: event %d = %+v, want %+v", s.Visit, i, ev, want)
			}
		}
	}
	if len(personas) != len(struggling)+len(calm) {
		t.Errorf("saw %d personas, want %d", len(personas), len(struggling)+len(calm))
	}
}
