// Package replay implements "lifeline replay": it backtests detector rules
// on recorded or simulated visits and prints how well they find struggles.
package replay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/lifelinehq/lifeline/detect"
	"github.com/lifelinehq/lifeline/detect/backtest"
	"github.com/lifelinehq/lifeline/detect/simulate"
)

const usage = `Usage:
  lifeline replay [--rules FILE] [--sweep] [--json] RECORDINGS...
  lifeline replay generate [--sessions N] [--seed S] [--out FILE]

The first form runs detector rules over recordings and judges them against
the labelled struggle episodes in them: an alert (an offer) within 120 s
after an episode's onset detects it. It prints, overall and per rule,
precision, recall, F1, PR-AUC, the median and p90 time to detect, and offers
per 1,000 visits, then recall per kind of struggle; --sweep adds the same
at other thresholds. RECORDINGS are JSON Lines files, one visit per line
(see docs/detection.md); names ending in .gz are gunzipped.

The second form writes a simulated, labelled corpus in the same format:
shop visitors with injected faults (card declined, coupon loop, validation
loop, broken button, dead UI, failed API, crash, frozen UI, churn) and
visitors who do not struggle but look like it. The same seed gives the same
corpus.

Flags:
`

// Main runs "lifeline replay" with args (without the command name).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "generate" {
		return generate(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rulesFile := fs.String("rules", "", "ruleset `FILE` (JSON); default: the built-in rules")
	sweep := fs.Bool("sweep", false, "add a threshold sweep table")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return errors.New("replay: no recordings given")
	}
	rs := detect.DefaultRuleset()
	rulesName := "built-in"
	if *rulesFile != "" {
		data, err := os.ReadFile(*rulesFile)
		if err != nil {
			return fmt.Errorf("replay: read rules: %w", err)
		}
		if rs, err = detect.ParseRuleset(data); err != nil {
			return fmt.Errorf("replay: %s: %w", *rulesFile, err)
		}
		rulesName = *rulesFile
	}
	ev, err := backtest.NewEvaluator(rs, backtest.Options{})
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	for _, name := range files {
		if err := readRecording(ctx, name, ev.Add); err != nil {
			return err
		}
	}
	rep := ev.Report()
	if *asJSON {
		out := struct {
			Rules string `json:"rules"`
			backtest.Report
		}{rulesName, rep}
		if !*sweep {
			out.Sweep = nil
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return writeText(stdout, rulesName, len(rs.Rules), rep, *sweep)
}

// parseInterspersed parses flags wherever they appear among the file names.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			rest = append(rest, args[0])
			args = args[1:]
		}
		if len(args) == 0 {
			return rest, nil
		}
		if args[0] == "--" {
			return append(rest, args[1:]...), nil
		}
	}
}

func generate(args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("replay generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("sessions", 10000, "number of visits `N`")
	seed := fs.Uint64("seed", 1, "random `seed`")
	share := fs.Float64("struggle", 0.25, "share of struggling visits")
	out := fs.String("out", "", "output `FILE` (default stdout); .gz compresses")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("replay generate: unexpected argument %q", fs.Arg(0))
	}
	if *n <= 0 || *n > 10_000_000 {
		return errors.New("replay generate: --sessions must be between 1 and 10000000")
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("replay generate: %w", err)
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("replay generate: %w", cerr)
			}
		}()
		w = f
		if strings.HasSuffix(*out, ".gz") {
			zw := gzip.NewWriter(f)
			defer func() {
				if cerr := zw.Close(); err == nil && cerr != nil {
					err = fmt.Errorf("replay generate: %w", cerr)
				}
			}()
			w = zw
		}
	}
	bw := bufio.NewWriter(w)
	sessions := simulate.Generate(simulate.Config{Sessions: *n, Seed: *seed, StruggleShare: *share})
	for _, s := range sessions {
		b, err := s.MarshalJSON()
		if err != nil {
			return fmt.Errorf("replay generate: %w", err)
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("replay generate: %w", err)
	}
	return nil
}

// maxLine bounds one recorded visit.
const maxLine = 64 << 20

// readRecording streams the sessions of one recording to add.
func readRecording(ctx context.Context, name string, add func(*backtest.Session)) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("replay: %s: %w", name, err)
		}
		defer zr.Close()
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), maxLine)
	for line := 1; sc.Scan(); line++ {
		if line%1000 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		s, err := backtest.DecodeSession(b)
		if err != nil {
			return fmt.Errorf("replay: %s:%d: %w", name, line, err)
		}
		add(&s)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("replay: %s: %w", name, err)
	}
	return nil
}

func writeText(w io.Writer, rulesName string, nRules int, rep backtest.Report, sweep bool) error {
	o := rep.Overall
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%d visits, %d events, %d labelled episodes; rules: %s (%d), threshold %g\n\n",
		rep.Visits, rep.Events, o.Episodes, rulesName, nRules, rep.Threshold)
	fmt.Fprintf(bw, "overall: precision %s  recall %s  F1 %.3f  PR-AUC %.3f  TTD median %s  p90 %s  offers/1000 visits %.1f\n\n",
		ratio(o.Alerts, o.Precision), ratio(o.Episodes, o.Recall), o.F1, o.PRAUC, ttd(o.Detected, o.TTDMedian), ttd(o.Detected, o.TTDP90), o.OffersPer1000)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rule\tsignal\tfindings\tprecision\trecall\tF1\tPR-AUC\tTTD med\tTTD p90\tper 1000\t")
	for _, r := range rep.Rules {
		name := r.Rule
		if r.Shadow {
			name += " (shadow)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%.3f\t%.3f\t%s\t%s\t%.1f\t\n", name, r.Signal, r.Alerts, ratio(r.Alerts, r.Precision), ratio(r.Episodes, r.Recall), r.F1, r.PRAUC, ttd(r.Detected, r.TTDMedian), ttd(r.Detected, r.TTDP90), r.OffersPer1000)
	}
	tw.Flush()
	fmt.Fprintln(bw)
	tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "struggle\tepisodes\tdetected\trecall\tTTD med\t")
	for _, l := range rep.Labels {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t\n", l.Label, l.Episodes, l.Detected, ratio(l.Episodes, l.Recall), ttd(l.Detected, l.TTDMedian))
	}
	tw.Flush()
	if sweep {
		fmt.Fprintln(bw)
		tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "threshold\tprecision\trecall\tF1\tTTD med\tTTD p90\toffers/1000\t")
		for _, s := range rep.Sweep {
			mark := ""
			if s.Threshold == rep.Threshold {
				mark = " *"
			}
			fmt.Fprintf(tw, "%g%s\t%s\t%s\t%.3f\t%s\t%s\t%.1f\t\n", s.Threshold, mark, ratio(s.Alerts, s.Precision), ratio(s.Episodes, s.Recall), s.F1, ttd(s.Detected, s.TTDMedian), ttd(s.Detected, s.TTDP90), s.OffersPer1000)
		}
		tw.Flush()
	}
	return bw.Flush()
}

// ratio writes a precision or recall, or "-" when it has no denominator
// (no findings, or no episodes): 0.000 there would read as a measured
// failure.
func ratio(of int, v float64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

// ttd writes a time to detect, or "-" when nothing was detected.
func ttd(detected int, d backtest.Seconds) string {
	if detected == 0 {
		return "-"
	}
	return d.String()
}
