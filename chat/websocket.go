package chat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
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
// message, a typing notice) fit. Writes need hardly any buffer: the hub's
// frames are framed by the frameWriter, so coder/websocket writes only
// control frames, whose payload is at most 125 bytes.
const (
	readBufferSize  = 512
	writeBufferSize = 128
)

// Socket is an accepted WebSocket, ready for ServeVisitor or ServeAgent.
type Socket struct {
	conn *websocket.Conn
	out  *frameWriter
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
// handed over, and puts a frameWriter between the socket and the kernel.
type hijacker struct {
	http.ResponseWriter
	out  *frameWriter
	idle *idleWaiter
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	raw := tcpRawConn(conn)
	conn = newRawReader(conn, raw)
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
	h.out = &frameWriter{conn: conn, raw: newRawWriter(raw)}
	h.idle = newIdleWaiter(raw, br)
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(h.out, writeBufferSize)), nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// frameWriter writes a socket's frames. The hub's frames are framed here,
// a batch of them into one buffer that leaves in one write; coder/websocket
// writes only its control frames (pongs, the close frame) through Write,
// each in one call since they fit its 128-byte buffer. The mutex keeps
// the two from interleaving.
//
// On a plain TCP socket a write is first tried without waiting: the
// kernel nearly always takes it whole, and then no deadline needs setting
// (two timer updates per write). tryFrames goes further and writes frames
// on the caller's goroutine, sparing the hand-off to a writer; if the
// kernel takes only part, the rest is owed and the next writeFrames sends
// it first.
type frameWriter struct {
	conn net.Conn
	raw  *rawWriter // nil unless conn is plain TCP on Linux

	mu      sync.Mutex
	closed  bool    // a close frame has left: no more data frames
	owed    *[]byte // the unsent tail of what tryFrames began, from owedOff
	owedOff int
}

// tcpRawConn is conn's raw file descriptor if conn is plain TCP, else nil.
// The idle waiter and the frame writer share it.
func tcpRawConn(conn net.Conn) syscall.RawConn {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// frameBuffers recycles the memory of batches, so a socket holds none while
// it is not writing.
var frameBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBatch keeps one huge batch (a long history) out of the pool.
const maxPooledBatch = 64 << 10

func putFrameBuffer(b *[]byte) {
	if cap(*b) <= maxPooledBatch {
		*b = (*b)[:0]
		frameBuffers.Put(b)
	}
}

// errCloseSent is a data write after the close frame.
var errCloseSent = errors.New("websocket: close frame already sent")

// Write takes one whole control frame from coder/websocket.
func (w *frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.payOwed(time.Now().Add(controlWriteTimeout)); err != nil {
		return 0, err
	}
	if len(p) > 0 && p[0]&0x0F == 0x8 {
		w.closed = true
	}
	return w.conn.Write(p)
}

// controlWriteTimeout bounds the owed bytes a control frame waits behind;
// coder/websocket gives its control writes five seconds.
const controlWriteTimeout = 5 * time.Second

// writeFrames sends frames as text frames in one write, after anything
// owed, all within deadline.
func (w *frameWriter) writeFrames(frames [][]byte, deadline time.Time) error {
	b := frameBatch(frames)
	defer putFrameBuffer(b)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed && len(frames) > 0 {
		return errCloseSent
	}
	if err := w.payOwed(deadline); err != nil {
		return err
	}
	return w.writeAll(*b, deadline)
}

// tryFrames writes frames as text frames in one write if nothing is owed
// and the kernel takes at least part of it at once; it reports false,
// having written nothing, otherwise. owed says part is still to be sent by
// writeFrames.
func (w *frameWriter) tryFrames(frames [][]byte) (ok, owed bool) {
	if w.raw == nil {
		return false, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.owed != nil {
		return false, false
	}
	b := frameBatch(frames)
	n, err := w.raw.writeNow(*b)
	switch {
	case err != nil || n == 0:
		putFrameBuffer(b)
		return false, false
	case n < len(*b):
		w.owed, w.owedOff = b, n
		return true, true
	}
	putFrameBuffer(b)
	return true, false
}

// payOwed sends what tryFrames left unsent.
func (w *frameWriter) payOwed(deadline time.Time) error {
	if w.owed == nil {
		return nil
	}
	b, off := w.owed, w.owedOff
	w.owed = nil
	defer putFrameBuffer(b)
	return w.writeAll((*b)[off:], deadline)
}

// writeAll writes b, waiting at most until deadline for the kernel to
// take what it does not take at once.
func (w *frameWriter) writeAll(b []byte, deadline time.Time) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.raw.writeNow(b)
	if err != nil {
		return err
	}
	if n == len(b) {
		return nil
	}
	if err := w.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err = w.conn.Write(b[n:])
	if err == nil {
		err = w.conn.SetWriteDeadline(time.Time{})
	}
	return err
}

// frameBatch frames frames as text frames into a pooled buffer.
func frameBatch(frames [][]byte) *[]byte {
	b := frameBuffers.Get().(*[]byte)
	for _, f := range frames {
		*b = appendTextFrame(*b, f)
	}
	return b
}

// appendTextFrame appends p as one final, unmasked text frame.
func appendTextFrame(b, p []byte) []byte {
	b = append(b, 0x81)
	switch n := len(p); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

// wsTransport adapts a Socket to the hub's transport. This is the only
// file in chat that knows about WebSockets.
type wsTransport struct{ s *Socket }

func (t wsTransport) write(frames [][]byte, timeout time.Duration) error {
	if err := t.s.out.writeFrames(frames, time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("write frames: %w", err)
	}
	return nil
}

func (t wsTransport) tryWrite(frames [][]byte) (ok, owed bool) { return t.s.out.tryFrames(frames) }

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
		buf := frameBufs.Get().(*bytes.Buffer)
		typ, err := r.read(buf)
		if err != nil {
			putFrameBuf(buf)
			if s := websocket.CloseStatus(err); s == -1 && !errors.Is(err, context.Canceled) {
				r.hub.log.Debug("socket read ended", "kind", r.c.kind.String(), "err", err)
			}
			r.ended = true
			return
		}
		r.frame(typ, buf.Bytes())
		putFrameBuf(buf)
		if !r.s.idle.buffered() {
			return
		}
	}
}

// read reads the next frame into buf, as websocket.Conn.Read does into a
// fresh slice.
func (r *socketReader) read(buf *bytes.Buffer) (websocket.MessageType, error) {
	typ, rd, err := r.s.conn.Reader(r.ctx)
	if err != nil {
		return 0, err
	}
	buf.Reset()
	_, err = buf.ReadFrom(rd)
	return typ, err
}

// frameBufs holds the buffers frames are read into. A frame's handler
// copies whatever it keeps (a Detector must not keep the raw events it is
// given), so the buffer is reused once the frame is handled.
// websocket.Conn.Read grows a fresh slice with io.ReadAll for every frame:
// 3.5 KiB of garbage for a 1.5 KiB events frame, a quarter of all a node
// streaming behaviour events allocated. Pooled rather than kept per
// socket, so an idle socket holds none.
var frameBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledFrame is the largest buffer frameBufs keeps: a rare big frame
// (an agent's long message) does not pin its buffer.
const maxPooledFrame = 16 << 10

// putFrameBuf returns buf to frameBufs unless it grew past maxPooledFrame.
func putFrameBuf(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledFrame {
		frameBufs.Put(buf)
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
