package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/chat/chattest"
	"github.com/lifelinehq/lifeline/internal/leaktest"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func open(t testing.TB, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	return s
}

func TestStore(t *testing.T) {
	chattest.TestStore(t, func(t *testing.T) chat.Store {
		return open(t, filepath.Join(t.TempDir(), "nested", "dir", "lifeline.db"), bolt.Options{})
	})
}

// TestReopen checks that everything written survives Close and Open:
// records, messages, and every index.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lifeline.db")
	s := open(t, path, bolt.Options{})
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s = %v", what, err)
		}
	}
	must("PutSite", s.PutSite(ctx, chat.Site{Key: "demo", Name: "Demo", CreatedAt: t0}))
	must("PutVisitor", s.PutVisitor(ctx, chat.Visitor{ID: "v1", SiteKey: "demo", Email: "Ava@Example.com", ExternalID: "u42", CreatedAt: t0}))
	must("CreateAgent", s.CreateAgent(ctx, chat.Agent{ID: "a1", Email: "Agent@Example.com", Role: chat.RoleAgent, PasswordHash: []byte("h")}))
	must("PutSession", s.PutSession(ctx, chat.Session{ID: "s1", AgentID: "a1", ExpiresAt: t0.Add(time.Hour)}))
	for i, id := range []string{"c1", "c2"} {
		must("CreateConversation", s.CreateConversation(ctx, chat.Conversation{
			ID: id, Ref: "LF-" + id, SiteKey: "demo", VisitorID: "v1", Status: chat.StatusWaiting,
			CreatedAt: t0.Add(time.Duration(i) * time.Second),
		}))
	}
	_, err := s.Assign(ctx, "c1", "a1", 0, t0)
	must("Assign", err)
	const n = 100
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: "c1", ClientID: fmt.Sprint("m", i), Text: fmt.Sprint(i)})
			if err != nil {
				t.Errorf("AppendMessage = %v", err)
			}
		})
	}
	wg.Wait()
	must("AddNote", s.AddNote(ctx, chat.Note{ID: "n1", ConversationID: "c1", Text: "note"}))
	_, err = s.PutMetaIfAbsent(ctx, "secret", []byte("x"))
	must("PutMetaIfAbsent", err)
	must("Close", s.Close())

	s = open(t, path, bolt.Options{})
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Site(ctx, "demo"); err != nil {
		t.Errorf("Site after reopen = %v", err)
	}
	if vs, err := s.FindVisitors(ctx, chat.VisitorQuery{SiteKey: "demo", Email: "ava@example.com"}); err != nil || len(vs) != 1 {
		t.Errorf("FindVisitors(email) after reopen = %d, %v; want 1", len(vs), err)
	}
	if vs, err := s.FindVisitors(ctx, chat.VisitorQuery{SiteKey: "demo", ExternalID: "u42"}); err != nil || len(vs) != 1 {
		t.Errorf("FindVisitors(external ID) after reopen = %d, %v; want 1", len(vs), err)
	}
	if a, err := s.AgentByEmail(ctx, "agent@example.com"); err != nil || string(a.PasswordHash) != "h" {
		t.Errorf("AgentByEmail after reopen = %+v, %v", a, err)
	}
	if _, err := s.Session(ctx, "s1", t0); err != nil {
		t.Errorf("Session after reopen = %v", err)
	}
	if c, err := s.ConversationByRef(ctx, "lf-c1"); err != nil || c.LastSeq != n || c.AgentID != "a1" {
		t.Errorf("ConversationByRef after reopen = LastSeq %d, agent %s, %v; want %d, a1", c.LastSeq, c.AgentID, err, n)
	}
	if load, err := s.AgentLoad(ctx, "a1"); err != nil || load != 1 {
		t.Errorf("AgentLoad after reopen = %d, %v; want 1", load, err)
	}
	if cs, err := s.Conversations(ctx, chat.ConversationQuery{Statuses: []chat.Status{chat.StatusWaiting}}); err != nil || len(cs) != 1 || cs[0].ID != "c2" {
		t.Errorf("Conversations(waiting) after reopen = %v, %v; want c2", cs, err)
	}
	msgs, err := s.Messages(ctx, "c1", 0, 0)
	if err != nil || len(msgs) != n {
		t.Fatalf("Messages after reopen = %d, %v; want %d", len(msgs), err, n)
	}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("Messages[%d].Seq = %d, want %d", i, m.Seq, i+1)
		}
	}
	if notes, err := s.Notes(ctx, "c1"); err != nil || len(notes) != 1 {
		t.Errorf("Notes after reopen = %d, %v; want 1", len(notes), err)
	}
	if v, err := s.PutMetaIfAbsent(ctx, "secret", []byte("y")); err != nil || string(v) != "x" {
		t.Errorf("PutMetaIfAbsent after reopen = %q, %v; want x", v, err)
	}
	// Appends continue the sequence, and old client IDs are still known.
	if m, created, err := s.AppendMessage(ctx, chat.Message{ConversationID: "c1", ClientID: "m7"}); err != nil || created || m.Text != "7" {
		t.Errorf("AppendMessage(old client ID) after reopen = %q, created %v, %v; want 7, false", m.Text, created, err)
	}
	if m, created, err := s.AppendMessage(ctx, chat.Message{ConversationID: "c1", ClientID: "new"}); err != nil || !created || m.Seq != n+1 {
		t.Errorf("AppendMessage after reopen = seq %d, created %v, %v; want %d, true", m.Seq, created, err, n+1)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lifeline.db")
	s := open(t, path, bolt.Options{})
	defer s.Close()
	if s2, err := bolt.Open(path, bolt.Options{Timeout: 50 * time.Millisecond}); err == nil {
		s2.Close()
		t.Fatalf("second Open of a file in use = nil error, want a timeout")
	}
}

// TestAppendBatches checks that concurrent appends share commits.
func TestAppendBatches(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "lifeline.db"), bolt.Options{})
	defer s.Close()
	const writers, each = 64, 20
	for w := range writers {
		err := s.CreateConversation(ctx, chat.Conversation{ID: fmt.Sprint("c", w), Ref: fmt.Sprint("LF-", w), SiteKey: "s", VisitorID: "v", Status: chat.StatusWaiting})
		if err != nil {
			t.Fatal(err)
		}
	}
	before := s.Stats() // the conversations' own commits
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: fmt.Sprint("c", w), ClientID: fmt.Sprint(i)}); err != nil {
					t.Errorf("AppendMessage = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	st.Commits -= before.Commits
	st.Appends -= before.Appends
	if st.Appends != writers*each {
		t.Errorf("Stats().Appends = %d, want %d", st.Appends, writers*each)
	}
	// Not a timing claim: with 64 writers waiting on fsync, groups form.
	if st.Commits >= st.Appends {
		t.Errorf("Stats() = %+v: every append committed alone, want groups", st)
	}
	t.Logf("%d appends in %d commits (%.1f per commit)", st.Appends, st.Commits, float64(st.Appends)/float64(st.Commits))
}

func TestPutSessionPurgesExpired(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "lifeline.db"), bolt.Options{})
	defer s.Close()
	past := time.Now().Add(-time.Hour)
	for _, sess := range []chat.Session{
		{ID: "old", AgentID: "a", ExpiresAt: past},
		{ID: "new", AgentID: "a", ExpiresAt: time.Now().Add(time.Hour)},
	} {
		if err := s.PutSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	// Asked as of a time it was valid, the expired session is gone.
	if _, err := s.Session(ctx, "old", past.Add(-time.Minute)); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("Session(expired, purged) = %v, want %v", err, chat.ErrNotFound)
	}
	if _, err := s.Session(ctx, "new", time.Now()); err != nil {
		t.Errorf("Session(new) = %v", err)
	}
	// Extending moves the session in the expiry index: it is not purged.
	if err := s.PutSession(ctx, chat.Session{ID: "new", AgentID: "a", ExpiresAt: time.Now().Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, chat.Session{ID: "other", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, "new", time.Now().Add(90*time.Minute)); err != nil {
		t.Errorf("Session(extended) = %v", err)
	}
}
