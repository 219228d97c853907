package chat

import (
	"sync"
	"sync/atomic"
	"time"
)

// StatusCode is a WebSocket close code.
type StatusCode int

// Close codes the hub uses; see docs/protocol.md.
const (
	CloseNormal         StatusCode = 1000
	CloseGoingAway      StatusCode = 1001
	ClosePolicy         StatusCode = 1008
	CloseTooBig         StatusCode = 1009
	CloseInternal       StatusCode = 1011
	CloseServiceRestart StatusCode = 1012
)

// transport is the write side of one socket. The single file that imports
// coder/websocket adapts a real connection to it; tests use fakes.
type transport interface {
	// write sends frames in order, all within timeout, after anything
	// tryWrite left owed.
	write(frames [][]byte, timeout time.Duration) error
	// tryWrite sends frames in one write at once if the socket takes it
	// without waiting, on the caller's goroutine; false means nothing was
	// sent. owed means part of it is still to go, sent by the next write.
	tryWrite(frames [][]byte) (ok, owed bool)
	close(code StatusCode, reason string)
}

type clientKind uint8

const (
	kindVisitor clientKind = iota + 1
	kindAgent
)

func (k clientKind) String() string {
	if k == kindAgent {
		return "agent"
	}
	return "visitor"
}

// client is one connected socket. It has one reader (the goroutine serving
// the socket) and a writer goroutine that exists only while frames are
// queued, so an idle connection costs no goroutine beyond its reader. A
// frame for a visitor sent while nothing is queued is written by the
// sender itself if the kernel takes it at once, as it nearly always does.
type client struct {
	hub  *Hub
	t    transport
	kind clientKind
	ip   string

	// Set at hello, then read-only.
	site    Site
	visitor string // visitor id
	agent   Agent
	helloed bool

	lastActive atomic.Int64 // unix nanoseconds of the last frame read

	mu         sync.Mutex
	queue      [][]byte
	replays    int // frames in queue that replay history; see replayLocked
	writing    bool
	owed       bool      // tryWrite left part of a frame for the writer
	corked     bool      // frames wait for uncork; see cork
	writeSince time.Time // when the write in progress began; zero between writes
	closed     bool
	cursors    map[string]int64 // conversation id → highest seq sent
	rooms      map[string]bool  // conversations attached; true = assigned/own
	conv       string           // visitor: current conversation id
	lastPos    int              // visitor: last queue position sent
	lastETA    int

	// Token bucket, touched only by the reader goroutine.
	tokens  float64
	tokenAt time.Time
	strikes int

	closeAfter *closeRequest // set by closeAfterFlush; guarded by mu
}

func newClient(h *Hub, t transport, kind clientKind, ip string) *client {
	c := &client{hub: h, t: t, kind: kind, ip: ip, cursors: make(map[string]int64), rooms: make(map[string]bool)}
	c.tokens = float64(h.cfg.FrameBurst)
	c.tokenAt = h.now()
	c.lastActive.Store(c.tokenAt.UnixNano())
	return c
}

// stuckAfter is how long a write must have been blocked before a full
// queue marks its client as too slow, and maxQueueFactor times SendQueue
// the most live frames a client may have queued whatever its writes do.
const (
	stuckAfter     = time.Second
	maxQueueFactor = 16
)

// send queues a frame. A client too slow to take its frames is closed, so
// it can never stall the hub or other clients: SendQueue live frames
// wait behind a write blocked for stuckAfter (its peer stopped reading),
// or maxQueueFactor times that many wait at all. Frames that pile up
// while this node is too busy to run the client's writer (an agent
// taking hundreds of conversations' messages a second on a saturated
// node) do not close it before the hard limit.
func (c *client) send(frame []byte) {
	c.mu.Lock()
	c.sendLocked(frame)
	c.mu.Unlock()
}

func (c *client) sendLocked(frame []byte) {
	if c.closed {
		return
	}
	if live := len(c.queue) - c.replays; live >= c.hub.cfg.SendQueue {
		stuck := !c.writeSince.IsZero() && c.hub.now().Sub(c.writeSince) >= stuckAfter
		if stuck || live >= maxQueueFactor*c.hub.cfg.SendQueue {
			c.closeLocked(ClosePolicy, "send queue full: reconnect and resume")
			c.hub.metrics.SlowConsumer()
			return
		}
	}
	c.enqueueLocked(frame)
}

// replayLocked queues a frame of history the client asked for (the
// messages and notes after its cursor when it joins a conversation, or
// those a broker gap skipped). Such a burst can be far longer than
// SendQueue (an agent coming back to thirty busy conversations) without
// the client being slow, so replayed frames do not count against it.
func (c *client) replayLocked(frame []byte) {
	if c.closed {
		return
	}
	if c.enqueueLocked(frame) {
		c.replays++
	}
}

// enqueueLocked queues frame and sees it written: a visitor's queue at once
// on the caller's goroutine if no writer is busy, the client is not
// corked and the socket takes it, else by the writer, started if need be.
// It reports whether the frame is left queued.
//
// A visitor gets a frame now and then (an ack, a reply), each better sent
// at once than handed to a writer. An agent may get hundreds a second
// from many conversations; those wait for the writer, which sends all
// that gathered meanwhile in one write, where writing each at once would
// cost a system call per frame and contend for the client's lock.
func (c *client) enqueueLocked(frame []byte) (queued bool) {
	c.queue = append(c.queue, frame)
	if c.writing || c.corked {
		return true
	}
	return c.kickLocked()
}

// kickLocked sees the queue written, at once for a visitor whose socket
// takes it, else by a writer; it reports whether the queue is left to the
// writer. No writer may be busy.
func (c *client) kickLocked() (queued bool) {
	if c.kind == kindVisitor && c.flushNowLocked() {
		return false
	}
	c.startWriterLocked()
	return true
}

// flushNowLocked writes the queue on the caller's goroutine if the socket
// takes it at once, and reports whether it did (an owed tail gets a
// writer).
func (c *client) flushNowLocked() bool {
	ok, owed := c.t.tryWrite(c.queue)
	if !ok {
		return false
	}
	clear(c.queue)
	c.queue, c.replays = c.queue[:0], 0
	if owed {
		c.owed = true
		c.startWriterLocked()
	}
	return true
}

// cork holds the frames sent to c until uncork, which writes them together:
// the echo of a visitor's message and its ack leave in one write.
func (c *client) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

func (c *client) uncork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if !c.writing && !c.closed && len(c.queue) > 0 {
		c.kickLocked()
	}
}

func (c *client) startWriterLocked() {
	c.writing = true
	c.hub.wg.Add(1)
	c.hub.workers.start(c.writeLoop)
}

func (c *client) writeLoop() {
	defer c.hub.wg.Done()
	var batch [][]byte
	for {
		c.mu.Lock()
		c.writeSince = time.Time{} // the last write, if any, is done
		if (len(c.queue) == 0 && !c.owed) || c.closed {
			c.writing = false
			c.queue = nil
			if c.closeAfter != nil {
				c.closeLocked(c.closeAfter.code, c.closeAfter.reason)
			}
			c.mu.Unlock()
			return
		}
		batch, c.queue, c.replays, c.owed = c.queue, batch[:0], 0, false
		c.writeSince = c.hub.now()
		c.mu.Unlock()
		err := c.t.write(batch, c.hub.cfg.WriteTimeout)
		clear(batch)
		if err != nil {
			c.close(CloseGoingAway, "write failed")
			c.mu.Lock()
			c.writing, c.owed = false, false
			c.queue = nil
			c.mu.Unlock()
			return
		}
	}
}

// closeAfterFlush closes the client once the frames already queued (the
// errors explaining why) are written.
func (c *client) closeAfterFlush(code StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.writing {
		c.closeLocked(code, reason)
		return
	}
	c.closeAfter = &closeRequest{code, reason}
}

type closeRequest struct {
	code   StatusCode
	reason string
}

func (c *client) close(code StatusCode, reason string) {
	c.mu.Lock()
	c.closeLocked(code, reason)
	c.mu.Unlock()
}

func (c *client) closeLocked(code StatusCode, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	c.queue, c.replays = nil, 0
	// Closing waits for the peer's close frame; never do it under the lock.
	c.hub.wg.Add(1)
	go func() {
		defer c.hub.wg.Done()
		c.t.close(code, reason)
	}()
}

func (c *client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// deliver sends a message unless the client has already been sent it;
// replay says it is history the client asked for (see replayLocked).
// Callers hold the room lock, so messages reach a client in seq order.
func (c *client) deliver(m *Message, frame []byte, replay bool) {
	c.mu.Lock()
	if m.Seq > c.cursors[m.ConversationID] {
		c.cursors[m.ConversationID] = m.Seq
		if replay {
			c.replayLocked(frame)
		} else {
			c.sendLocked(frame)
		}
	}
	c.mu.Unlock()
}

// replay queues a frame of history; see replayLocked.
func (c *client) replay(frame []byte) {
	c.mu.Lock()
	c.replayLocked(frame)
	c.mu.Unlock()
}

// allow spends one token of the client's frame budget.
func (c *client) allow(now time.Time) bool {
	cfg := &c.hub.cfg
	c.tokens += now.Sub(c.tokenAt).Seconds() * cfg.FrameRate
	if c.tokens > float64(cfg.FrameBurst) {
		c.tokens = float64(cfg.FrameBurst)
	}
	c.tokenAt = now
	if c.tokens < 1 {
		c.strikes++
		return false
	}
	c.tokens--
	c.strikes = 0
	return true
}

func (c *client) sendError(code, msg, id, clientID string) {
	c.hub.metrics.ErrorSent(code)
	c.send(encode(errorFrame{Type: TypeError, Code: code, Message: msg, Retryable: retryable(code), ID: id, ClientID: clientID}))
}

func retryable(code string) bool {
	return code == CodeRateLimited || code == CodeUnavailable || code == CodeInternal
}
