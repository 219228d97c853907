package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/client"
)

// TestCardDeclinedOfferReachesAgentQueue is the detector end to end: a
// scripted visitor has their card declined three times on /checkout, the
// offer arrives with the rule's text, they accept, and an agent sees them
// in the queue with the explanation sentence and their journey.
func TestCardDeclinedOfferReachesAgentQueue(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	admin, ag := awayAgent(t, ctx, n.URL) // the conversation stays in the queue

	v, w := visitor(t, ctx, n.URL, "", 0)
	now := time.Now()
	var events []map[string]any
	for i := range 3 {
		at := now.Add(time.Duration(i*10) * time.Second).UnixMilli()
		events = append(events,
			map[string]any{"t": at, "k": "submit", "form": "payment", "ok": true},
			map[string]any{"t": at + 400, "k": "request", "method": "POST", "path": "/api/pay", "status": 402, "dur": 180},
			map[string]any{"t": at + 450, "k": "report", "msg": "Your card was declined"})
	}
	if err := v.Send(ctx, map[string]any{"type": "events", "events": events}); err != nil {
		t.Fatal(err)
	}
	offer, err := v.Until(ctx, "offer", nil)
	if err != nil {
		t.Fatalf("no offer after three declined cards: %v", err)
	}
	if offer.OfferID == "" || offer.Mode != "message" || !strings.Contains(strings.ToLower(offer.Text), "pay") {
		// No agent is online (the admin is away), so the offer is to leave a message.
		t.Fatalf("offer = %+v, want a payment offer in message mode", offer)
	}
	if err := v.Send(ctx, map[string]any{"type": "offer_response", "offer_id": offer.OfferID, "accept": true}); err != nil {
		t.Fatal(err)
	}

	// The agent sees the visitor in the queue with the explanation.
	var conv chat.Conversation
	for {
		f, err := ag.Until(ctx, "conversation", nil)
		if err != nil {
			t.Fatalf("agent never saw the conversation: %v", err)
		}
		if conv, err = f.Conv(); err != nil {
			t.Fatal(err)
		}
		if conv.VisitorID == w.VisitorID {
			break
		}
	}
	if conv.Status != chat.StatusWaiting || conv.Priority < 1 || conv.Cause != "card-declined" ||
		!strings.Contains(conv.Explanation, "declined") || !strings.Contains(conv.Explanation, "/checkout") {
		t.Fatalf("queued conversation = %+v, want waiting, prioritised, caused by card-declined, explained", conv)
	}
	t.Logf("agent sees: %q (priority %d)", conv.Explanation, conv.Priority)

	// The journey is there for the agent: page, requests, errors, findings.
	var got struct{ Visitor chat.Visitor }
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/visitors/"+w.VisitorID, nil, &got); err != nil {
		t.Fatal(err)
	}
	j := got.Visitor.Context
	if j == nil || len(j.Trail) == 0 || j.Trail[0].Path != "/checkout" || len(j.Requests) != 1 || j.Requests[0].Count != 3 ||
		len(j.Errors) != 1 || j.Errors[0].Count != 3 || len(j.Findings) == 0 || j.Explanation == "" {
		t.Fatalf("visitor context = %+v, want the checkout page, 3 failed payments, 3 declines and the findings", j)
	}

	// Live counters: fired, offered and accepted for the rule.
	var counters struct {
		Rules []struct {
			Rule                     string
			Fired, Offered, Accepted int64
			Declined                 int64
		}
	}
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/sites/demo/detector", nil, &counters); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range counters.Rules {
		if r.Rule == "card-declined" {
			found = true
			if r.Fired < 1 || r.Offered != 1 || r.Accepted != 1 || r.Declined != 0 {
				t.Fatalf("card-declined counters = %+v, want fired ≥ 1, offered 1, accepted 1", r)
			}
		}
	}
	if !found {
		t.Fatalf("no counters for card-declined in %+v", counters.Rules)
	}

	// Live visitors list the struggling visitor first.
	var live struct {
		Visitors []struct {
			Visitor     chat.Visitor
			Score       float64
			Explanation string
		}
	}
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/visitors/live?site=demo", nil, &live); err != nil {
		t.Fatal(err)
	}
	if len(live.Visitors) == 0 || live.Visitors[0].Visitor.ID != w.VisitorID || live.Visitors[0].Score <= 0 {
		t.Fatalf("live visitors = %+v, want the struggling visitor first", live.Visitors)
	}
}

// TestDetectorRulesAPI changes rules through the API: bad rules are refused
// with the rule, field and problem; good ones apply at once and are audited.
func TestDetectorRulesAPI(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	admin, err := client.Login(ctx, n.URL, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	put := func(body string) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, n.URL+"/api/v1/sites/demo/rules", strings.NewReader(body))
		req.Header.Set("X-CSRF-Token", admin.CSRF)
		req.Header.Set("Origin", n.URL)
		resp, err := admin.HTTP.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var b strings.Builder
			fmt.Fprintf(&b, "HTTP %d: ", resp.StatusCode)
			buf := make([]byte, 4096)
			k, _ := resp.Body.Read(buf)
			b.Write(buf[:k])
			return fmt.Errorf("%s", b.String())
		}
		return nil
	}
	bad := `{"version":1,"threshold":8,"rules":[{"id":"pay","signal":"report","count":2,"window":"5m","weight":-3}]}`
	err = put(bad)
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "pay") || !strings.Contains(err.Error(), "weight") {
		t.Fatalf("bad rules answered %v, want 400 naming rule pay and field weight", err)
	}
	good := `{"version":1,"revision":"r2","threshold":5,"rules":[{"id":"pay","signal":"report","count":2,"window":"5m","weight":8,"match":{"message":["declined"]},"offer":"Payment trouble? We can help."}]}`
	if err := put(good); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Revision  string
		UpdatedBy string `json:"updated_by"`
	}
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/sites/demo/rules", nil, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Revision != "r2" || doc.UpdatedBy != adminEmail {
		t.Fatalf("rules doc = %+v, want revision r2 by the admin", doc)
	}
	var audit struct {
		Entries []struct{ Action, AgentEmail string }
	}
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/audit?site=demo", nil, &audit); err != nil {
		t.Fatal(err)
	}
	if len(audit.Entries) != 1 || audit.Entries[0].Action != "rules.update" {
		t.Fatalf("audit = %+v, want one rules.update", audit.Entries)
	}

	// The new rule is live: two declines offer with its text.
	v, _ := visitor(t, ctx, n.URL, "", 0)
	now := time.Now().UnixMilli()
	if err := v.Send(ctx, map[string]any{"type": "events", "events": []map[string]any{
		{"t": now, "k": "report", "msg": "card declined"}, {"t": now + 1000, "k": "report", "msg": "card declined"},
	}}); err != nil {
		t.Fatal(err)
	}
	offer, err := v.Until(ctx, "offer", nil)
	if err != nil || offer.Text != "Payment trouble? We can help." {
		t.Fatalf("offer = %+v, %v; want the new rule's text", offer, err)
	}
	// "No thanks" is counted and silences further offers.
	if err := v.Send(ctx, map[string]any{"type": "offer_response", "offer_id": offer.OfferID, "accept": false}); err != nil {
		t.Fatal(err)
	}

	// A backtest of the live rules on generated sessions.
	var rep struct {
		Source string
		Visits int
		Sweep  []any
	}
	if err := admin.Do(ctx, http.MethodPost, "/api/v1/sites/demo/backtest", map[string]any{"sessions": 300, "sweep": true}, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Source != "generated" || rep.Visits != 300 || len(rep.Sweep) == 0 {
		t.Fatalf("backtest = %+v, want 300 generated visits with a sweep", rep)
	}
}
