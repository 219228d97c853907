package main

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

// loadReport is the part of `lifeline load --json` the smoke test checks.
type loadReport struct {
	Held       int   `json:"connections_held"`
	Failed     int   `json:"connections_failed"`
	Sent       int64 `json:"sent"`
	Acked      int64 `json:"acked"`
	Delivered  int64 `json:"delivered"`
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	Errors     int64 `json:"error_frames"`
	Events     *struct {
		Streamers  int   `json:"streamers"`
		Sent       int64 `json:"events_sent"`
		Batches    int64 `json:"batches_sent"`
		Struggles  int64 `json:"struggles"`
		Offers     int64 `json:"offers"`
		Unprompted int64 `json:"offers_unprompted"`
	} `json:"events"`
	Server *struct {
		CPUSeconds float64 `json:"cpu_seconds"`
		SchedWait  []struct {
			OverMs  float64 `json:"over_ms"`
			Percent float64 `json:"percent"`
		} `json:"sched_wait"`
		RuntimeNote string `json:"runtime_note"`
	} `json:"server"`
}

// TestLoadSmoke runs every scenario of the load tool with small numbers
// against a node and checks its counts, never its speed.
func TestLoadSmoke(t *testing.T) {
	n := startNode(t, t.TempDir(), map[string]string{"LIFELINE_MAX_CONNS_PER_IP": "1000"})
	ctx := testCtx(t)
	env := func(k string) string {
		if k == "LIFELINE_ADMIN_PASSWORD" {
			return testPassword
		}
		return ""
	}
	load := func(t *testing.T, args ...string) loadReport {
		t.Helper()
		var out syncBuffer
		args = append([]string{"load", "--url", n.URL, "--sources", "127.0.0.1,127.0.0.2", "--json"}, args...)
		if err := run(ctx, args, env, strings.NewReader(""), &out, &out); err != nil {
			t.Fatalf("lifeline %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		var rep loadReport
		if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
			t.Fatalf("decode report %q: %v", out.String(), err)
		}
		return rep
	}
	chatOK := func(rep loadReport) bool {
		return rep.Sent >= 20 && rep.Acked == rep.Sent && rep.Delivered == rep.Acked && rep.Lost == 0 && rep.Duplicated == 0 && rep.Errors == 0
	}
	eventsOK := func(rep loadReport, streamers int) bool {
		e := rep.Events
		return e != nil && e.Streamers == streamers && e.Sent > 0 && e.Sent == 5*e.Batches &&
			e.Offers <= e.Struggles && e.Unprompted == 0 && rep.Errors == 0
	}

	// Subtests run in order: chat twice shows a second run against the same
	// node is not confused by the first one's conversations.
	// The second also reads the node's figures: it runs in this process.
	for i := range 2 {
		t.Run("chat", func(t *testing.T) {
			args := []string{"--scenario", "chat", "--pairs", "20", "--agents", "2", "--rate", "100", "--duration", "1s"}
			if i == 1 {
				args = append(args, "--pid", strconv.Itoa(os.Getpid()))
			}
			rep := load(t, args...)
			if rep.Held != 22 || rep.Failed != 0 || !chatOK(rep) {
				t.Fatalf("chat report = %+v, want 22 connections, every message acked and delivered once", rep)
			}
			if i == 0 {
				if rep.Server != nil {
					t.Errorf("without --pid the report has the node's figures: %+v", rep.Server)
				}
				return
			}
			if s := rep.Server; s == nil || s.RuntimeNote != "" || len(s.SchedWait) != 3 || s.SchedWait[0].OverMs >= s.SchedWait[1].OverMs {
				t.Fatalf("with --pid the report's node figures are %+v, want three scheduler waits from /metrics", s)
			}
		})
	}
	t.Run("storm", func(t *testing.T) {
		rep := load(t, "--scenario", "storm", "--visitors", "200")
		if rep.Held != 200 || rep.Failed != 0 {
			t.Fatalf("storm report = %+v, want 200 usable connections", rep)
		}
	})
	t.Run("idle", func(t *testing.T) {
		rep := load(t, "--scenario", "idle", "--visitors", "50", "--duration", "100ms")
		if rep.Held != 50 || rep.Failed != 0 {
			t.Fatalf("idle report = %+v, want 50 connections held", rep)
		}
	})
	t.Run("events", func(t *testing.T) {
		rep := load(t, "--scenario", "events", "--streamers", "20", "--event-rate", "200", "--batch", "5", "--struggle", "0.2", "--duration", "1s")
		if rep.Held != 20 || rep.Failed != 0 || !eventsOK(rep, 20) {
			t.Fatalf("events report = %+v %+v, want 20 streamers, whole batches sent, no offer without a struggle", rep, rep.Events)
		}
	})
	t.Run("mixed", func(t *testing.T) {
		rep := load(t, "--scenario", "mixed", "--visitors", "20", "--pairs", "10", "--agents", "1", "--rate", "50",
			"--streamers", "10", "--event-rate", "100", "--batch", "5", "--struggle", "0.2", "--duration", "1s")
		if rep.Held != 20+11+10 || rep.Failed != 0 || !chatOK(rep) || !eventsOK(rep, 10) {
			t.Fatalf("mixed report = %+v %+v, want 41 connections, chat delivered once, events sent", rep, rep.Events)
		}
	})
}
