package demo

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/lifelinehq/lifeline/internal/browsertest"
	"github.com/lifelinehq/lifeline/widget"
)

const secret = "hunter2-SECRET-4242"

// TestDemoInBrowser walks the demo's struggles in Chromium with the real
// widget and a fake server: the declined card, the rejected coupon, the
// address that fails validation, the throwing button. Each reaches the
// server as the signal it is, the identity is verified with the right
// hash, nothing typed leaves the browser, and the page runs under its
// strict CSP without a violation.
func TestDemoInBrowser(t *testing.T) {
	fake := browsertest.NewFakeVisitor()
	mux := http.NewServeMux()
	mux.Handle("/widget.js", widget.Handler())
	mux.Handle("/ws/visitor", fake)
	mux.Handle("/api/v1/events", fake)
	mux.Handle("/demo", Handler(testCfg))
	mux.Handle("/demo/", Handler(testCfg))
	srv := browsertest.StartServer(t, mux)
	t.Cleanup(fake.Close)

	p := browsertest.New(t)
	p.Navigate(srv.URL + "/demo")
	fake.Wait(t, "identify", func() bool { return len(fake.Frames("identify")) > 0 })
	id := fake.Frames("identify")[0].Data["identity"].(map[string]any)
	if id["id"] != Customer.ID || id["hash"] != Sign(testCfg.IdentitySecret, Customer.ID) {
		t.Errorf("identify = %v, want %s with its HMAC", id, Customer.ID)
	}
	p.WaitJS("the widget", `document.querySelector('lifeline-widget')`)
	p.Screenshot("shop")

	// Address with a postcode that fails validation, secret typed everywhere.
	p.Run(chromedp.Click(chromedp.CSS("#add")))
	for _, sel := range []string{"#name", "#street", "#postcode", "#city", "#coupon-code", "#cvc"} {
		p.Run(chromedp.SendKeys(chromedp.CSS(sel), secret))
	}
	p.Run(chromedp.SendKeys(chromedp.CSS("#email"), "ava@example.com"))
	p.Run(chromedp.SendKeys(chromedp.CSS("#card"), "4000 0000 0000 0002"))
	p.Run(chromedp.SendKeys(chromedp.CSS("#exp"), "12/29"))
	p.Run(chromedp.Click(chromedp.CSS("#pay")))
	fake.Wait(t, "invalid postcode", func() bool {
		for _, e := range fake.Events("invalid") {
			if e["field"] == "postcode" && e["form"] == "checkout" {
				return true
			}
		}
		return false
	})

	// Fix the postcode and CVC: the card is declined.
	p.Eval(`document.getElementById('postcode').value = ''; document.getElementById('cvc').value = ''`, nil)
	p.Run(chromedp.SendKeys(chromedp.CSS("#postcode"), "10115"), chromedp.SendKeys(chromedp.CSS("#cvc"), "123"))
	p.Run(chromedp.Click(chromedp.CSS("#pay")))
	p.WaitJS("the decline message", `document.getElementById('pay-msg').textContent.includes('declined')`)
	p.Run(chromedp.Click(chromedp.CSS("#coupon button")))
	p.Run(chromedp.Click(chromedp.CSS("#track")))

	has := func(k string, match func(map[string]any) bool) func() bool {
		return func() bool {
			for _, e := range fake.Events(k) {
				if match(e) {
					return true
				}
			}
			return false
		}
	}
	fake.Wait(t, "402 from /demo/api/pay", has("request", func(e map[string]any) bool { return e["path"] == "/demo/api/pay" && e["status"] == 402.0 }))
	fake.Wait(t, "Card declined report", has("report", func(e map[string]any) bool { return e["msg"] == "Card declined" }))
	fake.Wait(t, "422 from /demo/api/coupon", has("request", func(e map[string]any) bool { return e["path"] == "/demo/api/coupon" && e["status"] == 422.0 }))
	fake.Wait(t, "coupon_rejected", has("track", func(e map[string]any) bool { return e["name"] == "coupon_rejected" }))
	fake.Wait(t, "the thrown error", has("error", func(e map[string]any) bool { return strings.Contains(e["msg"].(string), "status") }))
	fake.Wait(t, "cart context", func() bool { return len(fake.Frames("context")) > 0 })

	fake.Send(map[string]any{"type": "offer", "offer_id": "o1", "text": "Having trouble paying? Someone can help right now.", "mode": "chat"})
	p.WaitJS("the offer", `document.querySelector('lifeline-widget').shadowRoot.querySelector('[part=offer]').hidden === false`)
	p.WaitJS("animations to settle", `document.querySelector('lifeline-widget').shadowRoot.getAnimations().length === 0`)
	p.Screenshot("shop-offer")

	p.Navigate(srv.URL + "/demo/account/cancel")
	p.WaitJS("the widget", `document.querySelector('lifeline-widget')`)
	p.Screenshot("cancel")

	if strings.Contains(fake.Received(), secret) || strings.Contains(fake.Received(), "4000 0000") {
		t.Fatalf("something typed reached the server:\n%s", fake.Received())
	}
	for _, l := range p.Logs() {
		if strings.Contains(l, "Content Security Policy") {
			t.Errorf("CSP violation: %s", l)
		}
	}
}
