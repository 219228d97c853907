package console

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lifelinehq/lifeline/internal/browsertest"
	"github.com/lifelinehq/lifeline/internal/client"
)

// TestConsoleInFirefox is the agent's core loop in Firefox, driven over
// WebDriver BiDi against the same in-process node as the Chromium tests:
// log in through the form, a visitor's message shows in the queue, open and
// claim it, reply through the composer, and the visitor receives the reply;
// then the product pages (visitors, detectors, sites, agents) render. No
// console errors or uncaught exceptions throughout.
func TestConsoleInFirefox(t *testing.T) {
	n := startNode(t)
	p := browsertest.NewFirefox(t)

	p.Navigate(n.URL + "/console")
	p.WaitJS("login form", `document.querySelector('.login input[type=email]') !== null`)
	p.Eval(fmt.Sprintf(`(() => {
		const f = document.querySelector('.login form');
		f.querySelector('input[type=email]').value = %q;
		f.querySelector('input[type=password]').value = %q;
		f.requestSubmit();
		return true;
	})()`, adminEmail, adminPassword), nil)
	p.WaitJS("console connected", `document.querySelector('.conn.open') !== null`)

	// Away, so the router does not assign the chat before we claim it.
	p.Eval(`(() => { const s = document.querySelector('select.presence'); s.value = 'away'; s.dispatchEvent(new Event('change')); return true; })()`, nil)
	p.WaitJS("presence away", `[...window.lifelineConsole.state.agents.values()].some(a => a.status === 'away')`)

	v := dialVisitor(t, n, map[string]any{"page": map[string]any{"path": "/checkout"}})
	v.send(map[string]any{"type": "message", "client_id": "f1", "text": "Hello from a visitor"})
	ack := v.wait("ack", func(f client.Frame) bool { return f.Type == "ack" && f.ClientID == "f1" })
	item := `.item[data-id=` + jsString(ack.ConversationID) + `]`

	p.WaitJS("the chat in the queue", `document.querySelector('.item.status-waiting[data-id=`+jsString(ack.ConversationID)+`]') !== null`)
	p.Eval(`document.querySelector(`+jsString(item)+`).click(), true`, nil)
	p.WaitJS("transcript", `[...document.querySelectorAll('.transcript .msg.visitor')].some(e => e.textContent.includes('Hello from a visitor'))`)
	p.Eval(`document.querySelector('[data-action=claim]').click(), true`, nil)
	p.WaitJS("claimed", `document.querySelector('.convhead .pill[data-status=active]') !== null`)

	p.Eval(`(() => { const e = document.querySelector('.composer textarea'); e.focus(); e.value = 'Hi from Firefox'; e.dispatchEvent(new Event('input', {bubbles: true})); return true; })()`, nil)
	p.Eval(`document.querySelector('[data-action=send]').click(), true`, nil)
	v.wait("the reply", agentMessage("Hi from Firefox"))
	p.WaitJS("reply acknowledged", `document.querySelectorAll('.transcript .msg.agent[data-seq]').length === 1 && !document.querySelector('.msg.pending')`)
	p.Screenshot("conversation-firefox")

	// The product pages render in Firefox too.
	for _, pg := range []struct{ link, ready string }{
		{"/console/visitors", `document.querySelector('.page.visitors') !== null`},
		{"/console/detectors", `document.querySelector('.page.detectors tr[data-rule]') !== null`},
		{"/console/sites", `document.querySelector('.page.sites section.site[data-site=demo] pre.snippet') !== null`},
		{"/console/agents", `document.querySelector('.page.agents tr[data-agent]') !== null`},
	} {
		p.Eval(`document.querySelector('a[href="`+pg.link+`"]').click(), true`, nil)
		p.WaitJS(pg.link, pg.ready)
	}
	p.Screenshot("sites-firefox")

	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("Firefox console errors:\n%s", strings.Join(errs, "\n"))
	}
}
