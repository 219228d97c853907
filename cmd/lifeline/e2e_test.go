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
	"testing"
	"time"

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

var _ = chat.StatusActive
var _ = demo.Sign
var _ = http.MethodGet
var _ = errors.New
