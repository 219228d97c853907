package widget

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/lifelinehq/lifeline/internal/browsertest"
)

// TestChat: a round trip in the UI; resume after the server dies and comes
// back (the unacked message resent with its client_id, hello.last_seq right,
// nothing duplicated on screen); the transcript surviving a reload; two tabs
// in sync; "Did this solve it?" on resolve; keyboard and focus.
func TestChat(t *testing.T) {
	f := newFixture(t)
	fake := f.fake
	p := browsertest.New(t)
	open(t, p, f.srv.URL+"/t/page")

	// Open with the launcher: focus moves into the composer.
	click(t, p, ".l")
	p.WaitJS("panel open with focus in the composer", shadow(".p")+`.hidden === false && document.querySelector('lifeline-widget').shadowRoot.activeElement === `+shadow("textarea"))

	// Enter sends.
	p.Run(chromedp.KeyEvent("Hello, I can't pay"), chromedp.KeyEvent("\r"))
	fake.Wait(t, "the message", func() bool { return len(fake.Frames("message")) == 1 })
	p.WaitJS("the message acknowledged", shadow(".m.v")+` && !`+shadow(".m.v")+`.classList.contains('q')`)
	p.WaitJS("queue position and reference", shadow("[part=status]")+`.textContent.includes('#2 in line') && `+shadow("[part=reference]")+`.textContent.includes('LF-7K3Q')`)

	fake.Send(map[string]any{"type": "typing", "conversation_id": "c1", "author": map[string]any{"kind": "agent"}, "typing": true})
	p.WaitJS("typing indicator", shadow(".ty")+`.hidden === false`)
	fake.SetStatus("active")
	fake.AgentSay("Hi Ava, I'm Sam. I can see the card was declined — let's fix it.")
	p.WaitJS("the agent's reply", `[...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')].length === 2`)
	if !strings.Contains(hostEvents(p), `"message"`) {
		t.Errorf("host page got no lifeline:message event: %s", hostEvents(p))
	}
	// The test's Enter also typed a newline.
	p.Eval(shadow("textarea")+`.value = ''; `+shadow("textarea")+`.dispatchEvent(new Event('input'))`, nil)
	shot(p, "panel")

	// Support's read receipt: "Seen" under the visitor's last message.
	fake.Send(map[string]any{"type": "read", "conversation_id": "c1", "seq": 2, "reader": "agent"})
	p.WaitJS("Seen under the visitor's message", receiptUnder("Hello, I can't pay"))
	shot(p, "receipt")

	// The node dies before the next message is durable.
	fake.HoldAcks(true)
	typeInto(t, p, "textarea", "Are you still there?")
	fake.Wait(t, "the held message", func() bool { return len(fake.Frames("message")) == 2 })
	cid := fake.Frames("message")[1].Data["client_id"].(string)
	fake.SetDown(true)
	f.srv.Stop()
	p.WaitJS("the composer to say it is offline", shadow(".o")+`.hidden === false`)
	fake.AgentSay("Yes — one moment while I check.") // stored while the visitor is away
	fake.HoldAcks(false)
	fake.SetDown(false)
	f.srv.Start()
	fake.Wait(t, "the message resent after the restart", func() bool { return len(fake.Frames("message")) == 3 })
	if got := fake.Frames("message")[2].Data["client_id"]; got != cid {
		t.Errorf("resent client_id = %v, want %v", got, cid)
	}
	hellos := fake.Frames("hello")
	last := hellos[len(hellos)-1].Data
	if last["token"] != browsertest.Token || last["last_seq"] != 2.0 {
		t.Errorf("hello after restart = %v, want the token and last_seq 2", last)
	}
	p.WaitJS("four bubbles, none queued", `(() => { const b = [...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')]; return b.length === 4 && !b.some(e => e.classList.contains('q')); })()`)
	texts, _ := bubbles(p)
	for _, s := range []string{"Are you still there?", "Yes — one moment while I check."} {
		if n := count(texts, s); n != 1 {
			t.Errorf("%q shown %d times, want once: %q", s, n, texts)
		}
	}
	// A newer message of the visitor's is not seen yet; then it is.
	p.WaitJS("no receipt for an unread message", `(r => !r || r.hidden)(`+shadow("[part=receipt]")+`)`)
	fake.Send(map[string]any{"type": "read", "conversation_id": "c1", "seq": 4, "reader": "agent"})
	p.WaitJS("Seen under the newer message", receiptUnder("Are you still there?"))

	// A reload keeps the conversation and resumes after the last seq.
	open(t, p, f.srv.URL+"/t/page")
	fake.Wait(t, "hello after reload", func() bool { return len(fake.Frames("hello")) > len(hellos) })
	hellos = fake.Frames("hello")
	if h := hellos[len(hellos)-1].Data; h["token"] != browsertest.Token || h["last_seq"] != 4.0 {
		t.Errorf("hello after reload = %v, want the token and last_seq 4", h)
	}
	if texts, _ := bubbles(p); len(texts) != 4 {
		t.Errorf("after reload the transcript is %q, want the 4 messages", texts)
	}
	p.WaitJS("Seen kept over the reload", receiptUnder("Are you still there?"))

	// A second tab of the same visitor shows new messages once.
	q := p.NewTab()
	open(t, q, f.srv.URL+"/t/page")
	click(t, p, ".l")
	typeInto(t, p, "textarea", "Sent from tab one")
	q.WaitJS("the message in tab two", `[...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')].some(e => e.textContent === 'Sent from tab one')`)
	fake.AgentSay("Seen in both tabs")
	for _, tab := range []*browsertest.Page{p, q} {
		tab.WaitJS("the agent message", `[...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')].some(e => e.textContent === 'Seen in both tabs')`)
		texts, queued := bubbles(tab)
		if count(texts, "Sent from tab one") != 1 || count(texts, "Seen in both tabs") != 1 || queued != 0 {
			t.Errorf("a tab shows %q (%d queued), want each message once", texts, queued)
		}
	}
	if n := strings.Count(hostEvents(q), `"unread"`); n == 0 {
		t.Errorf("tab two (closed) fired no unread event: %s", hostEvents(q))
	}

	// Resolved: "Did this solve it?"
	fake.SetStatus("resolved")
	p.WaitJS("the feedback question", shadow(".fb")+`.hidden === false`)
	shot(p, "feedback")
	click(t, p, ".fb .pri")
	fake.Wait(t, "feedback", func() bool { return len(fake.Frames("feedback")) == 1 })
	if fb := fake.Frames("feedback")[0].Data; fb["solved"] != true || fb["conversation_id"] != "c1" {
		t.Errorf("feedback = %v, want solved true for c1", fb)
	}

	// "What support can see" lists identity, pages and device.
	click(t, p, "[part=header] .ib")
	p.WaitJS("the what-support-can-see view", shadow("[part=seen]")+`.hidden === false`)
	var seen string
	p.Eval(shadow("[part=seen]")+`.textContent`, &seen)
	for _, want := range []string{"Ava", "signed by this site", "cart: 42.00", "/t/page", "desktop", "en-US"} {
		if !strings.Contains(seen, want) {
			t.Errorf("what support can see = %q, want it to mention %q", seen, want)
		}
	}
	shot(p, "seen")

	// Escape closes the panel and gives focus back to the page.
	p.Eval(shadow("[part=seen] button")+`.focus()`, nil)
	p.Eval(`document.querySelector('lifeline-widget').shadowRoot.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true, composed: true}))`, nil)
	p.WaitJS("the panel closed", shadow(".p")+`.hidden === true && `+shadow(".l")+`.getAttribute('aria-expanded') === 'false'`)
	// A new conversation numbers its messages from 1 again: the old
	// transcript gives way instead of swallowing seq 1 as a duplicate.
	fake.Send(map[string]any{"type": "conversation", "conversation": map[string]any{"id": "c2", "ref": "LF-9ZZZ", "status": "active", "agent": map[string]any{"name": "Sam"}}})
	fake.Send(map[string]any{"type": "message", "message": map[string]any{"conversation_id": "c2", "seq": 1, "client_id": "a-c2-1", "author": map[string]any{"kind": "agent", "name": "Sam"}, "text": "A new conversation"}})
	p.WaitJS("the new conversation", `[...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')].map(e => e.textContent).join('|') === 'A new conversation'`)

	if errs := q.Errors(); len(errs) > 0 {
		t.Errorf("tab two logged errors: %q", errs)
	}
}

// TestLeaveMessage: with no agent online the panel offers a form with an
// email instead of a chat.
func TestLeaveMessage(t *testing.T) {
	f := newFixture(t)
	f.fake.AgentsOnline = false
	// The site's own theme and strings (i18n) come with welcome.
	f.fake.Site = map[string]any{"theme": map[string]any{"color": "#0b7a55"}, "strings": map[string]any{"title": "Hilfe", "leaveTitle": "Wir sind gerade nicht da"}}
	p := browsertest.New(t)
	open(t, p, f.srv.URL+"/t/page")
	click(t, p, ".l")
	p.WaitJS("the leave-a-message form", shadow("[part=leave]")+`.hidden === false && `+shadow("[part=composer]")+`.hidden === true`)
	var look struct{ Title, Leave, Bg, Ink string }
	p.Eval(`({Title: `+shadow("h2")+`.textContent, Leave: `+shadow("[part=leave] h3")+`.textContent,
		Bg: getComputedStyle(`+shadow(".l")+`).backgroundColor, Ink: getComputedStyle(`+shadow(".l")+`).color})`, &look)
	if look.Title != "Hilfe" || look.Leave != "Wir sind gerade nicht da" || look.Bg != "rgb(11, 122, 85)" || look.Ink != "rgb(255, 255, 255)" {
		t.Errorf("site strings and theme not applied: %+v", look)
	}

	// Tab and Shift-Tab stay inside the open panel.
	for i := 0; i < 12; i++ {
		key := "\t"
		if i >= 8 {
			p.Run(chromedp.KeyEvent(key, chromedp.KeyModifiers(chromedp.ModifierShift)))
		} else {
			p.Run(chromedp.KeyEvent(key))
		}
		var inside bool
		p.Eval(`document.activeElement === document.querySelector('lifeline-widget') && `+shadow(".p")+`.contains(document.querySelector('lifeline-widget').shadowRoot.activeElement)`, &inside)
		if !inside {
			t.Fatalf("after %d Tab presses focus left the panel", i+1)
		}
	}
	p.Eval(shadow("[part=leave] input")+`.focus()`, nil)
	p.Run(keys("ava@example.com"))
	p.Eval(shadow("[part=leave] textarea")+`.focus()`, nil)
	p.Run(keys("Please call me back about order 1234"))
	shot(p, "leave")
	click(t, p, "[part=leave] .pri")
	f.fake.Wait(t, "leave_message", func() bool { return len(f.fake.Frames("leave_message")) == 1 })
	m := f.fake.Frames("leave_message")[0].Data
	if m["email"] != "ava@example.com" || m["text"] != "Please call me back about order 1234" || m["client_id"] == "" {
		t.Errorf("leave_message = %v", m)
	}
	p.WaitJS("the thank-you note", shadow("[part=leave]")+`.textContent.includes('ava@example.com')`)
}

// TestReadReceiptStaysPut: once "Seen" is shown, a new agent message
// leaves it where it is. The transcript is a live region: a receipt taken
// out and put back would be read out again with every message.
func TestReadReceiptStaysPut(t *testing.T) {
	f := newFixture(t)
	fake := f.fake
	p := readByAgent(t, f)
	p.WaitJS("Seen under the message", receiptUnder("Is my order on its way?"))
	p.Eval(`window.receiptAdded = 0; new MutationObserver(ms => { for (const m of ms) for (const n of m.addedNodes) if (n === `+shadow("[part=receipt]")+`) window.receiptAdded++; }).observe(`+shadow("[part=transcript]")+`, {childList: true})`, nil)
	fake.SetStatus("active")
	fake.AgentSay("It left the warehouse this morning.")
	p.WaitJS("the agent's reply", `[...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')].length === 2`)
	var added int
	p.Eval(`window.receiptAdded`, &added)
	if added != 0 {
		t.Errorf("the receipt was inserted %d times while the agent's reply came in, want 0", added)
	}
	p.WaitJS("Seen still under the visitor's message", receiptUnder("Is my order on its way?"))
}

// TestReadReceiptsOff: a site that turned read receipts off never shows
// its visitors "Seen", whatever support reads.
func TestReadReceiptsOff(t *testing.T) {
	f := newFixture(t)
	fake := f.fake
	fake.Site = map[string]any{"read_receipts": false}
	p := readByAgent(t, f)
	fake.SetStatus("active")
	fake.AgentSay("It left the warehouse this morning.") // shown only after the read was handled
	p.WaitJS("the agent's reply", `[...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')].length === 2`)
	var hidden bool
	p.Eval(`(() => { const r = `+shadow("[part=receipt]")+`; return !r || r.hidden; })()`, &hidden)
	if !hidden {
		t.Error(`"Seen" is shown on a site that turned read receipts off`)
	}
}

// readByAgent opens the widget, sends "Is my order on its way?", waits
// for its ack and has support read it.
func readByAgent(t *testing.T, f *fixture) *browsertest.Page {
	t.Helper()
	p := browsertest.New(t)
	open(t, p, f.srv.URL+"/t/page")
	click(t, p, ".l")
	typeInto(t, p, "textarea", "Is my order on its way?")
	p.WaitJS("the message acknowledged", shadow(".m.v")+` && !`+shadow(".m.v")+`.classList.contains('q')`)
	f.fake.Send(map[string]any{"type": "read", "conversation_id": "c1", "seq": 1, "reader": "agent"})
	return p
}

// receiptUnder is JavaScript that is true while the widget shows "Seen"
// right under the message with text.
func receiptUnder(text string) string {
	return fmt.Sprintf(`(() => { const r = %s; return !!r && !r.hidden && r.textContent === 'Seen' && r.previousElementSibling.textContent === %q; })()`, shadow("[part=receipt]"), text)
}
