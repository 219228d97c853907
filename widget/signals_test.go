package widget

import (
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/lifelinehq/lifeline/internal/browsertest"
)

// TestSignals drives a page through every kind of struggle and checks that
// each behaviour event reaches the server with the right fields, that paths
// and error text are cleaned, that queued snippet calls took effect, and that
// a secret typed into any field never leaves the browser.
func TestSignals(t *testing.T) {
	f := newFixture(t)
	p := browsertest.New(t)
	open(t, p, f.srv.URL+"/t/page")
	fake := f.fake

	// Calls queued before widget.js loaded took effect.
	fake.Wait(t, "identify and context frames", func() bool {
		return len(fake.Frames("identify")) > 0 && len(fake.Frames("context")) > 0
	})
	id := fake.Frames("identify")[0].Data["identity"].(map[string]any)
	if id["id"] != "u_42" || id["hash"] != "deadbeef" || id["name"] != "Ava" {
		t.Errorf("identify = %v, want u_42 / Ava with its hash", id)
	}
	if a := fake.Frames("context")[0].Data["attributes"].(map[string]any); a["cart"] != "42.00" {
		t.Errorf("context attributes = %v, want cart 42.00", a)
	}
	logs := strings.Join(p.Logs(), "\n")
	for _, want := range []string{`unknown call "nope"`, "needs a string id"} {
		if !strings.Contains(logs, want) {
			t.Errorf("console has no warning %q:\n%s", want, logs)
		}
	}

	find := func(what, k string, match func(e map[string]any) bool) map[string]any {
		t.Helper()
		var got map[string]any
		fake.Wait(t, what, func() bool {
			for _, e := range fake.Events(k) {
				if match(e) {
					got = e
					return true
				}
			}
			return false
		})
		return got
	}
	is := func(field string, want any) func(map[string]any) bool {
		return func(e map[string]any) bool { return e[field] == want }
	}

	// Type the secret everywhere, including a password and an invalid form.
	for _, sel := range []string{"#fullname", "#pw", "#postcode", "#email", "#notes"} {
		p.Run(chromedp.SendKeys(chromedp.CSS(sel), secret))
	}
	p.Run(chromedp.Click(chromedp.CSS("#submit"))) // blocked by constraint validation
	p.Eval(`(() => { const f = document.getElementById('addr'); f.noValidate = true; f.requestSubmit(); })()`, nil)

	for i := 0; i < 4; i++ {
		p.Run(chromedp.Click(chromedp.CSS("#dead")))
	}
	// Nothing changes after these clicks, so after 2.5 s they are dead.
	find("dead click", "click", func(e map[string]any) bool { return e["sel"] == "#dead" && e["dead"] == true })
	for i := 0; i < 3; i++ {
		p.Run(chromedp.Click(chromedp.CSS(`[data-testid="qty-plus"]`)))
	}
	for _, sel := range []string{"#ignored", "#live", "#throw", "#reject", "#fail", "#ok", "#xhr", "#nav"} {
		p.Run(chromedp.Click(chromedp.CSS(sel)))
	}
	p.Eval(`lifeline('error', 'Card declined for ava@example.com'); lifeline('track', 'coupon_rejected', {code: 'SAVE10'})`, nil)
	p.Eval(`setTimeout(() => { const end = performance.now() + 150; while (performance.now() < end) {} })`, nil)

	find("first page view", "page", is("path", "/t/page"))
	nav := find("pushState page view", "page", is("path", "/t/orders/:id?utm_source=mail"))
	if nav["ref"] != "/t/page" {
		t.Errorf("page after pushState: ref = %v, want /t/page", nav["ref"])
	}

	invalid := map[string]string{"pw": "tooShort", "postcode": "patternMismatch", "email": "typeMismatch"}
	for field, flag := range invalid {
		e := find("invalid "+field, "invalid", is("field", field))
		flags, _ := e["flags"].([]any)
		if e["form"] != "addr" || len(flags) != 1 || flags[0] != flag {
			t.Errorf("invalid %s = %v, want form addr, flags [%s]", field, e, flag)
		}
	}
	if e := find("invalid pw", "invalid", is("field", "pw")); e["ftype"] != "password" {
		t.Errorf("invalid pw ftype = %v, want password", e["ftype"])
	}
	for _, e := range fake.Events("invalid") {
		if e["field"] == "fullname" {
			t.Errorf("a valid field was reported invalid: %v", e)
		}
	}
	find("blocked submit", "submit", func(e map[string]any) bool { return e["form"] == "addr" && e["ok"] == false })

	rage := find("rage click", "click", func(e map[string]any) bool { return e["sel"] == "#dead" && e["rage"] != nil })
	if n, _ := rage["rage"].(float64); n < 3 {
		t.Errorf("rage = %v, want ≥ 3", rage["rage"])
	}
	// Once the verdicts are in, hide the page: events flush, and visibility
	// is reported. Then 30 s without input: make the clock jump, not wait.
	p.Eval(`Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'}); document.dispatchEvent(new Event('visibilitychange'))`, nil)
	p.Eval(`delete document.visibilityState; document.dispatchEvent(new Event('visibilitychange'))`, nil)
	p.Eval(`(() => { const n = Date.now; Date.now = () => n() + 40000; })()`, nil)
	for _, e := range fake.Events("click") {
		switch {
		case strings.Contains(e["sel"].(string), "ignored") || strings.Contains(e["sel"].(string), "lifeline-ignore"):
			t.Errorf("opted-out click captured: %v", e)
		case e["sel"] == `[data-testid="qty-plus"]` && e["rage"] != nil:
			t.Errorf("stepper clicks counted as rage: %v", e)
		case e["sel"] == "#live" && e["dead"] == true:
			t.Errorf("a click that changed the page was called dead: %v", e)
		case e["x"] == nil || e["y"] == nil || e["t"] == nil:
			t.Errorf("click without x, y or t: %v", e)
		}
	}

	thrown := find("thrown error", "error", func(e map[string]any) bool { return strings.Contains(e["msg"].(string), "Checkout failed") })
	if !strings.HasSuffix(thrown["msg"].(string), "Checkout failed for [email] with card [number]") || thrown["fp"] == "" || thrown["src"] != "/t/page.js" || thrown["line"] == nil {
		t.Errorf("error event = %v, want redacted msg, fp, src /t/page.js, line", thrown)
	}
	rej := find("unhandled rejection", "error", func(e map[string]any) bool { return strings.Contains(e["msg"].(string), "rejected") })
	if !strings.Contains(rej["msg"].(string), "[token]") {
		t.Errorf("rejection msg = %q, want the token redacted", rej["msg"])
	}

	post := find("failed fetch", "request", is("method", "POST"))
	if post["path"] != "/t/fail/:id" || post["status"] != 500.0 || post["dur"] == nil {
		t.Errorf("fetch request event = %v, want POST /t/fail/:id 500 with dur", post)
	}
	xhr := find("failed XHR", "request", is("method", "GET"))
	if xhr["path"] != "/t/missing/:id" || xhr["status"] != 404.0 {
		t.Errorf("XHR request event = %v, want GET /t/missing/:id 404", xhr)
	}
	for _, e := range fake.Events("request") {
		if p := e["path"].(string); p == "/t/ok" || strings.Contains(p, "/ws/") || strings.Contains(p, "/api/v1/events") {
			t.Errorf("request event for a success or the widget's own traffic: %v", e)
		}
	}

	if e := find("report", "report", func(map[string]any) bool { return true }); e["msg"] != "Card declined for [email]" {
		t.Errorf("report msg = %q, want the email redacted", e["msg"])
	}
	find("queued track", "track", is("name", "queued_before_load"))
	if e := find("track", "track", is("name", "coupon_rejected")); e["props"].(map[string]any)["code"] != "SAVE10" {
		t.Errorf("track props = %v", e["props"])
	}
	find("longtask", "longtask", func(e map[string]any) bool { d, _ := e["dur"].(float64); return d >= 50 })
	find("hidden", "visibility", is("visible", false))
	find("visible", "visibility", is("visible", true))
	find("idle", "idle", is("idle", true))
	for _, e := range fake.Events("") {
		if _, ok := e["t"].(float64); !ok {
			t.Errorf("event without t: %v", e)
		}
	}

	// consent({signals:false}) stops capture; events resume when allowed.
	p.Eval(`lifeline('consent', {signals: false}); lifeline('track', 'while_off'); document.getElementById('throw').click()`, nil)
	p.Eval(`lifeline('consent', {signals: true}); lifeline('track', 'back_on')`, nil)
	find("track after consent", "track", is("name", "back_on"))
	if slices.ContainsFunc(fake.Events("track"), is("name", "while_off")) {
		t.Errorf("an event was captured while consent was off")
	}

	if strings.Contains(fake.Received(), secret) {
		t.Fatalf("the secret typed into fields reached the server:\n%s", fake.Received())
	}
	if strings.Contains(fake.Received(), "4000 0000") {
		t.Errorf("a card number reached the server")
	}
}
