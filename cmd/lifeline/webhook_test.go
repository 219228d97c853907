package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/webhook"
)

// TestWebhooksFromARealNode subscribes a local receiver on a running node
// and chats: the hub's own writes arrive as signed events, each once; a
// receiver that is down while the node restarts still gets them after.
func TestWebhooksFromARealNode(t *testing.T) {
	var (
		mu     sync.Mutex
		events []string
		ids    = map[string]int{}
		bad    int
		up     atomic.Bool
		secret string
	)
	up.Store(true)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var b webhook.Body
		json.Unmarshal(body, &b)
		mu.Lock()
		defer mu.Unlock()
		if !webhook.Verify(secret, r.Header.Get("X-Lifeline-Timestamp"), r.Header.Get("X-Lifeline-Signature"), body, time.Now(), 5*time.Minute) {
			bad++
		}
		if ids[b.ID]++; ids[b.ID] == 1 {
			events = append(events, string(b.Type))
		}
	}))
	defer rcv.Close()
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(events)
	}

	data := t.TempDir()
	env := map[string]string{"LIFELINE_WEBHOOK_ALLOW_HOST": "127.0.0.1"}
	n := startNode(t, data, env)
	ctx := testCtx(t)
	admin, err := client.Login(ctx, n.URL, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	var sub struct {
		Webhook struct{ Secret string }
	}
	if err := admin.Do(ctx, http.MethodPost, "/api/v1/sites/demo/webhooks", map[string]any{
		"url": rcv.URL, "events": []string{"conversation.created", "message.created", "conversation.resolved"},
	}, &sub); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	secret = sub.Webhook.Secret
	mu.Unlock()

	v, _ := visitor(t, ctx, n.URL, "", 0)
	if err := v.Send(ctx, map[string]any{"type": "message", "client_id": "w1", "text": "hello"}); err != nil {
		t.Fatal(err)
	}
	ack, err := v.Until(ctx, "ack", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "conversation.created and message.created", func() bool { return len(seen()) >= 2 })

	// The receiver goes down; the node restarts; a resolve happens; the
	// receiver comes back and gets it.
	up.Store(false)
	if err := admin.Do(ctx, http.MethodPost, "/api/v1/conversations/"+ack.ConversationID+"/resolve", nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let a first attempt fail
	n.stop()
	n = startNode(t, data, env)
	up.Store(true)
	// The first attempt failed before the restart and the retry is due 5 to
	// 10 s later. On a busy machine the restart can outlast that, and the
	// retry then fails too, while the receiver is still down: the next is
	// due 10 to 20 s after it.
	waitWithin(t, 45*time.Second, "conversation.resolved after the restart", func() bool { return slices.Contains(seen(), "conversation.resolved") })

	got := seen()
	slices.Sort(got)
	if want := []string{"conversation.created", "conversation.resolved", "message.created"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want each of %v once", got, want)
	}
	mu.Lock()
	nbad := bad
	mu.Unlock()
	if nbad != 0 {
		t.Fatalf("%d deliveries failed signature verification", nbad)
	}

	// The receiver fails every delivery: after four in a row the node
	// pauses its deliveries, and the admins see why.
	up.Store(false)
	if admin, err = client.Login(ctx, n.URL, adminEmail, testPassword); err != nil {
		t.Fatal(err)
	}
	v, _ = visitor(t, ctx, n.URL, "", 0)
	for i := range 4 {
		if err := v.Send(ctx, map[string]any{"type": "message", "client_id": fmt.Sprint("f", i), "text": "again"}); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Webhooks []struct {
			ID     string
			Health *webhook.Health
		}
	}
	waitFor(t, "the subscription's health", func() bool {
		err := admin.Do(ctx, http.MethodGet, "/api/v1/sites/demo/webhooks", nil, &list)
		return err == nil && len(list.Webhooks) == 1 && list.Webhooks[0].Health != nil
	})
	h := list.Webhooks[0].Health
	if h.FailuresInARow < 4 || !strings.Contains(h.LastError, "503") || time.Until(h.PausedUntil) < 10*time.Second {
		t.Errorf("health = %+v, want 4 failures in a row, the 503, a pause of about 30 s", h)
	}
}
