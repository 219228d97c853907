package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestServeRejectsBadMemoryFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"negative flag", []string{"--gc-floor-mib", "-1"}, nil, "--gc-floor-mib -1: want 0 or more"},
		{"not a number in the environment", nil, map[string]string{"LIFELINE_GC_FLOOR_MIB": "lots"}, `LIFELINE_GC_FLOOR_MIB="lots" is not a whole number`},
		{"negative idle trim", []string{"--idle-trim", "-5s"}, nil, "--idle-trim -5s: want 0 or more"},
		{"idle trim not a duration in the environment", nil, map[string]string{"LIFELINE_IDLE_TRIM": "soon"}, `LIFELINE_IDLE_TRIM="soon" is not a duration`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, c.args...)
			err := run(context.Background(), args, func(k string) string { return c.env[k] }, strings.NewReader(""), &out, &out)
			if err == nil || !strings.Contains(err.Error(), c.want) || exitCode(err) != 2 {
				t.Fatalf("serve %q = %v (exit %d), want a usage error %q", c.args, err, exitCode(err), c.want)
			}
		})
	}
}

func TestServeTrimsTheHeapOnceQuiet(t *testing.T) {
	n := startNode(t, t.TempDir(), map[string]string{"LIFELINE_IDLE_TRIM": "100ms", "LIFELINE_LOG_LEVEL": "info"})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(n.Stderr.String(), "returned the free heap to the operating system") {
		if time.Now().After(deadline) {
			t.Fatalf("an idle node logged no trim within 20 s; log:\n%s", n.Stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
