package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifelinehq/lifeline/detect"
	"github.com/lifelinehq/lifeline/detect/backtest"
	"github.com/lifelinehq/lifeline/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Main(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func corpus(t *testing.T, name string, n string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if _, stderr, err := run(t, "generate", "--sessions", n, "--seed", "3", "--out", file); err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	return file
}

func TestGenerateAndReplay(t *testing.T) {
	file := corpus(t, "corpus.jsonl", "600")
	out, stderr, err := run(t, file, "--sweep")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr)
	}
	for _, want := range []string{"600 visits", "overall: precision", "PR-AUC", "TTD median", "card-declined", "struggle", "card_declined", "threshold", "8 *"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay output lacks %q:\n%s", want, out)
		}
	}
}

func TestReplayJSONGzip(t *testing.T) {
	file := corpus(t, "corpus.jsonl.gz", "300")
	out, stderr, err := run(t, "--json", file)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr)
	}
	var rep struct {
		Rules   string `json:"rules"`
		Visits  int    `json:"visits"`
		Overall struct {
			Precision float64 `json:"precision"`
			Recall    float64 `json:"recall"`
			PRAUC     float64 `json:"pr_auc"`
		} `json:"overall"`
		Sweep []any `json:"sweep"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("replay --json output is not JSON: %v\n%s", err, out)
	}
	if rep.Visits != 300 || rep.Rules != "built-in" || rep.Overall.Recall == 0 || rep.Sweep != nil {
		t.Errorf("replay --json = %+v", rep)
	}
}

func TestReplayDeterministic(t *testing.T) {
	a := corpus(t, "a.jsonl", "200")
	b := corpus(t, "b.jsonl", "200")
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Error("generate with the same seed wrote different corpora")
	}
}

func TestReplayRules(t *testing.T) {
	file := corpus(t, "c.jsonl", "100")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"version":1,"threshold":6,"rules":[{"id":"card-declined","signal":"report","count":2,"match":{"message":["declined"]},"shadow":true}]}`), 0o644)
	out, stderr, err := run(t, "--rules", good, file)
	if err != nil {
		t.Fatalf("replay --rules: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "card-declined (shadow)") || !strings.Contains(out, "threshold 6") {
		t.Errorf("replay --rules output:\n%s", out)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version":1,"rules":[{"id":"card-declined","signal":"report","window":"2h"}]}`), 0o644)
	_, _, err = run(t, "--rules", bad, file)
	if err == nil || !strings.Contains(err.Error(), `rules[0] "card-declined": window: must be between 1s and 1h`) {
		t.Errorf("replay with a bad ruleset: err = %v", err)
	}
}

func TestReplayErrors(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.jsonl")
	os.WriteFile(broken, []byte("{\"visit\":\"a\",\"events\":[]}\n{\"visit\":\"b\",\"events\":[{\"t\":1,\"k\":\"nope\"}]}\n"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no recordings"},
		{[]string{filepath.Join(dir, "missing.jsonl")}, "no such file"},
		{[]string{broken}, `broken.jsonl:2: decode session b: events[0]`},
		{[]string{"--bogus"}, "flag provided but not defined"},
		{[]string{"generate", "--sessions", "0"}, "--sessions must be"},
	}
	for _, tt := range tests {
		_, _, err := run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("replay %q: err = %v, want %q", tt.args, err, tt.want)
		}
	}
	_, stderr, err := run(t, "-h")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr, "lifeline replay [--rules FILE]") {
		t.Errorf("replay -h = %v, usage:\n%s", err, stderr)
	}
}

// TestTextLeavesUndefinedRatiosBlank: a rule with no findings has no
// precision, and a label with no episodes no recall; the report says "-"
// rather than a 0.000 that reads as a measured failure.
func TestTextLeavesUndefinedRatiosBlank(t *testing.T) {
	found := backtest.Metrics{Alerts: 4, TruePositives: 3, Episodes: 5, Detected: 3, Precision: 0.75, Recall: 0.6}
	silent := backtest.Metrics{Episodes: 5}
	rep := backtest.Report{
		Visits: 10, Threshold: 8, Overall: found,
		Rules: []backtest.RuleMetrics{
			{Rule: "fires", Signal: detect.RepeatedError, Metrics: found},
			{Rule: "silent", Signal: detect.RageClick, Metrics: silent},
		},
		Labels: []backtest.LabelMetrics{{Label: "unseen"}},
		Sweep:  []backtest.SweepRow{{Threshold: 99, Metrics: silent}},
	}
	var out bytes.Buffer
	if err := writeText(&out, "test", 2, rep, true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	row := func(prefix string) []string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == prefix {
				return f
			}
		}
		t.Fatalf("no row %q in:\n%s", prefix, out.String())
		return nil
	}
	if f := row("fires"); f[3] != "0.750" || f[4] != "0.600" {
		t.Errorf("rule with findings: %q", f)
	}
	if f := row("silent"); f[3] != "-" || f[4] != "0.000" || f[7] != "-" {
		t.Errorf("rule without findings: precision %q recall %q TTD %q, want - 0.000 -", f[3], f[4], f[7])
	}
	if f := row("unseen"); f[3] != "-" {
		t.Errorf("label without episodes: recall %q, want -", f[3])
	}
	if f := row("99"); f[1] != "-" {
		t.Errorf("sweep row without findings: precision %q, want -", f[1])
	}
	if !strings.Contains(out.String(), "overall: precision 0.750  recall 0.600") {
		t.Errorf("overall line:\n%s", out.String())
	}
}
