// Package browsertest drives Debian's headless Chromium from Go tests with
// chromedp. It is test support: the widget's, the demo's, the console's and
// the whole-server end-to-end tests share it.
//
// A test calls New to get a Page (one browser, one tab) bound to the test:
// the browser is killed and its temporary profile removed when the test ends.
// Console errors, uncaught exceptions and browser log errors (CSP violations
// among them) are collected from the start, so a test can assert that a page
// ran clean.
//
// The browser is found at $LIFELINE_CHROMIUM, else /usr/bin/chromium. When it
// is missing the test is skipped with a loud reason, unless
// LIFELINE_REQUIRE_ALL=1, in which case it fails: CI sets that variable so it
// never passes on skipped browser tests. Screenshots go to $LIFELINE_TEST_OUT,
// else <repo>/testout/, under the test's name.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// DefaultChromium is where Debian's chromium package installs the browser.
const DefaultChromium = "/usr/bin/chromium"

// Chromium returns the path of the browser to drive: $LIFELINE_CHROMIUM if
// set, else DefaultChromium. If it is not an executable file the test is
// skipped, or fails when LIFELINE_REQUIRE_ALL=1.
func Chromium(t testing.TB) string {
	t.Helper()
	return findBrowser(t, "LIFELINE_CHROMIUM", DefaultChromium, "BROWSER", "browser tests", "chromium")
}

// findBrowser returns $env or def if it is an executable; else it skips
// the test, or fails it when LIFELINE_REQUIRE_ALL=1, saying what to
// install.
func findBrowser(t testing.TB, env, def, label, tests, pkg string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		path = def
	}
	if p, err := exec.LookPath(path); err == nil {
		return p
	}
	msg := fmt.Sprintf("browsertest: NO %s at %q — %s are NOT RUNNING. Install Debian's %s (apt-get install -y %s) or set %s.", label, path, tests, pkg, pkg, env)
	if os.Getenv("LIFELINE_REQUIRE_ALL") == "1" {
		t.Fatal(msg + " (LIFELINE_REQUIRE_ALL=1 turns this skip into a failure)")
	}
	t.Skip(msg)
	return ""
}

// Page is one tab of a headless browser, bound to a test.
type Page struct {
	t   testing.TB
	ctx context.Context
	consoleLog

	mu    sync.Mutex
	hooks []func(ev any) // OnEvent's funcs
}

// consoleLog collects a page's console lines and log entries, and the
// errors among them, as "level: text". Both page types embed it.
type consoleLog struct {
	mu   sync.Mutex
	logs []string // every line
	errs []string // console errors, exceptions, log errors
}

func (c *consoleLog) add(level, text string, isErr bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := level + ": " + text
	c.logs = append(c.logs, line)
	if isErr {
		c.errs = append(c.errs, line)
	}
}

// Logs returns every console line and browser log entry seen so far.
func (c *consoleLog) Logs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.logs...)
}

// Errors returns the console errors, uncaught exceptions and browser log
// errors (such as CSP violations and failed loads) seen so far.
func (c *consoleLog) Errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// New starts a fresh headless Chromium with a temporary profile and returns
// its first tab. Everything is torn down when the test ends.
func New(t testing.TB) *Page {
	t.Helper()
	bin := Chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	p := &Page{t: t}
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(p.listen))
	p.ctx = ctx
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = chromedp.Cancel(cctx)
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: start %s: %v", bin, err)
	}
	return p
}

// NewTab opens another tab in the same browser (same profile, so the same
// localStorage), for tests of two tabs of one visitor.
func (p *Page) NewTab() *Page {
	p.t.Helper()
	return p.tab("new tab")
}

// NewContext opens a tab in a new browser context of the same browser,
// like a separate incognito window: it shares no cookies, storage or cache
// with any other tab, so one test can drive two people (a visitor and an
// agent, or two visitors) without starting a second browser.
func (p *Page) NewContext() *Page {
	p.t.Helper()
	return p.tab("new browser context", chromedp.WithNewBrowserContext())
}

// tab opens a tab of p's browser with opts, closed when the test ends;
// what names it in the failure.
func (p *Page) tab(what string, opts ...chromedp.ContextOption) *Page {
	p.t.Helper()
	q := &Page{t: p.t}
	ctx, cancel := chromedp.NewContext(p.ctx, append(opts, chromedp.WithListener(q.listen))...)
	q.ctx = ctx
	p.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		p.t.Fatalf("browsertest: %s: %v", what, err)
	}
	return q
}

// OnEvent calls fn with every DevTools protocol event of the tab from now
// on (such as *network.EventWebSocketFrameSent; the network domain is
// enabled). fn runs on chromedp's event loop: it must be quick and must not
// call back into the page.
func (p *Page) OnEvent(fn func(ev any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hooks = append(p.hooks, fn)
}

// OnNewDocument adds a script that runs in every document the tab loads
// from now on, before any of the page's own scripts: a test's way to put
// calls in the snippet's queue before the widget loads.
func (p *Page) OnNewDocument(js string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js}); err != nil {
		p.t.Fatalf("browsertest: add script: %v", err)
	}
}

func (p *Page) listen(ev any) {
	p.mu.Lock()
	hooks := p.hooks
	p.mu.Unlock()
	for _, fn := range hooks {
		fn(ev)
	}
	{
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				var s string
				if a.Value != nil && json.Unmarshal(a.Value, &s) == nil {
					parts = append(parts, s)
				} else if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			p.add(string(ev.Type), strings.Join(parts, " "), ev.Type == runtime.ConsoleAPICalledTypeError)
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			p.add("exception", text, true)
		case *log.EventEntryAdded:
			e := ev.Entry
			p.add("log."+string(e.Source)+"."+string(e.Level), e.Text+" "+e.URL, e.Level == log.EntryLevelError)
		}
	}
}

// Context is the tab's chromedp context, for chromedp.Run or chromedp.Do
// with any action.
func (p *Page) Context() context.Context { return p.ctx }

// Run runs chromedp actions in the tab, failing the test on error. It gives
// up after 20 seconds so a stuck page fails rather than hangs.
func (p *Page) Run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := p.RunErr(actions...); err != nil {
		p.t.Fatalf("browsertest: %v\nconsole:\n%s", err, strings.Join(p.Logs(), "\n"))
	}
}

// RunErr is Run returning the error instead of failing the test.
func (p *Page) RunErr(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// Navigate loads url and waits for the document to load.
func (p *Page) Navigate(url string) {
	p.t.Helper()
	p.Run(chromedp.Navigate(url))
}

// Eval runs a JavaScript expression in the page and stores its JSON result
// in out (which may be nil). Promises are awaited.
func (p *Page) Eval(js string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("browsertest: eval %.200s: %v\nconsole:\n%s", js, err, strings.Join(p.Logs(), "\n"))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("browsertest: eval %.200s: decode %s: %v", js, raw, err)
		}
	}
}

// WaitJS polls a JavaScript expression every 20 ms until it is truthy,
// failing the test after 15 seconds with what.
func (p *Page) WaitJS(what, js string) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("browsertest: timed out waiting for %s (%s)\nconsole:\n%s", what, js, strings.Join(p.Logs(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Screenshot saves a PNG of the viewport as OutDir(t)/name.png and returns
// its path.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("browsertest: screenshot: %v", err)
	}
	return savePNG(p.t, name, buf)
}

// savePNG writes a screenshot as OutDir(t)/name.png, logs and returns its
// path.
func savePNG(t testing.TB, name string, png []byte) string {
	t.Helper()
	path := filepath.Join(OutDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("browsertest: save screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// OutDir returns, creating it, the directory for this test's artefacts:
// $LIFELINE_TEST_OUT (default <repo>/testout) joined with the test's name.
func OutDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("LIFELINE_TEST_OUT")
	if root == "" {
		root = filepath.Join(repoRoot(), "testout")
	}
	dir := filepath.Join(root, unsafeName.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	return dir
}

// repoRoot walks up from the working directory to the directory holding
// go.mod; tests run in their package directory.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
