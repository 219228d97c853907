package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestLoadSmoke runs the load tool's chat and storm scenarios with small
// numbers against a node and checks its counts, not its speed.
func TestLoadSmoke(t *testing.T) {
	n := startNode(t, t.TempDir(), map[string]string{"LIFELINE_MAX_CONNS_PER_IP": "1000"})
	ctx := testCtx(t)
	env := func(k string) string {
		if k == "LIFELINE_ADMIN_PASSWORD" {
			return testPassword
		}
		return ""
	}
	var out syncBuffer
	err := run(ctx, []string{"load", "--url", n.URL, "--scenario", "chat", "--pairs", "20", "--agents", "4",
		"--rate", "200", "--duration", "2s", "--json"}, env, strings.NewReader(""), &out, &out)
	if err != nil {
		t.Fatalf("load chat: %v\n%s", err, out.String())
	}
	var rep struct {
		Held       int   `json:"connections_held"`
		Failed     int   `json:"connections_failed"`
		Sent       int64 `json:"sent"`
		Acked      int64 `json:"acked"`
		Delivered  int64 `json:"delivered"`
		Lost       int64 `json:"lost"`
		Duplicated int64 `json:"duplicated"`
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("decode report %q: %v", out.String(), err)
	}
	if rep.Held != 24 || rep.Failed != 0 || rep.Sent < 100 || rep.Acked != rep.Sent || rep.Delivered != rep.Acked || rep.Lost != 0 || rep.Duplicated != 0 {
		t.Fatalf("chat report = %+v, want 24 connections, every message acked and delivered once", rep)
	}

	out = syncBuffer{}
	if err := run(ctx, []string{"load", "--url", n.URL, "--scenario", "storm", "--visitors", "200", "--json"}, env, strings.NewReader(""), &out, &out); err != nil {
		t.Fatalf("load storm: %v\n%s", err, out.String())
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Held != 200 || rep.Failed != 0 {
		t.Fatalf("storm report = %+v, want 200 usable connections", rep)
	}
}
