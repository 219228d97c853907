package browsertest

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lifelinehq/lifeline/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func TestOutDir(t *testing.T) {
	root := t.TempDir()
	t.Setenv("LIFELINE_TEST_OUT", root)
	dir := OutDir(t)
	if dir != filepath.Join(root, "TestOutDir") {
		t.Errorf("OutDir = %q, want %q", dir, filepath.Join(root, "TestOutDir"))
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("OutDir did not create %s: %v", dir, err)
	}
}

func TestChromiumMissingSkips(t *testing.T) {
	t.Setenv("LIFELINE_CHROMIUM", filepath.Join(t.TempDir(), "no-such-browser"))
	t.Setenv("LIFELINE_REQUIRE_ALL", "")
	skipped := false
	ok := t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Chromium(t)
		t.Error("Chromium returned for a missing browser")
	})
	if !ok || !skipped {
		t.Errorf("a missing browser: ok %v, skipped %v; want a skip", ok, skipped)
	}
}

func TestFirefoxMissingSkips(t *testing.T) {
	t.Setenv("LIFELINE_FIREFOX", filepath.Join(t.TempDir(), "no-such-firefox"))
	t.Setenv("LIFELINE_REQUIRE_ALL", "")
	skipped := false
	ok := t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Firefox(t)
		t.Error("Firefox returned for a missing browser")
	})
	if !ok || !skipped {
		t.Errorf("a missing Firefox: ok %v, skipped %v; want a skip", ok, skipped)
	}
}

// TestFakeVisitor speaks the protocol to the fake as a widget would.
func TestFakeVisitor(t *testing.T) {
	fake := NewFakeVisitor()
	srv := StartServer(t, fake)
	t.Cleanup(fake.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1)+"/ws/visitor?site=s", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	send := func(v map[string]any) {
		b, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() map[string]any {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		return m
	}
	send(map[string]any{"type": "hello"})
	if w := read(); w["type"] != "welcome" || w["token"] != Token {
		t.Fatalf("reply to hello = %v, want welcome with the token", w)
	}
	for i := 0; i < 2; i++ { // the retry gets the same ack and no second echo
		send(map[string]any{"type": "message", "client_id": "c-1", "text": "hi"})
	}
	var types []string
	for len(types) < 5 {
		m := read()
		types = append(types, m["type"].(string))
		if m["type"] == "ack" && m["seq"] != 1.0 {
			t.Errorf("ack = %v, want seq 1", m)
		}
	}
	want := "conversation queue ack message ack"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("frames = %q, want %q", got, want)
	}
	fake.Wait(t, "two message frames", func() bool { return len(fake.Frames("message")) == 2 })
}

// TestNewContextIsolates: a second browser context sees neither the first
// one's cookies nor its localStorage, while a second tab sees both.
func TestNewContextIsolates(t *testing.T) {
	srv := StartServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!doctype html><title>x</title>"))
	}))
	p := New(t)
	p.Navigate(srv.URL + "/")
	p.Eval(`document.cookie = 'who=first; path=/'; localStorage.setItem('who', 'first'); true`, nil)
	read := func(q *Page) string {
		q.Navigate(srv.URL + "/")
		var s string
		q.Eval(`document.cookie + '|' + (localStorage.getItem('who') ?? '')`, &s)
		return s
	}
	if got := read(p.NewTab()); got != "who=first|first" {
		t.Errorf("another tab sees %q, want the cookie and storage", got)
	}
	if got := read(p.NewContext()); got != "|" {
		t.Errorf("another context sees %q, want nothing", got)
	}
}

// TestFirefox drives Firefox over BiDi: evaluation with awaited promises,
// and console errors and uncaught exceptions collected.
func TestFirefox(t *testing.T) {
	p := NewFirefox(t)
	p.Navigate(`data:text/html,<title>t</title><script>console.error("boom-console"); setTimeout(() => { throw new Error("boom-thrown") }, 0)</script>`)
	var sum int
	p.Eval(`new Promise(r => setTimeout(() => r(20 + 22), 10))`, &sum)
	if sum != 42 {
		t.Fatalf("Eval = %d, want 42", sum)
	}
	p.Eval(`undefined`, nil)
	p.WaitJS("title", `document.title === 't'`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		errs := strings.Join(p.Errors(), "\n")
		if strings.Contains(errs, "boom-console") && strings.Contains(errs, "boom-thrown") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("errors = %q, want boom-console and boom-thrown", errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
