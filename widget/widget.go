// Package widget holds the visitor widget: its TypeScript source (src/), its
// build (internal/build, run by go generate) and the built bundle
// (dist/widget.js), embedded so the server needs no Node at run time.
package widget

//go:generate go run ./internal/build

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

//go:embed dist/widget.js
var js []byte

var (
	etag    = func() string { s := sha256.Sum256(js); return `"` + base64.RawURLEncoding.EncodeToString(s[:16]) + `"` }()
	gzipped = func() []byte {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		w.Write(js)
		w.Close()
		return b.Bytes()
	}()
)

// Bundle returns the built widget.js. The caller must not modify it.
func Bundle() []byte { return js }

// Handler serves widget.js (mount it at /widget.js): text/javascript with a
// strong ETag, five minutes of public caching (the URL is not versioned, so
// site owners get fixes quickly), 304 for a matching If-None-Match, and gzip
// for clients that accept it.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("ETag", etag)
		h.Set("Vary", "Accept-Encoding")
		h.Set("X-Content-Type-Options", "nosniff")
		// Any page may embed the widget; it sends no credentials.
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		if matchETag(r.Header.Get("If-None-Match")) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := js
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			body = gzipped
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(body)
	})
}

func matchETag(inm string) bool {
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == etag || t == "W/"+etag {
			return true
		}
	}
	return false
}

func acceptsGzip(ae string) bool {
	for _, p := range strings.Split(ae, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(p), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") || strings.TrimSpace(name) == "*" {
			params = strings.ReplaceAll(params, " ", "")
			return params != "q=0" && params != "q=0.0" && params != "q=0.00" && params != "q=0.000"
		}
	}
	return false
}
