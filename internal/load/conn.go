package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/lifelinehq/lifeline/internal/client"
)

// conn is one load socket. Writes are raw bytes built by the caller, and
// reads reuse one buffer, so the generator spends its share of the two
// cores on the protocol, not on its own garbage.
type conn struct {
	ws  *websocket.Conn
	wmu sync.Mutex // one writer at a time (pings and the send loop)
	buf bytes.Buffer
}

// dialWS opens a socket at path with the page's Origin. o's client or
// transport picks the source address; an agent's o.HTTPClient carries
// the session cookie.
func dialWS(ctx context.Context, base, path string, o client.Options) (*conn, error) {
	o.Origin = strings.TrimRight(base, "/")
	ws, err := client.Dial(ctx, base, path, o)
	if err != nil {
		return nil, err
	}
	return &conn{ws: ws}, nil
}

func dialVisitor(ctx context.Context, base, site string, hc *http.Client) (*conn, error) {
	return dialWS(ctx, base, "/ws/visitor?site="+url.QueryEscape(site), client.Options{HTTPClient: hc})
}

// send writes one text frame.
func (c *conn) send(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// next reads one frame into the conn's buffer; the bytes are valid until
// the next call.
func (c *conn) next(ctx context.Context) ([]byte, error) {
	_, r, err := c.ws.Reader(ctx)
	if err != nil {
		return nil, err
	}
	c.buf.Reset()
	if _, err := c.buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return c.buf.Bytes(), nil
}

// until reads frames until one of type typ arrives.
func (c *conn) until(ctx context.Context, typ string) (frame, error) {
	var f frame
	for {
		b, err := c.next(ctx)
		if err != nil {
			return f, err
		}
		if err := decodeFrame(b, &f); err != nil {
			return f, err
		}
		if f.Type == typ {
			return f, nil
		}
		if f.Type == "error" && typ != "error" {
			return f, fmt.Errorf("server answered with error %s while waiting for %s", f.Code, typ)
		}
	}
}

func (c *conn) closeNow() { _ = c.ws.CloseNow() }

// discard reads and drops frames until the socket ends, so pongs and
// control frames are processed.
func (c *conn) discard(ctx context.Context) {
	for {
		_, r, err := c.ws.Reader(ctx)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// eachFrame decodes every frame read from c until the socket breaks and
// calls fn with it and the time it arrived. f is reused: fn must not keep it.
func (c *conn) eachFrame(fn func(f *frame, now time.Time)) {
	var f frame
	for {
		b, err := c.next(context.Background())
		if err != nil {
			return
		}
		now := time.Now()
		if decodeFrame(b, &f) != nil {
			continue
		}
		fn(&f, now)
	}
}
