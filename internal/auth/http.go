package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/httpjson"
)

type ctxKey struct{}

type principal struct {
	agent chat.Agent
	sess  chat.Session
}

// AgentFrom returns the agent that Require authenticated for this request.
func AgentFrom(ctx context.Context) (chat.Agent, bool) {
	p, ok := ctx.Value(ctxKey{}).(principal)
	return p.agent, ok
}

// SessionFrom returns the session that Require authenticated.
func SessionFrom(ctx context.Context) (chat.Session, bool) {
	p, ok := ctx.Value(ctxKey{}).(principal)
	return p.sess, ok
}

// Authenticate returns the agent and session of the request's cookie.
func (s *Service) Authenticate(r *http.Request) (chat.Agent, chat.Session, error) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return chat.Agent{}, chat.Session{}, ErrNoSession
	}
	return s.Session(r.Context(), c.Value)
}

// sameOrigin reports whether a state-changing request comes from this
// site. Browsers send Origin on every cross-origin request and on same-origin
// POSTs; Sec-Fetch-Site backs it up. A request with neither (curl, the Go
// client without Origin) is allowed: it carries no ambient browser cookies
// by accident, and the CSRF token is still required.
func sameOrigin(r *http.Request) bool {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" && sfs != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return u.Host == r.Host
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Require returns middleware that lets through logged-in agents with one of
// roles (any role when none is given), and, for state-changing methods,
// only same-origin requests carrying the session's CSRF token.
func (s *Service) Require(roles ...chat.Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				s.serveKey(w, r, next, bearer, roles)
				return
			}
			a, sess, err := s.Authenticate(r)
			if errors.Is(err, ErrNoSession) {
				httpjson.Error(w, http.StatusUnauthorized, "unauthenticated", "log in first")
				return
			}
			if err != nil {
				s.o.Logger.Error("authenticate", "err", err)
				httpjson.Error(w, http.StatusServiceUnavailable, "unavailable", "the server cannot check your session; retry")
				return
			}
			if len(roles) > 0 && !slices.Contains(roles, a.Role) {
				httpjson.Error(w, http.StatusForbidden, "forbidden", "your role ("+string(a.Role)+") may not do this")
				return
			}
			if !safeMethod(r.Method) {
				if !sameOrigin(r) {
					httpjson.Error(w, http.StatusForbidden, "csrf", "cross-site request refused")
					return
				}
				if !validCSRF(sess, r.Header.Get("X-CSRF-Token")) {
					httpjson.Error(w, http.StatusForbidden, "csrf", "missing or wrong X-CSRF-Token header")
					return
				}
			}
			ctx := context.WithValue(r.Context(), ctxKey{}, principal{a, sess})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// serveKey authenticates a request by API key. A bearer token is never
// sent by a browser on its own, so no CSRF check applies.
func (s *Service) serveKey(w http.ResponseWriter, r *http.Request, next http.Handler, secret string, roles []chat.Role) {
	a, err := s.KeyAgent(r.Context(), secret)
	if errors.Is(err, ErrNoKey) {
		httpjson.Error(w, http.StatusUnauthorized, "unauthenticated", "unknown or revoked API key")
		return
	}
	if err != nil {
		s.o.Logger.Error("check API key", "err", err)
		httpjson.Error(w, http.StatusServiceUnavailable, "unavailable", "the server cannot check your key; retry")
		return
	}
	if len(roles) > 0 && !slices.Contains(roles, a.Role) {
		httpjson.Error(w, http.StatusForbidden, "forbidden", "this key's role ("+string(a.Role)+") may not do this")
		return
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, principal{agent: a})))
}

// Routes adds POST /api/v1/login, POST /api/v1/logout, GET /api/v1/me and
// the admins' API key routes.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/login", s.login)
	mux.Handle("POST /api/v1/logout", s.Require()(http.HandlerFunc(s.logout)))
	mux.Handle("GET /api/v1/me", s.Require()(http.HandlerFunc(s.me)))
	admins := s.Require(chat.RoleAdmin)
	mux.Handle("GET /api/v1/keys", admins(http.HandlerFunc(s.listKeys)))
	mux.Handle("POST /api/v1/keys", admins(http.HandlerFunc(s.createKey)))
	mux.Handle("DELETE /api/v1/keys/{id}", admins(http.HandlerFunc(s.revokeKey)))
}

func (s *Service) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.Keys(r.Context())
	if err != nil {
		s.o.Logger.Error("list API keys", "err", err)
		httpjson.Error(w, http.StatusServiceUnavailable, "unavailable", "retry")
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"keys": keys})
}

func (s *Service) createKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string    `json:"name"`
		Role chat.Role `json:"role"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		httpjson.Error(w, http.StatusBadRequest, "invalid", "request body: want {\"name\",\"role\"}")
		return
	}
	by, _ := AgentFrom(r.Context())
	k, secret, err := s.CreateKey(r.Context(), body.Name, body.Role, by)
	if errors.Is(err, chat.ErrInvalid) {
		httpjson.Error(w, http.StatusBadRequest, "invalid", strings.TrimPrefix(err.Error(), chat.ErrInvalid.Error()+": "))
		return
	}
	if err != nil {
		s.o.Logger.Error("create API key", "err", err)
		httpjson.Error(w, http.StatusServiceUnavailable, "unavailable", "retry")
		return
	}
	s.o.Audit.Record(r.Context(), by, "", "key.create", "key:"+k.ID, k.Name+" ("+string(k.Role)+")")
	httpjson.Write(w, http.StatusCreated, map[string]any{"key": k, "secret": secret})
}

func (s *Service) revokeKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.RevokeKey(r.Context(), r.PathValue("id"))
	if errors.Is(err, chat.ErrNotFound) {
		httpjson.Error(w, http.StatusNotFound, "not_found", "no such key")
		return
	}
	if err != nil {
		s.o.Logger.Error("revoke API key", "err", err)
		httpjson.Error(w, http.StatusServiceUnavailable, "unavailable", "retry")
		return
	}
	by, _ := AgentFrom(r.Context())
	s.o.Audit.Record(r.Context(), by, "", "key.revoke", "key:"+k.ID, k.Name)
	httpjson.Write(w, http.StatusOK, map[string]any{"key": k})
}

func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		httpjson.Error(w, http.StatusForbidden, "csrf", "cross-site request refused")
		return
	}
	var body struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		httpjson.Error(w, http.StatusBadRequest, "invalid", "request body: want {\"email\",\"password\"}")
		return
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	a, sess, token, err := s.Login(r.Context(), body.Email, body.Password, ip)
	switch {
	case errors.Is(err, ErrThrottled):
		w.Header().Set("Retry-After", "900")
		httpjson.Error(w, http.StatusTooManyRequests, "rate_limited", "too many failed logins; wait 15 minutes")
		return
	case errors.Is(err, ErrBadCredentials):
		httpjson.Error(w, http.StatusUnauthorized, "bad_credentials", "wrong email or password")
		return
	case err != nil:
		s.o.Logger.Error("login", "err", err)
		httpjson.Error(w, http.StatusServiceUnavailable, "unavailable", "the server cannot log you in right now; retry")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: token, Path: "/", HttpOnly: true, Secure: s.o.SecureCookies,
		SameSite: http.SameSiteStrictMode, Expires: sess.ExpiresAt, MaxAge: int(time.Until(sess.ExpiresAt).Seconds()),
	})
	httpjson.Write(w, http.StatusOK, map[string]any{"agent": a, "csrf_token": sess.CSRF})
}

func (s *Service) logout(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Cookie(CookieName)
	if c != nil {
		if err := s.Logout(r.Context(), c.Value); err != nil {
			s.o.Logger.Error("logout", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: s.o.SecureCookies, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) me(w http.ResponseWriter, r *http.Request) {
	p := r.Context().Value(ctxKey{}).(principal)
	httpjson.Write(w, http.StatusOK, map[string]any{"agent": p.agent, "csrf_token": p.sess.CSRF})
}
