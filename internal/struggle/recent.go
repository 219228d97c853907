package struggle

import (
	"time"

	"github.com/lifelinehq/lifeline/detect"
)

// Replay limits: the events a journey carries for the next node, and how
// far back (the longest rule windows are minutes).
const (
	maxRecent    = 32
	recentWindow = 5 * time.Minute
)

// recentEvents is a visit's latest events, kept for a node that takes the
// visitor over: at most maxRecent, none older than recentWindow before the
// newest. They live in a ring that doubles as it fills, up to maxRecent
// slots: a visitor who sent one page view holds one slot, a streaming one
// 32 (about 11 KiB) rather than a slice grown to twice that between
// compactions, and an event costs one copy. Slots that fall out are
// zeroed, so no stale string is kept alive.
type recentEvents struct {
	ring []detect.Event
	head int // the oldest event's slot
	n    int // events kept
}

// add keeps ev, without its Props (rules never read them).
func (r *recentEvents) add(ev detect.Event) {
	ev.Props = nil
	for r.n > 0 && (r.n >= maxRecent || ev.Time.Sub(r.ring[r.head].Time) > recentWindow) {
		r.ring[r.head] = detect.Event{}
		r.head = (r.head + 1) % len(r.ring)
		r.n--
	}
	if r.n == len(r.ring) {
		r.ring = r.appendTo(make([]detect.Event, 0, min(max(2*r.n, 1), maxRecent)))
		r.ring = r.ring[:cap(r.ring)]
		r.head = 0
	}
	r.ring[(r.head+r.n)%len(r.ring)] = ev
	r.n++
}

// appendTo appends the events kept to dst, oldest first.
func (r *recentEvents) appendTo(dst []detect.Event) []detect.Event {
	for i := range r.n {
		dst = append(dst, r.ring[(r.head+i)%len(r.ring)])
	}
	return dst
}

// list returns a copy of the events kept, oldest first.
func (r *recentEvents) list() []detect.Event {
	return r.appendTo(make([]detect.Event, 0, r.n))
}

// reset forgets every event, keeping the ring.
func (r *recentEvents) reset() {
	clear(r.ring)
	r.head, r.n = 0, 0
}
