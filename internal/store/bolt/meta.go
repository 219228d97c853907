package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/lifelinehq/lifeline/chat"
	"go.etcd.io/bbolt"
)

// Keys in the meta bucket: plain settings use their key, counter sets and
// logs get a prefix that a setting key cannot start with.
const (
	counterPrefix = "\x00counters\x00"
	logPrefix     = "\x00log\x00"
)

// PutMeta stores value under k, replacing any value, in the put writer's
// group commit (change.go).
func (s *Store) PutMeta(ctx context.Context, k string, value []byte) error {
	if k == "" || len(k) > bbolt.MaxKeySize {
		return fmt.Errorf("put meta: empty key or over %d bytes: %w", bbolt.MaxKeySize, chat.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put meta %s: %w", k, err)
	}
	err := s.changeInGroup(ctx, func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bMeta).Put([]byte(k), metaValue(value)); err != nil {
			return fmt.Errorf("put meta %s: %w", k, err)
		}
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("put meta %s: %w", k, err)
	}
	return nil
}

// metaValue is how a meta value is stored: behind a 'v', so an empty value
// is told from a missing key.
func metaValue(v []byte) []byte { return append([]byte{'v'}, v...) }

// Meta returns the value under k, or chat.ErrNotFound.
func (s *Store) Meta(_ context.Context, k string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bbolt.Tx) error {
		cur := tx.Bucket(bMeta).Get([]byte(k))
		if cur == nil {
			return chat.ErrNotFound
		}
		out = append([]byte{}, cur[1:]...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("meta %s: %w", k, err)
	}
	return out, nil
}

// DeleteMeta removes k.
func (s *Store) DeleteMeta(_ context.Context, k string) error {
	if err := s.updateKnown(func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Delete([]byte(k)) }, nil); err != nil {
		return fmt.Errorf("delete meta %s: %w", k, err)
	}
	return nil
}

// AddCounters adds deltas to the counter set k in one transaction.
func (s *Store) AddCounters(_ context.Context, k string, deltas map[string]int64) error {
	if k == "" {
		return fmt.Errorf("add counters: empty key: %w", chat.ErrInvalid)
	}
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMeta)
		key := []byte(counterPrefix + k)
		set := map[string]int64{}
		if cur := b.Get(key); cur != nil {
			if err := json.Unmarshal(cur, &set); err != nil {
				return err
			}
		}
		for name, d := range deltas {
			set[name] += d
		}
		data, err := json.Marshal(set)
		if err != nil {
			return err
		}
		return b.Put(key, data)
	}, nil)
	if err != nil {
		return fmt.Errorf("add counters %s: %w", k, err)
	}
	return nil
}

// Counters returns the counter set k.
func (s *Store) Counters(_ context.Context, k string) (map[string]int64, error) {
	set := map[string]int64{}
	err := s.view(func(tx *bbolt.Tx) error {
		if cur := tx.Bucket(bMeta).Get([]byte(counterPrefix + k)); cur != nil {
			return json.Unmarshal(cur, &set)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("counters %s: %w", k, err)
	}
	return set, nil
}

// AppendLog puts entry at the front of log k, keeping max entries.
func (s *Store) AppendLog(_ context.Context, k string, entry []byte, max int) error {
	if k == "" || max < 1 {
		return fmt.Errorf("append log: empty key or max < 1: %w", chat.ErrInvalid)
	}
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMeta)
		key := []byte(logPrefix + k)
		var list [][]byte
		if cur := b.Get(key); cur != nil {
			if err := json.Unmarshal(cur, &list); err != nil {
				return err
			}
		}
		list = append([][]byte{entry}, list...)
		if len(list) > max {
			list = list[:max]
		}
		data, err := json.Marshal(list)
		if err != nil {
			return err
		}
		return b.Put(key, data)
	}, nil)
	if err != nil {
		return fmt.Errorf("append log %s: %w", k, err)
	}
	return nil
}

// Log returns up to limit entries of log k, newest first.
func (s *Store) Log(_ context.Context, k string, limit int) ([][]byte, error) {
	var list [][]byte
	err := s.view(func(tx *bbolt.Tx) error {
		if cur := tx.Bucket(bMeta).Get([]byte(logPrefix + k)); cur != nil {
			return json.Unmarshal(cur, &list)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", k, err)
	}
	if limit > 0 && len(list) > limit {
		list = list[:limit]
	}
	return list, nil
}
