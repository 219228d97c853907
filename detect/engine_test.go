package detect

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func weightRule(id string, w float64) Rule {
	return Rule{ID: id, Signal: Track, Count: 1, Weight: w, Match: Match{Name: id}}
}

func TestScoreDecays(t *testing.T) {
	e := NewEngine(Config{}, weightRule("a", 8))
	play(e, []step{page(0, "/"), track(sec(1), "a")})
	for _, tt := range []struct {
		at   time.Duration
		want float64
	}{{sec(1), 8}, {sec(61), 4}, {sec(121), 2}, {sec(3601), 8 * math.Exp2(-60)}} {
		if got := e.Score("v", t0.Add(tt.at)); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("Score at %v = %g, want %g", tt.at, got, tt.want)
		}
	}
	if got := e.Score("nobody", t0); got != 0 {
		t.Errorf("Score of an unknown visit = %g, want 0", got)
	}
}

func TestOfferDecision(t *testing.T) {
	shadow := weightRule("s", 20)
	shadow.Shadow = true
	booster := weightRule("b", 20)
	alone := false
	booster.Alone = &alone
	imm := weightRule("i", 1)
	imm.Immediate = true
	tests := []struct {
		name   string
		rules  []Rule
		pages  []PageRule
		steps  []step
		offers int
		reason Reason
	}{
		{"below threshold", []Rule{weightRule("a", 7.9)}, nil, []step{page(0, "/"), track(sec(1), "a")}, 0, ""},
		{"at threshold", []Rule{weightRule("a", 8)}, nil, []step{page(0, "/"), track(sec(1), "a")}, 1, ReasonScore},
		{"sum of findings", []Rule{weightRule("a", 4), weightRule("b", 4)}, nil, []step{page(0, "/"), track(sec(1), "a"), track(sec(1), "b")}, 1, ReasonScore},
		{"decayed sum falls short", []Rule{weightRule("a", 4), weightRule("b", 4)}, nil, []step{page(0, "/"), track(sec(1), "a"), track(sec(2), "b")}, 0, ""},
		{"shadow never counts", []Rule{shadow}, nil, []step{page(0, "/"), track(sec(1), "s")}, 0, ""},
		{"booster alone", []Rule{booster}, nil, []step{page(0, "/"), track(sec(1), "b")}, 0, ""},
		{"booster with another signal", []Rule{booster, weightRule("a", 2)}, nil, []step{page(0, "/"), track(sec(1), "b"), track(sec(2), "a")}, 1, ReasonScore},
		{"immediate", []Rule{imm}, nil, []step{page(0, "/"), track(sec(1), "i")}, 1, ReasonImmediate},
		{"page threshold", []Rule{weightRule("a", 5)}, []PageRule{{Page: "/checkout*", Threshold: 5}}, []step{page(0, "/checkout"), track(sec(1), "a")}, 1, ReasonScore},
		{"page weight", []Rule{weightRule("a", 5)}, []PageRule{{Page: "/checkout*", Weights: map[string]float64{"a": 9}}}, []step{page(0, "/checkout"), track(sec(1), "a")}, 1, ReasonScore},
		{"page disables", []Rule{weightRule("a", 9)}, []PageRule{{Page: "/checkout*", Signals: []string{"report"}}}, []step{page(0, "/checkout"), track(sec(1), "a")}, 0, ""},
		{"critical page", nil, []PageRule{{Page: "/checkout*", Critical: true}}, []step{page(0, "/checkout"), jsErr(sec(1), "x", "x"), req(sec(2), "POST", "/api/pay", 500)}, 1, ReasonCritical},
		{"critical page, GET 404 is harmless", nil, []PageRule{{Page: "/checkout*", Critical: true}}, []step{page(0, "/checkout"), jsErr(sec(1), "x", "x"), req(sec(2), "GET", "/img/a.png", 404)}, 0, ""},
		{"not critical", nil, []PageRule{{Page: "/signup*", Critical: true}}, []step{page(0, "/checkout"), jsErr(sec(1), "x", "x"), req(sec(2), "POST", "/api/pay", 500)}, 0, ""},
		{"at most two offers", []Rule{imm}, nil, []step{page(0, "/"), track(sec(1), "i"), track(sec(100), "i"), track(sec(200), "i")}, 2, ReasonImmediate},
		{"no re-offer while the score stays high", []Rule{weightRule("a", 8)}, nil, []step{page(0, "/"), track(sec(1), "a"), track(sec(20), "a")}, 1, ReasonScore},
		{"re-offer after the score fell", []Rule{weightRule("a", 8)}, nil, []step{page(0, "/"), track(sec(1), "a"), track(sec(200), "a")}, 2, ReasonScore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := tt.rules
			if rules == nil {
				rules = []Rule{weightRule("z", 1)}
			}
			e, err := NewEngineRuleset(Config{}, Ruleset{Version: 1, Rules: rules, Pages: tt.pages})
			if err != nil {
				t.Fatal(err)
			}
			offers := 0
			var reason Reason
			for _, s := range tt.steps {
				ev := s.ev
				ev.Visit, ev.Time = "v", t0.Add(s.at)
				e.Observe(ev)
				if a := e.Verdict(); a.Offer {
					offers++
					reason = a.Reason
				}
			}
			if offers != tt.offers || reason != tt.reason {
				t.Errorf("offers = %d (%q), want %d (%q)", offers, reason, tt.offers, tt.reason)
			}
		})
	}
}

func TestAssessExplains(t *testing.T) {
	e := NewEngine(Config{})
	play(e, []step{
		page(0, "/checkout/payment"),
		click(sec(80), "button#pay", 1, 1),
		req(sec(81), "POST", "/api/pay", 402),
		report(sec(81), "Card declined"),
		click(sec(120), "button#pay", 1, 1),
		req(sec(121), "POST", "/api/pay", 402),
		report(sec(121), "Card declined"),
	})
	a := e.Assess("v", t0.Add(sec(122)))
	if got, want := a.Explanation(), "Card declined twice on /checkout/payment in 40 s; 62 s on the page"; got != want {
		t.Errorf("Explanation() = %q, want %q", got, want)
	}
	if got, want := a.OfferText, "Having trouble paying? Someone can help right now."; got != want {
		t.Errorf("OfferText = %q, want %q", got, want)
	}
	if a.Cause.Revision != "builtin-2026-11" {
		t.Errorf("Cause.Revision = %q, want the built-in revision", a.Cause.Revision)
	}
	if got := a.Priority(); got != 2 {
		t.Errorf("Priority() = %d, want 2", got)
	}
	if a.Offers != 1 || a.Score < a.Threshold {
		t.Errorf("Assess = offers %d score %g threshold %g, want 1 offer over the threshold", a.Offers, a.Score, a.Threshold)
	}
}

func TestSetRulesetKeepsState(t *testing.T) {
	e := NewEngine(Config{}, Rule{ID: "r", Signal: RepeatedError})
	play(e, []step{page(0, "/"), jsErr(sec(1), "x", "x"), jsErr(sec(2), "x", "x")})
	before := e.Score("v", t0.Add(sec(2)))
	rs := e.Ruleset()
	rs.Threshold = 5
	if err := e.SetRuleset(rs); err != nil {
		t.Fatal(err)
	}
	fs := play(e, []step{jsErr(sec(3), "x", "x")})
	if len(fs) != 1 {
		t.Errorf("findings after reload = %d, want 1 (evidence kept)", len(fs))
	}
	if e.Verdict().Threshold != 5 {
		t.Errorf("threshold after reload = %g, want 5", e.Verdict().Threshold)
	}
	_ = before
	bad := rs
	bad.Version = 2
	if err := e.SetRuleset(bad); err == nil {
		t.Error("SetRuleset(version 2) = nil, want an error")
	}
}

func TestExpireAndEvict(t *testing.T) {
	e := NewEngine(Config{MaxVisits: 3, IdleTimeout: time.Minute})
	for i := range 5 {
		e.Observe(Event{Visit: fmt.Sprint("v", i), Kind: KindPage, Path: "/", Time: t0.Add(sec(i))})
	}
	if e.Len() != 3 {
		t.Fatalf("Len = %d, want 3 (oldest evicted)", e.Len())
	}
	if _, ok := e.idx["v0"]; ok {
		t.Error("v0 still tracked, want it evicted as least recently active")
	}
	e.Observe(Event{Visit: "v2", Kind: KindClick, Time: t0.Add(sec(100))})
	e.Expire(t0.Add(sec(100)))
	if e.Len() != 1 {
		t.Errorf("Len after Expire = %d, want 1", e.Len())
	}
	e.Forget("v2")
	if e.Len() != 0 {
		t.Errorf("Len after Forget = %d, want 0", e.Len())
	}
	// Slots are reused.
	for i := range 10 {
		e.Observe(Event{Visit: fmt.Sprint("w", i), Kind: KindPage, Path: "/", Time: t0.Add(sec(200 + i))})
	}
	if e.Len() != 3 || e.n != 3 {
		t.Errorf("Len = %d, slots = %d, want 3 and 3", e.Len(), e.n)
	}
}

func TestSentences(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(sec(s)) }
	tests := []struct {
		f    Finding
		want string
	}{
		{Finding{Signal: RequestFailed, say: signalDefaults(RequestFailed).Say, Evidence: Evidence{Count: 3, First: at(0), Last: at(40), Page: "/checkout", Method: "POST", Path: "/api/pay", Status: 402, OnPage: 2 * time.Minute}},
			"POST /api/pay failed with 402 3 times on /checkout in 40 s; 2 min on the page"},
		{Finding{Signal: RequestFailed, say: signalDefaults(RequestFailed).Say, Evidence: Evidence{Count: 1, First: at(0), Last: at(0), Page: "/orders", Method: "GET", Path: "/api/orders"}},
			"GET /api/orders failed with a network error once on /orders"},
		{Finding{Signal: ErrorClick, say: signalDefaults(ErrorClick).Say, Evidence: Evidence{Count: 1, Page: "/cart", Selector: "button#update", Message: "TypeError: x is undefined"}},
			`Clicking button#update threw "TypeError: x is undefined" on /cart`},
		{Finding{Signal: Dwell, say: signalDefaults(Dwell).Say, Evidence: Evidence{Count: 1, Page: "/checkout", OnPage: 150 * time.Second}},
			"3 min on /checkout without progress"},
		{Finding{Signal: FormInvalid, say: signalDefaults(FormInvalid).Say, Evidence: Evidence{Count: 2, First: at(0), Last: at(75), Page: "/checkout", Form: "address"}},
			"Form address rejected twice on /checkout in 75 s"},
	}
	for _, tt := range tests {
		if got := tt.f.Sentence(); got != tt.want {
			t.Errorf("Sentence() = %q, want %q", got, tt.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "under a second"}, {sec(1), "1 s"}, {sec(89), "89 s"}, {sec(90), "2 min"}, {sec(150), "3 min"}, {90 * time.Minute, "2 h"}} {
		if got := HumanDuration(tt.d); got != tt.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		a    Assessment
		want int
	}{
		{Assessment{Threshold: 8}, 0},
		{Assessment{Threshold: 8, Score: 4}, 1},
		{Assessment{Threshold: 8, Score: 1, Offers: 1}, 1},
		{Assessment{Threshold: 8, Score: 8}, 2},
		{Assessment{Threshold: 8, Cause: Finding{Immediate: true}}, 3},
	}
	for _, tt := range tests {
		if got := tt.a.Priority(); got != tt.want {
			t.Errorf("Priority(%+v) = %d, want %d", tt.a, got, tt.want)
		}
	}
}

// TestObserveDoesNotAllocate checks the steady state of the engine: a known
// visit, events that fire rules, and the verdict.
func TestObserveDoesNotAllocate(t *testing.T) {
	e := NewEngine(Config{})
	steps := []step{
		page(0, "/checkout/payment"), click(sec(1), "button#pay", 1, 1),
		req(sec(2), "POST", "/api/pay", 402), report(sec(2), "Card declined"),
		jsErr(sec(3), "TypeError", "te"), idle(sec(40), true), visible(sec(41), false),
	}
	play(e, steps)
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		s := steps[i%len(steps)]
		ev := s.ev
		ev.Visit, ev.Time = "v", t0.Add(time.Duration(i)*time.Second)
		e.Observe(ev)
		_ = e.Verdict()
		i++
	})
	if allocs != 0 {
		t.Errorf("Observe allocates %.1f times per event, want 0", allocs)
	}
}
