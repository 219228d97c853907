package detect

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestGolden feeds each testdata/<case>.events.jsonl (one widget event per
// line, one visit) to an engine running DefaultRuleset and compares the
// findings, sentences and offers with <case>.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.events.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".events.jsonl")
		t.Run(name, func(t *testing.T) {
			got := runGolden(t, file)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", file, golden, got, want)
			}
		})
	}
}

func runGolden(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(Config{})
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	var first int64
	for line := 1; sc.Scan(); line++ {
		ev, err := DecodeEvent(sc.Bytes())
		if err != nil {
			t.Fatalf("%s:%d: %v", file, line, err)
		}
		ev.Visit = "v"
		if first == 0 {
			first = ev.Time.UnixMilli()
		}
		at := float64(ev.Time.UnixMilli()-first) / 1000
		for _, f := range e.Observe(ev) {
			fmt.Fprintf(&out, "%7.1fs finding %s\n", at, f.String())
		}
		if a := e.Verdict(); a.Offer {
			fmt.Fprintf(&out, "%7.1fs OFFER (%s, score %.1f, threshold %g): %q\n          agent: %s\n", at, a.Reason, a.Score, a.Threshold, a.OfferText, a.Explanation())
		}
	}
	if out.Len() == 0 {
		out.WriteString("no findings\n")
	}
	return out.Bytes()
}
