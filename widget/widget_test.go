package widget

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"

	"github.com/lifelinehq/lifeline/internal/leaktest"
	"github.com/lifelinehq/lifeline/widget/internal/bundle"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// TestBundleFresh fails when dist/widget.js is not what the sources build
// to: run `go generate ./widget` and commit dist/.
func TestBundleFresh(t *testing.T) {
	got, err := bundle.Build(".")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Bundle()) {
		t.Fatalf("dist/widget.js is stale (%d bytes built, %d committed): run `go generate ./widget` and commit widget/dist", len(got), len(Bundle()))
	}
}

// gzipBudget is the most widget.js may weigh gzipped. Mainstream chat
// messengers ship hundreds of KiB.
const gzipBudget = 16 << 10

func TestBundleSize(t *testing.T) {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	w.Write(Bundle())
	w.Close()
	t.Logf("widget.js: raw %d B, gzip -9 %d B (budget %d B)", len(Bundle()), b.Len(), gzipBudget)
	// Go has no brotli encoder; Node's zlib has one, and CI has Node for tsc.
	if node, err := exec.LookPath("node"); err == nil {
		cmd := exec.Command(node, "-e", `const z = require('zlib');
			const b = z.brotliCompressSync(require('fs').readFileSync(0), {params: {[z.constants.BROTLI_PARAM_QUALITY]: 11}});
			process.stdout.write(String(b.length));`)
		cmd.Stdin = bytes.NewReader(Bundle())
		if out, err := cmd.Output(); err == nil {
			t.Logf("widget.js: brotli -q 11 %s B", out)
		}
	}
	if b.Len() > gzipBudget {
		t.Errorf("gzipped widget.js = %d B, want ≤ %d B", b.Len(), gzipBudget)
	}
}

func TestHandler(t *testing.T) {
	h := Handler()
	get := func(hdr map[string]string) *http.Response {
		t.Helper()
		r := httptest.NewRequest("GET", "/widget.js", nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}

	res := get(nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !bytes.Equal(body, Bundle()) {
		t.Fatalf("GET = %d, %d bytes; want 200 and the bundle", res.StatusCode, len(body))
	}
	for k, want := range map[string]string{"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=300"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	tag := res.Header.Get("ETag")
	if len(tag) < 10 || tag[0] != '"' {
		t.Fatalf("ETag = %q, want a strong quoted tag", tag)
	}

	if res := get(map[string]string{"If-None-Match": tag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %s = %d, want 304", tag, res.StatusCode)
	}
	if res := get(map[string]string{"If-None-Match": `"other"`}); res.StatusCode != 200 {
		t.Errorf("If-None-Match: other = %d, want 200", res.StatusCode)
	}

	res = get(map[string]string{"Accept-Encoding": "br, gzip"})
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, Bundle()) {
		t.Errorf("gunzipped body differs from the bundle")
	}
	if res := get(map[string]string{"Accept-Encoding": "gzip;q=0"}); res.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got Content-Encoding %q, want none", res.Header.Get("Content-Encoding"))
	}
}

func TestBundleHasNoInnerHTML(t *testing.T) {
	// Every person's or server's string goes in with textContent.
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if bytes.Contains(Bundle(), []byte(bad)) {
			t.Errorf("widget.js contains %q", bad)
		}
	}
	src, _ := os.ReadDir("src")
	if len(src) == 0 {
		t.Fatal("no sources in src/")
	}
}
