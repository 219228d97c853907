package chat

import (
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

func (t stuckTransport) close(code StatusCode, _ string) { t.closed <- code }

// A client whose live frames pile up past SendQueue is closed as too slow;
// history it asked for (replayed frames) never counts against it.
func TestSlowConsumerClosedButReplayIsNot(t *testing.T) {
	h, err := NewHub(Config{Store: fanoutStore{}, Secret: []byte("0123456789abcdef"), SendQueue: 4})
	if err != nil {
		t.Fatal(err)
	}
	tr := stuckTransport{writing: make(chan struct{}, 1), release: make(chan struct{}), closed: make(chan StatusCode, 1)}
	c := newClient(h, tr, kindAgent, "127.0.0.1")
	c.send([]byte(`{"n":0}`))
	<-tr.writing // the writer holds that frame and is stuck

	for range 100 {
		c.replay([]byte(`{"history":true}`))
	}
	for range 4 {
		c.send([]byte(`{"live":true}`))
	}
	select {
	case code := <-tr.closed:
		t.Fatalf("closed (%d) with 100 replayed and 4 live frames queued, the limit being 4 live", code)
	default:
	}
	if c.isClosed() {
		t.Fatal("closed with 100 replayed and 4 live frames queued")
	}
	c.send([]byte(`{"live":true}`))
	select {
	case code := <-tr.closed:
		if code != ClosePolicy {
			t.Fatalf("closed with %d, want %d", code, ClosePolicy)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a fifth live frame behind a stuck writer did not close the client")
	}
	close(tr.release)
	h.wg.Wait()
}
