package chat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Read limits per frame; see docs/protocol.md.
const (
	visitorReadLimit = 64 << 10
	agentReadLimit   = 256 << 10
)

// Buffer sizes of an accepted socket. net/http hands over two 4 KiB
// buffers at hijack, which a node holding tens of thousands of mostly idle
// sockets pays for on every one of them. A frame larger than the read
// buffer is read past it, straight from the kernel; most frames (a chat
// message, a typing notice) fit. Writes need hardly any buffer: between
// hold and release the batchWriter gathers them, and outside a batch only
// control frames are written, whose payload is at most 125 bytes.
const (
	readBufferSize  = 512
	writeBufferSize = 128
)

// Socket is an accepted WebSocket, ready for ServeVisitor or ServeAgent.
type Socket struct {
	conn *websocket.Conn
	out  *batchWriter
	idle *idleWaiter
}

// Accept upgrades r to a WebSocket (opts as for websocket.Accept), with
// buffers sized for many idle sockets and a writer that sends the frames
// queued for a socket with one system call. On error Accept has already
// answered the request.
func Accept(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) (*Socket, error) {
	h := &hijacker{ResponseWriter: w}
	conn, err := websocket.Accept(h, r, opts)
	if err != nil {
		return nil, err
	}
	return &Socket{conn: conn, out: h.out, idle: h.idle}, nil
}

// hijacker swaps net/http's buffers for small ones as the connection is
// handed over, and puts a batchWriter between the socket and the kernel.
type hijacker struct {
	http.ResponseWriter
	out  *batchWriter
	idle *idleWaiter
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, readBufferSize)
	if n := brw.Reader.Buffered(); n > 0 {
		// The client wrote ahead of the handshake's answer. Accept takes
		// what is buffered at hijack, so those bytes go into the new buffer.
		early, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(n, readBufferSize))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("keep bytes sent with the handshake: %w", err)
		}
	}
	h.out = &batchWriter{conn: conn}
	h.idle = newIdleWaiter(conn, br)
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(h.out, writeBufferSize)), nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// batchWriter passes writes through to the connection, except between
// hold and release, when it gathers them so a batch of frames leaves in one
// write. Frames coder/websocket writes on its own (pongs, the close frame)
// may arrive from another goroutine at any time; they take their turn in
// the same order either way.
type batchWriter struct {
	conn net.Conn

	mu      sync.Mutex
	holding bool
	buf     *[]byte
}

// batchBuffers recycles the memory of batches, so a socket holds none while
// it is not writing.
var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBatch keeps one huge batch (a long history) out of the pool.
const maxPooledBatch = 64 << 10

func (w *batchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.holding {
		*w.buf = append(*w.buf, p...)
		return len(p), nil
	}
	return w.conn.Write(p)
}

func (w *batchWriter) hold() {
	w.mu.Lock()
	w.holding = true
	w.buf = batchBuffers.Get().(*[]byte)
	w.mu.Unlock()
}

// release writes what was gathered since hold, within deadline.
func (w *batchWriter) release(deadline time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holding = false
	b := w.buf
	w.buf = nil
	defer func() {
		if cap(*b) <= maxPooledBatch {
			*b = (*b)[:0]
			batchBuffers.Put(b)
		}
	}()
	if len(*b) == 0 {
		return nil
	}
	if err := w.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := w.conn.Write(*b)
	if err == nil {
		err = w.conn.SetWriteDeadline(time.Time{})
	}
	return err
}

// wsTransport adapts a Socket to the hub's transport. This is the only
// file in chat that knows about WebSockets.
type wsTransport struct{ s *Socket }

// write sends frames as one batch. The frames are only copied into memory
// until release, so they need no deadline of their own.
func (t wsTransport) write(frames [][]byte, timeout time.Duration) error {
	t.s.out.hold()
	var err error
	for _, f := range frames {
		if err = t.s.conn.Write(context.Background(), websocket.MessageText, f); err != nil {
			break
		}
	}
	// Whatever was gathered leaves, even after an error: it may hold the
	// close frame that explains it.
	if rerr := t.s.out.release(time.Now().Add(timeout)); err == nil && rerr != nil {
		err = fmt.Errorf("write frames: %w", rerr)
	}
	return err
}

// close runs the close handshake, which reads the socket's buffer while
// the socket's own goroutine may be between reads, looking at it.
func (t wsTransport) close(code StatusCode, reason string) {
	t.s.idle.closing(func() { _ = t.s.conn.Close(websocket.StatusCode(code), reason) })
}

// ServeVisitor runs a visitor's socket for site until it closes. The caller
// has already checked the site and the Origin. Callers in an HTTP handler
// should run it on a goroutine of its own and return, so the request and
// the handler's deep stack are not kept for the life of the socket.
func (h *Hub) ServeVisitor(ctx context.Context, s *Socket, site Site, ip string) {
	s.conn.SetReadLimit(visitorReadLimit)
	c := newClient(h, wsTransport{s}, kindVisitor, ip)
	c.site = site
	h.serve(ctx, c, s, h.handleVisitor)
}

// ServeAgent runs an authenticated agent's socket until it closes; see
// ServeVisitor.
func (h *Hub) ServeAgent(ctx context.Context, s *Socket, agent Agent, ip string) {
	s.conn.SetReadLimit(agentReadLimit)
	c := newClient(h, wsTransport{s}, kindAgent, ip)
	c.agent = agent
	h.serve(ctx, c, s, h.handleAgent)
}

// maxStrikes is how many rate-limited frames in a row close a socket.
const maxStrikes = 5

func (h *Hub) serve(ctx context.Context, c *client, s *Socket, handle func(context.Context, *client, []byte)) {
	r := &socketReader{hub: h, ctx: ctx, c: c, s: s, handle: handle}
	// Where the kernel can tell this goroutine a frame has arrived, it only
	// waits, on a shallow stack the runtime need never grow; all else
	// (registering runs the metrics) runs on a worker.
	run := func(f func()) { f() }
	if s.idle != nil {
		run = h.workers.run
	}
	if run(r.register); !r.registered {
		return
	}
	defer h.unregister(c)
	step := r.step
	for !r.ended {
		s.idle.wait()
		run(step)
	}
}

// socketReader reads and handles one socket's frames, one step at a time.
type socketReader struct {
	hub        *Hub
	ctx        context.Context
	c          *client
	s          *Socket
	handle     func(context.Context, *client, []byte)
	draining   bool // closing after the queued errors are written
	ended      bool
	registered bool
}

func (r *socketReader) register() {
	if r.registered = r.hub.register(r.c); !r.registered {
		_ = r.s.conn.Close(websocket.StatusCode(CloseServiceRestart), "server restarting: reconnect")
	}
}

// step reads and handles a frame, then those already buffered behind it.
func (r *socketReader) step() {
	for {
		typ, data, err := r.s.conn.Read(r.ctx)
		if err != nil {
			if s := websocket.CloseStatus(err); s == -1 && !errors.Is(err, context.Canceled) {
				r.hub.log.Debug("socket read ended", "kind", r.c.kind.String(), "err", err)
			}
			r.ended = true
			return
		}
		r.frame(typ, data)
		if !r.s.idle.buffered() {
			return
		}
	}
}

func (r *socketReader) frame(typ websocket.MessageType, data []byte) {
	if r.draining {
		return // read on so the close handshake can finish
	}
	c := r.c
	now := r.hub.now()
	c.lastActive.Store(now.UnixNano())
	if !c.allow(now) {
		c.sendError(CodeRateLimited, "too many frames; slow down", "", "")
		if c.strikes >= maxStrikes {
			c.closeAfterFlush(ClosePolicy, "rate limit exceeded")
			r.draining = true
		}
		return
	}
	if typ != websocket.MessageText {
		c.sendError(CodeBadFrame, "frames must be JSON text", "", "")
		return
	}
	r.handle(r.ctx, c, data)
}
