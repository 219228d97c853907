package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

func benchConv(b *testing.B, s *bolt.Store, id string) {
	b.Helper()
	err := s.CreateConversation(context.Background(), chat.Conversation{
		ID: id, Ref: "LF-" + id, SiteKey: "bench", VisitorID: "v-" + id, Status: chat.StatusActive, AgentID: "a", CreatedAt: time.Now(),
	})
	if err != nil {
		b.Fatal(err)
	}
}

func benchMessage(conv string, i int) chat.Message {
	return chat.Message{
		ConversationID: conv,
		ClientID:       "c-" + strconv.Itoa(i),
		Author:         chat.Author{Kind: chat.AuthorVisitor, ID: "v-" + conv},
		Text:           "Hi, my card keeps getting declined at checkout. Can you help?",
	}
}

// BenchmarkAppend is one caller appending and waiting for each durable
// commit: bound by fsync.
func BenchmarkAppend(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	defer s.Close()
	benchConv(b, s, "c")
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := s.AppendMessage(ctx, benchMessage("c", i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// parallel64 runs body on 64 goroutines per CPU, as many callers waiting
// on group commits at once, timing only that, and returns how long it took.
func parallel64(b *testing.B, body func(*testing.PB)) time.Duration {
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(body)
	return time.Since(start)
}

// BenchmarkAppendParallel is 64 goroutines per CPU, each appending to its
// own conversation and waiting for its durable ack, as connected visitors
// do; group commit shares each fsync among them.
func BenchmarkAppendParallel(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	defer s.Close()
	const convs = 1024
	for i := range convs {
		benchConv(b, s, fmt.Sprint("c", i))
	}
	before := s.Stats()
	appendParallel(b, s, convs)
	after := s.Stats()
	if c := after.Commits - before.Commits; c > 0 {
		b.ReportMetric(float64(after.Appends-before.Appends)/float64(c), "msgs/commit")
	}
}

// BenchmarkAppendBusyStore is BenchmarkAppendParallel's callers on a
// store whose B+tree already holds 500 conversations of 40 messages, with
// fsync off so that what shows is the CPU of an append: its sequence
// number, the check that its client ID is new, logging and fan-in.
func BenchmarkAppendBusyStore(b *testing.B) {
	const convs, held = 500, 40
	path := filepath.Join(b.TempDir(), "bench.db")
	s := open(b, path, bolt.Options{NoSync: true})
	ctx := context.Background()
	for i := range convs {
		benchConv(b, s, fmt.Sprint("c", i))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for c := next.Add(1) - 1; c < convs; c = next.Add(1) - 1 {
				for i := range held {
					if _, _, err := s.AppendMessage(ctx, benchMessage(fmt.Sprint("c", c), -1-i)); err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil { // checkpoints every message into the B+tree
		b.Fatal(err)
	}
	s = open(b, path, bolt.Options{NoSync: true})
	defer s.Close()
	appendParallel(b, s, convs)
}

// appendParallel times 64 goroutines per CPU appending new messages, each
// to its own of conversations c0 to c<convs-1> (shared once there are more
// goroutines), and reports msgs/s.
func appendParallel(b *testing.B, s *bolt.Store, convs int64) {
	ctx := context.Background()
	var next atomic.Int64
	elapsed := parallel64(b, func(pb *testing.PB) {
		conv := fmt.Sprint("c", next.Add(1)%convs)
		i := 0
		for pb.Next() {
			if _, _, err := s.AppendMessage(ctx, benchMessage(conv, i)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkMessages reads 50 messages after a sequence number, as a
// reconnecting client resumes.
func BenchmarkMessages(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	defer s.Close()
	ctx := context.Background()
	benchConv(b, s, "c")
	const n = 1000
	for i := range n {
		if _, _, err := s.AppendMessage(ctx, benchMessage("c", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		after := int64(i*50) % (n - 50)
		msgs, err := s.Messages(ctx, "c", after, 50)
		if err != nil || len(msgs) != 50 {
			b.Fatalf("Messages = %d, %v", len(msgs), err)
		}
		i++
	}
}

// BenchmarkPutVisitorParallel is 64 goroutines per CPU saying hello at
// once, each hello storing its visitor: the writes share group commits.
// The hub makes time-ordered IDs (UUID version 7), which land at the end
// of the store's indexes; random ones (version 4) are the comparison.
func BenchmarkPutVisitorParallel(b *testing.B) {
	for _, ids := range []struct {
		name string
		new  func() string
	}{
		{"time-ordered", func() string { return uuid.Must(uuid.NewV7()).String() }},
		{"random", uuid.NewString},
	} {
		b.Run(ids.name, func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
			defer s.Close()
			ctx := context.Background()
			elapsed := parallel64(b, func(pb *testing.PB) {
				for pb.Next() {
					v := chat.Visitor{ID: ids.new(), SiteKey: "bench", Locale: "en-GB", CreatedAt: time.Now(), LastSeen: time.Now()}
					if err := s.PutVisitor(ctx, v); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "visitors/s")
		})
	}
}

// BenchmarkStartConversationParallel is 64 goroutines per CPU starting
// conversations at once, as a burst of visitors asking for help does:
// each conversation is created, then assigned to one of 20 agents. Both
// writes join the put writer's group commits.
func BenchmarkStartConversationParallel(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	defer s.Close()
	ctx := context.Background()
	var next atomic.Int64
	elapsed := parallel64(b, func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			c := chat.Conversation{ID: uuid.Must(uuid.NewV7()).String(), Ref: fmt.Sprint("LF-", n), SiteKey: "bench",
				VisitorID: fmt.Sprint("v", n), Status: chat.StatusWaiting, CreatedAt: time.Now()}
			if err := s.CreateConversation(ctx, c); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Assign(ctx, c.ID, fmt.Sprint("agent-", n%20), 0, time.Now()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "conversations/s")
}

// BenchmarkAuditParallel is 64 goroutines per CPU recording agents'
// actions in an audit trail that is already full (audit.Keep entries of
// the size audit.Log writes), as a busy support team's resolves and claims
// do: each action appends to the global trail and the site's.
func BenchmarkAuditParallel(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	defer s.Close()
	ctx := context.Background()
	entry := []byte(`{"at":"2026-11-30T23:59:59.123456789Z","agent_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","agent_email":"sam@example.com","action":"conversation.resolve","site":"site-bench","target":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c","detail":"LF-8K2M"}`)
	const keep = 5000
	for range keep {
		for _, k := range []string{"audit-global", "audit/site-bench"} {
			if err := s.AppendLog(ctx, k, entry, keep); err != nil {
				b.Fatal(err)
			}
		}
	}
	elapsed := parallel64(b, func(pb *testing.PB) {
		for pb.Next() {
			for _, k := range []string{"audit-global", "audit/site-bench"} {
				if err := s.AppendLog(ctx, k, entry, keep); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "actions/s")
}
