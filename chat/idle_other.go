//go:build !linux

package chat

import (
	"bufio"
	"net"
)

// idleWaiter is a no-op off Linux: idle sockets wait in the reader itself.
type idleWaiter struct{}

func newIdleWaiter(net.Conn, *bufio.Reader) *idleWaiter { return nil }

func (*idleWaiter) wait() {}

func (*idleWaiter) buffered() bool { return false }

func (*idleWaiter) closing(close func()) { close() }

// rawWriter does not exist off Linux: every write waits in the kernel
// under a deadline.
type rawWriter struct{}

func newRawWriter(net.Conn) *rawWriter { return nil }

func (*rawWriter) writeNow([]byte) (int, error) { return 0, nil }
