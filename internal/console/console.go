// Package console serves the agents' and product teams' web app: its
// TypeScript source (src/), its build (internal/build, run by go generate)
// and the built files (dist/), embedded so the server needs no Node at run
// time.
package console

//go:generate go run ./internal/build

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed dist/index.html dist/app.js dist/app.css
var dist embed.FS

// CSP is the Content-Security-Policy sent with the app's HTML. Nothing
// inline, nothing from elsewhere: scripts and styles come only from
// /console/assets, and the page cannot be framed.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Prefix is where the app lives.
const Prefix = "/console"

// asset is one built file, ready to serve.
type asset struct {
	body, gz []byte
	ctype    string
	etag     string
}

func newAsset(body []byte, ctype string) *asset {
	sum := sha256.Sum256(body)
	a := &asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	w.Write(body)
	w.Close()
	if b.Len() < len(body) {
		a.gz = b.Bytes()
	}
	return a
}

// hash is the short content hash put in an asset's versioned name.
func (a *asset) hash() string { return strings.Trim(a.etag, `"`) }

type site struct {
	index  *asset
	assets map[string]*asset // by path below Prefix, e.g. /assets/app.3f2a….js
}

func load() *site {
	read := func(name string) []byte {
		b, err := dist.ReadFile("dist/" + name)
		if err != nil {
			panic("console: embedded " + name + " missing: " + err.Error())
		}
		return b
	}
	js := newAsset(read("app.js"), "text/javascript; charset=utf-8")
	css := newAsset(read("app.css"), "text/css; charset=utf-8")
	s := &site{assets: map[string]*asset{}}
	jsPath := "/assets/app." + js.hash() + ".js"
	cssPath := "/assets/app." + css.hash() + ".css"
	s.assets[jsPath] = js
	s.assets[cssPath] = css
	html := string(read("index.html"))
	html = strings.ReplaceAll(html, "{{app.js}}", Prefix+jsPath)
	html = strings.ReplaceAll(html, "{{app.css}}", Prefix+cssPath)
	s.index = newAsset([]byte(html), "text/html; charset=utf-8")
	return s
}

// Handler serves the single-page app. Mount it at both "/console" and
// "/console/". Versioned assets under /console/assets/ are cached for a
// year (their names change with their content); every other GET below
// /console answers the app's index.html, revalidated on each load with an
// ETag and sent with a strict Content-Security-Policy, so the app's own
// routes (/console/c/{id}, /console/sites…) survive a reload.
func Handler() http.Handler {
	s := load()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok || (rest != "" && rest[0] != '/') {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(rest, "/assets/") {
			a := s.assets[rest]
			if a == nil {
				http.NotFound(w, r)
				return
			}
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
			serve(w, r, a)
			return
		}
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		serve(w, r, s.index)
	})
}

// serve answers with a, gzipped when the client takes it. http.ServeContent
// does the conditional (If-None-Match against the ETag), HEAD and
// Content-Length work.
func serve(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Vary", "Accept-Encoding")
	body := a.body
	if a.gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip with a
// q-value above zero.
func acceptsGzip(header string) bool {
	for _, coding := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(coding, ";")
		if name = strings.ToLower(strings.TrimSpace(name)); name != "gzip" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}
