package widget

import (
	"strconv"
	"strings"
	"testing"

	"github.com/lifelinehq/lifeline/internal/browsertest"
)

const offerText = "Having trouble paying? Someone can help right now."

// TestOffer: a proactive offer is a small card with the server's text;
// "No thanks" is answered and respected; accepting opens the chat.
func TestOffer(t *testing.T) {
	f := newFixture(t)
	fake := f.fake
	p := browsertest.New(t)
	open(t, p, f.srv.URL+"/t/page")

	offer := func(id string) {
		fake.Send(map[string]any{"type": "offer", "offer_id": id, "text": offerText, "mode": "chat"})
	}
	// sync waits until the widget handled every frame sent before it.
	syncN := 0
	sync := func() {
		syncN++
		fake.Send(map[string]any{"type": "error", "code": "sync", "message": "", "retryable": true})
		p.WaitJS("the widget to catch up", `(JSON.parse(document.documentElement.getAttribute('data-events') || '[]').filter(e => e === 'error').length >= `+strconv.Itoa(syncN)+`)`)
	}

	offer("o1")
	p.WaitJS("the offer card", shadow("[part=offer]")+`.hidden === false`)
	var text string
	p.Eval(shadow("[part=offer] p")+`.textContent`, &text)
	if text != offerText {
		t.Errorf("offer card says %q, want %q", text, offerText)
	}
	if ev := hostEvents(p); !strings.Contains(ev, `"offer"`) {
		t.Errorf("host page got no lifeline:offer event: %s", ev)
	}
	// The same offer again, as a node sends it after a broker gap, is the
	// one already shown: no second lifeline:offer for the site's analytics.
	offer("o1")
	sync()
	if ev := hostEvents(p); strings.Count(ev, `"offer"`) != 1 {
		t.Errorf("host page events after the same offer twice: %s, want one offer", ev)
	}
	shot(p, "offer")
	var panelHidden bool
	p.Eval(shadow(".p")+`.hidden`, &panelHidden)
	if !panelHidden {
		t.Errorf("the offer opened the panel; it must be a card, not a modal")
	}

	click(t, p, "[part=offer] .sec")
	fake.Wait(t, "the decline", func() bool { return len(fake.Frames("offer_response")) == 1 })
	if r := fake.Frames("offer_response")[0].Data; r["offer_id"] != "o1" || r["accept"] != false {
		t.Errorf("offer_response = %v, want o1 declined", r)
	}
	p.WaitJS("the card gone", shadow("[part=offer]")+`.hidden === true && `+shadow(".p")+`.hidden === true`)

	// Another offer soon after "no thanks" is not shown.
	offer("o2")
	sync()
	var hidden bool
	p.Eval(shadow("[part=offer]")+`.hidden`, &hidden)
	if !hidden {
		t.Errorf("an offer was shown right after the visitor said no thanks")
	}

	// A new visit (storage cleared) accepts.
	p.Eval(`localStorage.clear()`, nil)
	open(t, p, f.srv.URL+"/t/page")
	offer("o3")
	p.WaitJS("the offer card", shadow("[part=offer]")+`.hidden === false`)
	click(t, p, "[part=offer] .pri")
	fake.Wait(t, "the accept", func() bool { return len(fake.Frames("offer_response")) == 2 })
	if r := fake.Frames("offer_response")[1].Data; r["offer_id"] != "o3" || r["accept"] != true {
		t.Errorf("offer_response = %v, want o3 accepted", r)
	}
	p.WaitJS("the chat open", shadow(".p")+`.hidden === false && `+shadow("[part=offer]")+`.hidden === true`)
	if ev := hostEvents(p); !strings.Contains(ev, `"offer:accepted"`) || !strings.Contains(ev, `"open"`) {
		t.Errorf("host events = %s, want offer:accepted and open", ev)
	}
}
