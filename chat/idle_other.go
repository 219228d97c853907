//go:build !linux

package chat

import (
	"bufio"
	"net"
	"syscall"
)

// idleWaiter is a no-op off Linux: idle sockets wait in the reader itself.
type idleWaiter struct{}

func newIdleWaiter(syscall.RawConn, *bufio.Reader) *idleWaiter { return nil }

func (*idleWaiter) wait() {}

func (*idleWaiter) buffered() bool { return false }

func (*idleWaiter) closing(close func()) { close() }

// rawWriter does not exist off Linux: every write waits in the kernel
// under a deadline.
type rawWriter struct{}

func newRawWriter(syscall.RawConn) *rawWriter { return nil }

func (*rawWriter) writeNow([]byte) (int, error) { return 0, nil }

// newRawReader returns conn: off Linux every read goes through the runtime.
func newRawReader(conn net.Conn, _ syscall.RawConn) net.Conn { return conn }
