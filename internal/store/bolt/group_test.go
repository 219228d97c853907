package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
)

// harness holds the append writer still while appends queue up, so that
// a test decides exactly what one group holds.
type harness struct {
	t       *testing.T
	s       *Store
	batches chan int
	gates   chan chan struct{} // a gate here stops the writer in its next group's hook
	release chan struct{}
	n       int // conversations made
}

func newHarness(t *testing.T) *harness { return newHarnessOpts(t, Options{}) }

func newHarnessOpts(t *testing.T, opts Options) *harness {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	h := &harness{t: t, s: s, batches: make(chan int, 100), gates: make(chan chan struct{}, 1)}
	s.batchHook = h.hook
	return h
}

// hook reports each group's size and, if hold was called, waits for
// unhold.
func (h *harness) hook(n int) {
	h.batches <- n
	select {
	case gate := <-h.gates:
		<-gate
	default:
	}
}

func (h *harness) conv() string {
	h.t.Helper()
	h.n++
	id := fmt.Sprintf("c-%d", h.n)
	err := h.s.CreateConversation(context.Background(), chat.Conversation{
		ID: id, Ref: "LF-" + id, SiteKey: "site", VisitorID: "v", Status: chat.StatusWaiting, CreatedAt: time.Now(),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// hold makes the writer wait, after taking its next group, for unhold.
func (h *harness) hold() {
	h.release = make(chan struct{})
	h.gates <- h.release
}

func (h *harness) unhold() { close(h.release) }

// queued waits until n appends wait in the queue.
func (h *harness) queued(n int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.s.reqs) < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("queue holds %d appends after 10 s, want %d", len(h.s.reqs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type result struct {
	m       chat.Message
	created bool
	err     error
}

// appendAsync starts AppendMessage and returns where its result arrives.
func (h *harness) appendAsync(ctx context.Context, m chat.Message) <-chan result {
	out := make(chan result, 1)
	go func() {
		sm, created, err := h.s.AppendMessage(ctx, m)
		out <- result{sm, created, err}
	}()
	return out
}

func TestGroupCommit(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	convs := []string{h.conv(), h.conv(), h.conv()}
	before := h.s.Stats() // the conversations' own commits
	h.hold()

	// The first append is taken alone and held; the rest queue up behind
	// it and form the second group.
	first := h.appendAsync(ctx, chat.Message{ConversationID: convs[0], ClientID: "first"})
	if n := <-h.batches; n != 1 {
		t.Fatalf("first group = %d appends, want 1", n)
	}
	const perConv, dups = 30, 5
	var results []<-chan result
	for i := range perConv {
		for _, c := range convs {
			results = append(results, h.appendAsync(ctx, chat.Message{ConversationID: c, ClientID: fmt.Sprint("m", i), Text: fmt.Sprint(i)}))
		}
	}
	var dupResults []<-chan result
	for range dups {
		dupResults = append(dupResults, h.appendAsync(ctx, chat.Message{ConversationID: convs[1], ClientID: "dup", Text: "dup"}))
	}
	missing := h.appendAsync(ctx, chat.Message{ConversationID: "nope", ClientID: "x"})
	n := perConv*len(convs) + dups + 1
	h.queued(n)
	h.unhold()

	if r := <-first; r.err != nil || !r.created || r.m.Seq != 1 {
		t.Errorf("first append = seq %d, created %v, %v; want 1, true, nil", r.m.Seq, r.created, r.err)
	}
	if got := <-h.batches; got != n {
		t.Errorf("second group = %d appends, want %d", got, n)
	}
	for _, rc := range results {
		if r := <-rc; r.err != nil || !r.created {
			t.Errorf("AppendMessage = created %v, %v; want true, nil", r.created, r.err)
		}
	}
	created, seqs := 0, map[int64]bool{}
	for _, rc := range dupResults {
		r := <-rc
		if r.err != nil {
			t.Fatalf("AppendMessage(dup) = %v", r.err)
		}
		if r.created {
			created++
		}
		seqs[r.m.Seq] = true
	}
	if created != 1 || len(seqs) != 1 {
		t.Errorf("one ClientID %d times in a group: created %d, seqs %v; want 1 created, one seq", dups, created, seqs)
	}
	if r := <-missing; !errors.Is(r.err, chat.ErrNotFound) {
		t.Errorf("AppendMessage(unknown conversation) in a group = %v, want %v", r.err, chat.ErrNotFound)
	}
	if st := h.s.Stats(); st.Commits-before.Commits != 2 || st.Appends-before.Appends != uint64(n+1) {
		t.Errorf("Stats = %+v after %+v, want 2 commits, %d appends", st, before, n+1)
	}

	wantLen := map[string]int{convs[0]: perConv + 1, convs[1]: perConv + 1, convs[2]: perConv}
	for _, c := range convs {
		msgs, err := h.s.Messages(ctx, c, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != wantLen[c] {
			t.Errorf("len(Messages(%s)) = %d, want %d", c, len(msgs), wantLen[c])
		}
		for i, m := range msgs {
			if m.Seq != int64(i+1) {
				t.Fatalf("Messages(%s)[%d].Seq = %d, want %d", c, i, m.Seq, i+1)
			}
		}
		conv, err := h.s.Conversation(ctx, c)
		if err != nil || conv.LastSeq != int64(wantLen[c]) {
			t.Errorf("Conversation(%s) = LastSeq %d, %v; want %d", c, conv.LastSeq, err, wantLen[c])
		}
	}
}

func TestGroupCommitFailureFailsEveryone(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	good, bad := h.conv(), h.conv()
	// A record that cannot be decoded makes the group's transaction fail.
	err := h.s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bMessages).Put(msgKey(bad, 1), []byte("garbage")) })
	if err != nil {
		t.Fatal(err)
	}
	h.hold()
	first := h.appendAsync(ctx, chat.Message{ConversationID: good, ClientID: "first"})
	<-h.batches
	a := h.appendAsync(ctx, chat.Message{ConversationID: good, ClientID: "a"})
	b := h.appendAsync(ctx, chat.Message{ConversationID: bad, ClientID: "b"})
	h.queued(2)
	h.unhold()
	if r := <-first; r.err != nil {
		t.Fatalf("first append = %v", r.err)
	}
	<-h.batches
	for name, rc := range map[string]<-chan result{"good": a, "bad": b} {
		if r := <-rc; r.err == nil {
			t.Errorf("append to %s conversation in a failed group = created %v, nil; want an error", name, r.created)
		}
	}
	msgs, err := h.s.Messages(ctx, good, 0, 0)
	if err != nil || len(msgs) != 1 {
		t.Errorf("Messages(good) = %d messages, %v; want only the first", len(msgs), err)
	}
	// The writer goes on after a failed group.
	if _, created, err := h.s.AppendMessage(ctx, chat.Message{ConversationID: good, ClientID: "a"}); err != nil || !created {
		t.Errorf("retry after failed group = created %v, %v; want true, nil", created, err)
	}
}

func TestAppendContextDone(t *testing.T) {
	h := newHarness(t)
	c := h.conv()
	h.hold()
	first := h.appendAsync(context.Background(), chat.Message{ConversationID: c, ClientID: "first"})
	<-h.batches
	ctx, cancel := context.WithCancel(context.Background())
	queued := h.appendAsync(ctx, chat.Message{ConversationID: c, ClientID: "late"})
	h.queued(1)
	cancel()
	if r := <-queued; !errors.Is(r.err, context.Canceled) {
		t.Errorf("AppendMessage with ctx cancelled while queued = %v, want %v", r.err, context.Canceled)
	}
	h.unhold()
	<-first
	// A retry stores it once, whether or not the cancelled call got in.
	m, _, err := h.s.AppendMessage(context.Background(), chat.Message{ConversationID: c, ClientID: "late"})
	if err != nil || m.Seq != 2 {
		t.Errorf("retry = seq %d, %v; want 2, nil", m.Seq, err)
	}
	// A ctx already done never queues.
	_, _, err = h.s.AppendMessage(ctx, chat.Message{ConversationID: c, ClientID: "never"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("AppendMessage(done ctx) = %v, want %v", err, context.Canceled)
	}
}

func TestCloseFinishesQueuedAppends(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.conv()
	h.hold()
	first := h.appendAsync(ctx, chat.Message{ConversationID: c, ClientID: "first"})
	<-h.batches
	var queued []<-chan result
	for i := range 10 {
		queued = append(queued, h.appendAsync(ctx, chat.Message{ConversationID: c, ClientID: fmt.Sprint(i)}))
	}
	h.queued(10)
	closed := make(chan error, 1)
	go func() { closed <- h.s.Close() }()
	// New appends are refused as soon as Close has begun.
	deadline := time.Now().Add(10 * time.Second)
	for !h.s.done.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, _, err := h.s.AppendMessage(ctx, chat.Message{ConversationID: c, ClientID: "after"}); !errors.Is(err, chat.ErrClosed) {
		t.Errorf("AppendMessage after Close began = %v, want %v", err, chat.ErrClosed)
	}
	h.unhold()
	if r := <-first; r.err != nil {
		t.Errorf("first append = %v", r.err)
	}
	for _, rc := range queued {
		if r := <-rc; r.err != nil || !r.created {
			t.Errorf("append queued before Close = created %v, %v; want true, nil", r.created, r.err)
		}
	}
	if err := <-closed; err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := h.s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestCommitDelayGathersLaterAppendsWhileGroupsAreShared(t *testing.T) {
	h := newHarnessOpts(t, Options{CommitDelay: time.Second, CommitSiblings: 2, MaxBatch: 2})
	s, batches := h.s, h.batches
	conv := h.conv()
	ctx := context.Background()
	want := func(n int) {
		t.Helper()
		if got := <-batches; got != n {
			t.Fatalf("group = %d appends, want %d", got, n)
		}
	}
	// enqueue hands an append to the writer directly and waits until the
	// writer has taken it from the queue.
	enqueue := func(clientID string) chan appendRes {
		r := &appendReq{ctx: ctx, m: chat.Message{ConversationID: conv, ClientID: clientID, At: time.Now()}, done: make(chan appendRes, 1)}
		s.reqs <- r
		for len(s.reqs) > 0 {
			time.Sleep(time.Millisecond)
		}
		return r.done
	}

	// A lone append does not wait for company: the first group is alone,
	// and it is taken, not held for a second, then held in the hook, so
	// two more queue up behind it and share the next.
	h.hold()
	a := enqueue("a")
	want(1)
	b := h.appendAsync(ctx, chat.Message{ConversationID: conv, ClientID: "b"})
	c := h.appendAsync(ctx, chat.Message{ConversationID: conv, ClientID: "c"})
	h.queued(2)
	h.unhold()
	want(2)

	// Now groups are shared: the writer takes d and waits a second for
	// company; e, sent after d was taken, joins it, and f does not fit
	// (MaxBatch 2).
	d := enqueue("d")
	e := h.appendAsync(ctx, chat.Message{ConversationID: conv, ClientID: "e"})
	f := h.appendAsync(ctx, chat.Message{ConversationID: conv, ClientID: "f"})
	h.queued(2)
	want(2)
	want(1)
	for i, done := range []chan appendRes{a, d} {
		if r := <-done; r.err != nil || !r.created {
			t.Fatalf("append %d = seq %d created %v err %v", i, r.m.Seq, r.created, r.err)
		}
	}
	for i, r := range []result{<-b, <-c, <-e, <-f} {
		if r.err != nil || !r.created {
			t.Fatalf("append %d = seq %d created %v err %v", i, r.m.Seq, r.created, r.err)
		}
	}
}

func TestCommitDelaySparesALoneWriter(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{CommitDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	h := &harness{t: t, s: s}
	conv := h.conv()
	done := make(chan error, 1)
	go func() {
		for i := range 5 {
			if _, _, err := s.AppendMessage(context.Background(), chat.Message{ConversationID: conv, ClientID: fmt.Sprint(i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a lone writer's appends waited for company (commit delay of an hour)")
	}
}

// Groups smaller than CommitSiblings never wait: three writers, each
// appending one message after another, make groups of at most three.
func TestCommitDelaySparesSmallGroups(t *testing.T) {
	h := newHarnessOpts(t, Options{CommitDelay: time.Minute, CommitSiblings: 4})
	s := h.s
	conv := h.conv()
	done := make(chan error, 3)
	for w := range 3 {
		go func() {
			for i := range 20 {
				if _, _, err := s.AppendMessage(context.Background(), chat.Message{ConversationID: conv, ClientID: fmt.Sprint(w, "-", i)}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	deadline := time.After(30 * time.Second)
	for range 3 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("groups of three waited for company (commit delay of a minute, siblings 4)")
		}
	}
}

func TestCommitDelayRunsOut(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{CommitDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	h := &harness{t: t, s: s}
	conv := h.conv()
	for i := range 3 {
		m, created, err := s.AppendMessage(context.Background(), chat.Message{ConversationID: conv, ClientID: fmt.Sprint(i)})
		if err != nil || !created || m.Seq != int64(i+1) {
			t.Fatalf("append %d alone = seq %d created %v err %v", i, m.Seq, created, err)
		}
	}
	// Close during a delay commits what waits and answers it.
	pending := h.appendAsync(context.Background(), chat.Message{ConversationID: conv, ClientID: "last"})
	time.Sleep(time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-pending; r.err != nil && !errors.Is(r.err, chat.ErrClosed) {
		t.Fatalf("append racing Close = %v, want stored or ErrClosed", r.err)
	}
}

// BenchmarkLoggedMiss is the search a new message makes among its
// conversation's pending messages for a retry of itself: at 10,000
// msgs/s over 2,000 conversations a conversation holds 25–50 of them,
// all with client IDs of one length.
func BenchmarkLoggedMiss(b *testing.B) {
	var gc groupConv
	for i := range 50 {
		m := chat.Message{ConversationID: "c", Seq: int64(i + 1), ClientID: fmt.Sprintf("visitor-0042-msg-%06d", i)}
		gc.pending = append(gc.pending, newPending(m, nil, 1, clientHash(m.ClientID)))
	}
	missing := fmt.Sprintf("visitor-0042-msg-%06d", 999999)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := gc.logged(missing, clientHash(missing)); ok {
			b.Fatal("found a message that is not there")
		}
	}
}
