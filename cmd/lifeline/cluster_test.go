package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/internal/client"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

// Many nodes on one Redis (issue 6): real lifeline processes sharing a
// redis-server with appendfsync always, killed with SIGKILL or left running
// while Redis goes away and comes back.

// redisNodeArgs are the flags of a node on Redis serving a crowd from one
// loopback address.
func redisNodeArgs(redisURL string) []string {
	return []string{"--redis", redisURL, "--max-conns-per-ip", "1000"}
}

func TestClusterNodeKilledVisitorsResumeOnAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three real nodes and kills one")
	}
	rs := redistest.Server(t, redistest.AOF())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	addrA, addrB, addrC := freePort(t), freePort(t), freePort(t)
	nodeA := startProc(t, addrA, redisNodeArgs(rs.URL())...)
	startProc(t, addrB, redisNodeArgs(rs.URL())...)
	startProc(t, addrC, redisNodeArgs(rs.URL())...)
	baseA, baseB, baseC := "http://"+addrA, "http://"+addrB, "http://"+addrC

	admin, err := client.Login(ctx, baseC, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	const perSide = 4
	s := &sim{perSide: perSide, agents: newAgents(ctx, t, admin, 10, 20, perSide)}
	for i := range 200 {
		v := &simVisitor{simLog: newSimLog(fmt.Sprintf("visitor%d", i)), n: perSide, pause: 100 * time.Millisecond}
		if i%2 == 0 {
			v.bases = []string{baseA, baseB} // A until it dies, then B
		} else {
			v.bases = []string{baseB}
		}
		s.visitors = append(s.visitors, v)
	}
	start := time.Now()
	s.start(ctx)

	s.waitSent(ctx, t, s.total()*35/100)
	t.Logf("SIGKILL node A after %d of %d messages acknowledged (%v)", s.sent.Load(), s.total(), time.Since(start).Round(time.Millisecond))
	nodeA.kill()
	killedAt := s.sent.Load()

	// Every visitor of A must have moved to B, resumed and caught up.
	movedToB := func() bool {
		for i, v := range s.visitors {
			if i%2 != 0 {
				continue
			}
			v.mu.Lock()
			moved := v.dials[baseB] > 0
			v.mu.Unlock()
			if !moved {
				return false
			}
		}
		return true
	}
	s.finish(ctx, t, movedToB)
	t.Logf("%d messages in %d conversations over 3 nodes in %v, %d after the kill", s.total(), len(s.visitors),
		time.Since(start).Round(time.Millisecond), s.total()-killedAt)
	s.verify(ctx, t, admin)
}

func TestClusterRedisRestartLosesNoAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two real nodes and restarts Redis under them")
	}
	rs := redistest.Server(t, redistest.AOF())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	addrA, addrB := freePort(t), freePort(t)
	nodeA := startProc(t, addrA, redisNodeArgs(rs.URL())...)
	nodeB := startProc(t, addrB, redisNodeArgs(rs.URL())...)
	baseA, baseB := "http://"+addrA, "http://"+addrB

	admin, err := client.Login(ctx, baseB, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	const perSide = 6
	s := &sim{perSide: perSide, agents: newAgents(ctx, t, admin, 4, 5, perSide)}
	for i := range 20 {
		s.visitors = append(s.visitors, &simVisitor{simLog: newSimLog(fmt.Sprintf("visitor%d", i)), bases: []string{baseA}, n: perSide, pause: 150 * time.Millisecond})
	}
	s.start(ctx)
	s.waitSent(ctx, t, s.total()/4)

	t.Logf("stopping Redis after %d of %d messages acknowledged", s.sent.Load(), s.total())
	rs.Stop(t)
	for _, base := range []string{baseA, baseB} {
		waitReady(ctx, t, base, http.StatusServiceUnavailable)
	}
	// Clients trying to write meanwhile are told to retry.
	for unavailable(s) == 0 {
		if ctx.Err() != nil {
			t.Fatal("no client was sent a retryable unavailable error while Redis was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	downAt := s.sent.Load()
	rs.Start(t)
	for _, base := range []string{baseA, baseB} {
		waitReady(ctx, t, base, http.StatusOK)
	}
	t.Logf("Redis back; %d retryable unavailable errors sent meanwhile; %d messages acknowledged before it came back", unavailable(s), downAt)

	s.finish(ctx, t, nil)
	for _, p := range []*proc{nodeA, nodeB} {
		select {
		case <-p.done:
			t.Fatalf("a node exited:\n%s", p.logs.String())
		default:
		}
	}
	s.verify(ctx, t, admin)
}

// unavailable counts the unavailable error frames the crowd was sent.
func unavailable(s *sim) int {
	n := 0
	for _, v := range s.visitors {
		v.mu.Lock()
		n += v.unavailable
		v.mu.Unlock()
	}
	for _, a := range s.agents {
		a.mu.Lock()
		n += a.unavailable
		a.mu.Unlock()
	}
	return n
}

// waitReady polls base/readyz until it answers status.
func waitReady(ctx context.Context, t *testing.T, base string, status int) {
	t.Helper()
	var got int
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if got = resp.StatusCode; got == status {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s/readyz answered %d, never %d", base, got, status)
}
