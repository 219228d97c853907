package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A run with --procs N starts N copies of this executable as
// `lifeline load --child --proc I …`, each with a share of the load. The
// children set up their connections, say "@ready" on stderr and wait for
// a line on stdin; the parent reads the server's figures and lets them all
// go at once. When its window has ended a child says "@done" and waits
// again, with every connection still open, so the parent reads the
// server's memory and CPU before anyone disconnects. Then each child
// closes its sockets and prints its report, raw histograms included, as
// JSON on stdout; the parent merges them.

const (
	ctlReady = "@ready"
	ctlDone  = "@done"
)

// childPhaser is the child's side of that exchange.
type childPhaser struct {
	in  *bufio.Reader
	out io.Writer
}

func (p *childPhaser) wait(ctx context.Context, say string) error {
	if _, err := fmt.Fprintln(p.out, say); err != nil {
		return err
	}
	if _, err := p.in.ReadString('\n'); err != nil {
		return fmt.Errorf("wait for the parent after %s: %w", say, err)
	}
	return ctx.Err()
}

func (p *childPhaser) begin(ctx context.Context) error { return p.wait(ctx, ctlReady) }
func (p *childPhaser) end(ctx context.Context) error   { return p.wait(ctx, ctlDone) }

// runChild runs this process's share under a parent's control.
func runChild(ctx context.Context, c Config, stdin io.Reader, ctl io.Writer) (*Report, error) {
	if err := c.setDefaults(); err != nil {
		return nil, err
	}
	r := newRunner(c)
	rep, err := r.run(ctx, &childPhaser{in: bufio.NewReader(stdin), out: ctl})
	if err != nil {
		return nil, err
	}
	rep.Hists = map[string]*HistData{"ack": r.ackLat.Export(), "delivery": r.delLat.Export(), "offer": r.offerLat.Export()}
	rep.finish(r)
	return rep, nil
}

// share is part i of n, spread so the parts add up to n.
func share(total, i, n int) int { return total*(i+1)/n - total*i/n }

// childArgs are the flags of child i of n.
func childArgs(c Config, i, n int) []string {
	pairs := share(c.Pairs, i, n)
	agents := share(c.Agents, i, n)
	if pairs > 0 {
		agents = min(max(agents, 1), pairs)
	}
	rate, evRate := 0.0, 0.0
	if c.Pairs > 0 {
		rate = c.Rate * float64(pairs) / float64(c.Pairs)
	}
	streamers := share(c.Streamers, i, n)
	if c.Streamers > 0 {
		evRate = c.EventRate * float64(streamers) / float64(c.Streamers)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return []string{"load", "--child", "--proc", strconv.Itoa(i), "--nonce", c.nonce,
		"--url", c.URL, "--site", c.Site, "--scenario", c.Scenario,
		"--visitors", strconv.Itoa(share(c.Visitors, i, n)),
		"--pairs", strconv.Itoa(pairs), "--agents", strconv.Itoa(agents), "--rate", f(rate),
		"--streamers", strconv.Itoa(streamers), "--event-rate", f(evRate),
		"--batch", strconv.Itoa(c.BatchSize), "--struggle", f(c.Struggle),
		"--duration", c.Duration.String(), "--sources", strings.Join(c.Sources, ","),
		"--admin-email", c.AdminEmail, "--concurrency", strconv.Itoa(c.Concurrency),
	}
}

type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout bytes.Buffer
	done   chan struct{} // closed once the process has exited
	err    error         // its exit error, set before done closes
}

func (ch *child) hasExited() bool {
	select {
	case <-ch.done:
		return true
	default:
		return false
	}
}

// runProcs runs the scenario in c.Procs child processes and merges their
// reports.
func runProcs(ctx context.Context, c Config, ph phaser) (*Report, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable to run --procs: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.nonce = newNonce()
	ctl := make(chan string, 2*c.Procs)
	children := make([]*child, c.Procs)
	var scans sync.WaitGroup
	defer func() {
		for _, ch := range children {
			if ch != nil && !ch.hasExited() {
				_ = ch.cmd.Process.Kill()
				<-ch.done
			}
		}
		scans.Wait()
	}()
	for i := range children {
		ch := &child{done: make(chan struct{})}
		ch.cmd = exec.CommandContext(ctx, exe, childArgs(c, i, c.Procs)...)
		ch.cmd.Env = append(os.Environ(), "LIFELINE_ADMIN_PASSWORD="+c.AdminPassword)
		ch.cmd.Stdout = &ch.stdout
		if ch.stdin, err = ch.cmd.StdinPipe(); err != nil {
			return nil, err
		}
		stderr, err := ch.cmd.StderrPipe()
		if err != nil {
			return nil, err
		}
		if err := ch.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start load process %d: %w", i, err)
		}
		children[i] = ch
		scans.Go(func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				switch line := sc.Text(); line {
				case ctlReady, ctlDone:
					ctl <- line
				default:
					fmt.Fprintf(os.Stderr, "load[%d]: %s\n", i, line)
				}
			}
			ch.err = ch.cmd.Wait()
			close(ch.done)
		})
	}
	// waitAll waits for one control line from every child, failing if a
	// child exits first.
	waitAll := func(want string, limit time.Duration) error {
		timeout := time.After(limit)
		for got := 0; got < len(children); {
			select {
			case line := <-ctl:
				if line == want {
					got++
				}
			case <-timeout:
				return fmt.Errorf("load processes did not report %s within %v", want, limit)
			case <-ctx.Done():
				return ctx.Err()
			default:
				for i, ch := range children {
					if ch.hasExited() {
						return fmt.Errorf("load process %d exited before %s: %v", i, want, ch.err)
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		return nil
	}
	release := func() {
		for _, ch := range children {
			_, _ = io.WriteString(ch.stdin, "go\n")
		}
	}
	if err := waitAll(ctlReady, 10*time.Minute); err != nil {
		return nil, err
	}
	if err := ph.begin(ctx); err != nil {
		return nil, err
	}
	release()
	if err := waitAll(ctlDone, c.Duration+5*time.Minute); err != nil {
		return nil, err
	}
	if err := ph.end(ctx); err != nil {
		return nil, err
	}
	release()
	total := &Report{Scenario: c.Scenario}
	merged := newRunner(Config{})
	var unmatched []string
	foreign := make(map[string]bool)
	for i, ch := range children {
		_ = ch.stdin.Close()
		var err error
		select {
		case <-ch.done:
			err = ch.err
		case <-time.After(2 * time.Minute):
			err = errors.New("did not exit")
		}
		if err != nil {
			return nil, fmt.Errorf("load process %d: %w", i, err)
		}
		var rep Report
		if err := json.Unmarshal(ch.stdout.Bytes(), &rep); err != nil {
			return nil, fmt.Errorf("read report of load process %d: %w", i, err)
		}
		total.add(&rep)
		unmatched = append(unmatched, rep.Unmatched...)
		for _, id := range rep.Foreign {
			foreign[id] = true
		}
		merged.ackLat.Merge(rep.Hists["ack"])
		merged.delLat.Merge(rep.Hists["delivery"])
		merged.offerLat.Merge(rep.Hists["offer"])
	}
	total.Lost = 0
	for _, id := range unmatched {
		if !foreign[id] {
			total.Lost++
		}
	}
	total.finish(merged)
	return total, nil
}

// add sums another process's counts into rep.
func (rep *Report) add(o *Report) {
	rep.Connections += o.Connections
	rep.Failed += o.Failed
	rep.ConnectTime = max(rep.ConnectTime, o.ConnectTime)
	rep.Window = max(rep.Window, o.Window)
	rep.Sent += o.Sent
	rep.Acked += o.Acked
	rep.Delivered += o.Delivered
	rep.Lost += o.Lost
	rep.Duplicated += o.Duplicated
	rep.Errors += o.Errors
	rep.RateActual += o.RateActual
	if e := o.Events; e != nil {
		if rep.Events == nil {
			rep.Events = &EventsReport{}
		}
		t := rep.Events
		t.Streamers += e.Streamers
		t.Sent += e.Sent
		t.Batches += e.Batches
		t.Rate += e.Rate
		t.Struggles += e.Struggles
		t.Offers += e.Offers
		t.Unprompted += e.Unprompted
	}
}
