package main

// End-to-end tests in real headless Chromium against the real lifeline
// binary: the demo shop with the widget on one side, the console on the
// other, each in its own browser context (no shared cookies or storage).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/browsertest"
	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/demo"
)

// e2eNode is the real binary serving on a free loopback port.
type e2eNode struct {
	addr, data, URL string
	proc            *proc
}

func startE2ENode(t *testing.T) *e2eNode {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the real binary and drives Chromium")
	}
	browsertest.Chromium(t) // skip (or fail under LIFELINE_REQUIRE_ALL=1) before building
	n := &e2eNode{addr: freePort(t), data: t.TempDir()}
	n.URL = "http://" + n.addr
	n.proc = startProc(t, n.addr, "--data", n.data)
	return n
}

// restart SIGKILLs the node and starts it again on the same address and data.
func (n *e2eNode) restart(t *testing.T) {
	t.Helper()
	n.proc.kill()
	n.proc = startProc(t, n.addr, "--data", n.data)
}

func (n *e2eNode) admin(t *testing.T) *client.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.Login(ctx, n.URL, adminEmail, testPassword)
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	return s
}

// do calls the API as s, failing the test on any error.
func do(t *testing.T, s *client.Session, method, path string, body, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Do(ctx, method, path, body, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// w is a JavaScript expression for an element in the widget's shadow root.
func w(sel string) string {
	return fmt.Sprintf(`document.querySelector('lifeline-widget')?.shadowRoot.querySelector(%q)`, sel)
}

// wClick clicks the centre of an element in the widget with a real mouse
// event, so overlays and z-index are part of the test.
func wClick(t *testing.T, p *browsertest.Page, sel string) {
	t.Helper()
	var pt struct{ X, Y float64 }
	p.Eval(`(() => { const e = `+w(sel)+`; e.scrollIntoView({block: 'nearest'}); const r = e.getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`, &pt)
	p.Run(chromedp.MouseClickXY(pt.X, pt.Y))
}

// wSend types text into the widget's composer and presses its send button.
func wSend(t *testing.T, p *browsertest.Page, text string) {
	t.Helper()
	p.Eval(w("textarea")+`.focus()`, nil)
	p.Run(chromedp.KeyEvent(text))
	wClick(t, p, ".c .pri")
}

// bubbleTexts returns the text of every message bubble in the widget and
// how many are still waiting for their ack.
func bubbleTexts(p *browsertest.Page) (texts []string, queued int) {
	var r struct {
		T []string
		Q int
	}
	p.Eval(`(() => { const b = [...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')];
		return {T: b.map(e => e.textContent), Q: b.filter(e => e.classList.contains('q')).length}; })()`, &r)
	return r.T, r.Q
}

func occurrences(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// openDemo loads the demo shop and waits for the widget's first welcome.
func openDemo(p *browsertest.Page, base string) {
	p.Navigate(base + "/demo")
	p.WaitJS("the widget connected", `document.querySelector('lifeline-widget') !== null && window.__lifelineReady === true`)
}

// readyHook makes every page of the tab record the widget's ready event
// from the very start, through the snippet's queue.
func readyHook(p *browsertest.Page) {
	p.OnNewDocument(`window.lifeline=window.lifeline||function(){(lifeline.q=lifeline.q||[]).push(arguments)};
		lifeline('on', 'ready', function () { window.__lifelineReady = true; });`)
}

// declineCard fills the demo's checkout with the declined test card, as a
// person would, and presses Pay times times, each after the last answer.
func declineCard(t *testing.T, p *browsertest.Page, times int, secret string) {
	t.Helper()
	fields := []struct{ sel, text string }{
		{"#name", "Ava Lindqvist"}, {"#street", "Storgatan 1"}, {"#postcode", "11122"}, {"#city", "Stockholm"},
		{"#email", "ava@example.com"}, {"#card", "4000 0000 0000 0002"}, {"#exp", "12/29"}, {"#cvc", "123"},
	}
	if secret != "" {
		fields[1].text = "Storgatan 1 " + secret
		fields = append(fields, struct{ sel, text string }{"#coupon-code", secret})
	}
	for _, f := range fields {
		p.Run(chromedp.SendKeys(chromedp.CSS(f.sel), f.text))
	}
	for i := range times {
		p.Run(chromedp.Click(chromedp.CSS("#pay")))
		p.WaitJS(fmt.Sprintf("decline %d", i+1), `document.getElementById('pay-msg').textContent.includes('declined') && !document.getElementById('pay').disabled`)
		// A fresh answer each time, so the next wait sees the next decline.
		p.Eval(`document.getElementById('pay-msg').textContent = ''`, nil)
	}
}

// consoleLogin signs in to /console in p and waits for its socket.
func consoleLogin(t *testing.T, p *browsertest.Page, base, email, password string) {
	t.Helper()
	p.Navigate(base + "/console")
	p.WaitJS("login form", `document.querySelector('.login input[type=email]') !== null`)
	p.Run(chromedp.SendKeys(chromedp.CSS(".login input[type=email]"), email),
		chromedp.SendKeys(chromedp.CSS(".login input[type=password]"), password),
		chromedp.Click(chromedp.CSS(".login button[type=submit]")))
	p.WaitJS("console connected", `document.querySelector('.conn.open') !== null`)
}

// cClick clicks the first console element matching sel.
func cClick(t *testing.T, p *browsertest.Page, sel string) {
	t.Helper()
	p.WaitJS("element "+sel, fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
	p.Run(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func setPresence(p *browsertest.Page, status string) {
	p.Eval(fmt.Sprintf(`(() => { const s = document.querySelector('select.presence'); s.value = %q; s.dispatchEvent(new Event('change')); return true; })()`, status), nil)
	p.WaitJS("presence "+status, fmt.Sprintf(`[...window.lifelineConsole.state.agents.values()].some(a => a.status === %q)`, status))
}

func jsq(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// checkNoBrowserErrors fails on exceptions, CSP violations and failed loads
// other than those named (substrings).
func checkNoBrowserErrors(t *testing.T, who string, p *browsertest.Page, expected ...string) {
	t.Helper()
	var bad []string
next:
	for _, e := range p.Errors() {
		for _, x := range expected {
			if strings.Contains(e, x) {
				continue next
			}
		}
		bad = append(bad, e)
	}
	if len(bad) > 0 {
		t.Errorf("%s's browser errors:\n%s", who, strings.Join(bad, "\n"))
	}
}

// TestE2EDeclinedCardToSolvedChat is the console's must-show in Chromium,
// two browser contexts against the real binary: a visitor's card is
// declined three times in the demo shop; the offer card appears and is
// accepted; the agent finds the visitor in the queue with the detector's
// sentence, and the page trail and errors in the sidebar, though the
// visitor typed nothing; the reply reaches the widget; the agent resolves;
// the visitor says it did not solve it; the conversation is back in the
// agent's queue.
func TestE2EDeclinedCardToSolvedChat(t *testing.T) {
	n := startE2ENode(t)
	vis := browsertest.New(t)
	agent := vis.NewContext()

	// The agent is online, so the offer is for a chat now.
	consoleLogin(t, agent, n.URL, adminEmail, testPassword)

	readyHook(vis)
	openDemo(vis, n.URL)
	declineCard(t, vis, 3, "")
	vis.WaitJS("the offer card", w("[part=offer]")+`?.hidden === false`)
	vis.WaitJS("the card's animation to settle", `document.querySelector('lifeline-widget').shadowRoot.getAnimations().length === 0`)
	var offer string
	vis.Eval(w("[part=offer]")+`.textContent`, &offer)
	if !strings.Contains(offer, "paying") {
		t.Errorf("offer card says %q, want the card-declined rule's text", offer)
	}
	vis.Screenshot("offer-card")

	// Away before accepting, so the chat waits in the queue for a claim
	// rather than being assigned at once.
	setPresence(agent, "away")
	wClick(t, vis, "[part=offer] .pri")
	vis.WaitJS("the chat open", w(".p")+`.hidden === false && `+w("[part=offer]")+`.hidden === true`)

	agent.WaitJS("the chat in the queue with the detector's sentence",
		`[...document.querySelectorAll('.item.status-waiting .why')].some(e => /Card declined (3 times|twice) on \/demo/.test(e.textContent))`)
	agent.Screenshot("queue")
	cClick(t, agent, ".item.status-waiting")
	cClick(t, agent, "[data-action=claim]")
	agent.WaitJS("claimed", `document.querySelector('.convhead .pill[data-status=active]') !== null`)
	agent.WaitJS("the page trail and errors in the sidebar",
		`document.querySelector('.context .trail')?.textContent.includes('/demo') && document.querySelector('.context .errors')?.textContent.includes('Card declined') && document.querySelector('.context .identity')?.textContent.includes('Verified')`)
	var visitorLines int
	agent.Eval(`document.querySelectorAll('.transcript .msg.visitor').length`, &visitorLines)
	if visitorLines != 0 {
		t.Errorf("the transcript has %d visitor messages; the visitor typed nothing", visitorLines)
	}

	const reply = "Hi Ava, I can see the card was declined three times. Let's sort it out."
	agent.Run(chromedp.SendKeys(chromedp.CSS(".composer textarea"), reply))
	cClick(t, agent, "[data-action=send]")
	vis.WaitJS("the agent's reply in the widget", `[...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')].some(e => e.textContent === `+jsq(reply)+`)`)
	agent.WaitJS("the reply acknowledged", `document.querySelectorAll('.transcript .msg.agent[data-seq]').length === 1 && !document.querySelector('.msg.pending')`)
	agent.Screenshot("conversation")
	vis.Screenshot("widget-open")

	cClick(t, agent, "[data-action=resolve]")
	agent.WaitJS("resolved", `document.querySelector('.convhead .pill[data-status=resolved]') !== null`)
	vis.WaitJS("Did this solve it?", w("[part=feedback]")+`?.hidden === false && `+w("[part=feedback]")+`.textContent.includes('Did this solve it?')`)
	vis.Screenshot("widget-feedback")
	wClick(t, vis, "[part=feedback] .sec")

	agent.WaitJS("reopened in the agent's queue",
		`document.querySelector('.convhead .pill[data-status=active]') !== null && document.querySelector('.convhead .feedback.no') !== null && [...document.querySelectorAll('.section')].some(s => s.querySelector('h2')?.textContent.startsWith('Mine') && s.querySelector('.item.status-active'))`)

	cClick(t, agent, `a[href="/console/detectors"]`)
	agent.WaitJS("detector counters", `[...document.querySelectorAll('.page.detectors tr[data-rule]')].some(r => r.textContent.includes('card-declined'))`)
	agent.Screenshot("detectors")

	checkNoBrowserErrors(t, "the visitor", vis, "/demo/api/pay") // the 402s the shop provoked
	checkNoBrowserErrors(t, "the agent", agent, "401", "/api/v1/me")
}

// agentSide is an agent speaking the protocol, for the widget tests whose
// subject is the visitor.
type agentSide struct {
	t    *testing.T
	ctx  context.Context
	conn *client.Conn
}

func dialAgentSide(t *testing.T, base string) *agentSide {
	t.Helper()
	ctx := testCtx(t)
	_, c := agentConn(t, ctx, base, adminEmail, testPassword)
	return &agentSide{t: t, ctx: ctx, conn: c}
}

// conversation waits for the first conversation frame and returns it.
func (a *agentSide) conversation() chat.Conversation {
	a.t.Helper()
	f, err := a.conn.Until(a.ctx, "conversation", nil)
	if err != nil {
		a.t.Fatalf("agent: no conversation: %v", err)
	}
	c, err := f.Conv()
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

// say sends a message and waits for its ack.
func (a *agentSide) say(convID, clientID, text string) {
	a.t.Helper()
	if err := a.conn.Send(a.ctx, map[string]any{"type": "message", "conversation_id": convID, "client_id": clientID, "text": text}); err != nil {
		a.t.Fatalf("agent send: %v", err)
	}
	for {
		f, err := a.conn.Next(a.ctx)
		if err != nil {
			a.t.Fatalf("agent waiting for the ack of %s: %v", clientID, err)
		}
		if f.Type == "error" {
			a.t.Fatalf("agent sent %s: error %s %s", clientID, f.Code, f.Raw)
		}
		if f.Type == "ack" && f.ClientID == clientID {
			return
		}
	}
}

// waitBubbles waits until the widget shows want, in order, each once, none
// still sending.
func waitBubbles(t *testing.T, p *browsertest.Page, want ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		texts, queued := bubbleTexts(p)
		if queued == 0 && mustJSON(texts) == mustJSON(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the widget shows %q (%d sending), want %q\nconsole:\n%s", texts, queued, want, strings.Join(p.Logs(), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestE2EWidgetChatSurvivesKill9: a chat round trip through the widget on
// the demo page; then the node is SIGKILLed right after the visitor sends,
// the visitor writes again while it is down, and the node comes back on the
// same address and data. After the widget reconnects every message is on
// screen exactly once, and stored exactly once.
func TestE2EWidgetChatSurvivesKill9(t *testing.T) {
	n := startE2ENode(t)
	ag := dialAgentSide(t, n.URL)
	vis := browsertest.New(t)
	readyHook(vis)
	openDemo(vis, n.URL)

	wClick(t, vis, ".l")
	vis.WaitJS("the panel open", w(".p")+`.hidden === false`)
	wSend(t, vis, "Hello, my card keeps failing")
	conv := ag.conversation()
	ag.say(conv.ID, "a-1", "Hi! Let me have a look.")
	waitBubbles(t, vis, "Hello, my card keeps failing", "Hi! Let me have a look.")
	vis.Screenshot("widget-chat")

	// In flight: the node dies the moment the message leaves the browser.
	wSend(t, vis, "Are you still there?")
	n.proc.kill()
	vis.WaitJS("the composer to say it is offline", w(".o")+`.hidden === false`)
	wSend(t, vis, "Written while you were away")
	_, queued := bubbleTexts(vis)
	if queued == 0 {
		t.Errorf("no message shows as sending while the node is down")
	}
	vis.Screenshot("widget-offline")
	n.proc = startProc(t, n.addr, "--data", n.data)

	ag = dialAgentSide(t, n.URL)
	ag.say(conv.ID, "a-2", "Yes, still here.")
	vis.WaitJS("back online with five messages, none sending", w(".o")+`.hidden === true && (() => {
		const b = [...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')];
		return b.length >= 5 && !b.some(e => e.classList.contains('q')); })()`)

	// The screen matches the store, message for message, and each once.
	var tr struct{ Messages []chat.Message }
	do(t, n.admin(t), http.MethodGet, "/api/v1/conversations/"+conv.ID, nil, &tr)
	var stored []string
	for i, m := range tr.Messages {
		if m.Seq != int64(i+1) {
			t.Errorf("stored message %d has seq %d", i, m.Seq)
		}
		stored = append(stored, m.Text)
	}
	for _, s := range []string{"Hello, my card keeps failing", "Hi! Let me have a look.", "Are you still there?", "Written while you were away", "Yes, still here."} {
		if k := occurrences(stored, s); k != 1 {
			t.Errorf("%q stored %d times, want once (store: %q)", s, k, stored)
		}
	}
	if len(stored) != 5 {
		t.Fatalf("store holds %q, want the five messages", stored)
	}
	waitBubbles(t, vis, stored...)
	vis.Screenshot("widget-resumed")

	// A reload shows the same transcript, once.
	openDemo(vis, n.URL)
	waitBubbles(t, vis, stored...)
	checkNoBrowserErrors(t, "the visitor", vis, "ws/visitor", "ERR_CONNECTION_REFUSED")
}

// TestE2EOfferDeclinedStaysDeclined: a visitor (their own session) says
// "No thanks" to the offer and goes on failing to pay; no second offer is
// shown, and the server sent none.
func TestE2EOfferDeclinedStaysDeclined(t *testing.T) {
	n := startE2ENode(t)
	dialAgentSide(t, n.URL) // online, so offers are for a chat
	vis := browsertest.New(t).NewContext()
	var mu sync.Mutex
	offers := 0
	vis.OnEvent(func(ev any) {
		if f, ok := ev.(*network.EventWebSocketFrameReceived); ok && strings.Contains(string(f.Response.PayloadData), `"type":"offer"`) {
			mu.Lock()
			offers++
			mu.Unlock()
		}
	})
	readyHook(vis)
	openDemo(vis, n.URL)
	declineCard(t, vis, 3, "")
	vis.WaitJS("the offer card", w("[part=offer]")+`?.hidden === false`)
	wClick(t, vis, "[part=offer] .sec")
	vis.WaitJS("the card gone", w("[part=offer]")+`.hidden === true && `+w(".p")+`.hidden === true`)

	// Three more declines, and a rejected coupon three times for good measure.
	for range 3 {
		vis.Run(chromedp.Click(chromedp.CSS("#pay")))
		vis.WaitJS("the decline", `document.getElementById('pay-msg').textContent.includes('declined') && !document.getElementById('pay').disabled`)
		vis.Eval(`document.getElementById('pay-msg').textContent = ''`, nil)
		vis.Run(chromedp.Click(chromedp.CSS("#coupon button")))
		vis.WaitJS("the coupon rejected", `document.getElementById('coupon-msg').textContent.includes('valid')`)
		vis.Eval(`document.getElementById('coupon-msg').textContent = ''`, nil)
	}
	// The server has seen them all: six declines in the visitor's journey.
	admin := n.admin(t)
	id := visitorID(t, admin, demo.Customer.ID)
	waitFor(t, "six declines in the journey", func() bool {
		var got struct{ Visitor chat.Visitor }
		do(t, admin, http.MethodGet, "/api/v1/visitors/"+id, nil, &got)
		j := got.Visitor.Context
		return j != nil && len(j.Errors) > 0 && j.Errors[0].Count >= 6
	})
	var hidden bool
	vis.Eval(w("[part=offer]")+`.hidden`, &hidden)
	if !hidden {
		t.Errorf("a second offer card is showing")
	}
	mu.Lock()
	if offers != 1 {
		t.Errorf("the widget received %d offers, want 1", offers)
	}
	mu.Unlock()
	var counters struct {
		Rules []struct {
			Rule                        string
			Offered, Accepted, Declined int64
		}
	}
	do(t, admin, http.MethodGet, "/api/v1/sites/demo/detector", nil, &counters)
	var offered, declined int64
	for _, r := range counters.Rules {
		offered += r.Offered
		declined += r.Declined
	}
	if offered != 1 || declined != 1 {
		t.Errorf("detector counters: %d offered, %d declined; want 1 and 1", offered, declined)
	}
	checkNoBrowserErrors(t, "the visitor", vis, "/demo/api/pay", "/demo/api/coupon")
}

// visitorID finds the demo visitor identified as externalID.
func visitorID(t *testing.T, admin *client.Session, externalID string) string {
	t.Helper()
	var found struct{ Visitors []chat.Visitor }
	waitFor(t, "visitor "+externalID, func() bool {
		do(t, admin, http.MethodGet, "/api/v1/visitors?site=demo&external_id="+externalID, nil, &found)
		return len(found.Visitors) > 0
	})
	return found.Visitors[0].ID
}

// waitFor polls ok every 50 ms for at most 15 seconds.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var _ = chat.StatusActive
var _ = demo.Sign
var _ = http.MethodGet
var _ = errors.New
