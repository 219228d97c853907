package chat

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// OfferPolicy decides whether a visitor whose struggle crossed the site's
// threshold is offered help, and how. Defaults follow DETECTION.md: at most
// one offer per page view and two per visit, quiet for the rest of the visit
// after "no thanks", chat only when an agent can answer, else leave a
// message. A zero OfferPolicy uses those defaults.
type OfferPolicy struct {
	// MaxPerVisit caps offers in one visit. Defaults to 2.
	MaxPerVisit int `json:"max_per_visit,omitempty"`
	// MaxPerPage caps offers in one page view. Defaults to 1.
	MaxPerPage int `json:"max_per_page,omitempty"`
	// DeclineQuiet is how long a "no thanks" silences offers. Zero means the
	// rest of the visit.
	DeclineQuiet Duration `json:"decline_quiet,omitempty"`
	// Holdout is the share (0 to 1) of flagged visitors who are recorded but
	// never offered, to measure lift against a randomised control.
	Holdout float64 `json:"holdout,omitempty"`
	// Hours are when agents answer; outside them offers become "leave a
	// message". Nil means always.
	Hours *BusinessHours `json:"hours,omitempty"`
}

// Validate reports the first problem with the policy.
func (p OfferPolicy) Validate() error {
	if p.MaxPerVisit < 0 || p.MaxPerVisit > 20 || p.MaxPerPage < 0 || p.MaxPerPage > 20 {
		return fmt.Errorf("%w: offer caps must be between 0 and 20", ErrInvalid)
	}
	if p.Holdout < 0 || p.Holdout > 0.5 {
		return fmt.Errorf("%w: holdout must be between 0 and 0.5", ErrInvalid)
	}
	if p.Hours != nil {
		return p.Hours.Validate()
	}
	return nil
}

// Duration is a time.Duration written as "30s" or "10m" in JSON.
type Duration time.Duration

// MarshalText writes the duration as Go duration text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses Go duration text.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%w: duration %q: %v", ErrInvalid, b, err)
	}
	*d = Duration(v)
	return nil
}

// BusinessHours is a weekly schedule in one time zone.
type BusinessHours struct {
	// TimeZone is an IANA name such as "Europe/Paris". Defaults to UTC.
	TimeZone string `json:"time_zone,omitempty"`
	// Days maps "mon".."sun" to opening times "09:00-17:30". A missing day
	// is closed.
	Days map[string]string `json:"days"`
}

var weekdays = [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Validate checks the time zone and every day's span.
func (b *BusinessHours) Validate() error {
	if _, err := time.LoadLocation(b.TimeZone); err != nil {
		return fmt.Errorf("%w: time zone %q: %v", ErrInvalid, b.TimeZone, err)
	}
	for day, span := range b.Days {
		known := false
		for _, w := range weekdays {
			known = known || w == day
		}
		if !known {
			return fmt.Errorf("%w: business hours: unknown day %q (use mon..sun)", ErrInvalid, day)
		}
		if _, _, err := parseSpan(span); err != nil {
			return fmt.Errorf("%w: business hours %s: %v", ErrInvalid, day, err)
		}
	}
	return nil
}

// Open reports whether t falls in the schedule.
func (b *BusinessHours) Open(t time.Time) bool {
	loc, err := time.LoadLocation(b.TimeZone)
	if err != nil {
		return false
	}
	t = t.In(loc)
	span, ok := b.Days[weekdays[t.Weekday()]]
	if !ok {
		return false
	}
	from, to, err := parseSpan(span)
	if err != nil {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	return m >= from && m < to
}

// parseSpan parses "09:00-17:30" into minutes of the day.
func parseSpan(s string) (from, to int, err error) {
	var h1, m1, h2, m2 int
	if n, _ := fmt.Sscanf(s, "%d:%d-%d:%d", &h1, &m1, &h2, &m2); n != 4 ||
		h1 < 0 || h1 > 24 || h2 < 0 || h2 > 24 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59 {
		return 0, 0, fmt.Errorf("%q is not like 09:00-17:30", s)
	}
	from, to = h1*60+m1, h2*60+m2
	if from >= to || to > 24*60 {
		return 0, 0, fmt.Errorf("%q closes before it opens", s)
	}
	return from, to, nil
}

// OfferState is what the policy remembers about one visit.
type OfferState struct {
	Offers     int       // offers shown this visit
	PageOffers int       // offers shown on the current page view
	Page       string    // the current page view's path
	DeclinedAt time.Time // last "no thanks"
}

// NewPage starts a new page view.
func (s *OfferState) NewPage(path string) {
	if path != s.Page {
		s.Page, s.PageOffers = path, 0
	}
}

// Decision is the policy's answer.
type Decision struct {
	// Offer is true when the visitor should see an offer now.
	Offer bool
	// Mode is "chat" when an agent can answer now, else "message".
	Mode string
	// Holdout is true when the visitor would have been offered but is in the
	// control group: record the finding, show nothing.
	Holdout bool
	// Reason says why not, for logs and counters.
	Reason string
}

// Decide answers for a visit whose score crossed the threshold at now.
// agentsAvailable says whether an agent can answer soon. It does not
// change st; call Shown when the offer goes out.
func (p OfferPolicy) Decide(st *OfferState, visitorID string, now time.Time, agentsAvailable bool) Decision {
	maxVisit, maxPage := p.MaxPerVisit, p.MaxPerPage
	if maxVisit == 0 {
		maxVisit = 2
	}
	if maxPage == 0 {
		maxPage = 1
	}
	switch {
	case !st.DeclinedAt.IsZero() && (p.DeclineQuiet == 0 || now.Sub(st.DeclinedAt) < time.Duration(p.DeclineQuiet)):
		return Decision{Reason: "declined"}
	case st.Offers >= maxVisit:
		return Decision{Reason: "visit cap"}
	case st.PageOffers >= maxPage:
		return Decision{Reason: "page cap"}
	case p.Holdout > 0 && inHoldout(visitorID, p.Holdout):
		return Decision{Holdout: true, Reason: "holdout"}
	}
	mode := "chat"
	if !agentsAvailable || (p.Hours != nil && !p.Hours.Open(now)) {
		mode = "message"
	}
	return Decision{Offer: true, Mode: mode}
}

// Shown records that an offer went out.
func (st *OfferState) Shown() {
	st.Offers++
	st.PageOffers++
}

// inHoldout assigns a visitor to the control group by a hash of their id, so
// the assignment is random across visitors but stable for one.
func inHoldout(visitorID string, share float64) bool {
	sum := sha256.Sum256([]byte("holdout:" + visitorID))
	return float64(binary.BigEndian.Uint64(sum[:8]))/float64(^uint64(0)) < share
}
