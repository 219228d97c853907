// Package load is `lifeline load`, a load generator that speaks the real
// protocol to a running node and reports connections, delivery counts,
// latency percentiles and the server's memory and CPU.
package load

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifelinehq/lifeline/internal/client"
)

// Config is one load run. Zero fields take the defaults of the flags.
type Config struct {
	URL      string
	Site     string
	Scenario string
	// Visitors is the number of connections for idle and storm.
	Visitors int
	// Pairs is the number of visitor/agent conversations for chat.
	Pairs int
	// Agents is how many agent sockets serve the pairs (each takes
	// Pairs/Agents conversations).
	Agents int
	// Rate is the total messages per second for chat (open loop).
	Rate float64
	// Duration is how long chat sends, or idle holds.
	Duration time.Duration
	// Sources are local addresses connections are spread over.
	Sources []string
	// AdminEmail and AdminPassword create the load agents.
	AdminEmail    string
	AdminPassword string
	// PID is the server's process id for RSS and CPU readings; 0 skips them.
	PID int
	// Concurrency bounds dials in flight. Defaults to 256.
	Concurrency int
}

// Report is what a run measured.
type Report struct {
	Scenario    string   `json:"scenario"`
	Connections int      `json:"connections_held"`
	Failed      int      `json:"connections_failed"`
	ConnectTime float64  `json:"connect_seconds"`
	Sent        int64    `json:"sent"`
	Acked       int64    `json:"acked"`
	Delivered   int64    `json:"delivered"`
	Lost        int64    `json:"lost"`
	Duplicated  int64    `json:"duplicated"`
	Errors      int64    `json:"error_frames"`
	AckLatency  *Summary `json:"ack_latency,omitempty"`
	Latency     *Summary `json:"delivery_latency,omitempty"`
	RateActual  float64  `json:"messages_per_second,omitempty"`

	Server *ServerUsage `json:"server,omitempty"`
}

// ServerUsage is what the server process used during the run.
type ServerUsage struct {
	RSSBeforeBytes int64   `json:"rss_before_bytes"`
	RSSAfterBytes  int64   `json:"rss_after_bytes"`
	RSSPerConnKiB  float64 `json:"rss_per_connection_kib,omitempty"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	CPUMsPer1000   float64 `json:"cpu_ms_per_1000_messages,omitempty"`
}

// Main runs `lifeline load`.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c Config
	var sources string
	var asJSON bool
	fs := flag.NewFlagSet("lifeline load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "the node's base URL")
	fs.StringVar(&c.Site, "site", "demo", "site key the visitors use")
	fs.StringVar(&c.Scenario, "scenario", "chat", "idle, storm or chat")
	fs.IntVar(&c.Visitors, "visitors", 1000, "connections for idle and storm")
	fs.IntVar(&c.Pairs, "pairs", 100, "visitor/agent conversations for chat")
	fs.IntVar(&c.Agents, "agents", 10, "agent sockets serving the pairs")
	fs.Float64Var(&c.Rate, "rate", 1000, "total visitor messages per second for chat")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long chat sends or idle holds (at most 10m)")
	fs.StringVar(&sources, "sources", "127.0.0.1", "comma-separated local addresses to spread connections over, or N for 127.0.0.1..127.0.0.N")
	fs.StringVar(&c.AdminEmail, "admin-email", "admin@lifeline.local", "admin login, to create the load agents")
	fs.IntVar(&c.PID, "pid", 0, "server process id, to report its RSS and CPU from /proc")
	fs.IntVar(&c.Concurrency, "concurrency", 256, "dials in flight")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: lifeline load [flags]\n\nThe admin password comes from LIFELINE_ADMIN_PASSWORD.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.AdminPassword = getenv("LIFELINE_ADMIN_PASSWORD")
	var err error
	if c.Sources, err = parseSources(sources); err != nil {
		return err
	}
	if c.Duration <= 0 || c.Duration > 10*time.Minute {
		return errors.New("--duration must be between 0 and 10m")
	}
	rep, err := Run(ctx, c)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.WriteText(stdout)
	return nil
}

func parseSources(s string) ([]string, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && !strings.Contains(s, ".") {
		if n < 1 || n > 254 {
			return nil, errors.New("--sources N must be 1 to 254")
		}
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("127.0.0.%d", i+1)
		}
		return out, nil
	}
	var out []string
	for _, a := range strings.Split(s, ",") {
		ip := net.ParseIP(strings.TrimSpace(a))
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("--sources: %q is not a loopback address (load only ever targets this machine)", a)
		}
		out = append(out, ip.String())
	}
	return out, nil
}

// Run executes one scenario.
func Run(ctx context.Context, c Config) (*Report, error) {
	if c.Concurrency <= 0 {
		c.Concurrency = 256
	}
	if len(c.Sources) == 0 {
		c.Sources = []string{"127.0.0.1"}
	}
	r := &runner{cfg: c, transports: make([]http.RoundTripper, len(c.Sources))}
	for i, src := range c.Sources {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
		r.transports[i] = &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}
	}
	var before ProcStats
	if c.PID > 0 {
		var err error
		if before, err = ReadProc(c.PID); err != nil {
			return nil, err
		}
	}
	var rep *Report
	var err error
	switch c.Scenario {
	case "idle":
		rep, err = r.idle(ctx)
	case "storm":
		rep, err = r.storm(ctx)
	case "chat":
		rep, err = r.chat(ctx)
	default:
		return nil, fmt.Errorf("unknown scenario %q: use idle, storm or chat", c.Scenario)
	}
	if err != nil {
		return nil, err
	}
	rep.Scenario = c.Scenario
	if c.PID > 0 {
		after, err := ReadProc(c.PID)
		if err != nil {
			return nil, err
		}
		if r.heldRSS > 0 {
			after.RSSBytes = r.heldRSS
		}
		u := &ServerUsage{RSSBeforeBytes: before.RSSBytes, RSSAfterBytes: after.RSSBytes, CPUSeconds: after.CPUSeconds - before.CPUSeconds}
		if rep.Connections > 0 && c.Scenario == "idle" {
			u.RSSPerConnKiB = float64(after.RSSBytes-before.RSSBytes) / 1024 / float64(rep.Connections)
		}
		if rep.Delivered > 0 {
			u.CPUMsPer1000 = u.CPUSeconds * 1000 / (float64(rep.Delivered) / 1000)
		}
		rep.Server = u
	}
	return rep, nil
}

type runner struct {
	cfg        Config
	transports []http.RoundTripper
	next       atomic.Uint64
	heldRSS    int64 // RSS read while idle connections were held
}

func (r *runner) transport() http.RoundTripper {
	return r.transports[r.next.Add(1)%uint64(len(r.transports))]
}

// visitor dials and says hello, returning the open socket.
func (r *runner) visitor(ctx context.Context) (*client.Conn, error) {
	c, err := client.DialVisitor(ctx, r.cfg.URL, r.cfg.Site, client.Options{Origin: r.cfg.URL, Transport: r.transport()})
	if err != nil {
		return nil, err
	}
	if err := c.Send(ctx, map[string]any{"type": "hello"}); err != nil {
		c.CloseNow()
		return nil, err
	}
	if _, err := c.Until(ctx, "welcome", nil); err != nil {
		c.CloseNow()
		return nil, err
	}
	return c, nil
}

// dialAll opens n visitor sockets with bounded concurrency.
func (r *runner) dialAll(ctx context.Context, n int) ([]*client.Conn, int, time.Duration) {
	start := time.Now()
	conns := make([]*client.Conn, n)
	var failed atomic.Int64
	sem := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, err := r.visitor(dctx)
			if err != nil {
				failed.Add(1)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	return conns, int(failed.Load()), time.Since(start)
}

func closeAll(conns []*client.Conn) {
	var wg sync.WaitGroup
	for _, c := range conns {
		if c != nil {
			wg.Go(func() { c.CloseNow() })
		}
	}
	wg.Wait()
}

// idle opens the visitors, holds them for the duration, then reads the
// server's memory while they are still open.
func (r *runner) idle(ctx context.Context) (*Report, error) {
	conns, failed, took := r.dialAll(ctx, r.cfg.Visitors)
	defer closeAll(conns)
	select {
	case <-ctx.Done():
	case <-time.After(r.cfg.Duration):
	}
	if r.cfg.PID > 0 {
		if s, err := ReadProc(r.cfg.PID); err == nil {
			r.heldRSS = s.RSSBytes
		}
	}
	return &Report{Connections: r.cfg.Visitors - failed, Failed: failed, ConnectTime: took.Seconds()}, nil
}

// storm opens the visitors as fast as the concurrency allows; each counts
// only once its welcome arrived (fully usable).
func (r *runner) storm(ctx context.Context) (*Report, error) {
	conns, failed, took := r.dialAll(ctx, r.cfg.Visitors)
	defer closeAll(conns)
	return &Report{Connections: r.cfg.Visitors - failed, Failed: failed, ConnectTime: took.Seconds()}, nil
}

// WriteText prints the report for people.
func (rep *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "scenario %s\n", rep.Scenario)
	fmt.Fprintf(w, "  connections: %d held, %d failed, in %.2f s\n", rep.Connections, rep.Failed, rep.ConnectTime)
	if rep.Sent > 0 {
		fmt.Fprintf(w, "  messages: %d sent, %d acked, %d delivered, %d lost, %d duplicated, %d error frames (%.0f msgs/s)\n",
			rep.Sent, rep.Acked, rep.Delivered, rep.Lost, rep.Duplicated, rep.Errors, rep.RateActual)
	}
	for _, l := range []struct {
		name string
		s    *Summary
	}{{"ack latency (visitor)", rep.AckLatency}, {"delivery latency (visitor→agent)", rep.Latency}} {
		if l.s != nil {
			fmt.Fprintf(w, "  %s ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (n=%d)\n",
				l.name, l.s.P50, l.s.P90, l.s.P99, l.s.P999, l.s.Max, l.s.Count)
		}
	}
	if s := rep.Server; s != nil {
		fmt.Fprintf(w, "  server: RSS %.1f → %.1f MiB, CPU %.2f s", float64(s.RSSBeforeBytes)/(1<<20), float64(s.RSSAfterBytes)/(1<<20), s.CPUSeconds)
		if s.RSSPerConnKiB > 0 {
			fmt.Fprintf(w, ", %.1f KiB per connection", s.RSSPerConnKiB)
		}
		if s.CPUMsPer1000 > 0 {
			fmt.Fprintf(w, ", %.1f ms CPU per 1,000 messages", s.CPUMsPer1000)
		}
		fmt.Fprintln(w)
	}
}
