package detect

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Finding is one rule firing on a visit: what was seen, how much it weighs,
// and how to explain it. Strings may share memory with the events that
// produced them; a Finding is safe to keep.
type Finding struct {
	// Visit is the visit the finding is about.
	Visit string
	// Rule is the ID of the rule that fired; Revision is its ruleset's
	// Revision.
	Rule     string
	Revision string
	// Signal is the rule's signal.
	Signal Signal
	// Weight is what the finding adds to the visit's score, after page
	// overrides.
	Weight float64
	// Shadow findings are reported but never count toward an offer.
	Shadow bool
	// Immediate findings trigger an offer at once.
	Immediate bool
	// Booster findings count only together with another signal.
	Booster bool
	// Offer is the customer-facing offer text chosen by the rule.
	Offer string
	// Evidence is what the finding rests on.
	Evidence Evidence

	say string
}

// Evidence is what a finding rests on. Fields that do not apply are zero.
type Evidence struct {
	// Count is the number of events that made the rule fire.
	Count int
	// First and Last are the times of the first and last of them.
	First, Last time.Time
	// Page is the page path the visitor was on.
	Page string
	// OnPage is the active, visible time on that page so far.
	OnPage time.Duration
	// Message is the redacted error or report message.
	Message string
	// Fingerprint is the error fingerprint.
	Fingerprint string
	// Method, Path and Status describe a failed request.
	Method, Path string
	Status       int
	// Selector is the clicked element.
	Selector string
	// Form and Field name a form and control.
	Form, Field string
	// Name is a track event's name.
	Name string
	// Other is another page involved (the page left for a quick back).
	Other string
	// Duration is a measured duration (a long task, the active dwell).
	Duration time.Duration
	// Dead reports that a rage-clicked element was also dead.
	Dead bool
}

// Sentence renders the finding as one plain sentence for an agent, such as
// "Card declined 3 times on /checkout in 40 s; 2 min on the page". It
// allocates, so call it only when the sentence is shown or stored.
func (f *Finding) Sentence() string {
	ev := &f.Evidence
	say := f.say
	if say == "" {
		say = "{signal} on {page}"
	}
	if ev.Count <= 1 {
		say = strings.ReplaceAll(say, " in {span}", "")
	}
	status := "a network error"
	if ev.Status != 0 {
		status = strconv.Itoa(ev.Status)
	}
	request := ""
	if ev.Path != "" {
		request = strings.TrimSpace(ev.Method + " " + ev.Path)
	}
	quoted := ""
	if ev.Message != "" {
		quoted = `: "` + ev.Message + `"`
	}
	page := ev.Page
	if page == "" {
		page = "an unknown page"
	}
	// Expand placeholders by hand: a strings.Replacer built per call cost
	// more than the rest of the node's detection path together.
	var b strings.Builder
	b.Grow(len(say) + 32)
	for rest := say; rest != ""; {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest[max(i, 0):], '}')
		if i < 0 || j < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		name := rest[i+1 : i+j]
		switch name {
		case "page":
			b.WriteString(page)
		case "count":
			b.WriteString(strconv.Itoa(ev.Count))
		case "times":
			b.WriteString(times(ev.Count))
		case "span":
			b.WriteString(HumanDuration(ev.Last.Sub(ev.First)))
		case "message":
			b.WriteString(ev.Message)
		case "request":
			b.WriteString(request)
		case "status":
			b.WriteString(status)
		case "selector":
			b.WriteString(or(ev.Selector, "an element"))
		case "form":
			b.WriteString(ev.Form)
		case "field":
			b.WriteString(ev.Field)
		case "name":
			b.WriteString(ev.Name)
		case "duration":
			b.WriteString(HumanDuration(ev.Duration))
		case "onpage":
			b.WriteString(HumanDuration(ev.OnPage))
		case "other":
			b.WriteString(or(ev.Other, "another page"))
		case "quoted":
			b.WriteString(quoted)
		case "signal":
			b.WriteString(string(f.Signal))
		default:
			b.WriteString(rest[i : i+j+1]) // not a placeholder: keep it
		}
		rest = rest[i+j+1:]
	}
	s := b.String()
	if f.Signal == RageClick && ev.Dead {
		s += " (nothing happened)"
	}
	if ev.OnPage >= 30*time.Second && f.Signal != Dwell {
		s += "; " + HumanDuration(ev.OnPage) + " on the page"
	}
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

// String returns the rule ID, weight and sentence, for logs and tests.
func (f Finding) String() string {
	flag := ""
	if f.Shadow {
		flag = " shadow"
	}
	if f.Immediate {
		flag += " immediate"
	}
	if f.Booster {
		flag += " booster"
	}
	return fmt.Sprintf("%s (%s, +%g%s): %s", f.Rule, f.Signal, f.Weight, flag, f.Sentence())
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return strconv.Itoa(n) + " times"
}

// HumanDuration writes d for people: "under a second", "40 s", "2 min",
// "3 h".
func HumanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "under a second"
	case d < 90*time.Second:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < 90*time.Minute:
		return strconv.Itoa(int((d+30*time.Second)/time.Minute)) + " min"
	}
	return strconv.Itoa(int((d+30*time.Minute)/time.Hour)) + " h"
}
