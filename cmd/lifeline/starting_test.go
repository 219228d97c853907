package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/internal/redistest"
)

// getJSON fetches base+path and decodes the body into out.
func getJSON(t *testing.T, base, path string, out any) *http.Response {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return resp
}

// waitStarting polls /healthz until the node listens and says it is
// starting.
func waitStarting(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			var body struct{ Status string }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && body.Status == "starting" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/healthz did not say starting within 20 s", base)
}

// A node started before its Redis listens at once, alive but not ready,
// telling callers what it waits for; once Redis is up it serves chat.
func TestNodeStartsBeforeRedis(t *testing.T) {
	rs := redistest.Server(t, redistest.AOF())
	rs.Stop(t)
	addr := freePort(t)
	p := launchProc(t, addr, redisNodeArgs(rs.URL())...)
	base := "http://" + addr
	waitStarting(t, base)

	var ready struct {
		Error struct{ Code, Message string }
	}
	resp := getJSON(t, base, "/readyz", &ready)
	if resp.StatusCode != http.StatusServiceUnavailable || ready.Error.Code != "starting" || ready.Error.Message != "Lifeline is starting: waiting for Redis" {
		t.Fatalf("/readyz while Redis is down = %d %+v, want 503 starting, waiting for redis", resp.StatusCode, ready.Error)
	}
	var api struct{ Error struct{ Code string } }
	resp = getJSON(t, base, "/api/v1/me", &api)
	if resp.StatusCode != http.StatusServiceUnavailable || api.Error.Code != "starting" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an API call while Redis is down = %d %+v (Retry-After %q), want 503 starting with Retry-After",
			resp.StatusCode, api.Error, resp.Header.Get("Retry-After"))
	}

	// It says so in its log, and then Redis comes up.
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(p.logs.String(), "redis is not reachable; waiting for it"); {
		if time.Now().After(deadline) {
			t.Fatalf("the node's log does not say it waits for Redis:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	rs.Start(t)
	waitServing(t, base)
	ctx := testCtx(t)
	v, _ := visitor(t, ctx, base, "", 0)
	if err := v.Send(ctx, map[string]any{"type": "message", "client_id": "m1", "text": "hello after the wait"}); err != nil {
		t.Fatal(err)
	}
	if ack, err := v.Until(ctx, "ack", nil); err != nil || ack.Seq != 1 {
		t.Fatalf("ack after Redis came up = %+v, %v; want seq 1", ack, err)
	}
}

// A node told to stop while it waits for Redis stops cleanly.
func TestStopWhileWaitingForRedis(t *testing.T) {
	rs := redistest.Server(t)
	rs.Stop(t)
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vars := map[string]string{"LIFELINE_ADMIN_PASSWORD": testPassword, "LIFELINE_LOG_LEVEL": "warn"}
	errOut := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", addr}, redisNodeArgs(rs.URL())...), func(k string) string { return vars[k] },
			strings.NewReader(""), &syncBuffer{}, errOut)
	}()
	waitStarting(t, "http://"+addr)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve stopped while waiting for Redis with %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30 s of the signal while waiting for Redis; stderr:\n%s", errOut.String())
	}
}
