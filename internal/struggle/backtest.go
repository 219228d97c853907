package struggle

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/detect"
	"github.com/lifelinehq/lifeline/detect/backtest"
	"github.com/lifelinehq/lifeline/detect/simulate"
)

// BacktestRequest asks for a backtest of a site's rules, or of a draft.
type BacktestRequest struct {
	// Rules is a draft ruleset; empty means the site's current rules.
	Rules json.RawMessage `json:"rules,omitempty"`
	// Source is "recorded" (this node's recordings of the site) or
	// "generated" (the seeded simulator). Defaults to "generated".
	Source string `json:"source,omitempty"`
	// Sessions is how many sessions to evaluate: 1 to 20,000, default 2,000.
	Sessions int `json:"sessions,omitempty"`
	// Seed picks the generated corpus. Defaults to 1.
	Seed uint64 `json:"seed,omitempty"`
	// Sweep adds the threshold sweep table.
	Sweep bool `json:"sweep,omitempty"`
}

// BacktestReport is the answer: the same report as `lifeline replay --json`.
type BacktestReport struct {
	Source string `json:"source"`
	backtest.Report
}

// Backtest runs the same evaluation as `lifeline replay` for a site.
func (s *Service) Backtest(ctx context.Context, siteKey string, req BacktestRequest) (BacktestReport, error) {
	n := req.Sessions
	if n == 0 {
		n = 2000
	}
	if n < 1 || n > 20000 {
		return BacktestReport{}, &ValidationError{Problems: []string{"sessions: must be between 1 and 20000"}}
	}
	raw := req.Rules
	if len(raw) == 0 || string(raw) == "null" {
		doc, err := s.rulesDoc(ctx, siteKey)
		if err != nil {
			return BacktestReport{}, err
		}
		raw = doc.Rules
	}
	rs, err := detect.ParseRuleset(raw)
	if err != nil {
		return BacktestReport{}, &ValidationError{Problems: []string{err.Error()}}
	}
	var sessions []backtest.Session
	switch req.Source {
	case "", "generated":
		req.Source = "generated"
		seed := req.Seed
		if seed == 0 {
			seed = 1
		}
		sessions = simulate.Generate(simulate.Config{Sessions: n, Seed: seed, Site: siteKey})
	case "recorded":
		if s.o.Recorder == nil {
			return BacktestReport{}, fmt.Errorf("%w: this node records no visits (start it with --record-sample)", chat.ErrNotFound)
		}
		sessions, err = s.o.Recorder.Sessions(ctx, siteKey, n)
		if err != nil {
			return BacktestReport{}, err
		}
	default:
		return BacktestReport{}, &ValidationError{Problems: []string{`source: must be "recorded" or "generated"`}}
	}
	rep, err := backtest.Run(rs, sessions, backtest.Options{Config: s.o.Engine})
	if err != nil {
		return BacktestReport{}, err
	}
	if !req.Sweep {
		rep.Sweep = nil
	}
	return BacktestReport{Source: req.Source, Report: rep}, nil
}
