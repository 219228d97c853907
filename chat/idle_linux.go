package chat

import (
	"bufio"
	"net"
	"sync"
	"syscall"
	"unsafe"
)

// idleWaiter blocks until a socket has something to read, without reading
// it: an idle socket's goroutine then parks a few frames deep instead of
// inside the WebSocket frame reader, so the collector shrinks its stack to
// a few KiB. A nil idleWaiter does not wait.
type idleWaiter struct {
	raw   syscall.RawConn
	in    *bufio.Reader // the socket's read buffer; bytes there need no wait
	peek  [1]byte
	ready func(fd uintptr) bool // w.readable, bound once rather than per wait
	woken bool                  // the peek found nothing: the next call follows the poller's wake-up

	// mu keeps buffered off the read buffer while coder/websocket's close
	// handshake reads it on another goroutine; see wsTransport.close.
	mu sync.Mutex
}

// newIdleWaiter waits on plain TCP connections only (raw nil otherwise):
// a TLS connection may hold decrypted bytes the kernel cannot see.
func newIdleWaiter(raw syscall.RawConn, in *bufio.Reader) *idleWaiter {
	if raw == nil {
		return nil
	}
	w := &idleWaiter{raw: raw, in: in}
	w.ready = w.readable
	return w
}

// wait returns once a read would not block: bytes are buffered or queued
// in the kernel, or the connection ended or failed (the read that follows
// reports it).
func (w *idleWaiter) wait() {
	if w == nil || w.buffered() {
		return
	}
	w.woken = false
	_ = w.raw.Read(w.ready)
}

// buffered reports whether the socket's read buffer holds bytes.
func (w *idleWaiter) buffered() bool {
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.in.Buffered() > 0
}

// closing runs close, which may read the socket's buffer, with buffered
// kept off it.
func (w *idleWaiter) closing(close func()) {
	if w == nil {
		close()
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	close()
}

// readable peeks at the kernel's queue. MSG_PEEK leaves the byte for the
// reader; EAGAIN means nothing has arrived, and the runtime parks the
// goroutine in its poller until something does. Once woken it does not
// look again: that second peek was half of a busy socket's recvfrom
// calls (a socket waits between nearly every two frames), and in 200,000
// wake-ups at 10,000 messages a second none found the queue empty. A
// wake-up for bytes an earlier read used up is possible, though: then the
// reader waits for the next frame inside the frame reader, as it does
// where there is no idleWaiter.
func (w *idleWaiter) readable(fd uintptr) bool {
	if w.woken {
		return true
	}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&w.peek[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	w.woken = errno == syscall.EAGAIN
	return !w.woken
}

// The socket calls here never block (the sockets are non-blocking, and
// the peek says MSG_DONTWAIT), so they are made with RawSyscall: the
// goroutine keeps its P rather than entering the runtime's system-call
// state. A call in that state that sysmon sees twice (loopback writes
// deliver to the receiver in the call, 15 µs on average on this machine
// class) had its P taken and handed to another thread, and each such
// retake keeps sysmon polling every 20 µs for the next millisecond: at
// 10,000 msgs/s socket reads and writes were 45 % of the node's retakes
// (410 a second), and sysmon's sleeps 4 % of its CPU.

// rawReader is a plain TCP socket whose reads take what is queued with
// one raw read; when nothing is queued, the stream ended, the read failed
// or a deadline passed, the connection's own Read waits or reports it.
// The idle waiter has nearly always seen bytes before a read, so the
// fallback is rare. Reads are serialised by coder/websocket's read lock,
// as its bufio.Reader needs. It is what Hijack hands coder/websocket,
// which reads through whatever net.Conn it is given.
type rawReader struct {
	net.Conn
	raw   syscall.RawConn
	fn    func(fd uintptr) bool // r.read
	p     []byte
	n     int
	errno syscall.Errno
}

// newRawReader returns conn itself for a socket that is not plain TCP
// (raw nil).
func newRawReader(conn net.Conn, raw syscall.RawConn) net.Conn {
	if raw == nil {
		return conn
	}
	r := &rawReader{Conn: conn, raw: raw}
	r.fn = r.read
	return r
}

func (r *rawReader) read(fd uintptr) bool {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.p))), uintptr(len(r.p)))
	r.n, r.errno = int(n), errno
	return true
}

func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return r.Conn.Read(p)
	}
	r.p = p
	err := r.raw.Read(r.fn)
	r.p = nil
	if err == nil && r.errno == 0 && r.n > 0 {
		return r.n, nil
	}
	return r.Conn.Read(p)
}

// rawWriter writes what a plain TCP socket's send buffer takes at once,
// never waiting (a full buffer answers EAGAIN). Its callback is bound
// once, so a write allocates nothing; the caller serialises writes.
type rawWriter struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool // w.write
	b   []byte
	n   int
	err error
}

// newRawWriter returns nil for a socket that is not plain TCP (raw nil).
func newRawWriter(raw syscall.RawConn) *rawWriter {
	if raw == nil {
		return nil
	}
	w := &rawWriter{raw: raw}
	w.fn = w.write
	return w
}

func (w *rawWriter) write(fd uintptr) bool {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(w.b))), uintptr(len(w.b)))
	w.n, w.err = int(n), nil
	if errno != 0 {
		w.n, w.err = 0, errno
	}
	return true
}

// writeNow writes what the kernel takes of b at once: n is 0 when it takes
// nothing, or w is nil.
func (w *rawWriter) writeNow(b []byte) (int, error) {
	if w == nil || len(b) == 0 {
		return 0, nil
	}
	w.b = b
	err := w.raw.Write(w.fn)
	w.b = nil
	if err != nil {
		return 0, err
	}
	if w.err == syscall.EAGAIN || w.err == syscall.EINTR {
		return 0, nil
	}
	if w.err != nil {
		return 0, w.err
	}
	return w.n, nil
}
