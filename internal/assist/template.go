package assist

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

// template is a parsed text with placeholders: literal and placeholder
// parts alternate. Values are inserted as plain text, never re-expanded.
type template []part

type part struct {
	lit      string
	name     string // placeholder name; empty for a literal
	fallback string
	hasFall  bool
}

// placeholders lists every name a template may use besides
// attributes.<name>.
var placeholders = map[string]bool{
	"visitor.name": true, "visitor.first_name": true, "visitor.email": true, "visitor.external_id": true,
	"visitor.id": true, "visitor.locale": true, "visitor.device": true,
	"finding.rule": true, "finding.sentence": true, "finding.signal": true, "finding.page": true,
	"finding.count": true, "finding.endpoint": true, "finding.status": true, "finding.message": true,
	"finding.field": true, "finding.selector": true,
	"request.method": true, "request.path": true, "request.status": true,
	"error.message": true, "page": true,
	"conversation.id": true, "conversation.ref": true,
	"agent.name": true, "agent.first_name": true, "agent.email": true,
	"site.key": true, "site.name": true,
}

// parseTemplate parses "Hi {{visitor.first_name | there}}": a placeholder
// is a name from the list in docs/assist.md, optionally followed by "|" and
// a fallback used when the value is unknown.
func parseTemplate(s string) (template, error) {
	var t template
	for rest := s; rest != ""; {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t = append(t, part{lit: rest})
			break
		}
		if i > 0 {
			t = append(t, part{lit: rest[:i]})
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("unclosed {{")
		}
		inner := rest[i+2 : i+j]
		name, fb, hasFall := strings.Cut(inner, "|")
		name = strings.TrimSpace(name)
		if !validName(name) {
			return nil, fmt.Errorf("unknown placeholder {{%s}}", name)
		}
		if strings.Contains(fb, "{{") {
			return nil, fmt.Errorf("a fallback cannot hold a placeholder")
		}
		t = append(t, part{name: name, fallback: strings.TrimSpace(fb), hasFall: hasFall})
		rest = rest[i+j+2:]
	}
	return t, nil
}

func validName(name string) bool {
	if k, ok := strings.CutPrefix(name, "attributes."); ok {
		return attrKeyRE.MatchString(k)
	}
	return placeholders[name]
}

// Values answers placeholders from known context. An empty value is
// unknown.
type Values func(name string) string

// fill expands t with values; escape, if set, is applied to each value
// (links). It returns the names that had neither a value nor a fallback:
// when any is missing, the text must not be shown.
func (t template) fill(values Values, escape func(string) string) (string, []string) {
	var b strings.Builder
	var missing []string
	for _, p := range t {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		v := strings.TrimSpace(values(p.name))
		if v == "" {
			if !p.hasFall {
				missing = append(missing, p.name)
				continue
			}
			v = p.fallback
		}
		if escape != nil {
			v = escape(v)
		}
		b.WriteString(v)
	}
	return b.String(), missing
}

// escapeURL percent-encodes everything but unreserved characters, so a
// value stays one piece of a path or query.
func escapeURL(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// Context is what assist knows of a conversation: it matches playbooks
// and fills placeholders, and never holds anything not in it.
type Context struct {
	Site    chat.Site
	Visitor chat.Visitor
	// Journey is the visitor's freshest journey (the detector's or stored).
	Journey chat.VisitContext
	// Conversation is the one being helped, if any (a preview may have none).
	Conversation *chat.Conversation
	// Agent is who asks.
	Agent *chat.Agent
	// Previous are the visitor's other conversations.
	Previous []chat.Conversation
	Now      time.Time
}

// findings returns the non-shadow findings, newest first, with the
// conversation's cause added when the journey lost it.
func (c *Context) findings() []chat.FindingSeen {
	var out []chat.FindingSeen
	causeSeen := false
	for i := len(c.Journey.Findings) - 1; i >= 0; i-- {
		f := c.Journey.Findings[i]
		if f.Shadow {
			continue
		}
		if c.Conversation != nil && f.Rule == c.Conversation.Cause {
			causeSeen = true
		}
		out = append(out, f)
	}
	if cv := c.Conversation; cv != nil && cv.Cause != "" && !causeSeen {
		out = append(out, chat.FindingSeen{Rule: cv.Cause, Sentence: cv.Explanation})
	}
	return out
}

// identified reports whether the visitor called identify.
func (c *Context) identified() bool {
	return c.Visitor.ExternalID != "" || c.Visitor.Email != "" || c.Visitor.Name != ""
}

// returning: first seen a day or more ago, or with an earlier conversation.
func (c *Context) returning() bool {
	if !c.Visitor.CreatedAt.IsZero() && c.Now.Sub(c.Visitor.CreatedAt) >= 24*time.Hour {
		return true
	}
	return len(c.earlier()) > 0
}

// earlier returns the visitor's conversations other than the current one
// and created before it.
func (c *Context) earlier() []chat.Conversation {
	var out []chat.Conversation
	for _, p := range c.Previous {
		if c.Conversation != nil && (p.ID == c.Conversation.ID || p.CreatedAt.After(c.Conversation.CreatedAt)) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// unresolvedBefore: an earlier conversation still open or answered "no".
func (c *Context) unresolvedBefore() bool {
	for _, p := range c.earlier() {
		if p.Open() || p.Feedback == "no" {
			return true
		}
	}
	return false
}

// values returns the placeholder values for a matched finding (nil when
// the playbook matched without one).
func (c *Context) values(f *chat.FindingSeen) Values {
	return func(name string) string {
		if k, ok := strings.CutPrefix(name, "attributes."); ok {
			return c.Visitor.Attributes[k]
		}
		if k, ok := strings.CutPrefix(name, "finding."); ok {
			if f == nil {
				return ""
			}
			switch k {
			case "rule":
				return f.Rule
			case "sentence":
				return f.Sentence
			case "signal":
				return f.Signal
			case "page":
				return f.Page
			case "count":
				return itoa(f.Count)
			case "endpoint":
				return f.Endpoint
			case "status":
				return itoa(f.Status)
			case "message":
				return f.Message
			case "field":
				return f.Field
			case "selector":
				return f.Selector
			}
			return ""
		}
		v := &c.Visitor
		switch name {
		case "visitor.name":
			return v.Name
		case "visitor.first_name":
			return firstName(v.Name)
		case "visitor.email":
			return v.Email
		case "visitor.external_id":
			return v.ExternalID
		case "visitor.id":
			return v.ID
		case "visitor.locale":
			return v.Locale
		case "visitor.device":
			return v.Device
		case "request.method", "request.path", "request.status":
			if n := len(c.Journey.Requests); n > 0 {
				r := c.Journey.Requests[n-1]
				return map[string]string{"request.method": r.Method, "request.path": r.Path, "request.status": itoa(r.Status)}[name]
			}
		case "error.message":
			if n := len(c.Journey.Errors); n > 0 {
				return c.Journey.Errors[n-1].Msg
			}
		case "page":
			if n := len(c.Journey.Trail); n > 0 {
				return c.Journey.Trail[n-1].Path
			}
		case "conversation.id", "conversation.ref":
			if c.Conversation != nil {
				if name == "conversation.id" {
					return c.Conversation.ID
				}
				return c.Conversation.Ref
			}
		case "agent.name", "agent.first_name", "agent.email":
			if c.Agent != nil {
				switch name {
				case "agent.name":
					return c.Agent.Name
				case "agent.first_name":
					return firstName(c.Agent.Name)
				default:
					return c.Agent.Email
				}
			}
		case "site.key":
			return c.Site.Key
		case "site.name":
			return c.Site.Name
		}
		return ""
	}
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func firstName(name string) string {
	f, _, _ := strings.Cut(strings.TrimSpace(name), " ")
	return f
}
