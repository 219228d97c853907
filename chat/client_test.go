package chat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuckTransport is a socket whose peer stops reading: a write blocks
// until release is closed.
type stuckTransport struct {
	writing chan struct{}
	release chan struct{}
	closed  chan StatusCode
}

func (t stuckTransport) write([][]byte, time.Duration) error {
	select {
	case t.writing <- struct{}{}:
	default:
	}
	<-t.release
	return nil
}

// tryWrite takes nothing: the peer's window is full.
func (stuckTransport) tryWrite([][]byte) (ok, owed bool) { return false, false }

func (t stuckTransport) close(code StatusCode, _ string) { t.closed <- code }

// fakeClock is a Config.Now that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// stuckClient returns a client with SendQueue 4 whose first frame's write
// is blocked, and its transport.
func stuckClient(t *testing.T, clock *fakeClock) (*Hub, *client, stuckTransport) {
	t.Helper()
	h, err := NewHub(Config{Store: fanoutStore{}, Secret: []byte("0123456789abcdef"), SendQueue: 4, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	tr := stuckTransport{writing: make(chan struct{}, 1), release: make(chan struct{}), closed: make(chan StatusCode, 1)}
	c := newClient(h, tr, kindAgent, "127.0.0.1")
	c.send([]byte(`{"n":0}`))
	<-tr.writing // the writer holds that frame and is stuck
	return h, c, tr
}

func wantOpen(t *testing.T, c *client, tr stuckTransport, what string) {
	t.Helper()
	select {
	case code := <-tr.closed:
		t.Fatalf("closed (%d) with %s", code, what)
	default:
	}
	if c.isClosed() {
		t.Fatalf("closed with %s", what)
	}
}

func wantClosed(t *testing.T, tr stuckTransport, what string) {
	t.Helper()
	select {
	case code := <-tr.closed:
		if code != ClosePolicy {
			t.Fatalf("closed with %d, want %d", code, ClosePolicy)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("not closed with %s", what)
	}
}

// A client whose peer stops reading is closed as too slow once SendQueue
// live frames wait behind a write blocked for stuckAfter; history it asked
// for (replayed frames) never counts against it.
func TestSlowConsumerClosedButReplayIsNot(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	h, c, tr := stuckClient(t, clock)
	for range 100 {
		c.replay([]byte(`{"history":true}`))
	}
	for range 5 {
		c.send([]byte(`{"live":true}`))
	}
	wantOpen(t, c, tr, "100 replayed and 5 live frames queued behind a write blocked for no time")
	clock.add(stuckAfter)
	c.send([]byte(`{"live":true}`))
	wantClosed(t, tr, "6 live frames behind a write blocked for stuckAfter")
	close(tr.release)
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Frames that pile up while the write in progress is not (yet) stuck, as
// when the node is too busy to run the writer, are let be up to
// maxQueueFactor times SendQueue: then the client is closed anyway.
func TestFullQueueClosesAClientAtTheHardLimit(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	h, c, tr := stuckClient(t, clock)
	for range maxQueueFactor*4 - 1 {
		c.send([]byte(`{"live":true}`))
	}
	wantOpen(t, c, tr, fmt.Sprint(maxQueueFactor*4-1, " live frames queued"))
	c.send([]byte(`{"live":true}`))
	c.send([]byte(`{"live":true}`))
	wantClosed(t, tr, fmt.Sprint(maxQueueFactor*4+1, " live frames queued"))
	close(tr.release)
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// recordingTransport takes frames at once or leaves part owed, as told,
// and records what each write was given.
type recordingTransport struct {
	mu     sync.Mutex
	owe    bool     // tryWrite leaves part of the frame owed
	tried  []string // frames tryWrite took
	writes [][]string
	wrote  chan struct{}
}

func (t *recordingTransport) tryWrite(frames [][]byte) (ok, owed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var w []string
	for _, f := range frames {
		w = append(w, string(f))
	}
	t.tried = append(t.tried, strings.Join(w, "+"))
	return true, t.owe
}

func (t *recordingTransport) write(frames [][]byte, _ time.Duration) error {
	t.mu.Lock()
	var w []string
	for _, f := range frames {
		w = append(w, string(f))
	}
	t.writes = append(t.writes, w)
	t.mu.Unlock()
	t.wrote <- struct{}{}
	return nil
}

func (*recordingTransport) close(StatusCode, string) {}

// waitWriterDone waits, a bounded while, for c's writer to find its queue
// empty and end.
func waitWriterDone(t *testing.T, c *client) {
	t.Helper()
	for range 10000 {
		c.mu.Lock()
		writing := c.writing
		c.mu.Unlock()
		if !writing {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the writer did not end")
}

// A visitor's frame goes out on the sender's goroutine when the socket
// takes it; an owed tail gets a writer that flushes it; corked frames leave
// together at uncork; an agent's frames always go to the writer, to be
// batched.
func TestVisitorFramesWrittenAtOnceAgentFramesBatched(t *testing.T) {
	h, err := NewHub(Config{Store: fanoutStore{}, Secret: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())

	vt := &recordingTransport{wrote: make(chan struct{}, 4)}
	v := newClient(h, vt, kindVisitor, "127.0.0.1")
	v.send([]byte(`{"n":1}`))
	if len(vt.tried) != 1 || len(v.queue) != 0 || v.writing {
		t.Fatalf("visitor frame: tried %q, queued %d, writing %v; want it written at once", vt.tried, len(v.queue), v.writing)
	}
	vt.mu.Lock()
	vt.owe = true
	vt.mu.Unlock()
	v.send([]byte(`{"n":2}`))
	<-vt.wrote // the writer flushes the owed tail with an empty batch
	vt.mu.Lock()
	if len(vt.writes) != 1 || len(vt.writes[0]) != 0 {
		t.Fatalf("after an owed tail the writer wrote %q, want one empty flush", vt.writes)
	}
	vt.mu.Unlock()
	waitWriterDone(t, v) // else the corked frames below would queue behind it

	// Corked, frames wait and then leave in one write.
	vt.mu.Lock()
	vt.owe, vt.tried = false, nil
	vt.mu.Unlock()
	v.cork()
	v.send([]byte(`{"echo":1}`))
	v.send([]byte(`{"ack":1}`))
	if len(vt.tried) != 0 {
		t.Fatalf("corked visitor wrote %q", vt.tried)
	}
	v.uncork()
	if len(vt.tried) != 1 || vt.tried[0] != `{"echo":1}+{"ack":1}` {
		t.Fatalf("uncork wrote %q, want the echo and the ack in one write", vt.tried)
	}

	at := &recordingTransport{wrote: make(chan struct{}, 4)}
	a := newClient(h, at, kindAgent, "127.0.0.1")
	a.send([]byte(`{"n":3}`))
	<-at.wrote
	at.mu.Lock()
	defer at.mu.Unlock()
	if len(at.tried) != 0 || len(at.writes) != 1 || at.writes[0][0] != `{"n":3}` {
		t.Fatalf("agent frame: tried %q, writes %q; want it only through the writer", at.tried, at.writes)
	}
}
