package console

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/internal/browsertest"
	"github.com/lifelinehq/lifeline/internal/client"
)

// TestConsoleAssist: a struggling visitor's conversation shows the
// card-declined suggestions above the composer, their filled values as
// text even when they hold HTML; ✕ marks one unhelpful and it goes; the
// Playbooks page shows the server's validation problems inline and the
// counters in its table.
func TestConsoleAssist(t *testing.T) {
	n := startNode(t)
	p := browsertest.New(t)
	login(t, p, n.URL, adminEmail, adminPassword)

	v := dialVisitor(t, n, map[string]any{"page": map[string]any{"path": "/checkout"}})
	v.send(map[string]any{"type": "identify", "identity": map[string]any{"id": "u1", "name": `<img/src=x/onerror=window.__xss=1>Ava Lind`, "email": "ava@example.com"}})
	v.send(map[string]any{"type": "events", "events": struggleEvents()})
	v.send(map[string]any{"type": "message", "client_id": "v1", "text": "My card keeps failing"})
	ack := v.wait("ack", func(f client.Frame) bool { return f.Type == "ack" && f.ClientID == "v1" })

	p.WaitJS("the chat listed", `document.querySelector('.item[data-id=`+jsString(ack.ConversationID)+`]') !== null`)
	click(t, p, `.item[data-id=`+jsString(ack.ConversationID)+`]`)
	p.WaitJS("suggestions above the composer", `document.querySelector('.composer .assist:not([hidden]) .assist-reply.first') !== null`)
	var first string
	p.Eval(`document.querySelector('.assist .assist-reply.first .assist-insert').textContent`, &first)
	if !strings.HasPrefix(first, `Hi <img/src=x/onerror=window.__xss=1>Ava, I'm sorry your card was declined`) {
		t.Fatalf("first suggestion = %q, want the card-declined reply with the name as typed", first)
	}
	var injected int
	p.Eval(`document.querySelectorAll('.assist img, .assist [onerror]').length + (window.__xss ? 100 : 0)`, &injected)
	if injected != 0 {
		t.Fatalf("a filled value was rendered as HTML (%d)", injected)
	}
	var actions []string
	p.Eval(`[...document.querySelectorAll('.assist [data-action=run-action]')].map(b => b.dataset.item)`, &actions)
	if !strings.Contains(strings.Join(actions, ","), "card-declined.payment-link") {
		t.Errorf("actions = %q, want send payment link", actions)
	}
	save(p, "assist-panel")

	// Not helpful: it goes, and is counted.
	id := "card-declined.other-card"
	click(t, p, `.assist [data-item="`+id+`"] [data-action=unhelpful]`)
	p.WaitJS("the suggestion gone", `document.querySelector('.assist [data-item="`+id+`"]') === null`)
	counted := false
	for range 50 {
		c, err := n.Store.Counters(context.Background(), "assist/demo")
		if err != nil {
			t.Fatal(err)
		}
		if c[id+"/unhelpful"] == 1 {
			counted = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !counted {
		t.Fatalf("unhelpful not counted for %s", id)
	}

	// The Playbooks page: an unknown placeholder is named inline on save.
	click(t, p, `a[href="/console/playbooks"]`)
	p.WaitJS("the editor", `document.querySelector('.page.playbooks textarea.pb-json')?.value.includes('card-declined')`)
	p.WaitJS("the stats table", `document.querySelector('.page.playbooks tr[data-item="`+id+`"]') !== null`)
	p.WaitJS("the live preview", `document.querySelector('.pb-preview [data-item="card-declined.generic"]') !== null`)
	p.Eval(`(() => { const e = document.querySelector('textarea.pb-json'); e.value = e.value.replace('{{visitor.first_name}}', '{{visitor.nmae}}'); return true; })()`, nil)
	click(t, p, `[data-action=save-playbooks]`)
	p.WaitJS("the problem shown", `[...document.querySelectorAll('.pb-errors .field-error')].some(e => e.textContent.includes('"other-card": text: unknown placeholder {{visitor.nmae}}'))`)
	save(p, "playbooks-invalid")
	checkClean(t, p, "400 /api/v1/sites/demo/playbooks")
}
