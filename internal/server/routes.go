package server

import (
	"net/http"

	"github.com/lifelinehq/lifeline/chat"
)

// addRoutes lists every route of a node.
func (s *Server) addRoutes(mux *http.ServeMux) {
	a := s.cfg.Auth
	anyone := a.Require()
	agents := a.Require(chat.RoleAdmin, chat.RoleAgent)
	admins := a.Require(chat.RoleAdmin)
	tuners := a.Require(chat.RoleAdmin, chat.RoleAnalyst)

	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	}
	if s.cfg.Widget != nil {
		mux.Handle("GET /widget.js", s.cfg.Widget)
	}
	if s.cfg.Demo != nil {
		mux.Handle("/demo", s.cfg.Demo)
		mux.Handle("/demo/", s.cfg.Demo)
	}
	if s.cfg.Console != nil {
		mux.Handle("/console", s.cfg.Console)
		mux.Handle("/console/", s.cfg.Console)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console", http.StatusFound)
	})

	mux.Handle("GET /ws/visitor", s.visitorSocket())
	mux.Handle("GET /ws/agent", s.agentSocket())

	a.Routes(mux)
	mux.Handle("GET /api/v1/conversations", anyone(http.HandlerFunc(s.listConversations)))
	mux.Handle("GET /api/v1/conversations/{id}", anyone(http.HandlerFunc(s.getConversation)))
	mux.Handle("GET /api/v1/conversations/by-ref/{ref}", anyone(http.HandlerFunc(s.conversationByRef)))
	mux.Handle("POST /api/v1/conversations/{id}/claim", agents(http.HandlerFunc(s.claim)))
	mux.Handle("POST /api/v1/conversations/{id}/transfer", agents(http.HandlerFunc(s.transfer)))
	mux.Handle("POST /api/v1/conversations/{id}/resolve", agents(http.HandlerFunc(s.resolve)))
	mux.Handle("POST /api/v1/conversations/{id}/reopen", agents(http.HandlerFunc(s.reopen)))
	mux.Handle("GET /api/v1/visitors", anyone(http.HandlerFunc(s.findVisitors)))
	mux.Handle("GET /api/v1/visitors/{id}", anyone(http.HandlerFunc(s.getVisitor)))
	mux.Handle("GET /api/v1/agents", anyone(http.HandlerFunc(s.listAgents)))
	mux.Handle("POST /api/v1/agents", admins(http.HandlerFunc(s.addAgent)))
	mux.Handle("PATCH /api/v1/agents/{id}", admins(http.HandlerFunc(s.updateAgent)))
	mux.Handle("GET /api/v1/sites", anyone(http.HandlerFunc(s.listSites)))
	mux.Handle("POST /api/v1/sites", admins(http.HandlerFunc(s.addSite)))
	mux.Handle("PATCH /api/v1/sites/{key}", admins(http.HandlerFunc(s.updateSite)))
	s.addDetectionRoutes(mux, anyone, tuners)
	if s.cfg.Audit != nil {
		mux.Handle("GET /api/v1/audit", anyone(http.HandlerFunc(s.auditLog)))
	}
	s.addAssistRoutes(mux, anyone, agents, tuners)
	s.addDataRoutes(mux, admins)
}
