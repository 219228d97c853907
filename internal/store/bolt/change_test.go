package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
)

// putGroups holds the put writer at its next group, so that the calls a
// test queues meanwhile form the group after it, in the order queued.
type putGroups struct {
	t     *testing.T
	s     *Store
	sizes chan int
	gate  chan struct{}
	queue int // calls queued behind the held group
}

// holdPuts sends a meta put that the writer takes alone and holds.
func holdPuts(t *testing.T, s *Store) *putGroups {
	t.Helper()
	p := &putGroups{t: t, s: s, sizes: make(chan int, 10), gate: make(chan struct{})}
	held := false
	s.putHook = func(n int) {
		p.sizes <- n
		if !held {
			held = true
			<-p.gate
		}
	}
	plug := make(chan error, 1)
	go func() { plug <- s.PutMeta(context.Background(), "plug", nil) }()
	if n := <-p.sizes; n != 1 {
		t.Fatalf("held group = %d requests, want 1", n)
	}
	t.Cleanup(func() {
		if err := <-plug; err != nil {
			t.Errorf("PutMeta(plug) = %v", err)
		}
	})
	return p
}

// call starts fn and returns once it waits in the put queue.
func (p *putGroups) call(fn func() error) <-chan error {
	p.t.Helper()
	out := make(chan error, 1)
	go func() { out <- fn() }()
	p.queue++
	deadline := time.Now().Add(10 * time.Second)
	for len(p.s.puts) < p.queue {
		if time.Now().After(deadline) {
			p.t.Fatalf("put queue holds %d calls after 10 s, want %d", len(p.s.puts), p.queue)
		}
		time.Sleep(time.Millisecond)
	}
	return out
}

// release lets the held group commit and checks that everything queued
// formed one group.
func (p *putGroups) release() {
	p.t.Helper()
	close(p.gate)
	if n := <-p.sizes; n != p.queue {
		p.t.Fatalf("group = %d requests, want %d", n, p.queue)
	}
}

// In one group, each change sees those before it and a refusal is its
// caller's alone: the rest of the group commits.
func TestGroupChanges(t *testing.T) {
	h := newHarness(t)
	s, ctx := h.s, context.Background()
	taken := h.conv() // reference "LF-c-1"
	p := holdPuts(t, s)
	conv := func(id, ref string) chat.Conversation {
		return chat.Conversation{ID: id, Ref: ref, SiteKey: "site", VisitorID: "v", Status: chat.StatusWaiting, CreatedAt: time.Now()}
	}
	errNo := errors.New("no, says the callback")

	created := p.call(func() error { return s.CreateConversation(ctx, conv("fresh", "LF-FRESH")) })
	refTaken := p.call(func() error { return s.CreateConversation(ctx, conv("other", "lf-"+taken)) })
	assigned := p.call(func() error {
		_, err := s.Assign(ctx, "fresh", "agent", 1, time.Now()) // sees "fresh", created above
		return err
	})
	full := p.call(func() error {
		_, err := s.Assign(ctx, taken, "agent", 1, time.Now()) // sees the assignment above
		return err
	})
	declined := p.call(func() error {
		_, err := s.UpdateConversation(ctx, taken, func(*chat.Conversation) error { return errNo })
		return err
	})
	noVisitor := p.call(func() error {
		_, err := s.UpdateVisitor(ctx, "nobody", func(*chat.Visitor) error { return nil })
		return err
	})
	meta := p.call(func() error { return s.PutMeta(ctx, "after", []byte("x")) })
	p.release()

	for name, c := range map[string]struct {
		got  <-chan error
		want error
	}{
		"create":                    {created, nil},
		"create with a taken ref":   {refTaken, chat.ErrConflict},
		"assign":                    {assigned, nil},
		"assign over capacity":      {full, chat.ErrCapacity},
		"declined update":           {declined, errNo},
		"update of a missing visit": {noVisitor, chat.ErrNotFound},
		"meta":                      {meta, nil},
	} {
		if err := <-c.got; !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s = %v, want %v", name, err, c.want)
		}
	}
	if got, err := s.Conversation(ctx, "fresh"); err != nil || got.Status != chat.StatusActive || got.AgentID != "agent" {
		t.Errorf("Conversation(fresh) = %s with %q, %v; want active with agent", got.Status, got.AgentID, err)
	}
	if _, err := s.Conversation(ctx, "other"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("Conversation(other) = %v, want ErrNotFound", err)
	}
	if got, err := s.Conversation(ctx, taken); err != nil || got.Status != chat.StatusWaiting {
		t.Errorf("Conversation(%s) = %s, %v; want still waiting", taken, got.Status, err)
	}
	if n, err := s.AgentLoad(ctx, "agent"); err != nil || n != 1 {
		t.Errorf("AgentLoad = %d, %v; want 1", n, err)
	}
	if v, err := s.Meta(ctx, "after"); err != nil || string(v) != "x" {
		t.Errorf("Meta(after) = %q, %v", v, err)
	}
}

// A change that fails after it may have written fails its whole group:
// nothing of the group is stored, every caller hears why, and the next
// group commits as usual.
func TestGroupChangeFailureFailsTheGroup(t *testing.T) {
	h := newHarness(t)
	s, ctx := h.s, context.Background()
	p := holdPuts(t, s)
	errDisk := errors.New("the disk is on fire")
	before := p.call(func() error { return s.PutMeta(ctx, "before", []byte("x")) })
	broken := p.call(func() error {
		return s.changeInGroup(ctx, func(tx *bbolt.Tx) error {
			if err := tx.Bucket(bMeta).Put([]byte("half"), metaValue(nil)); err != nil {
				return err
			}
			return errDisk
		}, nil)
	})
	p.release()
	for name, got := range map[string]<-chan error{"meta": before, "change": broken} {
		if err := <-got; !errors.Is(err, errDisk) {
			t.Errorf("%s = %v, want the change's error", name, err)
		}
	}
	for _, k := range []string{"before", "half"} {
		if _, err := s.Meta(ctx, k); !errors.Is(err, chat.ErrNotFound) {
			t.Errorf("Meta(%s) = %v, want ErrNotFound: the group was rolled back", k, err)
		}
	}
	if err := s.PutMeta(ctx, "later", nil); err != nil {
		t.Fatalf("PutMeta after a failed group = %v", err)
	}
}

// Log appends join the put writer's groups (an audit entry is written to
// two logs for each agent's action), and appends to one log in one group
// each see those before them.
func TestLogAppendsInOneGroup(t *testing.T) {
	h := newHarness(t)
	s, ctx := h.s, context.Background()
	p := holdPuts(t, s)
	var done []<-chan error
	for i := range 6 {
		done = append(done, p.call(func() error { return s.AppendLog(ctx, "trail", []byte{byte('a' + i)}, 4) }))
	}
	p.release()
	for _, d := range done {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Log(ctx, "trail", 0)
	if err != nil || len(got) != 4 || string(bytes.Join(got, nil)) != "fedc" {
		t.Fatalf("Log(trail) = %q, %v; want the newest four, newest first: fedc", got, err)
	}
}

// A store written by a version that kept each log whole, as one JSON list
// in the meta bucket, opens with its logs moved to an entry a key, in
// order, and appends go on from the newest.
func TestLogsOfAnOlderVersionMove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		old, _ := json.Marshal([][]byte{[]byte("c"), []byte("b"), []byte("a")}) // newest first
		return tx.Bucket(bMeta).Put([]byte(logPrefix+"audit-global"), old)
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}

	s = openT(t, path, Options{})
	ctx := context.Background()
	want := func(w string) {
		t.Helper()
		got, err := s.Log(ctx, "audit-global", 0)
		if err != nil || string(bytes.Join(got, nil)) != w {
			t.Fatalf("Log(audit-global) = %q, %v; want %s", got, err, w)
		}
	}
	want("cba")
	if err := s.AppendLog(ctx, "audit-global", []byte("d"), 3); err != nil {
		t.Fatal(err)
	}
	want("dcb")
	err = s.view(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bMeta).Get([]byte(logPrefix + "audit-global")); v != nil {
			return errors.New("the old whole log is still in the meta bucket")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
