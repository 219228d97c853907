package chat

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server *net.TCPConn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); client.Close() })
	return s.(*net.TCPConn), client
}

func TestIdleWaiterWaitsWithoutReading(t *testing.T) {
	server, client := tcpPair(t)
	in := bufio.NewReaderSize(server, 16)
	w := newIdleWaiter(tcpRawConn(server), in)
	if w == nil {
		t.Fatal("no waiter on a TCP connection")
	}
	done := make(chan struct{})
	go func() { w.wait(); close(done) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("wait returned before anything arrived")
	default:
	}
	if _, err := client.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return once bytes arrived")
	}
	// The bytes are still there for the reader, and once one is buffered
	// wait returns at once even though the kernel holds nothing more.
	if b, err := in.ReadByte(); err != nil || b != 'h' {
		t.Fatalf("read %q, %v", b, err)
	}
	w.wait()
	if b, err := in.ReadByte(); err != nil || b != 'i' {
		t.Fatalf("read %q, %v", b, err)
	}

	// A peer that hangs up wakes the waiter too; the read reports it.
	done = make(chan struct{})
	go func() { w.wait(); close(done) }()
	client.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return when the peer closed")
	}
	if _, err := in.ReadByte(); err == nil {
		t.Fatal("read after the peer closed succeeded")
	}
}

func TestIdleWaiterOnlyOnPlainTCP(t *testing.T) {
	server, _ := tcpPair(t)
	w := newIdleWaiter(tcpRawConn(countingConn{Conn: server}), bufio.NewReader(server))
	if w != nil {
		t.Fatal("waiter on a wrapped connection")
	}
	w.wait() // a nil waiter returns at once
}
