package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifelinehq/lifeline/internal/client"
)

// loadAgentPassword is the password of the load-test agent accounts.
// Run load tests against test deployments only.
const loadAgentPassword = "lifeline-load-agent"

// chatRun is the shared state of a chat scenario.
type chatRun struct {
	sent, acked, delivered, dups, errs atomic.Int64
	ackLat, delLat                     Histogram

	mu   sync.Mutex
	seen map[string]int // client id → deliveries at the agent
}

// chat opens Pairs visitors and Agents agent sockets, pairs each visitor's
// conversation with an agent by claim, then sends visitor messages open
// loop at Rate for Duration, measuring ack latency at the visitor and
// delivery latency at the agent from the send time carried in the text.
func (r *runner) chat(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	if cfg.Pairs < 1 || cfg.Agents < 1 || cfg.Agents > cfg.Pairs || cfg.Rate <= 0 {
		return nil, errors.New("chat needs --pairs ≥ --agents ≥ 1 and --rate > 0")
	}
	run := &chatRun{seen: make(map[string]int, int(cfg.Rate*cfg.Duration.Seconds())+16)}
	agents, err := r.agents(ctx, run)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, a := range agents {
			a.conn.CloseNow()
		}
	}()

	start := time.Now()
	visitors := make([]*chatVisitor, cfg.Pairs)
	var failed atomic.Int64
	sem := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range visitors {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			v, err := r.chatVisitor(ctx, run, i, agents[i%len(agents)])
			if err != nil {
				failed.Add(1)
				return
			}
			visitors[i] = v
		})
	}
	wg.Wait()
	connectTime := time.Since(start)
	defer func() {
		for _, v := range visitors {
			if v != nil {
				v.conn.CloseNow()
			}
		}
	}()
	// Wait until every agent holds its conversations.
	deadline := time.Now().Add(60 * time.Second)
	for _, a := range agents {
		for a.claimedCount() < a.want.Load() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Open loop: each visitor sends at Rate/Pairs per second from a random
	// phase, whatever the server's answers do.
	live := 0
	for _, v := range visitors {
		if v != nil {
			live++
		}
	}
	interval := time.Duration(float64(time.Second) * float64(live) / cfg.Rate)
	sendCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	sendStart := time.Now()
	var senders sync.WaitGroup
	for _, v := range visitors {
		if v != nil {
			senders.Go(func() { v.sendLoop(ctx, sendCtx.Done(), run, interval) })
		}
	}
	senders.Wait()
	stop()
	sendTime := time.Since(sendStart)

	// Drain: wait a little for acks and deliveries in flight.
	drain := time.Now().Add(5 * time.Second)
	for (run.acked.Load()+run.errs.Load() < run.sent.Load() || run.delivered.Load() < run.acked.Load()) &&
		time.Now().Before(drain) {
		time.Sleep(10 * time.Millisecond)
	}
	run.mu.Lock()
	var lost int64
	for _, v := range visitors {
		if v == nil {
			continue
		}
		v.mu.Lock()
		for id := range v.ackedIDs {
			if run.seen[id] == 0 {
				lost++
			}
		}
		v.mu.Unlock()
	}
	run.mu.Unlock()
	ack, del := run.ackLat.Summarize(), run.delLat.Summarize()
	return &Report{
		Connections: live + len(agents), Failed: int(failed.Load()), ConnectTime: connectTime.Seconds(),
		Sent: run.sent.Load(), Acked: run.acked.Load(), Delivered: run.delivered.Load(), Lost: lost,
		Duplicated: run.dups.Load(), Errors: run.errs.Load(), AckLatency: &ack, Latency: &del,
		RateActual: float64(run.sent.Load()) / sendTime.Seconds(),
	}, nil
}

// chatAgent is one agent socket.
type chatAgent struct {
	conn *client.Conn
	id   string
	want atomic.Int64

	mu      sync.Mutex
	claimed map[string]bool
}

func (a *chatAgent) claimedCount() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(len(a.claimed))
}

// agents creates (if needed), logs in and connects the load agents, away so
// the router leaves the conversations to their claims.
func (r *runner) agents(ctx context.Context, run *chatRun) ([]*chatAgent, error) {
	admin, err := client.Login(ctx, r.cfg.URL, r.cfg.AdminEmail, r.cfg.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("log in as %s (set LIFELINE_ADMIN_PASSWORD): %w", r.cfg.AdminEmail, err)
	}
	agents := make([]*chatAgent, r.cfg.Agents)
	for i := range agents {
		email := fmt.Sprintf("load-agent-%d@lifeline.local", i)
		err := admin.Do(ctx, http.MethodPost, "/api/v1/agents", map[string]any{
			"email": email, "name": fmt.Sprintf("Load agent %d", i), "role": "agent", "password": loadAgentPassword,
		}, nil)
		var se *client.StatusError
		if err != nil && !(errors.As(err, &se) && se.Status == http.StatusConflict) {
			return nil, fmt.Errorf("create %s: %w", email, err)
		}
		s, err := client.Login(ctx, r.cfg.URL, email, loadAgentPassword)
		if err != nil {
			return nil, err
		}
		s.HTTP.Transport = r.transport()
		c, err := s.DialAgent(ctx)
		if err != nil {
			return nil, err
		}
		a := &chatAgent{conn: c, id: s.Agent.ID, claimed: make(map[string]bool)}
		agents[i] = a
		if err := c.Send(ctx, map[string]any{"type": "hello"}); err != nil {
			return nil, err
		}
		if _, err := c.Until(ctx, "welcome", nil); err != nil {
			return nil, err
		}
		if err := c.Send(ctx, map[string]any{"type": "presence", "status": "away"}); err != nil {
			return nil, err
		}
		go a.read(ctx, run)
	}
	return agents, nil
}

// read records claims and deliveries on an agent socket.
func (a *chatAgent) read(ctx context.Context, run *chatRun) {
	for {
		f, err := a.conn.Next(ctx)
		if err != nil {
			return
		}
		switch f.Type {
		case "conversation":
			cv, err := f.Conv()
			if err == nil && cv.AgentID == a.id && cv.Status == "active" {
				a.mu.Lock()
				a.claimed[cv.ID] = true
				a.mu.Unlock()
			}
		case "message":
			m, err := f.ChatMessage()
			if err != nil || m.Author.Kind != "visitor" {
				continue
			}
			sentAt, ok := sendTime(m.Text)
			if !ok {
				continue // an opening message
			}
			run.mu.Lock()
			run.seen[m.ClientID]++
			n := run.seen[m.ClientID]
			run.mu.Unlock()
			if n > 1 {
				run.dups.Add(1)
				continue
			}
			run.delivered.Add(1)
			run.delLat.Record(time.Since(sentAt))
		case "error":
			run.errs.Add(1)
		}
	}
}

// sendTime reads the send timestamp a load message carries ("t=<unix ns> …").
func sendTime(text string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(text, "t=")
	if !ok {
		return time.Time{}, false
	}
	ns, _, _ := strings.Cut(rest, " ")
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// chatVisitor is one visitor socket with its conversation.
type chatVisitor struct {
	conn *client.Conn
	idx  int

	mu       sync.Mutex
	pending  map[string]time.Time // client id → send time
	ackedIDs map[string]bool
}

// chatVisitor opens a visitor, starts its conversation and asks agent to
// claim it.
func (r *runner) chatVisitor(ctx context.Context, run *chatRun, idx int, agent *chatAgent) (*chatVisitor, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := r.visitor(dctx)
	if err != nil {
		return nil, err
	}
	if err := c.Send(dctx, map[string]any{"type": "message", "client_id": fmt.Sprintf("open-%d", idx), "text": "hello"}); err != nil {
		c.CloseNow()
		return nil, err
	}
	ack, err := c.Until(dctx, "ack", nil)
	if err != nil {
		c.CloseNow()
		return nil, err
	}
	agent.want.Add(1)
	if err := agent.conn.Send(dctx, map[string]any{"type": "claim", "conversation_id": ack.ConversationID}); err != nil {
		c.CloseNow()
		return nil, err
	}
	v := &chatVisitor{conn: c, idx: idx, pending: make(map[string]time.Time), ackedIDs: make(map[string]bool)}
	go v.read(ctx, run)
	return v, nil
}

func (v *chatVisitor) read(ctx context.Context, run *chatRun) {
	for {
		f, err := v.conn.Next(ctx)
		if err != nil {
			return
		}
		switch f.Type {
		case "ack":
			v.mu.Lock()
			at, ok := v.pending[f.ClientID]
			if ok {
				delete(v.pending, f.ClientID)
				v.ackedIDs[f.ClientID] = true
			}
			v.mu.Unlock()
			if ok {
				run.acked.Add(1)
				run.ackLat.Record(time.Since(at))
			}
		case "error":
			run.errs.Add(1)
		}
	}
}

// sendLoop sends until stop is closed. Writes use ctx, not a context that
// ends with the sending window: an expiring write context closes the socket
// (coder/websocket), which would lose the acks still in flight.
func (v *chatVisitor) sendLoop(ctx context.Context, stop <-chan struct{}, run *chatRun, interval time.Duration) {
	// A random phase spreads the visitors over the interval.
	timer := time.NewTimer(time.Duration(rand.Int64N(int64(interval) + 1)))
	defer timer.Stop()
	next := time.Now()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-timer.C:
		}
		select {
		case <-stop:
			return
		default:
		}
		now := time.Now()
		id := fmt.Sprintf("%d-%d", v.idx, n)
		v.mu.Lock()
		v.pending[id] = now
		v.mu.Unlock()
		text := "t=" + strconv.FormatInt(now.UnixNano(), 10) + " load message"
		if err := v.conn.Send(ctx, map[string]any{"type": "message", "client_id": id, "text": text}); err != nil {
			return
		}
		run.sent.Add(1)
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
		} else {
			next = time.Now()
			timer.Reset(0)
		}
	}
}
