package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// Visitor writes share group commits with appends; many at once, including
// repeats of one visitor, end as the last write of each, indexes included.
func TestPutVisitorInGroups(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "v.db"), bolt.Options{NoSync: true})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for round := range 3 {
				v := chat.Visitor{ID: fmt.Sprint("v", i), SiteKey: "s", Email: fmt.Sprintf("v%d-r%d@example.com", i, round)}
				if err := s.PutVisitor(ctx, v); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.Commits >= 3*n {
		t.Logf("%d commits for %d writes: no grouping happened this time", st.Commits, 3*n)
	}
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
