package detect

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultRuleset(t *testing.T) {
	rs := DefaultRuleset()
	if rs.Threshold != 8 || rs.MaxOffersPerVisit != 2 || len(rs.Rules) < 10 {
		t.Fatalf("DefaultRuleset = threshold %g, max offers %d, %d rules", rs.Threshold, rs.MaxOffersPerVisit, len(rs.Rules))
	}
	for _, r := range rs.Rules {
		if r.Count == 0 || r.Window == 0 || r.Weight == 0 || r.Alone == nil || r.Say == "" {
			t.Errorf("rule %s: defaults not filled: %+v", r.ID, r)
		}
	}
	// The embedded JSON parses to the same thing twice.
	again, err := ParseRuleset(DefaultRulesetJSON())
	if err != nil || len(again.Rules) != len(rs.Rules) {
		t.Fatalf("ParseRuleset(DefaultRulesetJSON()) = %d rules, %v", len(again.Rules), err)
	}
}

func TestParseRulesetErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string // substrings of the error
	}{
		{"not JSON", `{`, []string{"unexpected EOF"}},
		{"unknown top field", `{"version":1,"rules":[],"treshold":3}`, []string{`unknown field "treshold"`}},
		{"version", `{"version":2,"rules":[]}`, []string{"version: must be 1"}},
		{"threshold", `{"version":1,"threshold":-1,"rules":[]}`, []string{"threshold: must be between"}},
		{"half life", `{"version":1,"half_life":"soon","rules":[]}`, []string{"half_life: must be a duration"}},
		{"window", `{"version":1,"rules":[{"id":"x","signal":"report"},{"id":"y","signal":"report"},{"id":"card-declined","signal":"report","window":"2h"}]}`,
			[]string{`rules[2] "card-declined": window: must be between 1s and 1h`}},
		{"bad window text", `{"version":1,"rules":[{"id":"a","signal":"report","window":"5 minutes"}]}`, []string{`rules[0] "a": window: must be between 1s and 1h`}},
		{"many problems at once", `{"version":1,"rules":[{"id":"A b","signal":"nope"},{"id":"ok","signal":"report","count":99,"weight":500,"page":"checkout"}]}`,
			[]string{`rules[0] "A b": id:`, `rules[0] "A b": signal: unknown signal "nope"`, `rules[1] "ok": count: must be between 1 and 16`, `rules[1] "ok": weight:`, `rules[1] "ok": page:`}},
		{"duplicate id", `{"version":1,"rules":[{"id":"a","signal":"report"},{"id":"a","signal":"report"}]}`, []string{`rules[1] "a": id: duplicates rules[0]`}},
		{"missing signal", `{"version":1,"rules":[{"id":"a"}]}`, []string{`rules[0] "a": signal: missing`}},
		{"wrong type", `{"version":1,"rules":[{"id":"a","signal":"report","count":"3"}]}`, []string{`rules[0] "a": count: must be a JSON number`}},
		{"unknown rule field", `{"version":1,"rules":[{"id":"a","signal":"report","windw":"1m"}]}`, []string{`rules[0] "a": json: unknown field "windw"`}},
		{"status", `{"version":1,"rules":[{"id":"a","signal":"request_failed","match":{"status":"4xy"}}]}`, []string{`rules[0] "a": match.status:`}},
		{"template", `{"version":1,"rules":[{"id":"a","signal":"report","say":"Oops {nope}"}]}`, []string{`rules[0] "a": say: unknown placeholder {nope}`}},
		{"track needs name", `{"version":1,"rules":[{"id":"a","signal":"track"}]}`, []string{`rules[0] "a": match.name:`}},
		{"page rule", `{"version":1,"rules":[{"id":"a","signal":"report"}],"pages":[{"page":"/x","weights":{"b":3},"signals":["zzz"]}]}`,
			[]string{`pages[0] "/x": weights: "b" is neither`, `pages[0] "/x": signals: "zzz" is neither`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRuleset([]byte(tt.json))
			if err == nil {
				t.Fatalf("ParseRuleset(%s) = nil error, want %q", tt.json, tt.want)
			}
			if !errors.Is(err, ErrRuleset) {
				t.Errorf("ParseRuleset error %v does not wrap ErrRuleset", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseRuleset error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseRulesetDefaults(t *testing.T) {
	rs, err := ParseRuleset([]byte(`{"version":1,"rules":[{"id":"r","signal":"rage_click"},{"id":"c","signal":"intent_page","page":"/cancel"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if rs.Threshold != 8 || rs.HalfLife != Duration(60e9) || rs.MaxOffersPerVisit != 2 {
		t.Errorf("ruleset defaults = %g %v %d", rs.Threshold, rs.HalfLife, rs.MaxOffersPerVisit)
	}
	r := rs.Rules[0]
	if r.Count != 3 || r.Weight != 4 || *r.DeadBonus != 2 || !*r.Alone {
		t.Errorf("rage_click defaults = count %d weight %g bonus %g alone %v", r.Count, r.Weight, *r.DeadBonus, *r.Alone)
	}
	if *rs.Rules[1].Alone {
		t.Error("intent_page defaults to alone, want a booster")
	}
}
