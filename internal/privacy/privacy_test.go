package privacy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/audit"
	"github.com/lifelinehq/lifeline/internal/leaktest"
	rstore "github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/redistest"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// dump returns every key and value the store holds, as text, for trace
// scans.
type backend struct {
	name string
	open func(t *testing.T) (chat.Store, func() string)
}

func backends() []backend {
	return []backend{
		{"bolt", func(t *testing.T) (chat.Store, func() string) {
			st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st, nil // the whole-server test scans the bolt file
		}},
		{"redis", func(t *testing.T) (chat.Store, func() string) {
			c := redistest.Shared(t).Client(t)
			prefix := redistest.Prefix(t)
			st := rstore.NewStore(c, rstore.StoreOptions{Prefix: prefix})
			t.Cleanup(func() { st.Close() })
			return st, func() string {
				ctx := context.Background()
				var b strings.Builder
				keys, err := c.Keys(ctx, prefix+"*").Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					b.WriteString(k + "\n")
					switch c.Type(ctx, k).Val() {
					case "string":
						b.WriteString(c.Get(ctx, k).Val())
					case "hash":
						for f, v := range c.HGetAll(ctx, k).Val() {
							b.WriteString(f + "=" + v + "\n")
						}
					case "list":
						b.WriteString(strings.Join(c.LRange(ctx, k, 0, -1).Val(), "\n"))
					case "zset":
						b.WriteString(strings.Join(c.ZRange(ctx, k, 0, -1).Val(), "\n"))
					}
					b.WriteString("\n")
				}
				return b.String()
			}
		}},
	}
}

// convForgetter records the conversations privacy told it to forget; with
// fail set it refuses.
type convForgetter struct {
	mu     sync.Mutex
	forgot []string
	fail   error
}

func (f *convForgetter) ForgetConversation(_ context.Context, site, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.forgot = append(f.forgot, site+"/"+id)
	return nil
}

func (f *convForgetter) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.forgot)
}

func TestExportErase(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			st, dump := be.open(t)
			dir := t.TempDir()
			now := time.Now().UTC()
			v := chat.Visitor{ID: "vis-erase-1", SiteKey: "shop", Email: "ann@example.com", ExternalID: "user-77", CreatedAt: now, LastSeen: now,
				Context: &chat.VisitContext{Trail: []chat.PageVisit{{Path: "/checkout", At: now}}, Offers: 1}}
			other := chat.Visitor{ID: "vis-keep-2", SiteKey: "shop", CreatedAt: now, LastSeen: now}
			for _, x := range []chat.Visitor{v, other} {
				if err := st.PutVisitor(ctx, x); err != nil {
					t.Fatal(err)
				}
			}
			c := chat.Conversation{ID: "conv-erase-1", Ref: "LF-ERAS", SiteKey: "shop", VisitorID: v.ID, Status: chat.StatusActive, AgentID: "agent-1", CreatedAt: now, UpdatedAt: now}
			if err := st.CreateConversation(ctx, c); err != nil {
				t.Fatal(err)
			}
			if _, _, err := st.AppendMessage(ctx, chat.Message{ConversationID: c.ID, ClientID: "m1", Text: "secret-message-text"}); err != nil {
				t.Fatal(err)
			}
			if err := st.AddNote(ctx, chat.Note{ID: "n1", ConversationID: c.ID, Text: "secret-note-text", At: now}); err != nil {
				t.Fatal(err)
			}
			rec := filepath.Join(dir, "shop-2024-05-01.jsonl")
			lines := `{"visit":"shop/vis-erase-1","site":"shop","outcome":"abandoned","events":[]}` + "\n" +
				`{"visit":"shop/vis-keep-2","site":"shop","outcome":"abandoned","events":[]}` + "\n"
			if err := os.WriteFile(rec, []byte(lines), 0o600); err != nil {
				t.Fatal(err)
			}
			trail := audit.New(st, nil)
			forgetter := &convForgetter{}
			svc := New(Options{Store: st, RecordDir: dir, Audit: trail, ConversationForgetters: []ConversationForgetter{forgetter}})

			exp, err := svc.Export(ctx, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			if exp.Visitor.Email != v.Email || exp.Visitor.Context == nil || len(exp.Conversations) != 1 ||
				len(exp.Conversations[0].Messages) != 1 || len(exp.Conversations[0].Notes) != 1 || len(exp.Recordings) != 1 {
				t.Fatalf("Export = %+v, want identity, journey, one conversation with a message and a note, one recording", exp)
			}

			out, err := svc.Erase(ctx, v.ID, Actor{ID: "admin-1", Email: "admin@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			if out.Conversations != 1 || out.Messages != 1 || out.RecordingLines != 1 {
				t.Errorf("Erase = %+v, want 1 conversation, 1 message, 1 recording line", out)
			}
			if got := forgetter.list(); !slices.Equal(got, []string{"shop/" + c.ID}) {
				t.Errorf("conversations forgotten = %q, want [shop/%s]", got, c.ID)
			}
			if _, err := svc.Export(ctx, v.ID); !errors.Is(err, chat.ErrNotFound) {
				t.Errorf("Export after Erase: err = %v, want ErrNotFound", err)
			}
			if _, err := svc.Erase(ctx, v.ID, Actor{}); !errors.Is(err, chat.ErrNotFound) {
				t.Errorf("second Erase: err = %v, want ErrNotFound", err)
			}
			if list, _ := st.FindVisitors(ctx, chat.VisitorQuery{SiteKey: "shop", Email: v.Email}); len(list) != 0 {
				t.Errorf("FindVisitors by email after Erase = %v", list)
			}
			data, _ := os.ReadFile(rec)
			if strings.Contains(string(data), v.ID) || !strings.Contains(string(data), other.ID) {
				t.Errorf("recording after Erase = %q, want only the other visitor", data)
			}
			entries, err := trail.Entries(ctx, "shop", 10)
			if err != nil || len(entries) != 1 || !strings.Contains(entries[0].Detail, Digest(v.ID)) || strings.Contains(fmt.Sprint(entries[0]), v.ID) {
				t.Errorf("audit = %+v, %v; want one entry naming the digest, not the ID", entries, err)
			}
			if dump != nil {
				all := dump()
				for _, needle := range []string{v.ID, v.Email, v.ExternalID, "secret-message-text", "secret-note-text", c.ID, "LF-ERAS"} {
					if strings.Contains(all, needle) {
						t.Errorf("Redis still holds %q", needle)
					}
				}
				if !strings.Contains(all, other.ID) {
					t.Errorf("the dump misses the other visitor: the scan is broken")
				}
			}
		})
	}
}

func TestRetentionSweep(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			st, _ := be.open(t)
			dir := t.TempDir()
			now := time.Now().UTC()
			old := now.AddDate(0, 0, -40)
			if err := st.PutSite(ctx, chat.Site{Key: "shop"}); err != nil {
				t.Fatal(err)
			}
			mk := func(id string, status chat.Status, at time.Time) {
				c := chat.Conversation{ID: id, Ref: "LF-" + strings.ToUpper(id), SiteKey: "shop", VisitorID: "v-" + id, Status: status, CreatedAt: at, UpdatedAt: at}
				if err := st.CreateConversation(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			mk("oldres", chat.StatusResolved, old)
			mk("oldopen", chat.StatusActive, old)
			mk("newres", chat.StatusResolved, now)
			journeys := map[string]*chat.VisitContext{"gone": {Score: 1}, "here": {Score: 1}}
			var mu sync.Mutex
			journey := func(_ context.Context, id string) *chat.VisitContext {
				mu.Lock()
				defer mu.Unlock()
				return journeys[id]
			}
			drop := func(_ context.Context, id string) error {
				mu.Lock()
				defer mu.Unlock()
				delete(journeys, id)
				return nil
			}
			for _, v := range []chat.Visitor{
				{ID: "gone", SiteKey: "shop", LastSeen: old},
				{ID: "here", SiteKey: "shop", LastSeen: now},
			} {
				if err := st.PutVisitor(ctx, v); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range []string{"shop-2000-01-01.jsonl", "shop-" + now.Format("2006-01-02") + ".jsonl"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("{}\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			forgetter := &convForgetter{}
			svc := New(Options{Store: st, RecordDir: dir, Journey: journey, DropJourney: drop, ConversationForgetters: []ConversationForgetter{forgetter}})
			if err := svc.SetRetention(ctx, "shop", Retention{Transcripts: -1}, Actor{}); !errors.Is(err, chat.ErrInvalid) {
				t.Errorf("SetRetention(-1) = %v, want ErrInvalid", err)
			}
			if err := svc.SetRetention(ctx, "shop", Retention{Transcripts: 30, Journeys: 30, Recordings: 30}, Actor{}); err != nil {
				t.Fatal(err)
			}
			w := NewSweeper(svc, SweeperOptions{Batch: 1, Pause: time.Millisecond})
			if err := w.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			for id, want := range map[string]bool{"oldres": false, "oldopen": true, "newres": true} {
				_, err := st.Conversation(ctx, id)
				if got := err == nil; got != want {
					t.Errorf("conversation %s kept = %v, want %v (err %v)", id, got, want, err)
				}
			}
			if got := forgetter.list(); !slices.Equal(got, []string{"shop/oldres"}) {
				t.Errorf("conversations forgotten = %q, want [shop/oldres]", got)
			}
			if journey(ctx, "gone") != nil {
				t.Errorf("journey of a visitor gone 40 days was kept")
			}
			if journey(ctx, "here") == nil {
				t.Errorf("journey of a current visitor was cleared")
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
			if len(files) != 1 || strings.Contains(files[0], "2000") {
				t.Errorf("recording files after sweep = %v, want only today's", files)
			}
			for kind, want := range map[string]float64{"conversation": 1, "journey": 1, "recording_file": 1} {
				if got := w.Removed(kind); got != want {
					t.Errorf("Removed(%s) = %v, want %v", kind, got, want)
				}
			}
		})
	}
}

// TestEraseRetriesAfterAForgetterFails: a conversation whose forgetter
// failed is still there, so running Erase again finishes the job.
func TestEraseRetriesAfterAForgetterFails(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	if err := st.PutVisitor(ctx, chat.Visitor{ID: "v1", SiteKey: "shop", CreatedAt: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateConversation(ctx, chat.Conversation{ID: "c1", Ref: "LF-C1", SiteKey: "shop", VisitorID: "v1", Status: chat.StatusActive, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	forgetter := &convForgetter{fail: errors.New("assist store unreachable")}
	svc := New(Options{Store: st, ConversationForgetters: []ConversationForgetter{forgetter}})
	if _, err := svc.Erase(ctx, "v1", Actor{}); err == nil || !strings.Contains(err.Error(), "assist store unreachable") {
		t.Fatalf("Erase with a failing forgetter = %v, want its error", err)
	}
	if _, err := st.Conversation(ctx, "c1"); err != nil {
		t.Fatalf("conversation after the failed erase: %v, want it kept for the retry", err)
	}
	forgetter.mu.Lock()
	forgetter.fail = nil
	forgetter.mu.Unlock()
	out, err := svc.Erase(ctx, "v1", Actor{})
	if err != nil || out.Conversations != 1 || !slices.Equal(forgetter.list(), []string{"shop/c1"}) {
		t.Fatalf("second Erase = %+v, %v, forgotten %q; want c1 erased and forgotten", out, err, forgetter.list())
	}
}
