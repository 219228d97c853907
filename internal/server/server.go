// Package server is Lifeline's HTTP surface: routes, WebSocket accept, the
// REST API and operational endpoints.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/assist"
	"github.com/lifelinehq/lifeline/internal/audit"
	"github.com/lifelinehq/lifeline/internal/auth"
	"github.com/lifelinehq/lifeline/internal/httpjson"
	"github.com/lifelinehq/lifeline/internal/metrics"
	"github.com/lifelinehq/lifeline/internal/privacy"
	"github.com/lifelinehq/lifeline/internal/struggle"
	"github.com/lifelinehq/lifeline/internal/webhook"
)

// Config wires the server's parts. Handlers left nil are not routed.
type Config struct {
	Hub     *chat.Hub
	Store   chat.Store
	Broker  chat.Broker
	Auth    *auth.Service
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Struggle serves live visitors, detector rules, counters and
	// backtests. Nil leaves those routes out.
	Struggle *struggle.Service
	// Assist serves playbooks, suggestions and actions. Nil leaves those
	// routes out.
	Assist *assist.Service
	// Audit is the trail of who did what, served at /api/v1/audit.
	Audit *audit.Log
	// Secret verifies visitor tokens on the behaviour beacon; the hub's.
	Secret []byte
	// Webhooks manages subscriptions and dead letters; Privacy exports and
	// erases visitors and holds retention settings. Nil leaves their
	// routes out.
	Webhooks *webhook.Service
	Privacy  *privacy.Service

	// Widget serves /widget.js, Demo serves /demo and Console /console.
	Widget  http.Handler
	Demo    http.Handler
	Console http.Handler

	// MaxConnsPerIP caps concurrent WebSockets per client IP. Defaults to 50.
	MaxConnsPerIP int
}

// Server holds the state shared by the handlers.
type Server struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	perIP map[string]int
}

// New returns the HTTP handler for a node.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxConnsPerIP <= 0 {
		cfg.MaxConnsPerIP = 50
	}
	s := &Server{cfg: cfg, log: cfg.Logger, perIP: make(map[string]int)}
	mux := http.NewServeMux()
	s.addRoutes(mux)
	return securityHeaders(mux)
}

// clientIP is the peer address without port. Lifeline does not trust
// forwarding headers: put rate limits in the proxy when behind one.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// acquireIP counts a connection for ip; false means over the cap.
func (s *Server) acquireIP(ip string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip] >= s.cfg.MaxConnsPerIP {
		return false
	}
	s.perIP[ip]++
	return true
}

func (s *Server) releaseIP(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// writeStoreError maps contract and validation errors to statuses in one
// place; anything else is logged and answered 503 without details.
func (s *Server) writeStoreError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *chat.FrameError
	var invalid interface{ Invalid() bool } // a validation error listing its problems
	switch {
	case errors.As(err, &invalid) && invalid.Invalid():
		httpjson.Error(w, http.StatusBadRequest, "invalid", err.Error())
	case errors.As(err, &fe):
		status := http.StatusBadRequest
		if fe.Code == chat.CodeConflict {
			status = http.StatusConflict
		}
		httpjson.Error(w, status, fe.Code, fe.Message)
	case errors.Is(err, chat.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, chat.ErrConflict):
		httpjson.Error(w, http.StatusConflict, "conflict", "the record changed or already exists")
	case errors.Is(err, chat.ErrCapacity):
		httpjson.Error(w, http.StatusConflict, "capacity", "the agent is at capacity")
	case errors.Is(err, chat.ErrInvalid):
		httpjson.Error(w, http.StatusBadRequest, "invalid", chat.Problem(err))
	case errors.Is(err, context.Canceled):
		// The client went away; nobody is listening.
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		httpjson.Error(w, http.StatusServiceUnavailable, "unavailable", "the server cannot serve this right now; retry")
	}
}

// decodeBody reads a JSON request body of at most 64 KiB.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpjson.Error(w, http.StatusBadRequest, "invalid", "request body: "+err.Error())
		return false
	}
	return true
}

// securityHeaders sets headers every response should carry.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		next.ServeHTTP(w, r)
	})
}
