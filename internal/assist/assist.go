// Package assist suggests what an agent should do next: per-site
// playbooks, stored as data, match a conversation's struggle findings and
// visitor context and offer filled-in replies and one-click actions, ranked
// by specificity and by how often each led to "Did this solve it? — yes".
package assist

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/audit"
	"github.com/lifelinehq/lifeline/internal/webhook"
)

// Hub is what actions need of the chat hub.
type Hub interface {
	AddNote(ctx context.Context, by chat.Agent, convID, text string) error
	Transfer(ctx context.Context, by chat.Agent, convID, toAgentID, note string) (chat.Conversation, error)
	Agents(ctx context.Context) ([]chat.AgentView, error)
}

// Journeys returns a visitor's freshest journey, or nil; struggle.Service
// implements it.
type Journeys interface {
	JourneyOf(ctx context.Context, visitorID string) *chat.VisitContext
}

// Options configures a Service.
type Options struct {
	Store  chat.Store
	Hub    Hub
	Logger *slog.Logger
	// Journeys, if set, gives journeys fresher than the stored ones.
	Journeys Journeys
	// Audit records playbook changes. Nil records nothing.
	Audit *audit.Log
	// BaseURL is this node's own URL; webhook actions with a path URL
	// (the demo's) go there.
	BaseURL string
	// HTTPClient sends webhook actions. Defaults to a client that refuses
	// loopback, private and link-local addresses (SSRF guard, the same
	// ranges as internal/webhook) except AllowHosts, follows no redirects
	// and times out after WebhookTimeout.
	HTTPClient *http.Client
	// AllowHosts are hosts (as written in the URL) webhook actions may
	// reach although private or loopback, as webhook.Options.AllowHosts.
	AllowHosts []string
	// WebhookTimeout bounds one webhook action. Defaults to 10 s.
	WebhookTimeout time.Duration
	// ReloadInterval is how often playbooks changed on other nodes are
	// picked up. Defaults to 2 s.
	ReloadInterval time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Service serves playbooks, suggestions, actions and their counters.
type Service struct {
	o    Options
	self *http.Client // for path URLs on this node, not SSRF-guarded

	mu    sync.Mutex
	sites map[string]*siteDoc
	convs sync.Mutex // serializes read-modify-write of conversation state
}

type siteDoc struct {
	raw []byte
	doc Doc
}

// New returns a Service. Run it for hot reload.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.WebhookTimeout <= 0 {
		o.WebhookTimeout = 10 * time.Second
	}
	if o.ReloadInterval <= 0 {
		o.ReloadInterval = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		// An action's answer must come from the endpoint the playbook
		// names: no redirects.
		o.HTTPClient = webhook.NewClient(o.AllowHosts, o.WebhookTimeout, 0)
	}
	self := &http.Client{Timeout: o.WebhookTimeout, CheckRedirect: noRedirects}
	return &Service{o: o, self: self, sites: map[string]*siteDoc{}}
}

// Attach gives the service the hub its actions go through, when the hub
// is created after the service (it needs Observe's detector).
func (s *Service) Attach(h Hub) { s.o.Hub = h }

// Observe returns d with the service added as a chat.FeedbackObserver:
// pass it as chat.Config.Detector so visitors' answers to "Did this solve
// it?" reach Feedback. d must not be nil.
func (s *Service) Observe(d chat.Detector) chat.Detector { return observed{d, s} }

type observed struct {
	chat.Detector
	s *Service
}

func (o observed) Feedback(ctx context.Context, conv chat.Conversation) {
	if fo, ok := o.Detector.(chat.FeedbackObserver); ok {
		fo.Feedback(ctx, conv)
	}
	o.s.Feedback(ctx, conv)
}

// Store keys.
func docKey(site string) string      { return "assist/playbooks/" + site }
func countersKey(site string) string { return "assist/" + site }
func convKey(id string) string       { return "assist/conv/" + id }
func secretKey(site string) string   { return "assist/secret/" + site }

// Run reloads playbooks changed on other nodes until ctx ends.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.o.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reload(ctx)
		}
	}
}

func (s *Service) reload(ctx context.Context) {
	s.mu.Lock()
	keys := slices.Collect(maps.Keys(s.sites))
	s.mu.Unlock()
	for _, k := range keys {
		if _, err := s.load(ctx, k); err != nil && !errors.Is(err, context.Canceled) {
			s.o.Logger.Warn("reload playbooks", "site", k, "err", err)
		}
	}
}

// StoredDoc is a site's playbooks as stored and served.
type StoredDoc struct {
	Playbooks json.RawMessage `json:"playbooks"`
	Revision  string          `json:"revision"`
	UpdatedAt time.Time       `json:"updated_at,omitzero"`
	UpdatedBy string          `json:"updated_by,omitempty"`
}

// stored reads the site's document, or the defaults.
func (s *Service) stored(ctx context.Context, site string) (StoredDoc, error) {
	var sd StoredDoc
	ok, err := chat.MetaJSON(ctx, s.o.Store, docKey(site), &sd)
	if err != nil {
		return StoredDoc{}, err
	}
	if !ok {
		return StoredDoc{Playbooks: DefaultJSON(), Revision: "builtin"}, nil
	}
	return sd, nil
}

// load reads the site's playbooks and parses them if they changed.
func (s *Service) load(ctx context.Context, site string) (*Doc, error) {
	sd, err := s.stored(ctx, site)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	cur := s.sites[site]
	s.mu.Unlock()
	if cur != nil && bytes.Equal(cur.raw, sd.Playbooks) {
		return &cur.doc, nil
	}
	doc, err := Parse(sd.Playbooks)
	if err != nil {
		// Valid when saved; a newer binary may validate more strictly.
		s.o.Logger.Error("stored playbooks are invalid; using the defaults", "site", site, "err", err)
		if doc, err = Parse(defaultJSON); err != nil {
			return nil, err
		}
	}
	next := &siteDoc{raw: sd.Playbooks, doc: doc}
	s.mu.Lock()
	s.sites[site] = next
	s.mu.Unlock()
	if cur != nil {
		s.o.Logger.Info("playbooks reloaded", "site", site, "revision", doc.Revision)
	}
	return &next.doc, nil
}

// doc returns the site's parsed playbooks, loading them on first use.
func (s *Service) doc(ctx context.Context, site string) (*Doc, error) {
	s.mu.Lock()
	cur := s.sites[site]
	s.mu.Unlock()
	if cur != nil {
		return &cur.doc, nil
	}
	return s.load(ctx, site)
}

// Playbooks returns a site's playbooks document.
func (s *Service) Playbooks(ctx context.Context, site string) (StoredDoc, error) {
	return s.stored(ctx, site)
}

// SetPlaybooks validates data, stores it and applies it on this node at
// once; other nodes pick it up within ReloadInterval. The change is audited.
func (s *Service) SetPlaybooks(ctx context.Context, site string, data []byte, by chat.Agent) (StoredDoc, error) {
	doc, err := Parse(data)
	if err != nil {
		return StoredDoc{}, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return StoredDoc{}, &ValidationError{Problems: []string{"playbooks: " + err.Error()}}
	}
	sd := StoredDoc{Playbooks: compact.Bytes(), Revision: doc.Revision, UpdatedAt: s.o.Now().UTC(), UpdatedBy: by.Email}
	raw, err := json.Marshal(sd)
	if err != nil {
		return StoredDoc{}, err
	}
	if err := s.o.Store.PutMeta(ctx, docKey(site), raw); err != nil {
		return StoredDoc{}, err
	}
	s.mu.Lock()
	s.sites[site] = &siteDoc{raw: sd.Playbooks, doc: doc}
	s.mu.Unlock()
	n := 0
	for _, pb := range doc.Playbooks {
		n += len(pb.Suggestions) + len(pb.Actions)
	}
	s.o.Audit.Record(ctx, by, site, "playbooks.update", "", fmt.Sprintf("%d playbooks, %d suggestions and actions, revision %q", len(doc.Playbooks), n, doc.Revision))
	return sd, nil
}

// ActionSecret returns the site's secret for signing webhook actions,
// creating it on first use; every node agrees on it.
func (s *Service) ActionSecret(ctx context.Context, site string) (string, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v, err := s.o.Store.PutMetaIfAbsent(ctx, secretKey(site), []byte(hex.EncodeToString(b)))
	if err != nil {
		return "", fmt.Errorf("action secret of %s: %w", site, err)
	}
	return string(v), nil
}

// convState is what assist remembers of one conversation: which items it
// showed, which the agent used (with the feedback already counted for
// them), marked unhelpful, and the tags added.
type convState struct {
	Shown     []string          `json:"shown,omitempty"`
	Used      map[string]string `json:"used,omitempty"` // item ID → answer counted: "", "yes" or "no"
	Unhelpful []string          `json:"unhelpful,omitempty"`
	Tags      []string          `json:"tags,omitempty"`
}

func (s *Service) convState(ctx context.Context, id string) (convState, error) {
	var cs convState
	_, err := chat.MetaJSON(ctx, s.o.Store, convKey(id), &cs)
	return cs, err
}

// updateConv changes a conversation's state and adds counter deltas.
func (s *Service) updateConv(ctx context.Context, site, id string, fn func(cs *convState, deltas map[string]int64) bool) (convState, error) {
	s.convs.Lock()
	defer s.convs.Unlock()
	cs, err := s.convState(ctx, id)
	if err != nil {
		return cs, err
	}
	deltas := map[string]int64{}
	if !fn(&cs, deltas) {
		return cs, nil
	}
	data, _ := json.Marshal(cs)
	if err := s.o.Store.PutMeta(ctx, convKey(id), data); err != nil {
		return cs, err
	}
	if len(deltas) > 0 {
		if err := s.o.Store.AddCounters(ctx, countersKey(site), deltas); err != nil {
			return cs, err
		}
	}
	return cs, nil
}

// ForgetConversation deletes what assist remembers of a conversation (the
// suggestions shown and used, the tags added), when the conversation is
// erased or expires; privacy calls it. The site's counters hold only
// counts and stay.
func (s *Service) ForgetConversation(ctx context.Context, site, id string) error {
	s.convs.Lock()
	defer s.convs.Unlock()
	return StoreForgetter{s.o.Store}.ForgetConversation(ctx, site, id)
}

// StoreForgetter forgets assist's record of a conversation in Store
// directly, for commands that erase with the node stopped and so without
// a Service.
type StoreForgetter struct{ Store chat.Store }

// ForgetConversation deletes the record of conversation id.
func (f StoreForgetter) ForgetConversation(ctx context.Context, _, id string) error {
	if err := f.Store.DeleteMeta(ctx, convKey(id)); err != nil {
		return fmt.Errorf("forget assist state of %s: %w", id, err)
	}
	return nil
}

// stats reads a site's counters by item ID.
func (s *Service) stats(ctx context.Context, site string) (map[string]Stats, error) {
	raw, err := s.o.Store.Counters(ctx, countersKey(site))
	if err != nil {
		return nil, err
	}
	out := map[string]Stats{}
	for k, n := range raw {
		id, field, ok := strings.Cut(k, "/")
		if !ok {
			continue
		}
		st := out[id]
		switch field {
		case "shown":
			st.Shown = n
		case "used":
			st.Used = n
		case "unhelpful":
			st.Unhelpful = n
		case "yes":
			st.Yes = n
		case "no":
			st.No = n
		case "failed":
			st.Failed = n
		}
		out[id] = st
	}
	return out, nil
}

// context gathers what is known of a conversation and its visitor v.
func (s *Service) context(ctx context.Context, conv *chat.Conversation, v chat.Visitor, agent *chat.Agent) (*Context, error) {
	site, err := s.o.Store.Site(ctx, v.SiteKey)
	if err != nil {
		return nil, err
	}
	c := &Context{Site: site, Visitor: v, Conversation: conv, Agent: agent, Now: s.o.Now()}
	if s.o.Journeys != nil {
		if j := s.o.Journeys.JourneyOf(ctx, v.ID); j != nil {
			c.Journey = *j
		}
	}
	c.Previous, err = s.o.Store.Conversations(ctx, chat.ConversationQuery{VisitorID: v.ID, Limit: 20})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Suggestions returns the ranked, filled suggestions and actions for a
// conversation, as the agent sees them, and counts them shown once per
// conversation.
func (s *Service) Suggestions(ctx context.Context, convID string, agent chat.Agent) (Result, error) {
	conv, err := s.o.Store.Conversation(ctx, convID)
	if err != nil {
		return Result{}, err
	}
	ev, err := s.evaluate(ctx, &conv, &agent)
	if err != nil {
		return Result{}, err
	}
	res, cs := ev.res, ev.cs
	res.Hidden = nil
	var fresh []string
	for _, list := range [][]Item{res.Suggestions, res.Actions} {
		for _, it := range list {
			if !slices.Contains(cs.Shown, it.ID) {
				fresh = append(fresh, it.ID)
			}
		}
	}
	if len(fresh) > 0 {
		_, err = s.updateConv(ctx, conv.SiteKey, conv.ID, func(cs *convState, d map[string]int64) bool {
			changed := false
			for _, id := range fresh {
				if !slices.Contains(cs.Shown, id) && len(cs.Shown) < 500 {
					cs.Shown = append(cs.Shown, id)
					d[id+"/shown"]++
					changed = true
				}
			}
			return changed
		})
		if err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// evaluation is what evaluate found and what it loaded to find it: the
// playbooks document the items' actions belong to, and the visitor.
type evaluation struct {
	res     Result
	cs      convState
	doc     *Doc
	visitor chat.Visitor
}

func (s *Service) evaluate(ctx context.Context, conv *chat.Conversation, agent *chat.Agent) (evaluation, error) {
	doc, err := s.doc(ctx, conv.SiteKey)
	if err != nil {
		return evaluation{}, err
	}
	v, err := s.o.Store.Visitor(ctx, conv.VisitorID)
	if err != nil {
		return evaluation{}, err
	}
	c, err := s.context(ctx, conv, v, agent)
	if err != nil {
		return evaluation{}, err
	}
	stats, err := s.stats(ctx, conv.SiteKey)
	if err != nil {
		return evaluation{}, err
	}
	cs, err := s.convState(ctx, conv.ID)
	if err != nil {
		return evaluation{}, err
	}
	skip := map[string]bool{}
	for _, id := range cs.Unhelpful {
		skip[id] = true
	}
	return evaluation{res: Evaluate(doc, c, stats, skip), cs: cs, doc: doc, visitor: v}, nil
}

// Preview evaluates playbooks (the site's, or data when given: unsaved
// edits) against a visitor's context and latest conversation, including
// the items hidden for missing values.
func (s *Service) Preview(ctx context.Context, site, visitorID string, data []byte, agent chat.Agent) (Result, error) {
	var doc *Doc
	if len(data) > 0 {
		d, err := Parse(data)
		if err != nil {
			return Result{}, err
		}
		doc = &d
	} else {
		d, err := s.doc(ctx, site)
		if err != nil {
			return Result{}, err
		}
		doc = d
	}
	v, err := s.o.Store.Visitor(ctx, visitorID)
	if err != nil {
		return Result{}, err
	}
	if v.SiteKey != site {
		return Result{}, fmt.Errorf("preview: visitor of another site: %w", chat.ErrNotFound)
	}
	c, err := s.context(ctx, nil, v, &agent)
	if err != nil {
		return Result{}, err
	}
	if len(c.Previous) > 0 {
		// Previous is newest first: its head is the latest conversation.
		conv := c.Previous[0]
		c.Conversation = &conv
	}
	stats, err := s.stats(ctx, site)
	if err != nil {
		return Result{}, err
	}
	return Evaluate(doc, c, stats, nil), nil
}

// Used records that the agent inserted a suggestion (counted once per
// conversation).
func (s *Service) Used(ctx context.Context, convID, itemID string) error {
	conv, err := s.o.Store.Conversation(ctx, convID)
	if err != nil {
		return err
	}
	_, err = s.updateConv(ctx, conv.SiteKey, convID, func(cs *convState, d map[string]int64) bool {
		return markUsed(cs, d, itemID)
	})
	return err
}

func markUsed(cs *convState, d map[string]int64, itemID string) bool {
	if _, ok := cs.Used[itemID]; ok || len(cs.Used) >= 200 {
		return false
	}
	if cs.Used == nil {
		cs.Used = map[string]string{}
	}
	cs.Used[itemID] = ""
	d[itemID+"/used"]++
	return true
}

// Unhelpful records that the agent marked a suggestion unhelpful; it is
// not offered again in this conversation.
func (s *Service) Unhelpful(ctx context.Context, convID, itemID string) error {
	conv, err := s.o.Store.Conversation(ctx, convID)
	if err != nil {
		return err
	}
	_, err = s.updateConv(ctx, conv.SiteKey, convID, func(cs *convState, d map[string]int64) bool {
		if slices.Contains(cs.Unhelpful, itemID) || len(cs.Unhelpful) >= 200 {
			return false
		}
		cs.Unhelpful = append(cs.Unhelpful, itemID)
		d[itemID+"/unhelpful"]++
		return true
	})
	return err
}

// Feedback counts the visitor's answer to "Did this solve it?" for every
// item used in the conversation. A later different answer (after "no"
// reopened it) moves the count, so each conversation counts once.
func (s *Service) Feedback(ctx context.Context, conv chat.Conversation) {
	if conv.Feedback != "yes" && conv.Feedback != "no" {
		return
	}
	_, err := s.updateConv(ctx, conv.SiteKey, conv.ID, func(cs *convState, d map[string]int64) bool {
		changed := false
		for id, prev := range cs.Used {
			if prev == conv.Feedback {
				continue
			}
			if prev != "" {
				d[id+"/"+prev]--
			}
			d[id+"/"+conv.Feedback]++
			cs.Used[id] = conv.Feedback
			changed = true
		}
		return changed
	})
	if err != nil {
		s.o.Logger.Warn("count feedback for suggestions", "conv", conv.ID, "err", err)
	}
}

// StatRow is one item's counters and rates for the stats table.
type StatRow struct {
	ID       string `json:"id"`
	Playbook string `json:"playbook"`
	Title    string `json:"title"`
	// Kind is "reply" or the action's kind; Text its text or label.
	Kind string `json:"kind"`
	Text string `json:"text"`
	Stats
	UseRate        float64 `json:"use_rate"`
	ResolutionRate float64 `json:"resolution_rate"`
	// Score is the item's rank score before context (specificity plus history).
	Score float64 `json:"score"`
}

// Stats returns every item's counters in playbook order; items no longer
// in the playbooks but counted before come last.
func (s *Service) Stats(ctx context.Context, site string) ([]StatRow, error) {
	doc, err := s.doc(ctx, site)
	if err != nil {
		return nil, err
	}
	stats, err := s.stats(ctx, site)
	if err != nil {
		return nil, err
	}
	out := []StatRow{}
	seen := map[string]bool{}
	row := func(pb *Playbook, id, kind, text string) {
		st := stats[id]
		seen[id] = true
		r := StatRow{ID: id, Kind: kind, Text: text, Stats: st, UseRate: round2(st.UseRate()), ResolutionRate: round2(st.ResolutionRate())}
		if pb != nil {
			r.Playbook, r.Title = pb.ID, pb.Title
			r.Score = score(pb.Match.Specificity(), st)
		}
		out = append(out, r)
	}
	for i := range doc.Playbooks {
		pb := &doc.Playbooks[i]
		for _, sg := range pb.Suggestions {
			row(pb, pb.ID+"."+sg.ID, "reply", sg.Text)
		}
		for _, a := range pb.Actions {
			row(pb, pb.ID+"."+a.ID, a.Kind, a.Label)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(stats)) {
		if !seen[id] {
			row(nil, id, "", "")
		}
	}
	return out, nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
