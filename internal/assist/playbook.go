package assist

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/lifelinehq/lifeline/detect"
)

// Doc is a site's playbooks as stored and edited (docs/assist.md).
type Doc struct {
	// Version is the format's version; 1.
	Version int `json:"version"`
	// Revision is a free label shown in the audit trail.
	Revision string `json:"revision,omitempty"`
	// Teams names groups of agents (by email) that transfer actions hand
	// a conversation to.
	Teams     map[string][]string `json:"teams,omitempty"`
	Playbooks []Playbook          `json:"playbooks"`
}

// Playbook is what to do about one kind of struggle: when it applies and
// what it suggests.
type Playbook struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Disabled playbooks are kept but never match.
	Disabled    bool         `json:"disabled,omitempty"`
	Match       Match        `json:"match"`
	Suggestions []Suggestion `json:"suggestions,omitempty"`
	Actions     []Action     `json:"actions,omitempty"`
}

// Match says when a playbook applies. Every condition given must hold;
// an empty Match applies to every conversation.
type Match struct {
	// Rules, Signals and Pages match the visitor's findings: one finding
	// must have one of the rule IDs, one of the signals and a page
	// matching one of the patterns (detect.Pattern syntax). Without Rules
	// and Signals, Pages match any page of the visitor's trail.
	Rules   []string `json:"rules,omitempty"`
	Signals []string `json:"signals,omitempty"`
	Pages   []string `json:"pages,omitempty"`
	// Attributes match the visitor's custom attributes: "*" (set), "!x"
	// (not x), ">=50", ">50", "<=50", "<50" (numbers), "a|b" (one of), or
	// the value itself; comparisons ignore case.
	Attributes map[string]string `json:"attributes,omitempty"`
	// Identified requires a visitor who called identify (true) or not.
	Identified *bool `json:"identified,omitempty"`
	// Returning requires a visitor first seen a day or more ago or with an
	// earlier conversation (true), or a new one (false).
	Returning *bool `json:"returning,omitempty"`
	// UnresolvedBefore requires an earlier conversation that is still open
	// or was answered "no" to "Did this solve it?" (true), or none.
	UnresolvedBefore *bool `json:"unresolved_before,omitempty"`

	rules, signals map[string]bool
	pages          []detect.Pattern
	attrs          []attrCond
}

// Suggestion is a reply the agent can insert and edit.
type Suggestion struct {
	ID string `json:"id"`
	// Text is the reply, with placeholders such as {{visitor.first_name}}
	// or {{visitor.first_name | there}} (a fallback after the bar).
	Text string `json:"text"`

	tmpl template
}

// Action kinds.
const (
	KindLink     = "link"     // open a URL built from context
	KindNote     = "note"     // add an internal note
	KindTag      = "tag"      // tag the conversation
	KindTransfer = "transfer" // hand the conversation to a team or agent
	KindWebhook  = "webhook"  // call the site's endpoint, signed; the answer becomes a note
)

// Action is something the agent can do in one click.
type Action struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Label string `json:"label"`
	// URL is the link (a template) or the webhook endpoint (https, or a
	// path on this node such as /demo/api/payment-link).
	URL string `json:"url,omitempty"`
	// Text is the note's template.
	Text string `json:"text,omitempty"`
	// Tag is the tag to add.
	Tag string `json:"tag,omitempty"`
	// Team or Agent (an email) is who a transfer goes to.
	Team  string `json:"team,omitempty"`
	Agent string `json:"agent,omitempty"`
	// Confirm is the question shown before running, a template.
	Confirm string `json:"confirm,omitempty"`
	// Params are templates sent to the webhook as "params".
	Params map[string]string `json:"params,omitempty"`

	url, text, confirm template
	params             map[string]template
}

// Limits of a playbooks document.
const (
	MaxDocBytes     = 256 << 10
	MaxPlaybooks    = 200
	maxPerPlaybook  = 20
	maxText         = 2000
	maxIDLen        = 64
	maxConditions   = 50
	specRules       = 4
	specSignals     = 2
	specPages       = 2
	specAttribute   = 1
	specContextFlag = 1
)

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
var attrKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

//go:embed default_playbooks.json
var defaultJSON []byte

// DefaultJSON returns the playbooks every site starts with: the demo
// shop's struggles.
func DefaultJSON() []byte { return bytes.Clone(defaultJSON) }

// Parse decodes and validates a playbooks document. Its error lists every
// problem, one per line, each naming the playbook, the field and the problem.
func Parse(data []byte) (Doc, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(data) > MaxDocBytes {
		return Doc{}, &ValidationError{Problems: []string{fmt.Sprintf("playbooks: larger than %d bytes", MaxDocBytes)}}
	}
	var top struct {
		Version   int                 `json:"version"`
		Revision  string              `json:"revision"`
		Teams     map[string][]string `json:"teams"`
		Playbooks []json.RawMessage   `json:"playbooks"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&top); err != nil {
		return Doc{}, &ValidationError{Problems: []string{"playbooks: " + jsonErr(err)}}
	}
	if dec.More() {
		return Doc{}, &ValidationError{Problems: []string{"playbooks: trailing data after the document"}}
	}
	doc := Doc{Version: top.Version, Revision: top.Revision, Teams: top.Teams}
	if doc.Version != 1 {
		bad("version: must be 1, not %d", doc.Version)
	}
	if len(doc.Revision) > 64 {
		bad("revision: longer than 64 bytes")
	}
	for name, emails := range doc.Teams {
		if !idRE.MatchString(name) || len(name) > maxIDLen {
			bad("teams %q: a team name is lowercase letters, digits, - and _", name)
		}
		if len(emails) == 0 || len(emails) > 100 {
			bad("teams %q: list 1 to 100 agent emails", name)
		}
		for _, e := range emails {
			if !strings.Contains(e, "@") {
				bad("teams %q: %q is not an email", name, e)
			}
		}
	}
	if len(top.Playbooks) > MaxPlaybooks {
		bad("playbooks: at most %d", MaxPlaybooks)
		top.Playbooks = top.Playbooks[:MaxPlaybooks]
	}
	seen := map[string]bool{}
	for i, raw := range top.Playbooks {
		var pb Playbook
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&pb); err != nil {
			bad("playbooks[%d] %q: %s", i, peekID(raw), jsonErr(err))
			continue
		}
		where := fmt.Sprintf("playbooks[%d] %q", i, pb.ID)
		for _, p := range pb.compile(doc.Teams) {
			problems = append(problems, where+": "+p)
		}
		if seen[pb.ID] {
			bad("%s: id: used by another playbook", where)
		}
		seen[pb.ID] = true
		doc.Playbooks = append(doc.Playbooks, pb)
	}
	if len(problems) > 0 {
		return Doc{}, &ValidationError{Problems: problems}
	}
	return doc, nil
}

// compile validates a playbook and prepares its matchers and templates.
func (pb *Playbook) compile(teams map[string][]string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !idRE.MatchString(pb.ID) || len(pb.ID) > maxIDLen {
		bad("id: lowercase letters, digits, - and _, at most %d", maxIDLen)
	}
	if strings.TrimSpace(pb.Title) == "" || len(pb.Title) > 200 {
		bad("title: required, at most 200 bytes")
	}
	m := &pb.Match
	if n := len(m.Rules) + len(m.Signals) + len(m.Pages) + len(m.Attributes); n > maxConditions {
		bad("match: at most %d conditions", maxConditions)
	}
	m.rules, m.signals = map[string]bool{}, map[string]bool{}
	for _, r := range m.Rules {
		if r == "" || len(r) > maxIDLen {
			bad("match.rules: %q is not a rule id", r)
		}
		m.rules[r] = true
	}
	for _, s := range m.Signals {
		if !knownSignal(s) {
			bad("match.signals: unknown signal %q", s)
		}
		m.signals[s] = true
	}
	for _, p := range m.Pages {
		pat, err := detect.CompilePattern(p)
		if err != nil {
			bad("match.pages: %v", err)
			continue
		}
		m.pages = append(m.pages, pat)
	}
	for _, k := range sortedKeys(m.Attributes) {
		c, err := parseAttrCond(k, m.Attributes[k])
		if err != nil {
			bad("match.attributes.%s: %v", k, err)
			continue
		}
		m.attrs = append(m.attrs, c)
	}
	if len(pb.Suggestions)+len(pb.Actions) == 0 {
		bad("suggestions: a playbook needs a suggestion or an action")
	}
	if len(pb.Suggestions) > maxPerPlaybook || len(pb.Actions) > maxPerPlaybook {
		bad("at most %d suggestions and %d actions", maxPerPlaybook, maxPerPlaybook)
	}
	ids := map[string]bool{}
	uniq := func(where, id string) {
		if !idRE.MatchString(id) || len(id) > maxIDLen {
			bad("%s: id: lowercase letters, digits, - and _, at most %d", where, maxIDLen)
		}
		if ids[id] {
			bad("%s: id: used twice in the playbook", where)
		}
		ids[id] = true
	}
	for i := range pb.Suggestions {
		s := &pb.Suggestions[i]
		where := fmt.Sprintf("suggestions[%d] %q", i, s.ID)
		uniq(where, s.ID)
		if strings.TrimSpace(s.Text) == "" || len(s.Text) > maxText {
			bad("%s: text: required, at most %d bytes", where, maxText)
		}
		var err error
		if s.tmpl, err = parseTemplate(s.Text); err != nil {
			bad("%s: text: %v", where, err)
		}
	}
	for i := range pb.Actions {
		a := &pb.Actions[i]
		where := fmt.Sprintf("actions[%d] %q", i, a.ID)
		uniq(where, a.ID)
		for _, p := range a.compile(teams) {
			bad("%s: %s", where, p)
		}
	}
	return problems
}

func (a *Action) compile(teams map[string][]string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if strings.TrimSpace(a.Label) == "" || len(a.Label) > 100 {
		bad("label: required, at most 100 bytes")
	}
	tmpl := func(field, s string, required bool) template {
		if s == "" {
			if required {
				bad("%s: required for a %s action", field, a.Kind)
			}
			return nil
		}
		if len(s) > maxText {
			bad("%s: longer than %d bytes", field, maxText)
		}
		t, err := parseTemplate(s)
		if err != nil {
			bad("%s: %v", field, err)
		}
		return t
	}
	unused := func(field, v string) {
		if v != "" {
			bad("%s: not used by a %s action", field, a.Kind)
		}
	}
	a.confirm = tmpl("confirm", a.Confirm, false)
	switch a.Kind {
	case KindLink:
		a.url = tmpl("url", a.URL, true)
		if a.URL != "" && !literalHTTPPrefix(a.URL) {
			bad("url: must start with http:// or https:// and a host, without placeholders before the path")
		}
		unused("text", a.Text)
		unused("tag", a.Tag)
	case KindNote:
		a.text = tmpl("text", a.Text, true)
		unused("url", a.URL)
	case KindTag:
		if !idRE.MatchString(a.Tag) || len(a.Tag) > maxIDLen {
			bad("tag: lowercase letters, digits, - and _, at most %d", maxIDLen)
		}
		unused("url", a.URL)
	case KindTransfer:
		switch {
		case (a.Team == "") == (a.Agent == ""):
			bad("team: give a team or an agent, not both")
		case a.Team != "" && teams[a.Team] == nil:
			bad("team: no team %q in teams", a.Team)
		case a.Agent != "" && !strings.Contains(a.Agent, "@"):
			bad("agent: %q is not an email", a.Agent)
		}
		unused("url", a.URL)
	case KindWebhook:
		switch u, err := url.Parse(a.URL); {
		case a.URL == "":
			bad("url: required for a webhook action")
		case err != nil || strings.Contains(a.URL, "{{"):
			bad("url: must be a fixed URL, without placeholders")
		case strings.HasPrefix(a.URL, "/") && !strings.HasPrefix(a.URL, "//"):
			// A path on this node, such as the demo's.
		case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
			bad("url: must be an http(s) URL or a path on this node")
		}
		if len(a.Params) > 20 {
			bad("params: at most 20")
		}
		a.params = map[string]template{}
		for _, k := range sortedKeys(a.Params) {
			if !attrKeyRE.MatchString(k) {
				bad("params: bad name %q", k)
			}
			a.params[k] = tmpl("params."+k, a.Params[k], true)
		}
	default:
		bad("kind: must be link, note, tag, transfer or webhook, not %q", a.Kind)
	}
	if a.Kind != KindTransfer && (a.Team != "" || a.Agent != "") {
		bad("team: only a transfer action goes to a team or agent")
	}
	if a.Kind != KindWebhook && len(a.Params) > 0 {
		bad("params: only a webhook action sends params")
	}
	return problems
}

// literalHTTPPrefix reports whether a link template starts with a fixed
// scheme and host, so no value can turn it into another scheme or site.
func literalHTTPPrefix(s string) bool {
	fixed, _, _ := strings.Cut(s, "{{")
	rest, ok := strings.CutPrefix(fixed, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(fixed, "http://")
	}
	if !ok {
		return false
	}
	host, _, found := strings.Cut(rest, "/")
	return host != "" && (found || !strings.Contains(s, "{{"))
}

func knownSignal(s string) bool {
	if strings.HasPrefix(s, "x-") && len(s) > 2 {
		return true
	}
	for _, d := range detect.Signals {
		if string(d.Signal) == s {
			return true
		}
	}
	return false
}

// ValidationError lists what is wrong with a playbooks document, one
// problem per line, each naming the playbook and field.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string { return strings.Join(e.Problems, "\n") }

// Invalid marks the error as the caller's fault for the HTTP layer.
func (e *ValidationError) Invalid() bool { return true }

func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: must be a JSON %s, not %s", te.Field, te.Type.Kind(), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func peekID(raw []byte) string {
	var p struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &p)
	return p.ID
}

// attrCond is one attribute condition.
type attrCond struct {
	key string
	op  string // "*", "!", "=", ">=", ">", "<=", "<"
	vs  []string
	n   float64
}

func parseAttrCond(key, v string) (attrCond, error) {
	c := attrCond{key: key}
	if !attrKeyRE.MatchString(key) {
		return c, fmt.Errorf("bad attribute name")
	}
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return c, fmt.Errorf("empty condition; use \"*\" for any value")
	case v == "*":
		c.op = "*"
		return c, nil
	case strings.HasPrefix(v, "!"):
		c.op, c.vs = "!", []string{strings.ToLower(strings.TrimSpace(v[1:]))}
		return c, nil
	}
	for _, op := range []string{">=", "<=", ">", "<"} {
		if rest, ok := strings.CutPrefix(v, op); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				return c, fmt.Errorf("%q: %s needs a number", v, op)
			}
			c.op, c.n = op, n
			return c, nil
		}
	}
	c.op = "="
	for alt := range strings.SplitSeq(v, "|") {
		c.vs = append(c.vs, strings.ToLower(strings.TrimSpace(alt)))
	}
	return c, nil
}

func (c attrCond) holds(attrs map[string]string) bool {
	v, ok := attrs[c.key]
	v = strings.TrimSpace(v)
	ok = ok && v != ""
	switch c.op {
	case "*":
		return ok
	case "!":
		return !ok || !strings.EqualFold(v, c.vs[0])
	case "=":
		for _, x := range c.vs {
			if ok && strings.EqualFold(v, x) {
				return true
			}
		}
		return false
	}
	if !ok {
		return false
	}
	n, err := strconv.ParseFloat(strings.TrimPrefix(v, "€"), 64)
	if err != nil {
		return false
	}
	switch c.op {
	case ">=":
		return n >= c.n
	case ">":
		return n > c.n
	case "<=":
		return n <= c.n
	default:
		return n < c.n
	}
}

// Specificity is how narrowly a playbook applies: rules count 4, signals
// and pages 2 each, every attribute and context condition 1. Ranking
// starts from it.
func (m *Match) Specificity() int {
	n := 0
	if len(m.Rules) > 0 {
		n += specRules
	}
	if len(m.Signals) > 0 {
		n += specSignals
	}
	if len(m.Pages) > 0 {
		n += specPages
	}
	n += specAttribute * len(m.Attributes)
	for _, f := range []*bool{m.Identified, m.Returning, m.UnresolvedBefore} {
		if f != nil {
			n += specContextFlag
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
