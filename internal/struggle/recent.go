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
// newest. Events that fall out are skipped by an offset and compacted away
// once there are maxRecent of them, so a streaming visitor's event costs
// one copied event on average rather than a shift of the other 31.
type recentEvents struct {
	buf   []detect.Event
	start int // buf[:start] have fallen out
}

// add keeps ev, without its Props (rules never read them).
func (r *recentEvents) add(ev detect.Event) {
	ev.Props = nil
	for n := len(r.buf) - r.start; n > 0 && (n >= maxRecent || ev.Time.Sub(r.buf[r.start].Time) > recentWindow); n-- {
		r.start++
	}
	if r.start >= maxRecent || r.start == len(r.buf) {
		live := copy(r.buf, r.buf[r.start:])
		clear(r.buf[live:]) // no stale strings kept alive
		r.buf, r.start = r.buf[:live], 0
	}
	r.buf = append(r.buf, ev)
}

// list returns the events kept, oldest first. It is valid until the next
// add or reset.
func (r *recentEvents) list() []detect.Event { return r.buf[r.start:] }

// reset forgets every event.
func (r *recentEvents) reset() {
	clear(r.buf)
	r.buf, r.start = r.buf[:0], 0
}
