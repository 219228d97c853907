package assist

import (
	"cmp"
	"maps"
	"slices"

	"github.com/lifelinehq/lifeline/chat"
)

// match reports whether the playbook applies to the context and returns
// the finding it matched (the newest such; nil when it has no finding
// conditions and there is no finding at all).
func (pb *Playbook) match(c *Context, findings []chat.FindingSeen) (bool, *chat.FindingSeen) {
	if pb.Disabled {
		return false, nil
	}
	m := &pb.Match
	for _, a := range m.attrs {
		if !a.holds(c.Visitor.Attributes) {
			return false, nil
		}
	}
	if m.Identified != nil && *m.Identified != c.identified() {
		return false, nil
	}
	if m.Returning != nil && *m.Returning != c.returning() {
		return false, nil
	}
	if m.UnresolvedBefore != nil && *m.UnresolvedBefore != c.unresolvedBefore() {
		return false, nil
	}
	if len(m.rules) == 0 && len(m.signals) == 0 {
		if len(m.pages) > 0 && !anyTrailPage(m, c.Journey.Trail) {
			return false, nil
		}
		if len(findings) > 0 {
			return true, &findings[0]
		}
		return true, nil
	}
	for i := range findings {
		f := &findings[i]
		if len(m.rules) > 0 && !m.rules[f.Rule] {
			continue
		}
		if len(m.signals) > 0 && !m.signals[f.Signal] {
			continue
		}
		if len(m.pages) > 0 && !matchPage(m, f.Page) {
			continue
		}
		return true, f
	}
	return false, nil
}

func matchPage(m *Match, path string) bool {
	for _, p := range m.pages {
		if p.Match(path) {
			return true
		}
	}
	return false
}

func anyTrailPage(m *Match, trail []chat.PageVisit) bool {
	for _, pv := range trail {
		if matchPage(m, pv.Path) {
			return true
		}
	}
	return false
}

// Item is a filled suggestion or action, as the console shows it.
type Item struct {
	// ID is "playbook.item", unique on the site.
	ID       string `json:"id"`
	Playbook string `json:"playbook"`
	Title    string `json:"title"`
	// Kind is "reply" for a suggestion, else the action's kind.
	Kind string `json:"kind"`
	// Text is the filled reply or note; Label the action's button.
	Text  string `json:"text,omitempty"`
	Label string `json:"label,omitempty"`
	// URL is a link action's filled URL.
	URL string `json:"url,omitempty"`
	// Confirm is the question to ask before running an action.
	Confirm string `json:"confirm,omitempty"`
	// Tag and Target (team or agent) of tag and transfer actions.
	Tag    string `json:"tag,omitempty"`
	Target string `json:"target,omitempty"`
	// Reason is the finding the playbook matched, as the agent reads it.
	Reason      string  `json:"reason,omitempty"`
	Specificity int     `json:"specificity"`
	Score       float64 `json:"score"`
	// Missing lists unknown placeholders without a fallback; such an item
	// is hidden from agents and shown only in previews.
	Missing []string `json:"missing,omitempty"`

	action *Action
	params map[string]string
	find   *chat.FindingSeen
}

// Result is what assist offers for a context.
type Result struct {
	Suggestions []Item `json:"suggestions"`
	Actions     []Item `json:"actions"`
	// Hidden are items left out for missing values (previews only).
	Hidden []Item `json:"hidden,omitempty"`
	// Matched lists the playbooks that apply, best first.
	Matched []string `json:"matched"`
}

// Evaluate matches doc's playbooks against c and returns their filled
// suggestions and actions, best first. stats are the site's counters by
// item ID (nil at cold start); skip holds item IDs to leave out (marked
// unhelpful in this conversation).
func Evaluate(doc *Doc, c *Context, stats map[string]Stats, skip map[string]bool) Result {
	res := Result{Suggestions: []Item{}, Actions: []Item{}, Matched: []string{}}
	findings := c.findings()
	type matched struct {
		pb    *Playbook
		f     *chat.FindingSeen
		spec  int
		best  float64 // its best suggestion's score, or its specificity
		any   bool
		order int
	}
	var pbs []matched
	for i := range doc.Playbooks {
		pb := &doc.Playbooks[i]
		ok, f := pb.match(c, findings)
		if !ok {
			continue
		}
		pbs = append(pbs, matched{pb: pb, f: f, spec: pb.Match.Specificity(), best: float64(pb.Match.Specificity()), order: i})
	}
	for k := range pbs {
		m := &pbs[k]
		vals := c.values(m.f)
		reason := ""
		if m.f != nil {
			reason = m.f.Sentence
		}
		base := Item{Playbook: m.pb.ID, Title: m.pb.Title, Reason: reason, Specificity: m.spec, find: m.f}
		for i := range m.pb.Suggestions {
			s := &m.pb.Suggestions[i]
			it := base
			it.ID, it.Kind = m.pb.ID+"."+s.ID, "reply"
			if skip[it.ID] {
				continue
			}
			it.Text, it.Missing = s.tmpl.fill(vals, nil)
			it.Score = score(m.spec, stats[it.ID])
			if len(it.Missing) > 0 {
				res.Hidden = append(res.Hidden, it)
				continue
			}
			if !m.any || it.Score > m.best {
				m.best, m.any = it.Score, true
			}
			res.Suggestions = append(res.Suggestions, it)
		}
		for i := range m.pb.Actions {
			a := &m.pb.Actions[i]
			it := base
			it.ID, it.Kind, it.Label, it.action = m.pb.ID+"."+a.ID, a.Kind, a.Label, a
			if skip[it.ID] {
				continue
			}
			var miss []string
			add := func(t template, escape func(string) string) string {
				if t == nil {
					return ""
				}
				s, mm := t.fill(vals, escape)
				miss = append(miss, mm...)
				return s
			}
			it.URL = add(a.url, escapeURL)
			it.Text = add(a.text, nil)
			it.Tag = a.Tag
			it.Target = cmp.Or(a.Team, a.Agent)
			if a.confirm != nil {
				if q, mm := a.confirm.fill(vals, nil); len(mm) == 0 {
					it.Confirm = q
				}
			}
			if it.Confirm == "" {
				it.Confirm = a.Label + "?"
			}
			if len(a.params) > 0 {
				it.params = map[string]string{}
				for _, k := range slices.Sorted(maps.Keys(a.params)) {
					it.params[k] = add(a.params[k], nil)
				}
			}
			it.Missing = miss
			it.Score = score(m.spec, stats[it.ID])
			if len(miss) > 0 {
				res.Hidden = append(res.Hidden, it)
				continue
			}
			res.Actions = append(res.Actions, it)
		}
	}
	slices.SortStableFunc(pbs, func(a, b matched) int {
		return cmp.Or(cmp.Compare(b.best, a.best), cmp.Compare(a.order, b.order))
	})
	rank := map[string]int{}
	for i, m := range pbs {
		res.Matched = append(res.Matched, m.pb.ID)
		rank[m.pb.ID] = i
	}
	slices.SortStableFunc(res.Suggestions, func(a, b Item) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(rank[a.Playbook], rank[b.Playbook]))
	})
	// Actions follow their playbooks' rank, in the playbook's order.
	slices.SortStableFunc(res.Actions, func(a, b Item) int { return cmp.Compare(rank[a.Playbook], rank[b.Playbook]) })
	return res
}

// Stats are one item's counters on a site, summed over nodes.
type Stats struct {
	// Shown counts the conversations it was offered in; Used those where
	// the agent inserted it (or ran the action); Unhelpful those where the
	// agent marked it so. Yes and No count the visitors' answers to "Did
	// this solve it?" in conversations where it was used.
	Shown     int64 `json:"shown"`
	Used      int64 `json:"used"`
	Unhelpful int64 `json:"unhelpful"`
	Yes       int64 `json:"yes"`
	No        int64 `json:"no"`
	// Failed counts action runs that failed.
	Failed int64 `json:"failed,omitempty"`
}

// ResolutionRate is Yes / (Yes + No); 0 without answers.
func (s Stats) ResolutionRate() float64 {
	if n := s.Yes + s.No; n > 0 {
		return float64(s.Yes) / float64(n)
	}
	return 0
}

// UseRate is Used / Shown; 0 when never shown.
func (s Stats) UseRate() float64 {
	if s.Shown > 0 {
		return min(1, float64(s.Used)/float64(s.Shown))
	}
	return 0
}

// score ranks an item: its playbook's specificity, moved up by how often
// it led to "yes" and was used, down by "unhelpful". Rates are smoothed
// towards one half, so with no history (cold start) the score is the
// specificity:
//
//	specificity + 4·(resolution − ½) + 2·(use − ½) − 4·unhelpful
//	resolution = (yes+1)/(yes+no+2), use = (used+1)/(shown+2),
//	unhelpful = unhelpful/(shown+2)
func score(spec int, s Stats) float64 {
	res := float64(s.Yes+1) / float64(s.Yes+s.No+2)
	shown := max(s.Shown, s.Used, s.Unhelpful)
	use := float64(s.Used+1) / float64(shown+2)
	unhelpful := float64(s.Unhelpful) / float64(shown+2)
	v := float64(spec) + 4*(res-0.5) + 2*(use-0.5) - 4*unhelpful
	return float64(int64(v*100+0.5*sign(v))) / 100
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}
