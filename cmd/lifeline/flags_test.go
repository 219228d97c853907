package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestServeRejectsBadGCFloor(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"negative flag", []string{"--gc-floor-mib", "-1"}, nil, "--gc-floor-mib -1: want 0 or more"},
		{"not a number in the environment", nil, map[string]string{"LIFELINE_GC_FLOOR_MIB": "lots"}, `LIFELINE_GC_FLOOR_MIB="lots" is not a whole number`},
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
