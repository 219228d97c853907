package struggle

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/detect"
)

// keepRecent is the rule recentEvents implements, written plainly: drop
// the oldest until ev fits under maxRecent, then those older than
// recentWindow before ev, then add ev.
func keepRecent(list []detect.Event, ev detect.Event) []detect.Event {
	for len(list) >= maxRecent || (len(list) > 0 && ev.Time.Sub(list[0].Time) > recentWindow) {
		list = list[1:]
	}
	ev.Props = nil
	return append(list, ev)
}

func TestRecentEventsKeepsTheLatestWithinTheWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var r recentEvents
	var want []detect.Event
	for i := range 5000 {
		switch rng.IntN(100) {
		case 0: // a pause longer than the window
			at = at.Add(recentWindow + time.Second)
		case 1, 2:
			at = at.Add(time.Duration(rng.IntN(90)) * time.Second)
		default:
			at = at.Add(time.Duration(rng.IntN(500)) * time.Millisecond)
		}
		if i == 2500 {
			r.reset()
			want = nil
		}
		ev := detect.Event{Kind: detect.KindClick, Time: at, Path: "/p", Props: map[string]string{"n": "x"}}
		r.add(ev)
		want = keepRecent(want, ev)
		got := r.list()
		if len(got) != len(want) {
			t.Fatalf("after event %d: %d events kept, want %d", i, len(got), len(want))
		}
		for j := range got {
			if !got[j].Time.Equal(want[j].Time) || got[j].Props != nil {
				t.Fatalf("after event %d: event %d at %v (props %v), want %v without props", i, j, got[j].Time, got[j].Props, want[j].Time)
			}
		}
		if len(r.ring) > maxRecent {
			t.Fatalf("after event %d: the ring has %d slots for %d events", i, len(r.ring), r.n)
		}
		for j := r.n; j < len(r.ring); j++ {
			if e := r.ring[(r.head+j)%len(r.ring)]; e.Path != "" {
				t.Fatalf("after event %d: a free slot still holds an event at %v", i, e.Time)
			}
		}
	}
}

// A visitor who sent one page view holds one slot; the ring doubles as
// events come, up to maxRecent.
func TestRecentEventsRingGrowsWithUse(t *testing.T) {
	var r recentEvents
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	// slots[n] is the ring's size after n events.
	for n, slots := range []int{0, 1, 2, 4, 4, 8, 8, 8, 8, 16} {
		if len(r.ring) != slots {
			t.Fatalf("after %d events: %d slots, want %d", n, len(r.ring), slots)
		}
		r.add(detect.Event{Kind: detect.KindPage, Time: at, Path: "/"})
	}
	for range 100 {
		r.add(detect.Event{Kind: detect.KindPage, Time: at, Path: "/"})
	}
	if len(r.ring) != maxRecent || r.n != maxRecent {
		t.Fatalf("after 110 events: %d slots holding %d, want %d of %d", len(r.ring), r.n, maxRecent, maxRecent)
	}
}

func BenchmarkRecentEventsAdd(b *testing.B) {
	var r recentEvents
	at := time.Now()
	ev := detect.Event{Kind: detect.KindClick, Path: "/checkout"}
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(100 * time.Millisecond)
		ev.Time = at
		r.add(ev)
	}
}
