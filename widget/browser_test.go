package widget

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/lifelinehq/lifeline/internal/browsertest"
)

// secret is typed into every kind of field; it must never reach the server.
const secret = "hunter2-SECRET-4242"

// csp is as strict as a careful site's: no inline script or style at all.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'"

type fixture struct {
	fake *browsertest.FakeVisitor
	srv  *browsertest.Server
}

// newFixture serves the real bundle, a fake /ws/visitor and the pages in
// testdata on one loopback origin.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	fake := browsertest.NewFakeVisitor()
	mux := http.NewServeMux()
	mux.Handle("/widget.js", Handler())
	mux.Handle("/ws/visitor", fake)
	mux.Handle("/api/v1/events", fake)
	mux.HandleFunc("/t/", serveTestdata)
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := browsertest.StartServer(t, mux)
	t.Cleanup(fake.Close)
	return &fixture{fake: fake, srv: srv}
}

func serveTestdata(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/t/")
	switch {
	case name == "page" || name == "hostile" || name == "hostile-early":
		b, err := os.ReadFile(filepath.Join("testdata", "page.html"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		css := "page.css"
		if name != "page" {
			css = "hostile.css"
		}
		page := strings.ReplaceAll(string(b), "{{CSS}}", css)
		if name == "hostile-early" {
			// The widget's script runs while the parser is at the top of
			// the body, before the page's covering box exists.
			tag := `<script async src="/widget.js" data-site="site_test" data-allow-params="utm_source"></script>`
			page = strings.Replace(strings.Replace(page, tag, "", 1), "<body>", "<body>\n"+strings.Replace(tag, " async", "", 1), 1)
		}
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	case name == "bench":
		// Cross-origin isolation gives performance.now() 5 µs resolution.
		w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
		w.Header().Set("Cross-Origin-Embedder-Policy", "require-corp")
		http.ServeFile(w, r, filepath.Join("testdata", "bench.html"))
	case strings.HasPrefix(name, "fail/"):
		http.Error(w, "boom", http.StatusInternalServerError)
	case name == "ok" || name == "favicon.ico":
		w.Write([]byte("ok"))
	case strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".css"):
		http.ServeFile(w, r, filepath.Join("testdata", filepath.Base(name)))
	default:
		http.NotFound(w, r)
	}
}

// shadow is JS that finds an element inside the widget's shadow root.
func shadow(sel string) string {
	return fmt.Sprintf(`document.querySelector('lifeline-widget').shadowRoot.querySelector(%q)`, sel)
}

// click clicks the centre of an element in the widget with a real mouse
// event, so hit testing (z-index, overlays) is part of the test.
func click(t *testing.T, p *browsertest.Page, sel string) {
	t.Helper()
	var pt struct{ X, Y float64 }
	p.Eval(`(() => { const e = `+shadow(sel)+`; e.scrollIntoView({block: 'nearest'}); const r = e.getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`, &pt)
	p.Run(chromedp.MouseClickXY(pt.X, pt.Y))
}

// typeInto focuses a field in the widget, types text and sends it with the
// composer's button.
func typeInto(t *testing.T, p *browsertest.Page, sel, text string) {
	t.Helper()
	p.Eval(shadow(sel)+`.focus()`, nil)
	p.Run(chromedp.KeyEvent(text))
	click(t, p, ".c .pri")
}

func open(t testing.TB, p *browsertest.Page, url string) {
	t.Helper()
	p.Navigate(url)
	p.WaitJS("the widget's ready event", `document.documentElement.getAttribute('data-ready')`)
}

// bubbles returns the texts of the transcript's message bubbles and how
// many are still queued.
func bubbles(p *browsertest.Page) (texts []string, queued int) {
	var r struct {
		T []string
		Q int
	}
	p.Eval(`(() => { const b = [...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')];
		return {T: b.map(e => e.textContent), Q: b.filter(e => e.classList.contains('q')).length}; })()`, &r)
	return r.T, r.Q
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func hostEvents(p *browsertest.Page) string {
	var s string
	p.Eval(`document.documentElement.getAttribute('data-events') || ''`, &s)
	return s
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func keys(s string) chromedp.Action[chromedp.Void] { return chromedp.KeyEvent(s) }

// shot waits for the widget's entrance animations to end, then saves a
// screenshot.
func shot(p *browsertest.Page, name string) {
	p.WaitJS("animations to settle", `document.querySelector('lifeline-widget').shadowRoot.getAnimations().every(a => a.effect.getTiming().iterations === Infinity)`)
	p.Screenshot(name)
}
