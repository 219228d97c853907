package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// A visitor read from the cache is the caller's own copy.
func TestCachedVisitorIsACopy(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "c.db"), bolt.Options{NoSync: true})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	v := chat.Visitor{ID: "v1", SiteKey: "s", Attributes: map[string]string{"plan": "pro"},
		Context: &chat.VisitContext{Trail: []chat.PageVisit{{Path: "/a"}}}}
	if err := s.PutVisitor(ctx, v); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second read comes from the cache
		got, err := s.Visitor(ctx, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Attributes["plan"] != "pro" || got.Context == nil || got.Context.Trail[0].Path != "/a" {
			t.Fatalf("Visitor = %+v, want the stored attributes and trail", got)
		}
		got.Attributes["plan"] = "changed"
		got.Context.Trail[0].Path = "/changed"
	}
}

// Reads racing with writes of the same records always end on the last
// write: a value read before a commit is never cached after it.
func TestCacheFollowsWrites(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "c.db"), bolt.Options{NoSync: true})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	now := time.Now()
	if err := s.CreateConversation(ctx, chat.Conversation{ID: "c1", Ref: "LF-C1", SiteKey: "s", VisitorID: "v1", Status: chat.StatusWaiting, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutVisitor(ctx, chat.Visitor{ID: "v1", SiteKey: "s"}); err != nil {
		t.Fatal(err)
	}
	const writes = 200
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range writes {
				if _, err := s.Conversation(ctx, "c1"); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Visitor(ctx, "v1"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := 1; i <= writes; i++ {
		if _, err := s.UpdateConversation(ctx, "c1", func(c *chat.Conversation) error { c.Priority = i; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := s.PutVisitor(ctx, chat.Visitor{ID: "v1", SiteKey: "s", Name: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	c, err := s.Conversation(ctx, "c1")
	if err != nil || c.Priority != writes {
		t.Fatalf("Conversation = %+v, %v; want priority %d", c, err, writes)
	}
	v, err := s.Visitor(ctx, "v1")
	if err != nil || v.Name != fmt.Sprint(writes) {
		t.Fatalf("Visitor = %+v, %v; want name %d", v, err, writes)
	}
	// Assign and a message append show through the cache too.
	if _, err := s.Assign(ctx, "c1", "a1", 0, now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: "c1", ClientID: "m1", Text: "hi", Author: chat.Author{Kind: chat.AuthorVisitor}}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Conversation(ctx, "c1"); err != nil || c.Status != chat.StatusActive || c.AgentID != "a1" || c.LastSeq != 1 {
		t.Fatalf("Conversation after assign and append = %+v, %v", c, err)
	}
}

// A site change shows at once, and a cached site is the caller's copy.
func TestCachedSiteFollowsPutSite(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "c.db"), bolt.Options{NoSync: true})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for i, origin := range []string{"a.example", "b.example"} {
		if err := s.PutSite(ctx, chat.Site{Key: "k", Name: "Shop", Origins: []string{origin}, Strings: map[string]string{"hi": origin}}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			site, err := s.Site(ctx, "k")
			if err != nil || len(site.Origins) != 1 || site.Origins[0] != origin || site.Strings["hi"] != origin {
				t.Fatalf("Site after put %d = %+v, %v; want origin %s", i, site, err, origin)
			}
			site.Origins[0], site.Strings["hi"] = "changed", "changed"
		}
	}
}

// LastSeq read through the cache moves with the appends, never backwards,
// and ends at the last one.
func TestCachedLastSeqFollowsAppends(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "c.db"), bolt.Options{NoSync: true})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.CreateConversation(ctx, chat.Conversation{ID: "c1", Ref: "LF-C1", SiteKey: "s", VisitorID: "v1", Status: chat.StatusActive, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 50
	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			var last int64
			for {
				select {
				case <-done:
					return
				default:
				}
				c, err := s.Conversation(ctx, "c1")
				if err != nil {
					t.Error(err)
					return
				}
				if c.LastSeq < last {
					t.Errorf("LastSeq went back from %d to %d", last, c.LastSeq)
					return
				}
				last = c.LastSeq
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				m := chat.Message{ConversationID: "c1", ClientID: fmt.Sprint(w, "-", i), Text: "x", Author: chat.Author{Kind: chat.AuthorVisitor}}
				stored, _, err := s.AppendMessage(ctx, m)
				if err != nil {
					t.Error(err)
					return
				}
				if c, err := s.Conversation(ctx, "c1"); err != nil || c.LastSeq < stored.Seq {
					t.Errorf("after appending seq %d, Conversation = LastSeq %d, %v", stored.Seq, c.LastSeq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	if c, err := s.Conversation(ctx, "c1"); err != nil || c.LastSeq != writers*each {
		t.Fatalf("Conversation = LastSeq %d, %v; want %d", c.LastSeq, err, writers*each)
	}
}
