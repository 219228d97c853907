package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/assist"
	"github.com/lifelinehq/lifeline/internal/auth"
	"github.com/lifelinehq/lifeline/internal/httpjson"
)

// addAssistRoutes routes agent assist: playbooks, their stats and
// preview, and a conversation's suggestions and actions (docs/assist.md).
func (s *Server) addAssistRoutes(mux *http.ServeMux, anyone, agents, tuners func(http.Handler) http.Handler) {
	if s.cfg.Assist == nil {
		return
	}
	mux.Handle("GET /api/v1/sites/{key}/playbooks", anyone(http.HandlerFunc(s.getPlaybooks)))
	mux.Handle("PUT /api/v1/sites/{key}/playbooks", tuners(s.putSiteDoc("playbooks", assist.MaxDocBytes+1, s.putPlaybooks)))
	mux.Handle("GET /api/v1/sites/{key}/playbooks/stats", anyone(s.siteRead(s.playbookStats)))
	mux.Handle("POST /api/v1/sites/{key}/playbooks/preview", anyone(http.HandlerFunc(s.previewPlaybooks)))
	// "{id}/{part}" rather than "{id}/suggestions": the latter would
	// conflict with "by-ref/{ref}", which is more specific than this.
	mux.Handle("GET /api/v1/conversations/{id}/{part}", agents(http.HandlerFunc(s.suggestions)))
	mux.Handle("POST /api/v1/conversations/{id}/suggestions/{item}/used", agents(http.HandlerFunc(s.suggestionUsed)))
	mux.Handle("POST /api/v1/conversations/{id}/suggestions/{item}/unhelpful", agents(http.HandlerFunc(s.suggestionUnhelpful)))
	mux.Handle("POST /api/v1/conversations/{id}/actions/{item}/run", agents(http.HandlerFunc(s.runAction)))
}

func (s *Server) getPlaybooks(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if _, ok := s.site(w, r, key); !ok {
		return
	}
	doc, err := s.cfg.Assist.Playbooks(r.Context(), key)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := struct {
		assist.StoredDoc
		// ActionSecret signs webhook actions; admins only.
		ActionSecret string `json:"action_secret,omitempty"`
	}{StoredDoc: doc}
	if me, _ := auth.AgentFrom(r.Context()); me.Role == chat.RoleAdmin {
		if out.ActionSecret, err = s.cfg.Assist.ActionSecret(r.Context(), key); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (s *Server) putPlaybooks(ctx context.Context, key string, data []byte, by chat.Agent) (any, error) {
	return s.cfg.Assist.SetPlaybooks(ctx, key, data, by)
}

func (s *Server) playbookStats(ctx context.Context, key string) (any, error) {
	rows, err := s.cfg.Assist.Stats(ctx, key)
	return map[string]any{"items": rows}, err
}

// previewPlaybooks: POST {"visitor_id", "playbooks"?} — the site's
// playbooks, or the unsaved ones given, against the visitor's context.
func (s *Server) previewPlaybooks(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if _, ok := s.site(w, r, key); !ok {
		return
	}
	var body struct {
		VisitorID string          `json:"visitor_id"`
		Playbooks json.RawMessage `json:"playbooks"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, assist.MaxDocBytes+4096)
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		httpjson.Error(w, http.StatusBadRequest, "invalid", "request body: "+err.Error())
		return
	}
	if body.VisitorID == "" {
		httpjson.Error(w, http.StatusBadRequest, "invalid", "visitor_id: required")
		return
	}
	if bytes.Equal(bytes.TrimSpace(body.Playbooks), []byte("null")) {
		body.Playbooks = nil
	}
	agent, _ := auth.AgentFrom(r.Context())
	res, err := s.cfg.Assist.Preview(r.Context(), key, body.VisitorID, body.Playbooks, agent)
	if err != nil {
		s.writeAssistError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

func (s *Server) suggestions(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("part") != "suggestions" {
		httpjson.Error(w, http.StatusNotFound, "not_found", "not found")
		return
	}
	agent, _ := auth.AgentFrom(r.Context())
	res, err := s.cfg.Assist.Suggestions(r.Context(), r.PathValue("id"), agent)
	if err != nil {
		s.writeAssistError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

func (s *Server) suggestionUsed(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Assist.Used(r.Context(), r.PathValue("id"), r.PathValue("item")); err != nil {
		s.writeAssistError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) suggestionUnhelpful(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Assist.Unhelpful(r.Context(), r.PathValue("id"), r.PathValue("item")); err != nil {
		s.writeAssistError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) runAction(w http.ResponseWriter, r *http.Request) {
	agent, _ := auth.AgentFrom(r.Context())
	res, err := s.cfg.Assist.RunAction(r.Context(), r.PathValue("id"), r.PathValue("item"), agent)
	if err != nil {
		s.writeAssistError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

// writeAssistError answers a failed action with its status and a message
// for the agent, and anything else as writeStoreError does.
func (s *Server) writeAssistError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *assist.ActionError
	if errors.As(err, &ae) {
		httpjson.Error(w, ae.Status, "action_failed", ae.Message)
		return
	}
	s.writeStoreError(w, r, err)
}
