package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/coder/websocket"
	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/httpjson"
)

// The sockets below are served on goroutines of their own once accepted:
// the handler returns, so net/http's request, buffers and the deep stack
// of its handler goroutine are freed rather than held while the socket
// lives (most of them idle).

// visitorSocket accepts /ws/visitor?site=KEY for a known site from one of
// its allowed origins, within the per-IP connection cap.
func (s *Server) visitorSocket() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("site")
		site, err := s.cfg.Store.Site(r.Context(), key)
		if errors.Is(err, chat.ErrNotFound) || key == "" {
			s.rejected("unknown_site")
			httpjson.Error(w, http.StatusForbidden, "unknown_site", "no site with that key: check data-site in the snippet")
			return
		}
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		ip, ok := s.admit(w, r)
		if !ok {
			return
		}
		patterns := make([]string, 0, len(site.Origins))
		for _, o := range site.Origins {
			patterns = append(patterns, chat.OriginHost(o))
		}
		sock, err := chat.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: patterns})
		if err != nil {
			// Accept has already answered (403 for a foreign origin).
			s.releaseIP(ip)
			s.rejected("handshake")
			s.log.Debug("visitor handshake refused", "site", key, "err", err)
			return
		}
		go func() {
			defer s.releaseIP(ip)
			s.cfg.Hub.ServeVisitor(context.Background(), sock, site, ip)
		}()
	})
}

// agentSocket accepts /ws/agent for a logged-in agent from the same origin.
func (s *Server) agentSocket() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agent, _, err := s.cfg.Auth.Authenticate(r)
		if err != nil {
			s.rejected("unauthenticated")
			httpjson.Error(w, http.StatusUnauthorized, "unauthenticated", "log in first")
			return
		}
		ip, ok := s.admit(w, r)
		if !ok {
			return
		}
		sock, err := chat.Accept(w, r, nil) // same origin only
		if err != nil {
			s.releaseIP(ip)
			s.rejected("handshake")
			return
		}
		go func() {
			defer s.releaseIP(ip)
			s.cfg.Hub.ServeAgent(context.Background(), sock, agent, ip)
		}()
	})
}

// admit counts a connection against its address's cap, answering 429
// when the address is over it. The caller releases the returned address.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (ip string, ok bool) {
	ip = clientIP(r)
	if !s.acquireIP(ip) {
		s.rejected("ip_cap")
		httpjson.Error(w, http.StatusTooManyRequests, "too_many_connections", "too many connections from this address")
		return ip, false
	}
	return ip, true
}

func (s *Server) rejected(reason string) {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.HandshakeRejected(reason)
	}
}
