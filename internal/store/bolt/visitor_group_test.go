package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// Visitor writes share group commits with each other; many at once, including
// repeats of one visitor, end as the last write of each, indexes included.
func TestPutVisitorInGroups(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "v.db"), bolt.Options{NoSync: true})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	const n = 64
	writeInRounds(t, s, n, func(i, round int) error {
		return s.PutVisitor(ctx, chat.Visitor{ID: fmt.Sprint("v", i), SiteKey: "s", Email: fmt.Sprintf("v%d-r%d@example.com", i, round)})
	})
	for i := range n {
		v, err := s.Visitor(ctx, fmt.Sprint("v", i))
		if want := fmt.Sprintf("v%d-r2@example.com", i); err != nil || v.Email != want {
			t.Fatalf("Visitor(v%d) = %+v, %v; want email %s", i, v, err, want)
		}
		for round, want := range []int{0, 0, 1} {
			got, err := s.FindVisitors(ctx, chat.VisitorQuery{SiteKey: "s", Email: fmt.Sprintf("v%d-r%d@example.com", i, round)})
			if err != nil || len(got) != want {
				t.Fatalf("FindVisitors(email of round %d of v%d) = %d visitors, %v; want %d", round, i, len(got), err, want)
			}
		}
	}
}

// Meta writes (the detector's journeys) share group commits too; the last
// write of each key wins, and a key bbolt would refuse is turned away
// before it can fail the group it would have joined.
func TestPutMetaInGroups(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "m.db"), bolt.Options{NoSync: true})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	const n = 64
	writeInRounds(t, s, n, func(i, round int) error {
		if i == 0 && round == 0 {
			if err := s.PutMeta(ctx, strings.Repeat("k", 40000), []byte("x")); !errors.Is(err, chat.ErrInvalid) {
				t.Errorf("PutMeta(40,000-byte key) = %v, want ErrInvalid", err)
			}
		}
		return s.PutMeta(ctx, fmt.Sprint("journey/v", i), fmt.Appendf(nil, `{"round":%d}`, round))
	})
	for i := range n {
		v, err := s.Meta(ctx, fmt.Sprint("journey/v", i))
		if err != nil || string(v) != `{"round":2}` {
			t.Fatalf("Meta(journey/v%d) = %q, %v; want round 2", i, v, err)
		}
	}
	if err := s.PutMeta(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Meta(ctx, "empty"); err != nil || len(v) != 0 {
		t.Fatalf("Meta(empty) = %q, %v; want an empty value", v, err)
	}
}

// writeInRounds runs write for n writers at once, three rounds each, so
// the writes can share group commits.
func writeInRounds(t *testing.T, s *bolt.Store, n int, write func(i, round int) error) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for round := range 3 {
				if err := write(i, round); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.Commits >= uint64(3*n) {
		t.Logf("%d commits for %d writes: no grouping happened this time", st.Commits, 3*n)
	}
}
