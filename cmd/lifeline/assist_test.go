package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/assist"
	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/webhook"
)

// receiver is a site's endpoint for webhook actions: it checks the
// signature and answers as a shop would.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	secret string
	got    []assist.WebhookRequest
	bad    int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if !webhook.Verify(r.secret, req.Header.Get("X-Lifeline-Timestamp"), req.Header.Get("X-Lifeline-Signature"), body, time.Now(), time.Minute) {
			r.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var in assist.WebhookRequest
		_ = json.Unmarshal(body, &in)
		r.got = append(r.got, in)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"message":"payment link sent to ` + in.Params["email"] + `"}`))
	}))
	t.Cleanup(r.Close)
	return r
}

// TestAssistCardDeclinedFlow is agent assist end to end over the real
// server, at the protocol level: Ava's card is declined three times, she
// accepts the offer; the agent's suggestions lead with the card-declined
// reply with her name filled in; the agent sends it and she receives it;
// "send payment link" reaches a local receiver correctly signed and its
// answer appears in the conversation as a note; her "yes" to "Did this
// solve it?" shows in the suggestion's resolution rate.
func TestAssistCardDeclinedFlow(t *testing.T) {
	n := startNode(t, t.TempDir(), map[string]string{"LIFELINE_WEBHOOK_ALLOW_HOST": "127.0.0.1"})
	ctx := testCtx(t)
	admin, ag := awayAgent(t, ctx, n.URL)

	// The site's playbooks: the defaults, with the payment link going to
	// the local receiver, which knows the site's action secret.
	recv := newReceiver(t)
	var pbs struct {
		Playbooks    json.RawMessage `json:"playbooks"`
		ActionSecret string          `json:"action_secret"`
	}
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/sites/demo/playbooks", nil, &pbs); err != nil {
		t.Fatal(err)
	}
	if pbs.ActionSecret == "" {
		t.Fatal("the admin was not given the action secret")
	}
	recv.secret = pbs.ActionSecret
	doc := strings.Replace(string(pbs.Playbooks), `"/demo/api/assist"`, strconv.Quote(recv.URL+"/lifeline"), 1)
	if err := admin.Do(ctx, http.MethodPut, "/api/v1/sites/demo/playbooks", json.RawMessage(doc), nil); err != nil {
		t.Fatal(err)
	}
	// Invalid playbooks are refused naming playbook, field and problem.
	bad := strings.Replace(doc, "{{visitor.first_name}}", "{{visitor.frist_name}}", 1)
	err := admin.Do(ctx, http.MethodPut, "/api/v1/sites/demo/playbooks", json.RawMessage(bad), nil)
	if err == nil || !strings.Contains(err.Error(), `playbooks[0] \"card-declined\": suggestions[0] \"other-card\": text: unknown placeholder {{visitor.frist_name}}`) {
		t.Fatalf("PUT invalid playbooks = %v, want the problem named", err)
	}

	v, conv := declinedConversation(t, ctx, n.URL, admin, ag)

	// The suggestions lead with the card-declined reply, Ava's name filled in.
	var res assist.Result
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/conversations/"+conv.ID+"/suggestions", nil, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Suggestions) == 0 || res.Suggestions[0].ID != "card-declined.other-card" || !strings.HasPrefix(res.Suggestions[0].Text, "Hi Ava, I'm sorry your card was declined") {
		t.Fatalf("suggestions = %+v, want the card-declined reply to Ava first", res.Suggestions)
	}
	if !strings.Contains(res.Suggestions[0].Reason, "declined") {
		t.Errorf("reason = %q, want the finding's sentence", res.Suggestions[0].Reason)
	}
	var pay *assist.Item
	for i := range res.Actions {
		if res.Actions[i].ID == "card-declined.payment-link" {
			pay = &res.Actions[i]
		}
	}
	if pay == nil || pay.Confirm != "Email a payment link to ava@example.com?" || pay.URL != "" {
		t.Fatalf("actions = %+v, want send payment link with its confirmation and no endpoint shown", res.Actions)
	}

	// The agent inserts (used) and sends it; Ava receives it.
	text := res.Suggestions[0].Text
	if err := admin.Do(ctx, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/suggestions/"+res.Suggestions[0].ID+"/used", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := ag.Send(ctx, map[string]any{"type": "message", "conversation_id": conv.ID, "client_id": "a1", "text": text}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := v.Until(ctx, "message", nil)
		if err != nil {
			t.Fatalf("Ava never got the reply: %v", err)
		}
		if m, _ := f.ChatMessage(); m.Author.Kind == chat.AuthorAgent && m.Text == text {
			break
		}
	}

	// Send payment link: signed, received, its answer is a note.
	var run assist.ActionResult
	if err := admin.Do(ctx, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/actions/card-declined.payment-link/run", nil, &run); err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	got, badSigs := recv.got, recv.bad
	recv.mu.Unlock()
	if badSigs != 0 || len(got) != 1 || got[0].Action != "payment-link" || got[0].Conversation.ID != conv.ID || got[0].Visitor.Email != "ava@example.com" {
		t.Fatalf("receiver got %+v (%d badly signed), want one signed payment-link request for Ava", got, badSigs)
	}
	const note = "Send payment link: payment link sent to ava@example.com"
	if run.Note != note {
		t.Errorf("run = %+v, want note %q", run, note)
	}
	if _, err := ag.Until(ctx, "note", func(client.Frame) {}); err != nil {
		t.Fatalf("the agent never saw the note: %v", err)
	}
	var tr struct{ Notes []chat.Note }
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/conversations/"+conv.ID, nil, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Notes) != 1 || tr.Notes[0].Text != note {
		t.Fatalf("notes = %+v, want the action's result", tr.Notes)
	}

	// Resolve; Ava says it solved it; the rate shows it.
	if err := admin.Do(ctx, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/resolve", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Until(ctx, "conversation", nil); err != nil {
		t.Fatal(err)
	}
	if err := v.Send(ctx, map[string]any{"type": "feedback", "conversation_id": conv.ID, "solved": true}); err != nil {
		t.Fatal(err)
	}
	var stats struct{ Items []assist.StatRow }
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := admin.Do(ctx, http.MethodGet, "/api/v1/sites/demo/playbooks/stats", nil, &stats); err != nil {
			t.Fatal(err)
		}
		var row assist.StatRow
		for _, r := range stats.Items {
			if r.ID == "card-declined.other-card" {
				row = r
			}
		}
		if row.Yes == 1 {
			if row.Used != 1 || row.Shown != 1 || row.ResolutionRate != 1 || row.UseRate != 1 {
				t.Fatalf("stats row = %+v, want shown, used and solved once", row)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the suggestion's stats never counted the yes: %+v", row)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// declinedConversation is Ava, identified, whose card is declined three
// times; she accepts the offer and the admin claims her conversation.
func declinedConversation(t *testing.T, ctx context.Context, base string, admin *client.Session, ag *client.Conn) (*client.Conn, chat.Conversation) {
	t.Helper()
	// Ava, identified, declined three times, accepts the offer.
	v, wel := visitor(t, ctx, base, "", 0)
	if err := v.Send(ctx, map[string]any{"type": "identify", "identity": map[string]any{
		"id": "demo-ava", "name": "Ava Lindqvist", "email": "ava@example.com",
		"attributes": map[string]string{"plan": "Coffee Club", "cart_value": "98.00"}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var events []map[string]any
	for i := range 3 {
		at := now.Add(time.Duration(i*8) * time.Second).UnixMilli()
		events = append(events,
			map[string]any{"t": at, "k": "request", "method": "POST", "path": "/api/pay", "status": 402, "dur": 180},
			map[string]any{"t": at + 50, "k": "report", "msg": "Card declined"})
	}
	if err := v.Send(ctx, map[string]any{"type": "events", "events": events}); err != nil {
		t.Fatal(err)
	}
	offer, err := v.Until(ctx, "offer", nil)
	if err != nil {
		t.Fatalf("no offer: %v", err)
	}
	if err := v.Send(ctx, map[string]any{"type": "offer_response", "offer_id": offer.OfferID, "accept": true}); err != nil {
		t.Fatal(err)
	}
	var conv chat.Conversation
	for conv.VisitorID != wel.VisitorID {
		f, err := ag.Until(ctx, "conversation", nil)
		if err != nil {
			t.Fatalf("agent never saw the conversation: %v", err)
		}
		if conv, err = f.Conv(); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.Do(ctx, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/claim", nil, nil); err != nil {
		t.Fatal(err)
	}

	return v, conv
}

// TestAssistDemoDefaults: on a fresh node the built-in playbooks answer
// the demo's declined card, and "Send payment link" works out of the box
// against the demo shop's own signed endpoint. Roles: analysts cannot ask
// for suggestions or run actions, agents cannot change playbooks, and only
// admins see the action secret.
func TestAssistDemoDefaults(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	admin, ag := awayAgent(t, ctx, n.URL)
	_, conv := declinedConversation(t, ctx, n.URL, admin, ag)
	var run assist.ActionResult
	if err := admin.Do(ctx, http.MethodPost, "/api/v1/conversations/"+conv.ID+"/actions/card-declined.payment-link/run", nil, &run); err != nil {
		t.Fatal(err)
	}
	if want := "Send payment link: payment link for €98.00 sent to ava@example.com (valid 24 h)"; run.Note != want {
		t.Errorf("note = %q, want %q", run.Note, want)
	}

	for _, a := range []struct{ email, role string }{{"ana@example.com", "analyst"}, {"agent@example.com", "agent"}} {
		if err := admin.Do(ctx, http.MethodPost, "/api/v1/agents", map[string]string{"email": a.email, "name": a.role, "role": a.role, "password": "a long password"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	analyst, err := client.Login(ctx, n.URL, "ana@example.com", "a long password")
	if err != nil {
		t.Fatal(err)
	}
	agent, err := client.Login(ctx, n.URL, "agent@example.com", "a long password")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who          *client.Session
		method, path string
		body         any
	}{
		{analyst, http.MethodGet, "/api/v1/conversations/" + conv.ID + "/suggestions", nil},
		{analyst, http.MethodPost, "/api/v1/conversations/" + conv.ID + "/actions/card-declined.note/run", nil},
		{agent, http.MethodPut, "/api/v1/sites/demo/playbooks", json.RawMessage(assist.DefaultJSON())},
	} {
		if err := c.who.Do(ctx, c.method, c.path, c.body, nil); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("%s %s = %v, want 403", c.method, c.path, err)
		}
	}
	var doc map[string]any
	if err := agent.Do(ctx, http.MethodGet, "/api/v1/sites/demo/playbooks", nil, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["action_secret"]; ok || doc["playbooks"] == nil {
		t.Errorf("an agent's GET playbooks = %v, want the playbooks without the action secret", doc)
	}
	if err := analyst.Do(ctx, http.MethodPut, "/api/v1/sites/demo/playbooks", json.RawMessage(assist.DefaultJSON()), nil); err != nil {
		t.Errorf("an analyst cannot save playbooks: %v", err)
	}
}
