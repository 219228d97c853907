package browsertest

// Firefox support: a small WebDriver BiDi client, enough to prove the
// console works in Firefox as well as Chromium. chromedp speaks only the
// Chrome DevTools protocol, so Firefox is driven over BiDi directly.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// DefaultFirefox is where Debian's firefox-esr package installs the browser.
const DefaultFirefox = "/usr/bin/firefox-esr"

// Firefox returns the path of the Firefox to drive: $LIFELINE_FIREFOX if
// set, else DefaultFirefox. If it is not an executable file the test is
// skipped, or fails when LIFELINE_REQUIRE_ALL=1.
func Firefox(t testing.TB) string {
	t.Helper()
	return findBrowser(t, "LIFELINE_FIREFOX", DefaultFirefox, "FIREFOX", "Firefox tests", "firefox-esr")
}

// FirefoxPage is the one tab of a headless Firefox driven over WebDriver
// BiDi, bound to a test.
type FirefoxPage struct {
	t       testing.TB
	ws      *websocket.Conn
	context string // the tab's browsing context id
	consoleLog

	mu      sync.Mutex
	nextID  int
	pending map[int]chan bidiReply
}

type bidiReply struct {
	Type    string          `json:"type"` // "success", "error" or "event"
	ID      int             `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// firefoxPrefs keep a test browser quiet: no first-run pages, updates,
// telemetry or background connections.
const firefoxPrefs = `user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("app.update.enabled", false);
user_pref("app.update.auto", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("browser.newtabpage.enabled", false);
`

// NewFirefox starts a headless Firefox on a free 127.0.0.1 port with a
// temporary profile, opens a BiDi session and returns its tab. The browser
// is closed, and its process group killed, when the test ends.
func NewFirefox(t testing.TB) *FirefoxPage {
	t.Helper()
	bin := Firefox(t)
	dir := t.TempDir() // removed after the cleanup below has killed the browser
	profile := filepath.Join(dir, "profile")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(firefoxPrefs), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	logPath := filepath.Join(dir, "firefox.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(bin, "--headless", "--remote-debugging-port", fmt.Sprint(port), "--profile", profile, "--no-remote", "about:blank")
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), "MOZ_HEADLESS=1", "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // content processes join its group
	if err := cmd.Start(); err != nil {
		t.Fatalf("browsertest: start %s: %v", bin, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p := &FirefoxPage{t: t, pending: map[int]chan bidiReply{}}
	t.Cleanup(func() {
		if p.ws != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, _ = p.call(ctx, "browser.close", map[string]any{})
			cancel()
			p.ws.CloseNow()
		}
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		// The process group this test started: Firefox and its content processes.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	})

	// Wait for "WebDriver BiDi listening on ws://…".
	var wsURL string
	deadline := time.Now().Add(45 * time.Second)
	for wsURL == "" {
		b, _ := os.ReadFile(logPath)
		if m := bidiListening.FindSubmatch(b); m != nil {
			wsURL = string(m[1])
			break
		}
		select {
		case <-exited:
			t.Fatalf("browsertest: %s exited before listening:\n%s", bin, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("browsertest: %s did not start listening in 45s:\n%s", bin, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.TrimSuffix(wsURL, "/")+"/session", nil)
	if err != nil {
		t.Fatalf("browsertest: dial Firefox BiDi at %s: %v", wsURL, err)
	}
	ws.SetReadLimit(64 << 20)
	p.ws = ws
	go p.read()

	if _, err := p.call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}); err != nil {
		t.Fatalf("browsertest: Firefox session.new: %v", err)
	}
	if _, err := p.call(ctx, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}); err != nil {
		t.Fatalf("browsertest: Firefox session.subscribe: %v", err)
	}
	raw, err := p.call(ctx, "browsingContext.getTree", map[string]any{})
	if err != nil {
		t.Fatalf("browsertest: Firefox browsingContext.getTree: %v", err)
	}
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := json.Unmarshal(raw, &tree); err != nil || len(tree.Contexts) == 0 {
		t.Fatalf("browsertest: Firefox has no tab: %s (%v)", raw, err)
	}
	p.context = tree.Contexts[0].Context
	return p
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// read dispatches replies to their callers and records log entries, until
// the connection closes.
func (p *FirefoxPage) read() {
	for {
		_, b, err := p.ws.Read(context.Background())
		if err != nil {
			p.mu.Lock()
			for id, ch := range p.pending {
				ch <- bidiReply{Type: "error", ID: id, Error: "connection closed", Message: err.Error()}
				delete(p.pending, id)
			}
			p.pending = nil
			p.mu.Unlock()
			return
		}
		var r bidiReply
		if json.Unmarshal(b, &r) != nil {
			continue
		}
		if r.Type == "event" {
			if r.Method == "log.entryAdded" {
				p.logEntry(r.Params)
			}
			continue
		}
		p.mu.Lock()
		ch := p.pending[r.ID]
		delete(p.pending, r.ID)
		p.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

func (p *FirefoxPage) logEntry(raw json.RawMessage) {
	var e struct {
		Type   string `json:"type"` // "console" or "javascript"
		Level  string `json:"level"`
		Text   string `json:"text"`
		Method string `json:"method"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return
	}
	p.add(e.Type+"."+e.Level, e.Text, e.Level == "error")
}

// call sends one BiDi command and returns its result.
func (p *FirefoxPage) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	ch := make(chan bidiReply, 1)
	p.mu.Lock()
	if p.pending == nil {
		p.mu.Unlock()
		return nil, fmt.Errorf("%s: connection closed", method)
	}
	p.nextID++
	id := p.nextID
	p.pending[id] = ch
	p.mu.Unlock()
	b, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	if err := p.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Type != "success" {
			return nil, fmt.Errorf("%s: %s: %s", method, r.Error, r.Message)
		}
		return r.Result, nil
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Navigate loads url and waits for the document to load.
func (p *FirefoxPage) Navigate(url string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.call(ctx, "browsingContext.navigate", map[string]any{"context": p.context, "url": url, "wait": "complete"}); err != nil {
		p.t.Fatalf("browsertest: firefox: navigate %s: %v\nconsole:\n%s", url, err, strings.Join(p.Logs(), "\n"))
	}
}

// evalJSON runs a JavaScript expression, awaiting promises, and returns
// its value as JSON ("" for undefined).
func (p *FirefoxPage) evalJSON(ctx context.Context, js string) (string, error) {
	expr := "(async () => JSON.stringify(await (\n" + js + "\n)))()"
	raw, err := p.call(ctx, "script.evaluate", map[string]any{
		"expression":      expr,
		"target":          map[string]any{"context": p.context},
		"awaitPromise":    true,
		"resultOwnership": "none",
	})
	if err != nil {
		return "", err
	}
	var r struct {
		Type   string `json:"type"`
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", fmt.Errorf("decode %s: %w", raw, err)
	}
	if r.Type == "exception" {
		return "", fmt.Errorf("exception: %s", r.ExceptionDetails.Text)
	}
	if r.Result.Type != "string" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(r.Result.Value, &s); err != nil {
		return "", err
	}
	return s, nil
}

// Eval runs a JavaScript expression in the page and stores its JSON result
// in out (which may be nil). Promises are awaited.
func (p *FirefoxPage) Eval(js string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := p.evalJSON(ctx, js)
	if err != nil {
		p.t.Fatalf("browsertest: firefox: eval %.200s: %v\nconsole:\n%s", js, err, strings.Join(p.Logs(), "\n"))
	}
	if out != nil {
		if err := json.Unmarshal([]byte(s), out); err != nil {
			p.t.Fatalf("browsertest: firefox: eval %.200s: decode %q: %v", js, s, err)
		}
	}
}

// WaitJS polls a JavaScript expression every 20 ms until it is truthy,
// failing the test after 15 seconds with what.
func (p *FirefoxPage) WaitJS(what, js string) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := p.evalJSON(ctx, "!!("+js+")")
		cancel()
		if err == nil && s == "true" {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("browsertest: firefox: timed out waiting for %s (%s): %v\nconsole:\n%s", what, js, err, strings.Join(p.Logs(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Screenshot saves a PNG of the viewport as OutDir(t)/name.png and returns
// its path.
func (p *FirefoxPage) Screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := p.call(ctx, "browsingContext.captureScreenshot", map[string]any{"context": p.context})
	if err != nil {
		p.t.Fatalf("browsertest: firefox: screenshot: %v", err)
	}
	var r struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		p.t.Fatalf("browsertest: firefox: screenshot: %v", err)
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		p.t.Fatalf("browsertest: firefox: screenshot: %v", err)
	}
	return savePNG(p.t, name, png)
}
