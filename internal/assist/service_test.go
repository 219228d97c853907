package assist

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/audit"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
	"github.com/lifelinehq/lifeline/internal/webhook"
)

// fakeHub records notes and transfers.
type fakeHub struct {
	mu        sync.Mutex
	notes     []string
	transfers []string
	agents    []chat.AgentView
}

func (h *fakeHub) AddNote(_ context.Context, by chat.Agent, convID, text string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.notes = append(h.notes, text)
	return nil
}

func (h *fakeHub) Transfer(_ context.Context, by chat.Agent, convID, to, note string) (chat.Conversation, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.transfers = append(h.transfers, to+": "+note)
	return chat.Conversation{ID: convID, AgentID: to}, nil
}

func (h *fakeHub) Agents(context.Context) ([]chat.AgentView, error) { return h.agents, nil }

type fixture struct {
	st    *bolt.Store
	hub   *fakeHub
	svc   *Service
	agent chat.Agent
}

// newFixture is a site "demo" with Ava, whose card was declined, and her
// conversation "c1" caused by it.
func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "lifeline.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutSite(ctx, chat.Site{Key: "demo", Name: "Demo shop", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	v := ctx0().Visitor
	if err := st.PutVisitor(ctx, v); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, hub: &fakeHub{}, agent: chat.Agent{ID: "a1", Email: "ben@example.com", Name: "Ben Okafor", Role: chat.RoleAgent}}
	o.Store, o.Hub, o.Audit = st, f.hub, audit.New(st, nil)
	if o.Journeys == nil {
		o.Journeys = journeys{ctx0().Journey}
	}
	o.Now = func() time.Time { return now }
	f.svc = New(o)
	f.conv(t, "c1")
	return f
}

func ctx0() *Context { return ctx() }

// journeys gives every visitor the same journey, as the detector would.
type journeys struct{ j chat.VisitContext }

func (js journeys) JourneyOf(context.Context, string) *chat.VisitContext {
	j := js.j
	return &j
}

func (f *fixture) conv(t *testing.T, id string) chat.Conversation {
	t.Helper()
	c := chat.Conversation{ID: id, Ref: "LF-" + id, SiteKey: "demo", VisitorID: "v1", Status: chat.StatusActive, AgentID: "a1",
		Cause: "card-declined", Explanation: "Card declined 3 times", CreatedAt: now}
	if err := f.st.CreateConversation(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) feedback(t *testing.T, id, answer string) {
	t.Helper()
	conv, err := f.st.UpdateConversation(context.Background(), id, func(c *chat.Conversation) error {
		c.Status, c.Feedback = chat.StatusResolved, answer
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Feedback(context.Background(), conv)
}

func (f *fixture) row(t *testing.T, id string) StatRow {
	t.Helper()
	rows, err := f.svc.Stats(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no stats row %s in %+v", id, rows)
	return StatRow{}
}

// TestResolutionRateAfterFeedback: a suggestion used in a conversation
// counts the visitor's "yes" or "no"; a "no" that reopens and a later
// "yes" move the count; unused suggestions count nothing.
func TestResolutionRateAfterFeedback(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	res, err := f.svc.Suggestions(ctx, "c1", f.agent)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Suggestions) == 0 || res.Suggestions[0].ID != "card-declined.other-card" {
		t.Fatalf("suggestions = %+v, want card-declined.other-card first", res.Suggestions)
	}
	if got, want := res.Suggestions[0].Text, "Hi Ava, I'm sorry your card was declined."; !strings.HasPrefix(got, want) {
		t.Errorf("text = %q, want it to start %q", got, want)
	}
	const used = "card-declined.other-card"
	if err := f.svc.Used(ctx, "c1", used); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Used(ctx, "c1", used); err != nil { // counted once per conversation
		t.Fatal(err)
	}
	if r := f.row(t, used); r.Shown != 1 || r.Used != 1 || r.Yes+r.No != 0 || r.ResolutionRate != 0 {
		t.Fatalf("before feedback %+v, want shown 1, used 1, no answers", r)
	}

	f.feedback(t, "c1", "yes")
	if r := f.row(t, used); r.Yes != 1 || r.No != 0 || r.ResolutionRate != 1 {
		t.Fatalf("after yes %+v, want yes 1, rate 1", r)
	}
	if r := f.row(t, "card-declined.generic"); r.Yes != 0 || r.Shown != 1 {
		t.Errorf("an unused suggestion counted feedback: %+v", r)
	}

	// Another conversation where it did not help.
	f.conv(t, "c2")
	if _, err := f.svc.Suggestions(ctx, "c2", f.agent); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Used(ctx, "c2", used); err != nil {
		t.Fatal(err)
	}
	f.feedback(t, "c2", "no")
	if r := f.row(t, used); r.Yes != 1 || r.No != 1 || r.ResolutionRate != 0.5 || r.UseRate != 1 {
		t.Fatalf("after yes and no %+v, want rate 0.5", r)
	}
	// "no" reopened c2; it is solved the second time.
	f.feedback(t, "c2", "yes")
	if r := f.row(t, used); r.Yes != 2 || r.No != 0 || r.ResolutionRate != 1 {
		t.Fatalf("after the reopened conversation's yes %+v, want yes 2, no 0", r)
	}
	// The same answer again changes nothing.
	f.feedback(t, "c2", "yes")
	if r := f.row(t, used); r.Yes != 2 {
		t.Fatalf("a repeated answer counted twice: %+v", r)
	}

	// Unhelpful hides it in this conversation and counts.
	if err := f.svc.Unhelpful(ctx, "c2", "card-declined.generic"); err != nil {
		t.Fatal(err)
	}
	res, err = f.svc.Suggestions(ctx, "c2", f.agent)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Suggestions {
		if s.ID == "card-declined.generic" {
			t.Errorf("an unhelpful suggestion is still offered")
		}
	}
	if r := f.row(t, "card-declined.generic"); r.Unhelpful != 1 {
		t.Errorf("unhelpful = %d, want 1", r.Unhelpful)
	}
}

// TestObserveFeedback: the detector wrapper hands feedback to the service
// and to the wrapped detector.
func TestObserveFeedback(t *testing.T) {
	f := newFixture(t, Options{})
	d := &feedbackDetector{}
	obs := f.svc.Observe(d)
	if err := f.svc.Used(context.Background(), "c1", "card-declined.generic"); err != nil {
		t.Fatal(err)
	}
	conv, _ := f.st.UpdateConversation(context.Background(), "c1", func(c *chat.Conversation) error { c.Status, c.Feedback = chat.StatusResolved, "yes"; return nil })
	obs.(chat.FeedbackObserver).Feedback(context.Background(), conv)
	if d.n != 1 {
		t.Errorf("the wrapped detector heard %d answers, want 1", d.n)
	}
	if r := f.row(t, "card-declined.generic"); r.Yes != 1 {
		t.Errorf("yes = %d, want 1", r.Yes)
	}
}

type feedbackDetector struct {
	chat.Detector
	n int
}

func (d *feedbackDetector) Feedback(context.Context, chat.Conversation) { d.n++ }

// TestWebhookAction: "send payment link" posts a signed request to the
// site's endpoint, and its answer becomes a note, as plain text.
func TestWebhookAction(t *testing.T) {
	var secret string
	var got WebhookRequest
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify(secret, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, now, time.Minute) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		_ = json.Unmarshal(body, &got)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message": "Payment link sent to <b>ava@example.com</b>"}`))
	}))
	defer recv.Close()
	f := newFixture(t, Options{HTTPClient: recv.Client()})
	ctx := context.Background()
	var err error
	if secret, err = f.svc.ActionSecret(ctx, "demo"); err != nil || len(secret) != 64 {
		t.Fatalf("ActionSecret = %q, %v", secret, err)
	}
	doc := strings.ReplaceAll(string(DefaultJSON()), `"/demo/api/assist"`, strconv.Quote(recv.URL+"/hook"))
	if _, err := f.svc.SetPlaybooks(ctx, "demo", []byte(doc), f.agent); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.RunAction(ctx, "c1", "card-declined.payment-link", f.agent)
	if err != nil {
		t.Fatalf("RunAction: %v", err)
	}
	want := "Send payment link: Payment link sent to <b>ava@example.com</b>"
	if res.Note != want || len(f.hub.notes) != 1 || f.hub.notes[0] != want {
		t.Errorf("note = %q, notes %q; want %q", res.Note, f.hub.notes, want)
	}
	if got.Action != "payment-link" || got.Visitor.Email != "ava@example.com" || got.Params["email"] != "ava@example.com" ||
		got.Params["amount"] != "98.00" || got.Conversation.ID != "c1" || got.Agent.Email != "ben@example.com" || got.Finding == nil {
		t.Errorf("webhook body = %+v", got)
	}
	if r := f.row(t, "card-declined.payment-link"); r.Used != 1 {
		t.Errorf("action use not counted: %+v", r)
	}

	// A wrong secret: the endpoint refuses, the agent sees why, nothing is invented.
	secret = "wrong"
	_, err = f.svc.RunAction(ctx, "c1", "card-declined.payment-link", f.agent)
	var ae *ActionError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || !strings.Contains(ae.Message, "401") {
		t.Errorf("RunAction against a refusing endpoint = %v, want a 502 naming 401", err)
	}
	if r := f.row(t, "card-declined.payment-link"); r.Failed != 1 {
		t.Errorf("failed = %d, want 1", r.Failed)
	}

	// An action not offered here is refused.
	if _, err := f.svc.RunAction(ctx, "c1", "retention.pause", f.agent); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("RunAction(retention.pause) = %v, want 404", err)
	}
}

// TestWebhookSSRFGuard: the default client refuses loopback endpoints.
func TestWebhookSSRFGuard(t *testing.T) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the guarded client reached a loopback endpoint")
	}))
	defer recv.Close()
	f := newFixture(t, Options{})
	ctx := context.Background()
	doc := strings.ReplaceAll(string(DefaultJSON()), `"/demo/api/assist"`, strconv.Quote(recv.URL+"/hook"))
	if _, err := f.svc.SetPlaybooks(ctx, "demo", []byte(doc), f.agent); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.RunAction(ctx, "c1", "card-declined.payment-link", f.agent)
	if err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("RunAction to 127.0.0.1 = %v, want refused", err)
	}
}

// TestActionsNoteTagTransfer runs the other kinds.
func TestActionsNoteTagTransfer(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	f.hub.agents = []chat.AgentView{
		{ID: "a1", Email: "ben@example.com", Status: "online", Capacity: 5},
		{ID: "a2", Email: "cy@example.com", Status: "away", Capacity: 5},
		{ID: "a3", Email: "di@example.com", Status: "online", Capacity: 5, Load: 1},
	}
	if err := f.st.CreateAgent(ctx, chat.Agent{ID: "a3", Email: "di@example.com", Role: chat.RoleAgent}); err != nil {
		t.Fatal(err)
	}
	doc := `{"version":1,"teams":{"billing":["ben@example.com","cy@example.com","di@example.com"]},"playbooks":[{"id":"p","title":"Paying","match":{"rules":["card-declined"]},"actions":[
		{"id":"n","kind":"note","label":"Note","text":"{{finding.count}} declines on {{finding.page}}"},
		{"id":"t","kind":"tag","label":"Tag","tag":"payments"},
		{"id":"x","kind":"transfer","label":"To billing","team":"billing"},
		{"id":"l","kind":"link","label":"Admin","url":"https://admin.example.com/c/{{visitor.external_id}}"}]}]}`
	if _, err := f.svc.SetPlaybooks(ctx, "demo", []byte(doc), f.agent); err != nil {
		t.Fatal(err)
	}
	run := func(id string) ActionResult {
		t.Helper()
		r, err := f.svc.RunAction(ctx, "c1", id, f.agent)
		if err != nil {
			t.Fatalf("RunAction(%s): %v", id, err)
		}
		return r
	}
	if r := run("p.n"); r.Note != "3 declines on /checkout" {
		t.Errorf("note = %q", r.Note)
	}
	run("p.t")
	if r := run("p.t"); len(r.Tags) != 1 || r.Tags[0] != "payments" {
		t.Errorf("tags = %q, want [payments] once", r.Tags)
	}
	if r := run("p.x"); r.Conversation == nil || r.Conversation.AgentID != "a3" {
		t.Errorf("transfer = %+v, want to a3 (a1 asks, a2 is away)", r)
	}
	if r := run("p.l"); r.URL != "https://admin.example.com/c/u1" {
		t.Errorf("link = %q", r.URL)
	}
	entries, err := f.svc.o.Audit.Entries(ctx, "demo", 10)
	if err != nil || len(entries) != 1 || entries[0].Action != "playbooks.update" || entries[0].AgentEmail != "ben@example.com" {
		t.Errorf("audit = %+v, %v; want one playbooks.update by ben", entries, err)
	}
}

// TestHotReload: a change stored by another node is picked up.
func TestHotReload(t *testing.T) {
	f := newFixture(t, Options{})
	other := New(Options{Store: f.st, Hub: f.hub, Now: func() time.Time { return now }})
	ctx := context.Background()
	if _, err := f.svc.Suggestions(ctx, "c1", f.agent); err != nil {
		t.Fatal(err)
	}
	doc := `{"version":1,"revision":"r2","playbooks":[{"id":"only","title":"Only","match":{},"suggestions":[{"id":"s","text":"new"}]}]}`
	if _, err := other.SetPlaybooks(ctx, "demo", []byte(doc), f.agent); err != nil {
		t.Fatal(err)
	}
	f.svc.reload(ctx)
	res, err := f.svc.Suggestions(ctx, "c1", f.agent)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Suggestions) != 1 || res.Suggestions[0].Text != "new" {
		t.Errorf("after reload suggestions = %+v, want only the new one", res.Suggestions)
	}
}

// TestForgetConversation: what assist keeps of a conversation (here a tag
// it added) goes when privacy erases or expires the conversation.
func TestForgetConversation(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	doc := `{"version":1,"playbooks":[{"id":"p","title":"Paying","match":{"rules":["card-declined"]},"actions":[{"id":"t","kind":"tag","label":"Tag","tag":"payments"}]}]}`
	if _, err := f.svc.SetPlaybooks(ctx, "demo", []byte(doc), f.agent); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RunAction(ctx, "c1", "p.t", f.agent); err != nil {
		t.Fatal(err)
	}
	if raw, err := f.st.Meta(ctx, convKey("c1")); err != nil || !strings.Contains(string(raw), "payments") {
		t.Fatalf("assist state of c1 = %q, %v; want the tag", raw, err)
	}
	for range 2 { // idempotent
		if err := f.svc.ForgetConversation(ctx, "demo", "c1"); err != nil {
			t.Fatal(err)
		}
	}
	if raw, err := f.st.Meta(ctx, convKey("c1")); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("assist state of c1 after ForgetConversation = %q, %v; want ErrNotFound", raw, err)
	}
}
