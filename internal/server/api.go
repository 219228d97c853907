package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/auth"
	"github.com/lifelinehq/lifeline/internal/httpjson"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when the store and the broker answer.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok", "broker": "ok"}
	status := http.StatusOK
	if err := s.cfg.Store.Ping(ctx); err != nil {
		checks["store"], status = "unreachable", http.StatusServiceUnavailable
		s.log.Warn("readiness: store", "err", err)
	}
	if err := s.cfg.Broker.Ping(ctx); err != nil {
		checks["broker"], status = "unreachable", http.StatusServiceUnavailable
		s.log.Warn("readiness: broker", "err", err)
	}
	httpjson.Write(w, status, checks)
}

// listConversations: GET /api/v1/conversations?status=waiting,active&site=&agent=&visitor=&email=&limit=
func (s *Server) listConversations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cq := chat.ConversationQuery{SiteKey: q.Get("site"), AgentID: q.Get("agent"), VisitorID: q.Get("visitor")}
	if v := q.Get("status"); v != "" {
		for _, st := range strings.Split(v, ",") {
			if !chat.Status(st).Valid() {
				httpjson.Error(w, http.StatusBadRequest, "invalid", "unknown status "+strconv.Quote(st))
				return
			}
			cq.Statuses = append(cq.Statuses, chat.Status(st))
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			httpjson.Error(w, http.StatusBadRequest, "invalid", "limit must be 1 to 500")
			return
		}
		cq.Limit = n
	}
	if email := q.Get("email"); email != "" {
		s.conversationsByEmail(w, r, cq, email)
		return
	}
	list, err := s.cfg.Store.Conversations(r.Context(), cq)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"conversations": nonNil(list)})
}

// conversationsByEmail finds the conversations of the visitors with an email
// (identified, or given when leaving a message).
func (s *Server) conversationsByEmail(w http.ResponseWriter, r *http.Request, cq chat.ConversationQuery, email string) {
	if cq.SiteKey == "" {
		httpjson.Error(w, http.StatusBadRequest, "invalid", "searching by email needs site")
		return
	}
	visitors, err := s.cfg.Store.FindVisitors(r.Context(), chat.VisitorQuery{SiteKey: cq.SiteKey, Email: email})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	var out []chat.Conversation
	for _, v := range visitors {
		cq.VisitorID = v.ID
		list, err := s.cfg.Store.Conversations(r.Context(), cq)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		out = append(out, list...)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"conversations": nonNil(out)})
}

// transcript is a conversation with everything an agent needs.
type transcript struct {
	Conversation chat.Conversation `json:"conversation"`
	Visitor      *chat.Visitor     `json:"visitor,omitempty"`
	Messages     []chat.Message    `json:"messages"`
	Notes        []chat.Note       `json:"notes"`
}

func (s *Server) writeTranscript(w http.ResponseWriter, r *http.Request, conv chat.Conversation) {
	ctx := r.Context()
	t := transcript{Conversation: conv}
	var err error
	if t.Messages, err = s.cfg.Store.Messages(ctx, conv.ID, 0, 0); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if t.Notes, err = s.cfg.Store.Notes(ctx, conv.ID); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if v, err := s.cfg.Store.Visitor(ctx, conv.VisitorID); err == nil {
		t.Visitor = &v
	}
	t.Messages, t.Notes = nonNil(t.Messages), nonNil(t.Notes)
	httpjson.Write(w, http.StatusOK, t)
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request) {
	conv, err := s.cfg.Store.Conversation(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.writeTranscript(w, r, conv)
}

func (s *Server) conversationByRef(w http.ResponseWriter, r *http.Request) {
	conv, err := s.cfg.Store.ConversationByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.writeTranscript(w, r, conv)
}

func (s *Server) claim(w http.ResponseWriter, r *http.Request) {
	agent, _ := auth.AgentFrom(r.Context())
	conv, err := s.cfg.Hub.Claim(r.Context(), agent, r.PathValue("id"))
	s.writeConversation(w, r, conv, err)
}

func (s *Server) transfer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AgentID string `json:"agent_id"`
		Note    string `json:"note"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	agent, _ := auth.AgentFrom(r.Context())
	conv, err := s.cfg.Hub.Transfer(r.Context(), agent, r.PathValue("id"), body.AgentID, body.Note)
	s.writeConversation(w, r, conv, err)
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	agent, _ := auth.AgentFrom(r.Context())
	conv, err := s.cfg.Hub.Resolve(r.Context(), agent, r.PathValue("id"))
	s.writeConversation(w, r, conv, err)
}

func (s *Server) reopen(w http.ResponseWriter, r *http.Request) {
	agent, _ := auth.AgentFrom(r.Context())
	conv, err := s.cfg.Hub.Reopen(r.Context(), agent, r.PathValue("id"))
	s.writeConversation(w, r, conv, err)
}

func (s *Server) writeConversation(w http.ResponseWriter, r *http.Request, conv chat.Conversation, err error) {
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"conversation": conv})
}

// findVisitors: GET /api/v1/visitors?site=&email=&external_id=
func (s *Server) findVisitors(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	vq := chat.VisitorQuery{SiteKey: q.Get("site"), Email: q.Get("email"), ExternalID: q.Get("external_id")}
	if vq.SiteKey == "" || (vq.Email == "" && vq.ExternalID == "") {
		httpjson.Error(w, http.StatusBadRequest, "invalid", "give site and one of email or external_id")
		return
	}
	list, err := s.cfg.Store.FindVisitors(r.Context(), vq)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"visitors": nonNil(list)})
}

func (s *Server) getVisitor(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Store.Visitor(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	convs, err := s.cfg.Store.Conversations(r.Context(), chat.ConversationQuery{VisitorID: v.ID, Limit: 50})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if s.cfg.Struggle != nil {
		v.Context = s.cfg.Struggle.JourneyOf(r.Context(), v.ID)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"visitor": v, "conversations": nonNil(convs)})
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Hub.Agents(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if me, _ := auth.AgentFrom(r.Context()); me.Role == chat.RoleAdmin {
		// Admins also see disabled accounts, to enable them again.
		all, err := s.cfg.Store.Agents(r.Context())
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		for _, a := range all {
			if a.Disabled {
				list = append(list, chat.AgentView{ID: a.ID, Name: a.Name, Email: a.Email, Role: a.Role, Status: "disabled", Capacity: a.EffectiveCapacity()})
			}
		}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"agents": nonNil(list)})
}

func (s *Server) addAgent(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email    string    `json:"email"`
		Name     string    `json:"name"`
		Role     chat.Role `json:"role"`
		Password string    `json:"password"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	a, err := s.cfg.Auth.AddAgent(r.Context(), body.Email, body.Name, body.Role, body.Password)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, "", "agent.add", a.ID, a.Email+" ("+string(a.Role)+")")
	httpjson.Write(w, http.StatusCreated, map[string]any{"agent": a})
}

// updateAgent: PATCH /api/v1/agents/{id} with any of name, role, capacity,
// disabled, password.
func (s *Server) updateAgent(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name     *string    `json:"name"`
		Role     *chat.Role `json:"role"`
		Capacity *int       `json:"capacity"`
		Disabled *bool      `json:"disabled"`
		Password *string    `json:"password"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	ctx, id := r.Context(), r.PathValue("id")
	if body.Password != nil {
		if err := s.cfg.Auth.SetPassword(ctx, id, *body.Password); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
	}
	if body.Disabled != nil {
		if err := s.cfg.Auth.SetDisabled(ctx, id, *body.Disabled); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
	}
	a, err := s.cfg.Store.Agent(ctx, id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if body.Name != nil {
		a.Name = strings.TrimSpace(*body.Name)
	}
	if body.Role != nil {
		if !body.Role.Valid() {
			httpjson.Error(w, http.StatusBadRequest, "invalid", "role must be admin, agent or analyst")
			return
		}
		a.Role = *body.Role
	}
	if body.Capacity != nil {
		if *body.Capacity < 1 || *body.Capacity > 100 {
			httpjson.Error(w, http.StatusBadRequest, "invalid", "capacity must be 1 to 100")
			return
		}
		a.Capacity = *body.Capacity
	}
	if err := s.cfg.Store.UpdateAgent(ctx, a); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, "", "agent.update", a.ID, agentChanges(body.Name != nil, body.Role != nil, body.Capacity != nil, body.Disabled, body.Password != nil))
	httpjson.Write(w, http.StatusOK, map[string]any{"agent": a})
}

// siteView hides the identity secret from everyone but admins.
func siteView(site chat.Site, admin bool) chat.Site {
	if !admin {
		site.IdentitySecret = ""
	}
	return site
}

func (s *Server) listSites(w http.ResponseWriter, r *http.Request) {
	agent, _ := auth.AgentFrom(r.Context())
	list, err := s.cfg.Store.Sites(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	for i := range list {
		list[i] = siteView(list[i], agent.Role == chat.RoleAdmin)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"sites": nonNil(list)})
}

type siteBody struct {
	Key     *string            `json:"key"`
	Name    *string            `json:"name"`
	Origins *[]string          `json:"origins"`
	Theme   *string            `json:"theme"`
	Strings *map[string]string `json:"strings"`
	// HideReadReceipts turns the widget's "Seen" off (or on again).
	HideReadReceipts *bool `json:"hide_read_receipts"`
	// RotateSecret makes a new identity secret (PATCH only).
	RotateSecret bool `json:"rotate_secret"`
}

func (b siteBody) apply(s *chat.Site) {
	if b.Name != nil {
		s.Name = *b.Name
	}
	if b.Origins != nil {
		s.Origins = *b.Origins
	}
	if b.Theme != nil {
		s.Theme = *b.Theme
	}
	if b.Strings != nil {
		s.Strings = *b.Strings
	}
	if b.HideReadReceipts != nil {
		s.HideReadReceipts = *b.HideReadReceipts
	}
}

func (s *Server) addSite(w http.ResponseWriter, r *http.Request) {
	var body siteBody
	if !decodeBody(w, r, &body) {
		return
	}
	key := ""
	if body.Key != nil {
		key = *body.Key
	}
	site, err := chat.NewSite(key, "", nil)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	body.apply(&site)
	site.CreatedAt = time.Now().UTC()
	if err := chat.ValidateSite(site); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if _, err := s.cfg.Store.Site(r.Context(), site.Key); err == nil {
		httpjson.Error(w, http.StatusConflict, "conflict", "a site with that key exists")
		return
	}
	if err := s.cfg.Store.PutSite(r.Context(), site); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, site.Key, "site.add", site.Key, strings.Join(site.Origins, " "))
	httpjson.Write(w, http.StatusCreated, map[string]any{"site": site})
}

func (s *Server) updateSite(w http.ResponseWriter, r *http.Request) {
	var body siteBody
	if !decodeBody(w, r, &body) {
		return
	}
	site, err := s.cfg.Store.Site(r.Context(), r.PathValue("key"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	body.apply(&site)
	if body.RotateSecret {
		fresh, _ := chat.NewSite(site.Key, site.Name, nil)
		site.IdentitySecret = fresh.IdentitySecret
	}
	if err := chat.ValidateSite(site); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if err := s.cfg.Store.PutSite(r.Context(), site); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, site.Key, "site.update", site.Key, "origins "+strings.Join(site.Origins, " "))
	httpjson.Write(w, http.StatusOK, map[string]any{"site": site})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// audit records an action by the request's agent or API key.
func (s *Server) audit(r *http.Request, site, action, target, detail string) {
	if s.cfg.Audit == nil {
		return
	}
	by, _ := auth.AgentFrom(r.Context())
	s.cfg.Audit.Record(r.Context(), by, site, action, target, detail)
}

// agentChanges names what a PATCH changed, never the password itself.
func agentChanges(name, role, capacity bool, disabled *bool, password bool) string {
	var parts []string
	for _, c := range []struct {
		set  bool
		what string
	}{{name, "name"}, {role, "role"}, {capacity, "capacity"}, {password, "password"}} {
		if c.set {
			parts = append(parts, c.what)
		}
	}
	if disabled != nil {
		parts = append(parts, fmt.Sprintf("disabled=%v", *disabled))
	}
	return strings.Join(parts, ", ")
}
