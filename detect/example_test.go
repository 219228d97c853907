package detect_test

import (
	"fmt"
	"time"

	"github.com/lifelinehq/lifeline/detect"
)

// A team adds its own signal in Go: here, search requests slower than 5 s.
// The engine counts evidence per key within the rule's window, fires at
// Count, and scores, explains and offers exactly as for built-in signals.
func Example_customSignal() {
	slowSearch := func(r *detect.Rule, v *detect.View, ev *detect.Event) (uint32, bool) {
		return detect.Key(ev.Path), ev.Kind == detect.KindRequest && ev.Dur > 5000
	}
	e := detect.NewEngine(detect.Config{Signals: map[string]detect.SignalFunc{"x-slow-search": slowSearch}},
		detect.Rule{ID: "slow-search", Signal: "x-slow-search", Count: 2, Weight: 8, Page: "/search*",
			Say: "Search timed out {times} on {page} in {span}", Offer: "Can't find it? Ask us."})
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for i, ev := range []detect.Event{
		{Kind: detect.KindPage, Path: "/search"},
		{Kind: detect.KindRequest, Method: "GET", Path: "/api/search", Status: 504, Dur: 6000},
		{Kind: detect.KindRequest, Method: "GET", Path: "/api/search", Status: 504, Dur: 7000},
	} {
		ev.Visit, ev.Time = "visit-1", t0.Add(time.Duration(i)*10*time.Second)
		for _, f := range e.Observe(ev) {
			fmt.Println(f.Rule, f.Weight, f.Sentence())
		}
		if a := e.Verdict(); a.Offer {
			fmt.Println("offer:", a.OfferText)
		}
	}
	// Output:
	// slow-search 8 Search timed out twice on /search in 10 s
	// offer: Can't find it? Ask us.
}

// Rules are data: parse a site's file, run it, and swap in a new version
// without losing what the engine knows about current visits.
func ExampleParseRuleset() {
	rs, err := detect.ParseRuleset([]byte(`{
		"version": 1,
		"threshold": 6,
		"rules": [{"id": "card-declined", "signal": "report", "count": 2, "weight": 6,
		           "match": {"message": ["declined"]}, "say": "Card declined {times} on {page} in {span}"}]
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	e, _ := detect.NewEngineRuleset(detect.Config{}, rs)
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for i, ev := range []detect.Event{
		{Kind: detect.KindPage, Path: "/checkout"},
		{Kind: detect.KindReport, Msg: "Card declined"},
		{Kind: detect.KindReport, Msg: "Card declined"},
	} {
		ev.Visit, ev.Time = "visit-1", t0.Add(time.Duration(i)*20*time.Second)
		e.Observe(ev)
		if a := e.Verdict(); a.Offer {
			fmt.Println(a.Explanation())
		}
	}
	_, err = detect.ParseRuleset([]byte(`{"version":1,"rules":[{"id":"card-declined","signal":"report","window":"2h"}]}`))
	fmt.Println(err)
	// Output:
	// Card declined twice on /checkout in 20 s; 40 s on the page
	// detect: invalid ruleset:
	// rules[0] "card-declined": window: must be between 1s and 1h
}
