package chat

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestTryFrameOwesWhatTheKernelCannotTake fills a socket whose peer is not
// reading: frames go out at once until the kernel takes only part of one,
// which is owed; tryFrames then declines, and the next batch sends the owed
// tail first. The peer, reading at last, gets every frame whole and in
// order.
func TestTryFrameOwesWhatTheKernelCannotTake(t *testing.T) {
	ctx, client, s := socketPair(t, nil)
	if s.out.raw == nil {
		t.Fatal("an accepted TCP socket has no raw connection to try writes on")
	}
	_ = s.out.conn.(*rawReader).Conn.(*net.TCPConn).SetWriteBuffer(8 << 10)

	frame := func(i int) []byte {
		return append(fmt.Appendf(nil, "%06d", i), bytes.Repeat([]byte{'a' + byte(i%26)}, 32<<10)...)
	}
	var sent [][]byte
	owed := false
	for i := 0; i < 2000 && !owed; i++ {
		f := frame(i)
		ok, o := s.out.tryFrames([][]byte{f})
		if !ok {
			t.Fatalf("frame %d: the kernel took none of it before taking part of one", i)
		}
		sent = append(sent, f)
		owed = o
	}
	if !owed {
		t.Fatal("2000 frames of 32 KiB went out whole to a peer that does not read")
	}
	if ok, _ := s.out.tryFrames([][]byte{frame(-1)}); ok {
		t.Fatal("tryFrames wrote a frame while part of another was owed")
	}
	last := frame(len(sent))
	sent = append(sent, last)
	done := make(chan error, 1)
	go func() { done <- (wsTransport{s}).write([][]byte{last}, 10*time.Second) }()
	for i, want := range sent {
		_, got, err := client.Read(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %.6q…, want %.6q…", i, got, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
