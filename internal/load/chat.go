package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/jsonwire"
)

// loadAgentPassword is the password of the load-test agent accounts.
// Run load tests against test deployments only.
const loadAgentPassword = "lifeline-load-agent"

// chatPart is the chat share of a run: Pairs visitors, each in its own
// conversation, served by Agents agent sockets.
type chatPart struct {
	r *runner

	sent, acked, delivered, dups, errs atomic.Int64
	failed                             int

	agents   []*chatAgent
	visitors []*chatVisitor
	live     int

	mu      sync.Mutex
	seen    map[string]int // client id → deliveries at the agent
	foreign []string       // delivered here, sent by another load process
}

// setup logs the agents in (online, with room for their share of the
// conversations), opens the visitors and starts each visitor's conversation
// with an opening message; the node's router assigns them to the agents.
func (p *chatPart) setup(ctx context.Context) error {
	cfg := p.r.cfg
	if err := p.openAgents(ctx); err != nil {
		p.close()
		return err
	}
	p.visitors = make([]*chatVisitor, cfg.Pairs)
	failed, _ := p.r.dialAll(ctx, cfg.Pairs, func(ctx context.Context, i int) error {
		v, err := p.openVisitor(ctx, i)
		if err == nil {
			p.visitors[i] = v
		}
		return err
	})
	p.failed = failed
	for _, v := range p.visitors {
		if v != nil {
			p.live++
		}
	}
	// Wait until the agents hold every conversation.
	deadline := time.Now().Add(2 * time.Minute)
	for p.assigned() < p.live && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.assigned(); n < p.live {
		return fmt.Errorf("only %d of %d conversations were assigned to the load agents", n, p.live)
	}
	return nil
}

// resolve resolves the conversations this run's agents claimed, so a
// later run against the same node does not find them still assigned to
// the load agents (each agent's hello would resend their transcripts, and
// they would take room the next run's conversations need). It waits, up
// to resolveWait, until the node has confirmed each (a resolved
// conversation frame): the sockets close right after, and a resolve
// still being handled then could be lost.
func (p *chatPart) resolve(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range p.agents {
		if a == nil {
			continue
		}
		a.mu.Lock()
		ids := make([]string, 0, len(a.claimed))
		for id := range a.claimed {
			ids = append(ids, id)
		}
		a.mu.Unlock()
		// Under the node's frame rate limit (20/s per socket).
		wg.Go(func() {
			tick := time.NewTicker(time.Second / 15)
			defer tick.Stop()
			for _, id := range ids {
				f := append(append([]byte(`{"type":"resolve","conversation_id":`), jsonwire.AppendString(nil, id)...), '}')
				if a.conn.send(ctx, f) != nil {
					return
				}
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
	for deadline := time.Now().Add(resolveWait); p.assigned() > 0 && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(10 * time.Millisecond)
	}
}

// resolveWait bounds how long resolve waits for the node's confirmations.
const resolveWait = 10 * time.Second

func (p *chatPart) assigned() int {
	n := 0
	for _, a := range p.agents {
		if a != nil {
			n += int(a.claimedCount())
		}
	}
	return n
}

func (p *chatPart) close() {
	for _, a := range p.agents {
		if a != nil {
			a.conn.closeNow()
		}
	}
	for _, v := range p.visitors {
		if v != nil {
			v.conn.closeNow()
		}
	}
}

// send runs every visitor's open-loop send loop until stop.
func (p *chatPart) send(ctx context.Context, stop <-chan struct{}) {
	if p.live == 0 {
		return
	}
	// Each visitor sends at Rate/live per second from a random phase,
	// whatever the server's answers do.
	interval := time.Duration(float64(time.Second) * float64(p.live) / p.r.cfg.Rate)
	var wg sync.WaitGroup
	for _, v := range p.visitors {
		if v != nil {
			wg.Go(func() { v.sendLoop(ctx, stop, p, interval) })
		}
	}
	wg.Wait()
}

// drain waits for the acks and deliveries in flight: until every message
// is answered and delivered, or nothing has moved for idle, or max has
// passed. A node that fell behind is given the time to catch up, so that
// "lost" means lost, not late.
func (p *chatPart) drain(idle, max time.Duration) {
	start := time.Now()
	last, lastMove := int64(-1), start
	for time.Since(start) < max {
		acked, delivered := p.acked.Load()+p.errs.Load(), p.delivered.Load()
		if acked >= p.sent.Load() && delivered >= p.acked.Load() {
			return
		}
		if n := acked + delivered; n != last {
			last, lastMove = n, time.Now()
		} else if time.Since(lastMove) > idle {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// report adds the chat counts to rep; a message acked but never delivered
// to an agent is lost. With several load processes the router may give a
// process's conversation to another's agent: the process lists the acked
// messages it did not see delivered, and the deliveries it saw of other
// processes' messages, and the parent matches them up.
func (p *chatPart) report(rep *Report, sending time.Duration) {
	p.mu.Lock()
	for _, v := range p.visitors {
		if v == nil {
			continue
		}
		v.mu.Lock()
		for id := range v.ackedIDs {
			if p.seen[id] == 0 {
				rep.Unmatched = append(rep.Unmatched, id)
			}
		}
		v.mu.Unlock()
	}
	rep.Foreign = append(rep.Foreign, p.foreign...)
	lost := int64(len(rep.Unmatched))
	p.mu.Unlock()
	rep.Connections += p.live + len(p.agents)
	rep.Failed += p.failed
	rep.Sent, rep.Acked, rep.Delivered = p.sent.Load(), p.acked.Load(), p.delivered.Load()
	rep.Lost, rep.Duplicated, rep.Errors = lost, p.dups.Load(), p.errs.Load()
	rep.RateActual = float64(p.sent.Load()) / sending.Seconds()
}

// chatAgent is one agent socket.
type chatAgent struct {
	conn     *conn
	id       string
	welcomed chan struct{} // closed by read at the welcome
	done     chan struct{} // closed when read returns

	mu      sync.Mutex
	claimed map[string]bool
}

func (a *chatAgent) claimedCount() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(len(a.claimed))
}

// openAgents creates (if needed), logs in and connects the load agents,
// online with capacity for their share of the conversations.
func (p *chatPart) openAgents(ctx context.Context) error {
	cfg := p.r.cfg
	admin, err := client.Login(ctx, cfg.URL, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("log in as %s (set LIFELINE_ADMIN_PASSWORD): %w", cfg.AdminEmail, err)
	}
	capacity := (cfg.Pairs + cfg.Agents - 1) / cfg.Agents
	if capacity > 100 {
		return fmt.Errorf("%d agents cannot serve %d conversations: an agent takes at most 100; use --agents %d", cfg.Agents, cfg.Pairs, (cfg.Pairs+99)/100)
	}
	presence := fmt.Appendf(nil, `{"type":"presence","status":"online","capacity":%d}`, capacity)
	// At once, a few at a time: creating and logging in an agent is two
	// bcrypt hashes on the node, the longest part of the set-up one by one.
	p.agents = make([]*chatAgent, cfg.Agents)
	errs := make([]error, cfg.Agents)
	slots := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range p.agents {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			p.agents[i], errs[i] = p.openAgent(ctx, admin, i, presence)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// openAgent creates load agent i (or finds it made by an earlier run),
// logs it in, opens its socket and sets it online with presence. The
// agent is returned whenever its socket opened, so that close closes it.
func (p *chatPart) openAgent(ctx context.Context, admin *client.Session, i int, presence []byte) (*chatAgent, error) {
	cfg := p.r.cfg
	email := fmt.Sprintf("load-agent-%d-%d@lifeline.local", cfg.proc, i)
	err := admin.Do(ctx, http.MethodPost, "/api/v1/agents", map[string]any{
		"email": email, "name": fmt.Sprintf("Load agent %d-%d", cfg.proc, i), "role": "agent", "password": loadAgentPassword,
	}, nil)
	var se *client.StatusError
	if err != nil && !(errors.As(err, &se) && se.Status == http.StatusConflict) {
		return nil, fmt.Errorf("create %s: %w", email, err)
	}
	s, err := client.Login(ctx, cfg.URL, email, loadAgentPassword)
	if err != nil {
		return nil, err
	}
	c, err := cfg.target.dial(ctx, p.r.dialer(), "/ws/agent", sessionCookie(s))
	if err != nil {
		return nil, err
	}
	a := newChatAgent(c, s.Agent.ID)
	if err := a.hello(ctx, p); err != nil {
		return a, fmt.Errorf("%s: %w", email, err)
	}
	return a, c.send(ctx, presence)
}

func newChatAgent(c *conn, id string) *chatAgent {
	return &chatAgent{conn: c, id: id, claimed: make(map[string]bool), welcomed: make(chan struct{}), done: make(chan struct{})}
}

// hello says hello and waits for the welcome. The socket is read from the
// start: the node makes an agent available at its hello, so the router
// may assign it a conversation (another load process's visitor's) before
// the welcome is sent, and that claim counts.
func (a *chatAgent) hello(ctx context.Context, p *chatPart) error {
	p.r.wg.Go(func() { a.read(p) })
	if err := a.conn.send(ctx, []byte(`{"type":"hello"}`)); err != nil {
		return err
	}
	select {
	case <-a.welcomed:
		return nil
	case <-a.done:
		return errors.New("the socket closed before the welcome")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// read records claims and deliveries on an agent socket.
func (a *chatAgent) read(p *chatPart) {
	defer close(a.done)
	a.conn.eachFrame(func(f *frame, now time.Time) {
		switch f.Type {
		case "welcome":
			select {
			case <-a.welcomed:
			default:
				close(a.welcomed)
			}
		case "conversation":
			cv := f.Conversation
			a.mu.Lock()
			switch {
			case cv.AgentID == a.id && cv.Status == "active":
				a.claimed[cv.ID] = true
			case cv.Status == "resolved":
				delete(a.claimed, cv.ID) // resolve's confirmation
			}
			a.mu.Unlock()
		case "message":
			m := f.Message
			if m.Author.Kind != "visitor" {
				return
			}
			sentAt, ok := sendTime(m.Text)
			if !ok || !strings.HasPrefix(m.ClientID, p.r.nonce+"-") {
				return // an opening message, or one of an earlier run
			}
			p.mu.Lock()
			p.seen[m.ClientID]++
			n := p.seen[m.ClientID]
			if n == 1 && !strings.HasPrefix(m.ClientID, p.r.procPrefix) {
				p.foreign = append(p.foreign, m.ClientID)
			}
			p.mu.Unlock()
			if n > 1 {
				p.dups.Add(1)
				return
			}
			p.delivered.Add(1)
			p.r.delLat.Record(now.Sub(sentAt))
		case "error":
			p.errs.Add(1)
		}
	})
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
	conn *conn
	idx  int

	mu       sync.Mutex
	pending  map[string]time.Time // client id → send time
	ackedIDs map[string]bool
}

// openVisitor opens a visitor and starts its conversation.
func (p *chatPart) openVisitor(ctx context.Context, idx int) (*chatVisitor, error) {
	c, err := p.r.visitor(ctx, "/help")
	if err != nil {
		return nil, err
	}
	open := fmt.Appendf(nil, `{"type":"message","client_id":"open-%s-%d-%d","text":"hello"}`, p.r.nonce, p.r.cfg.proc, idx)
	if err := c.send(ctx, open); err != nil {
		c.closeNow()
		return nil, err
	}
	if _, err := c.until(ctx, "ack"); err != nil {
		c.closeNow()
		return nil, err
	}
	v := &chatVisitor{conn: c, idx: idx, pending: make(map[string]time.Time), ackedIDs: make(map[string]bool)}
	p.r.wg.Go(func() { v.read(p) })
	return v, nil
}

func (v *chatVisitor) read(p *chatPart) {
	v.conn.eachFrame(func(f *frame, now time.Time) {
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
				p.acked.Add(1)
				p.r.ackLat.Record(now.Sub(at))
			}
		case "error":
			p.errs.Add(1)
		}
	})
}

// sendLoop sends until stop is closed. Writes use ctx, not a context that
// ends with the sending window: an expiring write context closes the socket
// (coder/websocket), which would lose the acks still in flight.
func (v *chatVisitor) sendLoop(ctx context.Context, stop <-chan struct{}, p *chatPart, interval time.Duration) {
	idPrefix := fmt.Sprintf("%s%d-", p.r.procPrefix, v.idx)
	var buf []byte
	pace(stop, interval, func(n int, now time.Time) bool {
		id := idPrefix + strconv.Itoa(n)
		buf = append(append(append(buf[:0], `{"type":"message","client_id":"`...), id...), `","text":"t=`...)
		buf = strconv.AppendInt(buf, now.UnixNano(), 10)
		buf = append(buf, ` load message"}`...)
		v.mu.Lock()
		v.pending[id] = now
		v.mu.Unlock()
		if err := v.conn.send(ctx, buf); err != nil {
			return false
		}
		p.sent.Add(1)
		return true
	})
}

// pace calls send at interval, open loop, from a random phase, until stop
// is closed or send returns false; n counts the calls. A late call is
// followed at once by the next.
func pace(stop <-chan struct{}, interval time.Duration, send func(n int, now time.Time) bool) {
	// next is this sender's own grid: starting it at the phase keeps the
	// senders spread out; starting them all at now would line every one
	// up on the same instants after the first send, and the node would
	// see bursts of a whole interval's messages at once.
	phase := time.Duration(rand.Int64N(int64(interval) + 1))
	timer := time.NewTimer(phase)
	defer timer.Stop()
	next := time.Now().Add(phase)
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
		if !send(n, now) {
			return
		}
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
		} else {
			next = time.Now()
			timer.Reset(0)
		}
	}
}

// sessionCookie is the Cookie header of s's login, for the agent socket.
func sessionCookie(s *client.Session) string {
	u, err := url.Parse(s.Base)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for i, c := range s.HTTP.Jar.Cookies(u) {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.Name + "=" + c.Value)
	}
	return b.String()
}
