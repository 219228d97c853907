package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/client"
)

// This file simulates many visitors and agents over real sockets for the
// many-node tests: each remembers what it was shown per conversation and
// fails on the first gap or duplicate, resends unacknowledged messages with
// the same client id after any failure, and reconnects (to another node if
// need be) resuming from the last sequence it saw.

// simLog is what one simulated person was shown and had acknowledged.
type simLog struct {
	name string

	mu          sync.Mutex
	last        map[string]int64          // conversation → highest seq shown
	shown       map[string][]chat.Message // conversation → messages shown, in order
	acked       map[string]int64          // conversation + "/" + client id → seq
	unavailable int                       // retryable "unavailable" error frames
	dials       map[string]int            // node → connections that said welcome
	problem     error
}

func newSimLog(name string) simLog {
	return simLog{name: name, last: map[string]int64{}, shown: map[string][]chat.Message{},
		acked: map[string]int64{}, dials: map[string]int{}}
}

func (l *simLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.problem == nil {
		l.problem = fmt.Errorf("%s: %w", l.name, err)
	}
}

func (l *simLog) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.problem
}

func (l *simLog) show(m chat.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if want := l.last[m.ConversationID] + 1; m.Seq != want {
		if l.problem == nil {
			l.problem = fmt.Errorf("%s was shown seq %d of %s, want %d (a gap or a duplicate)", l.name, m.Seq, m.ConversationID, want)
		}
		return
	}
	l.last[m.ConversationID] = m.Seq
	l.shown[m.ConversationID] = append(l.shown[m.ConversationID], m)
}

// conn is one socket of a simulated person: a goroutine pumps its frames
// into the log and the channels until the socket breaks.
type conn struct {
	c       *client.Conn
	replies chan client.Frame // acks and errors
	welcome chan client.Frame
	done    chan struct{} // closed when the pump has returned
}

// open starts pumping c's frames; other sees every frame but acks, errors
// and the first welcome.
func (l *simLog) open(ctx context.Context, c *client.Conn, other func(client.Frame)) *conn {
	k := &conn{c: c, replies: make(chan client.Frame, 64), welcome: make(chan client.Frame, 1), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		welcomed := false
		for {
			f, err := c.Next(ctx)
			if err != nil {
				return
			}
			switch f.Type {
			case "message":
				m, err := f.ChatMessage()
				if err != nil {
					l.fail(err)
					continue
				}
				l.show(m)
			case "welcome":
				// An agent's node sends a fresh welcome after it lost
				// broker traffic (a Redis restart: once per gap, and one
				// restart may make more than one); a visitor's never does.
				if welcomed && other != nil {
					other(f)
					continue
				}
				select {
				case k.welcome <- f:
					welcomed = true
				default:
					l.fail(errors.New("a second welcome"))
				}
				continue
			case "error":
				if f.Code == chat.CodeUnavailable {
					l.mu.Lock()
					l.unavailable++
					l.mu.Unlock()
					if !f.Retryable {
						l.fail(fmt.Errorf("unavailable error not marked retryable: %s", f.Raw))
					}
				}
				fallthrough
			case "ack":
				select {
				case k.replies <- f:
				case <-ctx.Done():
					return
				}
				continue
			}
			if other != nil {
				other(f)
			}
		}
	}()
	return k
}

// hello sends the hello frame and waits for the welcome.
func (k *conn) hello(ctx context.Context, frame map[string]any) (client.Frame, error) {
	if err := k.c.Send(ctx, frame); err != nil {
		return client.Frame{}, err
	}
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case w := <-k.welcome:
			return w, nil
		case f := <-k.replies:
			if f.Type == "error" && f.ClientID == "" {
				return f, fmt.Errorf("hello refused: %s", f.Raw)
			}
		case <-k.done:
			return client.Frame{}, errors.New("socket closed before welcome")
		case <-timeout.C:
			return client.Frame{}, errors.New("no welcome within 5 s")
		}
	}
}

// close drops the socket and waits for its pump.
func (k *conn) close() {
	k.c.CloseNow()
	<-k.done
}

type outcome int

const (
	acked  outcome = iota
	retry          // a retryable error frame: resend on the same socket
	broken         // the socket failed or went quiet: reconnect and resend
)

// send sends a message frame and waits for its ack or error.
func (l *simLog) send(ctx context.Context, k *conn, frame map[string]any) (client.Frame, outcome) {
	id := frame["client_id"].(string)
	if k.c.Send(ctx, frame) != nil {
		return client.Frame{}, broken
	}
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case f := <-k.replies:
			if f.ClientID != id {
				continue
			}
			if f.Type == "error" {
				if f.Retryable {
					return f, retry
				}
				l.fail(fmt.Errorf("message %s refused: %s", id, f.Raw))
				return f, broken
			}
			l.mu.Lock()
			l.acked[f.ConversationID+"/"+id] = f.Seq
			l.mu.Unlock()
			return f, acked
		case <-k.done:
			return client.Frame{}, broken
		case <-timeout.C:
			return client.Frame{}, broken
		case <-ctx.Done():
			return client.Frame{}, broken
		}
	}
}

// simVisitor sends n messages in one conversation, each acknowledged before
// the next, and stays connected until stop.
type simVisitor struct {
	simLog
	bases []string // nodes to connect to: the first that answers
	n     int
	pause time.Duration // up to this long between messages

	token string // guarded by mu
	conv  string
}

func (v *simVisitor) dial(ctx context.Context) (*conn, error) {
	for _, base := range v.bases {
		c, err := client.DialVisitor(ctx, base, "demo", client.Options{Origin: base})
		if err != nil {
			continue
		}
		k := v.open(ctx, c, nil)
		v.mu.Lock()
		hello := map[string]any{"type": "hello", "token": v.token, "last_seq": v.last[v.conv]}
		v.mu.Unlock()
		w, err := k.hello(ctx, hello)
		if err != nil {
			k.close()
			continue
		}
		v.mu.Lock()
		v.token = w.Token
		v.dials[base]++
		v.mu.Unlock()
		return k, nil
	}
	return nil, errors.New("no node answered")
}

func (v *simVisitor) run(ctx context.Context, stop <-chan struct{}, sent *atomic.Int64) {
	var k *conn
	defer func() {
		if k != nil {
			k.close()
		}
	}()
	for i := 0; ; {
		if ctx.Err() != nil {
			v.fail(fmt.Errorf("out of time after %d messages", i))
			return
		}
		if k == nil {
			var err error
			if k, err = v.dial(ctx); err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
		}
		if i == v.n {
			select {
			case <-stop:
				return
			case <-k.done:
				k.close()
				k = nil
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		id := "v-" + strconv.Itoa(i)
		f, out := v.send(ctx, k, map[string]any{"type": "message", "client_id": id, "text": v.name + " says " + id})
		switch out {
		case acked:
			v.mu.Lock()
			v.conv = f.ConversationID
			v.mu.Unlock()
			i++
			sent.Add(1)
			time.Sleep(rand.N(v.pause + 1))
		case retry:
			time.Sleep(100 * time.Millisecond)
		case broken:
			k.close()
			k = nil
		}
	}
}

// caughtUp reports whether v sent everything and was shown total messages.
func (v *simVisitor) caughtUp(total int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.conv != "" && len(v.acked) == v.n && len(v.shown[v.conv]) >= total
}

// simAgent answers every visitor message in the conversations assigned to
// it, up to n replies each, from one socket on one node.
type simAgent struct {
	simLog
	id      string
	session *client.Session
	n       int

	replied map[string]int // conversation → replies acknowledged; guarded by mu
	wake    chan struct{}

	tokens float64 // client-side rate limit under the server's 20/s
	at     time.Time
}

func newSimAgent(name, id string, s *client.Session, n int) *simAgent {
	return &simAgent{simLog: newSimLog(name), id: id, session: s, n: n, replied: map[string]int{}, wake: make(chan struct{}, 1)}
}

func (a *simAgent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// assigned records a conversation given to this agent.
func (a *simAgent) assigned(raw json.RawMessage) {
	var c chat.Conversation
	if err := json.Unmarshal(raw, &c); err != nil {
		a.fail(err)
		return
	}
	if c.AgentID != a.id || c.Status != chat.StatusActive {
		return
	}
	a.mu.Lock()
	if _, ok := a.replied[c.ID]; !ok {
		a.replied[c.ID] = 0
	}
	a.mu.Unlock()
	a.poke()
}

func (a *simAgent) dial(ctx context.Context) (*conn, error) {
	c, err := a.session.DialAgent(ctx)
	if err != nil {
		return nil, err
	}
	k := a.open(ctx, c, func(f client.Frame) {
		switch f.Type {
		case "conversation":
			a.assigned(f.Conversation)
		case "welcome": // after a broker gap: the conversations as they are now
			for _, raw := range f.Assigned {
				a.assigned(raw)
			}
		}
	})
	a.mu.Lock()
	resume := make(map[string]int64, len(a.replied))
	for id := range a.replied {
		resume[id] = a.last[id]
	}
	a.mu.Unlock()
	w, err := k.hello(ctx, map[string]any{"type": "hello", "resume": resume})
	if err != nil {
		k.close()
		return nil, err
	}
	for _, raw := range w.Assigned {
		a.assigned(raw)
	}
	a.mu.Lock()
	a.dials[a.session.Base]++
	a.mu.Unlock()
	return k, nil
}

// next picks a conversation whose visitor said more than the agent answered.
func (a *simAgent) next() (conv string, k int, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, done := range a.replied {
		if done >= a.n {
			continue
		}
		said := 0
		for _, m := range a.shown[id] {
			if m.Author.Kind == chat.AuthorVisitor {
				said++
			}
		}
		if said > done {
			return id, done, true
		}
	}
	return "", 0, false
}

// pace keeps the agent under the server's frame rate (20/s, burst 60).
func (a *simAgent) pace() {
	const rate, burst = 15.0, 40.0
	now := time.Now()
	if a.at.IsZero() {
		a.tokens = burst
	} else {
		a.tokens = min(burst, a.tokens+now.Sub(a.at).Seconds()*rate)
	}
	a.at = now
	if a.tokens < 1 {
		time.Sleep(time.Duration((1 - a.tokens) / rate * float64(time.Second)))
		a.tokens = 1
		a.at = time.Now()
	}
	a.tokens--
}

func (a *simAgent) run(ctx context.Context, stop <-chan struct{}, sent *atomic.Int64) {
	var k *conn
	defer func() {
		if k != nil {
			k.close()
		}
	}()
	for {
		if ctx.Err() != nil {
			a.fail(errors.New("out of time"))
			return
		}
		if k == nil {
			var err error
			a.pace()
			if k, err = a.dial(ctx); err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		conv, i, ok := a.next()
		if !ok {
			select {
			case <-stop:
				return
			case <-a.wake:
			case <-k.done:
				k.close()
				k = nil
			case <-time.After(20 * time.Millisecond): // messages arrive without a poke
			}
			continue
		}
		a.pace()
		id := "a-" + strconv.Itoa(i)
		_, out := a.send(ctx, k, map[string]any{"type": "message", "conversation_id": conv, "client_id": id, "text": a.name + " answers " + id})
		switch out {
		case acked:
			a.mu.Lock()
			a.replied[conv]++
			a.mu.Unlock()
			sent.Add(1)
		case retry:
			time.Sleep(100 * time.Millisecond)
		case broken:
			k.close()
			k = nil
		}
	}
}

// sim is a crowd of visitors and agents exchanging perSide messages each
// way in every conversation.
type sim struct {
	visitors []*simVisitor
	agents   []*simAgent
	perSide  int
	sent     atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (s *sim) start(ctx context.Context) {
	s.stop = make(chan struct{})
	for _, a := range s.agents {
		s.wg.Go(func() { a.run(ctx, s.stop, &s.sent) })
	}
	for _, v := range s.visitors {
		s.wg.Go(func() { v.run(ctx, s.stop, &s.sent) })
	}
}

// total is how many messages the crowd acknowledges in all.
func (s *sim) total() int64 { return int64(2 * s.perSide * len(s.visitors)) }

// problem returns the first gap, duplicate or refusal anyone saw.
func (s *sim) problem() error {
	for _, a := range s.agents {
		if err := a.err(); err != nil {
			return err
		}
	}
	for _, v := range s.visitors {
		if err := v.err(); err != nil {
			return err
		}
	}
	return nil
}

// caughtUp reports whether every message was sent and shown to both sides.
func (s *sim) caughtUp() bool {
	want := 2 * s.perSide
	for _, v := range s.visitors {
		if !v.caughtUp(want) {
			return false
		}
	}
	complete := 0
	for _, a := range s.agents {
		a.mu.Lock()
		for id := range a.replied {
			if len(a.shown[id]) >= want && a.replied[id] == s.perSide {
				complete++
			}
		}
		a.mu.Unlock()
	}
	return complete >= len(s.visitors)
}

// finish waits until the crowd has caught up (or ctx ends, or someone saw
// a problem), then stops everyone.
func (s *sim) finish(ctx context.Context, t *testing.T, extra func() bool) {
	t.Helper()
	for ctx.Err() == nil && s.problem() == nil && !(s.caughtUp() && (extra == nil || extra())) {
		time.Sleep(50 * time.Millisecond)
	}
	timedOut := ctx.Err() != nil
	close(s.stop)
	s.wg.Wait()
	if timedOut {
		s.logStuck(t)
		t.Fatalf("the crowd did not catch up in time: %d of %d messages acknowledged", s.sent.Load(), s.total())
	}
	if err := s.problem(); err != nil {
		t.Fatal(err)
	}
}

// logStuck describes the conversations that did not complete.
func (s *sim) logStuck(t *testing.T) {
	t.Helper()
	want := 2 * s.perSide
	for _, v := range s.visitors {
		if v.caughtUp(want) {
			continue
		}
		t.Logf("%s (conversation %s) is stuck: acknowledged %v, shown up to seq %d, connections %v",
			v.name, v.conv, v.acked, v.last[v.conv], v.dials)
		for _, a := range s.agents {
			if n, ok := a.replied[v.conv]; ok {
				t.Logf("  its agent %s answered %d times and was shown up to seq %d", a.name, n, a.last[v.conv])
			}
		}
	}
}

// waitSent blocks until n messages are acknowledged.
func (s *sim) waitSent(ctx context.Context, t *testing.T, n int64) {
	t.Helper()
	for s.sent.Load() < n {
		if ctx.Err() != nil || s.problem() != nil {
			t.Fatalf("only %d of %d messages acknowledged: %v", s.sent.Load(), n, s.problem())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// verify checks every conversation's transcript, read over the REST API:
// gap-free seqs, each acknowledged message exactly once at the seq its ack
// named, each side's messages in the order sent, and every visitor and the
// agent of the conversation shown exactly the transcript.
func (s *sim) verify(ctx context.Context, t *testing.T, admin *client.Session) {
	t.Helper()
	want := 2 * s.perSide
	byConv := map[string]*simAgent{}
	for _, a := range s.agents {
		for id := range a.replied {
			if other := byConv[id]; other != nil {
				t.Errorf("conversation %s answered by both %s and %s", id, other.name, a.name)
			}
			byConv[id] = a
		}
	}
	for _, v := range s.visitors {
		var tr struct{ Messages []chat.Message }
		if err := admin.Do(ctx, http.MethodGet, "/api/v1/conversations/"+v.conv, nil, &tr); err != nil {
			t.Fatalf("transcript of %s: %v", v.name, err)
		}
		if len(tr.Messages) != want {
			t.Errorf("%s's conversation holds %d messages, want %d", v.name, len(tr.Messages), want)
			continue
		}
		count := map[string]int{}
		next := map[string]int{}
		for i, m := range tr.Messages {
			if m.Seq != int64(i+1) {
				t.Fatalf("%s: stored message %d has seq %d", v.name, i, m.Seq)
			}
			count[m.ClientID]++
			side, idx, _ := strings.Cut(m.ClientID, "-")
			if n, _ := strconv.Atoi(idx); n != next[side] {
				t.Errorf("%s: %s stored out of order (want %s-%d next)", v.name, m.ClientID, side, next[side])
			}
			next[side]++
		}
		a := byConv[v.conv]
		if a == nil {
			t.Errorf("no agent answered %s", v.name)
			continue
		}
		for _, l := range []*simLog{&v.simLog, &a.simLog} {
			for key, seq := range l.acked {
				conv, id, _ := strings.Cut(key, "/")
				if conv != v.conv {
					continue
				}
				if count[id] != 1 {
					t.Errorf("%s: acknowledged %s stored %d times, want once", v.name, id, count[id])
				}
				if got := tr.Messages[seq-1].ClientID; got != id {
					t.Errorf("%s: ack said %s is seq %d, the store has %s there", v.name, id, seq, got)
				}
			}
			shown := l.shown[v.conv]
			if !slices.EqualFunc(shown, tr.Messages, func(a, b chat.Message) bool { return a.ClientID == b.ClientID && a.Seq == b.Seq }) {
				t.Errorf("%s was shown %d messages of %s's conversation, not its %d-message transcript", l.name, len(shown), v.name, want)
			}
		}
	}
}

// newAgents creates n agents with capacity through the API on admin's node
// and logs each in there.
func newAgents(ctx context.Context, t *testing.T, admin *client.Session, n, capacity, perSide int) []*simAgent {
	t.Helper()
	var out []*simAgent
	for i := range n {
		email := fmt.Sprintf("agent%d@example.com", i)
		var created struct{ Agent chat.Agent }
		body := map[string]any{"email": email, "name": fmt.Sprintf("Agent %d", i), "role": chat.RoleAgent, "password": testPassword}
		if err := admin.Do(ctx, http.MethodPost, "/api/v1/agents", body, &created); err != nil {
			t.Fatalf("add agent: %v", err)
		}
		if err := admin.Do(ctx, http.MethodPatch, "/api/v1/agents/"+created.Agent.ID, map[string]any{"capacity": capacity}, nil); err != nil {
			t.Fatalf("set capacity: %v", err)
		}
		s, err := client.Login(ctx, admin.Base, email, testPassword)
		if err != nil {
			t.Fatalf("log in %s: %v", email, err)
		}
		out = append(out, newSimAgent(fmt.Sprintf("agent%d", i), created.Agent.ID, s, perSide))
	}
	return out
}
