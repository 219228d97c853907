package bolt

import (
	"context"
	"fmt"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
)

// DeleteConversation removes a conversation, its reference, index entries,
// messages, client IDs and notes in one transaction, and its messages
// still pending in the log (which a checkpoint or replay would skip).
func (s *Store) DeleteConversation(_ context.Context, id string) error {
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		var c chat.Conversation
		found, err := get(tx, bConvs, []byte(id), &c)
		if err != nil || !found {
			return err
		}
		for name, k := range convIndexes(c) {
			if err := tx.Bucket([]byte(name)).Delete(k); err != nil {
				return err
			}
		}
		refs := tx.Bucket(bConvRef)
		ref := []byte(strings.ToUpper(c.Ref))
		if owner := refs.Get(ref); owner != nil && string(owner) == id {
			if err := refs.Delete(ref); err != nil {
				return err
			}
		}
		if err := deletePrefix(tx, bMessages, prefix(id)); err != nil {
			return err
		}
		if err := deletePrefix(tx, bNotes, prefix(id)); err != nil {
			return err
		}
		return tx.Bucket(bConvs).Delete([]byte(id))
	}, func() {
		s.cache.forgetConv(id)
		s.pend.drop(id)
	})
	if err != nil {
		return fmt.Errorf("delete conversation %s: %w", id, err)
	}
	return nil
}

// DeleteVisitor removes a visitor and its index entries.
func (s *Store) DeleteVisitor(_ context.Context, id string) error {
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		var v chat.Visitor
		found, err := get(tx, bVisitors, []byte(id), &v)
		if err != nil || !found {
			return err
		}
		for name, k := range visitorIndexes(v) {
			if err := tx.Bucket([]byte(name)).Delete(k); err != nil {
				return err
			}
		}
		return tx.Bucket(bVisitors).Delete([]byte(id))
	}, func() { s.cache.forgetVisitor(id) })
	if err != nil {
		return fmt.Errorf("delete visitor %s: %w", id, err)
	}
	return nil
}

// deletePrefix deletes every key under p in bucket name. Keys are gathered
// first: deleting under a moving cursor skips entries.
func deletePrefix(tx *bbolt.Tx, name, p []byte) error {
	var keys [][]byte
	err := scanPrefix(tx, name, p, false, func(k, _ []byte) (bool, error) {
		keys = append(keys, append([]byte(nil), k...))
		return true, nil
	})
	if err != nil {
		return err
	}
	b := tx.Bucket(name)
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
