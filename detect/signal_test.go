package detect

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// step is one event of a script, at an offset from t0.
type step struct {
	at time.Duration
	ev Event
}

func ms(n int) time.Duration  { return time.Duration(n) * time.Millisecond }
func sec(n int) time.Duration { return time.Duration(n) * time.Second }

func page(at time.Duration, path string) step {
	return step{at, Event{Kind: KindPage, Path: path}}
}
func click(at time.Duration, sel string, x, y int) step {
	return step{at, Event{Kind: KindClick, Sel: sel, X: x, Y: y}}
}
func deadClick(at time.Duration, sel string) step {
	return step{at, Event{Kind: KindClick, Sel: sel, X: 10, Y: 10, Dead: true}}
}
func jsErr(at time.Duration, msg, fp string) step {
	return step{at, Event{Kind: KindError, Msg: msg, FP: fp}}
}
func req(at time.Duration, method, path string, status int) step {
	return step{at, Event{Kind: KindRequest, Method: method, Path: path, Status: status}}
}
func invalid(at time.Duration, form, field string) step {
	return step{at, Event{Kind: KindInvalid, Form: form, Field: field, Flags: ValueMissing}}
}
func submit(at time.Duration, form string, ok bool) step {
	return step{at, Event{Kind: KindSubmit, Form: form, OK: ok}}
}
func idle(at time.Duration, on bool) step { return step{at, Event{Kind: KindIdle, Idle: on}} }
func visible(at time.Duration, on bool) step {
	return step{at, Event{Kind: KindVisibility, Visible: on}}
}
func report(at time.Duration, msg string) step { return step{at, Event{Kind: KindReport, Msg: msg}} }
func track(at time.Duration, name string) step { return step{at, Event{Kind: KindTrack, Name: name}} }
func longTask(at time.Duration, d int) step    { return step{at, Event{Kind: KindLongTask, Dur: d}} }

// play feeds steps to e as visit "v" and returns copies of all findings.
func play(e *Engine, steps []step) []Finding {
	var out []Finding
	for _, s := range steps {
		ev := s.ev
		ev.Visit = "v"
		ev.Time = t0.Add(s.at)
		out = append(out, e.Observe(ev)...)
	}
	return out
}

// repeat returns n copies of mk at start, start+gap, ...
func repeat(n int, start, gap time.Duration, mk func(time.Duration) step) []step {
	var out []step
	for i := range n {
		out = append(out, mk(start+time.Duration(i)*gap))
	}
	return out
}

func script(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(s step) []step { return []step{s} }

// TestSignals runs each built-in signal at, just below and just above its
// thresholds, with its default settings unless the case says otherwise.
func TestSignals(t *testing.T) {
	errAt := func(fp string) func(time.Duration) step {
		return func(at time.Duration) step { return jsErr(at, "boom "+fp, fp) }
	}
	pay := func(status int) func(time.Duration) step {
		return func(at time.Duration) step { return req(at, "POST", "/api/pay", status) }
	}
	home := one(page(0, "/checkout"))
	tests := []struct {
		name  string
		rule  Rule
		steps []step
		want  int // findings of the rule
	}{
		{"repeated_error below", Rule{Signal: RepeatedError}, script(home, repeat(2, sec(1), sec(10), errAt("a"))), 0},
		{"repeated_error at", Rule{Signal: RepeatedError}, script(home, repeat(3, sec(1), sec(10), errAt("a"))), 1},
		{"repeated_error above fires once", Rule{Signal: RepeatedError}, script(home, repeat(4, sec(1), sec(10), errAt("a"))), 1},
		{"repeated_error twice the count fires twice", Rule{Signal: RepeatedError}, script(home, repeat(6, sec(1), sec(5), errAt("a"))), 2},
		{"repeated_error other fingerprints", Rule{Signal: RepeatedError}, script(home, one(jsErr(sec(1), "x", "a")), one(jsErr(sec(2), "x", "b")), one(jsErr(sec(3), "x", "c"))), 0},
		{"repeated_error window edge", Rule{Signal: RepeatedError}, script(home, repeat(3, sec(1), sec(30), errAt("a"))), 1},
		{"repeated_error past window", Rule{Signal: RepeatedError}, script(home, repeat(3, sec(1), sec(30)+ms(1), errAt("a"))), 0},
		{"repeated_error ignored message", Rule{Signal: RepeatedError, Match: Match{Ignore: []string{"boom"}}}, script(home, repeat(3, sec(1), sec(1), errAt("a"))), 0},

		{"error_burst below", Rule{Signal: ErrorBurst}, script(home, one(jsErr(sec(1), "a", "a")), one(jsErr(sec(2), "b", "b")), one(jsErr(sec(3), "c", "c")), one(jsErr(sec(4), "d", "d"))), 0},
		{"error_burst at", Rule{Signal: ErrorBurst}, script(home, repeat(5, sec(1), sec(2)+ms(500), errAt("a"))), 1},
		{"error_burst spread over 10.001 s", Rule{Signal: ErrorBurst}, script(home, repeat(5, sec(1), ms(2501), errAt("a"))), 0},

		{"error_click at 1000 ms", Rule{Signal: ErrorClick}, script(home, one(click(sec(1), "button#buy", 1, 1)), one(jsErr(sec(2), "TypeError", "t"))), 1},
		{"error_click at 1001 ms", Rule{Signal: ErrorClick}, script(home, one(click(sec(1), "button#buy", 1, 1)), one(jsErr(sec(2)+ms(1), "TypeError", "t"))), 0},
		{"error_click without click", Rule{Signal: ErrorClick}, script(home, one(jsErr(sec(2), "TypeError", "t"))), 0},
		{"error_click, held click arrives after the error", Rule{Signal: ErrorClick}, script(home, one(jsErr(sec(1)+ms(200), "TypeError", "t")), one(click(sec(1), "button#buy", 1, 1))), 1},
		{"error_click, held click 1001 ms before the error", Rule{Signal: ErrorClick}, script(home, one(jsErr(sec(2)+ms(1), "TypeError", "t")), one(click(sec(1), "button#buy", 1, 1))), 0},
		{"error_click, error before the click", Rule{Signal: ErrorClick}, script(home, one(jsErr(sec(1), "TypeError", "t")), one(click(sec(1)+ms(1), "button#buy", 1, 1))), 0},
		{"error_click counts each error once", Rule{Signal: ErrorClick}, script(home, one(click(sec(1), "b", 1, 1)), one(jsErr(sec(1)+ms(100), "TypeError", "t")), one(click(sec(1)+ms(50), "b", 1, 1))), 1},

		{"request_failed below", Rule{Signal: RequestFailed}, script(home, one(req(sec(1), "POST", "/api/pay", 402))), 0},
		{"request_failed at", Rule{Signal: RequestFailed}, script(home, repeat(2, sec(1), sec(20), pay(402))), 1},
		{"request_failed other endpoints", Rule{Signal: RequestFailed}, script(home, one(req(sec(1), "POST", "/api/pay", 402)), one(req(sec(2), "POST", "/api/cart", 402))), 0},
		{"request_failed other status class", Rule{Signal: RequestFailed}, script(home, one(req(sec(1), "POST", "/api/pay", 402)), one(req(sec(2), "POST", "/api/pay", 502))), 0},
		{"request_failed status filter", Rule{Signal: RequestFailed, Match: Match{Status: "5xx"}}, script(home, repeat(2, sec(1), sec(1), pay(402))), 0},
		{"request_failed endpoint pattern", Rule{Signal: RequestFailed, Match: Match{Endpoint: "/api/pay*"}}, script(home, repeat(2, sec(1), sec(1), pay(402))), 1},
		{"request_failed success is not failure", Rule{Signal: RequestFailed}, script(home, repeat(3, sec(1), sec(1), pay(200))), 0},
		{"request_failed network error", Rule{Signal: RequestFailed, Match: Match{Status: "0"}}, script(home, repeat(2, sec(1), sec(1), pay(0))), 1},
		{"request_failed after an action only", Rule{Signal: RequestFailed, After: Duration(sec(5))}, script(home, repeat(2, sec(10), sec(1), pay(500))), 0},

		{"form_invalid one attempt", Rule{Signal: FormInvalid}, script(home, one(invalid(sec(1), "address", "zip")), one(invalid(sec(1)+ms(5), "address", "phone"))), 0},
		{"form_invalid two attempts", Rule{Signal: FormInvalid}, script(home, one(invalid(sec(1), "address", "zip")), one(invalid(sec(10), "address", "phone"))), 1},
		{"form_invalid submits handled by script are no evidence", Rule{Signal: FormInvalid}, script(home, one(submit(sec(1), "search", false)), one(submit(sec(10), "search", false)), one(submit(sec(20), "search", false))), 0},
		{"form_invalid widget's blocked submit is one attempt", Rule{Signal: FormInvalid}, script(home, one(invalid(sec(1), "a", "zip")), one(submit(sec(1), "a", false)), one(invalid(sec(9), "a", "zip")), one(submit(sec(9), "a", false))), 1},
		{"form_invalid attempts past window", Rule{Signal: FormInvalid}, script(home, one(invalid(sec(1), "address", "zip")), one(invalid(sec(62), "address", "phone"))), 0},
		{"form_invalid ok submit resets", Rule{Signal: FormInvalid}, script(home, one(invalid(sec(1), "address", "zip")), one(submit(sec(5), "address", true)), one(invalid(sec(10), "address", "zip"))), 0},
		{"form_invalid field twice", Rule{Signal: FormInvalid, Count: 9}, script(home, repeat(2, sec(1), sec(5), func(at time.Duration) step { return invalid(at, "f", "zip") })), 0},
		{"form_invalid field three times", Rule{Signal: FormInvalid, Count: 9}, script(home, repeat(3, sec(1), sec(5), func(at time.Duration) step { return invalid(at, "f", "zip") })), 1},

		{"retry_submit at 10 s", Rule{Signal: RetrySubmit}, script(home, repeat(2, sec(1), sec(10), pay(500))), 1},
		{"retry_submit at 10.001 s", Rule{Signal: RetrySubmit}, script(home, repeat(2, sec(1), sec(10)+ms(1), pay(500))), 0},
		{"retry_submit ignores handled submits", Rule{Signal: RetrySubmit}, script(home, one(submit(sec(1), "f", false)), one(submit(sec(3), "f", false))), 0},

		{"rage_click two clicks", Rule{Signal: RageClick}, script(home, one(click(sec(1), "b", 10, 10)), one(click(sec(1)+ms(200), "b", 10, 10))), 0},
		{"rage_click three clicks", Rule{Signal: RageClick}, script(home, repeat(3, sec(1), ms(1000), func(at time.Duration) step { return click(at, "b", 10, 10) })), 1},
		{"rage_click gap 1001 ms", Rule{Signal: RageClick}, script(home, repeat(3, sec(1), ms(1001), func(at time.Duration) step { return click(at, "b", 10, 10) })), 0},
		{"rage_click 30 px apart", Rule{Signal: RageClick}, script(home, one(click(sec(1), "b", 10, 10)), one(click(sec(1)+ms(100), "b", 25, 25)), one(click(sec(1)+ms(200), "b", 40, 40))), 1},
		{"rage_click 31 px apart", Rule{Signal: RageClick}, script(home, one(click(sec(1), "b", 10, 10)), one(click(sec(1)+ms(100), "b", 26, 25)), one(click(sec(1)+ms(200), "b", 42, 40))), 0},
		{"rage_click once per burst", Rule{Signal: RageClick}, script(home, repeat(8, sec(1), ms(100), func(at time.Duration) step { return click(at, "b", 10, 10) })), 1},
		{"rage_click two bursts", Rule{Signal: RageClick}, script(home, repeat(3, sec(1), ms(100), func(at time.Duration) step { return click(at, "b", 10, 10) }), repeat(3, sec(5), ms(100), func(at time.Duration) step { return click(at, "b", 10, 10) })), 2},
		{"rage_click widget count", Rule{Signal: RageClick}, script(home, one(step{sec(1), Event{Kind: KindClick, Sel: "b", Rage: 3}})), 1},
		{"rage_click ignored stepper", Rule{Signal: RageClick, Match: Match{Ignore: []string{"qty"}}}, script(home, repeat(5, sec(1), ms(100), func(at time.Duration) step { return click(at, "button.qty-plus", 10, 10) })), 0},

		{"dead_click once", Rule{Signal: DeadClick}, script(home, one(deadClick(sec(1), "b"))), 0},
		{"dead_click twice", Rule{Signal: DeadClick}, script(home, one(deadClick(sec(1), "b")), one(deadClick(sec(20), "b"))), 1},
		{"dead_click twice past window", Rule{Signal: DeadClick}, script(home, one(deadClick(sec(1), "b")), one(deadClick(sec(31)+ms(1), "b"))), 0},
		{"dead_click live clicks", Rule{Signal: DeadClick}, script(home, repeat(3, sec(1), sec(1), func(at time.Duration) step { return click(at, "b", 1, 1) })), 0},

		{"app_crash track", Rule{Signal: AppCrash}, script(home, one(track(sec(1), "app_crash"))), 1},
		{"app_crash other track", Rule{Signal: AppCrash}, script(home, one(track(sec(1), "signup"))), 0},
		{"app_crash crash-class error", Rule{Signal: AppCrash, Match: Match{Message: []string{"chunkloaderror"}}}, script(home, one(jsErr(sec(1), "ChunkLoadError: Loading chunk 4 failed", "c"))), 1},
		{"app_crash ordinary error", Rule{Signal: AppCrash, Match: Match{Message: []string{"chunkloaderror"}}}, script(home, one(jsErr(sec(1), "TypeError", "t"))), 0},

		{"ui_unresponsive 2000 ms", Rule{Signal: UIUnresponsive}, script(home, one(click(sec(1), "b", 1, 1)), one(longTask(sec(3), 2000))), 1},
		{"ui_unresponsive 1999 ms", Rule{Signal: UIUnresponsive}, script(home, one(click(sec(1), "b", 1, 1)), one(longTask(sec(3), 1999))), 0},
		{"ui_unresponsive 10.001 s after the click", Rule{Signal: UIUnresponsive}, script(home, one(click(sec(1), "b", 1, 1)), one(longTask(sec(11)+ms(1), 3000))), 0},
		{"ui_unresponsive without click", Rule{Signal: UIUnresponsive}, script(home, one(longTask(sec(3), 5000))), 0},
		{"ui_unresponsive, held click arrives after the long task", Rule{Signal: UIUnresponsive}, script(home, one(longTask(sec(3), 2500)), one(click(sec(1), "b", 1, 1))), 1},
		{"ui_unresponsive, held click, short task", Rule{Signal: UIUnresponsive}, script(home, one(longTask(sec(3), 1999)), one(click(sec(1), "b", 1, 1))), 0},

		{"page_loop two loads", Rule{Signal: PageLoop}, script(home, one(page(sec(5), "/checkout"))), 0},
		{"page_loop three loads", Rule{Signal: PageLoop}, script(home, one(page(sec(5), "/checkout")), one(page(sec(15), "/checkout"))), 1},
		{"page_loop three loads in 15.001 s", Rule{Signal: PageLoop}, script(home, one(page(sec(5), "/checkout")), one(page(sec(15)+ms(1), "/checkout"))), 0},
		{"page_loop duplicate page events are one load", Rule{Signal: PageLoop}, script(home, one(page(sec(1), "/checkout")), one(page(sec(5), "/checkout")), one(page(sec(6), "/checkout"))), 0},
		{"dwell duplicate page event does not reset", Rule{Signal: Dwell}, script(home, one(click(sec(1), "b", 1, 1)), one(page(sec(2), "/checkout")), repeat(6, sec(20), sec(20), func(at time.Duration) step { return click(at, "b", 1, 1) })), 1},
		{"page_loop with another page between", Rule{Signal: PageLoop}, script(home, one(page(sec(2), "/cart")), one(page(sec(4), "/checkout")), one(page(sec(6), "/checkout"))), 0},

		{"quick_back at 10 s", Rule{Signal: QuickBack}, script(one(page(0, "/a")), one(page(sec(5), "/b")), one(page(sec(15), "/a"))), 1},
		{"quick_back at 10.001 s", Rule{Signal: QuickBack}, script(one(page(0, "/a")), one(page(sec(5), "/b")), one(page(sec(15)+ms(1), "/a"))), 0},
		{"quick_back onward", Rule{Signal: QuickBack}, script(one(page(0, "/a")), one(page(sec(5), "/b")), one(page(sec(6), "/c"))), 0},

		{"intent_page matching", Rule{Signal: IntentPage, Page: "*/account/cancel*"}, script(one(page(0, "/account/cancel/confirm"))), 1},
		{"intent_page other page", Rule{Signal: IntentPage, Page: "*/account/cancel*"}, script(one(page(0, "/account"))), 0},
		{"intent_page once per view", Rule{Signal: IntentPage, Page: "/cancel"}, script(one(page(0, "/cancel")), one(click(sec(1), "b", 1, 1))), 1},

		{"stalled after interacting", Rule{Signal: Stalled}, script(home, one(click(sec(1), "input#zip", 1, 1)), one(idle(sec(31), true))), 1},
		{"stalled on arrival", Rule{Signal: Stalled}, script(home, one(idle(sec(30), true))), 0},
		{"stalled while hidden", Rule{Signal: Stalled}, script(home, one(click(sec(1), "input#zip", 1, 1)), one(visible(sec(2), false)), one(idle(sec(31), true))), 0},

		{"dwell at 2 min", Rule{Signal: Dwell}, script(home, one(click(sec(1), "b", 1, 1)), repeat(6, sec(20), sec(20), func(at time.Duration) step { return click(at, "b", 1, 1) })), 1},
		{"dwell below 2 min", Rule{Signal: Dwell}, script(home, one(click(sec(1), "b", 1, 1)), repeat(6, sec(20), sec(20)-ms(200), func(at time.Duration) step { return click(at, "b", 1, 1) })), 0},
		{"dwell never on arrival", Rule{Signal: Dwell}, script(home, repeat(8, sec(20), sec(20), func(at time.Duration) step { return visible(at, true) })), 0},
		{"dwell hidden tab does not count", Rule{Signal: Dwell}, script(home, one(click(sec(1), "b", 1, 1)), one(visible(sec(30), false)), one(visible(sec(600), true)), one(click(sec(650), "b", 1, 1))), 0},
		{"dwell hidden tab, then enough visible time", Rule{Signal: Dwell}, script(home, one(click(sec(1), "b", 1, 1)), one(visible(sec(30), false)), one(visible(sec(600), true)), repeat(5, sec(620), sec(20), func(at time.Duration) step { return click(at, "b", 1, 1) })), 1},
		{"dwell idle does not count", Rule{Signal: Dwell}, script(home, one(click(sec(1), "b", 1, 1)), one(idle(sec(30), true)), one(idle(sec(600), false)), one(click(sec(610), "b", 1, 1))), 0},
		{"dwell successful submit is progress", Rule{Signal: Dwell}, script(home, one(click(sec(1), "b", 1, 1)), repeat(5, sec(20), sec(20), func(at time.Duration) step { return click(at, "b", 1, 1) }), one(submit(sec(110), "f", true)), one(click(sec(125), "b", 1, 1))), 0},

		{"idle_after_error within 60 s", Rule{Signal: IdleAfterError}, script(home, one(jsErr(sec(1), "x", "x")), one(idle(sec(61), true))), 1},
		{"idle_after_error after 60.001 s", Rule{Signal: IdleAfterError}, script(home, one(jsErr(sec(1), "x", "x")), one(idle(sec(61)+ms(1), true))), 0},

		{"track below", Rule{Signal: Track, Count: 2, Match: Match{Name: "search_empty"}}, script(home, one(track(sec(1), "search_empty"))), 0},
		{"track at", Rule{Signal: Track, Count: 2, Match: Match{Name: "search_empty"}}, script(home, one(track(sec(1), "search_empty")), one(track(sec(9), "search_empty"))), 1},
		{"track other name", Rule{Signal: Track, Count: 1, Match: Match{Name: "search_empty"}}, script(home, one(track(sec(1), "search"))), 0},

		{"report below", Rule{Signal: Report, Count: 2, Match: Match{Message: []string{"declined"}}}, script(home, one(report(sec(1), "Card declined"))), 0},
		{"report at", Rule{Signal: Report, Count: 2, Match: Match{Message: []string{"declined"}}}, script(home, one(report(sec(1), "Card declined")), one(report(sec(40), "Card DECLINED"))), 0},
		{"report at, same message", Rule{Signal: Report, Count: 2, Match: Match{Message: []string{"declined"}}}, script(home, repeat(2, sec(1), sec(40), func(at time.Duration) step { return report(at, "Card declined") })), 1},
		{"report past 5 min", Rule{Signal: Report, Count: 2, Match: Match{Message: []string{"declined"}}}, script(home, repeat(2, sec(1), sec(300)+ms(1), func(at time.Duration) step { return report(at, "Card declined") })), 0},
		{"report other message", Rule{Signal: Report, Match: Match{Message: []string{"declined"}}}, script(home, one(report(sec(1), "Out of stock"))), 0},

		{"page pattern excludes", Rule{Signal: RepeatedError, Page: "/cart"}, script(home, repeat(3, sec(1), sec(1), errAt("a"))), 0},
		{"page pattern parameter", Rule{Signal: RepeatedError, Page: "/orders/:id"}, script(one(page(0, "/orders/:id")), repeat(3, sec(1), sec(1), errAt("a"))), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.rule
			r.ID = "r"
			e := NewEngine(Config{}, r)
			got := 0
			for _, f := range play(e, tt.steps) {
				if f.Rule == "r" {
					got++
				}
			}
			if got != tt.want {
				t.Errorf("findings of %s = %d, want %d", r.Signal, got, tt.want)
			}
		})
	}
}

func TestRageDeadBonus(t *testing.T) {
	e := NewEngine(Config{}, Rule{ID: "rage", Signal: RageClick})
	fs := play(e, repeat(3, 0, ms(100), func(at time.Duration) step { return deadClick(at, "button#pay") }))
	if len(fs) != 1 {
		t.Fatalf("findings = %d, want 1", len(fs))
	}
	if fs[0].Weight != 6 || !fs[0].Evidence.Dead {
		t.Errorf("rage on a dead element: weight %g dead %v, want 6 true", fs[0].Weight, fs[0].Evidence.Dead)
	}
	if got, want := fs[0].Sentence(), "Rage-clicked button#pay 3 times on an unknown page (nothing happened)"; got != want {
		t.Errorf("Sentence() = %q, want %q", got, want)
	}
}

func TestCustomSignal(t *testing.T) {
	slow := func(r *Rule, v *View, ev *Event) (uint32, bool) {
		return Key(ev.Path), ev.Kind == KindRequest && ev.Dur > 5000
	}
	e := NewEngine(Config{Signals: map[string]SignalFunc{"x-slow": slow}},
		Rule{ID: "slow", Signal: "x-slow", Count: 2, Weight: 4, Say: "Slow {request} {times} on {page}"})
	fs := play(e, []step{
		page(0, "/search"),
		{sec(1), Event{Kind: KindRequest, Method: "GET", Path: "/api/search", Status: 504, Dur: 6000}},
		{sec(9), Event{Kind: KindRequest, Method: "GET", Path: "/api/search", Status: 504, Dur: 7000}},
	})
	if len(fs) != 1 {
		t.Fatalf("findings = %d, want 1", len(fs))
	}
	if got, want := fs[0].Sentence(), "Slow GET /api/search twice on /search"; got != want {
		t.Errorf("Sentence() = %q, want %q", got, want)
	}
}

func TestCustomSignalUnregistered(t *testing.T) {
	rs := Ruleset{Version: 1, Rules: []Rule{{ID: "x", Signal: "x-nope"}}}
	if _, err := NewEngineRuleset(Config{}, rs); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("NewEngineRuleset with an unknown custom signal: err = %v, want not registered", err)
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		pat, path string
		want      bool
	}{
		{"", "/anything", true},
		{"*", "/", true},
		{"/checkout*", "/checkout", true},
		{"/checkout*", "/checkout/pay", true},
		{"/checkout*", "/checkout-2", true},
		{"/checkout*", "/cart", false},
		{"/checkout*", "/demo/checkout", false},
		{"*/checkout*", "/demo/checkout/pay", true},
		{"/checkout", "/checkout/pay", false},
		{"/orders/:id", "/orders/:id", true},
		{"/orders/:id", "/orders/A7", true},
		{"/orders/:id", "/orders/", false},
		{"/orders/:id", "/orders/1/items", false},
		{"/orders/:id/items", "/orders/1/items", true},
		{"/a/*/c", "/a/b/x/c", true},
		{"/a/*/c", "/a/b/x/d", false},
		{"*cancel*", "/account/cancel", true},
	}
	for _, tt := range tests {
		p, err := CompilePattern(tt.pat)
		if err != nil {
			t.Fatalf("CompilePattern(%q): %v", tt.pat, err)
		}
		if got := p.Match(tt.path); got != tt.want {
			t.Errorf("Pattern(%q).Match(%q) = %v, want %v", tt.pat, tt.path, got, tt.want)
		}
	}
	for _, bad := range []string{"checkout", "/a?b", "/a/:", "/a b", strings.Repeat("/a", 101)} {
		if _, err := CompilePattern(bad); err == nil {
			t.Errorf("CompilePattern(%q) = nil error, want an error", bad)
		}
	}
}
