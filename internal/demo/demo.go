// Package demo serves /demo: a small coffee shop with the widget embedded
// and real ways to struggle — a card that is declined, a coupon that keeps
// being rejected, an address form with validation loops, a button that
// throws and a cancellation page whose button does nothing — so a newcomer
// sees detection, the offer and the chat end to end.
//
// The pages carry no inline script or style and are served with a strict
// Content-Security-Policy, to show the widget needs none either. The shop
// never passes anything a visitor typed to the widget.
package demo

import (
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

//go:embed assets
var assets embed.FS

//go:embed pages/*.html
var pages embed.FS

var tmpl = template.Must(template.ParseFS(pages, "pages/*.html"))

// Config is what the demo needs from the server's configuration.
type Config struct {
	// SiteKey is the demo site's key, put in the snippet's data-site.
	SiteKey string
	// IdentitySecret is the demo site's identity secret; the demo signs
	// its customer's id with it so the agent sees a verified identity.
	IdentitySecret string
	// WidgetURL is where widget.js is served; default "/widget.js".
	WidgetURL string
	// ActionSecret verifies agent assist's webhook actions (the demo
	// site's, from assist.Service.ActionSecret); empty refuses them.
	ActionSecret string
}

// Customer is the demo's logged-in customer.
var Customer = struct {
	ID, Name, Email, Plan string
}{"demo-ava", "Ava Lindqvist", "ava@example.com", "Coffee Club"}

// DeclinedCard is the test card number the pay API always declines.
const DeclinedCard = "4000000000000002"

// Handler serves the demo under /demo: the pages, their assets, and the
// little API behind them. Mount it at "/demo" and "/demo/".
func Handler(cfg Config) http.Handler {
	if cfg.WidgetURL == "" {
		cfg.WidgetURL = "/widget.js"
	}
	static := http.StripPrefix("/demo/assets/", http.FileServer(http.FS(must(fs.Sub(assets, "assets")))))
	csp := policy(cfg.WidgetURL)
	page := func(name, title string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			h := w.Header()
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Content-Security-Policy", csp)
			h.Set("Cache-Control", "no-store")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "same-origin")
			_ = tmpl.ExecuteTemplate(w, name, map[string]string{"Title": title, "SiteKey": cfg.SiteKey, "WidgetURL": cfg.WidgetURL})
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /demo", page("shop.html", "Lumen Coffee — Pour-over kit"))
	mux.Handle("GET /demo/{$}", page("shop.html", "Lumen Coffee — Pour-over kit"))
	mux.Handle("GET /demo/account/cancel", page("cancel.html", "Lumen Coffee — Cancel your subscription"))
	mux.HandleFunc("GET /demo/assets/boot.js", func(w http.ResponseWriter, r *http.Request) { boot(w, cfg) })
	mux.Handle("GET /demo/assets/", static)
	mux.HandleFunc("POST /demo/api/pay", pay)
	mux.HandleFunc("POST /demo/api/coupon", coupon)
	mux.HandleFunc("POST /demo/api/assist", assistAction(cfg.ActionSecret))
	return mux
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// policy is the pages' CSP: nothing inline, scripts and sockets only from
// this origin and the widget's.
func policy(widgetURL string) string {
	script, connect := "'self'", "'self'"
	if u, err := url.Parse(widgetURL); err == nil && u.Host != "" {
		origin := u.Scheme + "://" + u.Host
		script += " " + origin
		ws := "wss://" + u.Host
		if u.Scheme == "http" {
			ws = "ws://" + u.Host
		}
		connect += " " + origin + " " + ws
	}
	return "default-src 'self'; script-src " + script + "; style-src 'self'; img-src 'self' data:; connect-src " + connect + "; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

// Sign returns hex HMAC-SHA256(secret, id): the identify hash.
func Sign(secret, id string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))
}

// boot writes the snippet's stub and the identify call, with the hash
// computed here on the server. It is a file, not an inline script, so the
// page works under script-src 'self'.
func boot(w http.ResponseWriter, cfg Config) {
	id, _ := json.Marshal(map[string]any{
		"id": Customer.ID, "name": Customer.Name, "email": Customer.Email,
		"hash":       Sign(cfg.IdentitySecret, Customer.ID),
		"attributes": map[string]string{"plan": Customer.Plan},
	})
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("window.lifeline=window.lifeline||function(){(lifeline.q=lifeline.q||[]).push(arguments)};\n" +
		"lifeline('identify'," + string(id) + ");\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// pay charges the card: the test card 4000 0000 0000 0002 is always
// declined with 402, like a real payment provider's test card.
func pay(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Card string `json:"card"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": "Send {\"card\": \"…\"}."})
		return
	}
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, req.Card)
	switch {
	case len(digits) < 12:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_card", "message": "That card number looks incomplete."})
	case digits == DeclinedCard:
		writeJSON(w, http.StatusPaymentRequired, map[string]string{"error": "card_declined", "message": "Your card was declined."})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"order": "LC-10482", "message": "Thanks! Your order is on its way."})
	}
}

// coupon rejects every code: the coupon field that keeps saying no.
func coupon(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "invalid_coupon", "message": "This code isn’t valid for your order."})
}
