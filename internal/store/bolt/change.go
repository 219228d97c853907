package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"
)

// groupChange is a write (or a read-check-write) of the tree that joins
// the put writer's group commit (commitPuts) instead of taking a
// transaction of its own. Visitors, meta values (the detector's journeys)
// and outbox items are put this way, and conversations created, assigned
// and updated: in a burst of new conversations each was a bbolt commit
// with two fdatasyncs, one after another behind bbolt's writer lock, and a
// node started a few hundred conversations a second.
//
// apply runs in the group's transaction, after the changes queued before
// it. It reads and checks first, and returns a refusal (refuse) before it
// writes anything: a refusal is its caller's outcome alone, and the rest of
// the group commits. Any other error may follow part of a write, so it
// fails the group's transaction, and every caller in the group gets it, as
// for the group's other puts.
type groupChange struct {
	apply   func(tx *bbolt.Tx) error
	forget  func() // drops what apply changed from the record cache; may be nil
	refused error  // apply's refusal, once the writer has run it
}

// refusal marks an error that apply returned before writing.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// refuse marks err as returned by a groupChange's apply before it wrote
// anything.
func refuse(err error) error { return refusal{err} }

// fnError carries the error of a caller's callback (UpdateConversation,
// UpdateVisitor) out of the transaction, so that it is returned unchanged.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// changeInGroup queues apply as a groupChange and waits for the group that
// commits it. It returns apply's refusal, the group's error, ErrClosed, or
// ctx's error if ctx ended before the group was written (then nothing of
// apply's was).
func (s *Store) changeInGroup(ctx context.Context, apply func(*bbolt.Tx) error, forget func()) error {
	r := reqPool.Get().(*appendReq)
	r.ctx, r.change = ctx, &groupChange{apply: apply, forget: forget}
	return s.request(ctx, s.puts, r)
}
