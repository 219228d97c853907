package load

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// conn is one load socket: a small RFC 6455 client over a raw TCP (or
// TLS) connection. The generator shares the node's two cores, so every
// microsecond it spends on itself is taken from the server being
// measured. A general client (net/http's transport, then a WebSocket
// library on top) costs about 300 µs of CPU per dial and tens per frame;
// this one writes the handshake in one piece, reads frames into one
// reused buffer, and frames writes in one reused buffer with one syscall.
// It speaks the same protocol as a browser: masked client frames, pings
// answered with pongs, fragments joined, a close answered and ended.
type conn struct {
	nc net.Conn
	br *bufio.Reader

	wmu  sync.Mutex // one writer at a time (pings, pongs and the send loop)
	wbuf []byte     // the frame being written

	buf []byte // payload of the last message read
}

// readLimit bounds one message from the node, as the widget's does.
const readLimit = 1 << 20

// wsGUID is the handshake's fixed suffix (RFC 6455 §1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// errClosed is what reads return after the node closed the socket.
var errClosed = errors.New("websocket closed by the node")

// target is the node the load dials: --url parsed once, not per socket.
type target struct {
	u    *url.URL
	addr string // host:port to dial
}

// parseTarget checks base (http or https, perhaps with a path prefix).
func parseTarget(base string) (*target, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("bad --url %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--url %q must be http or https", base)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	return &target{u: u, addr: addr}, nil
}

// dial opens a socket at path under the target through d, sending the
// target's origin as a page on it would, and cookie (may be empty) for an
// agent's session.
func (t *target) dial(ctx context.Context, d *net.Dialer, path, cookie string) (*conn, error) {
	u := t.u
	nc, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	if u.Scheme == "https" {
		tc := tls.Client(nc, &tls.Config{ServerName: u.Hostname()})
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	c := &conn{nc: nc, br: bufio.NewReaderSize(nc, 4096)}
	if err := c.handshake(u, path, cookie); err != nil {
		nc.Close()
		return nil, fmt.Errorf("dial %s%s: %w", u, path, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// handshake sends the upgrade request and checks the node's answer.
func (c *conn) handshake(u *url.URL, path, cookie string) error {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	origin := u.Scheme + "://" + u.Host
	req := make([]byte, 0, 256+len(path)+len(cookie))
	req = append(req, "GET "+strings.TrimRight(u.Path, "/")+path+" HTTP/1.1\r\nHost: "+u.Host+
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+key+
		"\r\nOrigin: "+origin+"\r\n"...)
	if cookie != "" {
		req = append(req, "Cookie: "+cookie+"\r\n"...)
	}
	req = append(req, "\r\n"...)
	if _, err := c.nc.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != base64.StdEncoding.EncodeToString(sum[:]) {
		return fmt.Errorf("bad Sec-WebSocket-Accept %q", got)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return fmt.Errorf("bad Upgrade %q", resp.Header.Get("Upgrade"))
	}
	return nil
}

// send writes one text frame.
func (c *conn) send(ctx context.Context, b []byte) error {
	return c.write(ctx, opText, b)
}

// write frames p as one masked frame of opcode op and writes it in one
// call. A deadline on ctx bounds the write.
func (c *conn) write(ctx context.Context, op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = appendFrame(c.wbuf[:0], op, p, mrand.Uint32())
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetWriteDeadline(dl)
		defer c.nc.SetWriteDeadline(time.Time{})
	}
	_, err := c.nc.Write(c.wbuf)
	return err
}

// appendFrame appends a final client frame: opcode op, payload p masked
// with key.
func appendFrame(b []byte, op byte, p []byte, key uint32) []byte {
	b = append(b, 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = binary.LittleEndian.AppendUint32(b, key)
	start := len(b)
	b = append(b, p...)
	maskBytes(b[start:], key)
	return b
}

// maskBytes XORs p with the 4-byte key, in place (the key's first byte
// is its lowest).
func maskBytes(p []byte, key uint32) {
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], key)
	k8 := uint64(key) | uint64(key)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k8)
	}
	for ; i < len(p); i++ {
		p[i] ^= k[i&3]
	}
}

// next reads one message into the conn's buffer, answering pings and
// joining fragments on the way; the bytes are valid until the next call.
// A deadline on ctx bounds the read.
func (c *conn) next(ctx context.Context) ([]byte, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetReadDeadline(dl)
		defer c.nc.SetReadDeadline(time.Time{})
	}
	c.buf = c.buf[:0]
	inMessage := false
	for {
		fin, op, payload, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		switch op {
		case opPing:
			if err := c.write(ctx, opPong, payload); err != nil {
				return nil, err
			}
			continue
		case opPong:
			continue
		case opClose:
			_ = c.write(ctx, opClose, payload[:min(len(payload), 2)])
			return nil, errClosed
		case opText, opBinary:
			if inMessage {
				return nil, errors.New("websocket: new message inside a fragmented one")
			}
			inMessage = true
		case opContinuation:
			if !inMessage {
				return nil, errors.New("websocket: continuation without a message")
			}
		default:
			return nil, fmt.Errorf("websocket: unknown opcode %#x", op)
		}
		if len(c.buf)+len(payload) > readLimit {
			return nil, fmt.Errorf("websocket: message over %d bytes", readLimit)
		}
		c.buf = append(c.buf, payload...)
		if fin {
			return c.buf, nil
		}
	}
}

// readFrame reads one frame; payload aliases the bufio buffer for small
// frames or a scratch slice, valid until the next read.
func (c *conn) readFrame() (fin bool, op byte, payload []byte, err error) {
	h, err := c.br.Peek(2)
	if err != nil {
		return false, 0, nil, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0F
	if h[0]&0x70 != 0 {
		return false, 0, nil, errors.New("websocket: reserved bits set (no extension was agreed)")
	}
	if h[1]&0x80 != 0 {
		return false, 0, nil, errors.New("websocket: the node masked a frame")
	}
	n, hl := int64(h[1]&0x7F), 2
	switch n {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	h, err = c.br.Peek(hl)
	if err != nil {
		return false, 0, nil, err
	}
	switch hl {
	case 4:
		n = int64(binary.BigEndian.Uint16(h[2:]))
	case 10:
		n = int64(binary.BigEndian.Uint64(h[2:]))
	}
	if op >= opClose && (n > 125 || !fin) {
		return false, 0, nil, errors.New("websocket: bad control frame")
	}
	if n < 0 || n > readLimit {
		return false, 0, nil, fmt.Errorf("websocket: frame of %d bytes", n)
	}
	_, _ = c.br.Discard(hl)
	if int(n) <= c.br.Size() {
		// Small frames are read in place; the caller copies them.
		payload, err = c.br.Peek(int(n))
		if err != nil {
			return false, 0, nil, err
		}
		_, _ = c.br.Discard(int(n))
		return fin, op, payload, nil
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return false, 0, nil, err
	}
	return fin, op, payload, nil
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

func (c *conn) closeNow() { _ = c.nc.Close() }

// discard reads and drops frames until the socket ends, answering pings.
func (c *conn) discard(ctx context.Context) {
	for {
		if _, err := c.next(ctx); err != nil {
			return
		}
	}
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
