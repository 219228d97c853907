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
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one load run. Zero fields take the defaults of the flags.
type Config struct {
	URL      string
	Site     string
	Scenario string
	// Visitors is the number of connections for idle and storm, and of
	// idle visitors in mixed.
	Visitors int
	// Pairs is the number of visitor/agent conversations for chat and mixed.
	Pairs int
	// Agents is how many agent sockets serve the pairs; the node's router
	// assigns each about Pairs/Agents conversations (at most 100). Defaults
	// to Pairs/100, at least 1.
	Agents int
	// Rate is the total visitor messages per second for chat (open loop).
	Rate float64
	// Streamers is the number of visitors streaming behaviour events in
	// events and mixed.
	Streamers int
	// EventRate is the total behaviour events per second.
	EventRate float64
	// BatchSize is the number of events in one events frame. Defaults to 20.
	BatchSize int
	// Struggle is the share of streamers that struggle once (a card
	// declined three times on /checkout) and should get an offer.
	Struggle float64
	// Duration is how long chat and events send, or idle holds.
	Duration time.Duration
	// Sources are local addresses connections are spread over.
	Sources []string
	// AdminEmail and AdminPassword create the load agents.
	AdminEmail    string
	AdminPassword string
	// PID is the server's process id for RSS and CPU readings; 0 skips them.
	PID int
	// Concurrency bounds dials in flight (per process). Defaults to 256.
	Concurrency int
	// Procs is the number of load processes; above 1 the tool runs copies
	// of itself, each with a share of the load, and merges their reports.
	Procs int

	// proc names this process's load agents apart from other processes';
	// nonce is the run's (see runner).
	proc  int
	nonce string
	// target is URL parsed by setDefaults.
	target *target
}

func newNonce() string { return fmt.Sprintf("r%08x", rand.Uint32()) }

// Report is what a run measured.
type Report struct {
	Scenario    string   `json:"scenario"`
	Procs       int      `json:"processes"`
	Connections int      `json:"connections_held"`
	Failed      int      `json:"connections_failed"`
	ConnectTime float64  `json:"connect_seconds"`
	Window      float64  `json:"window_seconds"`
	Sent        int64    `json:"sent"`
	Acked       int64    `json:"acked"`
	Delivered   int64    `json:"delivered"`
	Lost        int64    `json:"lost"`
	Duplicated  int64    `json:"duplicated"`
	Errors      int64    `json:"error_frames"`
	AckLatency  *Summary `json:"ack_latency,omitempty"`
	Latency     *Summary `json:"delivery_latency,omitempty"`
	RateActual  float64  `json:"messages_per_second,omitempty"`
	// Throughput is deliveries per second over the whole window, drain
	// included: below RateActual when the node fell behind.
	Throughput float64 `json:"delivered_per_second,omitempty"`

	Events *EventsReport `json:"events,omitempty"`
	Server *ServerUsage  `json:"server,omitempty"`

	// Hists, Unmatched and Foreign carry what a child process saw to the
	// parent: raw histograms, client ids acked but not delivered in the
	// child, and client ids of other children delivered in it.
	Hists     map[string]*HistData `json:"histograms,omitempty"`
	Unmatched []string             `json:"unmatched,omitempty"`
	Foreign   []string             `json:"foreign,omitempty"`
}

// EventsReport is what the behaviour-event streams measured.
type EventsReport struct {
	Streamers int     `json:"streamers"`
	Sent      int64   `json:"events_sent"`
	Batches   int64   `json:"batches_sent"`
	Rate      float64 `json:"events_per_second"`
	// Struggles counts streamers that sent their triggering batch.
	Struggles int64 `json:"struggles"`
	// Offers counts offers that answered a struggle (the first per visitor).
	Offers int64 `json:"offers"`
	// Unprompted counts offers to visitors that never struggled.
	Unprompted   int64    `json:"offers_unprompted"`
	OfferLatency *Summary `json:"offer_latency,omitempty"`
}

// ServerUsage is what the server process used during the run.
type ServerUsage struct {
	// RSSBeforeBytes is read before any connection opened; RSSAfterBytes
	// at the end of the measured window, with every connection still open.
	RSSBeforeBytes int64   `json:"rss_before_bytes"`
	RSSAfterBytes  int64   `json:"rss_after_bytes"`
	RSSPerConnKiB  float64 `json:"rss_per_connection_kib,omitempty"`
	// CPUSeconds is the server's user+system time during the measured
	// window (the sending window plus the drain for chat and events, the
	// dials for storm, the hold for idle).
	CPUSeconds       float64 `json:"cpu_seconds"`
	CPUCores         float64 `json:"cpu_cores"`
	CPUMsPer1000     float64 `json:"cpu_ms_per_1000_messages,omitempty"`
	CPUMsPer1000Evts float64 `json:"cpu_ms_per_1000_events,omitempty"`

	// GCCycles and GCPauseMs are the node's garbage collections during
	// the window and their stop-the-world pauses, summed; SchedWait is
	// the share of its goroutine wake-ups that waited longer than about
	// 1, 10 and 100 ms for a CPU. All from its /metrics, read at the
	// window's edges; RuntimeNote says why they are missing, if they are.
	GCCycles    uint64      `json:"gc_cycles"`
	GCPauseMs   float64     `json:"gc_pause_ms"`
	SchedWait   []SchedWait `json:"sched_wait,omitempty"`
	RuntimeNote string      `json:"runtime_note,omitempty"`
}

// Main runs `lifeline load`.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c Config
	var sources string
	var asJSON, child bool
	fs := flag.NewFlagSet("lifeline load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "the node's base URL")
	fs.StringVar(&c.Site, "site", "demo", "site key the visitors use")
	fs.StringVar(&c.Scenario, "scenario", "chat", "idle, storm, chat, events or mixed")
	fs.IntVar(&c.Visitors, "visitors", 1000, "connections for idle and storm; idle visitors in mixed")
	fs.IntVar(&c.Pairs, "pairs", 100, "visitor/agent conversations for chat and mixed")
	fs.IntVar(&c.Agents, "agents", 0, "agent sockets serving the pairs, each taking at most 100 (default pairs/100, at least 1)")
	fs.Float64Var(&c.Rate, "rate", 1000, "total visitor messages per second for chat and mixed")
	fs.IntVar(&c.Streamers, "streamers", 1000, "visitors streaming behaviour events in events and mixed")
	fs.Float64Var(&c.EventRate, "event-rate", 10000, "total behaviour events per second for events and mixed")
	fs.IntVar(&c.BatchSize, "batch", 20, "events per events frame")
	fs.Float64Var(&c.Struggle, "struggle", 0.1, "share of streamers that struggle once (card declined 3 times on /checkout)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long chat and events send, or idle holds (at most 10m)")
	fs.StringVar(&sources, "sources", "8", "comma-separated local addresses to spread connections over, or N for 127.0.0.1..127.0.0.N")
	fs.StringVar(&c.AdminEmail, "admin-email", "admin@lifeline.local", "admin login, to create the load agents")
	fs.IntVar(&c.PID, "pid", 0, "server process id, to report its RSS and CPU from /proc, and its collections and scheduler waits from /metrics")
	fs.IntVar(&c.Concurrency, "concurrency", 256, "dials in flight per process")
	fs.IntVar(&c.Procs, "procs", 1, "load processes (a process may hold at most about 20,000 sockets)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&child, "child", false, "internal: run as one of --procs, driven over stdin and stderr")
	fs.IntVar(&c.proc, "proc", 0, "internal: this child's index")
	fs.StringVar(&c.nonce, "nonce", "", "internal: the run's client id prefix")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: lifeline load [flags]

Scenarios:
  idle    --visitors connect, say hello and hold for --duration; RSS per connection
  storm   --visitors connect as fast as --concurrency allows; time until all are usable
  chat    --pairs visitors each start a conversation that one of --agents claims, then
          send --rate messages/s in total (open loop) for --duration; ack and delivery latency
  events  --streamers send batches of --batch behaviour events at --event-rate events/s in
          total; a --struggle share hit a declined card on /checkout once; event→offer latency
  mixed   idle visitors, chat pairs and event streams at once

The admin password comes from LIFELINE_ADMIN_PASSWORD. Start the node with a high
--max-conns-per-ip. Run with --procs N to stay under the per-process open-file limit.

`)
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
	if c.Procs < 1 || c.Procs > 16 {
		return errors.New("--procs must be 1 to 16")
	}
	var rep *Report
	if child {
		rep, err = runChild(ctx, c, os.Stdin, stderr)
	} else {
		rep, err = Run(ctx, c)
	}
	if err != nil {
		return err
	}
	if asJSON || child {
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

func (c *Config) setDefaults() error {
	if c.Concurrency <= 0 {
		c.Concurrency = 256
	}
	if len(c.Sources) == 0 {
		c.Sources = []string{"127.0.0.1"}
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 20
	}
	if c.Procs <= 0 {
		c.Procs = 1
	}
	if c.Agents <= 0 {
		c.Agents = max(1, (c.Pairs+99)/100)
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Struggle < 0 || c.Struggle > 1 {
		return errors.New("--struggle must be between 0 and 1")
	}
	if c.BatchSize > 190 {
		return errors.New("--batch must be at most 190 (a frame holds 200 events)")
	}
	chat := c.Scenario == "chat" || (c.Scenario == "mixed" && c.Pairs > 0)
	if chat && (c.Pairs < 1 || c.Agents < 1 || c.Agents > c.Pairs || c.Rate <= 0) {
		return errors.New("chat needs --pairs ≥ --agents ≥ 1 and --rate > 0")
	}
	events := c.Scenario == "events" || (c.Scenario == "mixed" && c.Streamers > 0)
	if events && (c.Streamers < 1 || c.EventRate <= 0) {
		return errors.New("events needs --streamers ≥ 1 and --event-rate > 0")
	}
	switch c.Scenario {
	case "idle", "storm", "chat", "events", "mixed":
	default:
		return fmt.Errorf("unknown scenario %q: use idle, storm, chat, events or mixed", c.Scenario)
	}
	var err error
	c.target, err = parseTarget(c.URL)
	return err
}

// Run executes one scenario, in this process or, with Procs > 1, in
// copies of this executable.
func Run(ctx context.Context, c Config) (*Report, error) {
	if err := c.setDefaults(); err != nil {
		return nil, err
	}
	ph := &procPhaser{pid: c.PID, t: c.target}
	if err := ph.baseline(); err != nil {
		return nil, err
	}
	var rep *Report
	var err error
	if c.Procs > 1 {
		rep, err = runProcs(ctx, c, ph)
	} else {
		r := newRunner(c)
		if rep, err = r.run(ctx, ph); err == nil {
			rep.finish(r)
			rep.Unmatched, rep.Foreign = nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	rep.Procs = c.Procs
	rep.Server = ph.usage(rep)
	return rep, nil
}

// phaser marks the measured window: begin after setup, end before
// teardown, with every connection still open.
type phaser interface {
	begin(ctx context.Context) error
	end(ctx context.Context) error
}

// procPhaser reads the server's /proc figures and its runtime's /metrics
// at the window's edges.
type procPhaser struct {
	pid             int
	t               *target
	base, beg, last ProcStats
	t0, t1          time.Time
	rt0, rt1        runtimeStats
	rtErr           error // why a /metrics read failed
}

func (p *procPhaser) baseline() error {
	if p.pid <= 0 {
		return nil
	}
	var err error
	p.base, err = ReadProc(p.pid)
	return err
}

// begin reads /metrics before the clock and /proc, and end after them,
// so that the window's CPU does not count serving the reads.
func (p *procPhaser) begin(ctx context.Context) error {
	if p.pid > 0 {
		p.rt0, p.rtErr = readRuntime(ctx, p.t)
	}
	p.t0 = time.Now()
	if p.pid <= 0 {
		return nil
	}
	var err error
	p.beg, err = ReadProc(p.pid)
	return err
}

func (p *procPhaser) end(ctx context.Context) error {
	p.t1 = time.Now()
	if p.pid <= 0 {
		return nil
	}
	var err error
	if p.last, err = ReadProc(p.pid); err != nil {
		return err
	}
	if p.rtErr == nil {
		p.rt1, p.rtErr = readRuntime(ctx, p.t)
	}
	return nil
}

func (p *procPhaser) usage(rep *Report) *ServerUsage {
	if p.pid <= 0 {
		return nil
	}
	u := &ServerUsage{RSSBeforeBytes: p.base.RSSBytes, RSSAfterBytes: p.last.RSSBytes, CPUSeconds: p.last.CPUSeconds - p.beg.CPUSeconds}
	if d := p.t1.Sub(p.t0).Seconds(); d > 0 {
		u.CPUCores = u.CPUSeconds / d
	}
	if rep.Connections > 0 && (rep.Scenario == "idle" || rep.Scenario == "storm") {
		u.RSSPerConnKiB = float64(u.RSSAfterBytes-u.RSSBeforeBytes) / 1024 / float64(rep.Connections)
	}
	if rep.Delivered > 0 && rep.Scenario == "chat" {
		u.CPUMsPer1000 = u.CPUSeconds * 1000 / (float64(rep.Delivered) / 1000)
	}
	if rep.Events != nil && rep.Events.Sent > 0 && rep.Scenario == "events" {
		u.CPUMsPer1000Evts = u.CPUSeconds * 1000 / (float64(rep.Events.Sent) / 1000)
	}
	if p.rtErr != nil {
		u.RuntimeNote = "no runtime figures: " + p.rtErr.Error()
	} else {
		p.rt1.since(p.rt0, u)
	}
	return u
}

// runner is one process's share of a run.
type runner struct {
	cfg     Config
	dialers []*net.Dialer // one per source address
	next    atomic.Uint64
	wg      sync.WaitGroup // background readers
	// nonce starts every client id of this run, so frames of earlier runs
	// against the same node are told apart; procPrefix is nonce-proc-, the
	// start of this process's ids.
	nonce, procPrefix string

	ackLat, delLat, offerLat Histogram
}

func newRunner(c Config) *runner {
	r := &runner{cfg: c, dialers: make([]*net.Dialer, len(c.Sources)), nonce: c.nonce}
	if r.nonce == "" {
		r.nonce = newNonce()
	}
	r.procPrefix = fmt.Sprintf("%s-%d-", r.nonce, c.proc)
	for i, src := range c.Sources {
		// No TCP keepalive: it costs four system calls a dial, time the
		// load generator takes from the node on a shared machine, and the
		// scenarios' pings keep the sockets alive.
		r.dialers[i] = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second, KeepAlive: -1}
	}
	return r
}

// dialer returns the dialer of the next source address.
func (r *runner) dialer() *net.Dialer {
	return r.dialers[r.next.Add(1)%uint64(len(r.dialers))]
}

// helloFrame is what every load visitor says first: a page, as the widget
// sends it.
func helloFrame(path string) []byte {
	return []byte(`{"type":"hello","page":{"path":"` + path + `","title":"Load"},"locale":"en-GB"}`)
}

// visitor dials and says hello, returning the open socket.
func (r *runner) visitor(ctx context.Context, path string) (*conn, error) {
	c, err := r.cfg.target.dial(ctx, r.dialer(), "/ws/visitor?site="+url.QueryEscape(r.cfg.Site), "")
	if err != nil {
		return nil, err
	}
	if err := c.send(ctx, helloFrame(path)); err != nil {
		c.closeNow()
		return nil, err
	}
	if _, err := c.until(ctx, "welcome"); err != nil {
		c.closeNow()
		return nil, err
	}
	return c, nil
}

// dialAll runs open(i) for i in [0, n), Concurrency at a time, returning
// how many failed and how long it took. The dials run on Concurrency
// goroutines that each take the next index until none is left: a
// goroutine per dial would start on the smallest stack and grow it
// through the handshake every time, CPU the load takes from the node it
// measures.
func (r *runner) dialAll(ctx context.Context, n int, open func(ctx context.Context, i int) error) (failed int, took time.Duration) {
	start := time.Now()
	var nf, next atomic.Int64
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if ctx.Err() != nil {
					nf.Add(1)
					continue
				}
				dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				if err := open(dctx, i); err != nil {
					nf.Add(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	return int(nf.Load()), time.Since(start)
}

// idleSet is visitors that connected, said hello and now only keep alive.
type idleSet struct {
	conns []*conn
}

// dialIdle opens n idle visitors; each gets a reader that drops what
// arrives.
func (r *runner) dialIdle(ctx context.Context, n int) (*idleSet, int, time.Duration) {
	s := &idleSet{conns: make([]*conn, n)}
	failed, took := r.dialAll(ctx, n, func(ctx context.Context, i int) error {
		c, err := r.visitor(ctx, "/")
		if err != nil {
			return err
		}
		s.conns[i] = c
		r.wg.Go(func() { c.discard(context.Background()) })
		return nil
	})
	return s, failed, took
}

// keepAlive pings every idle socket about every 30 s, spread over the
// period, so the node's idle timeout (75 s) never closes them, until stop.
func (s *idleSet) keepAlive(stop <-chan struct{}) {
	ping := []byte(`{"type":"ping"}`)
	const period = 30 * time.Second
	if len(s.conns) == 0 {
		<-stop
		return
	}
	for {
		for _, c := range s.conns {
			select {
			case <-stop:
				return
			case <-time.After(period / time.Duration(len(s.conns)+1)):
			}
			if c != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = c.send(ctx, ping)
				cancel()
			}
		}
	}
}

func (s *idleSet) held() int {
	n := 0
	for _, c := range s.conns {
		if c != nil {
			n++
		}
	}
	return n
}

func (s *idleSet) close() {
	for _, c := range s.conns {
		if c != nil {
			c.closeNow()
		}
	}
}

// run executes the scenario in this process.
func (r *runner) run(ctx context.Context, ph phaser) (*Report, error) {
	if r.cfg.Scenario == "storm" {
		return r.storm(ctx, ph)
	}
	rep := &Report{Scenario: r.cfg.Scenario}
	setup := time.Now()
	var idle *idleSet
	var cp *chatPart
	var ep *eventsPart
	defer func() {
		if idle != nil {
			idle.close()
		}
		if cp != nil {
			cp.close()
		}
		if ep != nil {
			ep.close()
		}
		r.wg.Wait()
	}()
	sc := r.cfg.Scenario
	if sc == "idle" || (sc == "mixed" && r.cfg.Visitors > 0) {
		var failed int
		idle, failed, _ = r.dialIdle(ctx, r.cfg.Visitors)
		rep.Connections += idle.held()
		rep.Failed += failed
	}
	if sc == "chat" || (sc == "mixed" && r.cfg.Pairs > 0) {
		cp = &chatPart{r: r, seen: make(map[string]int, int(r.cfg.Rate*r.cfg.Duration.Seconds())+16)}
		if err := cp.setup(ctx); err != nil {
			return nil, err
		}
	}
	if sc == "events" || (sc == "mixed" && r.cfg.Streamers > 0) {
		ep = &eventsPart{r: r}
		ep.setup(ctx)
	}
	rep.ConnectTime = time.Since(setup).Seconds()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if err := ph.begin(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	window, stop := context.WithTimeout(ctx, r.cfg.Duration)
	var wg sync.WaitGroup
	if idle != nil {
		wg.Go(func() { idle.keepAlive(window.Done()) })
	}
	if cp != nil {
		wg.Go(func() { cp.send(ctx, window.Done()) })
	}
	if ep != nil {
		wg.Go(func() { ep.stream(ctx, window.Done()) })
	}
	<-window.Done()
	stop()
	wg.Wait()
	sending := time.Since(start)
	// Drain: wait a little for acks, deliveries and offers in flight.
	if cp != nil {
		cp.drain(5*time.Second, 2*time.Minute)
	}
	if ep != nil {
		ep.drain(3 * time.Second)
	}
	rep.Window = time.Since(start).Seconds()
	if err := ph.end(ctx); err != nil {
		return nil, err
	}
	if cp != nil {
		cp.report(rep, sending)
		cp.resolve(ctx)
	}
	if ep != nil {
		ep.report(rep, sending)
	}
	return rep, nil
}

// storm opens the visitors as fast as the concurrency allows; each counts
// only once its welcome arrived (fully usable).
func (r *runner) storm(ctx context.Context, ph phaser) (*Report, error) {
	if err := ph.begin(ctx); err != nil {
		return nil, err
	}
	idle, failed, took := r.dialIdle(ctx, r.cfg.Visitors)
	defer func() {
		idle.close()
		r.wg.Wait()
	}()
	if err := ph.end(ctx); err != nil {
		return nil, err
	}
	return &Report{Scenario: "storm", Connections: idle.held(), Failed: failed, ConnectTime: took.Seconds(), Window: took.Seconds()}, nil
}

// finish turns the runner's histograms into the report's summaries.
func (rep *Report) finish(r *runner) {
	summarize := func(h *Histogram) *Summary {
		if h.Count() == 0 {
			return nil
		}
		s := h.Summarize()
		return &s
	}
	if rep.Window > 0 {
		rep.Throughput = float64(rep.Delivered) / rep.Window
	}
	rep.AckLatency = summarize(&r.ackLat)
	rep.Latency = summarize(&r.delLat)
	if rep.Events != nil {
		rep.Events.OfferLatency = summarize(&r.offerLat)
	}
}

// WriteText prints the report for people.
func (rep *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "scenario %s (%d load process(es))\n", rep.Scenario, rep.Procs)
	fmt.Fprintf(w, "  connections: %d held, %d failed, set up in %.2f s; measured window %.2f s\n", rep.Connections, rep.Failed, rep.ConnectTime, rep.Window)
	if rep.Sent > 0 {
		fmt.Fprintf(w, "  messages: %d sent, %d acked, %d delivered, %d lost, %d duplicated, %d error frames (%.0f msgs/s sent, %.0f/s delivered over the window)\n",
			rep.Sent, rep.Acked, rep.Delivered, rep.Lost, rep.Duplicated, rep.Errors, rep.RateActual, rep.Throughput)
	}
	if e := rep.Events; e != nil {
		fmt.Fprintf(w, "  events: %d streamers sent %d events in %d batches (%.0f events/s); %d struggled, %d offers answered them, %d unprompted offers\n",
			e.Streamers, e.Sent, e.Batches, e.Rate, e.Struggles, e.Offers, e.Unprompted)
	}
	lines := []struct {
		name string
		s    *Summary
	}{{"ack latency (visitor)", rep.AckLatency}, {"delivery latency (visitor→agent)", rep.Latency}}
	if rep.Events != nil {
		lines = append(lines, struct {
			name string
			s    *Summary
		}{"offer latency (triggering batch→offer)", rep.Events.OfferLatency})
	}
	for _, l := range lines {
		if l.s != nil {
			fmt.Fprintf(w, "  %s ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (n=%d)\n",
				l.name, l.s.P50, l.s.P90, l.s.P99, l.s.P999, l.s.Max, l.s.Count)
		}
	}
	if s := rep.Server; s != nil {
		fmt.Fprintf(w, "  server: RSS %.1f → %.1f MiB, CPU %.2f s (%.2f cores)", float64(s.RSSBeforeBytes)/(1<<20), float64(s.RSSAfterBytes)/(1<<20), s.CPUSeconds, s.CPUCores)
		if s.RSSPerConnKiB > 0 {
			fmt.Fprintf(w, ", %.1f KiB per connection", s.RSSPerConnKiB)
		}
		if s.CPUMsPer1000 > 0 {
			fmt.Fprintf(w, ", %.1f ms CPU per 1,000 messages", s.CPUMsPer1000)
		}
		if s.CPUMsPer1000Evts > 0 {
			fmt.Fprintf(w, ", %.1f ms CPU per 1,000 events", s.CPUMsPer1000Evts)
		}
		fmt.Fprintln(w)
		if s.RuntimeNote != "" {
			fmt.Fprintf(w, "  node runtime: %s\n", s.RuntimeNote)
		} else {
			fmt.Fprintf(w, "  node runtime: %d collections (%.1f ms paused)", s.GCCycles, s.GCPauseMs)
			for i, sw := range s.SchedWait {
				sep := ", "
				if i == 0 {
					sep = "; goroutine wake-ups waiting for a CPU "
				}
				fmt.Fprintf(w, "%sover %s ms %.2f %%", sep, strconv.FormatFloat(sw.OverMs, 'g', 3, 64), sw.Percent)
			}
			fmt.Fprintln(w)
		}
	}
}
