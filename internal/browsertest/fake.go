package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Frame is one JSON frame a FakeVisitor received from a widget.
type Frame struct {
	Conn int            // which connection, counting from 1
	Type string         // the frame's "type"
	Raw  string         // the frame as received
	Data map[string]any // the frame decoded
}

// FakeVisitor stands in for the server's /ws/visitor endpoint and the
// /api/v1/events beacon in widget tests. It speaks docs/protocol.md: it
// answers hello with welcome (issuing a token), stores messages once per
// client_id and acks them, echoes them to every tab of the visitor, answers
// ping with pong, and records every frame and request body it receives so a
// test can check what the widget sent. Its conversation state lives in the
// value, so it survives Server.Stop and Server.Start like a durable store.
type FakeVisitor struct {
	// AgentsOnline is reported in welcome.
	AgentsOnline bool
	// Site is sent as welcome.site.
	Site map[string]any

	mu       sync.Mutex
	frames   []Frame
	bodies   []string
	conns    map[int]*fakeConn
	nconn    int
	holdAcks bool
	down     bool
	conv     map[string]any // nil until the first message
	msgs     []map[string]any
	byClient map[string]int
	wg       sync.WaitGroup
	changed  chan struct{}
}

type fakeConn struct {
	c    *websocket.Conn
	ctx  context.Context
	cncl context.CancelFunc
}

// NewFakeVisitor returns a fake with an agent online and a blue theme.
func NewFakeVisitor() *FakeVisitor {
	return &FakeVisitor{
		AgentsOnline: true,
		Site:         map[string]any{"theme": map[string]any{"color": "#1f5fcc"}, "strings": map[string]any{}},
		conns:        map[int]*fakeConn{},
		byClient:     map[string]int{},
		changed:      make(chan struct{}),
	}
}

// Token is the visitor token the fake issues.
const Token = "tok-visitor-1"

// ServeHTTP serves /ws/visitor (WebSocket) and /api/v1/events (beacon).
func (f *FakeVisitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v1/events" {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		f.mu.Lock()
		f.bodies = append(f.bodies, string(b))
		f.notifyLocked()
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	fc := &fakeConn{c: c, ctx: ctx, cncl: cancel}
	f.mu.Lock()
	f.nconn++
	id := f.nconn
	f.conns[id] = fc
	f.wg.Add(1)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, id)
		f.mu.Unlock()
		cancel()
		c.CloseNow()
		f.wg.Done()
	}()
	c.SetReadLimit(64 << 10)
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		typ, _ := m["type"].(string)
		f.mu.Lock()
		f.frames = append(f.frames, Frame{Conn: id, Type: typ, Raw: string(b), Data: m})
		f.handleLocked(id, typ, m)
		f.notifyLocked()
		f.mu.Unlock()
	}
}

func (f *FakeVisitor) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// sendLocked writes v to connection id without blocking the caller for long.
func (f *FakeVisitor) sendLocked(id int, v any) {
	fc := f.conns[id]
	if fc == nil {
		return
	}
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(fc.ctx, 5*time.Second)
	defer cancel()
	_ = fc.c.Write(ctx, websocket.MessageText, b)
}

func (f *FakeVisitor) broadcastLocked(v any) {
	for id := range f.conns {
		f.sendLocked(id, v)
	}
}

func (f *FakeVisitor) handleLocked(id int, typ string, m map[string]any) {
	switch typ {
	case "hello":
		w := map[string]any{"type": "welcome", "visitor_id": "v1", "token": Token, "agents_online": f.AgentsOnline, "site": f.Site}
		if f.conv != nil {
			w["conversation"] = f.conv
		}
		f.sendLocked(id, w)
		last, _ := m["last_seq"].(float64)
		for _, msg := range f.msgs {
			if msg["seq"].(int) > int(last) {
				f.sendLocked(id, map[string]any{"type": "message", "message": msg})
			}
		}
	case "ping":
		f.sendLocked(id, map[string]any{"type": "pong"})
	case "message":
		if f.holdAcks {
			return
		}
		cid, _ := m["client_id"].(string)
		text, _ := m["text"].(string)
		if f.conv == nil {
			f.conv = map[string]any{"id": "c1", "ref": "LF-7K3Q", "status": "waiting"}
			f.broadcastLocked(map[string]any{"type": "conversation", "conversation": f.conv})
			f.broadcastLocked(map[string]any{"type": "queue", "conversation_id": "c1", "position": 2, "eta_seconds": 120})
		}
		seq, dup := f.byClient[cid]
		if !dup {
			seq = len(f.msgs) + 1
			f.byClient[cid] = seq
			f.msgs = append(f.msgs, map[string]any{"conversation_id": "c1", "seq": seq, "client_id": cid,
				"author": map[string]any{"kind": "visitor"}, "text": text, "at": time.Now().UTC().Format(time.RFC3339)})
		}
		f.sendLocked(id, map[string]any{"type": "ack", "client_id": cid, "conversation_id": "c1", "seq": seq, "ref": "LF-7K3Q"})
		if !dup {
			f.broadcastLocked(map[string]any{"type": "message", "message": f.msgs[seq-1]})
		}
	}
}

// AgentSay stores a message from agent "Sam" and sends it to every tab.
func (f *FakeVisitor) AgentSay(text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conv == nil {
		f.conv = map[string]any{"id": "c1", "ref": "LF-7K3Q", "status": "active", "agent": map[string]any{"name": "Sam"}}
	}
	msg := map[string]any{"conversation_id": "c1", "seq": len(f.msgs) + 1, "client_id": fmt.Sprintf("agent-%d", len(f.msgs)+1),
		"author": map[string]any{"kind": "agent", "id": "a1", "name": "Sam"}, "text": text, "at": time.Now().UTC().Format(time.RFC3339)}
	f.msgs = append(f.msgs, msg)
	f.broadcastLocked(map[string]any{"type": "message", "message": msg})
}

// SetStatus changes the conversation's status (e.g. "active", "resolved")
// and tells every tab.
func (f *FakeVisitor) SetStatus(status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conv == nil {
		return
	}
	f.conv["status"] = status
	if status == "active" {
		f.conv["agent"] = map[string]any{"name": "Sam"}
	}
	f.broadcastLocked(map[string]any{"type": "conversation", "conversation": f.conv})
}

// Send sends a raw frame to every open connection.
func (f *FakeVisitor) Send(frame map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broadcastLocked(frame)
}

// HoldAcks makes the fake record message frames without storing, acking or
// echoing them, as if the node died before the message was durable.
func (f *FakeVisitor) HoldAcks(hold bool) {
	f.mu.Lock()
	f.holdAcks = hold
	f.mu.Unlock()
}

// SetDown drops every connection and, while down, refuses upgrades with 503.
func (f *FakeVisitor) SetDown(down bool) {
	f.mu.Lock()
	f.down = down
	var conns []*fakeConn
	if down {
		for _, c := range f.conns {
			conns = append(conns, c)
		}
	}
	f.mu.Unlock()
	for _, c := range conns {
		c.cncl()
		c.c.CloseNow()
	}
}

// Conns is the number of open connections.
func (f *FakeVisitor) Conns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// Close drops every connection and waits for their handlers to return.
func (f *FakeVisitor) Close() {
	f.SetDown(true)
	f.wg.Wait()
}

// Frames returns the frames received of the given type ("" for all).
func (f *FakeVisitor) Frames(typ string) []Frame {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Frame
	for _, fr := range f.frames {
		if typ == "" || fr.Type == typ {
			out = append(out, fr)
		}
	}
	return out
}

// Events returns the behaviour events of kind k ("" for all) received in
// events frames and beacon bodies, in order.
func (f *FakeVisitor) Events(k string) []map[string]any {
	var out []map[string]any
	add := func(list any) {
		evs, _ := list.([]any)
		for _, e := range evs {
			if m, ok := e.(map[string]any); ok && (k == "" || m["k"] == k) {
				out = append(out, m)
			}
		}
	}
	for _, fr := range f.Frames("events") {
		add(fr.Data["events"])
	}
	f.mu.Lock()
	bodies := append([]string(nil), f.bodies...)
	f.mu.Unlock()
	for _, b := range bodies {
		var m map[string]any
		if json.Unmarshal([]byte(b), &m) == nil {
			add(m["events"])
		}
	}
	return out
}

// Received is everything the fake has received, frames and bodies, as one
// string: search it for a secret that must never leave the browser.
func (f *FakeVisitor) Received() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sb strings.Builder
	for _, fr := range f.frames {
		sb.WriteString(fr.Raw)
		sb.WriteByte('\n')
	}
	for _, b := range f.bodies {
		sb.WriteString(b)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Wait blocks until cond (called without the fake's lock) is true, failing
// the test after 15 seconds with what.
func (f *FakeVisitor) Wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			t.Fatalf("fake visitor endpoint: timed out waiting for %s; received:\n%s", what, f.Received())
		}
	}
}

// Server is an HTTP server on a loopback port that can be stopped and
// started again on the same address, to test reconnects.
type Server struct {
	// URL is "http://127.0.0.1:PORT".
	URL string

	t       testing.TB
	addr    string
	handler http.Handler
	srv     *http.Server
	done    chan struct{}
}

// StartServer serves h on 127.0.0.1 on a free port until the test ends.
func StartServer(t testing.TB, h http.Handler) *Server {
	t.Helper()
	s := &Server{t: t, addr: "127.0.0.1:0", handler: h}
	s.Start()
	s.URL = "http://" + s.addr
	t.Cleanup(s.Stop)
	return s
}

// Start listens again on the server's address.
func (s *Server) Start() {
	s.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("browsertest: listen %s: %v", s.addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second}
	s.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		_ = srv.Serve(ln)
	}(s.srv, s.done)
}

// Stop closes the listener and every non-hijacked connection. (A handler
// that hijacked its connection, like a WebSocket, must close it itself.)
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	_ = s.srv.Close()
	<-s.done
	s.srv = nil
}
