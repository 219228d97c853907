package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/lifelinehq/lifeline/internal/browsertest"
)

// TestE2EAssistCardDeclined is agent assist's must-show in Chromium against
// the real binary: the demo visitor's card is declined three times and she
// accepts the offer; the agent's console shows the card-declined
// playbook's reply with her name filled in; Tab inserts it for editing, the
// agent sends it and the widget shows it; the agent runs "Send payment
// link" with a confirmation against a local receiver, which gets a
// correctly signed request, and the result appears in the conversation;
// after her "yes" the Playbooks page shows the reply's resolution rate.
func TestE2EAssistCardDeclined(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary and drives Chromium")
	}
	browsertest.Chromium(t)
	n := &e2eNode{addr: freePort(t), data: t.TempDir()}
	n.URL = "http://" + n.addr
	n.proc = startProc(t, n.addr, "--data", n.data, "--webhook-allow-host", "127.0.0.1")

	// The demo site's payment link goes to a local receiver that checks
	// the signature with the site's action secret.
	recv := newReceiver(t)
	admin := n.admin(t)
	var pbs struct {
		Playbooks    json.RawMessage `json:"playbooks"`
		ActionSecret string          `json:"action_secret"`
	}
	do(t, admin, "GET", "/api/v1/sites/demo/playbooks", nil, &pbs)
	recv.secret = pbs.ActionSecret
	doc := strings.Replace(string(pbs.Playbooks), `"/demo/api/assist"`, strconv.Quote(recv.URL+"/lifeline"), 1)
	do(t, admin, "PUT", "/api/v1/sites/demo/playbooks", json.RawMessage(doc), nil)

	vis := browsertest.New(t)
	agent := vis.NewContext()
	consoleLogin(t, agent, n.URL, adminEmail, testPassword)
	readyHook(vis)
	openDemo(vis, n.URL)
	declineCard(t, vis, 3, "")
	vis.WaitJS("the offer card", w("[part=offer]")+`?.hidden === false`)
	vis.WaitJS("the card's animation to settle", `document.querySelector('lifeline-widget').shadowRoot.getAnimations().length === 0`)
	setPresence(agent, "away")
	wClick(t, vis, "[part=offer] .pri")
	vis.WaitJS("the chat open", w(".p")+`.hidden === false`)

	cClick(t, agent, ".item.status-waiting")
	cClick(t, agent, "[data-action=claim]")
	agent.WaitJS("claimed", `document.querySelector('.convhead .pill[data-status=active]') !== null`)

	// The card-declined reply, to Ava by name, first above the composer.
	const want = "Hi Ava, I'm sorry your card was declined."
	agent.WaitJS("the card-declined suggestion", `document.querySelector('.assist .assist-reply.first')?.dataset.item === 'card-declined.other-card' && document.querySelector('.assist .assist-reply.first .assist-insert').textContent.startsWith(`+jsq(want)+`)`)
	agent.WaitJS("the finding it answers", `document.querySelector('.assist .assist-head')?.textContent.includes('declined')`)
	agent.Screenshot("assist-suggestions")
	var suggestion string
	agent.Eval(`document.querySelector('.assist .assist-reply.first .assist-insert').textContent`, &suggestion)

	// Tab inserts it for editing; nothing is sent until the agent sends.
	agent.Run(chromedp.Focus(chromedp.CSS(".composer textarea")), chromedp.KeyEvent("\t"))
	agent.WaitJS("the reply in the composer", `document.querySelector('.composer textarea').value === `+jsq(suggestion))
	var sent int
	agent.Eval(`document.querySelectorAll('.transcript .msg.agent').length`, &sent)
	if sent != 0 {
		t.Fatalf("inserting a suggestion sent %d messages", sent)
	}
	agent.Run(chromedp.KeyEvent(" Thanks for your patience!"), chromedp.KeyEvent("\r"))
	edited := suggestion + " Thanks for your patience!"
	vis.WaitJS("the reply in the widget", `[...document.querySelector('lifeline-widget').shadowRoot.querySelectorAll('.m')].some(e => e.textContent === `+jsq(edited)+`)`)
	vis.Screenshot("assist-widget-reply")

	// Send payment link: one click, a confirmation, the signed call, the note.
	cClick(t, agent, `[data-action=run-action][data-item="card-declined.payment-link"]`)
	agent.WaitJS("the confirmation", `document.querySelector('dialog.assist-confirm')?.textContent.includes('Email a payment link to ava@example.com?')`)
	agent.Screenshot("assist-confirm")
	cClick(t, agent, "dialog.assist-confirm [data-action=confirm-action]")
	agent.WaitJS("the action's result in the conversation", `[...document.querySelectorAll('.transcript .msg.note')].some(e => e.textContent.includes('Send payment link: payment link sent to ava@example.com'))`)
	agent.Screenshot("assist-action-result")
	recv.mu.Lock()
	got, bad := len(recv.got), recv.bad
	var email string
	if got > 0 {
		email = recv.got[0].Visitor.Email
	}
	recv.mu.Unlock()
	if got != 1 || bad != 0 || email != "ava@example.com" {
		t.Fatalf("receiver got %d signed requests (email %q) and %d bad ones, want one for Ava", got, email, bad)
	}

	// Resolve, she says yes; the Playbooks page shows the rate.
	cClick(t, agent, "[data-action=resolve]")
	vis.WaitJS("Did this solve it?", w("[part=feedback]")+`?.hidden === false`)
	wClick(t, vis, "[part=feedback] .pri")
	agent.WaitJS("solved", `document.querySelector('.convhead .feedback.yes') !== null`)
	cClick(t, agent, `a[href="/console/playbooks"]`)
	agent.WaitJS("the stats table", `document.querySelector('.page.playbooks tr[data-item="card-declined.other-card"] .resolution')?.textContent === '100%'`)
	agent.WaitJS("the live preview", `document.querySelector('.pb-preview [data-item="card-declined.other-card"]') !== null`)
	agent.Screenshot("assist-playbooks")

	checkNoBrowserErrors(t, "the visitor", vis, "/demo/api/pay")
	checkNoBrowserErrors(t, "the agent", agent, "401", "/api/v1/me")
}
