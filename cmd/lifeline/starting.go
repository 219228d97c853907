package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/httpjson"
)

// front is the node's HTTP handler. Until the node is ready it stands in
// for the server: /healthz says the process is alive and starting, and
// every other request gets 503 with what the node is waiting for and a
// Retry-After, so a load balancer keeps traffic away (/readyz is 503 too)
// and an orchestrator does not restart a node that is only waiting.
type front struct {
	h     atomic.Pointer[http.Handler]
	state atomic.Pointer[string]
}

func newFront(state string) *front {
	f := &front{}
	f.setState(state)
	return f
}

// setState says what the starting node is doing, for the 503 answers.
func (f *front) setState(s string) { f.state.Store(&s) }

// serve hands every request from now on to h.
func (f *front) serve(h http.Handler) { f.h.Store(&h) }

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := f.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "starting"})
		return
	}
	w.Header().Set("Retry-After", "5")
	httpjson.Error(w, http.StatusServiceUnavailable, "starting", "Lifeline is starting: "+*f.state.Load())
}

// waitForStore returns once st answers a ping, retrying with a backoff
// from 100 ms doubling to 5 s and logging each failure, or returns ctx's
// error when ctx ends first. A node started before its Redis (a cluster
// coming up, Redis restarting) waits for it instead of exiting.
func waitForStore(ctx context.Context, st chat.Store, log *slog.Logger) error {
	delay := 100 * time.Millisecond
	for {
		err := st.Ping(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("redis is not reachable; waiting for it", "err", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
