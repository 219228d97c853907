package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// binDir holds the binary built for this test run; TestMain removes it.
var binDir string

// buildBinary compiles the real lifeline binary once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "lifeline-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "lifeline")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// proc is a lifeline process started from the built binary.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	logs *syncBuffer
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startProc runs the binary with args and waits for /readyz on addr.
func startProc(t *testing.T, addr string, args ...string) *proc {
	t.Helper()
	p := launchProc(t, addr, args...)
	waitServing(t, "http://"+addr)
	return p
}

// launchProc runs the binary with args, killing it when the test ends.
func launchProc(t *testing.T, addr string, args ...string) *proc {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{done: make(chan struct{}), logs: &syncBuffer{}}
	p.cmd = exec.Command(bin, append([]string{"serve", "--addr", addr, "--log-format", "json", "--log-level", "warn"}, args...)...)
	p.cmd.Env = append(os.Environ(), "LIFELINE_ADMIN_PASSWORD="+testPassword)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("node %s (pid %d) output:\n%s", addr, p.cmd.Process.Pid, p.logs.String())
		}
	})
	return p
}

// kill sends SIGKILL to the process this test started, by PID, and waits.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// party is one side of the conversation in the crash test: it sends its
// messages one at a time, reconnecting and resending on any failure, and
// records every message frame it is shown.
type party struct {
	name   string
	dial   func(ctx context.Context, lastSeq int64) (*client.Conn, error)
	convID func() string

	mu      sync.Mutex
	shown   []chat.Message
	lastSeq int64
	acked   map[string]int64 // client id → seq
	problem error
}

func (p *party) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.problem == nil {
		p.problem = err
	}
}

// read consumes one connection's frames until it breaks.
func (p *party) read(ctx context.Context, c *client.Conn, acks chan<- client.Frame) {
	for {
		f, err := c.Next(ctx)
		if err != nil {
			close(acks)
			return
		}
		switch f.Type {
		case "ack":
			acks <- f
		case "message":
			m, err := f.ChatMessage()
			if err != nil {
				p.fail(err)
				continue
			}
			p.mu.Lock()
			if m.Seq != p.lastSeq+1 {
				if p.problem == nil {
					p.problem = fmt.Errorf("%s was shown seq %d after %d (a gap or a duplicate)", p.name, m.Seq, p.lastSeq)
				}
			} else {
				p.lastSeq = m.Seq
				p.shown = append(p.shown, m)
			}
			p.mu.Unlock()
		}
	}
}

// run sends n messages, each acknowledged before the next, then stays
// connected (reconnecting as needed) until it has been shown total messages.
func (p *party) run(ctx context.Context, n, total int, sent *atomic.Int64) {
	var conn *client.Conn
	var acks chan client.Frame
	defer func() {
		if conn != nil {
			conn.CloseNow()
		}
	}()
	for i := 0; ; {
		p.mu.Lock()
		caughtUp := p.lastSeq >= int64(total)
		p.mu.Unlock()
		if i == n && caughtUp {
			return
		}
		if ctx.Err() != nil {
			p.fail(fmt.Errorf("%s: out of time after %d messages", p.name, i))
			return
		}
		if conn == nil {
			p.mu.Lock()
			last := p.lastSeq
			p.mu.Unlock()
			c, err := p.dial(ctx, last)
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			conn, acks = c, make(chan client.Frame, 16)
			go p.read(ctx, c, acks)
		}
		if i == n {
			// All sent: listen until caught up, or reconnect if the socket breaks.
			select {
			case _, open := <-acks:
				if !open {
					conn.CloseNow()
					conn = nil
				}
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		id := fmt.Sprintf("%s-%04d", p.name, i)
		frame := map[string]any{"type": "message", "client_id": id, "text": "message " + id}
		if cid := p.convID(); cid != "" {
			frame["conversation_id"] = cid
		}
		if p.sendAndWait(ctx, conn, acks, id, frame) {
			i++
			sent.Add(1)
			continue
		}
		// Broken: reconnect and resend the same client id. Wait for the
		// reader first, or a frame it is still handling could land after
		// the next hello took lastSeq and be shown twice.
		conn.CloseNow()
		for range acks {
		}
		conn = nil
	}
}

// sendAndWait sends one message and waits for its ack on this connection.
func (p *party) sendAndWait(ctx context.Context, conn *client.Conn, acks <-chan client.Frame, id string, frame map[string]any) bool {
	if conn.Send(ctx, frame) != nil {
		return false
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f, open := <-acks:
			if !open {
				return false
			}
			if f.ClientID == id {
				p.mu.Lock()
				p.acked[id] = f.Seq
				p.mu.Unlock()
				return true
			}
		case <-timeout:
			return false
		}
	}
}

func TestKill9LosesNoAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	testKill9(t, 500, "--data", t.TempDir())
}

// TestKill9OnRedisClusterLosesNoAcknowledgedMessage is the same on a
// three-master Redis Cluster (sharded pub/sub, one slot per conversation).
func TestKill9OnRedisClusterLosesNoAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	addrs := redistest.NewCluster(t).Addrs()
	u := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	testKill9(t, 200, "--redis", u)
}

// testKill9 runs a node with args, lets a visitor and an agent exchange
// perSide messages each way while the node is SIGKILLed and restarted
// twice, and checks that every acknowledged message is stored and shown
// exactly once, in order.
func testKill9(t *testing.T, perSide int, args ...string) {
	addr := freePort(t)
	base := "http://" + addr
	srv := startProc(t, addr, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	var convID atomic.Value
	convID.Store("")
	var token string

	admin, err := client.Login(ctx, base, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	// The visitor speaks first; its first ack names the conversation.
	visitorSide := &party{name: "v", acked: map[string]int64{}, convID: func() string { return "" }}
	visitorSide.dial = func(ctx context.Context, last int64) (*client.Conn, error) {
		c, err := client.DialVisitor(ctx, base, "demo", client.Options{Origin: base})
		if err != nil {
			return nil, err
		}
		if err := c.Send(ctx, map[string]any{"type": "hello", "token": token, "last_seq": last}); err != nil {
			c.CloseNow()
			return nil, err
		}
		w, err := c.Until(ctx, "welcome", nil)
		if err != nil {
			c.CloseNow()
			return nil, err
		}
		token = w.Token
		return c, nil
	}
	agentSide := &party{name: "a", acked: map[string]int64{}, convID: func() string { return convID.Load().(string) }}
	agentSide.dial = func(ctx context.Context, last int64) (*client.Conn, error) {
		c, err := client.DialAgent(ctx, base, client.Options{Origin: base, HTTPClient: admin.HTTP})
		if err != nil {
			return nil, err
		}
		resume := map[string]int64{}
		if id := convID.Load().(string); id != "" {
			resume[id] = last
		}
		if err := c.Send(ctx, map[string]any{"type": "hello", "resume": resume}); err != nil {
			c.CloseNow()
			return nil, err
		}
		if _, err := c.Until(ctx, "welcome", nil); err != nil {
			c.CloseNow()
			return nil, err
		}
		return c, nil
	}

	// Start the conversation so the agent knows where to write.
	vc, err := visitorSide.dial(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := vc.Send(ctx, map[string]any{"type": "message", "client_id": "opening", "text": "hello"}); err != nil {
		t.Fatal(err)
	}
	ack, err := vc.Until(ctx, "ack", nil)
	if err != nil {
		t.Fatal(err)
	}
	vc.Close()
	convID.Store(ack.ConversationID)

	var sent atomic.Int64
	var wg sync.WaitGroup
	for _, p := range []*party{visitorSide, agentSide} {
		wg.Go(func() { p.run(ctx, perSide, 1+2*perSide, &sent) })
	}
	// Kill the node twice at random points mid-stream and restart it.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	n := int64(perSide)
	for _, at := range []int64{n/5 + rng.Int64N(3*n/5), n + rng.Int64N(4*n/5)} {
		for sent.Load() < at && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		t.Logf("SIGKILL after %d acknowledged messages", sent.Load())
		srv.kill()
		srv = startProc(t, addr, args...)
	}
	wg.Wait()

	want := 1 + 2*perSide
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		visitorSide.mu.Lock()
		agentSide.mu.Lock()
		done := visitorSide.lastSeq >= int64(want) && agentSide.lastSeq >= int64(want)
		agentSide.mu.Unlock()
		visitorSide.mu.Unlock()
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range []*party{visitorSide, agentSide} {
		p.mu.Lock()
		err := p.problem
		p.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}

	var tr struct{ Messages []chat.Message }
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/conversations/"+ack.ConversationID, nil, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Messages) != want {
		t.Fatalf("store holds %d messages, want %d", len(tr.Messages), want)
	}
	count := map[string]int{}
	nextIndex := map[string]int{"v": 0, "a": 0}
	for i, m := range tr.Messages {
		if m.Seq != int64(i+1) {
			t.Fatalf("stored message %d has seq %d", i, m.Seq)
		}
		count[m.ClientID]++
		if side, idx, ok := strings.Cut(m.ClientID, "-"); ok {
			var n int
			fmt.Sscanf(idx, "%d", &n)
			if n != nextIndex[side] {
				t.Fatalf("%s's message %d stored out of order (want %d next)", side, n, nextIndex[side])
			}
			nextIndex[side]++
		}
	}
	for _, p := range []*party{visitorSide, agentSide} {
		for id, seq := range p.acked {
			if count[id] != 1 {
				t.Errorf("acknowledged %s stored %d times, want once", id, count[id])
			}
			if tr.Messages[seq-1].ClientID != id {
				t.Errorf("ack said %s is seq %d, store has %s there", id, seq, tr.Messages[seq-1].ClientID)
			}
		}
		if len(p.shown) != want {
			t.Errorf("%s was shown %d messages, want %d", p.name, len(p.shown), want)
			continue
		}
		for i, m := range p.shown {
			if m.ClientID != tr.Messages[i].ClientID {
				t.Fatalf("%s was shown %s at seq %d, store has %s", p.name, m.ClientID, i+1, tr.Messages[i].ClientID)
			}
		}
	}
}
