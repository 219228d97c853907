package detect

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as Go duration text ("30s", "2m") in
// JSON.
type Duration time.Duration

// badDuration marks text that did not parse, so that validation can report
// it together with every other problem.
const badDuration = Duration(math.MinInt64)

// MarshalText writes the duration as Go duration text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalJSON reads Go duration text. Text that does not parse is kept as
// an invalid value that Ruleset validation reports.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		*d = badDuration
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		*d = badDuration
		return nil
	}
	*d = Duration(v)
	return nil
}

// Match narrows which events count as evidence for a rule. Empty fields
// match everything.
type Match struct {
	// Message lists case-insensitive substrings; an error or report counts
	// if its message or fingerprint contains any of them.
	Message []string `json:"message,omitempty"`
	// Endpoint is a path pattern a failed request's path must match.
	Endpoint string `json:"endpoint,omitempty"`
	// Method is the request method a failed request must have.
	Method string `json:"method,omitempty"`
	// Status is a comma-separated list of statuses a failed request must
	// have: "402", "4xx", "500-599", "0" (network error).
	Status string `json:"status,omitempty"`
	// Name is the track event name.
	Name string `json:"name,omitempty"`
	// Form is the form id or name (invalid, submit).
	Form string `json:"form,omitempty"`
	// Selector lists substrings; a click counts only if its selector
	// contains one of them.
	Selector []string `json:"selector,omitempty"`
	// Ignore lists case-insensitive substrings of a selector or message
	// whose events never count (steppers, next/prev controls, an opt-out
	// class, benign errors such as "ResizeObserver loop").
	Ignore []string `json:"ignore,omitempty"`
}

// Rule is one detection rule: a signal with its thresholds, window, page
// pattern, weight and offer. Zero fields take the signal's defaults (see
// Signals); ParseRuleset fills them in.
type Rule struct {
	// ID names the rule in findings, errors and metrics. Required, unique,
	// [a-z0-9._-], at most 64 bytes.
	ID string `json:"id"`
	// Signal is a built-in signal name or "x-name" for a custom signal.
	Signal Signal `json:"signal"`
	// Count is how many pieces of evidence must fall in Window. 1 to 16.
	Count int `json:"count,omitempty"`
	// FieldCount (form_invalid) fires when one field is invalid this many
	// times in Window. Defaults to 3; 0 to 16.
	FieldCount int `json:"field_count,omitempty"`
	// Window is the time span for Count. 1s to 1h. rage_click ignores it:
	// its chain is clicks at most 1000 ms apart and 30 px away.
	Window Duration `json:"window,omitempty"`
	// After bounds the delay from the triggering action to the evidence
	// (error_click, ui_unresponsive, idle_after_error; request_failed and
	// repeated_error count only evidence this soon after a click or submit
	// when set). 0 to 10m.
	After Duration `json:"after,omitempty"`
	// Min is a duration threshold: the long task length (ui_unresponsive)
	// or the active time on page (dwell). 0 to 1h.
	Min Duration `json:"min,omitempty"`
	// Page is a pattern (see Pattern) the current page must match. Empty
	// means every page.
	Page string `json:"page,omitempty"`
	// Weight is what a finding adds to the score. 0 means the signal's
	// default; 0 to 100.
	Weight float64 `json:"weight,omitempty"`
	// DeadBonus (rage_click) is added when the rage-clicked element is also
	// dead. Defaults to 2.
	DeadBonus *float64 `json:"dead_bonus,omitempty"`
	// Shadow rules report findings that never count toward an offer.
	Shadow bool `json:"shadow,omitempty"`
	// Immediate rules trigger an offer at once, whatever the score.
	Immediate bool `json:"immediate,omitempty"`
	// Alone says whether the rule counts without another signal. Defaults
	// to false for boosters (dwell, intent_page) and true otherwise; set it
	// on churn pages a site wants to act on alone.
	Alone *bool `json:"alone,omitempty"`
	// Disabled rules are kept in the file but never run.
	Disabled bool `json:"disabled,omitempty"`
	// Offer is the customer-facing offer text when this rule's finding
	// explains the offer. At most 200 bytes.
	Offer string `json:"offer,omitempty"`
	// Say is the agent sentence template. Placeholders: {page} {count}
	// {times} {span} {message} {request} {status} {selector} {form}
	// {field} {name} {duration} {onpage} {other} {quoted}. " in {span}" is
	// dropped for a single piece of evidence. At most 200 bytes.
	Say string `json:"say,omitempty"`
	// Match narrows the evidence.
	Match Match `json:"match,omitzero"`
	// Func implements a custom ("x-") signal for rules built in Go. Rules
	// from JSON find theirs in Config.Signals.
	Func SignalFunc `json:"-"`
}

// PageRule overrides the ruleset on pages matching Page.
type PageRule struct {
	// Page is the pattern (see Pattern). The first matching PageRule wins.
	Page string `json:"page"`
	// Threshold replaces the ruleset's threshold on these pages. 0 keeps it.
	Threshold float64 `json:"threshold,omitempty"`
	// Weights replaces weights, keyed by rule ID or signal name.
	Weights map[string]float64 `json:"weights,omitempty"`
	// Signals, when not empty, are the only rule IDs or signals that run
	// on these pages.
	Signals []string `json:"signals,omitempty"`
	// Offer replaces every rule's offer text on these pages.
	Offer string `json:"offer,omitempty"`
	// Critical pages (checkout, signup) offer at once on a JS error plus a
	// failed request (5xx, network error, or a non-GET 4xx) in one page view.
	Critical bool `json:"critical,omitempty"`
}

// Ruleset is a site's detection rules as data. See docs/detection.md for
// the file format.
type Ruleset struct {
	// Version of the format; must be 1.
	Version int `json:"version"`
	// Revision names this edition of the rules (a date, a commit, an
	// audit ID); every finding carries it, so each alert can be traced to
	// the rules that raised it. At most 64 bytes.
	Revision string `json:"revision,omitempty"`
	// Threshold is the score at which a visit is offered help. Defaults to
	// 8; up to 1000.
	Threshold float64 `json:"threshold,omitempty"`
	// HalfLife is how fast the score decays. Defaults to 60s; 1s to 1h.
	HalfLife Duration `json:"half_life,omitempty"`
	// MaxOffersPerVisit caps offers per visit. Defaults to 2; up to 20.
	MaxOffersPerVisit int `json:"max_offers_per_visit,omitempty"`
	// Offer is the default customer-facing offer text.
	Offer string `json:"offer,omitempty"`
	// Rules are the rules; at most 64.
	Rules []Rule `json:"rules"`
	// Pages are per-page overrides, first match wins; at most 32.
	Pages []PageRule `json:"pages,omitempty"`
}

// Limits of a ruleset.
const (
	MaxRulesetBytes = 1 << 20
	MaxRules        = 64
	maxPageRules    = 32
	maxCount        = 16
	maxText         = 200
)

// defaultOffer is the offer text when neither rule nor ruleset sets one.
const defaultOffer = "Need a hand? Someone can help right now."

//go:embed default_rules.json
var defaultRules []byte

// DefaultRuleset returns the built-in rules, tuned for the demo shop's
// struggles: card declined, coupon rejected, an address form that keeps
// failing validation, a button that throws, a visit to a cancel page, plus
// the generic signals of DETECTION.md.
func DefaultRuleset() Ruleset {
	rs, err := ParseRuleset(defaultRules)
	if err != nil {
		panic("detect: built-in ruleset: " + err.Error())
	}
	return rs
}

// DefaultRulesetJSON returns the built-in rules as JSON, a starting point
// for a site's own file.
func DefaultRulesetJSON() []byte { return bytes.Clone(defaultRules) }

// ErrRuleset is wrapped by every error ParseRuleset returns.
var ErrRuleset = errors.New("detect: invalid ruleset")

type wireRuleset struct {
	Version           int               `json:"version"`
	Revision          string            `json:"revision"`
	Threshold         float64           `json:"threshold"`
	HalfLife          Duration          `json:"half_life"`
	MaxOffersPerVisit int               `json:"max_offers_per_visit"`
	Offer             string            `json:"offer"`
	Rules             []json.RawMessage `json:"rules"`
	Pages             []json.RawMessage `json:"pages"`
}

// ParseRuleset decodes and validates a JSON ruleset and fills in defaults.
// Its error lists every problem, each naming the rule, the field and what
// is wrong, as in
//
//	rules[2] "card-declined": window: must be between 1s and 1h
func ParseRuleset(data []byte) (Ruleset, error) {
	if len(data) > MaxRulesetBytes {
		return Ruleset{}, fmt.Errorf("%w: %d bytes, limit %d", ErrRuleset, len(data), MaxRulesetBytes)
	}
	var w wireRuleset
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return Ruleset{}, fmt.Errorf("%w: %w", ErrRuleset, jsonErr(err))
	}
	if d.More() {
		return Ruleset{}, fmt.Errorf("%w: trailing data after the ruleset", ErrRuleset)
	}
	rs := Ruleset{Version: w.Version, Revision: w.Revision, Threshold: w.Threshold, HalfLife: w.HalfLife, MaxOffersPerVisit: w.MaxOffersPerVisit, Offer: w.Offer}
	var errs []error
	for i, raw := range w.Rules {
		var r Rule
		rd := json.NewDecoder(bytes.NewReader(raw))
		rd.DisallowUnknownFields()
		if err := rd.Decode(&r); err != nil {
			var peek struct {
				ID any `json:"id"`
			}
			_ = json.Unmarshal(raw, &peek)
			id, _ := peek.ID.(string)
			errs = append(errs, fmt.Errorf("rules[%d] %q: %w", i, id, jsonErr(err)))
			r = Rule{ID: id, Signal: "-bad-"}
		}
		rs.Rules = append(rs.Rules, r)
	}
	for i, raw := range w.Pages {
		var p PageRule
		pd := json.NewDecoder(bytes.NewReader(raw))
		pd.DisallowUnknownFields()
		if err := pd.Decode(&p); err != nil {
			errs = append(errs, fmt.Errorf("pages[%d]: %w", i, jsonErr(err)))
		}
		rs.Pages = append(rs.Pages, p)
	}
	out, err := rs.normalize(nil, errs)
	if err != nil {
		return Ruleset{}, err
	}
	return out, nil
}

func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("%s: must be a JSON %s, not %s", te.Field, jsonType(te.Type.Kind().String()), te.Value)
	}
	return err
}

func jsonType(k string) string {
	switch k {
	case "int", "float64", "int64":
		return "number"
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	}
	return k
}

// Validate reports every problem with the ruleset, as ParseRuleset does.
// Custom ("x-") signals must be in signals or have Rule.Func set.
func (rs Ruleset) Validate(signals map[string]SignalFunc) error {
	_, err := rs.normalize(signals, nil)
	return err
}

// normalize validates rs and returns a copy with defaults filled in.
func (rs Ruleset) normalize(custom map[string]SignalFunc, errs []error) (Ruleset, error) {
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	out := rs
	out.Rules = slices.Clone(rs.Rules)
	out.Pages = slices.Clone(rs.Pages)
	if rs.Version != 1 {
		bad("version: must be 1, not %d", rs.Version)
	}
	if len(out.Revision) > 64 {
		bad("revision: longer than 64 bytes")
	}
	if out.Threshold == 0 {
		out.Threshold = 8
	}
	if !(out.Threshold > 0 && out.Threshold <= 1000) {
		bad("threshold: must be between 0 and 1000")
	}
	if out.HalfLife == 0 {
		out.HalfLife = Duration(time.Minute)
	}
	if !durIn(out.HalfLife, time.Second, time.Hour) {
		bad("half_life: must be a duration between 1s and 1h")
	}
	if out.MaxOffersPerVisit == 0 {
		out.MaxOffersPerVisit = 2
	}
	if out.MaxOffersPerVisit < 0 || out.MaxOffersPerVisit > 20 {
		bad("max_offers_per_visit: must be between 1 and 20")
	}
	if out.Offer == "" {
		out.Offer = defaultOffer
	}
	if len(out.Offer) > maxText {
		bad("offer: longer than %d bytes", maxText)
	}
	if len(out.Rules) > MaxRules {
		bad("rules: %d rules, limit %d", len(out.Rules), MaxRules)
	}
	ids := map[string]int{}
	for i := range out.Rules {
		r := &out.Rules[i]
		if r.Signal == "-bad-" {
			continue
		}
		name := fmt.Sprintf("rules[%d] %q", i, r.ID)
		fail := func(field, format string, args ...any) {
			bad("%s: %s: %s", name, field, fmt.Sprintf(format, args...))
		}
		if !validID(r.ID) {
			fail("id", "must be 1 to 64 of a-z, 0-9, '.', '_', '-'")
		} else if j, dup := ids[r.ID]; dup {
			fail("id", "duplicates rules[%d]", j)
		} else {
			ids[r.ID] = i
		}
		def := signalDefaults(r.Signal)
		switch {
		case def != nil:
		case strings.HasPrefix(string(r.Signal), "x-"):
			if custom != nil && r.Func == nil && custom[string(r.Signal)] == nil {
				fail("signal", "custom signal %q is not registered", r.Signal)
			}
			def = &SignalDefaults{Count: 1, Window: time.Minute, Weight: 3, Say: "{signal} on {page}"}
		case r.Signal == "":
			fail("signal", "missing")
			continue
		default:
			fail("signal", "unknown signal %q", r.Signal)
			continue
		}
		if r.Count == 0 {
			r.Count = def.Count
		}
		if r.Count < 1 || r.Count > maxCount {
			fail("count", "must be between 1 and %d", maxCount)
		}
		if r.Signal == FormInvalid && r.FieldCount == 0 {
			r.FieldCount = 3
		}
		if r.FieldCount < 0 || r.FieldCount > maxCount {
			fail("field_count", "must be between 0 and %d", maxCount)
		}
		if r.Window == 0 {
			r.Window = Duration(def.Window)
		}
		if !durIn(r.Window, time.Second, time.Hour) {
			fail("window", "must be between 1s and 1h")
		}
		if r.After == 0 {
			r.After = Duration(def.After)
		}
		if !durIn(r.After, 0, 10*time.Minute) {
			fail("after", "must be between 0s and 10m")
		}
		if r.Min == 0 {
			r.Min = Duration(def.Min)
		}
		if !durIn(r.Min, 0, time.Hour) {
			fail("min", "must be between 0s and 1h")
		}
		if _, err := CompilePattern(r.Page); err != nil {
			fail("page", "%v", err)
		}
		if r.Weight == 0 {
			r.Weight = def.Weight
		}
		if !(r.Weight >= 0 && r.Weight <= 100) {
			fail("weight", "must be between 0 and 100")
		}
		if r.Signal == RageClick && r.DeadBonus == nil {
			b := 2.0
			r.DeadBonus = &b
		}
		if r.DeadBonus != nil && !(*r.DeadBonus >= 0 && *r.DeadBonus <= 100) {
			fail("dead_bonus", "must be between 0 and 100")
		}
		if r.Alone == nil {
			a := !def.Booster
			r.Alone = &a
		}
		if len(r.Offer) > maxText {
			fail("offer", "longer than %d bytes", maxText)
		}
		if r.Say == "" {
			r.Say = def.Say
		}
		if len(r.Say) > maxText {
			fail("say", "longer than %d bytes", maxText)
		} else if err := checkTemplate(r.Say); err != nil {
			fail("say", "%v", err)
		}
		m := &r.Match
		if _, err := CompilePattern(m.Endpoint); err != nil {
			fail("match.endpoint", "%v", err)
		}
		if _, err := parseStatus(m.Status); err != nil {
			fail("match.status", "%v", err)
		}
		for _, list := range [][]string{m.Message, m.Selector, m.Ignore} {
			if len(list) > 16 {
				fail("match", "at most 16 strings per list")
			}
			for _, s := range list {
				if s == "" || len(s) > maxText {
					fail("match", "strings must be 1 to %d bytes", maxText)
				}
			}
		}
		if r.Signal == Track && m.Name == "" {
			fail("match.name", "a track rule needs the event name")
		}
	}
	if len(out.Pages) > maxPageRules {
		bad("pages: %d page rules, limit %d", len(out.Pages), maxPageRules)
	}
	known := func(s string) bool {
		_, ok := ids[s]
		return ok || signalDefaults(Signal(s)) != nil
	}
	for i := range out.Pages {
		p := &out.Pages[i]
		name := fmt.Sprintf("pages[%d] %q", i, p.Page)
		if p.Page == "" {
			bad("%s: page: missing", name)
		} else if _, err := CompilePattern(p.Page); err != nil {
			bad("%s: page: %v", name, err)
		}
		if !(p.Threshold >= 0 && p.Threshold <= 1000) {
			bad("%s: threshold: must be between 0 and 1000", name)
		}
		for k, w := range p.Weights {
			if !known(k) {
				bad("%s: weights: %q is neither a rule id nor a signal", name, k)
			}
			if !(w >= 0 && w <= 100) {
				bad("%s: weights: %q must be between 0 and 100", name, k)
			}
		}
		for _, s := range p.Signals {
			if !known(s) {
				bad("%s: signals: %q is neither a rule id nor a signal", name, s)
			}
		}
		if len(p.Offer) > maxText {
			bad("%s: offer: longer than %d bytes", name, maxText)
		}
	}
	if len(errs) > 0 {
		return Ruleset{}, fmt.Errorf("%w:\n%w", ErrRuleset, errors.Join(errs...))
	}
	return out, nil
}

func durIn(d Duration, lo, hi time.Duration) bool {
	return d != badDuration && time.Duration(d) >= lo && time.Duration(d) <= hi
}

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

var placeholders = []string{"page", "count", "times", "span", "message", "request", "status", "selector", "form", "field", "name", "duration", "onpage", "other", "quoted", "signal"}

func checkTemplate(s string) error {
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return fmt.Errorf("unclosed {")
		}
		if !slices.Contains(placeholders, s[i+1:i+j]) {
			return fmt.Errorf("unknown placeholder {%s}", s[i+1:i+j])
		}
		s = s[i+j+1:]
	}
}

// statusSet is up to four inclusive status ranges; empty means any.
type statusSet struct {
	n  int
	lo [4]int16
	hi [4]int16
}

func (s *statusSet) has(status int) bool {
	if s.n == 0 {
		return true
	}
	for i := 0; i < s.n; i++ {
		if status >= int(s.lo[i]) && status <= int(s.hi[i]) {
			return true
		}
	}
	return false
}

func parseStatus(spec string) (statusSet, error) {
	var s statusSet
	if spec == "" {
		return s, nil
	}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if s.n == len(s.lo) {
			return s, fmt.Errorf("at most %d statuses", len(s.lo))
		}
		var lo, hi int
		switch {
		case len(part) == 3 && strings.HasSuffix(part, "xx") && part[0] >= '1' && part[0] <= '5':
			lo = int(part[0]-'0') * 100
			hi = lo + 99
		case strings.Contains(part, "-"):
			a, b, _ := strings.Cut(part, "-")
			var err1, err2 error
			lo, err1 = strconv.Atoi(a)
			hi, err2 = strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				return s, fmt.Errorf("%q is not a status, class (4xx) or range (400-499)", part)
			}
		default:
			n, err := strconv.Atoi(part)
			if err != nil {
				return s, fmt.Errorf("%q is not a status, class (4xx) or range (400-499)", part)
			}
			lo, hi = n, n
		}
		if lo < 0 || hi > 999 || lo > hi {
			return s, fmt.Errorf("%q is out of range 0-999", part)
		}
		s.lo[s.n], s.hi[s.n] = int16(lo), int16(hi)
		s.n++
	}
	return s, nil
}
