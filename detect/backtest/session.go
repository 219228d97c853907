// Package backtest evaluates a detect.Ruleset on recorded or simulated
// sessions with labelled struggle episodes, the way DETECTION.md "Judging a
// detector" asks: precision, recall, F1, PR-AUC, time to detect, offers per
// 1,000 visits and a threshold sweep, overall and per rule. It is pure: the
// caller reads and writes files.
package backtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lifelinehq/lifeline/detect"
)

// Outcome labels of a recorded visit.
const (
	OutcomeConverted        = "converted"
	OutcomeAbandoned        = "abandoned"
	OutcomeContactedSupport = "contacted_support"
	OutcomeBrowsed          = "browsed"
)

// Episode is a labelled struggle: the visitor began to struggle on Page at
// Onset. An alert within [Onset, Onset+120 s] detects it.
type Episode struct {
	// Page is the page path where the struggle began.
	Page string
	// Onset is the exact time the struggle began (the injected fault).
	Onset time.Time
	// Label names the kind of struggle, such as "card_declined".
	Label string
}

// Session is one recorded visit: its events in time order, the outcome and
// the struggle episodes it contains (none for a visit without struggle).
type Session struct {
	// Visit is the visit key; events get it as their Visit.
	Visit string
	// Site is the site key. Optional.
	Site string
	// Outcome is how the visit ended, such as "converted".
	Outcome string
	// Persona names the simulated persona, if any.
	Persona string
	// Episodes are the labelled struggles.
	Episodes []Episode
	// Events are the visit's behaviour events in time order.
	Events []detect.Event
}

type wireEpisode struct {
	Page  string `json:"page"`
	Onset int64  `json:"onset"`
	Label string `json:"label,omitempty"`
}

type wireSession struct {
	Visit    string            `json:"visit"`
	Site     string            `json:"site,omitempty"`
	Outcome  string            `json:"outcome,omitempty"`
	Persona  string            `json:"persona,omitempty"`
	Episodes []wireEpisode     `json:"episodes,omitempty"`
	Events   []json.RawMessage `json:"events"`
}

// MarshalJSON writes the session as one JSON object, the line format of a
// recording (see docs/detection.md): episode onsets in Unix ms, events in
// the widget's wire format.
func (s Session) MarshalJSON() ([]byte, error) {
	w := wireSession{Visit: s.Visit, Site: s.Site, Outcome: s.Outcome, Persona: s.Persona, Events: make([]json.RawMessage, 0, len(s.Events))}
	for _, e := range s.Episodes {
		w.Episodes = append(w.Episodes, wireEpisode{Page: e.Page, Onset: e.Onset.UnixMilli(), Label: e.Label})
	}
	for i, ev := range s.Events {
		b, err := ev.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("session %s: event %d: %w", s.Visit, i, err)
		}
		w.Events = append(w.Events, b)
	}
	return json.Marshal(w)
}

// DecodeSession decodes one line of a recording. Events that do not decode
// make it fail, naming the event.
func DecodeSession(line []byte) (Session, error) {
	var w wireSession
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return Session{}, fmt.Errorf("decode session: %w", err)
	}
	if w.Visit == "" {
		return Session{}, errors.New("decode session: missing \"visit\"")
	}
	s := Session{Visit: w.Visit, Site: w.Site, Outcome: w.Outcome, Persona: w.Persona}
	for i, e := range w.Episodes {
		if e.Onset <= 0 {
			return Session{}, fmt.Errorf("decode session %s: episodes[%d]: missing \"onset\"", w.Visit, i)
		}
		s.Episodes = append(s.Episodes, Episode{Page: e.Page, Onset: time.UnixMilli(e.Onset), Label: e.Label})
	}
	evs, err := detect.DecodeBatch(w.Events)
	if err != nil {
		return Session{}, fmt.Errorf("decode session %s: %w", w.Visit, err)
	}
	for i := range evs {
		evs[i].Visit, evs[i].Site = s.Visit, s.Site
	}
	s.Events = evs
	return s, nil
}
