package backtest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/lifelinehq/lifeline/detect"
)

// Options tune an evaluation. A zero Options uses the defaults.
type Options struct {
	// HitWindow is how long after an episode's onset an alert still
	// detects it. Defaults to 120 s (DETECTION.md).
	HitWindow time.Duration
	// Sweep lists the thresholds of the sweep table. Defaults to 2 to 16
	// in steps of 1, plus the ruleset's own threshold.
	Sweep []float64
	// Config sizes the engine; zero uses detect's defaults.
	Config detect.Config
}

// Metrics judge a set of alerts against the labelled episodes.
type Metrics struct {
	// Alerts is the number of alerts (offers overall, findings per rule).
	Alerts int `json:"alerts"`
	// TruePositives are alerts within the hit window of an episode;
	// FalsePositives are the others.
	TruePositives  int `json:"true_positives"`
	FalsePositives int `json:"false_positives"`
	// Episodes is the number of labelled episodes; Detected of them had an
	// alert in their hit window.
	Episodes int `json:"episodes"`
	Detected int `json:"detected"`
	// Precision is TruePositives/Alerts, Recall Detected/Episodes, F1
	// their harmonic mean.
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	// PRAUC is the area under the precision-recall curve (interpolated
	// average precision). Overall it is traced by sweeping the threshold;
	// a rule's findings are a single operating point, whose area is
	// Precision x Recall.
	PRAUC float64 `json:"pr_auc,omitempty"`
	// TTDMedian and TTDP90 are the median and 90th percentile of the time
	// from onset to the first alert, over detected episodes.
	TTDMedian Seconds `json:"ttd_median_s"`
	TTDP90    Seconds `json:"ttd_p90_s"`
	// OffersPer1000 is alerts per 1,000 visits.
	OffersPer1000 float64 `json:"offers_per_1000"`
}

// Seconds is a duration written as seconds in JSON.
type Seconds time.Duration

// MarshalJSON writes the duration in seconds with millisecond precision.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%.3f", time.Duration(s).Seconds()), nil
}

// String writes the duration like "4.2s".
func (s Seconds) String() string { return fmt.Sprintf("%.1fs", time.Duration(s).Seconds()) }

// RuleMetrics are a rule's findings judged as alerts on their own.
type RuleMetrics struct {
	// Rule is the rule's ID, Signal its signal.
	Rule   string        `json:"rule"`
	Signal detect.Signal `json:"signal"`
	// Shadow reports a rule in shadow mode.
	Shadow bool `json:"shadow,omitempty"`
	Metrics
}

// LabelMetrics are the overall alerts' recall on one kind of episode.
type LabelMetrics struct {
	// Label is the episode label, such as "card_declined".
	Label string `json:"label"`
	// Episodes with the label, Detected of them, and the share.
	Episodes int     `json:"episodes"`
	Detected int     `json:"detected"`
	Recall   float64 `json:"recall"`
	// TTDMedian is the median time to detect them.
	TTDMedian Seconds `json:"ttd_median_s"`
}

// SweepRow is the overall result at one threshold.
type SweepRow struct {
	// Threshold replaces the ruleset's; page thresholds scale with it.
	Threshold float64 `json:"threshold"`
	Metrics
}

// Report is the result of Run.
type Report struct {
	// Visits is the number of sessions evaluated; Events their events.
	Visits int `json:"visits"`
	Events int `json:"events"`
	// Threshold is the ruleset's threshold, at which Overall is measured.
	Threshold float64 `json:"threshold"`
	// Overall judges the engine's offers.
	Overall Metrics `json:"overall"`
	// Rules judges each rule's findings, shadow rules included, in ruleset
	// order.
	Rules []RuleMetrics `json:"rules"`
	// Labels breaks recall down by episode label.
	Labels []LabelMetrics `json:"labels"`
	// Sweep is the overall result at each threshold of Options.Sweep.
	Sweep []SweepRow `json:"sweep"`
}

// tally accumulates alerts and detections for one set of alerts.
type tally struct {
	alerts, tp int
	episodes   int
	detected   int
	ttd        []time.Duration
}

func (t *tally) metrics(visits int) Metrics {
	m := Metrics{Alerts: t.alerts, TruePositives: t.tp, FalsePositives: t.alerts - t.tp, Episodes: t.episodes, Detected: t.detected}
	if t.alerts > 0 {
		m.Precision = float64(t.tp) / float64(t.alerts)
	}
	if t.episodes > 0 {
		m.Recall = float64(t.detected) / float64(t.episodes)
	}
	if m.Precision+m.Recall > 0 {
		m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
	}
	if visits > 0 {
		m.OffersPer1000 = 1000 * float64(t.alerts) / float64(visits)
	}
	m.TTDMedian, m.TTDP90 = Seconds(quantile(t.ttd, 0.5)), Seconds(quantile(t.ttd, 0.9))
	return m
}

// score judges alert times of one session against its episodes.
func (t *tally) score(alerts []int64, eps []Episode, window int64, keepTTD bool) {
	t.alerts += len(alerts)
	t.episodes += len(eps)
	for _, a := range alerts {
		for _, e := range eps {
			on := e.Onset.UnixMilli()
			if a >= on && a <= on+window {
				t.tp++
				break
			}
		}
	}
	for _, e := range eps {
		on := e.Onset.UnixMilli()
		for _, a := range alerts {
			if a >= on && a <= on+window {
				t.detected++
				if keepTTD {
					t.ttd = append(t.ttd, time.Duration(a-on)*time.Millisecond)
				}
				break
			}
		}
	}
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// point is one event's score, for replaying other thresholds.
type point struct {
	t         int64
	prior     float64
	score     float64
	threshold float64
	forced    bool
}

// aucGrid are the thresholds that trace the precision-recall curve.
var aucGrid = func() []float64 {
	var g []float64
	for x := 0.5; x <= 40; x += 0.5 {
		g = append(g, x)
	}
	return append(g, 60, 100, math.Inf(1))
}()

// Run evaluates rs on sessions. Each session's events are fed to one engine
// in order under the session's visit key; the engine's offers are the
// overall alerts, each rule's findings its own alerts. Sessions are
// independent and may be in any order.
func Run(rs detect.Ruleset, sessions []Session, opt Options) (Report, error) {
	ev, err := NewEvaluator(rs, opt)
	if err != nil {
		return Report{}, err
	}
	for i := range sessions {
		ev.Add(&sessions[i])
	}
	return ev.Report(), nil
}

// Evaluator is Run one session at a time, for recordings too large to hold
// in memory. It is not safe for concurrent use.
type Evaluator struct {
	e        *detect.Engine
	rs       detect.Ruleset
	window   int64
	sweep    []float64
	ruleIdx  map[string]int
	visits   int
	events   int
	overall  tally
	rules    []tally
	sweeps   []tally
	grid     []tally
	labels   map[string]*tally
	trace    []point
	offers   []int64
	ruleHits [][]int64
	alerts   []int64
}

// NewEvaluator returns an Evaluator of rs.
func NewEvaluator(rs detect.Ruleset, opt Options) (*Evaluator, error) {
	e, err := detect.NewEngineRuleset(opt.Config, rs)
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	rs = e.Ruleset()
	window := opt.HitWindow.Milliseconds()
	if window <= 0 {
		window = 120_000
	}
	sweep := slices.Clone(opt.Sweep)
	if len(sweep) == 0 {
		for x := 2.0; x <= 16; x++ {
			sweep = append(sweep, x)
		}
		if !slices.Contains(sweep, rs.Threshold) {
			sweep = append(sweep, rs.Threshold)
		}
	}
	sort.Float64s(sweep)
	ev := &Evaluator{
		e: e, rs: rs, window: window, sweep: sweep, ruleIdx: map[string]int{},
		rules: make([]tally, len(rs.Rules)), sweeps: make([]tally, len(sweep)), grid: make([]tally, len(aucGrid)),
		labels: map[string]*tally{}, ruleHits: make([][]int64, len(rs.Rules)),
	}
	for i, r := range rs.Rules {
		ev.ruleIdx[r.ID] = i
	}
	return ev, nil
}

// Add evaluates one session.
func (ev *Evaluator) Add(s *Session) {
	e, rs := ev.e, &ev.rs
	ev.trace, ev.offers = ev.trace[:0], ev.offers[:0]
	for i := range ev.ruleHits {
		ev.ruleHits[i] = ev.ruleHits[i][:0]
	}
	// Alerts happen when the engine sees the event, which for a click the
	// widget held back is after later events: time alerts by the latest
	// event time seen so far.
	var clock int64
	for _, event := range s.Events {
		event.Visit = s.Visit
		t := max(clock, event.Time.UnixMilli())
		clock = t
		for _, f := range e.Observe(event) {
			if i, ok := ev.ruleIdx[f.Rule]; ok {
				ev.ruleHits[i] = append(ev.ruleHits[i], max(t, f.Evidence.Last.UnixMilli()))
			}
		}
		a := e.Verdict()
		ev.trace = append(ev.trace, point{t: t, prior: a.Prior, score: a.Score, threshold: a.Threshold, forced: a.Forced})
		if a.Offer {
			ev.offers = append(ev.offers, t)
		}
	}
	e.Forget(s.Visit)
	ev.visits++
	ev.events += len(s.Events)

	ev.overall.score(ev.offers, s.Episodes, ev.window, true)
	for _, ep := range s.Episodes {
		l := ev.labels[ep.Label]
		if l == nil {
			l = &tally{}
			ev.labels[ep.Label] = l
		}
		l.score(ev.offers, []Episode{ep}, ev.window, true)
	}
	for i := range ev.rules {
		ev.rules[i].score(ev.ruleHits[i], s.Episodes, ev.window, true)
	}
	replay := func(th float64) []int64 {
		ev.alerts = ev.alerts[:0]
		var tr detect.Trigger
		f := th / rs.Threshold
		for _, p := range ev.trace {
			if tr.Step(p.prior, p.score, p.threshold*f, p.forced, rs.MaxOffersPerVisit) {
				ev.alerts = append(ev.alerts, p.t)
			}
		}
		return ev.alerts
	}
	for i, th := range ev.sweep {
		ev.sweeps[i].score(replay(th), s.Episodes, ev.window, true)
	}
	for i, th := range aucGrid {
		ev.grid[i].score(replay(th), s.Episodes, ev.window, false)
	}
}

// Report returns the result over the sessions added so far.
func (ev *Evaluator) Report() Report {
	n := ev.visits
	rep := Report{Visits: n, Events: ev.events, Threshold: ev.rs.Threshold}
	rep.Overall = ev.overall.metrics(n)
	rep.Overall.PRAUC = prAUC(ev.grid, n)
	for i, r := range ev.rs.Rules {
		m := ev.rules[i].metrics(n)
		m.PRAUC = m.Precision * m.Recall
		rep.Rules = append(rep.Rules, RuleMetrics{Rule: r.ID, Signal: r.Signal, Shadow: r.Shadow, Metrics: m})
	}
	for i, th := range ev.sweep {
		rep.Sweep = append(rep.Sweep, SweepRow{Threshold: th, Metrics: ev.sweeps[i].metrics(n)})
	}
	for name, l := range ev.labels {
		m := l.metrics(n)
		rep.Labels = append(rep.Labels, LabelMetrics{Label: name, Episodes: m.Episodes, Detected: m.Detected, Recall: m.Recall, TTDMedian: m.TTDMedian})
	}
	slices.SortFunc(rep.Labels, func(a, b LabelMetrics) int { return cmp.Compare(a.Label, b.Label) })
	return rep
}

// prAUC is the interpolated average precision over the threshold grid:
// the sum over recall steps of the best precision at that recall or more.
func prAUC(grid []tally, visits int) float64 {
	type pr struct{ p, r float64 }
	var pts []pr
	for i := range grid {
		m := grid[i].metrics(visits)
		if m.Alerts == 0 {
			continue
		}
		pts = append(pts, pr{m.Precision, m.Recall})
	}
	if len(pts) == 0 {
		return 0
	}
	slices.SortFunc(pts, func(a, b pr) int { return cmp.Compare(a.r, b.r) })
	auc, prevR := 0.0, 0.0
	for i, p := range pts {
		best := p.p
		for _, q := range pts[i:] {
			best = max(best, q.p)
		}
		auc += (p.r - prevR) * best
		prevR = p.r
	}
	return auc
}
