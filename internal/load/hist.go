package load

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// Histogram records durations in log-linear buckets, HDR style: 64 linear
// sub-buckets per power of two of microseconds, so every recorded value is
// within about 1.6 % of the truth, in fixed memory. Safe for concurrent use.
type Histogram struct {
	mu     sync.Mutex
	counts [subBuckets * 40]uint64
	n      uint64
	max    time.Duration
}

const subBits = 6
const subBuckets = 1 << subBits

func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	exp := bits.Len64(us) - subBits // ≥ 1
	return exp*subBuckets + int(us>>(exp-1)) - subBuckets
}

func lowerBound(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	exp := b / subBuckets
	return uint64(b%subBuckets+subBuckets) << (exp - 1)
}

// Record adds one duration (negative counts as zero).
func (h *Histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	b := bucketOf(us)
	if b >= len(h.counts) {
		b = len(h.counts) - 1
	}
	h.mu.Lock()
	h.counts[b]++
	h.n++
	if d > h.max {
		h.max = d
	}
	h.mu.Unlock()
}

// Count is how many values were recorded.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Quantile returns the value at q (0..1), or 0 with no data.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			// The middle of the bucket, but never above the true maximum.
			lo, hi := lowerBound(b), lowerBound(b+1)
			v := time.Duration((lo+hi)/2) * time.Microsecond
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}

// Summary is a histogram's percentiles in milliseconds.
type Summary struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize returns the standard percentiles.
func (h *Histogram) Summarize() Summary {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	h.mu.Lock()
	max, n := h.max, h.n
	h.mu.Unlock()
	return Summary{Count: n, P50: ms(h.Quantile(.5)), P90: ms(h.Quantile(.9)), P99: ms(h.Quantile(.99)), P999: ms(h.Quantile(.999)), Max: ms(max)}
}

// HistData is a histogram in a form that travels between processes: the
// non-empty buckets and the maximum, so reports of several load processes
// merge into exact percentiles of the whole run.
type HistData struct {
	Buckets [][2]uint64 `json:"buckets"` // bucket index, count
	MaxNS   int64       `json:"max_ns"`
}

// Export returns the histogram's data.
func (h *Histogram) Export() *HistData {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := &HistData{MaxNS: int64(h.max)}
	for b, c := range h.counts {
		if c > 0 {
			d.Buckets = append(d.Buckets, [2]uint64{uint64(b), c})
		}
	}
	return d
}

// Merge adds exported data to the histogram.
func (h *Histogram) Merge(d *HistData) {
	if d == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, bc := range d.Buckets {
		if bc[0] < uint64(len(h.counts)) {
			h.counts[bc[0]] += bc[1]
			h.n += bc[1]
		}
	}
	if m := time.Duration(d.MaxNS); m > h.max {
		h.max = m
	}
}
