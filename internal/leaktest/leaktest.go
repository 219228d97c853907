// Package leaktest fails a test binary whose tests leave goroutines running.
package leaktest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests and then, if they passed, waits up to five seconds for
// goroutines started by them to finish. It exits non-zero and prints the
// stacks of those still running. cleanup runs after the tests, before the
// exit. Use it as TestMain:
//
//	func TestMain(m *testing.M) { leaktest.Main(m) }
func Main(m *testing.M, cleanup ...func()) {
	code := m.Run()
	for _, f := range cleanup {
		f()
	}
	if code == 0 {
		if leaked := wait(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaktest: goroutines still running after the tests:\n\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func wait(limit time.Duration) string {
	deadline := time.Now().Add(limit)
	for {
		leaked := interesting()
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// interesting returns the stacks of goroutines other than this one and the
// runtime's and testing package's own.
func interesting() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 || g == "" { // the first is the calling goroutine
			continue
		}
		if ignorable(g) {
			continue
		}
		out = append(out, g)
	}
	return out
}

func ignorable(stack string) bool {
	for _, s := range []string{
		"testing.(*M).", "testing.tRunner", "testing.runTests",
		"os/signal.signal_recv", "os/signal.loop", "runtime.ensureSigM",
		"net/http.(*persistConn).", // idle keep-alive connections of shared transports
	} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}
