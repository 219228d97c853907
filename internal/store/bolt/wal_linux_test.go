package bolt

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

// The log written with O_DIRECT (block by block, each group rewriting the
// block the log ends in) reads back as written, group sizes from a few
// bytes to several blocks, across a rotation and after falling back to
// the page cache halfway.
func TestDirectLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	w, logged, err := openWAL(path, 42, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if len(logged) != 0 || !w.direct {
		t.Fatalf("a new log: %d generations logged, direct %v; want none, and O_DIRECT on this file system", len(logged), w.direct)
	}
	var want [2][]chat.Message
	seq := int64(0)
	for i, size := range []int{1, 3, 4000, 90, 5000, 12000, 7, 4096 - walHeader - 40, 1, 9000} {
		if i == 5 {
			if _, err := w.rotate(); err != nil {
				t.Fatal(err)
			}
		}
		if i == 8 {
			if err := w.buffered(); err != nil {
				t.Fatal(err)
			}
		}
		var msgs []pendingMsg
		for j := range 1 + i%3 {
			seq++
			m := chat.Message{ConversationID: "c", Seq: seq, ClientID: fmt.Sprint("k", seq), Author: chat.Author{Kind: chat.AuthorVisitor, ID: "v"},
				Text: strings.Repeat(string(rune('a'+j)), size), At: time.Unix(seq, 0).UTC()}
			msgs = append(msgs, newPending(m, encodeMessage(m), 0, clientHash(m.ClientID)))
			want[w.active] = append(want[w.active], m)
		}
		if err := w.write(msgs); err != nil {
			t.Fatalf("group %d: %v", i, err)
		}
		if w.direct && int64(len(w.tail)) != w.off%walBlock {
			t.Fatalf("group %d: %d bytes kept of the last block, want %d", i, len(w.tail), w.off%walBlock)
		}
	}
	for i, name := range WALFiles(path) {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lg, err := readWAL(raw, 42)
		if err != nil {
			t.Fatal(err)
		}
		if len(lg.msgs) != len(want[i]) {
			t.Fatalf("%s: read %d messages, want %d", name, len(lg.msgs), len(want[i]))
		}
		for k, m := range want[i] {
			if got := lg.msgs[k].m; got.Seq != m.Seq || got.Text != m.Text {
				t.Fatalf("%s: message %d is seq %d with %d bytes, want seq %d with %d", name, k, got.Seq, len(got.Text), m.Seq, len(m.Text))
			}
		}
	}
}

// A file system that refuses O_DIRECT for the second log file puts the
// first one, already open with it, back on the page cache too, and the
// log works as before.
func TestLogWithoutDirect(t *testing.T) {
	open := openLogFile
	t.Cleanup(func() { openLogFile = open })
	openLogFile = func(name string, flags int) (*os.File, error) {
		if flags&syscall.O_DIRECT != 0 && strings.HasSuffix(name, ".wal1") {
			return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EINVAL}
		}
		return open(name, flags)
	}
	path := filepath.Join(t.TempDir(), "db")
	w, _, err := openWAL(path, 42, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if w.direct {
		t.Fatal("O_DIRECT still on after the second file refused it")
	}
	for i, f := range w.files {
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFL, 0)
		if errno != 0 || flags&syscall.O_DIRECT != 0 {
			t.Fatalf("file %d: flags %#x (%v), want no O_DIRECT", i, flags, errno)
		}
	}
	m := chat.Message{ConversationID: "c", Seq: 1, ClientID: "k1", Author: chat.Author{Kind: chat.AuthorVisitor, ID: "v"}, Text: "hello", At: time.Unix(1, 0).UTC()}
	if err := w.write([]pendingMsg{newPending(m, encodeMessage(m), 0, clientHash(m.ClientID))}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(WALFiles(path)[0])
	if err != nil {
		t.Fatal(err)
	}
	if lg, err := readWAL(raw, 42); err != nil || len(lg.msgs) != 1 || lg.msgs[0].m.Text != "hello" {
		t.Fatalf("read back %+v, %v; want the one message", lg.msgs, err)
	}
	if fi, err := os.Stat(WALFiles(path)[0]); err != nil || fi.Size()%walBlock == 0 {
		t.Fatalf("log file size %v (%v): want the record's own length, written through the page cache", fi.Size(), err)
	}
}
