package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/auth"
	"github.com/lifelinehq/lifeline/internal/httpjson"
	"github.com/lifelinehq/lifeline/internal/privacy"
)

// BackupWriter is the optional Store capability behind GET /api/v1/backup:
// a consistent copy of the embedded store written while it serves.
type BackupWriter interface {
	WriteBackup(ctx context.Context, w io.Writer) (int64, error)
}

// addDataRoutes adds webhooks, data rights, retention and backup, all for
// admins only.
func (s *Server) addDataRoutes(mux *http.ServeMux, admins func(http.Handler) http.Handler) {
	if s.cfg.Webhooks != nil {
		mux.Handle("GET /api/v1/sites/{key}/webhooks", admins(http.HandlerFunc(s.listWebhooks)))
		mux.Handle("POST /api/v1/sites/{key}/webhooks", admins(http.HandlerFunc(s.addWebhook)))
		mux.Handle("DELETE /api/v1/sites/{key}/webhooks/{id}", admins(http.HandlerFunc(s.deleteWebhook)))
		mux.Handle("GET /api/v1/webhooks/dead", admins(http.HandlerFunc(s.deadWebhooks)))
		mux.Handle("POST /api/v1/webhooks/dead/{id}/redeliver", admins(http.HandlerFunc(s.redeliverWebhook)))
		mux.Handle("POST /api/v1/webhooks/dead/redeliver", admins(http.HandlerFunc(s.redeliverAllWebhooks)))
	}
	if s.cfg.Privacy != nil {
		mux.Handle("GET /api/v1/visitors/{id}/export", admins(http.HandlerFunc(s.exportVisitor)))
		mux.Handle("DELETE /api/v1/visitors/{id}", admins(http.HandlerFunc(s.eraseVisitor)))
		mux.Handle("GET /api/v1/sites/{key}/retention", admins(http.HandlerFunc(s.getRetention)))
		mux.Handle("PUT /api/v1/sites/{key}/retention", admins(http.HandlerFunc(s.putRetention)))
	}
	if _, ok := s.cfg.Store.(BackupWriter); ok {
		mux.Handle("GET /api/v1/backup", admins(http.HandlerFunc(s.backup)))
	}
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Webhooks.List(r.Context(), r.PathValue("key"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"webhooks": list})
}

func (s *Server) addWebhook(w http.ResponseWriter, r *http.Request) {
	var body struct {
		URL    string           `json:"url"`
		Secret string           `json:"secret"`
		Events []chat.EventType `json:"events"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	sub, err := s.cfg.Webhooks.Subscribe(r.Context(), r.PathValue("key"), body.URL, body.Secret, body.Events)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, map[string]any{"webhook": sub})
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Webhooks.Unsubscribe(r.Context(), r.PathValue("key"), r.PathValue("id")); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// siteParam returns the request's ?site=, or answers 400 without one.
func siteParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	site := r.URL.Query().Get("site")
	if site == "" {
		httpjson.Error(w, http.StatusBadRequest, "invalid", "give site")
	}
	return site, site != ""
}

func (s *Server) deadWebhooks(w http.ResponseWriter, r *http.Request) {
	site, ok := siteParam(w, r)
	if !ok {
		return
	}
	list, err := s.cfg.Webhooks.Dead(r.Context(), site, 500)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"deliveries": list})
}

func (s *Server) redeliverWebhook(w http.ResponseWriter, r *http.Request) {
	site, ok := siteParam(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Webhooks.Redeliver(r.Context(), site, r.PathValue("id")); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusAccepted, map[string]string{"status": "queued"})
}

func (s *Server) redeliverAllWebhooks(w http.ResponseWriter, r *http.Request) {
	site, ok := siteParam(w, r)
	if !ok {
		return
	}
	n, err := s.cfg.Webhooks.RedeliverAll(r.Context(), site)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusAccepted, map[string]any{"status": "queued", "queued": n})
}

func (s *Server) exportVisitor(w http.ResponseWriter, r *http.Request) {
	exp, err := s.cfg.Privacy.Export(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "visitor-"+exp.Visitor.ID+".json"))
	httpjson.Write(w, http.StatusOK, exp)
}

func (s *Server) eraseVisitor(w http.ResponseWriter, r *http.Request) {
	agent, _ := auth.AgentFrom(r.Context())
	out, err := s.cfg.Privacy.Erase(r.Context(), r.PathValue("id"), privacy.Actor{ID: agent.ID, Email: agent.Email})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"erased": out})
}

func (s *Server) getRetention(w http.ResponseWriter, r *http.Request) {
	ret, err := s.cfg.Privacy.Retention(r.Context(), r.PathValue("key"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"retention": ret})
}

func (s *Server) putRetention(w http.ResponseWriter, r *http.Request) {
	var ret privacy.Retention
	if !decodeBody(w, r, &ret) {
		return
	}
	agent, _ := auth.AgentFrom(r.Context())
	if err := s.cfg.Privacy.SetRetention(r.Context(), r.PathValue("key"), ret, privacy.Actor{ID: agent.ID, Email: agent.Email}); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"retention": ret})
}

// backup streams a consistent snapshot of the embedded store.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	bw := s.cfg.Store.(BackupWriter)
	name := "lifeline-" + time.Now().UTC().Format("20060102-150405") + ".db"
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	w.Header().Set("Cache-Control", "no-store")
	if _, err := bw.WriteBackup(r.Context(), w); err != nil && !errors.Is(err, context.Canceled) {
		// Headers are gone; the client sees a short body and must discard it.
		s.log.Error("backup", "err", err)
	}
}
