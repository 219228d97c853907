package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
)

// The outbox bucket holds every durable queue, two entries per item:
//
//	queue \0 'i' id          -> due(12) data
//	queue \0 'd' due(12) id  -> ""
//
// The bucket is created by the first write, so files written before it
// existed open unchanged.
var bOutbox = []byte("outbox")

func outboxItemKey(queue, id string) []byte {
	return append(append(prefix(queue), 'i'), id...)
}

func outboxDuePrefix(queue string) []byte { return append(prefix(queue), 'd') }

func outboxDueKey(queue string, due time.Time, id string) []byte {
	return append(appendTime(outboxDuePrefix(queue), due), id...)
}

// putOutbox writes item, moving its due entry from any previous one.
func putOutbox(b *bbolt.Bucket, queue string, item chat.OutboxItem) error {
	ik := outboxItemKey(queue, item.ID)
	if old := b.Get(ik); len(old) >= 12 {
		if err := b.Delete(append(append(outboxDuePrefix(queue), old[:12]...), item.ID...)); err != nil {
			return err
		}
	}
	if err := b.Put(ik, append(appendTime(nil, item.Due), item.Data...)); err != nil {
		return err
	}
	return b.Put(outboxDueKey(queue, item.Due, item.ID), nil)
}

// PutOutbox adds or replaces an item of a durable queue, in the put
// writer's group commit (change.go). Like CreateConversation it does not
// give up when ctx ends.
func (s *Store) PutOutbox(ctx context.Context, queue string, item chat.OutboxItem) error {
	if queue == "" || item.ID == "" || hasNUL(queue) {
		return fmt.Errorf("put outbox: empty queue or ID: %w", chat.ErrInvalid)
	}
	err := s.changeInGroup(context.WithoutCancel(ctx), func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bOutbox)
		if err != nil {
			return err
		}
		return putOutbox(b, queue, item)
	}, nil) // the outbox holds no cached record
	if err != nil {
		return fmt.Errorf("put outbox %s/%s: %w", queue, item.ID, err)
	}
	return nil
}

// ClaimOutbox takes up to limit due items and pushes their due time past
// the lease, in one transaction.
func (s *Store) ClaimOutbox(_ context.Context, queue string, now time.Time, lease time.Duration, limit int) ([]chat.OutboxItem, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []chat.OutboxItem
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bOutbox)
		if err != nil {
			return err
		}
		out, err = listOutbox(b, queue, limit, appendTime(nil, now))
		if err != nil {
			return err
		}
		for i := range out {
			if err := putOutbox(b, queue, chat.OutboxItem{ID: out[i].ID, Due: now.Add(lease), Data: out[i].Data}); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("claim outbox %s: %w", queue, err)
	}
	return out, nil
}

// listOutbox reads up to limit items by due time, only those due at or
// before until (12-byte time) when it is set.
func listOutbox(b *bbolt.Bucket, queue string, limit int, until []byte) ([]chat.OutboxItem, error) {
	p := outboxDuePrefix(queue)
	var out []chat.OutboxItem
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && hasPrefix(k, p) && len(out) < limit; k, _ = c.Next() {
		rest := k[len(p):]
		if len(rest) < 12 {
			return nil, errCorrupt
		}
		if until != nil && bytes.Compare(rest[:12], until) > 0 {
			break
		}
		id := string(rest[12:])
		v := b.Get(outboxItemKey(queue, id))
		if len(v) < 12 {
			continue
		}
		out = append(out, chat.OutboxItem{ID: id, Due: decodeTime(v[:12]), Data: append([]byte(nil), v[12:]...)})
	}
	return out, nil
}

// DeleteOutbox removes an item, in the put writer's group commit.
func (s *Store) DeleteOutbox(ctx context.Context, queue, id string) error {
	err := s.changeInGroup(context.WithoutCancel(ctx), func(tx *bbolt.Tx) error {
		b := tx.Bucket(bOutbox)
		if b == nil {
			return nil
		}
		ik := outboxItemKey(queue, id)
		old := b.Get(ik)
		if len(old) < 12 {
			return nil
		}
		if err := b.Delete(append(append(outboxDuePrefix(queue), old[:12]...), id...)); err != nil {
			return err
		}
		return b.Delete(ik)
	}, nil)
	if err != nil {
		return fmt.Errorf("delete outbox %s/%s: %w", queue, id, err)
	}
	return nil
}

// OutboxItems lists items by due time.
func (s *Store) OutboxItems(_ context.Context, queue string, limit int) ([]chat.OutboxItem, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []chat.OutboxItem
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bOutbox)
		if b == nil {
			return nil
		}
		var err error
		out, err = listOutbox(b, queue, limit, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox %s: %w", queue, err)
	}
	return out, nil
}

// decodeTime reverses appendTime.
func decodeTime(b []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(b[:8]) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:12]))).UTC()
}

// WriteBackup writes a consistent copy of the database file to w from one
// read transaction, while the store keeps serving, and returns its size.
// It first checkpoints the message log, so the copy holds every message
// acknowledged before the call.
// Restoring is copying the file back into place with the node stopped.
func (s *Store) WriteBackup(ctx context.Context, w io.Writer) (int64, error) {
	// The copy is of the B+tree alone: checkpoint the log first.
	if err := s.flush(ctx); err != nil {
		return 0, fmt.Errorf("write backup: %w", err)
	}
	var n int64
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("write backup: %w", err)
	}
	return n, nil
}
