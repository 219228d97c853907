package chat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// countingListener counts the writes made on the connections it accepts.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return countingConn{c, l.writes}, err
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// acceptServer serves one socket with Accept and hands it over. With
// writes nil the socket is a plain *net.TCPConn, whose writes are tried
// without waiting first.
func acceptServer(t *testing.T, writes *atomic.Int64) (*httptest.Server, <-chan *Socket) {
	t.Helper()
	socks := make(chan *Socket, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			t.Error(err)
			return
		}
		socks <- s
	}))
	if writes != nil {
		srv.Listener = countingListener{srv.Listener, writes}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, socks
}

// socketPair accepts one socket (see acceptServer) and dials it with
// coder/websocket, reading messages up to 1 MiB; all of it ends with the
// test.
func socketPair(t *testing.T, writes *atomic.Int64) (context.Context, *websocket.Conn, *Socket) {
	t.Helper()
	srv, socks := acceptServer(t, writes)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.CloseNow() })
	client.SetReadLimit(1 << 20)
	s := <-socks
	t.Cleanup(func() { s.conn.CloseNow() })
	return ctx, client, s
}

func TestSocketBatchLeavesInOneWrite(t *testing.T) {
	var writes atomic.Int64
	ctx, client, s := socketPair(t, &writes)
	got := make(chan []byte, 64)
	go func() { // the client reads all along, so its pings get their pongs
		defer close(got)
		for {
			_, b, err := client.Read(ctx)
			if err != nil {
				return
			}
			got <- b
		}
	}()
	next := func() []byte {
		b, ok := <-got
		if !ok {
			t.Fatal("client read ended")
		}
		return b
	}

	// Small frames, one past the write buffer and one past the pooled size.
	frames := [][]byte{[]byte(`{"n":1}`), bytes.Repeat([]byte("a"), 3*writeBufferSize), []byte(`{"n":3}`), bytes.Repeat([]byte("b"), maxPooledBatch+1), []byte(`{"n":5}`)}
	for round := range 3 {
		before := writes.Load()
		if err := (wsTransport{s}).write(frames, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if n := writes.Load() - before; n != 1 {
			t.Errorf("round %d: %d frames took %d writes, want 1", round, len(frames), n)
		}
		for i, want := range frames {
			if b := next(); !bytes.Equal(b, want) {
				t.Fatalf("round %d frame %d: got %d bytes, want %d", round, i, len(b), len(want))
			}
		}
	}

	// Outside a batch, coder/websocket's own frames (here a pong) go
	// straight out, and a batch after them still arrives whole.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the server must read for the ping to be answered
		defer wg.Done()
		_, _, _ = s.conn.Read(ctx)
	}()
	if err := client.Ping(ctx); err != nil {
		t.Fatalf("ping outside a batch: %v", err)
	}
	if err := (wsTransport{s}).write(frames[:1], time.Second); err != nil {
		t.Fatal(err)
	}
	if b := next(); !bytes.Equal(b, frames[0]) {
		t.Fatalf("after ping: %q", b)
	}
	client.CloseNow()
	wg.Wait()
}

// A client may send its first frame right behind the handshake, before
// the answer; those bytes are in net/http's buffer at hijack and must not
// be lost when Accept swaps the buffers.
func TestAcceptKeepsBytesSentWithTheHandshake(t *testing.T) {
	var writes atomic.Int64
	srv, socks := acceptServer(t, &writes)
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	payload := []byte(`{"type":"hello"}`)
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload))}
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", srv.Listener.Addr(), key)
	if _, err := nc.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake answered %s", resp.Status)
	}
	s := <-socks
	defer s.conn.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, got, err := s.conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("read %q, want %q", got, payload)
	}
}

// TestNoDataFrameAfterClose: once coder/websocket has written the close
// frame, the hub's frames are refused rather than sent after it.
func TestNoDataFrameAfterClose(t *testing.T) {
	ctx, client, s := socketPair(t, nil)
	if _, err := s.out.Write([]byte{0x88, 0x02, 0x03, 0xE8}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.out.tryFrames([][]byte{[]byte(`{}`)}); ok {
		t.Error("tryFrames wrote after the close frame")
	}
	if err := (wsTransport{s}).write([][]byte{[]byte(`{}`)}, time.Second); !errors.Is(err, errCloseSent) {
		t.Errorf("write after the close frame gave %v", err)
	}
	if _, _, err := client.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("the peer read %v, want the close frame first", err)
	}
}
