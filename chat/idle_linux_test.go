package chat

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
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

// pollerConn stands in for the runtime's poller: Read calls f, and after a
// call that finds nothing "wakes" and calls it again, as RawConn.Read
// does once the poller reports the socket readable.
type pollerConn struct {
	syscall.RawConn
	fd    uintptr
	calls int
}

func (p *pollerConn) Read(f func(uintptr) bool) error {
	for p.calls = 1; !f(p.fd); p.calls++ {
		if p.calls == 3 {
			return errors.New("f never reported the socket readable")
		}
	}
	return nil
}

func TestIdleWaiterTrustsTheWakeUp(t *testing.T) {
	server, client := tcpPair(t)
	raw, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	if err := raw.Control(func(f uintptr) { fd = f }); err != nil {
		t.Fatal(err)
	}
	p := &pollerConn{fd: fd}
	w := newIdleWaiter(p, bufio.NewReader(server))

	// Nothing queued: one peek, then the wake-up is taken at its word
	// (here the socket is still empty, which a second peek would see).
	// Each wait peeks afresh rather than trusting the last one's wake-up.
	for i := range 2 {
		if w.wait(); p.calls != 2 {
			t.Fatalf("wait %d on an empty socket called readable %d times, want 2", i, p.calls)
		}
	}
	// Bytes queued: the first peek sees them.
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if w.wait(); p.calls == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the queued byte was never seen by the first peek")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRawReader(t *testing.T) {
	server, client := tcpPair(t)
	r := newRawReader(server, tcpRawConn(server))
	if _, ok := r.(*rawReader); !ok {
		t.Fatalf("a plain TCP socket's reader is %T", r)
	}
	if got, ok := newRawReader(countingConn{Conn: server}, nil).(*rawReader); ok {
		t.Fatalf("a wrapped connection got a raw reader: %v", got)
	}

	// Queued bytes come back from the raw read.
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	got := ""
	for len(got) < 5 {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += string(buf[:n])
	}
	if got != "hello" {
		t.Fatalf("read %q", got)
	}

	// Nothing queued: the read waits in the runtime, deadline and all.
	server.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with nothing queued past the deadline: %v", err)
	}
	server.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(20 * time.Millisecond)
		client.Write([]byte("late"))
	}()
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "late" {
		t.Fatalf("waited read: %q, %v", buf[:n], err)
	}

	// The end of the stream, and a closed socket, read as net.Conn does.
	client.Close()
	if _, err := r.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v", err)
	}
	server.Close()
	if _, err := r.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestRawWriterWritesWhatTheKernelTakes(t *testing.T) {
	server, client := tcpPair(t)
	w := newRawWriter(tcpRawConn(server))
	if n, err := w.writeNow([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("writeNow = %d, %v", n, err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	// A full send buffer takes part, then nothing, never waiting.
	big := make([]byte, 1<<20)
	total := 0
	for range 64 {
		n, err := w.writeNow(big)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if n, _ := w.writeNow(big); n != 0 {
		t.Fatalf("a full send buffer took %d more bytes (after %d)", n, total)
	}
	server.Close()
	if _, err := w.writeNow([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("writeNow after close: %v", err)
	}
}
