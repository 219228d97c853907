package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsServer serves /ws with handle on a coder/websocket socket (the library
// the node uses), checking the Origin and the Cookie the client sent.
func wsServer(t *testing.T, handle func(ctx context.Context, ws *websocket.Conn) error) *httptest.Server {
	t.Helper()
	errs := make(chan error, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/denied":
			http.Error(w, "site not allowed", http.StatusForbidden)
			return
		case "/ws", "/prefix/ws":
		default:
			http.NotFound(w, r)
			return
		}
		if got, want := r.Header.Get("Origin"), "http://"+r.Host; got != want {
			errs <- errors.New("Origin " + got + ", want " + want)
		}
		if c, err := r.Cookie("session"); r.URL.Query().Get("cookie") != "" && (err != nil || c.Value != r.URL.Query().Get("cookie")) {
			errs <- errors.New("cookie not sent")
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			errs <- err
			return
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := handle(ctx, ws); err != nil {
			errs <- err
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		close(errs)
		for err := range errs {
			t.Errorf("server: %v", err)
		}
	})
	return srv
}

func mustTarget(t *testing.T, base string) *target {
	t.Helper()
	tg, err := parseTarget(base)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func dialTest(t *testing.T, srv *httptest.Server, path string) *conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := mustTarget(t, srv.URL).dial(ctx, &net.Dialer{}, path, "session=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.closeNow)
	return c
}

// TestConnEchoesEveryLengthEncoding sends and receives payloads across the
// 7-bit, 16-bit and 64-bit length forms and bigger than the read buffer;
// the node's library checks the masking.
func TestConnEchoesEveryLengthEncoding(t *testing.T) {
	srv := wsServer(t, func(ctx context.Context, ws *websocket.Conn) error {
		ws.SetReadLimit(1 << 20)
		for {
			typ, b, err := ws.Read(ctx)
			if err != nil {
				if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
					return nil
				}
				return err
			}
			if err := ws.Write(ctx, typ, b); err != nil {
				return err
			}
		}
	})
	c := dialTest(t, srv, "/ws?cookie=s3cret")
	ctx := context.Background()
	for _, n := range []int{0, 1, 7, 8, 125, 126, 4095, 4096, 65535, 65536, 300_000} {
		p := bytes.Repeat([]byte("abcdefghijk"), n/11+1)[:n]
		if err := c.send(ctx, p); err != nil {
			t.Fatalf("send %d bytes: %v", n, err)
		}
		got, err := c.next(ctx)
		if err != nil {
			t.Fatalf("read %d bytes: %v", n, err)
		}
		if !bytes.Equal(got, p) {
			t.Fatalf("echo of %d bytes came back as %d different bytes", n, len(got))
		}
	}
	if err := c.write(ctx, opClose, []byte{0x03, 0xE8}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.next(ctx); !errors.Is(err, errClosed) {
		t.Fatalf("after our close the read gave %v, want the node's close", err)
	}
}

// TestConnAnswersPingsAndJoinsFragments: the node's Ping only returns once
// our pong arrives, and a message written in pieces arrives whole.
func TestConnAnswersPingsAndJoinsFragments(t *testing.T) {
	srv := wsServer(t, func(ctx context.Context, ws *websocket.Conn) error {
		ws.CloseRead(ctx) // the pong is read by the library, not us
		if err := ws.Ping(ctx); err != nil {
			return err
		}
		w, err := ws.Writer(ctx, websocket.MessageText)
		if err != nil {
			return err
		}
		for range 3 {
			// Each piece is bigger than the library's buffer, so it
			// leaves as its own frame.
			if _, err := w.Write(bytes.Repeat([]byte("x"), 10_000)); err != nil {
				return err
			}
		}
		if err := w.Close(); err != nil {
			return err
		}
		return ws.Close(websocket.StatusNormalClosure, "bye")
	})
	c := dialTest(t, srv, "/ws")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := c.next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 30_000 || strings.Trim(string(got), "x") != "" {
		t.Fatalf("joined message has %d bytes", len(got))
	}
	if _, err := c.next(ctx); !errors.Is(err, errClosed) {
		t.Fatalf("read after the node's close gave %v", err)
	}
}

// TestDialRefusedSaysWhy: a refused upgrade is an error carrying the
// status and the node's reason; a node behind a path prefix is reached
// under it.
func TestDialRefusedSaysWhy(t *testing.T) {
	srv := wsServer(t, func(context.Context, *websocket.Conn) error { return nil })
	_, err := mustTarget(t, srv.URL).dial(context.Background(), &net.Dialer{}, "/denied", "")
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "site not allowed") {
		t.Fatalf("dial of a refused path gave %v", err)
	}
	c, err := mustTarget(t, srv.URL+"/prefix/").dial(context.Background(), &net.Dialer{}, "/ws", "")
	if err != nil {
		t.Fatalf("a node behind a path prefix: %v", err)
	}
	c.closeNow()
	if _, err := parseTarget("ftp://127.0.0.1:1"); err == nil {
		t.Fatal("an ftp URL was taken")
	}
}

// TestReadFrameRejectsBadFrames: frames a server must not send end the read
// with an error rather than a panic or a huge allocation.
func TestReadFrameRejectsBadFrames(t *testing.T) {
	for name, raw := range map[string][]byte{
		"masked":            {0x81, 0x81, 1, 2, 3, 4, 'x'},
		"reserved bits":     {0xC1, 0x01, 'x'},
		"huge":              {0x81, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		"negative length":   {0x81, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		"long ping":         {0x89, 126, 0x00, 0xFF},
		"lone continuation": {0x80, 0x01, 'x'},
		"unknown opcode":    {0x83, 0x00},
		"truncated":         {0x81, 0x05, 'a', 'b'},
	} {
		c := &conn{br: bufio.NewReader(bytes.NewReader(raw))}
		if _, err := c.next(context.Background()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzReadFrame feeds arbitrary bytes to the reader: it must end with a
// message or an error, never a panic, and never return more than the
// limit. Pings need a writer, so they are answered into a pipe.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0x81, 0x02, 'h', 'i'})
	f.Add([]byte{0x01, 0x01, 'a', 0x80, 0x01, 'b'})
	f.Add([]byte{0x89, 0x00, 0x81, 0x00})
	f.Add([]byte{0x81, 126, 0x00, 0x80})
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go func() { _, _ = io.Copy(io.Discard, b) }()
		c := &conn{nc: a, br: bufio.NewReader(bytes.NewReader(raw))}
		for range 8 {
			m, err := c.next(context.Background())
			if err != nil {
				return
			}
			if len(m) > readLimit {
				t.Fatalf("message of %d bytes", len(m))
			}
		}
	})
}

// assignBeforeWelcome plays a node that answers an agent's hello by
// assigning it conversation c1, then welcoming it.
func assignBeforeWelcome(ctx context.Context, ws *websocket.Conn) error {
	if _, _, err := ws.Read(ctx); err != nil { // the hello
		return err
	}
	for _, f := range []string{
		`{"type":"conversation","conversation":{"id":"c1","agent_id":"a1","status":"active"}}`,
		`{"type":"welcome","agent":{"id":"a1"},"queue":[],"assigned":[]}`,
	} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(f)); err != nil {
			return err
		}
	}
	return nil
}

// A conversation assigned to a load agent before its welcome (the node
// makes an agent available at its hello) is counted as claimed.
func TestAgentCountsClaimsBeforeWelcome(t *testing.T) {
	srv := wsServer(t, func(ctx context.Context, ws *websocket.Conn) error {
		if err := assignBeforeWelcome(ctx, ws); err != nil {
			return err
		}
		ws.Read(ctx) // until the client closes
		return nil
	})
	p := &chatPart{r: &runner{}}
	a := newChatAgent(dialTest(t, srv, "/ws"), "a1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.hello(ctx, p); err != nil {
		t.Fatal(err)
	}
	if n := a.claimedCount(); n != 1 {
		t.Fatalf("claimed %d conversations at the welcome, want the 1 assigned before it", n)
	}
	a.conn.closeNow()
	p.r.wg.Wait()
}

// resolve returns once the node has confirmed each resolve, not as soon as
// the frames are sent: the sockets close right after it.
func TestResolveWaitsForTheNode(t *testing.T) {
	srv := wsServer(t, func(ctx context.Context, ws *websocket.Conn) error {
		if err := assignBeforeWelcome(ctx, ws); err != nil {
			return err
		}
		if _, _, err := ws.Read(ctx); err != nil { // the resolve
			return err
		}
		time.Sleep(300 * time.Millisecond) // a node slow to handle it
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"conversation","conversation":{"id":"c1","agent_id":"a1","status":"resolved"}}`)); err != nil {
			return err
		}
		ws.Read(ctx) // until the client closes
		return nil
	})
	a := newChatAgent(dialTest(t, srv, "/ws"), "a1")
	p := &chatPart{r: &runner{}, agents: []*chatAgent{a}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.hello(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.resolve(ctx)
	if n := a.claimedCount(); n != 0 {
		t.Fatalf("resolve returned with %d conversations unconfirmed, want 0", n)
	}
	a.conn.closeNow()
	p.r.wg.Wait()
}
