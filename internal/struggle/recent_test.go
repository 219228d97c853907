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
		if len(r.buf) > 2*maxRecent {
			t.Fatalf("after event %d: buffer holds %d events, want at most %d", i, len(r.buf), 2*maxRecent)
		}
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
