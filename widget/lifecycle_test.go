package widget

import (
	"testing"

	"github.com/lifelinehq/lifeline/internal/browsertest"
)

// TestLifecycle: no globals but window.lifeline; a second copy of the script
// is inert; a forged token is dropped; shutdown forgets the visitor.
func TestLifecycle(t *testing.T) {
	f := newFixture(t)
	fake := f.fake
	p := browsertest.New(t)
	open(t, p, f.srv.URL+"/t/page")

	var added []string
	p.Eval(`(() => { const before = new Set(JSON.parse(document.documentElement.getAttribute('data-globals')));
		return Object.keys(window).filter(k => !before.has(k)); })()`, &added)
	if len(added) != 0 {
		t.Errorf("widget.js added globals %q; only window.lifeline (already there as the stub) is allowed", added)
	}

	p.Eval(`new Promise(r => { const s = document.createElement('script'); s.src = '/widget.js'; s.dataset.site = 'site_test'; s.onload = r; document.head.append(s); })`, nil)
	var n int
	p.Eval(`document.querySelectorAll('lifeline-widget').length`, &n)
	if n != 1 {
		t.Errorf("after loading widget.js twice there are %d widgets, want 1", n)
	}

	p.Eval(`lifeline('open'); lifeline('close')`, nil)
	fake.Wait(t, "first hello", func() bool { return len(fake.Frames("hello")) == 1 })

	// The server refuses the token: the widget forgets it and says hello anew.
	fake.Send(map[string]any{"type": "error", "code": "bad_token", "message": "forged", "retryable": false})
	fake.Wait(t, "hello without a token", func() bool {
		h := fake.Frames("hello")
		return len(h) == 2 && h[1].Data["token"] == nil
	})

	// Shutdown (logout) forgets the visitor and starts anonymous.
	p.WaitJS("a token stored", `(JSON.parse(localStorage.getItem('lifeline:site_test') || '{}').tok)`)
	p.Eval(`lifeline('shutdown')`, nil)
	fake.Wait(t, "hello after shutdown", func() bool {
		h := fake.Frames("hello")
		return len(h) == 3 && h[2].Data["token"] == nil
	})
	// With the socket down, hiding the page sends the queue in one
	// keepalive request instead.
	p.WaitJS("connected again", shadow(".o")+`.hidden === true`)
	fake.SetDown(true)
	p.WaitJS("offline", shadow(".o")+`.hidden === false`)
	p.Eval(`lifeline('track', 'while_down'); Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'}); document.dispatchEvent(new Event('visibilitychange'))`, nil)
	fake.Wait(t, "the keepalive beacon", func() bool {
		for _, e := range fake.Events("track") {
			if e["name"] == "while_down" {
				return true
			}
		}
		return false
	})
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("browser errors: %q", errs)
	}
}
