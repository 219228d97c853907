// Package simulate generates realistic, labelled visits to a small shop for
// tests, benchmarks and backtests: struggling personas hitting injected
// faults with exact onset times, and visitors who do not struggle but make
// noise that looks like it (fast double-clickers, slow readers, steppers,
// tab switchers, people who fix a typo once, a harmless 404 on an image).
// It is pure and deterministic: the same Config gives the same sessions.
package simulate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/lifelinehq/lifeline/detect"
	"github.com/lifelinehq/lifeline/detect/backtest"
)

// Config describes a corpus. A zero field takes its default.
type Config struct {
	// Sessions is the number of visits. Defaults to 1,000.
	Sessions int
	// Seed makes the corpus; the same seed gives the same sessions.
	Seed uint64
	// Start is the time of the first visit. Defaults to 2026-01-05 09:00 UTC.
	Start time.Time
	// StruggleShare is the share of visits with a struggling persona.
	// Defaults to 0.25.
	StruggleShare float64
	// Site is the site key of every session. Defaults to "demo".
	Site string
}

// Persona names.
const (
	CardDeclined   = "card_declined"
	CouponLoop     = "coupon_loop"
	ValidationLoop = "validation_loop"
	BrokenButton   = "broken_button"
	DeadUI         = "dead_ui"
	FailedAPI      = "failed_api"
	Churn          = "churn"
	Crash          = "app_crash"
	FrozenUI       = "frozen_ui"

	Converter      = "converter"
	Browser        = "browser"
	DoubleClicker  = "fast_double_clicker"
	SlowReader     = "slow_reader"
	Stepper        = "stepper"
	TabSwitcher    = "tab_switcher"
	TypoFixer      = "typo_fixer"
	OneDecline     = "one_decline"
	CouponOnce     = "coupon_once"
	Harmless404    = "harmless_404"
	NoisyErrors    = "noisy_errors"
	HelpReader     = "help_reader"
	BackAndForther = "back_and_forth"
	CouponHunter   = "coupon_hunter"
)

type persona struct {
	name   string
	weight float64
	run    func(b *builder)
}

// Struggling personas, each injecting one fault with a labelled onset.
var struggling = []persona{
	{CardDeclined, 3, cardDeclined},
	{CouponLoop, 2, couponLoop},
	{ValidationLoop, 2, validationLoop},
	{BrokenButton, 2, brokenButton},
	{DeadUI, 1.5, deadUI},
	{FailedAPI, 1.5, failedAPI},
	{Churn, 1, churn},
	{Crash, 0.5, appCrash},
	{FrozenUI, 1, frozenUI},
}

// Personas without struggle, many of them hard negatives.
var calm = []persona{
	{Converter, 4, converter},
	{Browser, 3, browser},
	{DoubleClicker, 1, doubleClicker},
	{SlowReader, 1, slowReader},
	{Stepper, 1, stepper},
	{TabSwitcher, 1, tabSwitcher},
	{TypoFixer, 1, typoFixer},
	{OneDecline, 0.7, oneDecline},
	{CouponOnce, 0.7, couponOnce},
	{Harmless404, 0.7, harmless404},
	{NoisyErrors, 0.7, noisyErrors},
	{HelpReader, 0.5, helpReader},
	{BackAndForther, 0.7, backAndForth},
	{CouponHunter, 0.4, couponHunter},
}

// Generate returns cfg.Sessions labelled sessions. Events are in the
// order the server receives them: the widget holds a click on a button or
// link for 2.5 s (to tell whether it was dead), so what happened meanwhile
// arrives first.
func Generate(cfg Config) []backtest.Session {
	if cfg.Sessions <= 0 {
		cfg.Sessions = 1000
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	}
	if cfg.StruggleShare <= 0 {
		cfg.StruggleShare = 0.25
	}
	if cfg.Site == "" {
		cfg.Site = "demo"
	}
	out := make([]backtest.Session, 0, cfg.Sessions)
	for i := range cfg.Sessions {
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		set := calm
		if r.Float64() < cfg.StruggleShare {
			set = struggling
		}
		p := pick(r, set)
		b := &builder{
			r:     r,
			now:   cfg.Start.Add(time.Duration(i) * 7 * time.Second),
			visit: fmt.Sprintf("sim-%06d", i),
		}
		p.run(b)
		b.deliver()
		if b.outcome == "" {
			b.outcome = backtest.OutcomeBrowsed
		}
		out = append(out, backtest.Session{
			Visit: b.visit, Site: cfg.Site, Outcome: b.outcome, Persona: p.name,
			Episodes: b.eps, Events: b.evs,
		})
	}
	return out
}

func pick(r *rand.Rand, ps []persona) persona {
	total := 0.0
	for _, p := range ps {
		total += p.weight
	}
	x := r.Float64() * total
	for _, p := range ps {
		x -= p.weight
		if x < 0 {
			return p
		}
	}
	return ps[len(ps)-1]
}

// builder writes one visit's events.
type builder struct {
	r       *rand.Rand
	now     time.Time
	visit   string
	page    string
	evs     []detect.Event
	eps     []backtest.Episode
	outcome string
	idle    bool
}

func (b *builder) chance(p float64) bool { return b.r.Float64() < p }

// holdClick is how long the widget holds a click on a button or link to
// learn whether it was dead (capture.ts); events that happen meanwhile are
// sent first.
const holdClick = 2500 * time.Millisecond

func held(ev *detect.Event) bool {
	return ev.Kind == detect.KindClick && (strings.HasPrefix(ev.Sel, "button") || strings.HasPrefix(ev.Sel, "a.") || strings.HasPrefix(ev.Sel, "a#"))
}

// deliver puts the events in the order the server receives them.
func (b *builder) deliver() {
	arrival := func(ev *detect.Event) time.Time {
		if held(ev) {
			return ev.Time.Add(holdClick)
		}
		return ev.Time
	}
	slices.SortStableFunc(b.evs, func(x, y detect.Event) int { return arrival(&x).Compare(arrival(&y)) })
}

func (b *builder) between(lo, hi int) int { return lo + b.r.IntN(hi-lo+1) }

func (b *builder) wait(lo, hi time.Duration) {
	b.now = b.now.Add(lo + time.Duration(b.r.Int64N(int64(hi-lo)+1))).Truncate(time.Millisecond)
}

func (b *builder) add(ev detect.Event) {
	ev.Visit, ev.Time = b.visit, b.now
	b.evs = append(b.evs, ev)
}

// input marks that the visitor is active again.
func (b *builder) input() {
	if b.idle {
		b.idle = false
		b.add(detect.Event{Kind: detect.KindIdle, Idle: false})
	}
}

// read spends lo..hi without input; the widget reports idle after 30 s.
func (b *builder) read(lo, hi time.Duration) {
	start := b.now
	b.wait(lo, hi)
	if !b.idle && b.now.Sub(start) > 30*time.Second {
		end := b.now
		b.now = start.Add(30 * time.Second)
		b.add(detect.Event{Kind: detect.KindIdle, Idle: true})
		b.idle = true
		b.now = end
	}
}

func (b *builder) goTo(path string) {
	b.input()
	b.add(detect.Event{Kind: detect.KindPage, Path: path, Ref: b.page})
	b.page = path
}

func (b *builder) click(sel string, x, y int) {
	b.input()
	b.add(detect.Event{Kind: detect.KindClick, Sel: sel, X: x, Y: y})
}

// burst clicks n times fast on one spot, with the widget's rage count.
func (b *builder) burst(sel string, n int, dead bool, rage bool) {
	x, y := b.between(100, 900), b.between(100, 700)
	for i := range n {
		ev := detect.Event{Kind: detect.KindClick, Sel: sel, X: x + b.between(-4, 4), Y: y + b.between(-4, 4), Dead: dead}
		if rage && i >= 2 {
			ev.Rage = i + 1
		}
		b.input()
		b.add(ev)
		b.wait(120*time.Millisecond, 380*time.Millisecond)
	}
}

func (b *builder) fill(fields ...string) {
	for _, f := range fields {
		b.click("input#"+f, b.between(200, 600), b.between(100, 600))
		b.wait(2*time.Second, 9*time.Second)
	}
}

func (b *builder) request(method, path string, status int) {
	b.add(detect.Event{Kind: detect.KindRequest, Method: method, Path: path, Status: status, Dur: b.between(80, 900)})
}

func (b *builder) errorEv(msg, fp string) {
	b.add(detect.Event{Kind: detect.KindError, Msg: msg, FP: fp, Src: "/static/app.js", Line: b.between(1, 4000)})
}

func (b *builder) submit(form string, ok bool) {
	b.input()
	b.add(detect.Event{Kind: detect.KindSubmit, Form: form, OK: ok})
}

func (b *builder) invalid(form, field, flag string) {
	b.input()
	var v detect.Validity
	for i, n := range (detect.Validity(1<<10 - 1)).Names() {
		if n == flag {
			v = 1 << i
		}
	}
	b.add(detect.Event{Kind: detect.KindInvalid, Form: form, Field: field, FType: "text", Flags: v})
}

func (b *builder) onset(label string) {
	b.eps = append(b.eps, backtest.Episode{Page: b.page, Onset: b.now, Label: label})
}

// noise adds the background behaviour every visitor may show.
func (b *builder) noise() {
	if b.chance(0.06) {
		b.request("GET", "/img/banner-"+fmt.Sprint(b.between(1, 9))+".png", 404)
	}
	if b.chance(0.04) {
		for range b.between(1, 6) {
			b.errorEv("ResizeObserver loop completed with undelivered notifications.", "ro-loop")
			b.wait(50*time.Millisecond, 3*time.Second)
		}
	}
	if b.chance(0.15) {
		b.click("a.nav-link", b.between(10, 900), b.between(10, 80))
		b.wait(100*time.Millisecond, 250*time.Millisecond)
		b.click("a.nav-link", b.between(10, 900), b.between(10, 80))
	}
	if b.chance(0.03) {
		b.click("button.share", b.between(10, 900), b.between(10, 800))
		b.wait(50*time.Millisecond, 600*time.Millisecond)
		b.errorEv("Uncaught TypeError: window.FB is undefined", "fb-undef")
	}
	if b.chance(0.08) {
		b.add(detect.Event{Kind: detect.KindVisibility, Visible: false})
		b.wait(10*time.Second, 5*time.Minute)
		b.add(detect.Event{Kind: detect.KindVisibility, Visible: true})
	}
}

// browse visits the home page and a few products.
func (b *builder) browse() {
	b.goTo("/")
	b.read(3*time.Second, 25*time.Second)
	b.noise()
	b.goTo("/products")
	b.read(3*time.Second, 20*time.Second)
	for range b.between(1, 3) {
		b.click("a.product-card", b.between(100, 900), b.between(200, 800))
		b.goTo("/products/:id")
		b.read(5*time.Second, 50*time.Second)
		b.noise()
		if b.chance(0.2) {
			// A quick look and back: harmless.
			b.goTo("/products")
			b.read(2*time.Second, 15*time.Second)
		}
	}
}

func (b *builder) toCart() {
	b.click("button#add-to-cart", b.between(600, 900), b.between(300, 500))
	b.wait(500*time.Millisecond, 3*time.Second)
	b.goTo("/cart")
	b.read(3*time.Second, 20*time.Second)
}

func (b *builder) address() {
	b.goTo("/checkout")
	b.read(2*time.Second, 8*time.Second)
	b.fill("name", "street", "city", "postcode")
}

func (b *builder) pay(ok bool) {
	b.click("button#pay", b.between(600, 800), b.between(600, 700))
	b.wait(300*time.Millisecond, 1500*time.Millisecond)
	if !ok {
		b.request("POST", "/api/pay", 402)
		b.add(detect.Event{Kind: detect.KindReport, Msg: "Card declined"})
	}
}

func (b *builder) paymentPage() {
	b.goTo("/checkout/payment")
	b.read(2*time.Second, 6*time.Second)
	b.fill("card-number", "card-expiry", "card-cvc")
}

func (b *builder) done() {
	b.goTo("/checkout/done")
	b.read(2*time.Second, 10*time.Second)
	b.outcome = backtest.OutcomeConverted
}

// giveUp ends a struggling visit.
func (b *builder) giveUp() {
	b.read(2*time.Second, 30*time.Second)
	if b.chance(0.4) {
		b.goTo("/contact")
		b.read(5*time.Second, 30*time.Second)
		b.outcome = backtest.OutcomeContactedSupport
		return
	}
	b.outcome = backtest.OutcomeAbandoned
}

// Struggling personas.

func cardDeclined(b *builder) {
	b.browse()
	b.toCart()
	b.address()
	b.submit("address", true)
	b.paymentPage()
	n := weighted(b, []float64{0.06, 0.36, 0.38, 0.2}) + 1
	b.pay(false)
	b.eps = append(b.eps, backtest.Episode{Page: b.page, Onset: b.evs[len(b.evs)-2].Time, Label: CardDeclined})
	for range n - 1 {
		b.read(4*time.Second, 12*time.Second)
		b.fill("card-number", "card-cvc")
		b.pay(false)
	}
	if b.chance(0.3) {
		b.fill("card-number", "card-expiry", "card-cvc")
		b.pay(true)
		b.done()
		return
	}
	b.giveUp()
}

func couponLoop(b *builder) {
	b.browse()
	b.toCart()
	n := weighted(b, []float64{0, 0.08, 0.5, 0.27, 0.15}) + 1
	for i := range n {
		b.click("input#coupon", 300, 500)
		b.wait(2*time.Second, 8*time.Second)
		b.click("button#apply-coupon", 420, 500)
		b.wait(200*time.Millisecond, 900*time.Millisecond)
		if i == 0 {
			b.onset(CouponLoop)
		}
		b.request("POST", "/api/coupon", 422)
		b.read(2*time.Second, 10*time.Second)
	}
	if b.chance(0.5) {
		b.address()
		b.submit("address", true)
		b.paymentPage()
		b.pay(true)
		b.done()
		return
	}
	b.giveUp()
}

func validationLoop(b *builder) {
	b.browse()
	b.toCart()
	b.address()
	n := weighted(b, []float64{0, 0.07, 0.5, 0.28, 0.15}) + 1
	for i := range n {
		b.click("button#continue", 500, 650)
		b.wait(50*time.Millisecond, 200*time.Millisecond)
		if i == 0 {
			b.onset(ValidationLoop)
		}
		b.invalid("address", "postcode", "patternMismatch")
		if b.chance(0.5) {
			b.invalid("address", "phone", "valueMissing")
		}
		b.read(3*time.Second, 15*time.Second)
		b.fill("postcode")
	}
	if b.chance(0.4) {
		b.submit("address", true)
		b.paymentPage()
		b.pay(true)
		b.done()
		return
	}
	b.giveUp()
}

func brokenButton(b *builder) {
	b.browse()
	where := b.r.IntN(3)
	sel := "button#add-to-cart"
	switch where {
	case 1:
		b.toCart()
		sel = "button#update-cart"
	case 2:
		b.toCart()
		b.address()
		sel = "button#save-address"
	}
	n := weighted(b, []float64{0.08, 0.42, 0.35, 0.15}) + 1
	for i := range n {
		b.click(sel, 700, 400)
		b.wait(30*time.Millisecond, 400*time.Millisecond)
		if i == 0 {
			b.onset(BrokenButton)
		}
		b.errorEv("Uncaught TypeError: Cannot read properties of undefined (reading 'id')", "te-read-id")
		b.read(2*time.Second, 15*time.Second)
	}
	b.giveUp()
}

func deadUI(b *builder) {
	b.browse()
	b.toCart()
	b.address()
	b.submit("address", true)
	b.paymentPage()
	b.add(detect.Event{Kind: detect.KindClick, Sel: "button#place-order", X: 700, Y: 650, Dead: true})
	b.onset(DeadUI)
	b.wait(1500*time.Millisecond, 6*time.Second)
	if b.chance(0.1) {
		b.giveUp()
		return
	}
	b.add(detect.Event{Kind: detect.KindClick, Sel: "button#place-order", X: 702, Y: 652, Dead: true})
	b.wait(1*time.Second, 5*time.Second)
	b.burst("button#place-order", b.between(3, 6), true, true)
	b.giveUp()
}

func failedAPI(b *builder) {
	b.browse()
	b.goTo("/account/orders")
	b.wait(200*time.Millisecond, 800*time.Millisecond)
	status := 500
	if b.chance(0.3) {
		status = 0
	}
	b.request("GET", "/api/orders", status)
	b.onset(FailedAPI)
	n := weighted(b, []float64{0.08, 0.4, 0.35, 0.17}) + 1
	for range n - 1 {
		b.read(2*time.Second, 9*time.Second)
		if b.chance(0.5) {
			b.goTo("/account/orders")
		} else {
			b.click("button#retry", 500, 300)
		}
		b.wait(200*time.Millisecond, 800*time.Millisecond)
		b.request("GET", "/api/orders", status)
	}
	b.giveUp()
}

func churn(b *builder) {
	b.goTo("/account")
	b.read(3*time.Second, 20*time.Second)
	b.click("a#cancel-subscription", 300, 400)
	if b.chance(0.5) {
		b.goTo("/account/cancel")
	} else {
		b.goTo("/account/close")
	}
	b.onset(Churn)
	b.read(5*time.Second, 60*time.Second)
	b.outcome = backtest.OutcomeAbandoned
}

func appCrash(b *builder) {
	b.browse()
	b.click("a.product-card", 400, 400)
	b.wait(100*time.Millisecond, 500*time.Millisecond)
	b.onset(Crash)
	b.errorEv("ChunkLoadError: Loading chunk 42 failed.", "chunk-load")
	b.giveUp()
}

func frozenUI(b *builder) {
	b.browse()
	b.goTo("/products")
	for i := range b.between(2, 3) {
		b.click("button#filter-apply", 200, 300)
		b.wait(10*time.Millisecond, 100*time.Millisecond)
		if i == 0 {
			b.onset(FrozenUI)
		}
		d := b.between(2100, 6000)
		b.wait(time.Duration(d)*time.Millisecond/2, time.Duration(d)*time.Millisecond/2)
		b.burst("button#filter-apply", b.between(2, 4), false, true)
		b.add(detect.Event{Kind: detect.KindLongTask, Dur: d})
		b.read(3*time.Second, 12*time.Second)
	}
	b.giveUp()
}

// Calm personas.

func converter(b *builder) {
	b.browse()
	b.toCart()
	b.address()
	b.submit("address", true)
	b.paymentPage()
	b.pay(true)
	b.done()
}

func browser(b *builder) {
	b.browse()
	if b.chance(0.3) {
		b.goTo("/blog/:id")
		b.read(20*time.Second, 3*time.Minute)
	}
}

func doubleClicker(b *builder) {
	b.goTo("/")
	for range b.between(4, 8) {
		b.read(2*time.Second, 15*time.Second)
		sel := []string{"a.product-card", "button#add-to-cart", "a.nav-link", "button.load-more"}[b.r.IntN(4)]
		x, y := b.between(100, 900), b.between(100, 700)
		b.click(sel, x, y)
		b.wait(80*time.Millisecond, 250*time.Millisecond)
		b.click(sel, x+2, y+1)
		if sel == "a.product-card" {
			b.goTo("/products/:id")
		}
	}
	if b.chance(0.5) {
		converter(b)
	}
}

func slowReader(b *builder) {
	b.goTo("/products/:id")
	for range b.between(3, 6) {
		b.read(20*time.Second, 90*time.Second)
		b.click("button.tab-reviews", 300, 600)
	}
	if b.chance(0.5) {
		b.toCart()
		b.address()
		// Reads the terms for a long time, scrolling and clicking now and then.
		for range b.between(4, 8) {
			b.read(15*time.Second, 45*time.Second)
			b.click("a.terms", 300, 700)
		}
		b.submit("address", true)
		b.paymentPage()
		b.pay(true)
		b.done()
	}
}

func stepper(b *builder) {
	b.browse()
	b.toCart()
	for range b.between(1, 3) {
		sel := "button.qty-plus"
		switch b.r.IntN(3) {
		case 1:
			sel = "button.qty-minus"
		case 2:
			sel = "button.btn-sm" // a stepper the ignore list does not know
		}
		b.burst(sel, b.between(3, 8), false, b.chance(0.5))
		b.read(2*time.Second, 10*time.Second)
	}
	if b.chance(0.6) {
		b.address()
		b.submit("address", true)
		b.paymentPage()
		b.pay(true)
		b.done()
	}
}

func tabSwitcher(b *builder) {
	b.browse()
	b.toCart()
	b.address()
	for range b.between(2, 4) {
		b.add(detect.Event{Kind: detect.KindVisibility, Visible: false})
		b.wait(1*time.Minute, 10*time.Minute)
		b.add(detect.Event{Kind: detect.KindVisibility, Visible: true})
		b.fill("street")
	}
	b.submit("address", true)
	b.paymentPage()
	b.pay(true)
	b.done()
}

func typoFixer(b *builder) {
	b.browse()
	b.toCart()
	b.address()
	attempts := 1
	if b.chance(0.3) {
		attempts = 2
	}
	for range attempts {
		b.click("button#continue", 500, 650)
		b.wait(50*time.Millisecond, 200*time.Millisecond)
		b.invalid("address", "postcode", "patternMismatch")
		b.read(3*time.Second, 12*time.Second)
		b.fill("postcode")
	}
	b.submit("address", true)
	b.paymentPage()
	b.pay(true)
	b.done()
}

func oneDecline(b *builder) {
	b.browse()
	b.toCart()
	b.address()
	b.submit("address", true)
	b.paymentPage()
	b.pay(false)
	b.read(5*time.Second, 20*time.Second)
	b.fill("card-number", "card-cvc")
	b.pay(true)
	b.done()
}

func couponOnce(b *builder) {
	b.browse()
	b.toCart()
	for range b.between(1, 2) {
		b.click("input#coupon", 300, 500)
		b.wait(2*time.Second, 8*time.Second)
		b.click("button#apply-coupon", 420, 500)
		b.wait(200*time.Millisecond, 900*time.Millisecond)
		b.request("POST", "/api/coupon", 422)
		b.read(3*time.Second, 15*time.Second)
	}
	if b.chance(0.7) {
		converter(b)
	}
}

// couponHunter pastes codes from a coupon site, three or four of them
// rejected quickly, then pays full price without help: the same events as
// a coupon loop, but no struggle.
func couponHunter(b *builder) {
	b.browse()
	b.toCart()
	for range b.between(3, 4) {
		b.click("input#coupon", 300, 500)
		b.wait(1*time.Second, 3*time.Second)
		b.click("button#apply-coupon", 420, 500)
		b.wait(200*time.Millisecond, 900*time.Millisecond)
		b.request("POST", "/api/coupon", 422)
		b.read(2*time.Second, 6*time.Second)
	}
	b.address()
	b.submit("address", true)
	b.paymentPage()
	b.pay(true)
	b.done()
}

func harmless404(b *builder) {
	b.browse()
	b.request("GET", "/img/hero.webp", 404)
	if b.chance(0.3) {
		b.request("GET", "/api/recommendations", 500)
	}
	if b.chance(0.5) {
		b.toCart()
	}
}

func noisyErrors(b *builder) {
	b.goTo("/")
	for range b.between(3, 12) {
		b.errorEv("ResizeObserver loop completed with undelivered notifications.", "ro-loop")
		b.wait(200*time.Millisecond, 4*time.Second)
	}
	if b.chance(0.4) {
		for range 3 {
			b.errorEv("Script error.", "script-error")
			b.wait(2*time.Second, 15*time.Second)
		}
	}
	browser(b)
}

func helpReader(b *builder) {
	b.goTo("/help")
	b.read(10*time.Second, 60*time.Second)
	b.goTo("/help/shipping")
	b.read(20*time.Second, 2*time.Minute)
	if b.chance(0.5) {
		converter(b)
	}
}

func backAndForth(b *builder) {
	b.goTo("/products")
	for range b.between(3, 7) {
		b.click("a.product-card", b.between(100, 900), b.between(200, 800))
		b.goTo("/products/:id")
		b.read(2*time.Second, 9*time.Second)
		b.goTo("/products")
		b.read(1*time.Second, 6*time.Second)
	}
}

// weighted returns an index drawn with the given weights.
func weighted(b *builder, w []float64) int {
	total := 0.0
	for _, x := range w {
		total += x
	}
	x := b.r.Float64() * total
	for i, v := range w {
		x -= v
		if x < 0 {
			return i
		}
	}
	return len(w) - 1
}
