package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
)

// never is a checkpoint interval no test reaches: appends stay in the log.
const never = time.Hour

func openT(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func createConv(t *testing.T, s *Store, id string) {
	t.Helper()
	err := s.CreateConversation(context.Background(), chat.Conversation{
		ID: id, Ref: "LF-" + id, SiteKey: "site", VisitorID: "v", Status: chat.StatusActive, CreatedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func appendN(t *testing.T, s *Store, conv string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		m, created, err := s.AppendMessage(context.Background(), chat.Message{
			ConversationID: conv, ClientID: fmt.Sprint("m", i), Text: fmt.Sprint("text ", i),
			Author: chat.Author{Kind: chat.AuthorVisitor, ID: "v"},
		})
		if err != nil || !created || m.Seq != int64(i) {
			t.Fatalf("append %d to %s = seq %d, created %v, %v", i, conv, m.Seq, created, err)
		}
	}
}

// crashCopy copies the store file and its log, as they are on disk while
// s runs, into a new directory: what a kill -9 would leave behind. No
// bbolt transaction may run meanwhile (the tests append only, and
// checkpoint never).
func crashCopy(t *testing.T, s *Store) string {
	t.Helper()
	src := s.db.Path()
	dst := filepath.Join(t.TempDir(), "crashed.db")
	for i, from := range append([]string{src}, WALFiles(src)...) {
		raw, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		to := append([]string{dst}, WALFiles(dst)...)[i]
		if err := os.WriteFile(to, raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// wantMessages checks that conv holds exactly messages 1..n, in order,
// with their texts.
func wantMessages(t *testing.T, s *Store, conv string, n int) {
	t.Helper()
	ms, err := s.Messages(context.Background(), conv, 0, 0)
	if err != nil {
		t.Fatalf("Messages(%s) = %v", conv, err)
	}
	if len(ms) != n {
		t.Fatalf("Messages(%s) = %d messages, want %d", conv, len(ms), n)
	}
	for i, m := range ms {
		if m.Seq != int64(i+1) || m.Text != fmt.Sprint("text ", i+1) || m.ClientID != fmt.Sprint("m", i+1) {
			t.Fatalf("Messages(%s)[%d] = seq %d %q %q", conv, i, m.Seq, m.ClientID, m.Text)
		}
	}
	c, err := s.Conversation(context.Background(), conv)
	if err != nil || c.LastSeq != int64(n) {
		t.Fatalf("Conversation(%s) = LastSeq %d, %v; want %d", conv, c.LastSeq, err, n)
	}
}

// Acknowledged messages that no checkpoint copied into the B+tree are in
// the log, and a store opened on what a crash left replays them: same
// sequence numbers, retries still recognised, and appends go on after
// them. Replayed messages are in the B+tree, so a third opening, after a
// clean Close, finds the log empty and everything still there once.
func TestCrashReplaysTheLog(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never})
	createConv(t, s, "a")
	createConv(t, s, "b")
	appendN(t, s, "a", 1, 30)
	appendN(t, s, "b", 1, 5)
	if s.pend.len() != 35 {
		t.Fatalf("%d messages pending before the crash, want all 35", s.pend.len())
	}
	path := crashCopy(t, s)

	r := openT(t, path, Options{CheckpointInterval: never})
	if r.pend.len() != 0 {
		t.Errorf("%d messages pending after the replay, want 0 (all stored)", r.pend.len())
	}
	wantMessages(t, r, "a", 30)
	wantMessages(t, r, "b", 5)
	m, created, err := r.AppendMessage(context.Background(), chat.Message{ConversationID: "a", ClientID: "m7", Text: "again"})
	if err != nil || created || m.Seq != 7 || m.Text != "text 7" {
		t.Errorf("retry of a replayed message = seq %d %q created %v, %v; want the stored one", m.Seq, m.Text, created, err)
	}
	appendN(t, r, "a", 31, 40)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	again := openT(t, path, Options{})
	wantMessages(t, again, "a", 40)
	wantMessages(t, again, "b", 5)
}

// A crash in the middle of writing a group leaves a torn record at the
// end of the log. Its group was never acknowledged; everything before it
// is replayed, and the torn bytes are ignored.
func TestCrashWithATornRecord(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never})
	createConv(t, s, "a")
	appendN(t, s, "a", 1, 10)
	path := crashCopy(t, s)
	log := WALFiles(path)[0]
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	// The last record (message 10) loses its tail; then comes junk.
	last := bytes.LastIndex(raw, []byte("text 10"))
	torn := append(raw[:last+3:last+3], bytes.Repeat([]byte{0xA5}, 100)...)
	if err := os.WriteFile(log, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	r := openT(t, path, Options{})
	wantMessages(t, r, "a", 9)
	appendN(t, r, "a", 10, 12)
}

// A conversation deleted while its messages are still only in the log
// does not come back: neither a checkpoint nor a replay stores messages
// of a conversation that is gone.
func TestDeletedConversationIsNotReplayed(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never})
	createConv(t, s, "gone")
	createConv(t, s, "kept")
	appendN(t, s, "gone", 1, 5)
	appendN(t, s, "kept", 1, 3)
	if err := s.DeleteConversation(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Messages(ctx, "gone", 0, 0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("Messages(deleted) = %v, want ErrNotFound", err)
	}
	path := crashCopy(t, s)
	r := openT(t, path, Options{})
	if _, err := r.Messages(ctx, "gone", 0, 0); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("after replay, Messages(deleted) = %v, want ErrNotFound", err)
	}
	wantMessages(t, r, "kept", 3)
	if err := s.flush(ctx); err != nil {
		t.Fatal(err)
	}
	err := s.view(func(tx *bbolt.Tx) error {
		if k, _ := tx.Bucket(bMessages).Cursor().Seek(prefix("gone")); k != nil && hasPrefix(k, prefix("gone")) {
			return fmt.Errorf("checkpoint stored key %q of the deleted conversation", k)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// A log belongs to its store file: put beside another store (a file
// restored from a backup, say), it is not replayed into it.
func TestLogOfAnotherStoreIsIgnored(t *testing.T) {
	a := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never})
	createConv(t, a, "c")
	appendN(t, a, "c", 1, 4)
	crashed := crashCopy(t, a)

	other := filepath.Join(t.TempDir(), "db")
	b := openT(t, other, Options{})
	createConv(t, b, "c")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for i, name := range WALFiles(crashed) {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(WALFiles(other)[i], raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b = openT(t, other, Options{})
	wantMessages(t, b, "c", 0)
	appendN(t, b, "c", 1, 2)
}

// Checkpoints run while appends and reads go on. Every reader sees each
// conversation's messages gap-free, including every message whose append
// has returned, whether it is pending, being stored, or stored.
func TestCheckpointsUnderLoad(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s := openT(t, path, Options{CheckpointInterval: time.Millisecond, NoSync: true})
	const convs, each = 4, 150
	for c := range convs {
		createConv(t, s, fmt.Sprint("c", c))
	}
	var wg sync.WaitGroup
	for c := range convs {
		conv := fmt.Sprint("c", c)
		wg.Go(func() {
			for i := 1; i <= each; i++ {
				m, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: conv, ClientID: fmt.Sprint("m", i), Text: fmt.Sprint("text ", i)})
				if err != nil || m.Seq != int64(i) {
					t.Errorf("append %d to %s = seq %d, %v", i, conv, m.Seq, err)
					return
				}
				ms, err := s.Messages(ctx, conv, 0, 0)
				if err != nil || len(ms) < i {
					t.Errorf("after append %d, Messages(%s) = %d messages, %v", i, conv, len(ms), err)
					return
				}
				for k, got := range ms {
					if got.Seq != int64(k+1) {
						t.Errorf("Messages(%s)[%d].Seq = %d: a gap", conv, k, got.Seq)
						return
					}
				}
				if tail, err := s.Messages(ctx, conv, int64(i-1), 1); err != nil || len(tail) != 1 || tail[0].Seq != int64(i) {
					t.Errorf("Messages(%s, after %d, limit 1) = %v, %v", conv, i-1, tail, err)
					return
				}
				list, err := s.Conversations(ctx, chat.ConversationQuery{SiteKey: "site"})
				if err != nil {
					t.Error(err)
					return
				}
				for _, lc := range list {
					if lc.ID == conv && lc.LastSeq < int64(i) {
						t.Errorf("Conversations: %s LastSeq %d after append %d", conv, lc.LastSeq, i)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := openT(t, path, Options{})
	for c := range convs {
		wantMessages(t, r, fmt.Sprint("c", c), each)
	}
}

// After the log fails to write, nobody knows which bytes of the group
// reached the disk, so the store refuses every later append (and reports
// unready) instead of reusing sequence numbers the disk may hold.
func TestLogFailureStopsAppends(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never})
	createConv(t, s, "c")
	appendN(t, s, "c", 1, 2)
	if err := s.wal.files[s.wal.active].Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		_, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: "c", ClientID: fmt.Sprint("x", i)})
		if !errors.Is(err, errLogFailed) {
			t.Fatalf("append %d after the log failed = %v, want errLogFailed", i, err)
		}
	}
	if err := s.Ping(ctx); !errors.Is(err, errLogFailed) {
		t.Errorf("Ping after the log failed = %v, want errLogFailed", err)
	}
	wantMessages(t, s, "c", 2)
}

// A backup is of the B+tree alone; it first checkpoints the log, so it
// holds every message acknowledged before it.
func TestBackupHoldsPendingMessages(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never})
	createConv(t, s, "c")
	appendN(t, s, "c", 1, 6)
	var buf bytes.Buffer
	if _, err := s.WriteBackup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	wantMessages(t, openT(t, path, Options{}), "c", 6)
	appendN(t, s, "c", 7, 8)
}

// A checkpoint stores a generation in several transactions, so that the
// puts waiting for bbolt's write lock are not held up by all of it; only
// the last records the generation as checkpointed. A crash between two
// leaves part of the generation in the B+tree and all of it in the log:
// Open replays it, and nothing is lost or doubled.
func TestCheckpointInPieces(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never, NoSync: true})
	s.ckptPiece = 2 * ckptConvCost // a and b in the first transaction, c in the second
	piece, resume := make(chan struct{}), make(chan struct{})
	s.pieceHook = func() { piece <- struct{}{}; <-resume }
	for _, id := range []string{"a", "b", "c"} {
		createConv(t, s, id)
		appendN(t, s, id, 1, 6)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- s.flush(context.Background()) }()
	<-piece // a and b stored, c not yet
	crashed := crashCopy(t, s)
	close(resume)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if s.pend.len() != 0 {
		t.Fatalf("%d messages pending after the checkpoint, want 0", s.pend.len())
	}
	for _, id := range []string{"a", "b", "c"} {
		wantMessages(t, s, id, 6)
	}

	r := openT(t, crashed, Options{CheckpointInterval: never})
	for _, id := range []string{"a", "b", "c"} {
		wantMessages(t, r, id, 6)
	}
	appendN(t, r, "c", 7, 8)
}

// A checkpoint given a span starts each transaction when its share of the
// generation's bytes is due, so that its page writes and fsyncs reach the
// disk a few at a time instead of holding up the log's fsyncs in one
// burst; a hurry (pace answering false) writes the rest at once.
func TestCheckpointPaced(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never, NoSync: true})
	s.ckptPiece = 1 // a transaction a conversation
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		createConv(t, s, id)
		appendN(t, s, id, 1, 3)
	}
	var dues []time.Time
	hurryAfter := len(ids)
	s.pace = func(at time.Time) bool {
		dues = append(dues, at)
		return len(dues) < hurryAfter
	}
	store := func(span time.Duration) (time.Time, time.Time) {
		t.Helper()
		dues = nil
		start := time.Now()
		if err := s.storeLogged(s.pend.upTo(math.MaxUint64), 0, span); err != nil {
			t.Fatal(err)
		}
		return start, time.Now()
	}

	// The conversations cost about the same (their messages' encodings
	// differ by a few bytes of timestamp), so the second starts a quarter
	// of the span in, the third half-way, the last three quarters in.
	const span = time.Hour
	const slack = span / 100
	start, end := store(span)
	if len(dues) != len(ids)-1 {
		t.Fatalf("%d paced starts for %d transactions, want %d", len(dues), len(ids), len(ids)-1)
	}
	for i, at := range dues {
		share := span * time.Duration(i+1) / time.Duration(len(ids))
		if at.Before(start.Add(share-slack)) || at.After(end.Add(share+slack)) {
			t.Errorf("transaction %d due %v after the start, want %v", i+2, at.Sub(start), share)
		}
	}
	for _, id := range ids {
		wantMessages(t, s, id, 3)
	}

	hurryAfter = 1
	if store(span); len(dues) != 1 {
		t.Errorf("%d paced starts after a hurry at the first, want 1", len(dues))
	}
	if store(0); len(dues) != 0 {
		t.Errorf("%d paced starts without a span, want none", len(dues))
	}
}

// A flush (and Close) while a paced checkpoint waits between its
// transactions hurries it: the flush does not wait out the span.
func TestFlushHurriesPacedCheckpoint(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: 10 * time.Millisecond, NoSync: true})
	s.ckptPiece = 1
	s.pace = func(time.Time) bool { return s.waitUntil(time.Now().Add(never)) }
	paused := make(chan struct{})
	var once sync.Once
	s.pieceHook = func() { once.Do(func() { close(paused) }) }
	createConv(t, s, "a")
	createConv(t, s, "b")
	n := 0
	for waiting := true; waiting; {
		if n++; n > 2000 {
			t.Fatal("no checkpoint of both conversations started")
		}
		appendN(t, s, "a", n, n)
		appendN(t, s, "b", n, n)
		select {
		case <-paused:
			waiting = false
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.flush(ctx); err != nil {
		t.Fatalf("flush during a paced checkpoint: %v", err)
	}
	if p := s.pend.len(); p != 0 {
		t.Fatalf("%d messages pending after the flush, want 0", p)
	}
	wantMessages(t, s, "a", n)
	wantMessages(t, s, "b", n)
}

// A backlog (the checkpointer stuck while the writer logs on) grows a log
// file past its keep size; once checkpoints run again the file is cut back
// as it is reused, and nothing logged is lost.
func TestLogShrinksAfterABacklog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openT(t, path, Options{CheckpointInterval: never, NoSync: true})
	s.wal.limit, s.wal.keep = 4<<10, 8<<10
	s.ckptPiece = 1
	stuck, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.pieceHook = func() { once.Do(func() { close(stuck); <-release }) }
	createConv(t, s, "a")
	createConv(t, s, "b")
	appendN(t, s, "b", 1, 1)
	size := func() int64 {
		fi, err := os.Stat(WALFiles(path)[1])
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}

	// "a" fills the first file past the limit; the checkpoint of it stops
	// after its first piece (a's messages), and the writer logs on into
	// the second file.
	n := 0
	for waiting := true; waiting; {
		if n++; n > 2000 {
			t.Fatal("no checkpoint started")
		}
		appendN(t, s, "a", n, n)
		select {
		case <-stuck:
			waiting = false
		default:
		}
	}
	for size() <= 3*s.wal.keep {
		if n++; n > 20000 {
			t.Fatal("the backlog did not grow the second log file")
		}
		appendN(t, s, "a", n, n)
	}
	grown := size()

	close(release)
	for size() > s.wal.keep {
		if n++; n > 40000 {
			t.Fatalf("the second log file is still %d bytes after the backlog (%d at its height), want at most %d", size(), grown, s.wal.keep)
		}
		appendN(t, s, "a", n, n)
	}
	wantMessages(t, s, "a", n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := openT(t, path, Options{CheckpointInterval: never})
	wantMessages(t, r, "a", n)
	wantMessages(t, r, "b", 1)
}

// A conversation's Last comes from whichever layer holds its last
// message: the record cache the group commit moves on, the log's pending
// messages, or the B+tree after a replay.
func TestLastMessageFromEveryLayer(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never})
	createConv(t, s, "a")
	createConv(t, s, "b")
	wantLast := func(s *Store, conv, text, layer string) {
		t.Helper()
		c, err := s.Conversation(ctx, conv)
		if err != nil || c.Last == nil || c.Last.Text != text || c.Last.Author != chat.AuthorVisitor {
			t.Fatalf("%s: Conversation(%s) Last = %+v, %v; want %q by the visitor", layer, conv, c.Last, err, text)
		}
	}
	appendN(t, s, "a", 1, 2)
	wantLast(s, "a", "text 2", "pending, read once")
	appendN(t, s, "a", 3, 3)
	wantLast(s, "a", "text 3", "cached, moved on by the commit")
	appendN(t, s, "b", 1, 4)

	r := openT(t, crashCopy(t, s), Options{CheckpointInterval: never})
	wantLast(r, "a", "text 3", "replayed into the B+tree")
	appendN(t, r, "b", 5, 6)
	wantLast(r, "b", "text 6", "pending after a replay")
}

// FuzzReadWAL: a log file is whatever a crash left in it. Groups written
// in turn, cut anywhere and followed by anything, read back as at least
// every group that was whole before the cut, in order and unchanged;
// reading never panics, and what it returns beyond them checked out as
// records of this log.
func FuzzReadWAL(f *testing.F) {
	f.Add("hello\nworld\n\nagain", uint16(40), []byte{0xA5, 0xA5})
	f.Add("", uint16(0), []byte{})
	f.Add("a\nb\n\nc\n\nd", uint16(65535), []byte("junk after a whole log"))
	f.Fuzz(func(t *testing.T, texts string, cut uint16, junk []byte) {
		w := &wal{id: 42, gen: 7}
		var log []byte
		var groups [][]chat.Message
		var ends []int
		for i, g := range strings.Split(texts, "\n\n") {
			var msgs []pendingMsg
			var want []chat.Message
			for j, text := range strings.Split(g, "\n") {
				m := chat.Message{
					ConversationID: fmt.Sprintf("c%d", j%3), Seq: int64(i*1000 + j + 1), ClientID: fmt.Sprintf("k%d.%d", i, j),
					Author: chat.Author{Kind: chat.AuthorVisitor, ID: "v"}, Text: text, At: time.Unix(int64(i), int64(j)).UTC(),
				}
				msgs = append(msgs, newPending(m, encodeMessage(m), 0, clientHash(m.ClientID)))
				want = append(want, m)
			}
			log = append(log, w.record(msgs)...)
			groups = append(groups, want)
			ends = append(ends, len(log))
		}
		n := min(int(cut), len(log))
		lg, err := readWAL(append(log[:n:n], junk...), w.id)
		if err != nil {
			// Only a record that passes its checksum yet does not decode
			// is an error: the junk would have to forge one.
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("readWAL: %v", err)
			}
			return
		}
		var whole []chat.Message
		for i, end := range ends {
			if end <= n {
				whole = append(whole, groups[i]...)
			}
		}
		if len(lg.msgs) < len(whole) {
			t.Fatalf("cut at %d of %d: read %d messages, want at least the %d of whole groups", n, len(log), len(lg.msgs), len(whole))
		}
		if len(whole) > 0 && lg.gen != w.gen {
			t.Fatalf("generation %d, want %d", lg.gen, w.gen)
		}
		for i, want := range whole {
			got := lg.msgs[i].m
			if !got.At.Equal(want.At) {
				t.Fatalf("message %d at %v, want %v", i, got.At, want.At)
			}
			got.At, want.At = time.Time{}, time.Time{}
			if got != want {
				t.Fatalf("message %d = %+v, want %+v", i, got, want)
			}
		}
	})
}

// ObserveSyncs hears of every durable write: appends as writes of the
// log, records and checkpoints as B+tree transactions.
func TestObserveSyncs(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "db"), Options{CheckpointInterval: never})
	var mu sync.Mutex
	seen := map[string]int{}
	s.ObserveSyncs(func(kind string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if d < 0 {
			t.Errorf("%s sync took %v", kind, d)
		}
		seen[kind]++
	})
	count := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(seen)
	}
	createConv(t, s, "a")
	if got := count(); got["tree"] != 1 || got["log"] != 0 {
		t.Fatalf("after creating a conversation: %v, want one tree write", got)
	}
	appendN(t, s, "a", 1, 3)
	if got := count(); got["log"] < 1 || got["log"] > 3 {
		t.Fatalf("after three appends one at a time: %v, want one to three log writes", got)
	}
	if err := s.Close(); err != nil { // the last checkpoint
		t.Fatal(err)
	}
	if got := count(); got["tree"] < 2 || len(got) != 2 {
		t.Fatalf("after closing: %v, want the checkpoint's tree write too, and no other kinds", got)
	}
}
