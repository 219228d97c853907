package widget

import (
	"testing"

	"github.com/lifelinehq/lifeline/internal/browsertest"
)

// TestWidgetInFirefox: the widget mounts, talks to the node and stays on
// top of a box the page adds later in Firefox too (its top layer, like
// Chromium's), with no errors.
func TestWidgetInFirefox(t *testing.T) {
	f := newFixture(t)
	p := browsertest.NewFirefox(t)
	p.Navigate(f.srv.URL + "/t/page")
	p.WaitJS("the widget's ready event", `document.documentElement.getAttribute('data-ready') !== null`)
	f.fake.Wait(t, "the hello", func() bool { return len(f.fake.Frames("hello")) == 1 })
	var top string
	p.Eval(coverLater, &top)
	if top != "lifeline-widget" {
		t.Errorf("in Firefox the launcher is covered by <%s>", top)
	}
	p.Screenshot("widget-firefox")
	for _, e := range p.Errors() {
		t.Errorf("browser error: %s", e)
	}
}
