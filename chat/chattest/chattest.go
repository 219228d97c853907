// Package chattest holds the conformance suites that every chat.Store and
// chat.Broker implementation runs from its tests.
//
// The suites assume nothing about the implementation or its backend: every
// record they write has a fresh random ID, so they also pass against a
// backend shared with other tests (a Redis server or cluster with a key
// prefix per test).
//
// An implementation runs them from its own tests:
//
//	func TestStore(t *testing.T) {
//		chattest.TestStore(t, func(t *testing.T) chat.Store {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "lifeline.db"), bolt.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s // the suite closes it
//		})
//	}
//
//	func TestBroker(t *testing.T) {
//		chattest.TestBroker(t, func(t *testing.T) (chat.Broker, chat.Broker) {
//			b := chat.NewMemoryBroker()
//			return b, b // one process: both "nodes" are the same broker
//		})
//	}
package chattest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lifelinehq/lifeline/chat"
)

// waitLimit bounds every poll in the suites.
const waitLimit = 10 * time.Second

// newID returns a fresh random ID with a readable prefix.
func newID(prefix string) string { return prefix + "-" + uuid.NewString() }

// newRef returns a fresh conversation reference in the LF-XXXX style, long
// enough to be unique.
func newRef() string {
	return "LF-" + strings.ToUpper(strings.ReplaceAll(uuid.NewString(), "-", "")[:16])
}

// ms is t in UTC truncated to milliseconds: the precision every store keeps.
func ms(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Millisecond)
}

// now returns the current time at millisecond precision.
func now() time.Time { return ms(time.Now()) }

// wantErr fails t unless err matches target with errors.Is.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s = %v, want %v", what, err, target)
	}
}

// noErr stops t if err is not nil.
func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = %v, want nil", what, err)
	}
}

// closeQuietly closes c for a cleanup: a second Close may return nil or
// chat.ErrClosed.
func closeQuietly(t *testing.T, name string, c interface{ Close() error }) {
	t.Helper()
	if err := c.Close(); err != nil && !errors.Is(err, chat.ErrClosed) {
		t.Errorf("%s.Close() = %v, want nil", name, err)
	}
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after %v", what, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
