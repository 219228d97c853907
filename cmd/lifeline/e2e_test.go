package main

// End-to-end tests in real headless Chromium against the real lifeline
// binary: the demo shop with the widget on one side, the console on the
// other, each in its own browser context (no shared cookies or storage).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
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
	agent.WaitJS("the visitor's name in the queue", `document.querySelector('.item.status-waiting .who')?.textContent === `+jsq(demo.Customer.Name))
	agent.Screenshot("queue")
	cClick(t, agent, ".item.status-waiting")
	cClick(t, agent, "[data-action=claim]")
	agent.WaitJS("claimed", `document.querySelector('.convhead .pill[data-status=active]') !== null`)
	agent.WaitJS("the page trail and errors in the sidebar",
		`document.querySelector('.context .trail')?.textContent.includes('/demo') && document.querySelector('.context .errors')?.textContent.includes('Card declined') && document.querySelector('.context .identity')?.textContent.includes('Verified')`)
	agent.WaitJS("how the chat began", `document.querySelector('.transcript .msg.start')?.textContent.includes('Accepted a proactive offer (rule card-declined)')`)
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
	vis.WaitJS("the feedback answered", w("[part=feedback]")+`.hidden === true`)
	vis.Screenshot("widget-reopened")

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
	// The agent hears of the conversation as it starts, before the message
	// is stored: answering only after the widget has its ack keeps the
	// visitor's message first (seq 1), as the rest of the test expects.
	waitBubbles(t, vis, "Hello, my card keeps failing")
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
	waitWithin(t, 15*time.Second, what, ok)
}

// waitWithin is waitFor with a limit of its own, for what legitimately
// takes longer.
func waitWithin(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2ESnippetQueueAndPrivacy: calls queued in the snippet before the
// widget loads (the demo's signed identify, the test's context and track)
// reach the server; a secret typed into the shop's fields is in nothing the
// browser sent to the server (every WebSocket frame and request body,
// recorded through the DevTools protocol), nor in the visitor's record,
// nor in the node's data directory or logs.
func TestE2ESnippetQueueAndPrivacy(t *testing.T) {
	const secret = "Quokka-SECRET-hunter"
	n := startE2ENode(t)
	admin := n.admin(t)
	var sites struct{ Sites []chat.Site }
	do(t, admin, http.MethodGet, "/api/v1/sites", nil, &sites)
	var identitySecret string
	for _, s := range sites.Sites {
		if s.Key == "demo" {
			identitySecret = s.IdentitySecret
		}
	}
	if identitySecret == "" {
		t.Fatalf("no demo site with an identity secret in %+v", sites.Sites)
	}
	wantHash := chat.IdentityHash(identitySecret, demo.Customer.ID)
	if wantHash != demo.Sign(identitySecret, demo.Customer.ID) {
		t.Fatalf("chat.IdentityHash and demo.Sign disagree")
	}

	vis := browsertest.New(t)
	var mu sync.Mutex
	var sent []string // every frame and request body the page sent to the node
	vis.OnEvent(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventWebSocketFrameSent:
			sent = append(sent, string(ev.Response.PayloadData))
		case *network.EventRequestWillBeSent:
			if strings.HasPrefix(ev.Request.URL, n.URL) {
				body := ev.Request.URL
				for _, e := range ev.Request.PostDataEntries {
					body += " " + string(e.Bytes)
				}
				sent = append(sent, body)
			}
		}
	})
	vis.OnNewDocument(`window.lifeline=window.lifeline||function(){(lifeline.q=lifeline.q||[]).push(arguments)};
		lifeline('context', {order_id: 'LC-E2E', cart_value: 98});
		lifeline('track', 'queued_before_load');
		lifeline('on', 'ready', function () { window.__lifelineReady = true; });`)
	openDemo(vis, n.URL)

	// The secret goes into fields the shop never sends anywhere; the CVC
	// field fails validation with it, then the card is declined.
	for _, sel := range []string{"#name", "#street", "#city", "#cvc"} {
		vis.Run(chromedp.SendKeys(chromedp.CSS(sel), secret))
	}
	vis.Run(chromedp.SendKeys(chromedp.CSS("#postcode"), "11122"), chromedp.SendKeys(chromedp.CSS("#email"), "ava@example.com"),
		chromedp.SendKeys(chromedp.CSS("#card"), "4000 0000 0000 0002"), chromedp.SendKeys(chromedp.CSS("#exp"), "12/29"))
	vis.Run(chromedp.Click(chromedp.CSS("#pay")))
	vis.Eval(`document.getElementById('cvc').value = ''`, nil)
	vis.Run(chromedp.SendKeys(chromedp.CSS("#cvc"), "123"), chromedp.Click(chromedp.CSS("#pay")))
	vis.WaitJS("the decline", `document.getElementById('pay-msg').textContent.includes('declined')`)
	vis.Run(chromedp.Click(chromedp.CSS("#track"))) // throws

	id := visitorID(t, admin, demo.Customer.ID)
	var got struct{ Visitor chat.Visitor }
	waitFor(t, "the journey: the invalid CVC, the declined card, the thrown error", func() bool {
		do(t, admin, http.MethodGet, "/api/v1/visitors/"+id, nil, &got)
		j := got.Visitor.Context
		if j == nil {
			return false
		}
		var declined, thrown, paid bool
		for _, e := range j.Errors {
			declined = declined || strings.Contains(e.Msg, "Card declined")
			thrown = thrown || strings.Contains(e.Msg, "status")
		}
		for _, r := range j.Requests {
			paid = paid || (r.Path == "/demo/api/pay" && r.Status == 402)
		}
		return declined && thrown && paid
	})
	v := got.Visitor
	if !v.Verified || v.ExternalID != demo.Customer.ID || v.Name != demo.Customer.Name || v.Email != demo.Customer.Email {
		t.Errorf("visitor = %q %q %q verified %v; want the demo's signed identify", v.ExternalID, v.Name, v.Email, v.Verified)
	}
	for k, want := range map[string]string{"plan": demo.Customer.Plan, "order_id": "LC-E2E", "cart_value": "98"} {
		if v.Attributes[k] != want {
			t.Errorf("attribute %s = %q, want %q (attributes %v)", k, v.Attributes[k], want, v.Attributes)
		}
	}

	mu.Lock()
	frames := strings.Join(sent, "\n")
	mu.Unlock()
	for _, want := range []string{`"type":"identify"`, wantHash, `"queued_before_load"`, `"LC-E2E"`, `"k":"invalid"`, `"cvc"`} {
		if !strings.Contains(frames, want) {
			t.Errorf("the browser never sent %s; sent:\n%.3000s", want, frames)
		}
	}
	if strings.Contains(frames, secret) {
		t.Errorf("the secret left the browser:\n%s", frames)
	}
	var raw json.RawMessage
	do(t, admin, http.MethodGet, "/api/v1/visitors/"+id, nil, &raw)
	if strings.Contains(string(raw), secret) {
		t.Errorf("the visitor's record holds the secret: %s", raw)
	}
	n.proc.kill() // so the data files are complete and quiet
	if strings.Contains(n.proc.logs.String(), secret) {
		t.Errorf("the node logged the secret")
	}
	err := filepath.WalkDir(n.data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestE2ERolesEnforcedOnTheServer: an agent cannot use the admin API, and
// an analyst cannot send a message, whatever the UI shows.
func TestE2ERolesEnforcedOnTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary")
	}
	addr := freePort(t)
	base := "http://" + addr
	startProc(t, addr, "--data", t.TempDir())
	ctx := testCtx(t)
	admin, err := client.Login(ctx, base, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []map[string]any{
		{"email": "sam@example.com", "name": "Sam", "role": "agent", "password": "a long agent password"},
		{"email": "ana@example.com", "name": "Ana", "role": "analyst", "password": "a long analyst password"},
	} {
		do(t, admin, http.MethodPost, "/api/v1/agents", a, nil)
	}
	agent, err := client.Login(ctx, base, "sam@example.com", "a long agent password")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/api/v1/agents", map[string]any{"email": "mallory@example.com", "name": "M", "role": "admin", "password": "a long password here"}},
		{http.MethodPatch, "/api/v1/sites/demo", map[string]any{"origins": []string{"evil.example"}}},
		{http.MethodPatch, "/api/v1/sites/demo", map[string]any{"rotate_secret": true}},
		{http.MethodPost, "/api/v1/sites", map[string]any{"name": "Evil", "origins": []string{"evil.example"}}},
	} {
		err := agent.Do(ctx, c.method, c.path, c.body, nil)
		var se *client.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusForbidden {
			t.Errorf("agent %s %s = %v, want 403", c.method, c.path, err)
		}
	}

	// A visitor writes; the analyst sees the conversation but cannot answer.
	v, _ := visitor(t, ctx, base, "", 0)
	if err := v.Send(ctx, map[string]any{"type": "message", "client_id": "v-1", "text": "Hello?"}); err != nil {
		t.Fatal(err)
	}
	ack, err := v.Until(ctx, "ack", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, an := agentConn(t, ctx, base, "ana@example.com", "a long analyst password")
	if err := an.Send(ctx, map[string]any{"type": "message", "conversation_id": ack.ConversationID, "client_id": "an-1", "text": "I should not be able to say this"}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := an.Next(ctx)
		if err != nil {
			t.Fatalf("analyst: no answer to the message: %v", err)
		}
		if f.Type == "ack" && f.ClientID == "an-1" {
			t.Fatalf("the analyst's message was accepted: %s", f.Raw)
		}
		if f.Type == "error" {
			if f.Code != chat.CodeForbidden {
				t.Fatalf("analyst message: error %q, want forbidden (%s)", f.Code, f.Raw)
			}
			break
		}
	}
	var tr struct{ Messages []chat.Message }
	do(t, admin, http.MethodGet, "/api/v1/conversations/"+ack.ConversationID, nil, &tr)
	if len(tr.Messages) != 1 {
		t.Errorf("the conversation holds %d messages, want only the visitor's", len(tr.Messages))
	}
}

// inertJS counts what markup in the strings below would have created if
// it had been parsed as HTML anywhere in root, plus whether any handler ran.
func inertJS(root string) string {
	return `(() => { const r = ` + root + `; return r.querySelectorAll('img[src="x"], [onerror], [onmouseover], a[href^="javascript:" i], iframe, object, embed').length + (window.__xss !== undefined ? 1000 : 0); })()`
}

// TestE2EInjectionRendersInert: a visitor whose name, attributes, context,
// reported error and messages carry <img onerror> and javascript: links,
// and an agent who replies with the same; the console and the widget show
// it all as text — no element is created, no handler runs, no dialog opens.
func TestE2EInjectionRendersInert(t *testing.T) {
	const (
		name  = `Eve <img src=x onerror="window.__xss='name';alert('name')">`
		attr  = `<img src=x onerror="window.__xss='attr'">`
		link  = `javascript:window.__xss='attrlink'`
		ctxv  = `<a href="javascript:window.__xss='ctx'">profile</a>`
		errv  = `Card declined <img src=x onerror="window.__xss='err'">`
		msg   = `<img src=x onerror="window.__xss='msg'"> see <a href="javascript:window.__xss='link'">my order</a> javascript:alert('bare')`
		reply = `<img src=x onerror="window.__xss='reply';alert('reply')"> <a href="javascript:window.__xss='rlink'">click here</a>`
	)
	n := startE2ENode(t)
	vis := browsertest.New(t)
	agent := vis.NewContext()
	var mu sync.Mutex
	var dialogs []string
	for _, p := range []*browsertest.Page{vis, agent} {
		p.OnEvent(func(ev any) {
			if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
				mu.Lock()
				dialogs = append(dialogs, d.Message)
				mu.Unlock()
			}
		})
	}
	consoleLogin(t, agent, n.URL, adminEmail, testPassword)

	readyHook(vis)
	openDemo(vis, n.URL)
	// Log the demo's customer out: Eve is someone else, unverified.
	vis.Eval(`lifeline('shutdown'); lifeline('identify', {id: 'eve-1', name: `+jsq(name)+`, email: 'eve@example.com', attributes: {note: `+jsq(attr)+`, homepage: `+jsq(link)+`}});
		lifeline('context', {profile: `+jsq(ctxv)+`});
		lifeline('error', `+jsq(errv)+`); true`, nil)
	wClick(t, vis, ".l")
	vis.WaitJS("the panel open", w(".p")+`.hidden === false`)
	wSend(t, vis, msg)

	agent.WaitJS("the chat in the console", `document.querySelector('.convlist .item, .item') !== null`)
	cClick(t, agent, ".item")
	agent.WaitJS("the visitor's message as text", `document.querySelector('.transcript')?.textContent.includes("<img src=x onerror=\"window.__xss='msg'\">")`)
	// The router gives the chat to this agent (online) at a moment of its
	// own: claim it only if it still waits, in one step, so that the
	// button cannot go between a look and a click.
	agent.Eval(`(document.querySelector('[data-action=claim]')?.click(), true)`, nil)
	agent.WaitJS("the chat assigned", `document.querySelector('[data-action=resolve]') !== null`)
	agent.WaitJS("the sidebar with the name, attributes, context and error as text",
		`(() => { const s = document.querySelector('.context')?.textContent ?? ''; return s.includes(`+jsq(name)+`) && s.includes(`+jsq(attr)+`) && s.includes(`+jsq(link)+`) && s.includes(`+jsq(ctxv)+`) && s.includes("Card declined <img"); })()`)
	agent.Run(chromedp.SendKeys(chromedp.CSS(".composer textarea"), reply))
	cClick(t, agent, "[data-action=send]")
	vis.WaitJS("the reply as text in the widget", `[...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')].some(e => e.textContent === `+jsq(reply)+`)`)
	agent.WaitJS("the queue entry with the name", `[...document.querySelectorAll('.item')].some(e => e.textContent.includes('Eve <img'))`)
	agent.Screenshot("console")

	// What support can see, in the widget, lists the same as text.
	wClick(t, vis, "[part=header] .ib")
	vis.WaitJS("what support can see", w("[part=seen]")+`.hidden === false && `+w("[part=seen]")+`.textContent.includes(`+jsq(attr)+`)`)
	vis.Screenshot("widget-seen")
	wClick(t, vis, "[part=seen] button")
	vis.Screenshot("widget")

	var bad int
	agent.Eval(inertJS("document"), &bad)
	if bad != 0 {
		t.Errorf("the console parsed injected markup (%d elements; 1000 = a handler ran)", bad)
	}
	vis.Eval(inertJS("document.querySelector('lifeline-widget').shadowRoot"), &bad)
	if bad != 0 {
		t.Errorf("the widget parsed injected markup (%d elements; 1000 = a handler ran)", bad)
	}
	mu.Lock()
	if len(dialogs) > 0 {
		t.Errorf("dialogs opened: %q", dialogs)
	}
	mu.Unlock()
	checkNoBrowserErrors(t, "the visitor", vis)
	checkNoBrowserErrors(t, "the agent", agent, "401", "/api/v1/me")
}
