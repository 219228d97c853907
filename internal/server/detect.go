package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/auth"
	"github.com/lifelinehq/lifeline/internal/httpjson"
	"github.com/lifelinehq/lifeline/internal/struggle"
)

// addDetectionRoutes routes live visitors, detector rules, counters,
// backtests, the audit trail and the widget's behaviour beacon.
func (s *Server) addDetectionRoutes(mux *http.ServeMux, anyone, tuners func(http.Handler) http.Handler) {
	if s.cfg.Struggle == nil {
		return
	}
	mux.Handle("GET /api/v1/visitors/live", anyone(s.siteRead(s.liveVisitors)))
	mux.Handle("GET /api/v1/sites/{key}/rules", anyone(s.siteRead(s.getRules)))
	mux.Handle("PUT /api/v1/sites/{key}/rules", tuners(s.putSiteDoc("rules", 1<<20, s.putRules)))
	mux.Handle("GET /api/v1/sites/{key}/policy", anyone(s.siteRead(s.getPolicy)))
	mux.Handle("PUT /api/v1/sites/{key}/policy", tuners(http.HandlerFunc(s.putPolicy)))
	mux.Handle("GET /api/v1/sites/{key}/detector", anyone(s.siteRead(s.detectorCounters)))
	mux.Handle("POST /api/v1/sites/{key}/backtest", tuners(http.HandlerFunc(s.backtest)))
	mux.HandleFunc("POST /api/v1/events", s.eventsBeacon)
}

// site loads the {key} site, answering 404 when it does not exist.
func (s *Server) site(w http.ResponseWriter, r *http.Request, key string) (chat.Site, bool) {
	site, err := s.cfg.Store.Site(r.Context(), key)
	if err != nil {
		s.writeStoreError(w, r, err)
		return site, false
	}
	return site, true
}

// siteRead answers a GET about one site — {key} in the path, or ?site= —
// with what read returns, after checking that the site exists.
func (s *Server) siteRead(read func(ctx context.Context, key string) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("key")
		if key == "" {
			key = r.URL.Query().Get("site")
		}
		if _, ok := s.site(w, r, key); !ok {
			return
		}
		out, err := read(r.Context(), key)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		httpjson.Write(w, http.StatusOK, out)
	}
}

func (s *Server) liveVisitors(ctx context.Context, key string) (any, error) {
	list, err := s.cfg.Struggle.Live(ctx, key, 200)
	return map[string]any{"visitors": list}, err
}

func (s *Server) getRules(ctx context.Context, key string) (any, error) {
	return s.cfg.Struggle.Rules(ctx, key)
}

func (s *Server) getPolicy(ctx context.Context, key string) (any, error) {
	p, err := s.cfg.Struggle.Policy(ctx, key)
	return map[string]any{"policy": p}, err
}

func (s *Server) detectorCounters(ctx context.Context, key string) (any, error) {
	rows, err := s.cfg.Struggle.Counters(ctx, key)
	return map[string]any{"rules": rows}, err
}

// putSiteDoc answers PUT of a site's document (detector rules,
// playbooks): up to limit bytes go to set with the agent making the change.
func (s *Server) putSiteDoc(what string, limit int64, set func(ctx context.Context, key string, data []byte, by chat.Agent) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("key")
		if _, ok := s.site(w, r, key); !ok {
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, "invalid", what+": "+err.Error())
			return
		}
		agent, _ := auth.AgentFrom(r.Context())
		doc, err := set(r.Context(), key, data, agent)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		httpjson.Write(w, http.StatusOK, doc)
	}
}

func (s *Server) putRules(ctx context.Context, key string, data []byte, by chat.Agent) (any, error) {
	return s.cfg.Struggle.SetRules(ctx, key, data, by)
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if _, ok := s.site(w, r, key); !ok {
		return
	}
	var p chat.OfferPolicy
	if !decodeBody(w, r, &p) {
		return
	}
	agent, _ := auth.AgentFrom(r.Context())
	if err := s.cfg.Struggle.SetPolicy(r.Context(), key, p, agent); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"policy": p})
}

func (s *Server) backtest(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if _, ok := s.site(w, r, key); !ok {
		return
	}
	var req struggle.BacktestRequest
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		httpjson.Error(w, http.StatusBadRequest, "invalid", "request body: "+err.Error())
		return
	}
	rep, err := s.cfg.Struggle.Backtest(r.Context(), key, req)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, rep)
}

// auditLog answers GET /api/v1/audit: a site's trail for anyone signed
// in, every site's for admins.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("site")
	if key == "" {
		if me, _ := auth.AgentFrom(r.Context()); me.Role != chat.RoleAdmin {
			httpjson.Error(w, http.StatusForbidden, "forbidden", "only admins read every site's audit trail; add ?site=")
			return
		}
	} else if _, ok := s.site(w, r, key); !ok {
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	list, err := s.cfg.Audit.Entries(r.Context(), key, limit)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"entries": list})
}

// eventsBeacon takes the widget's last behaviour batch when the page is
// unloading and the socket cannot carry it: POST /api/v1/events?site=KEY
// with a text/plain body {"token","events"} (a CORS-simple request, so no
// preflight). The visitor token proves who sent it.
func (s *Server) eventsBeacon(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("site")
	site, err := s.cfg.Store.Site(r.Context(), key)
	if err != nil {
		if errors.Is(err, chat.ErrNotFound) {
			httpjson.Error(w, http.StatusForbidden, "unknown_site", "no site with that key")
			return
		}
		s.writeStoreError(w, r, err)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !originAllowed(site, o) {
		httpjson.Error(w, http.StatusForbidden, "forbidden", "this origin is not allowed for the site")
		return
	}
	var body struct {
		Token  string            `json:"token"`
		Events []json.RawMessage `json:"events"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		httpjson.Error(w, http.StatusBadRequest, "bad_frame", "body: want {\"token\",\"events\"}: "+err.Error())
		return
	}
	// A beacon is capped as the events frame is.
	if len(body.Events) > chat.MaxBatchEvents {
		httpjson.Error(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("at most %d events per beacon", chat.MaxBatchEvents))
		return
	}
	visitorID, ok := chat.VerifyVisitorToken(s.cfg.Secret, site.Key, body.Token)
	if !ok {
		httpjson.Error(w, http.StatusForbidden, "bad_token", "the visitor token is forged, expired or for another site")
		return
	}
	raw := make([][]byte, len(body.Events))
	for i, e := range body.Events {
		raw[i] = e
	}
	s.cfg.Struggle.HandleEvents(r.Context(), chat.VisitorRef{SiteKey: site.Key, VisitorID: visitorID}, raw)
	w.WriteHeader(http.StatusNoContent)
}

// originAllowed matches an Origin header against the site's host patterns
// the way the WebSocket handshake does.
func originAllowed(site chat.Site, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	for _, o := range site.Origins {
		if ok, _ := path.Match(strings.ToLower(chat.OriginHost(o)), strings.ToLower(u.Host)); ok {
			return true
		}
	}
	return false
}
