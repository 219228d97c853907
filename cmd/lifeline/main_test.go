package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/leaktest"
)

func TestMain(m *testing.M) {
	leaktest.Main(m, func() {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
	})
}

const testPassword = "correct horse battery"

// syncBuffer is an io.Writer safe to read while a node writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testNode is a node run in-process by run().
type testNode struct {
	URL    string
	Stdout *syncBuffer
	Stderr *syncBuffer // the node's log
	stop   func()
}

var consoleLine = regexp.MustCompile(`Console: (http://127\.0\.0\.1:\d+)/console`)

// startNode runs `lifeline serve` on a free loopback port with dataDir and
// waits until /readyz answers. It stops the node when the test ends.
func startNode(t *testing.T, dataDir string, env map[string]string) *testNode {
	t.Helper()
	vars := map[string]string{"LIFELINE_ADMIN_PASSWORD": testPassword, "LIFELINE_LOG_LEVEL": "warn"}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data", dataDir}, func(k string) string { return vars[k] },
			strings.NewReader(""), out, errOut)
	}()
	n := &testNode{Stdout: out, Stderr: errOut}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("node stopped with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("node did not stop within 30 s")
			}
			if t.Failed() {
				t.Logf("node stderr:\n%s", errOut.String())
			}
		})
	}
	t.Cleanup(n.stop)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := consoleLine.FindStringSubmatch(out.String()); m != nil {
			n.URL = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("node exited early: %v\nstderr:\n%s", err, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if n.URL == "" {
		t.Fatalf("node printed no console URL within 30 s; stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}
	waitServing(t, n.URL)
	return n
}

// waitServing waits up to 20 s for the node to be ready: /healthz
// answers as soon as the node listens, while it is still starting.
func waitServing(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitReady(ctx, t, base, http.StatusOK)
}

// testCtx is a context bounded so a hung test fails instead of stalling.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// visitor dials the demo site and says hello.
func visitor(t *testing.T, ctx context.Context, base, token string, lastSeq int64) (*client.Conn, client.Frame) {
	t.Helper()
	c, err := client.DialVisitor(ctx, base, "demo", client.Options{Origin: base})
	if err != nil {
		t.Fatalf("dial visitor: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Send(ctx, map[string]any{"type": "hello", "token": token, "last_seq": lastSeq, "page": map[string]string{"path": "/checkout"}}); err != nil {
		t.Fatalf("visitor hello: %v", err)
	}
	w, err := c.Until(ctx, "welcome", nil)
	if err != nil {
		t.Fatalf("visitor welcome: %v", err)
	}
	return c, w
}

// agentConn logs in and opens an agent socket with hello.
func agentConn(t *testing.T, ctx context.Context, base, email, password string) (*client.Session, *client.Conn) {
	t.Helper()
	s, err := client.Login(ctx, base, email, password)
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	c, _ := agentHello(t, ctx, s)
	return s, c
}

// awayAgent is agentConn for the admin, who then goes away: the router
// assigns them nothing, so conversations wait in the queue.
func awayAgent(t *testing.T, ctx context.Context, base string) (*client.Session, *client.Conn) {
	t.Helper()
	s, c := agentConn(t, ctx, base, adminEmail, testPassword)
	if err := c.Send(ctx, map[string]any{"type": "presence", "status": "away"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Until(ctx, "presence", nil); err != nil {
		t.Fatalf("agent away: %v", err)
	}
	return s, c
}

func TestFirstStartPrintsURLsAndLogin(t *testing.T) {
	n := startNode(t, t.TempDir(), map[string]string{"LIFELINE_ADMIN_PASSWORD": ""})
	out := n.Stdout.String()
	m := regexp.MustCompile(`Log in as (\S+) with password (\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, n.URL+"/demo") {
		t.Fatalf("first start printed:\n%s\nwant the console and demo URLs and a generated password", out)
	}
	if _, err := client.Login(testCtx(t), n.URL, m[1], m[2]); err != nil {
		t.Fatalf("login with the printed password: %v", err)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/widget.js", "/demo"} {
		resp, err := http.Get(n.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
		}
	}
}

func TestChatRoundTrip(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	_, ag := agentConn(t, ctx, n.URL, adminEmail, testPassword)
	v, w := visitor(t, ctx, n.URL, "", 0)
	if w.Token == "" || w.VisitorID == "" || !w.AgentsOnline {
		t.Fatalf("welcome = %s, want a token, a visitor id and agents online", w.Raw)
	}

	send := func(c *client.Conn, frame map[string]any) client.Frame {
		t.Helper()
		if err := c.Send(ctx, frame); err != nil {
			t.Fatal(err)
		}
		ack, err := c.Until(ctx, "ack", nil)
		if err != nil {
			t.Fatalf("ack for %v: %v", frame, err)
		}
		return ack
	}
	ack := send(v, map[string]any{"type": "message", "client_id": "v-1", "text": "My card was declined"})
	if ack.Seq != 1 || !strings.HasPrefix(ack.Ref, "LF-") {
		t.Fatalf("first ack = %s, want seq 1 and an LF- reference", ack.Raw)
	}
	conv := ack.ConversationID

	// The admin is online under capacity, so the router assigns them.
	got, err := ag.Until(ctx, "message", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := got.ChatMessage(); m.Text != "My card was declined" || m.Seq != 1 || m.Author.Kind != "visitor" {
		t.Fatalf("agent got %s, want the visitor's message as seq 1", got.Raw)
	}
	reply := send(ag, map[string]any{"type": "message", "conversation_id": conv, "client_id": "a-1", "text": "Let me check that for you."})
	if reply.Seq != 2 {
		t.Fatalf("agent ack seq = %d, want 2", reply.Seq)
	}
	got, err = v.Until(ctx, "message", nil)
	for err == nil {
		if m, _ := got.ChatMessage(); m.Seq == 2 {
			break
		}
		got, err = v.Until(ctx, "message", nil)
	}
	if err != nil {
		t.Fatalf("visitor waiting for the reply: %v", err)
	}

	// A retry with the same client id is acknowledged again and stored once.
	if again := send(v, map[string]any{"type": "message", "client_id": "v-1", "text": "My card was declined"}); again.Seq != 1 {
		t.Fatalf("retry ack seq = %d, want 1", again.Seq)
	}
	// The embedded store's group commits answered those three appends
	// (and the hello's visitor put), in as many groups or fewer.
	groups, requests := metricValue(t, n.URL, "lifeline_store_groups_total"), metricValue(t, n.URL, "lifeline_store_group_requests_total")
	if requests < 3 || groups < 1 || groups > requests {
		t.Errorf("store groups %v answering %v requests, want at least 1 and 3, groups ≤ requests", groups, requests)
	}
	// Each group of appends was one timed write to the message log; the
	// hello's visitor put, at least, a timed B+tree transaction.
	logSyncs, treeSyncs := metricValue(t, n.URL, `lifeline_store_sync_seconds_count{kind="log"}`), metricValue(t, n.URL, `lifeline_store_sync_seconds_count{kind="tree"}`)
	if logSyncs < 1 || logSyncs > groups || treeSyncs < 1 {
		t.Errorf("store syncs: %v of the log (groups %v), %v of the tree; want 1 to groups, and at least 1", logSyncs, groups, treeSyncs)
	}

	// Resolve; the visitor says it did not help; the conversation reopens.
	if err := ag.Send(ctx, map[string]any{"type": "resolve", "conversation_id": conv}); err != nil {
		t.Fatal(err)
	}
	waitConversation(t, ctx, v, "resolved")
	if err := v.Send(ctx, map[string]any{"type": "feedback", "conversation_id": conv, "solved": false}); err != nil {
		t.Fatal(err)
	}
	waitConversation(t, ctx, v, "active")

	s, err := client.Login(ctx, n.URL, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Conversation struct{ Status, Feedback, Ref string }
		Messages     []struct{ Seq int64 }
	}
	if err := s.Do(ctx, "GET", "/api/v1/conversations/by-ref/"+strings.ToLower(ack.Ref), nil, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Messages) != 2 || tr.Conversation.Status != "active" || tr.Conversation.Feedback != "no" {
		t.Fatalf("transcript = %+v, want 2 messages, active, feedback no", tr)
	}
}

func waitConversation(t *testing.T, ctx context.Context, c *client.Conn, status string) {
	t.Helper()
	for {
		f, err := c.Until(ctx, "conversation", nil)
		if err != nil {
			t.Fatalf("waiting for conversation %s: %v", status, err)
		}
		var cv struct{ Status string }
		if err := json.Unmarshal(f.Conversation, &cv); err != nil {
			t.Fatal(err)
		}
		if cv.Status == status {
			return
		}
	}
}

func TestClaimRaceHasOneWinner(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	admin, err := client.Login(ctx, n.URL, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	var sessions []*client.Session
	for i := range 4 {
		email := fmt.Sprintf("agent%d@example.com", i)
		if err := admin.Do(ctx, "POST", "/api/v1/agents", map[string]any{"email": email, "name": email, "role": "agent", "password": testPassword}, nil); err != nil {
			t.Fatal(err)
		}
		s, err := client.Login(ctx, n.URL, email, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	// No agent socket is open, so nobody is online and the router assigns
	// nothing: the conversations wait for a claim.
	for round := range 10 {
		v, _ := visitor(t, ctx, n.URL, "", 0)
		if err := v.Send(ctx, map[string]any{"type": "message", "client_id": "c", "text": "help"}); err != nil {
			t.Fatal(err)
		}
		ack, err := v.Until(ctx, "ack", nil)
		if err != nil {
			t.Fatal(err)
		}
		results := make(chan error, len(sessions))
		for _, s := range sessions {
			go func() { results <- s.Do(ctx, "POST", "/api/v1/conversations/"+ack.ConversationID+"/claim", nil, nil) }()
		}
		wins, conflicts := 0, 0
		for range sessions {
			err := <-results
			var se *client.StatusError
			switch {
			case err == nil:
				wins++
			case errors.As(err, &se) && se.Status == http.StatusConflict:
				conflicts++
			default:
				t.Fatalf("round %d: claim: %v", round, err)
			}
		}
		if wins != 1 || conflicts != len(sessions)-1 {
			t.Fatalf("round %d: %d wins and %d conflicts, want 1 and %d", round, wins, conflicts, len(sessions)-1)
		}
		v.Close()
	}
}

// metricValue scrapes the node's /metrics for the value of one unlabelled
// metric.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	var v float64
	if _, err := fmt.Sscan(string(m[1]), &v); err != nil {
		t.Fatalf("%s = %q: %v", name, m[1], err)
	}
	return v
}
