package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/lifelinehq/lifeline/chat"
	"go.etcd.io/bbolt"
)

// Keys in the meta bucket: plain settings use their key, counter sets get
// a prefix that a setting key cannot start with. Logs had one too before
// they moved to bLogs (moveLogs).
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

// AppendLog puts entry at the front of log k, keeping max entries, in the
// put writer's group commit. Each entry is a key of its own (see bLogs):
// an append writes a page or two however long the log is.
func (s *Store) AppendLog(ctx context.Context, k string, entry []byte, max int) error {
	if k == "" || max < 1 || hasNUL(k) || len(k)+9 > bbolt.MaxKeySize {
		return fmt.Errorf("append log: empty key, NUL, key over %d bytes or max < 1: %w", bbolt.MaxKeySize-9, chat.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append log %s: %w", k, err)
	}
	err := s.changeInGroup(ctx, func(tx *bbolt.Tx) error {
		return appendLogEntry(tx, k, entry, max)
	}, nil)
	if err != nil {
		return fmt.Errorf("append log %s: %w", k, err)
	}
	return nil
}

// appendLogEntry stores entry after the log's newest, numbered one past
// it, and deletes those that fall more than max behind. The numbers of a
// log's entries run without gaps, so the oldest to keep is known without
// counting them.
func appendLogEntry(tx *bbolt.Tx, name string, entry []byte, max int) error {
	p := prefix(name)
	last := uint64(0)
	err := scanPrefix(tx, bLogs, p, true, func(k, _ []byte) (bool, error) {
		last = binary.BigEndian.Uint64(k[len(p):])
		return false, nil
	})
	if err != nil {
		return err
	}
	b := tx.Bucket(bLogs)
	if err := b.Put(logEntryKey(name, last+1), entry); err != nil {
		return err
	}
	if last+1 <= uint64(max) {
		return nil
	}
	oldest := last + 2 - uint64(max) // the first of the max kept
	var drop [][]byte
	err = scanPrefix(tx, bLogs, p, false, func(k, _ []byte) (bool, error) {
		if binary.BigEndian.Uint64(k[len(p):]) >= oldest {
			return false, nil
		}
		drop = append(drop, bytes.Clone(k))
		return true, nil
	})
	for _, k := range drop {
		if err == nil {
			err = b.Delete(k)
		}
	}
	return err
}

// logEntryKey is the key of log name's entry n in bLogs.
func logEntryKey(name string, n uint64) []byte {
	return binary.BigEndian.AppendUint64(prefix(name), n)
}

// Log returns up to limit entries of log k, newest first; limit ≤ 0
// returns them all.
func (s *Store) Log(_ context.Context, k string, limit int) ([][]byte, error) {
	var list [][]byte
	err := s.view(func(tx *bbolt.Tx) error {
		return scanPrefix(tx, bLogs, prefix(k), true, func(_, v []byte) (bool, error) {
			list = append(list, bytes.Clone(v))
			return limit <= 0 || len(list) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", k, err)
	}
	return list, nil
}

// moveLogs moves the logs that an older version kept whole, as one JSON
// list under logPrefix+name in bMeta (every append rewrote all of it: a
// full audit trail, megabytes, for each agent's action), into bLogs, an
// entry a key. Open runs it once in its first transaction.
func moveLogs(tx *bbolt.Tx) error {
	type old struct {
		name string
		list [][]byte
	}
	var logs []old
	err := scanPrefix(tx, bMeta, []byte(logPrefix), false, func(k, v []byte) (bool, error) {
		var list [][]byte
		if err := json.Unmarshal(v, &list); err != nil {
			return false, fmt.Errorf("decode log %q: %w", k[len(logPrefix):], err)
		}
		logs = append(logs, old{string(k[len(logPrefix):]), list})
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, l := range logs {
		for i, e := range l.list { // newest first
			if err := tx.Bucket(bLogs).Put(logEntryKey(l.name, uint64(len(l.list)-i)), e); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bMeta).Delete([]byte(logPrefix + l.name)); err != nil {
			return err
		}
	}
	return nil
}
