package detect

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// Config sizes an Engine. A zero Config uses the defaults.
type Config struct {
	// MaxVisits is the number of visits tracked at once; when full, the
	// least recently active visit is dropped. Defaults to DefaultMaxVisits.
	MaxVisits int
	// IdleTimeout is how long a visit without events is kept by Expire.
	// Defaults to 30 minutes.
	IdleTimeout time.Duration
	// Signals are custom signals, by name ("x-name"), for rules that
	// reference them from JSON.
	Signals map[string]SignalFunc
}

// DefaultMaxVisits is Config.MaxVisits when it is zero.
const DefaultMaxVisits = 100_000

// Reason says why an assessment offers help.
type Reason string

// Reasons for an offer.
const (
	ReasonScore     Reason = "score"     // the score reached the threshold
	ReasonImmediate Reason = "immediate" // an immediate rule fired
	ReasonCritical  Reason = "critical"  // a JS error and a failed request on a critical page
)

// Assessment is the engine's verdict on a visit.
type Assessment struct {
	// Visit is the visit assessed.
	Visit string
	// Time is the time of the assessment.
	Time time.Time
	// Score is the decayed struggle score; Threshold is the one in force
	// on the visit's current page.
	Score, Threshold float64
	// Prior is the score just before the findings of the event observed.
	Prior float64
	// Forced reports that an immediate rule or a critical page fired on
	// the event just observed.
	Forced bool
	// Offer reports that the event just observed should trigger an offer:
	// the score crossed the threshold or the offer was forced, and the
	// visit has offers left (Ruleset.MaxOffersPerVisit). After an offer the
	// score must fall below half the threshold before it can trigger again.
	Offer bool
	// Reason is why Offer is set.
	Reason Reason
	// Offers is the number of offers triggered in this visit so far.
	Offers int
	// Cause is the strongest finding counted toward the score, the one
	// that explains an offer. Its Rule is empty if there is none.
	Cause Finding
	// OfferText is the customer-facing text for an offer now.
	OfferText string
}

// Explanation returns the agent sentence for the visit, or "" when nothing
// was found.
func (a *Assessment) Explanation() string {
	if a.Cause.Rule == "" {
		return ""
	}
	return a.Cause.Sentence()
}

// Priority ranks the visit for the agents' queue, higher first: 3 when an
// immediate rule or a critical page explains it, 2 when the score is at the
// threshold, 1 when it is at half of it or the visit was offered help, else
// 0.
func (a *Assessment) Priority() int {
	switch {
	case a.Cause.Immediate:
		return 3
	case a.Score >= a.Threshold:
		return 2
	case a.Score >= a.Threshold/2 || a.Offers > 0:
		return 1
	}
	return 0
}

// Trigger decides offers from scores: an offer when the score reaches the
// threshold or one is forced, at most max per visit, re-armed when the score
// falls below half the threshold. The Engine uses one per visit; backtests
// use it to replay other thresholds. The zero Trigger is ready.
type Trigger struct {
	offers   uint8
	disarmed bool
}

// Step feeds one event's scores, prior (just before the event's findings)
// and score (after them), and reports whether it triggers an offer.
func (tr *Trigger) Step(prior, score, threshold float64, forced bool, max int) bool {
	if tr.disarmed && min(prior, score) < threshold/2 {
		tr.disarmed = false
	}
	if int(tr.offers) >= max {
		return false
	}
	if forced || (!tr.disarmed && score >= threshold) {
		tr.offers++
		tr.disarmed = true
		return true
	}
	return false
}

// Offers returns the number of offers triggered so far.
func (tr *Trigger) Offers() int { return int(tr.offers) }

// ringSize is the number of pieces of evidence a visit remembers.
const ringSize = 48

// mark is one piece of evidence for a rule. rule is the rule's ID hash;
// ^rule once the evidence has been used by a finding.
type mark struct {
	t    int32 // ms since the visit's base
	rule uint32
	key  uint32
}

// Per page view flags.
const (
	pvJSError = 1 << iota
	pvBadRequest
	pvCritical
)

// visit is the bounded state of one visit.
type visit struct {
	key        string
	prev, next int32 // LRU links; -1 ends
	base, last int64 // Unix ms
	gen        uint32
	ov         int8 // page rule index, -1 for none
	visible    bool
	idle       bool
	interacted bool
	pv         uint8
	rageFired  bool
	reload     bool
	chain      uint16
	head       uint8
	trig       Trigger
	mask       uint64 // rules active on this page
	firedPage  uint64 // once-per-page-view rules that fired
	page       string
	prevPage   string
	prev2      uint32 // hash of the page before prevPage
	pageStart  int64
	prevStart  int64
	active     int64 // visible active ms on this page
	progress   int64 // active ms at the last successful submit
	lastClick  int64
	chainStart int64
	clickX     int32
	clickY     int32
	lastSel    string
	lastAct    int64
	lastErr    int64
	errMsg     string // last JS error on this page
	jsErr      int64  // its time
	errClickT  int64  // the error time error_click last used
	longT      int64  // the last long task on this page
	longUsed   int64  // the long task time ui_unresponsive last used
	longDur    int32
	badMethod  string // last bad request on this page
	badPath    string
	badStatus  int
	scoreT     int64
	core       float64
	boost      float64
	causeW     float64
	cause      Finding
	marks      [ringSize]mark
}

// Engine turns a stream of browser events into struggle findings and offer
// decisions. It keeps bounded state per visit and is not safe for
// concurrent use.
type Engine struct {
	cfg    Config
	c      *compiled
	idx    map[string]int32
	chunks [][]visit
	n      int32 // slots handed out
	free   []int32
	head   int32 // most recently active
	tail   int32 // least recently active
	out    []Finding
	last   Assessment
	view   View
	ev     Event
}

// chunkSize is how many visits' state is allocated at once (≈ 160 KiB):
// small enough that an engine with a few visits stays small (a node runs
// several per site), large enough that growing is rare.
const chunkSize = 128

// NewEngine returns an engine running rules with the default threshold,
// half-life and offer cap. With no rules it runs DefaultRuleset. It panics
// if a rule is invalid, like regexp.MustCompile; build rules from data with
// ParseRuleset and NewEngineRuleset.
func NewEngine(cfg Config, rules ...Rule) *Engine {
	rs := DefaultRuleset()
	if len(rules) > 0 {
		rs = Ruleset{Version: 1, Rules: rules}
	}
	e, err := NewEngineRuleset(cfg, rs)
	if err != nil {
		panic(err)
	}
	return e
}

// NewEngineRuleset returns an engine running rs.
func NewEngineRuleset(cfg Config, rs Ruleset) (*Engine, error) {
	if cfg.MaxVisits <= 0 {
		cfg.MaxVisits = DefaultMaxVisits
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	e := &Engine{cfg: cfg, idx: make(map[string]int32), head: -1, tail: -1, out: make([]Finding, 0, 8)}
	if err := e.SetRuleset(rs); err != nil {
		return nil, err
	}
	return e, nil
}

// SetRuleset validates rs and swaps it in, keeping every visit's state:
// evidence, scores and offers carry over for rules whose ID is unchanged.
// Once-per-page-view rules may fire again on the current page.
func (e *Engine) SetRuleset(rs Ruleset) error {
	sig := e.cfg.Signals
	if sig == nil {
		sig = map[string]SignalFunc{}
	}
	n, err := rs.normalize(sig, nil)
	if err != nil {
		return err
	}
	gen := uint32(1)
	if e.c != nil {
		gen = e.c.gen + 1
	}
	e.c = compile(n, e.cfg.Signals, gen)
	return nil
}

// Ruleset returns the ruleset in force, with defaults filled in.
func (e *Engine) Ruleset() Ruleset {
	rs := e.c.rs
	rs.Rules, rs.Pages = slices.Clone(rs.Rules), slices.Clone(rs.Pages)
	return rs
}

// Len returns the number of visits tracked.
func (e *Engine) Len() int { return len(e.idx) }

func (e *Engine) at(i int32) *visit { return &e.chunks[i/chunkSize][i%chunkSize] }

func (e *Engine) unlink(i int32) {
	v := e.at(i)
	if v.prev >= 0 {
		e.at(v.prev).next = v.next
	} else {
		e.head = v.next
	}
	if v.next >= 0 {
		e.at(v.next).prev = v.prev
	} else {
		e.tail = v.prev
	}
	v.prev, v.next = -1, -1
}

func (e *Engine) pushFront(i int32) {
	v := e.at(i)
	v.prev, v.next = -1, e.head
	if e.head >= 0 {
		e.at(e.head).prev = i
	}
	e.head = i
	if e.tail < 0 {
		e.tail = i
	}
}

// lookup returns the visit's state, creating it (and evicting the least
// recently active visit when full) if needed.
func (e *Engine) lookup(key string, t int64) *visit {
	if i, ok := e.idx[key]; ok {
		if e.head != i {
			e.unlink(i)
			e.pushFront(i)
		}
		return e.at(i)
	}
	var i int32
	switch {
	case len(e.free) > 0:
		i = e.free[len(e.free)-1]
		e.free = e.free[:len(e.free)-1]
	case int(e.n) < e.cfg.MaxVisits:
		i = e.n
		e.n++
		if int(i/chunkSize) == len(e.chunks) {
			e.chunks = append(e.chunks, make([]visit, min(chunkSize, e.cfg.MaxVisits-int(i))))
		}
	default:
		i = e.tail
		delete(e.idx, e.at(i).key)
		e.unlink(i)
	}
	v := e.at(i)
	*v = visit{key: strings.Clone(key), base: t, last: t, scoreT: t, ov: -1, visible: true, prev: -1, next: -1}
	e.idx[v.key] = i
	e.pushFront(i)
	return v
}

// Forget drops a visit's state, for example when the visitor leaves.
func (e *Engine) Forget(visitKey string) {
	i, ok := e.idx[visitKey]
	if !ok {
		return
	}
	e.unlink(i)
	delete(e.idx, visitKey)
	*e.at(i) = visit{prev: -1, next: -1}
	e.free = append(e.free, i)
}

// Expire drops visits whose last event is older than Config.IdleTimeout
// before now.
func (e *Engine) Expire(now time.Time) {
	limit := now.UnixMilli() - e.cfg.IdleTimeout.Milliseconds()
	for e.tail >= 0 && e.at(e.tail).last < limit {
		e.Forget(e.at(e.tail).key)
	}
}

// Score returns the visit's decayed struggle score at now, 0 for an
// unknown visit.
func (e *Engine) Score(visitKey string, now time.Time) float64 {
	i, ok := e.idx[visitKey]
	if !ok {
		return 0
	}
	v := e.at(i)
	return e.score(v, now.UnixMilli())
}

// Assess returns the visit's assessment at now without changing it;
// Offer and Forced are false. Use it when the visitor opens a chat, to
// rank the conversation and explain it to the agent.
func (e *Engine) Assess(visitKey string, now time.Time) Assessment {
	a := Assessment{Visit: visitKey, Time: now, Threshold: e.c.rs.Threshold}
	i, ok := e.idx[visitKey]
	if !ok {
		return a
	}
	v := e.at(i)
	e.fill(&a, v, now.UnixMilli())
	return a
}

// Verdict returns the assessment made by the last Observe call.
func (e *Engine) Verdict() Assessment { return e.last }

func (e *Engine) decayFactor(from, to int64) float64 {
	if to <= from {
		return 1
	}
	return math.Exp2(-float64(to-from) / e.c.halfLife)
}

func (e *Engine) score(v *visit, t int64) float64 {
	f := e.decayFactor(v.scoreT, t)
	core := v.core * f
	if core >= 1 {
		return core + v.boost*f
	}
	return core
}

func (e *Engine) fill(a *Assessment, v *visit, t int64) {
	if v.gen != e.c.gen {
		e.repage(v)
	}
	a.Score = e.score(v, t)
	a.Threshold = e.c.rs.Threshold
	if v.ov >= 0 && e.c.pages[v.ov].threshold > 0 {
		a.Threshold = e.c.pages[v.ov].threshold
	}
	a.Offers = v.trig.Offers()
	a.Cause = v.cause
	a.OfferText = e.c.rs.Offer
	if v.cause.Offer != "" {
		a.OfferText = v.cause.Offer
	}
}

// Observe feeds one event and returns the findings it produced, shadow
// findings included. The slice is valid until the next call. Call Verdict
// for the offer decision. Events of one visit should come in time order,
// as the widget sends them; the one exception it makes, a click on a button
// held back 2.5 s to learn whether it was dead, is handled: an error or long
// task that arrived before the click it followed still counts as caused by
// it. Observe does not allocate in steady state.
func (e *Engine) Observe(event Event) []Finding {
	// Work on a copy held by the engine: custom signals get a pointer, and
	// a pointer to the parameter would move it to the heap.
	e.ev = event
	ev := &e.ev
	e.out = e.out[:0]
	t := ev.Time.UnixMilli()
	v := e.lookup(ev.Visit, t)
	c := e.c
	if v.gen != c.gen {
		e.repage(v)
	}
	if gap := t - v.last; gap > 0 {
		if v.visible && !v.idle {
			v.active += min(gap, idleAfter)
		}
		v.last = t
	}
	if ev.Kind == KindPage && ev.Path == v.page && v.page != "" && abs64(t-v.pageStart) <= dupPage {
		// The same page view reported twice (the widget at load and the
		// hello frame): not a reload.
		return e.verdict(v, ev, t, 0, false, ReasonScore)
	}
	e.before(v, ev, t)

	mask := v.mask & c.byKind[ev.Kind]
	for mask != 0 {
		i := bits.TrailingZeros64(mask)
		mask &= mask - 1
		e.eval(i, v, ev, t)
	}
	e.after(v, ev, t)

	prior := e.score(v, t)
	forced := false
	reason := ReasonScore
	for i := range e.out {
		f := &e.out[i]
		if f.Shadow {
			continue
		}
		e.add(v, f, t)
		if f.Immediate {
			forced, reason = true, ReasonImmediate
		}
	}
	if v.ov >= 0 && c.pages[v.ov].critical && v.pv&(pvJSError|pvBadRequest) == pvJSError|pvBadRequest && v.pv&pvCritical == 0 {
		v.pv |= pvCritical
		e.out = append(e.out, e.finding(v, ev, &critical, t, 1, t))
		f := &e.out[len(e.out)-1]
		f.Offer, f.Immediate = c.pages[v.ov].offer, true
		x := &f.Evidence
		x.Message, x.Method, x.Path, x.Status = v.errMsg, v.badMethod, v.badPath, v.badStatus
		e.add(v, f, t)
		if !forced {
			forced, reason = true, ReasonCritical
		}
	}
	return e.verdict(v, ev, t, prior, forced, reason)
}

// dupPage is how close two page events for the same path must be to count
// as one page view.
const dupPage = 3000

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// verdict decides the offer after an event and returns the findings.
func (e *Engine) verdict(v *visit, ev *Event, t int64, prior float64, forced bool, reason Reason) []Finding {
	if len(e.out) == 0 {
		prior = e.score(v, t)
	}
	a := &e.last
	*a = Assessment{Visit: v.key, Time: ev.Time, Forced: forced, Prior: prior}
	e.fill(a, v, t)
	if v.trig.Step(prior, a.Score, a.Threshold, forced, e.c.rs.MaxOffersPerVisit) {
		a.Offer, a.Reason = true, reason
		a.Offers = v.trig.Offers()
	}
	return e.out
}

// idleAfter caps the active time one gap between events can add: the
// widget reports idle after 30 s without input.
const idleAfter = 30_000

// critical is the pseudo rule of a critical page's error plus failed request.
var critical = crule{
	Rule: Rule{ID: "critical-page", Signal: "critical_page", Say: `JS error "{message}" and {request} failing with {status} on {page}`},
}

// add counts a finding toward the visit's score.
func (e *Engine) add(v *visit, f *Finding, t int64) {
	d := e.decayFactor(v.scoreT, t)
	if t > v.scoreT {
		v.scoreT = t
	}
	v.core *= d
	v.boost *= d
	v.causeW *= d
	if f.Booster {
		v.boost += f.Weight
	} else {
		v.core += f.Weight
	}
	// A booster (dwell, an intent page) explains the visit only when
	// nothing else does.
	if f.Booster && v.cause.Rule != "" && !v.cause.Booster {
		return
	}
	if f.Weight >= v.causeW || f.Immediate {
		v.causeW = f.Weight
		v.cause = *f
	}
}

// repage recomputes which rules and page rule apply to the current page.
func (e *Engine) repage(v *visit) {
	c := e.c
	if v.gen != c.gen {
		v.firedPage = 0
		v.gen = c.gen
	}
	if pi, ok := c.pageCache[v.page]; ok {
		v.mask, v.ov = pi.mask, pi.ov
		return
	}
	v.ov = -1
	for i := range c.pages {
		if c.pages[i].pat.Match(v.page) {
			v.ov = int8(i)
			break
		}
	}
	v.mask = 0
	for i := range c.rules {
		r := &c.rules[i]
		if r.Disabled || !r.page.Match(v.page) {
			continue
		}
		if v.ov >= 0 && c.pages[v.ov].enabled&(1<<i) == 0 {
			continue
		}
		v.mask |= 1 << i
	}
	if len(c.pageCache) < maxPageCache {
		c.pageCache[v.page] = pageInfo{mask: v.mask, ov: v.ov}
	}
}

// maxPageCache bounds the paths whose rules are remembered; paths arrive
// templated, so a site has few.
const maxPageCache = 4096

// pageInfo is what repage works out for one path.
type pageInfo struct {
	mask uint64
	ov   int8
}

// before updates the visit's state with the event, ahead of the rules.
func (e *Engine) before(v *visit, ev *Event, t int64) {
	switch ev.Kind {
	case KindPage:
		v.reload = ev.Path == v.page
		if !v.reload {
			v.prev2 = hash1(v.prevPage)
			v.prevPage, v.prevStart = v.page, v.pageStart
			v.page = ev.Path
		}
		v.pageStart, v.active, v.progress = t, 0, 0
		v.pv, v.firedPage, v.interacted = 0, 0, false
		v.lastClick, v.lastErr, v.lastSel, v.chain, v.rageFired = 0, 0, "", 0, false
		v.errMsg, v.badMethod, v.badPath, v.badStatus = "", "", "", 0
		v.jsErr, v.errClickT, v.longT, v.longUsed, v.longDur = 0, 0, 0, 0, 0
		v.visible, v.idle = true, false
		e.repage(v)
	case KindClick:
		dx, dy := int32(ev.X)-v.clickX, int32(ev.Y)-v.clickY
		if v.lastClick > 0 && t-v.lastClick <= 1000 && abs32(dx)+abs32(dy) <= 30 {
			if v.chain < math.MaxUint16 {
				v.chain++
			}
		} else {
			v.chain, v.rageFired, v.chainStart = 1, false, t
		}
		v.lastClick, v.clickX, v.clickY, v.lastSel, v.lastAct = t, int32(ev.X), int32(ev.Y), ev.Sel, t
		v.interacted, v.idle, v.visible = true, false, true
	case KindSubmit:
		v.lastAct = t
		v.interacted, v.idle, v.visible = true, false, true
		if ev.OK {
			v.progress = v.active
		}
	case KindInvalid:
		v.interacted, v.idle, v.visible = true, false, true
	case KindVisibility:
		v.visible = ev.Visible
	case KindIdle:
		// Rules read the state before the idle change; see after.
	case KindError:
		v.pv |= pvJSError
		if t >= v.jsErr {
			v.errMsg, v.jsErr = ev.Msg, t
		}
	case KindLongTask:
		if t >= v.longT {
			v.longT, v.longDur = t, int32(min(ev.Dur, math.MaxInt32))
		}
	case KindRequest:
		if badRequest(ev) {
			v.pv |= pvBadRequest
			v.badMethod, v.badPath, v.badStatus = ev.Method, ev.Path, ev.Status
		}
	}
}

// after updates the state the rules had to see unchanged.
func (e *Engine) after(v *visit, ev *Event, t int64) {
	switch ev.Kind {
	case KindIdle:
		v.idle = ev.Idle
	case KindError, KindReport:
		v.lastErr = t
	case KindRequest:
		if badRequest(ev) {
			v.lastErr = t
		}
	}
}

// badRequest tells a failure that hurts (network error, 5xx, a refused
// POST) from a harmless one such as a missing image (GET 4xx).
func badRequest(ev *Event) bool {
	return ev.Status == 0 || ev.Status >= 500 || (ev.Status >= 400 && ev.Method != "GET")
}

func abs32(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}

// rel converts Unix ms to the visit's ring time.
func (v *visit) rel(t int64) int32 {
	d := t - v.base
	return int32(max(min(d, math.MaxInt32), math.MinInt32+1))
}

// note records evidence and returns how many pieces with the same rule and
// key fall within window, and the time of the first.
func (v *visit) note(rule, key uint32, t, window int64) (int, int64) {
	rt := v.rel(t)
	v.marks[v.head] = mark{t: rt, rule: rule, key: key}
	v.head = (v.head + 1) % ringSize
	return v.count(rule, key, t, window)
}

func (v *visit) count(rule, key uint32, t, window int64) (int, int64) {
	rt := v.rel(t)
	lo := v.rel(t - window)
	n, first := 0, rt
	for i := range v.marks {
		m := &v.marks[i]
		if m.rule == rule && m.key == key && m.t >= lo && m.t <= rt {
			n++
			first = min(first, m.t)
		}
	}
	return n, v.base + int64(first)
}

// recent reports evidence (used or not) with the rule and key within d.
func (v *visit) recent(rule, key uint32, t, d int64) bool {
	lo := v.rel(t - d)
	for i := range v.marks {
		m := &v.marks[i]
		if (m.rule == rule || m.rule == ^rule) && m.key == key && m.t >= lo {
			return true
		}
	}
	return false
}

// use marks the rule's evidence with key as used, so the next finding
// needs Count new pieces.
func (v *visit) use(rule, key uint32) {
	for i := range v.marks {
		m := &v.marks[i]
		if m.rule == rule && m.key == key {
			m.rule = ^rule
		}
	}
}

// useAll marks all of the rule's evidence as used.
func (v *visit) useAll(rule uint32) {
	for i := range v.marks {
		if v.marks[i].rule == rule {
			v.marks[i].rule = ^rule
		}
	}
}

// eval runs rule i on the event and appends its finding, if any.
func (e *Engine) eval(i int, v *visit, ev *Event, t int64) {
	r := &e.c.rules[i]
	bit := uint64(1) << i
	var key uint32
	switch r.Signal {
	case RepeatedError:
		if !r.message(ev.Msg, ev.FP) || !r.acting(v, t) {
			return
		}
		key = hash1(ev.FP)
	case ErrorBurst:
		if !r.message(ev.Msg, ev.FP) {
			return
		}
	case ErrorClick:
		// The widget holds a click on a button for 2.5 s to tell whether it
		// was dead, so the error it caused often arrives first: correlate in
		// both orders, once per error.
		if ev.Kind == KindClick {
			if v.jsErr == 0 || v.jsErr < t || v.jsErr-t > r.after || v.errClickT == v.jsErr || !r.message(v.errMsg, "") || !r.selector(ev.Sel) {
				return
			}
			v.errClickT = v.jsErr
			key = hash1(ev.Sel)
			n, first := v.note(r.id, key, t, r.window)
			if n >= r.Count {
				v.use(r.id, key)
				f := e.fire(r, v, ev, n, first, v.jsErr)
				f.Evidence.Message = v.errMsg
			}
			return
		}
		if v.lastClick == 0 || t < v.lastClick || t-v.lastClick > r.after || !r.message(ev.Msg, ev.FP) || !r.selector(v.lastSel) {
			return
		}
		v.errClickT = t
		key = hash1(v.lastSel)
	case RequestFailed:
		if !r.request(ev) || !r.acting(v, t) {
			return
		}
		key = hash2(ev.Method, ev.Path) + uint32(ev.Status/100)
	case RetrySubmit:
		if !r.request(ev) {
			return
		}
		key = hash2(ev.Method, ev.Path)
	case FormInvalid:
		if !r.form(ev.Form) {
			return
		}
		fk := hash1(ev.Form)
		if ev.Kind == KindSubmit {
			// A submit that went through resets the form. A submit with ok
			// false is no evidence: the widget reports every submit the
			// page's script handles itself (preventDefault) that way.
			if ev.OK {
				v.use(r.id, fk)
				v.useAll(r.fieldID)
			}
			return
		}
		fieldN, fieldFirst := 0, t
		if ev.Kind == KindInvalid && r.FieldCount > 0 {
			fieldN, fieldFirst = v.note(r.fieldID, hash2(ev.Form, ev.Field), t, r.window)
		}
		// Invalid events of one submit attempt arrive together: count one
		// attempt per form per second.
		n, first := 0, t
		if !v.recent(r.id, fk, t, 1000) {
			n, first = v.note(r.id, fk, t, r.window)
		}
		switch {
		case n >= r.Count:
			v.use(r.id, fk)
			v.useAll(r.fieldID)
			e.fire(r, v, ev, n, first, t)
		case r.FieldCount > 0 && fieldN >= r.FieldCount:
			v.use(r.id, fk)
			v.useAll(r.fieldID)
			f := e.fire(r, v, ev, fieldN, fieldFirst, t)
			f.Evidence.Form = ev.Form
		}
		return
	case RageClick:
		n := max(int(v.chain), ev.Rage)
		if v.rageFired || n < r.Count || !r.selector(ev.Sel) {
			return
		}
		v.rageFired = true
		f := e.fire(r, v, ev, n, v.chainStart, t)
		if ev.Dead && r.DeadBonus != nil {
			f.Weight += *r.DeadBonus
			f.Evidence.Dead = true
		}
		return
	case DeadClick:
		if !ev.Dead || !r.selector(ev.Sel) {
			return
		}
		key = hash1(ev.Sel)
	case AppCrash:
		switch {
		case ev.Kind == KindTrack && ev.Name == or(r.Match.Name, "app_crash"):
		case ev.Kind == KindError && len(r.msgs) > 0 && r.message(ev.Msg, ev.FP):
		default:
			return
		}
	case UIUnresponsive:
		if ev.Kind == KindClick {
			// A held click arriving after the long task it caused.
			if v.longT == 0 || v.longT < t || v.longT-t > r.after || v.longUsed == v.longT || int64(v.longDur) < r.min {
				return
			}
			v.longUsed = v.longT
			f := e.fire(r, v, ev, 1, t, v.longT)
			f.Evidence.Duration = time.Duration(v.longDur) * time.Millisecond
			return
		}
		if int64(ev.Dur) < r.min || v.lastClick == 0 || t < v.lastClick || t-v.lastClick > r.after {
			return
		}
		v.longUsed = t
	case PageLoop:
		// Loads of the same path in a row (reloads): with ids templated,
		// /products/:id three times is browsing, not a loop.
		key = hash1(ev.Path)
		if !v.reload {
			v.use(r.id, key)
		}
	case QuickBack:
		if v.prevPage == "" || hash1(ev.Path) != v.prev2 || ev.Path == v.prevPage || t-v.prevStart > r.window {
			return
		}
		f := e.fire(r, v, ev, 1, v.prevStart, t)
		f.Evidence.Other = v.prevPage
		return
	case IntentPage, Stalled, Dwell, IdleAfterError:
		if v.firedPage&bit != 0 {
			return
		}
		switch r.Signal {
		case Stalled:
			if !ev.Idle || !v.visible || v.idle || !v.interacted {
				return
			}
		case Dwell:
			if !v.interacted || v.active-v.progress < r.min || !v.visible {
				return
			}
		case IdleAfterError:
			if !ev.Idle || v.lastErr == 0 || t-v.lastErr > r.after {
				return
			}
		}
		v.firedPage |= bit
		first := t
		if r.Signal == Dwell {
			first = v.pageStart
		}
		f := e.fire(r, v, ev, 1, first, t)
		if r.Signal == Dwell {
			f.Evidence.Duration = time.Duration(v.active-v.progress) * time.Millisecond
		}
		return
	case Track:
		if ev.Name != r.Match.Name {
			return
		}
		key = hash1(ev.Name)
	case Report:
		if !r.message(ev.Msg, "") {
			return
		}
		key = hash1(ev.Msg)
	default:
		if r.fn == nil {
			return
		}
		e.fillView(v)
		k, ok := r.fn(&r.Rule, &e.view, ev)
		if !ok {
			return
		}
		key = k
	}
	n, first := v.note(r.id, key, t, r.window)
	if n < r.Count {
		return
	}
	v.use(r.id, key)
	e.fire(r, v, ev, n, first, t)
}

func (r *crule) acting(v *visit, t int64) bool {
	return r.after == 0 || (v.lastAct > 0 && t-v.lastAct <= r.after)
}

func (e *Engine) fillView(v *visit) {
	e.view = View{Visit: v.key, Page: v.page, OnPage: time.Duration(v.active) * time.Millisecond,
		LastSelector: v.lastSel, Visible: v.visible, Idle: v.idle, Interacted: v.interacted}
	if v.lastClick > 0 {
		e.view.LastClick = time.UnixMilli(v.lastClick)
	}
	if v.lastErr > 0 {
		e.view.LastError = time.UnixMilli(v.lastErr)
	}
}

// fire appends a finding of rule r.
func (e *Engine) fire(r *crule, v *visit, ev *Event, n int, first, t int64) *Finding {
	e.out = append(e.out, e.finding(v, ev, r, t, n, first))
	return &e.out[len(e.out)-1]
}

func (e *Engine) finding(v *visit, ev *Event, r *crule, t int64, n int, first int64) Finding {
	weight := r.Weight
	offer := r.Offer
	if v.ov >= 0 && r != &critical {
		p := &e.c.pages[v.ov]
		if w := p.weights[r.index]; w >= 0 {
			weight = w
		}
		if p.offer != "" {
			offer = p.offer
		}
	}
	f := Finding{
		Visit: v.key, Rule: r.ID, Revision: e.c.rs.Revision, Signal: r.Signal, Weight: weight, Shadow: r.Shadow,
		Immediate: r.Immediate, Booster: r.Alone != nil && !*r.Alone, Offer: offer, say: r.Say,
		Evidence: Evidence{
			Count: n, First: time.UnixMilli(first), Last: time.UnixMilli(t), Page: v.page,
			OnPage: time.Duration(v.active) * time.Millisecond,
		},
	}
	x := &f.Evidence
	switch ev.Kind {
	case KindError:
		x.Message, x.Fingerprint = ev.Msg, ev.FP
		x.Selector = v.lastSel
	case KindReport:
		x.Message = ev.Msg
	case KindRequest:
		x.Method, x.Path, x.Status = ev.Method, ev.Path, ev.Status
		x.Selector = v.lastSel
	case KindInvalid, KindSubmit:
		x.Form, x.Field = ev.Form, ev.Field
	case KindClick:
		x.Selector = ev.Sel
	case KindTrack:
		x.Name = ev.Name
	case KindLongTask:
		x.Duration = time.Duration(ev.Dur) * time.Millisecond
		x.Selector = v.lastSel
	}
	return f
}

// crule is a rule compiled for the engine.
type crule struct {
	Rule
	index   int
	id      uint32 // ID hash, the evidence tag
	fieldID uint32 // evidence tag of per-field counts
	page    Pattern
	endpt   Pattern
	status  statusSet
	msgs    []string // lower case
	ignore  []string // lower case
	sels    []string // lower case
	window  int64
	after   int64
	min     int64
	fn      SignalFunc
}

type cpage struct {
	pat       Pattern
	threshold float64
	weights   []float64 // per rule, -1 keeps the rule's
	enabled   uint64
	offer     string
	critical  bool
}

type compiled struct {
	rs       Ruleset
	gen      uint32
	rules    []crule
	pages    []cpage
	byKind   [numKinds]uint64
	halfLife float64 // ms
	// pageCache remembers repage's result per path.
	pageCache map[string]pageInfo
}

func compile(rs Ruleset, custom map[string]SignalFunc, gen uint32) *compiled {
	c := &compiled{rs: rs, gen: gen, halfLife: float64(time.Duration(rs.HalfLife).Milliseconds()), pageCache: map[string]pageInfo{}}
	for i, r := range rs.Rules {
		cr := crule{Rule: r, index: i, id: hash1(r.ID) | 1, fieldID: hash2(r.ID, "field") | 1,
			window: time.Duration(r.Window).Milliseconds(), after: time.Duration(r.After).Milliseconds(),
			min: time.Duration(r.Min).Milliseconds(), fn: r.Func}
		cr.page, _ = CompilePattern(r.Page)
		cr.endpt, _ = CompilePattern(r.Match.Endpoint)
		cr.status, _ = parseStatus(r.Match.Status)
		cr.msgs = lower(r.Match.Message)
		cr.ignore = lower(r.Match.Ignore)
		cr.sels = lower(r.Match.Selector)
		if cr.fn == nil && custom != nil {
			cr.fn = custom[string(r.Signal)]
		}
		if d := signalDefaults(r.Signal); d != nil {
			for k := Kind(1); k < numKinds; k++ {
				if d.kinds&(1<<k) != 0 {
					c.byKind[k] |= 1 << i
				}
			}
		} else {
			for k := Kind(1); k < numKinds; k++ {
				c.byKind[k] |= 1 << i
			}
		}
		c.rules = append(c.rules, cr)
	}
	for _, p := range rs.Pages {
		cp := cpage{threshold: p.Threshold, offer: p.Offer, critical: p.Critical, weights: make([]float64, len(rs.Rules))}
		cp.pat, _ = CompilePattern(p.Page)
		for i, r := range rs.Rules {
			cp.weights[i] = -1
			if w, ok := p.Weights[string(r.Signal)]; ok {
				cp.weights[i] = w
			}
			if w, ok := p.Weights[r.ID]; ok {
				cp.weights[i] = w
			}
			on := len(p.Signals) == 0
			for _, s := range p.Signals {
				on = on || s == r.ID || s == string(r.Signal)
			}
			if on {
				cp.enabled |= 1 << i
			}
		}
		c.pages = append(c.pages, cp)
	}
	return c
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// message reports whether an error or report passes the rule's message
// filters.
func (r *crule) message(msg, fp string) bool {
	for _, s := range r.ignore {
		if containsFold(msg, s) {
			return false
		}
	}
	if len(r.msgs) == 0 {
		return true
	}
	for _, s := range r.msgs {
		if containsFold(msg, s) || (fp != "" && containsFold(fp, s)) {
			return true
		}
	}
	return false
}

func (r *crule) selector(sel string) bool {
	for _, s := range r.ignore {
		if containsFold(sel, s) {
			return false
		}
	}
	if len(r.sels) == 0 {
		return true
	}
	for _, s := range r.sels {
		if containsFold(sel, s) {
			return true
		}
	}
	return false
}

func (r *crule) form(form string) bool {
	return r.Match.Form == "" || r.Match.Form == form
}

func (r *crule) request(ev *Event) bool {
	if ev.Status != 0 && ev.Status < 400 {
		return false
	}
	if r.Match.Method != "" && !strings.EqualFold(r.Match.Method, ev.Method) {
		return false
	}
	return r.status.has(ev.Status) && r.endpt.Match(ev.Path)
}

// containsFold reports whether s contains the lower-case needle, ignoring
// ASCII case, without allocating.
func containsFold(s, needle string) bool {
	n := len(needle)
	if n == 0 {
		return true
	}
outer:
	for i := 0; i+n <= len(s); i++ {
		for j := 0; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				continue outer
			}
		}
		return true
	}
	return false
}

// String describes the engine for debugging.
func (e *Engine) String() string {
	return fmt.Sprintf("detect.Engine{visits: %d, rules: %d}", len(e.idx), len(e.c.rules))
}
