package struggle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/detect"
)

// Store keys of a site's detector settings.
func rulesKey(site string) string    { return "detector/rules/" + site }
func policyKey(site string) string   { return "detector/policy/" + site }
func countersKey(site string) string { return "detector/" + site }

// Counter fields per rule.
var counterFields = []string{"fired", "offered", "accepted", "declined", "resolved", "holdout"}

// site is one site's detection state: its engines, rules, policy and
// unflushed counters.
//
// A site's visitors are spread over siteShards engines, each behind its
// own lock, so batches of different visitors of one site run at once
// rather than queueing for a single lock (every visitor of a large site
// would otherwise share it). The engine keeps no state across visits, so
// which shard a visit lives in changes no verdict.
type site struct {
	key    string
	shards [siteShards]shard

	// policy is the offer policy, swapped whole so that a batch reads it
	// without a lock.
	policy atomic.Pointer[chat.OfferPolicy]

	mu      sync.Mutex       // guards raw and pending
	raw     []byte           // the stored rules document, to notice changes
	pending map[string]int64 // "rule/field" → delta not yet in the store
}

// shard is one engine of a site and the visits in it. mu guards the
// engine and the fields of its visits that a batch changes.
type shard struct {
	mu     sync.Mutex
	engine *detect.Engine
}

// siteShards is how many engines a site's visitors are spread over.
const siteShards = 16

// shardOf returns the shard a visitor's state lives in (FNV-1a of the ID).
func (st *site) shardOf(visitorID string) *shard {
	h := uint32(2166136261)
	for i := 0; i < len(visitorID); i++ {
		h = (h ^ uint32(visitorID[i])) * 16777619
	}
	return &st.shards[h%siteShards]
}

// setRuleset swaps rs into every engine of the site, keeping visit state.
func (st *site) setRuleset(rs detect.Ruleset) error {
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		err := sh.engine.SetRuleset(rs)
		sh.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// ruleset returns the rules the site's engines run.
func (st *site) ruleset() detect.Ruleset {
	sh := &st.shards[0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.engine.Ruleset()
}

// RulesDoc is a site's rules as stored and served.
type RulesDoc struct {
	Rules     json.RawMessage `json:"rules"`
	Revision  string          `json:"revision"`
	UpdatedAt time.Time       `json:"updated_at,omitzero"`
	UpdatedBy string          `json:"updated_by,omitempty"`
}

func (s *Service) loadSite(ctx context.Context, key string) (*site, error) {
	doc, err := s.rulesDoc(ctx, key)
	if err != nil {
		return nil, err
	}
	rs, err := detect.ParseRuleset(doc.Rules)
	if err != nil {
		// A stored ruleset was valid when saved; a newer binary may have
		// tightened validation. Run the defaults rather than nothing.
		s.o.Logger.Error("stored detector rules are invalid; using the defaults", "site", key, "err", err)
		rs = detect.DefaultRuleset()
	}
	st := &site{key: key, raw: doc.Rules, pending: map[string]int64{}}
	cfg := s.o.Engine
	if cfg.MaxVisits <= 0 {
		cfg.MaxVisits = detect.DefaultMaxVisits
	}
	cfg.MaxVisits = (cfg.MaxVisits + siteShards - 1) / siteShards
	for i := range st.shards {
		if st.shards[i].engine, err = detect.NewEngineRuleset(cfg, rs); err != nil {
			return nil, err
		}
	}
	p, err := s.Policy(ctx, key)
	if err != nil {
		return nil, err
	}
	st.policy.Store(&p)
	return st, nil
}

// rulesDoc reads the site's stored rules, or the defaults.
func (s *Service) rulesDoc(ctx context.Context, key string) (RulesDoc, error) {
	var doc RulesDoc
	ok, err := chat.MetaJSON(ctx, s.o.Store, rulesKey(key), &doc)
	if err != nil {
		return RulesDoc{}, err
	}
	if !ok {
		rs := detect.DefaultRuleset()
		return RulesDoc{Rules: detect.DefaultRulesetJSON(), Revision: rs.Revision}, nil
	}
	return doc, nil
}

// Rules returns a site's rules document.
func (s *Service) Rules(ctx context.Context, siteKey string) (RulesDoc, error) {
	return s.rulesDoc(ctx, siteKey)
}

// ValidationError lists what is wrong with a rules document, one problem
// per line, each naming the rule and field.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string { return strings.Join(e.Problems, "\n") }

// Invalid marks the error as the caller's fault for the HTTP layer.
func (e *ValidationError) Invalid() bool { return true }

// SetRules validates data, stores it and applies it to this node's engine
// without dropping visit state; other nodes pick it up on their next
// reload. The change is audited.
func (s *Service) SetRules(ctx context.Context, siteKey string, data []byte, by chat.Agent) (RulesDoc, error) {
	if len(data) > detect.MaxRulesetBytes {
		return RulesDoc{}, &ValidationError{Problems: []string{fmt.Sprintf("rules: larger than %d bytes", detect.MaxRulesetBytes)}}
	}
	rs, err := detect.ParseRuleset(data)
	if err != nil {
		return RulesDoc{}, &ValidationError{Problems: strings.Split(strings.TrimPrefix(err.Error(), "detect: "), "\n")}
	}
	if err := rs.Validate(s.o.Engine.Signals); err != nil {
		return RulesDoc{}, &ValidationError{Problems: strings.Split(err.Error(), "\n")}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return RulesDoc{}, &ValidationError{Problems: []string{err.Error()}}
	}
	doc := RulesDoc{Rules: compact.Bytes(), Revision: rs.Revision, UpdatedAt: s.o.Now().UTC(), UpdatedBy: by.Email}
	stored, err := json.Marshal(doc)
	if err != nil {
		return RulesDoc{}, err
	}
	if err := s.o.Store.PutMeta(ctx, rulesKey(siteKey), stored); err != nil {
		return RulesDoc{}, err
	}
	if st, err := s.siteFor(ctx, siteKey); err == nil {
		if err := st.setRuleset(rs); err != nil {
			return RulesDoc{}, err
		}
		st.mu.Lock()
		st.raw = doc.Rules
		st.mu.Unlock()
	}
	s.audit(ctx, siteKey, by, "rules.update", fmt.Sprintf("%d rules, threshold %g, revision %q", len(rs.Rules), rs.Threshold, rs.Revision))
	return doc, nil
}

// Policy returns a site's offer policy (defaults when none is stored).
func (s *Service) Policy(ctx context.Context, siteKey string) (chat.OfferPolicy, error) {
	var p chat.OfferPolicy
	if _, err := chat.MetaJSON(ctx, s.o.Store, policyKey(siteKey), &p); err != nil {
		return chat.OfferPolicy{}, err
	}
	return p, nil
}

// SetPolicy validates and stores a site's offer policy.
func (s *Service) SetPolicy(ctx context.Context, siteKey string, p chat.OfferPolicy, by chat.Agent) error {
	if err := p.Validate(); err != nil {
		return &ValidationError{Problems: []string{strings.TrimPrefix(err.Error(), chat.ErrInvalid.Error()+": ")}}
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := s.o.Store.PutMeta(ctx, policyKey(siteKey), data); err != nil {
		return err
	}
	if st, err := s.siteFor(ctx, siteKey); err == nil {
		st.policy.Store(&p)
	}
	s.audit(ctx, siteKey, by, "policy.update", string(data))
	return nil
}

func (s *Service) audit(ctx context.Context, siteKey string, by chat.Agent, action, detail string) {
	s.o.Audit.Record(ctx, by, siteKey, action, "", detail)
}

// count adds one to each of the counters named; an empty rule counts
// nothing.
func (st *site) count(keys ...counted) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, k := range keys {
		if k.rule != "" {
			st.pending[k.rule+"/"+k.field]++
		}
	}
}

// counted is one increment of a rule's counter field.
type counted struct{ rule, field string }

// flush adds the pending deltas to the store; on failure they are kept
// for the next flush.
func (st *site) flush(ctx context.Context, store chat.Store, log *slog.Logger) {
	st.mu.Lock()
	if len(st.pending) == 0 {
		st.mu.Unlock()
		return
	}
	deltas := st.pending
	st.pending = map[string]int64{}
	st.mu.Unlock()
	if err := store.AddCounters(ctx, countersKey(st.key), deltas); err != nil {
		log.Warn("flush detector counters", "site", st.key, "err", err)
		st.mu.Lock()
		for k, d := range deltas {
			st.pending[k] += d
		}
		st.mu.Unlock()
	}
}

// reload applies rules and policies changed by other nodes.
func (s *Service) reload(ctx context.Context) {
	s.mu.Lock()
	sites := make([]*site, 0, len(s.sites))
	for _, st := range s.sites {
		sites = append(sites, st)
	}
	s.mu.Unlock()
	for _, st := range sites {
		doc, err := s.rulesDoc(ctx, st.key)
		if err != nil {
			continue
		}
		policy, err := s.Policy(ctx, st.key)
		if err != nil {
			continue
		}
		st.policy.Store(&policy)
		st.mu.Lock()
		changed := !bytes.Equal(doc.Rules, st.raw)
		st.mu.Unlock()
		if !changed {
			continue
		}
		if rs, err := detect.ParseRuleset(doc.Rules); err == nil && st.setRuleset(rs) == nil {
			st.mu.Lock()
			st.raw = doc.Rules
			st.mu.Unlock()
			s.o.Logger.Info("detector rules reloaded", "site", st.key, "revision", rs.Revision)
		}
	}
}

// RuleCounters are one rule's live counters.
type RuleCounters struct {
	Rule     string `json:"rule"`
	Signal   string `json:"signal"`
	Shadow   bool   `json:"shadow"`
	Fired    int64  `json:"fired"`
	Offered  int64  `json:"offered"`
	Accepted int64  `json:"accepted"`
	Declined int64  `json:"declined"`
	Resolved int64  `json:"resolved"`
	Holdout  int64  `json:"holdout"`
	// AcceptRate is accepted / (accepted + declined), 0 when unanswered.
	AcceptRate float64 `json:"accept_rate"`
}

// Counters returns every rule's counters across all nodes, including this
// node's unflushed deltas, in ruleset order; rules no longer in the
// ruleset but counted before come last.
func (s *Service) Counters(ctx context.Context, siteKey string) ([]RuleCounters, error) {
	st, err := s.siteFor(ctx, siteKey)
	if err != nil {
		return nil, err
	}
	totals, err := s.o.Store.Counters(ctx, countersKey(siteKey))
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	for k, d := range st.pending {
		totals[k] += d
	}
	st.mu.Unlock()
	rs := st.ruleset()

	var out []RuleCounters
	seen := map[string]bool{}
	row := func(id, signal string, shadow bool) {
		seen[id] = true
		rc := RuleCounters{Rule: id, Signal: signal, Shadow: shadow}
		vals := []*int64{&rc.Fired, &rc.Offered, &rc.Accepted, &rc.Declined, &rc.Resolved, &rc.Holdout}
		for i, f := range counterFields {
			*vals[i] = totals[id+"/"+f]
		}
		if n := rc.Accepted + rc.Declined; n > 0 {
			rc.AcceptRate = float64(rc.Accepted) / float64(n)
		}
		out = append(out, rc)
	}
	for _, r := range rs.Rules {
		row(r.ID, string(r.Signal), r.Shadow)
	}
	for k := range totals {
		id, _, _ := strings.Cut(k, "/")
		if !seen[id] {
			row(id, "", false)
		}
	}
	return out, nil
}
