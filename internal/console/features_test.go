package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/browsertest"
	"github.com/lifelinehq/lifeline/internal/client"
)

// key presses keys as the keyboard does (real input events to whatever
// has focus).
func key(p *browsertest.Page, keys string) {
	p.Run(chromedp.KeyEvent(keys))
}

// shortcut presses one key as Chrome itself sends it: a keyDown carrying
// the text, so a handled (default-prevented) keydown types nothing, then a
// keyUp. chromedp.KeyEvent sends the text as a separate char event, which
// would type the "e" that moved focus into the composer.
func shortcut(p *browsertest.Page, k rune) {
	evs := kb.Encode(k)
	down, up := *evs[0], *evs[len(evs)-1]
	if len(evs) == 3 {
		down.Text, down.UnmodifiedText = evs[1].Text, evs[1].UnmodifiedText
	}
	ctx, cancel := context.WithTimeout(p.Context(), 10*time.Second)
	defer cancel()
	for _, ev := range []input.DispatchKeyEventParams{down, up} {
		if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, ev); err != nil {
			panic(fmt.Sprintf("key %q: %v", k, err))
		}
	}
}

// blur leaves any field, so shortcuts apply.
func blur(p *browsertest.Page) {
	p.Eval(`(document.activeElement?.blur(), true)`, nil)
}

// waitingChat logs the admin in (away, so the router does not assign), and
// has a visitor write; it returns the visitor and the conversation id once
// the chat is in the queue.
func waitingChat(t *testing.T, n *node, p *browsertest.Page, text string) (*visitor, string) {
	t.Helper()
	login(t, p, n.URL, adminEmail, adminPassword)
	p.Eval(`(() => { const s = document.querySelector('select.presence'); s.value = 'away'; s.dispatchEvent(new Event('change')); return true; })()`, nil)
	p.WaitJS("presence away", `[...window.lifelineConsole.state.agents.values()].some(a => a.status === 'away')`)
	v := dialVisitor(t, n, map[string]any{"page": map[string]any{"path": "/checkout"}})
	v.send(map[string]any{"type": "message", "client_id": "v1", "text": text})
	ack := v.wait("ack", func(f client.Frame) bool { return f.Type == "ack" && f.ClientID == "v1" })
	p.WaitJS("the chat in the queue", `document.querySelector('.item.status-waiting[data-id=`+jsString(ack.ConversationID)+`]') !== null`)
	return v, ack.ConversationID
}

// agentSocket logs an agent in over HTTP and opens its socket with hello.
func agentSocket(t *testing.T, n *node, email, password string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := client.Login(ctx, n.URL, email, password)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.DialAgent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Send(ctx, map[string]any{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Until(ctx, "welcome", nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConsoleTransfer: the agent transfers a claimed chat to a second agent
// through the dialog (picker and private note, opened with the t key). The
// second agent's socket is given the conversation and the note; the visitor
// never sees the note.
func TestConsoleTransfer(t *testing.T) {
	n := startNode(t)
	cleo, err := n.Auth.AddAgent(context.Background(), "cleo@example.com", "Cleo", chat.RoleAgent, "cleo's long password")
	if err != nil {
		t.Fatal(err)
	}
	p := browsertest.New(t)
	v, convID := waitingChat(t, n, p, "I need a refund")
	click(t, p, `.item[data-id=`+jsString(convID)+`]`)
	p.WaitJS("transcript", `document.querySelector('.transcript .msg.visitor') !== null`)
	click(t, p, `[data-action=claim]`)
	p.WaitJS("claimed", `document.querySelector('.convhead .pill[data-status=active]') !== null`)

	// Cleo connects now: online earlier, the router would have given her the chat.
	cs := agentSocket(t, n, "cleo@example.com", "cleo's long password")
	const note = "Refund over 100 EUR: needs a supervisor"
	blur(p)
	shortcut(p, 't')
	p.WaitJS("transfer dialog with Cleo", `[...document.querySelectorAll('dialog.modal select option')].some(o => o.value === `+jsString(cleo.ID)+`)`)
	p.Eval(fmt.Sprintf(`(() => {
		const d = document.querySelector('dialog.modal');
		d.querySelector('select').value = %s;
		d.querySelector('textarea').value = %s;
		d.querySelector('[data-action=do-transfer]').click();
		return true;
	})()`, jsString(cleo.ID), jsString(note)), nil)

	// Cleo's socket gets the conversation, now hers, and the note.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var gotConv, gotNote bool
	for !gotConv || !gotNote {
		f, err := cs.Next(ctx)
		if err != nil {
			t.Fatalf("Cleo's socket: %v (conversation %v, note %v)", err, gotConv, gotNote)
		}
		if f.Type == "conversation" {
			if c, err := f.Conv(); err == nil && c.ID == convID && c.AgentID == cleo.ID {
				gotConv = true
			}
		}
		if f.Type == "note" && strings.Contains(string(f.Raw), note) && strings.Contains(string(f.Raw), convID) {
			gotNote = true
		}
	}
	p.WaitJS("the note in the transcript", `[...document.querySelectorAll('.msg.note')].some(e => e.textContent.includes(`+jsString(note)+`))`)
	p.WaitJS("the admin's load back to 0", `document.querySelector('.load').textContent.startsWith('0/')`)
	save(p, "transferred")

	// Cleo answers; by the time the visitor has her message, a leaked note
	// would have arrived before it.
	if err := cs.Send(ctx, map[string]any{"type": "message", "conversation_id": convID, "client_id": "c1", "text": "Cleo here, I can help."}); err != nil {
		t.Fatal(err)
	}
	v.wait("Cleo's message", agentMessage("Cleo here, I can help."))
	for _, f := range v.frames {
		if strings.Contains(string(f.Raw), "supervisor") {
			t.Fatalf("the visitor received the transfer note: %s", f.Raw)
		}
	}
	checkClean(t, p)
}

// TestConsoleCannedAndKeys: keyboard shortcuts as docs/console.md lists
// them (j, Enter, c, e, Esc, n, r, o, ?) and a canned response expanded from
// /shortcut with Tab, sent with Enter, all with real key events.
func TestConsoleCannedAndKeys(t *testing.T) {
	n := startNode(t)
	p := browsertest.New(t)
	v, convID := waitingChat(t, n, p, "Where is my parcel?")
	item := `.item[data-id=` + jsString(convID) + `]`

	// j focuses the first conversation in the list, Enter opens it, c claims.
	blur(p)
	shortcut(p, 'j')
	p.WaitJS("focused in the list", `document.querySelector(`+jsString(item+`.focused`)+`) !== null`)
	shortcut(p, '\r')
	p.WaitJS("opened", `location.pathname.endsWith(`+jsString("/c/"+convID)+`) && document.querySelector('.transcript .msg.visitor') !== null`)
	blur(p)
	shortcut(p, 'c')
	p.WaitJS("claimed with c", `document.querySelector('.convhead .pill[data-status=active]') !== null`)

	// e writes in the composer; /mom and Tab expand the canned response.
	shortcut(p, 'e')
	p.WaitJS("composer focused with e", `document.activeElement === document.querySelector('.composer textarea')`)
	key(p, "/mom")
	p.WaitJS("canned suggestion", `document.querySelector('.canned.first')?.textContent.includes('/moment')`)
	shortcut(p, '\t')
	const moment = "Give me a moment while I check that for you."
	p.WaitJS("expanded", `document.querySelector('.composer textarea').value === `+jsString(moment))
	shortcut(p, '\r')
	v.wait("the canned reply", agentMessage(moment))

	// A canned response added in the dialog, expanded mid-sentence with Enter.
	p.Eval(`[...document.querySelectorAll('.composer button.link')].find(b => b.textContent === 'Canned responses').click(), true`, nil)
	p.WaitJS("canned dialog", `document.querySelector('dialog.modal form.canned-add') !== null`)
	p.Eval(`(() => {
		const f = document.querySelector('dialog.modal form.canned-add');
		f.querySelector('input').value = '/track';
		f.querySelector('textarea').value = 'Your tracking link is in the confirmation email.';
		f.requestSubmit();
		document.querySelector('dialog.modal').close();
		return true;
	})()`, nil)
	p.WaitJS("dialog closed", `document.querySelector('dialog.modal') === null`)
	click(t, p, ".composer textarea")
	p.Eval(`document.querySelector('.composer textarea').focus(), true`, nil)
	key(p, "Sure! /tra")
	p.WaitJS("custom suggestion", `document.querySelector('.canned.first')?.textContent.includes('/track')`)
	shortcut(p, '\r')
	p.WaitJS("expanded mid-sentence", `document.querySelector('.composer textarea').value === 'Sure! Your tracking link is in the confirmation email.'`)
	shortcut(p, '\r')
	v.wait("the second canned reply", agentMessage("Sure! Your tracking link is in the confirmation email."))
	var stored string
	p.Eval(`Object.keys(localStorage).filter(k => k.startsWith('lifeline.canned.')).map(k => localStorage.getItem(k)).join('')`, &stored)
	if !strings.Contains(stored, `"track"`) {
		t.Errorf("the canned response is not stored: %q", stored)
	}

	// Esc leaves the composer; shortcuts then apply, not typing.
	shortcut(p, '\x1b')
	p.WaitJS("composer left with Esc", `document.activeElement !== document.querySelector('.composer textarea')`)
	shortcut(p, 'n')
	p.WaitJS("note mode with n, composer focused", `document.querySelector('[data-mode=note]').classList.contains('on') && document.activeElement === document.querySelector('.composer textarea')`)
	shortcut(p, '\x1b')
	shortcut(p, 'n')
	p.WaitJS("reply mode with n", `document.querySelector('[data-mode=reply]').classList.contains('on')`)
	shortcut(p, '\x1b')
	var typed string
	p.Eval(`document.querySelector('.composer textarea').value`, &typed)
	if typed != "" {
		t.Fatalf("shortcut keys were typed into the composer: %q", typed)
	}

	// r resolves, o reopens.
	shortcut(p, 'r')
	v.wait("resolved with r", func(f client.Frame) bool {
		return f.Type == "conversation" && strings.Contains(string(f.Conversation), `"resolved"`)
	})
	p.WaitJS("resolved", `document.querySelector('.convhead .pill[data-status=resolved]') !== null`)
	blur(p)
	shortcut(p, 'o')
	p.WaitJS("reopened with o", `document.querySelector('.convhead .pill[data-status=active]') !== null`)

	// ? lists the shortcuts.
	blur(p)
	shortcut(p, '?')
	p.WaitJS("shortcut help", `[...document.querySelectorAll('dialog.modal table.keys kbd')].some(k => k.textContent === 'j / k')`)
	save(p, "shortcuts")
	checkClean(t, p)
}

// TestConsoleSettingsPersist: the notification and sound toggles are
// stored per agent in localStorage and survive a reload, on and off.
func TestConsoleSettingsPersist(t *testing.T) {
	n := startNode(t)
	p := browsertest.New(t)
	// Headless Chromium would refuse the permission prompt.
	pctx, cancel := context.WithTimeout(p.Context(), 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(pctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission: &cdpbrowser.PermissionDescriptor{Name: "notifications"},
		Setting:    cdpbrowser.PermissionSettingGranted,
		Origin:     n.URL,
	}); err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
	login(t, p, n.URL, adminEmail, adminPassword)

	openSettings := func() {
		t.Helper()
		click(t, p, `button[aria-label=Settings]`)
		p.WaitJS("settings dialog", `document.querySelector('dialog.modal [data-setting=notify]') !== null`)
	}
	checked := func() (notify, sound bool) {
		t.Helper()
		var got []bool
		p.Eval(`['notify', 'sound'].map(s => document.querySelector('dialog.modal [data-setting=' + s + ']').checked)`, &got)
		return got[0], got[1]
	}
	reload := func() {
		t.Helper()
		p.Navigate(n.URL + "/console")
		p.WaitJS("console connected", `document.querySelector('.conn.open') !== null`)
	}

	openSettings()
	if nt, sd := checked(); nt || sd {
		t.Fatalf("defaults: notify %v, sound %v; want both off", nt, sd)
	}
	click(t, p, `dialog.modal [data-setting=notify]`)
	click(t, p, `dialog.modal [data-setting=sound]`)
	p.WaitJS("stored", `Object.keys(localStorage).some(k => k.startsWith('lifeline.settings.') && JSON.parse(localStorage.getItem(k)).notify === true && JSON.parse(localStorage.getItem(k)).sound === true)`)
	save(p, "settings")

	reload()
	openSettings()
	if nt, sd := checked(); !nt || !sd {
		t.Fatalf("after reload: notify %v, sound %v; want both on", nt, sd)
	}
	click(t, p, `dialog.modal [data-setting=sound]`)
	p.WaitJS("sound off stored", `Object.keys(localStorage).some(k => k.startsWith('lifeline.settings.') && JSON.parse(localStorage.getItem(k)).sound === false)`)
	reload()
	openSettings()
	if nt, sd := checked(); !nt || sd {
		t.Fatalf("after the second reload: notify %v, sound %v; want notify on, sound off", nt, sd)
	}
	checkClean(t, p)
}

// TestConsoleSitesPage: an admin adds a site, sees its snippet and secret,
// and rotates the identity secret; the REST API agrees.
func TestConsoleSitesPage(t *testing.T) {
	n := startNode(t)
	p := browsertest.New(t)
	login(t, p, n.URL, adminEmail, adminPassword)
	click(t, p, `a[href="/console/sites"]`)
	p.WaitJS("sites page", `document.querySelector('.page.sites form.add') !== null && document.querySelector('section.site[data-site=demo]') !== null`)
	p.Eval(`(() => {
		const f = document.querySelector('.page.sites form.add');
		f.querySelector('[aria-label=Name]').value = 'Second shop';
		f.querySelector('[aria-label=Key]').value = 'shop-two';
		f.querySelector('[aria-label=Origins]').value = 'shop.example.com, *.example.org';
		f.requestSubmit();
		return true;
	})()`, nil)
	const sec = `section.site[data-site="shop-two"]`
	p.WaitJS("new site listed", `document.querySelector(`+jsString(sec)+`) !== null`)
	var snippet, secret string
	p.Eval(`document.querySelector(`+jsString(sec+` pre.snippet`)+`).textContent`, &snippet)
	if !strings.Contains(snippet, `src="`+n.URL+`/widget.js"`) || !strings.Contains(snippet, `data-site="shop-two"`) {
		t.Fatalf("snippet: %s", snippet)
	}
	p.Eval(`document.querySelector(`+jsString(sec+` code.secret`)+`).textContent`, &secret)
	if len(secret) < 16 {
		t.Fatalf("identity secret shown: %q", secret)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin, err := client.Login(ctx, n.URL, adminEmail, adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	restSite := func() chat.Site {
		t.Helper()
		var out struct {
			Sites []chat.Site `json:"sites"`
		}
		if err := admin.Do(ctx, "GET", "/api/v1/sites", nil, &out); err != nil {
			t.Fatal(err)
		}
		for _, s := range out.Sites {
			if s.Key == "shop-two" {
				return s
			}
		}
		t.Fatalf("shop-two not in GET /api/v1/sites: %+v", out.Sites)
		return chat.Site{}
	}
	s := restSite()
	if s.Name != "Second shop" || strings.Join(s.Origins, ",") != "shop.example.com,*.example.org" || s.IdentitySecret != secret {
		t.Fatalf("stored site %+v; the page shows secret %q", s, secret)
	}

	// Rotate, confirming the browser's dialog.
	p.Eval(`window.confirm = () => true, true`, nil)
	p.Eval(`[...document.querySelectorAll(`+jsString(sec+` button.link`)+`)].find(b => b.textContent === 'Rotate').click(), true`, nil)
	p.WaitJS("new secret shown", `(document.querySelector(`+jsString(sec+` code.secret`)+`)?.textContent ?? '') !== `+jsString(secret)+` && (document.querySelector(`+jsString(sec+` code.secret`)+`)?.textContent ?? '').length >= 16`)
	var rotated string
	p.Eval(`document.querySelector(`+jsString(sec+` code.secret`)+`).textContent`, &rotated)
	if s := restSite(); s.IdentitySecret != rotated || rotated == secret {
		t.Fatalf("after rotation REST has %q, the page %q, before %q", s.IdentitySecret, rotated, secret)
	}
	// Read receipts off: untick, save, and the REST API agrees.
	var ticked bool
	p.Eval(`(() => {
		const s = document.querySelector(`+jsString(sec)+`);
		const box = s.querySelector('input[type=checkbox]');
		if (!box.checked) return false;
		box.click();
		s.querySelector('[data-action=save-site]').click();
		return true;
	})()`, &ticked)
	if !ticked {
		t.Fatal("the read receipts box is not ticked on a new site")
	}
	for deadline := time.Now().Add(10 * time.Second); !restSite().HideReadReceipts; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("read receipts still on in GET /api/v1/sites 10 s after saving them off")
		}
	}
	p.WaitJS("the box unticked after the reload", `document.querySelector(`+jsString(sec+` input[type=checkbox]`)+`)?.checked === false`)
	p.Eval(`document.querySelector(`+jsString(sec)+`).scrollIntoView(), true`, nil)
	save(p, "sites")
	checkClean(t, p)
}

// TestConsoleSiteWebhooks: an admin adds a webhook for one event and
// removes it, adds one for every event on the Sites page, sees why it was
// paused and which deliveries stopped, sends one and then the rest again
// once the receiver is fixed, and removes the webhook.
func TestConsoleSiteWebhooks(t *testing.T) {
	n := startNode(t)
	var status, got atomic.Int32
	status.Store(http.StatusInternalServerError)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := int(status.Load()); st != http.StatusOK {
			w.WriteHeader(st)
			return
		}
		got.Add(1)
	}))
	defer rcv.Close()
	p := browsertest.New(t)
	login(t, p, n.URL, adminEmail, adminPassword)
	click(t, p, `a[href="/console/sites"]`)
	const sec = `section.site[data-site="demo"]`
	p.WaitJS("webhook form", `document.querySelector(`+jsString(sec+` form.add-hook`)+`) !== null`)
	var offered []string
	p.Eval(`[...document.querySelectorAll(`+jsString(sec+` form.add-hook input[type=checkbox]`)+`)].map(b => b.value)`, &offered)
	var want []string
	for _, e := range chat.EventTypes {
		want = append(want, string(e))
	}
	if strings.Join(offered, ",") != strings.Join(want, ",") {
		t.Fatalf("the page offers the events %v, the server has %v", offered, want)
	}
	// hookItem is the list item of the webhook to url.
	hookItem := func(url string) string {
		return `[...document.querySelectorAll(` + jsString(sec+` li[data-hook]`) + `)].find(li => li.querySelector('code.url').textContent === ` + jsString(url) + `)`
	}
	addHook := func(url string, only ...string) {
		t.Helper()
		p.Eval(`(() => {
			const f = document.querySelector(`+jsString(sec+` form.add-hook`)+`);
			f.querySelector('[aria-label="Webhook URL"]').value = `+jsString(url)+`;
			const only = `+jsString(strings.Join(only, ","))+`.split(',').filter(Boolean);
			if (only.length) f.querySelectorAll('input[type=checkbox]').forEach(b => { b.checked = only.includes(b.value); });
			f.requestSubmit();
			return true;
		})()`, nil)
		p.WaitJS("webhook listed", hookItem(url)+` !== undefined`)
	}

	// One event only: the API has just that one, and the page says so.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := client.Login(ctx, n.URL, adminEmail, adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	p.Eval(`(() => { const d = document.querySelector(`+jsString(sec+` details.hook-events`)+`); d.open = true; d.scrollIntoView(); return true; })()`, nil)
	save(p, "sites-webhook-events")
	addHook(rcv.URL+"/resolved", "conversation.resolved")
	var list struct {
		Webhooks []struct {
			ID     string
			URL    string
			Events []string
		}
	}
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/sites/demo/webhooks", nil, &list); err != nil || len(list.Webhooks) != 1 ||
		strings.Join(list.Webhooks[0].Events, ",") != "conversation.resolved" {
		t.Fatalf("webhooks after adding one for conversation.resolved: %+v, %v", list.Webhooks, err)
	}
	var shown string
	p.Eval(hookItem(rcv.URL+"/resolved")+`.querySelector('.events').textContent`, &shown)
	if strings.TrimSpace(shown) != "conversation.resolved" {
		t.Errorf("the page shows its events as %q", shown)
	}
	p.Eval(`window.confirm = () => true, `+hookItem(rcv.URL+"/resolved")+`.querySelector('button.danger').click(), true`, nil)
	p.WaitJS("the one-event webhook removed", hookItem(rcv.URL+"/resolved")+` === undefined`)

	addHook(rcv.URL + "/hook")

	// Four deliveries fail (each dead at once in this node): the webhook
	// is paused, and the page says why after a reload.
	for i := range 4 {
		c := chat.Conversation{ID: fmt.Sprint("c", i), Ref: fmt.Sprint("LF-", i), SiteKey: "demo", VisitorID: "v1", Status: chat.StatusActive}
		n.Hooks.Emit(ctx, chat.Event{Type: chat.EventConversationCreated, SiteKey: "demo", VisitorID: "v1", At: time.Now(), Conversation: &c})
	}
	// until polls the REST API (the page is not live: it shows what it
	// read when it loaded).
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	// reload loads the page again and waits for the new one: the old one
	// can still answer for a moment after location.reload().
	reload := func() {
		t.Helper()
		p.Eval(`window.staleConsole = true, location.reload(), true`, nil)
		p.WaitJS("the reloaded page", `window.staleConsole === undefined && document.readyState === 'complete'`)
	}
	paused := func() bool {
		var l struct{ Webhooks []struct{ Health *struct{} } }
		return admin.Do(ctx, http.MethodGet, "/api/v1/sites/demo/webhooks", nil, &l) == nil && len(l.Webhooks) == 1 && l.Webhooks[0].Health != nil
	}
	until("four dead deliveries and the pause", func() bool {
		var dead struct{ Deliveries []struct{ ID string } }
		return admin.Do(ctx, http.MethodGet, "/api/v1/webhooks/dead?site=demo", nil, &dead) == nil && len(dead.Deliveries) == 4 && paused()
	})
	reload()
	p.WaitJS("the pause and the stopped deliveries shown", `(document.querySelector(`+jsString(sec+` .webhooks .paused`)+`)?.textContent ?? '').includes('500') && document.querySelectorAll(`+jsString(sec+` li[data-dead]`)+`).length === 4`)
	var line string
	p.Eval(`document.querySelector(`+jsString(sec+` .webhooks .paused`)+`).textContent`, &line)
	if !strings.Contains(line, "Paused until") || !strings.Contains(line, "4 failures in a row") {
		t.Errorf("paused line: %q", line)
	}
	p.Eval(`document.querySelector(`+jsString(sec+` .webhooks`)+`).scrollIntoView(), true`, nil)
	save(p, "sites-webhooks")

	// The receiver is fixed: "Send again" delivers at once despite the
	// pause, which that success ends.
	status.Store(http.StatusOK)
	p.Eval(`document.querySelector(`+jsString(sec+` li[data-dead] button`)+`).click(), true`, nil)
	p.WaitJS("three stopped", `document.querySelectorAll(`+jsString(sec+` li[data-dead]`)+`).length === 3`)
	until("the delivery sent again, and the pause ended", func() bool { return got.Load() == 1 && !paused() })
	reload()
	p.WaitJS("the pause gone, three stopped", `document.querySelector(`+jsString(sec+` li[data-hook]`)+`) !== null && document.querySelector(`+jsString(sec+` .webhooks .paused`)+`) === null && document.querySelectorAll(`+jsString(sec+` li[data-dead]`)+`).length === 3`)
	p.Eval(`document.querySelector(`+jsString(sec+` [data-action=resend-all]`)+`).click(), true`, nil)
	p.WaitJS("no stopped deliveries", `document.querySelector(`+jsString(sec+` .webhooks`)+`) !== null && document.querySelectorAll(`+jsString(sec+` li[data-dead]`)+`).length === 0 && document.querySelector(`+jsString(sec+` [data-action=resend-all]`)+`) === null`)
	until("the rest delivered", func() bool { return got.Load() == 4 })

	p.Eval(`window.confirm = () => true, `+hookItem(rcv.URL+"/hook")+`.querySelector('button.danger').click(), true`, nil)
	p.WaitJS("webhook removed", `document.querySelector(`+jsString(sec+` li[data-hook]`)+`) === null && (document.querySelector(`+jsString(sec+` .webhooks .empty`)+`)?.textContent ?? '').startsWith('No webhooks')`)
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/sites/demo/webhooks", nil, &list); err != nil || len(list.Webhooks) != 0 {
		t.Fatalf("webhooks after removing: %+v, %v", list.Webhooks, err)
	}
	checkClean(t, p)
}

// TestConsoleNotifiesWhileHidden: with notifications on, a new chat raises
// a browser notification and marks the tab title while the console is
// hidden, and neither while it is in view; so does a visitor's message in
// a chat of the agent's own, unless the agent is looking at that chat.
// Coming back clears the mark.
// The page's Notification and visibility are stand-ins installed before
// the console loads: headless Chromium shows no notifications and is
// always visible.
func TestConsoleNotifiesWhileHidden(t *testing.T) {
	n := startNode(t)
	p := browsertest.New(t)
	p.OnNewDocument(`(() => {
		window.__notes = [];
		window.__hidden = false;
		Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => window.__hidden ? 'hidden' : 'visible'});
		window.Notification = class {
			static permission = 'granted';
			static requestPermission() { return Promise.resolve('granted'); }
			constructor(title, opts) { window.__notes.push({title, body: opts.body, tag: opts.tag}); }
			close() {}
		};
	})()`)
	login(t, p, n.URL, adminEmail, adminPassword)
	click(t, p, `button[aria-label=Settings]`)
	p.WaitJS("settings dialog", `document.querySelector('dialog.modal [data-setting=notify]') !== null`)
	click(t, p, `dialog.modal [data-setting=notify]`)
	p.WaitJS("notify stored", `Object.keys(localStorage).some(k => k.startsWith('lifeline.settings.') && JSON.parse(localStorage.getItem(k)).notify === true)`)
	p.Eval(`(document.querySelector('dialog.modal').close(), true)`, nil)
	p.Eval(`(() => { const s = document.querySelector('select.presence'); s.value = 'away'; s.dispatchEvent(new Event('change')); return true; })()`, nil)
	p.WaitJS("presence away", `[...window.lifelineConsole.state.agents.values()].some(a => a.status === 'away')`)

	chat := func(clientID, text string) (*visitor, string) {
		t.Helper()
		v := dialVisitor(t, n, map[string]any{"page": map[string]any{"path": "/checkout"}})
		v.send(map[string]any{"type": "message", "client_id": clientID, "text": text})
		ack := v.wait("ack", func(f client.Frame) bool { return f.Type == "ack" && f.ClientID == clientID })
		p.WaitJS("the chat in the queue", `document.querySelector('.item.status-waiting[data-id=`+jsString(ack.ConversationID)+`]') !== null`)
		return v, ack.ConversationID
	}
	notes := func() []struct{ Title, Body, Tag string } {
		var out []struct{ Title, Body, Tag string }
		p.Eval(`window.__notes`, &out)
		return out
	}

	chat("v1", "Hello?")
	if got := notes(); len(got) != 0 {
		t.Fatalf("notifications while the console is in view = %+v, want none", got)
	}

	p.Eval(`(window.__hidden = true, document.dispatchEvent(new Event('visibilitychange')), true)`, nil)
	v2, conv2 := chat("v2", "My card keeps failing")
	p.WaitJS("a notification", `window.__notes.length === 1`)
	if got := notes(); got[0].Title != "Lifeline" || got[0].Tag != "chat" || !strings.HasPrefix(got[0].Body, "New chat LF-") {
		t.Fatalf("notification = %+v, want Lifeline / chat / New chat LF-…", got[0])
	}
	var title string
	p.Eval(`document.title`, &title)
	if title != "● Lifeline console" {
		t.Fatalf("title while hidden with a new chat = %q, want the mark", title)
	}

	// The agent takes the chat and, still away from the tab, gets the
	// visitor's next message as a notification.
	click(t, p, `.item[data-id=`+jsString(conv2)+`]`)
	p.WaitJS("transcript", `document.querySelector('.transcript .msg.visitor') !== null`)
	click(t, p, `[data-action=claim]`)
	p.WaitJS("claimed", `document.querySelector('.convhead .pill[data-status=active]') !== null`)
	v2.send(map[string]any{"type": "message", "client_id": "v2b", "text": "It says declined again"})
	p.WaitJS("a message notification", `window.__notes.length === 2`)
	if got := notes(); got[1].Tag != "message" || !strings.HasSuffix(got[1].Body, ": It says declined again") {
		t.Fatalf("notification = %+v, want tag message and the visitor's text", got[1])
	}

	p.Eval(`(window.__hidden = false, document.dispatchEvent(new Event('visibilitychange')), true)`, nil)
	p.WaitJS("the mark cleared", `document.title === 'Lifeline console'`)
	// In view, with the chat open: the message shows, nothing pops up.
	v2.send(map[string]any{"type": "message", "client_id": "v2c", "text": "Hello again"})
	p.WaitJS("the message in the transcript", `[...document.querySelectorAll('.transcript .msg.visitor')].some(e => e.textContent.includes('Hello again'))`)
	if got := notes(); len(got) != 2 {
		t.Fatalf("notifications with the chat open in view = %+v, want still 2", got)
	}
	save(p, "notify")
	checkClean(t, p)
}

// The queue shows what each waiting visitor last said, live as they type
// more and again after a reload (from the server's preview), and the
// agent's own reply once they answer; a message's markup stays text.
func TestConsoleQueuePreview(t *testing.T) {
	n := startNode(t)
	p := browsertest.New(t)
	login(t, p, n.URL, adminEmail, adminPassword)
	// Away, so the router leaves the chat in the queue.
	p.Eval(`(() => { const s = document.querySelector('select.presence'); s.value = 'away'; s.dispatchEvent(new Event('change')); return true; })()`, nil)
	p.WaitJS("presence away", `[...window.lifelineConsole.state.agents.values()].some(a => a.status === 'away')`)

	v := dialVisitor(t, n, map[string]any{"page": map[string]any{"path": "/checkout"}})
	v.send(map[string]any{"type": "message", "client_id": "q1", "text": "Hi, my card was declined"})
	ack := v.wait("ack", func(f client.Frame) bool { return f.Type == "ack" && f.ClientID == "q1" })
	item := `.item[data-id=` + jsString(ack.ConversationID) + `]`
	shows := func(what, want string) {
		t.Helper()
		p.WaitJS(what, `document.querySelector(`+jsString(item+` .last`)+`)?.textContent === `+jsString(want))
	}
	shows("the first message in the queue", "Hi, my card was declined")

	v.send(map[string]any{"type": "message", "client_id": "q2", "text": "It says\n\n<img src=x onerror=\"window.__pwned=1\"> declined again"})
	want := `It says <img src=x onerror="window.__pwned=1"> declined again`
	shows("the next message, live", want)
	save(p, "queue-preview")

	p.Navigate(n.URL + "/console")
	p.WaitJS("console connected", `document.querySelector('.conn.open') !== null`)
	shows("the preview after a reload", want)
	var injected bool
	p.Eval(`window.__pwned === 1 || document.querySelector('.item .last img') !== null`, &injected)
	if injected {
		t.Fatal("the preview's markup became elements")
	}

	// Back online after the reload, the agent may have been given the chat
	// already; otherwise they claim it.
	click(t, p, item)
	p.WaitJS("the conversation's actions", `document.querySelector('[data-action=claim], [data-action=resolve]') !== null`)
	p.Eval(`(document.querySelector('[data-action=claim]')?.click(), true)`, nil)
	p.WaitJS("assigned", `document.querySelector('.convhead .pill[data-status=active]') !== null`)
	typeInto(t, p, ".composer textarea", "Let me look at the payment.")
	click(t, p, `[data-action=send]`)
	shows("the agent's reply", "Agent: Let me look at the payment.")
	checkClean(t, p)
}
