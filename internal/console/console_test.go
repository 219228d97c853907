package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/lifelinehq/lifeline/internal/console/internal/bundle"
	"github.com/lifelinehq/lifeline/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// TestBundleFresh fails when dist/ is not what the sources build to: run
// `go generate ./internal/console` and commit internal/console/dist.
func TestBundleFresh(t *testing.T) {
	built, err := bundle.Build(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range bundle.Files {
		committed, err := dist.ReadFile("dist/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built[name], committed) {
			t.Errorf("dist/%s is stale (%d bytes built, %d committed): run `go generate ./internal/console` and commit internal/console/dist", name, len(built[name]), len(committed))
		}
	}
}

func TestHandler(t *testing.T) {
	h := Handler()
	get := func(path string, hdr map[string]string) *http.Response {
		t.Helper()
		r := httptest.NewRequest("GET", path, nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}

	// Every app route answers index.html with the CSP, so reloads work.
	for _, path := range []string{"/console", "/console/", "/console/c/123", "/console/detectors"} {
		res := get(path, nil)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || !strings.Contains(string(body), `<div id="app">`) {
			t.Fatalf("GET %s = %d, want 200 and the app", path, res.StatusCode)
		}
		if got := res.Header.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("GET %s: CSP = %q", path, got)
		}
	}
	if res := get("/consolex", nil); res.StatusCode != 404 {
		t.Errorf("GET /consolex = %d, want 404", res.StatusCode)
	}

	// The versioned assets named in index.html are served, cached for good,
	// gzipped on request, and 304 on a matching ETag.
	res := get("/console", nil)
	body, _ := io.ReadAll(res.Body)
	js := regexp.MustCompile(`/console(/assets/app\.[0-9a-f]+\.js)`).FindStringSubmatch(string(body))
	if js == nil {
		t.Fatalf("index.html names no versioned app.js:\n%s", body)
	}
	res = get("/console"+js[1], map[string]string{"Accept-Encoding": "br, gzip;q=0.5"})
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("GET app.js = %d, encoding %q, cache %q", res.StatusCode, res.Header.Get("Content-Encoding"), res.Header.Get("Cache-Control"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	committed, _ := dist.ReadFile("dist/app.js")
	if !bytes.Equal(plain, committed) {
		t.Fatal("gzipped app.js does not decode to dist/app.js")
	}
	if res := get("/console"+js[1], map[string]string{"Accept-Encoding": "gzip;q=0"}); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 still got gzip")
	}
	if res := get("/console"+js[1], map[string]string{"If-None-Match": res.Header.Get("ETag")}); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET with the ETag = %d, want 304", res.StatusCode)
	}
	if res := get("/console/assets/app.0000.js", nil); res.StatusCode != 404 {
		t.Errorf("unknown asset = %d, want 404", res.StatusCode)
	}
}

// gzipBudget is the most app.js and app.css may weigh together gzipped.
const gzipBudget = 60 << 10

func TestBundleSize(t *testing.T) {
	total := 0
	for _, name := range []string{"app.js", "app.css"} {
		b, _ := dist.ReadFile("dist/" + name)
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		w.Write(b)
		w.Close()
		t.Logf("%s: raw %d B, gzip -9 %d B", name, len(b), z.Len())
		total += z.Len()
	}
	if total > gzipBudget {
		t.Errorf("console assets gzipped = %d B, want ≤ %d B", total, gzipBudget)
	}
}
