package load

import (
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func TestHistogramQuantilesWithinPrecision(t *testing.T) {
	t.Parallel()
	var h Histogram
	rng := rand.New(rand.NewPCG(1, 2))
	var vals []time.Duration
	for range 100_000 {
		d := time.Duration(rng.ExpFloat64() * float64(3*time.Millisecond))
		vals = append(vals, d)
		h.Record(d)
	}
	slices.Sort(vals)
	for _, q := range []float64{.5, .9, .99, .999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 0.02 || diff < -0.02 {
			t.Errorf("Quantile(%v) = %v, exact %v: off by %.1f%%", q, got, exact, diff*100)
		}
	}
	if h.Count() != 100_000 {
		t.Errorf("Count() = %d, want 100000", h.Count())
	}
}

func TestHistogramEdges(t *testing.T) {
	t.Parallel()
	var h Histogram
	if h.Quantile(.99) != 0 {
		t.Error("empty histogram has a p99")
	}
	h.Record(-time.Second)
	h.Record(time.Hour * 1000) // beyond the last bucket: clamped, max kept
	if got := h.Summarize(); got.Count != 2 || got.Max != float64(1000*time.Hour/time.Millisecond) {
		t.Errorf("Summarize() = %+v", got)
	}
}

func TestReadProcSelf(t *testing.T) {
	t.Parallel()
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSBytes < 1<<20 || s.CPUSeconds < 0 {
		t.Errorf("ReadProc(self) = %+v, want at least 1 MiB RSS", s)
	}
}

func TestHistogramMergeEqualsOneHistogram(t *testing.T) {
	t.Parallel()
	var all, a, b, merged Histogram
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 10_000 {
		d := time.Duration(rng.ExpFloat64() * float64(5*time.Millisecond))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	merged.Merge(a.Export())
	merged.Merge(b.Export())
	if got, want := merged.Summarize(), all.Summarize(); got != want {
		t.Errorf("merged summary = %+v, want %+v", got, want)
	}
}

func TestShareAddsUp(t *testing.T) {
	t.Parallel()
	for _, total := range []int{0, 1, 7, 19000} {
		for n := 1; n <= 5; n++ {
			sum := 0
			for i := range n {
				sum += share(total, i, n)
			}
			if sum != total {
				t.Errorf("shares of %d over %d add up to %d", total, n, sum)
			}
		}
	}
}
