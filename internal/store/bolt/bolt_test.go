package bolt_test

import (
	"path/filepath"
	"testing"

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
