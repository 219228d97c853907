package assist

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func mustParse(t *testing.T, data string) Doc {
	t.Helper()
	doc, err := Parse([]byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return doc
}

func TestDefaultsParse(t *testing.T) {
	doc, err := Parse(DefaultJSON())
	if err != nil {
		t.Fatalf("Parse(defaults) = %v", err)
	}
	for _, id := range []string{"card-declined", "coupon-rejected", "address-loop", "button-error", "retention"} {
		if !slices.ContainsFunc(doc.Playbooks, func(p Playbook) bool { return p.ID == id }) {
			t.Errorf("defaults lack the %s playbook", id)
		}
	}
}

func TestParseProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		want      []string // substrings, one problem each
	}{
		{"version", `{"version": 2, "playbooks": []}`, []string{"version: must be 1"}},
		{"unknown field", `{"version":1,"playbooks":[{"id":"a","title":"A","match":{"rulez":["x"]},"suggestions":[{"id":"s","text":"t"}]}]}`,
			[]string{`playbooks[0] "a": unknown field "rulez"`}},
		{"placeholder", `{"version":1,"playbooks":[{"id":"a","title":"A","match":{},"suggestions":[{"id":"s","text":"Hi {{visitor.nmae}}"}]}]}`,
			[]string{`playbooks[0] "a": suggestions[0] "s": text: unknown placeholder {{visitor.nmae}}`}},
		{"unclosed", `{"version":1,"playbooks":[{"id":"a","title":"A","match":{},"suggestions":[{"id":"s","text":"Hi {{visitor.name"}]}]}`,
			[]string{`text: unclosed {{`}},
		{"signal and page", `{"version":1,"playbooks":[{"id":"a","title":"A","match":{"signals":["nope"],"pages":["checkout"]},"suggestions":[{"id":"s","text":"x"}]}]}`,
			[]string{`match.signals: unknown signal "nope"`, `match.pages: pattern "checkout" must start with`}},
		{"attribute", `{"version":1,"playbooks":[{"id":"a","title":"A","match":{"attributes":{"cart_value":">=lots"}},"suggestions":[{"id":"s","text":"x"}]}]}`,
			[]string{`match.attributes.cart_value: ">=lots": >= needs a number`}},
		{"link scheme", `{"version":1,"playbooks":[{"id":"a","title":"A","match":{},"actions":[{"id":"l","kind":"link","label":"L","url":"{{attributes.url}}"}]}]}`,
			[]string{`actions[0] "l": url: must start with http:// or https://`}},
		{"webhook placeholders", `{"version":1,"playbooks":[{"id":"a","title":"A","match":{},"actions":[{"id":"w","kind":"webhook","label":"W","url":"https://x.example/{{visitor.id}}"}]}]}`,
			[]string{`actions[0] "w": url: must be a fixed URL`}},
		{"team", `{"version":1,"playbooks":[{"id":"a","title":"A","match":{},"actions":[{"id":"t","kind":"transfer","label":"T","team":"billing"}]}]}`,
			[]string{`actions[0] "t": team: no team "billing"`}},
		{"kind and duplicates", `{"version":1,"playbooks":[{"id":"a","title":"A","match":{},"suggestions":[{"id":"s","text":"x"},{"id":"s","text":"y"}],"actions":[{"id":"k","kind":"email","label":"K"}]},{"id":"a","title":"B","match":{},"suggestions":[{"id":"s","text":"x"}]}]}`,
			[]string{`suggestions[1] "s": id: used twice`, `actions[0] "k": kind: must be link, note, tag, transfer or webhook`, `playbooks[1] "a": id: used by another playbook`}},
		{"empty", `{"version":1,"playbooks":[{"id":"a","title":"A","match":{}}]}`, []string{`playbooks[0] "a": suggestions: a playbook needs a suggestion or an action`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.doc))
			ve, ok := err.(*ValidationError)
			if !ok {
				t.Fatalf("Parse = %v, want a ValidationError", err)
			}
			if len(ve.Problems) != len(tc.want) {
				t.Errorf("Parse problems = %q, want %d", ve.Problems, len(tc.want))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse problems = %q, want one containing %q", ve.Problems, w)
				}
			}
		})
	}
}

// ctx is a visitor identified as Ava on the Coffee Club plan, whose card
// was declined three times on /checkout.
func ctx() *Context {
	conv := chat.Conversation{ID: "c2", Ref: "LF-2", SiteKey: "demo", VisitorID: "v1", Status: chat.StatusActive, Cause: "card-declined", CreatedAt: now}
	return &Context{
		Site: chat.Site{Key: "demo", Name: "Demo shop"},
		Visitor: chat.Visitor{ID: "v1", SiteKey: "demo", ExternalID: "u1", Name: "Ava Lindqvist", Email: "ava@example.com",
			Attributes: map[string]string{"plan": "Coffee Club", "cart_value": "98.00"}, CreatedAt: now.Add(-time.Hour)},
		Journey: chat.VisitContext{
			Trail:    []chat.PageVisit{{Path: "/cart"}, {Path: "/checkout"}},
			Requests: []chat.RequestSeen{{Method: "POST", Path: "/api/pay", Status: 402, Count: 3}},
			Findings: []chat.FindingSeen{
				{Rule: "rage-click", Signal: "rage_click", Page: "/cart", Shadow: true},
				{Rule: "payment-failed", Signal: "request_failed", Page: "/checkout", Endpoint: "/api/pay", Status: 402, Count: 3, Sentence: "Payment refused (402) 3 times on /checkout"},
				{Rule: "card-declined", Signal: "report", Page: "/checkout", Count: 3, Message: "Card declined", Sentence: "Card declined 3 times on /checkout in 16 s"},
			},
		},
		Conversation: &conv,
		Agent:        &chat.Agent{ID: "a1", Name: "Ben Okafor", Email: "ben@example.com"},
		Now:          now,
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	yes, no := "true", "false"
	tests := []struct {
		name, match string
		edit        func(c *Context)
		want        bool
		finding     string // the rule of the matched finding
	}{
		{"empty matches with the newest finding", `{}`, nil, true, "card-declined"},
		{"rule", `{"rules":["payment-failed"]}`, nil, true, "payment-failed"},
		{"rule absent", `{"rules":["coupon-rejected"]}`, nil, false, ""},
		{"shadow findings do not count", `{"rules":["rage-click"]}`, nil, false, ""},
		{"signal", `{"signals":["request_failed"]}`, nil, true, "payment-failed"},
		{"rule and signal on one finding", `{"rules":["card-declined"],"signals":["request_failed"]}`, nil, false, ""},
		{"page of the finding", `{"signals":["report"],"pages":["/check*"]}`, nil, true, "card-declined"},
		{"page not of the finding", `{"signals":["report"],"pages":["/cart"]}`, nil, false, ""},
		{"pages alone match the trail", `{"pages":["/cart"]}`, nil, true, "card-declined"},
		{"pages alone, not visited", `{"pages":["/account/*"]}`, nil, false, ""},
		{"cause kept when the journey lost it", `{"rules":["card-declined"]}`, func(c *Context) { c.Journey.Findings = nil }, true, "card-declined"},
		{"attribute equals, any case", `{"attributes":{"plan":"coffee club"}}`, nil, true, "card-declined"},
		{"attribute one of", `{"attributes":{"plan":"free|Coffee Club"}}`, nil, true, "card-declined"},
		{"attribute differs", `{"attributes":{"plan":"free"}}`, nil, false, ""},
		{"attribute not", `{"attributes":{"plan":"!free"}}`, nil, true, "card-declined"},
		{"attribute set", `{"attributes":{"coupon":"*"}}`, nil, false, ""},
		{"number at least", `{"attributes":{"cart_value":">=50"}}`, nil, true, "card-declined"},
		{"number below", `{"attributes":{"cart_value":"<50"}}`, nil, false, ""},
		{"number of a missing attribute", `{"attributes":{"ltv":">0"}}`, nil, false, ""},
		{"identified", `{"identified":` + yes + `}`, nil, true, "card-declined"},
		{"anonymous", `{"identified":` + no + `}`, func(c *Context) { c.Visitor.Name, c.Visitor.Email, c.Visitor.ExternalID = "", "", "" }, true, "card-declined"},
		{"new visitor", `{"returning":` + no + `}`, nil, true, "card-declined"},
		{"returning by age", `{"returning":` + yes + `}`, func(c *Context) { c.Visitor.CreatedAt = now.Add(-48 * time.Hour) }, true, "card-declined"},
		{"returning by an earlier conversation", `{"returning":` + yes + `}`, func(c *Context) {
			c.Previous = []chat.Conversation{{ID: "c1", Status: chat.StatusResolved, Feedback: "yes", CreatedAt: now.Add(-time.Hour)}}
		}, true, "card-declined"},
		{"no unresolved conversation before", `{"unresolved_before":` + yes + `}`, func(c *Context) {
			c.Previous = []chat.Conversation{{ID: "c1", Status: chat.StatusResolved, Feedback: "yes", CreatedAt: now.Add(-time.Hour)}, *c.Conversation}
		}, false, ""},
		{"unresolved before: answered no", `{"unresolved_before":` + yes + `}`, func(c *Context) {
			c.Previous = []chat.Conversation{{ID: "c1", Status: chat.StatusResolved, Feedback: "no", CreatedAt: now.Add(-time.Hour)}}
		}, true, "card-declined"},
		{"the current conversation is not 'before'", `{"unresolved_before":` + yes + `}`, func(c *Context) { c.Previous = []chat.Conversation{*c.Conversation} }, false, ""},
		{"disabled", `{}`, func(c *Context) {}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			disabled := ""
			if tc.name == "disabled" {
				disabled = `"disabled":true,`
			}
			doc := mustParse(t, `{"version":1,"playbooks":[{"id":"p","title":"P",`+disabled+`"match":`+tc.match+`,"suggestions":[{"id":"s","text":"x"}]}]}`)
			c := ctx()
			if tc.edit != nil {
				tc.edit(c)
			}
			ok, f := doc.Playbooks[0].match(c, c.findings())
			if ok != tc.want {
				t.Fatalf("match(%s) = %v, want %v", tc.match, ok, tc.want)
			}
			got := ""
			if f != nil {
				got = f.Rule
			}
			if got != tc.finding {
				t.Errorf("match(%s) finding = %q, want %q", tc.match, got, tc.finding)
			}
		})
	}
}

func TestFill(t *testing.T) {
	t.Parallel()
	c := ctx()
	c.Visitor.Attributes["note"] = `<img src=x onerror="alert(1)"> & {{visitor.email}}`
	f := &c.Journey.Findings[1]
	tests := []struct {
		name, text string
		want       string
		missing    []string
	}{
		{"name", "Hi {{visitor.first_name}}!", "Hi Ava!", nil},
		{"spaces and full name", "{{ visitor.name }} / {{agent.first_name}}", "Ava Lindqvist / Ben", nil},
		{"finding evidence", "{{finding.endpoint}} answered {{finding.status}} {{finding.count}} times on {{finding.page}}", "/api/pay answered 402 3 times on /checkout", nil},
		{"latest request and page", "{{request.method}} {{request.path}} {{request.status}} on {{page}}", "POST /api/pay 402 on /checkout", nil},
		{"attribute", "your {{attributes.plan}} plan, €{{attributes.cart_value}}", "your Coffee Club plan, €98.00", nil},
		{"missing hides", "Your order {{attributes.order}} ships {{visitor.locale}}", "Your order  ships ", []string{"attributes.order", "visitor.locale"}},
		{"fallback", "Hi {{attributes.nickname | there}}, {{finding.field|}}ok", "Hi there, ok", nil},
		{"HTML stays text, never re-expanded", "Note: {{attributes.note}}", `Note: <img src=x onerror="alert(1)"> & {{visitor.email}}`, nil},
		{"conversation and site", "{{conversation.ref}} on {{site.name}}", "LF-2 on Demo shop", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tm, err := parseTemplate(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			got, missing := tm.fill(c.values(f), nil)
			if got != tc.want || !slices.Equal(missing, tc.missing) {
				t.Errorf("fill(%q) = %q, missing %q; want %q, missing %q", tc.text, got, missing, tc.want, tc.missing)
			}
		})
	}
}

func TestEvaluateHidesAndEscapes(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, `{"version":1,"playbooks":[{"id":"p","title":"Paying","match":{"rules":["card-declined"]},
		"suggestions":[
			{"id":"order","text":"Your order {{attributes.order}} is safe"},
			{"id":"hi","text":"Hi {{visitor.first_name}}, {{attributes.note}}"}],
		"actions":[
			{"id":"admin","kind":"link","label":"Open in admin","url":"https://admin.example.com/customers/{{visitor.external_id}}?q={{attributes.note}}"},
			{"id":"order-link","kind":"link","label":"Order","url":"https://admin.example.com/orders/{{attributes.order}}"},
			{"id":"pay","kind":"webhook","label":"Send payment link","url":"https://hooks.example.com/pay","confirm":"Send a link to {{visitor.email}}?"}]}]}`)
	c := ctx()
	c.Visitor.Attributes["note"] = `<b>VIP</b> & co/x`
	res := Evaluate(&doc, c, nil, nil)
	if len(res.Suggestions) != 1 || res.Suggestions[0].ID != "p.hi" {
		t.Fatalf("suggestions = %+v, want only p.hi (p.order lacks attributes.order)", res.Suggestions)
	}
	if got, want := res.Suggestions[0].Text, "Hi Ava, <b>VIP</b> & co/x"; got != want {
		t.Errorf("text = %q, want %q (plain text, unescaped: the console renders text)", got, want)
	}
	if res.Suggestions[0].Reason != "Card declined 3 times on /checkout in 16 s" {
		t.Errorf("reason = %q", res.Suggestions[0].Reason)
	}
	if len(res.Actions) != 2 {
		t.Fatalf("actions = %+v, want admin and pay", res.Actions)
	}
	if got, want := res.Actions[0].URL, "https://admin.example.com/customers/u1?q=%3Cb%3EVIP%3C%2Fb%3E%20%26%20co%2Fx"; got != want {
		t.Errorf("link = %q, want %q", got, want)
	}
	if res.Actions[1].URL != "" || res.Actions[1].Confirm != "Send a link to ava@example.com?" {
		t.Errorf("webhook item = %+v, want no URL and the filled confirmation", res.Actions[1])
	}
	var hidden []string
	for _, h := range res.Hidden {
		hidden = append(hidden, h.ID+":"+strings.Join(h.Missing, ","))
	}
	if want := []string{"p.order:attributes.order", "p.order-link:attributes.order"}; !slices.Equal(hidden, want) {
		t.Errorf("hidden = %q, want %q", hidden, want)
	}
	res = Evaluate(&doc, c, nil, map[string]bool{"p.hi": true})
	if len(res.Suggestions) != 0 {
		t.Errorf("a suggestion marked unhelpful is still offered: %+v", res.Suggestions)
	}
}

func TestRanking(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, `{"version":1,"playbooks":[
		{"id":"any","title":"Anything","match":{},"suggestions":[{"id":"s","text":"generic"}]},
		{"id":"pay","title":"Paying","match":{"signals":["report"]},"suggestions":[{"id":"a","text":"signal"}]},
		{"id":"card","title":"Card","match":{"rules":["card-declined"],"attributes":{"plan":"*"}},"suggestions":[{"id":"a","text":"first"},{"id":"b","text":"second"}],
		 "actions":[{"id":"t","kind":"tag","label":"T","tag":"x"}]}]}`)
	ids := func(r Result) []string {
		var out []string
		for _, it := range r.Suggestions {
			out = append(out, it.ID)
		}
		return out
	}
	c := ctx()

	// Cold start: by specificity (5, 2, 0), then the order in the playbook.
	res := Evaluate(&doc, c, nil, nil)
	if want := []string{"card.a", "card.b", "pay.a", "any.s"}; !slices.Equal(ids(res), want) {
		t.Errorf("cold start order = %q, want %q", ids(res), want)
	}
	if res.Suggestions[0].Score != 5 || res.Suggestions[2].Score != 2 {
		t.Errorf("cold scores = %v, %v; want the specificities 5 and 2", res.Suggestions[0].Score, res.Suggestions[2].Score)
	}
	if want := []string{"card", "pay", "any"}; !slices.Equal(res.Matched, want) {
		t.Errorf("matched = %q, want %q", res.Matched, want)
	}

	// card.b solved it every time it was used; card.a never did.
	stats := map[string]Stats{
		"card.a": {Shown: 10, Used: 5, No: 5},
		"card.b": {Shown: 10, Used: 8, Yes: 8},
	}
	res = Evaluate(&doc, c, stats, nil)
	if want := []string{"card.b", "card.a", "pay.a", "any.s"}; !slices.Equal(ids(res), want) {
		t.Errorf("order with history = %q, want %q", ids(res), want)
	}

	// History can lift a broad suggestion over a narrow one that fails.
	stats = map[string]Stats{
		"card.a": {Shown: 40, Used: 2, Unhelpful: 30, No: 2},
		"card.b": {Shown: 40, Used: 1, Unhelpful: 35, No: 1},
		"pay.a":  {Shown: 40, Used: 40, Yes: 40},
	}
	res = Evaluate(&doc, c, stats, nil)
	if got := ids(res); got[0] != "pay.a" {
		t.Errorf("order = %q, want pay.a first", got)
	}
	if res.Matched[0] != "pay" {
		t.Errorf("matched = %q, want the pay playbook first", res.Matched)
	}
}

func TestScore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    Stats
		want float64
	}{
		{Stats{}, 3},
		{Stats{Shown: 2, Used: 2, Yes: 2}, 3 + 4*(0.75-0.5) + 2*(0.75-0.5)},
		{Stats{Shown: 2, Used: 2, No: 2}, 3 + 4*(0.25-0.5) + 2*(0.75-0.5)},
		{Stats{Shown: 2, Unhelpful: 2}, 3 + 2*(0.25-0.5) - 4*0.5},
	}
	for _, tc := range tests {
		if got := score(3, tc.s); got != tc.want {
			t.Errorf("score(3, %+v) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
