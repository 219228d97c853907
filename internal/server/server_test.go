package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/audit"
	"github.com/lifelinehq/lifeline/internal/auth"
	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/leaktest"
	"github.com/lifelinehq/lifeline/internal/metrics"
	"github.com/lifelinehq/lifeline/internal/server"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

const (
	adminEmail = "admin@example.com"
	password   = "correct horse battery"
)

// node is a whole Lifeline node in the test process on 127.0.0.1.
type node struct {
	URL   string
	Site  chat.Site
	Auth  *auth.Service
	Hub   *chat.Hub
	Store chat.Store
}

func newNode(t *testing.T, maxPerIP int) *node {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "lifeline.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	site, err := chat.NewSite("demo", "Demo", []string{"127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutSite(ctx, site); err != nil {
		t.Fatal(err)
	}
	trail := audit.New(st, nil)
	a := auth.New(st, auth.Options{BcryptCost: bcrypt.MinCost, Audit: trail})
	if _, err := a.EnsureAdmin(ctx, adminEmail, password); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	hub, err := chat.NewHub(chat.Config{Store: st, Secret: []byte("0123456789abcdef0123"), Metrics: m, Audit: trail})
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(server.Config{Hub: hub, Store: st, Broker: chat.NewMemoryBroker(), Auth: a, Metrics: m, MaxConnsPerIP: maxPerIP, Audit: trail}))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Shutdown(sctx)
		srv.Close()
		st.Close()
	})
	return &node{URL: srv.URL, Site: site, Auth: a, Hub: hub, Store: st}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (n *node) visitor(t *testing.T, ctx context.Context) (*client.Conn, client.Frame) {
	t.Helper()
	c, err := client.DialVisitor(ctx, n.URL, "demo", client.Options{Origin: n.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Send(ctx, map[string]any{"type": "hello", "page": map[string]string{"path": "/checkout"}}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Until(ctx, "welcome", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

func (n *node) agent(t *testing.T, ctx context.Context, email string) (*client.Session, *client.Conn, client.Frame) {
	t.Helper()
	s, err := client.Login(ctx, n.URL, email, password)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.DialAgent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Send(ctx, map[string]any{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Until(ctx, "welcome", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, c, w
}

// expectError sends raw and waits for the error frame with code.
func expectError(t *testing.T, ctx context.Context, c *client.Conn, raw, code string) {
	t.Helper()
	if err := c.SendRaw(ctx, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	f, err := c.Until(ctx, "error", nil)
	if err != nil {
		t.Fatalf("%s: no error frame: %v", raw, err)
	}
	if f.Code != code {
		t.Fatalf("%.60s: error %q (%s), want %q", raw, f.Code, f.ErrorText(), code)
	}
}

func TestBadFramesGetDocumentedErrors(t *testing.T) {
	n := newNode(t, 0)
	ctx := testCtx(t)
	c, err := client.DialVisitor(ctx, n.URL, "demo", client.Options{Origin: n.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	expectError(t, ctx, c, `{"type":"message","client_id":"x","text":"hi"}`, chat.CodeHelloRequired)
	expectError(t, ctx, c, `{"type":"hello","token":"forged.token"}`, chat.CodeBadToken)
	if err := c.Send(ctx, map[string]any{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Until(ctx, "welcome", nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ raw, code string }{
		{`not json`, chat.CodeBadFrame},
		{`[1,2]`, chat.CodeBadFrame},
		{`{"type":"message","client_id":5}`, chat.CodeBadFrame},
		{`{"type":"teleport"}`, chat.CodeUnknownType},
		{`{"type":"message","client_id":"","text":"hi"}`, chat.CodeInvalid},
		{`{"type":"message","client_id":"c1","text":"` + strings.Repeat("é", 4001) + `"}`, chat.CodeTooLong},
		{`{"type":"leave_message","client_id":"c2","text":"hi","email":"not-an-email"}`, chat.CodeInvalid},
	} {
		expectError(t, ctx, c, tc.raw, tc.code)
	}
	// Nothing refused was stored: the visitor has no conversation yet.
	if err := c.Send(ctx, map[string]any{"type": "message", "client_id": "ok", "text": "hello"}); err != nil {
		t.Fatal(err)
	}
	ack, err := c.Until(ctx, "ack", nil)
	if err != nil || ack.Seq != 1 {
		t.Fatalf("first stored message: %+v, %v; want seq 1", ack, err)
	}

	// A frame over the 64 KiB limit closes the socket with 1009.
	if err := c.SendRaw(ctx, []byte(`{"type":"ping","pad":"`+strings.Repeat("x", 70<<10)+`"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = c.Next(ctx); err != nil {
			break
		}
	}
	if s := websocket.CloseStatus(err); s != websocket.StatusMessageTooBig {
		t.Fatalf("oversized frame closed with %v (%v), want 1009", s, err)
	}
}

func TestFloodIsRateLimitedThenClosed(t *testing.T) {
	n := newNode(t, 0)
	ctx := testCtx(t)
	c, _ := n.visitor(t, ctx)
	limited := 0
	var err error
	for i := 0; i < 500 && err == nil; i++ {
		err = c.SendRaw(ctx, []byte(`{"type":"typing","typing":true}`))
	}
	for {
		var f client.Frame
		f, err = c.Next(ctx)
		if err != nil {
			break
		}
		if f.Type == "error" && f.Code == chat.CodeRateLimited && f.Retryable {
			limited++
		}
	}
	if limited == 0 || websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("flood: %d rate_limited errors, closed with %v; want some, then 1008", limited, err)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	n := newNode(t, 3)
	ctx := testCtx(t)
	dialStatus := func(site, origin string) int {
		c, err := client.DialVisitor(ctx, n.URL, site, client.Options{Origin: origin})
		if err == nil {
			c.CloseNow()
			return http.StatusSwitchingProtocols
		}
		var status int
		if i := strings.LastIndex(err.Error(), "(HTTP "); i >= 0 {
			fmt.Sscanf(err.Error()[i:], "(HTTP %d)", &status)
		}
		return status
	}
	if got := dialStatus("nope", n.URL); got != http.StatusForbidden {
		t.Errorf("unknown site: %d, want 403", got)
	}
	if got := dialStatus("demo", "https://evil.example"); got != http.StatusForbidden {
		t.Errorf("foreign origin: %d, want 403", got)
	}
	for range 3 {
		n.visitor(t, ctx)
	}
	if got := dialStatus("demo", n.URL); got != http.StatusTooManyRequests {
		t.Errorf("fourth connection from one address: %d, want 429", got)
	}
	if _, err := client.DialAgent(ctx, n.URL, client.Options{Origin: n.URL}); err == nil {
		t.Error("an agent socket without a session was accepted")
	}
}

func TestQueueLeaveMessageTransferNotes(t *testing.T) {
	n := newNode(t, 0)
	ctx := testCtx(t)
	if _, err := n.Auth.AddAgent(ctx, "bo@example.com", "Bo", chat.RoleAgent, password); err != nil {
		t.Fatal(err)
	}

	// Nobody online: the visitor leaves a message with an email.
	v1, w1 := n.visitor(t, ctx)
	if w1.AgentsOnline {
		t.Fatal("welcome says agents are online with nobody logged in")
	}
	if err := v1.Send(ctx, map[string]any{"type": "leave_message", "client_id": "l1", "email": "ava@example.com", "text": "Card declined twice"}); err != nil {
		t.Fatal(err)
	}
	ack, err := v1.Until(ctx, "ack", nil)
	if err != nil {
		t.Fatal(err)
	}
	conv1 := ack.ConversationID
	v2, _ := n.visitor(t, ctx)
	if err := v2.Send(ctx, map[string]any{"type": "message", "client_id": "m1", "text": "Hello?"}); err != nil {
		t.Fatal(err)
	}
	q, err := v2.Until(ctx, "queue", nil)
	if err != nil || q.Position != 2 || q.ETASeconds != -1 {
		t.Fatalf("second visitor's queue frame = %s, %v; want position 2, no estimate while nobody is online", q.Raw, err)
	}

	// The admin comes online and gets the oldest conversation.
	admin, ag, _ := n.agent(t, ctx, adminEmail)
	var first chat.Conversation
	for first.ID != conv1 || first.Status != chat.StatusActive {
		f, err := ag.Until(ctx, "conversation", nil)
		if err != nil {
			t.Fatalf("admin never got the first conversation: %v", err)
		}
		first, _ = f.Conv()
	}
	if first.Email != "ava@example.com" {
		t.Fatalf("left message lost its email: %+v", first)
	}

	// Typing and read receipts cross over; a note never reaches the visitor.
	ag.Send(ctx, map[string]any{"type": "typing", "conversation_id": conv1, "typing": true})
	if f, err := v1.Until(ctx, "typing", nil); err != nil || !f.Typing {
		t.Fatalf("visitor did not see the agent typing: %v", err)
	}
	ag.Send(ctx, map[string]any{"type": "read", "conversation_id": conv1, "seq": 1})
	if f, err := v1.Until(ctx, "read", nil); err != nil || f.Seq != 1 || f.Reader != "agent" {
		t.Fatalf("visitor read receipt = %+v, %v", f, err)
	}

	// Transfer to Bo with a private note.
	var bo chat.Agent
	var list struct{ Agents []chat.Agent }
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/agents", nil, &list); err != nil {
		t.Fatal(err)
	}
	for _, a := range list.Agents {
		if a.Email == "bo@example.com" {
			bo = a
		}
	}
	_, boConn, _ := n.agent(t, ctx, "bo@example.com")
	if err := ag.Send(ctx, map[string]any{"type": "transfer", "conversation_id": conv1, "agent_id": bo.ID, "text": "She tried two cards; check the 3-D Secure step"}); err != nil {
		t.Fatal(err)
	}
	// Bo gets the conversation, the whole transcript and the note.
	var moved, note, transcript bool
	for !moved || !note || !transcript {
		f, err := boConn.Next(ctx)
		if err != nil {
			t.Fatalf("Bo got conversation %v, note %v, transcript %v: %v", moved, note, transcript, err)
		}
		switch f.Type {
		case "conversation":
			cv, _ := f.Conv()
			moved = moved || cv.AgentID == bo.ID
		case "note":
			note = strings.Contains(string(f.Raw), "3-D Secure")
		case "message":
			m, _ := f.ChatMessage()
			transcript = transcript || m.Text == "Card declined twice"
		}
	}
	// The visitor sees the new agent's name and never the note.
	if err := v1.Send(ctx, map[string]any{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := v1.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == "note" || strings.Contains(string(f.Raw), "3-D Secure") {
			t.Fatalf("the visitor was sent the private note: %s", f.Raw)
		}
		if f.Type == "pong" {
			break
		}
	}

	// The audit trail names who transferred what; only admins read every site's.
	var trail struct{ Entries []audit.Entry }
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/audit?site=demo", nil, &trail); err != nil {
		t.Fatal(err)
	}
	if len(trail.Entries) == 0 || trail.Entries[0].Action != "conversation.transfer" || trail.Entries[0].AgentEmail != adminEmail || trail.Entries[0].Target != conv1 {
		t.Fatalf("audit = %+v, want the transfer by the admin first", trail.Entries)
	}
	boSession, err := client.Login(ctx, n.URL, "bo@example.com", password)
	if err != nil {
		t.Fatal(err)
	}
	if err := boSession.Do(ctx, http.MethodGet, "/api/v1/audit", nil, nil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("an agent reading the global audit trail: %v, want 403", err)
	}

	// The REST API finds the conversation by the visitor's email.
	var found struct{ Conversations []chat.Conversation }
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/conversations?site=demo&email=AVA@example.com", nil, &found); err != nil {
		t.Fatal(err)
	}
	if len(found.Conversations) != 1 || found.Conversations[0].ID != conv1 {
		t.Fatalf("by email = %+v, want the left message's conversation", found.Conversations)
	}
}

func TestIdentityIsVerifiedOnlyWithTheRightHash(t *testing.T) {
	n := newNode(t, 0)
	ctx := testCtx(t)
	admin, err := client.Login(ctx, n.URL, adminEmail, password)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hash     string
		verified bool
	}{
		{chat.IdentityHash(n.Site.IdentitySecret, "u_42"), true},
		{chat.IdentityHash("another secret", "u_42"), false},
		{"", false},
	} {
		v, w := n.visitor(t, ctx)
		if err := v.Send(ctx, map[string]any{"type": "identify", "identity": map[string]any{"id": "u_42", "name": "Ava", "email": "ava@example.com", "hash": tc.hash}}); err != nil {
			t.Fatal(err)
		}
		if err := v.Send(ctx, map[string]any{"type": "ping"}); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Until(ctx, "pong", nil); err != nil {
			t.Fatal(err)
		}
		var got struct{ Visitor chat.Visitor }
		if err := admin.Do(ctx, http.MethodGet, "/api/v1/visitors/"+w.VisitorID, nil, &got); err != nil {
			t.Fatal(err)
		}
		if got.Visitor.Verified != tc.verified || got.Visitor.ExternalID != "u_42" {
			t.Errorf("hash %q: visitor %+v, want verified=%v", tc.hash, got.Visitor, tc.verified)
		}
	}
}

func TestOperationsEndpoints(t *testing.T) {
	n := newNode(t, 0)
	ctx := testCtx(t)
	n.visitor(t, ctx)
	get := func(path string) (int, string) {
		resp, err := http.Get(n.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	code, body := get("/readyz")
	var ready map[string]string
	json.Unmarshal([]byte(body), &ready)
	if code != 200 || ready["store"] != "ok" || ready["broker"] != "ok" {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, body = get("/metrics")
	for _, name := range []string{"lifeline_connections", "lifeline_frames_received_total", "lifeline_ack_latency_seconds", "lifeline_queue_length", "go_goroutines", "go_sched_latencies_seconds_bucket"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if code, _ := get("/api/v1/conversations"); code != http.StatusUnauthorized {
		t.Errorf("conversations without a session = %d, want 401", code)
	}
}

// An agent coming back to a long conversation gets its whole history at
// once, far more frames than the send queue's limit, and is not closed as
// a slow consumer: history it asked for does not count against the limit.
func TestLongHistoryIsNotASlowConsumer(t *testing.T) {
	n := newNode(t, 0)
	ctx := testCtx(t)
	v, _ := n.visitor(t, ctx)
	if err := v.Send(ctx, map[string]any{"type": "message", "client_id": "first", "text": "Card declined"}); err != nil {
		t.Fatal(err)
	}
	ack, err := v.Until(ctx, "ack", nil)
	if err != nil {
		t.Fatal(err)
	}
	conv := ack.ConversationID
	_, ag, _ := n.agent(t, ctx, adminEmail)
	if _, err := ag.Until(ctx, "message", nil); err != nil {
		t.Fatalf("the agent never got the conversation: %v", err)
	}
	ag.CloseNow()

	const backlog = 1000 // four times the default send queue
	for i := range backlog {
		m := chat.Message{ConversationID: conv, ClientID: fmt.Sprint("bulk-", i), Author: chat.Author{Kind: chat.AuthorVisitor, ID: "v"}, Text: "again"}
		if _, _, err := n.Store.AppendMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	_, ag, _ = n.agent(t, ctx, adminEmail)
	var last int64
	for last < backlog+1 {
		f, err := ag.Until(ctx, "message", nil)
		if err != nil {
			t.Fatalf("agent socket ended after message %d of %d: %v", last, backlog+1, err)
		}
		var m chat.Message
		if err := json.Unmarshal(f.Message, &m); err != nil {
			t.Fatal(err)
		}
		if m.Seq != last+1 {
			t.Fatalf("message %d after %d", m.Seq, last)
		}
		last = m.Seq
	}
}

// An admin turns the widget's read receipts off for a site: the site says
// so, and the next visitor's welcome tells the widget.
func TestSiteTurnsReadReceiptsOff(t *testing.T) {
	n := newNode(t, 0)
	ctx := testCtx(t)
	admin, err := client.Login(ctx, n.URL, adminEmail, password)
	if err != nil {
		t.Fatal(err)
	}
	receipts := func() bool {
		t.Helper()
		_, w := n.visitor(t, ctx)
		var welcome struct {
			Site struct {
				ReadReceipts *bool `json:"read_receipts"`
			}
		}
		if err := json.Unmarshal(w.Raw, &welcome); err != nil || welcome.Site.ReadReceipts == nil {
			t.Fatalf("welcome %s: no site.read_receipts (%v)", w.Raw, err)
		}
		return *welcome.Site.ReadReceipts
	}
	if !receipts() {
		t.Fatal("read receipts are off on a new site, want on")
	}
	if err := admin.Do(ctx, http.MethodPatch, "/api/v1/sites/demo", map[string]any{"hide_read_receipts": true}, nil); err != nil {
		t.Fatal(err)
	}
	var got struct{ Sites []chat.Site }
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/sites", nil, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Sites) != 1 || !got.Sites[0].HideReadReceipts {
		t.Fatalf("sites = %+v, want demo with read receipts hidden", got.Sites)
	}
	if receipts() {
		t.Error("the welcome after the change still has read receipts on")
	}
}
