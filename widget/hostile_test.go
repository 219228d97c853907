package widget

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/lifelinehq/lifeline/internal/browsertest"
)

// TestHostilePageAndStrictCSP: a page whose CSS unsets everything and
// stacks a huge z-index box in the corner, served with script-src 'self'
// and style-src 'self', still gets a working, styled widget, and the browser
// logs no CSP violation or error.
func TestHostilePageAndStrictCSP(t *testing.T) {
	f := newFixture(t)
	p := browsertest.New(t)
	open(t, p, f.srv.URL+"/t/hostile")

	var got struct {
		W, H, Right, Bottom, VW, VH float64
		Bg                          string
		Top                         string
	}
	p.Eval(`(() => {
		const l = `+shadow(".l")+`, r = l.getBoundingClientRect();
		const top = document.elementFromPoint(r.x + r.width/2, r.y + r.height/2);
		return {W: r.width, H: r.height, Right: r.right, Bottom: r.bottom, VW: innerWidth, VH: innerHeight,
			Bg: getComputedStyle(l).backgroundColor, Top: top ? top.localName : ''};
	})()`, &got)
	if got.W != 56 || got.H != 56 || got.VW-got.Right != 20 || got.VH-got.Bottom != 20 {
		t.Errorf("launcher = %vx%v at %v,%v from the corner, want 56x56 at 20,20", got.W, got.H, got.VW-got.Right, got.VH-got.Bottom)
	}
	if got.Bg != "rgb(31, 95, 204)" {
		t.Errorf("launcher background = %q, want the theme colour (styles not applied?)", got.Bg)
	}
	if got.Top != "lifeline-widget" {
		t.Errorf("the launcher is covered by <%s>", got.Top)
	}

	click(t, p, ".l")
	p.WaitJS("the panel open", shadow(".p")+`.hidden === false`)
	var w float64
	p.Eval(shadow(".p")+`.getBoundingClientRect().width`, &w)
	if w != 380 {
		t.Errorf("panel width = %v, want 380", w)
	}
	typeInto(t, p, "textarea", "Still works")
	f.fake.Wait(t, "the message", func() bool { return len(f.fake.Frames("message")) == 1 })
	shot(p, "hostile")

	for _, e := range p.Errors() {
		t.Errorf("browser error: %s", e)
	}
	for _, l := range p.Logs() {
		if strings.Contains(l, "Content Security Policy") {
			t.Errorf("CSP violation: %s", l)
		}
	}

	// The control: under this policy a <style> element in a shadow root is
	// refused, which is why the widget adopts a constructed stylesheet.
	p.Eval(`(() => { const d = document.createElement('div'); const r = d.attachShadow({mode: 'open'});
		const s = document.createElement('style'); s.textContent = 'p{color:red}'; r.append(s); document.body.append(d); })()`, nil)
	var refused bool
	for i := 0; i < 100 && !refused; i++ {
		for _, l := range p.Logs() {
			refused = refused || strings.Contains(l, "Content Security Policy")
		}
		p.Eval(`new Promise(r => setTimeout(r, 20))`, nil)
	}
	if !refused {
		t.Errorf("the policy did not refuse an inline <style>; the test would not catch a widget that needs one")
	}
}

// TestLauncherOnTopWhenTheScriptRunsMidParse: a widget script that runs
// while the parser is still in the body (a plain tag at its top; an async
// one on a slow page) must not be covered by a box with the same top
// z-index that the page declares after it.
func TestLauncherOnTopWhenTheScriptRunsMidParse(t *testing.T) {
	f := newFixture(t)
	p := browsertest.New(t)
	open(t, p, f.srv.URL+"/t/hostile-early")
	p.WaitJS("the widget mounted", `!!document.querySelector('lifeline-widget') && document.readyState !== 'loading'`)
	var top string
	p.Eval(`(() => { const r = `+shadow(".l")+`.getBoundingClientRect();
		const e = document.elementFromPoint(r.x + r.width/2, r.y + r.height/2); return e ? e.localName : ''; })()`, &top)
	if top != "lifeline-widget" {
		t.Errorf("the launcher is covered by <%s>", top)
	}
}

// coverLater is a page script that, after the widget mounted, adds a box
// with the top z-index over the corner where the launcher is (a cookie
// banner, a promotion) and names the element hit at the launcher's centre.
const coverLater = `(() => {
	const d = document.createElement('div');
	for (const [k, v] of [['position', 'fixed'], ['right', '0'], ['bottom', '0'], ['width', '300px'], ['height', '300px'],
		['z-index', '2147483647'], ['background', '#0c0'], ['display', 'block']]) d.style.setProperty(k, v, 'important');
	document.body.append(d);
	const r = document.querySelector('lifeline-widget').shadowRoot.querySelector('.l').getBoundingClientRect();
	const e = document.elementFromPoint(r.x + r.width/2, r.y + r.height/2);
	return e ? e.localName : '';
})()`

// TestLauncherOnTopOfABoxAddedLater: a box the page's scripts add after the
// widget mounted, with the same top z-index, does not cover the launcher:
// the widget sits in the top layer.
func TestLauncherOnTopOfABoxAddedLater(t *testing.T) {
	f := newFixture(t)
	p := browsertest.New(t)
	open(t, p, f.srv.URL+"/t/page")
	var top string
	p.Eval(coverLater, &top)
	if top != "lifeline-widget" {
		t.Errorf("the launcher is covered by <%s>", top)
	}
	click(t, p, ".l")
	p.WaitJS("the panel open", shadow(".p")+`.hidden === false`)
	shot(p, "covered-later")
}

// TestMobile: on a phone the open panel takes the whole screen.
func TestMobile(t *testing.T) {
	f := newFixture(t)
	p := browsertest.New(t)
	p.Run(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	open(t, p, f.srv.URL+"/t/page")
	f.fake.AgentSay("Hi! I'm Sam. How can I help with your order?")
	p.Eval(`lifeline('open')`, nil)
	p.WaitJS("the panel open", shadow(".p")+`.hidden === false`)
	var r struct{ W, H float64 }
	p.Eval(`(() => { const r = `+shadow(".p")+`.getBoundingClientRect(); return {W: r.width, H: r.height}; })()`, &r)
	if r.W != 390 || r.H != 844 {
		t.Errorf("panel on a 390x844 phone = %vx%v, want the whole screen", r.W, r.H)
	}
	shot(p, "mobile")
	// Its close button is reachable, and closing brings the launcher back.
	click(t, p, "[part=header] .ib:last-child")
	p.WaitJS("the launcher back", shadow(".p")+`.hidden && `+shadow(".l")+`.getBoundingClientRect().width === 56`)
}
