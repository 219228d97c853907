package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/redis/go-redis/v9"
)

// PutMeta stores value under key, replacing any value.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("put meta: empty key: %w", chat.ErrInvalid)
	}
	return wrap(s.rdb.Set(ctx, s.k.meta(key), value, 0).Err(), "put meta %s", key)
}

// Meta returns the value under key, or chat.ErrNotFound.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	v, err := s.rdb.Get(ctx, s.k.meta(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("meta %s: %w", key, chat.ErrNotFound)
	}
	return v, wrap(err, "meta %s", key)
}

// DeleteMeta removes key.
func (s *Store) DeleteMeta(ctx context.Context, key string) error {
	if err := s.check(); err != nil {
		return err
	}
	return wrap(s.rdb.Del(ctx, s.k.meta(key)).Err(), "delete meta %s", key)
}

// AddCounters adds deltas to the hash of counter set key with HINCRBY in
// one MULTI/EXEC, so concurrent nodes never lose an increment.
func (s *Store) AddCounters(ctx context.Context, key string, deltas map[string]int64) error {
	if err := s.check(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("add counters: empty key: %w", chat.ErrInvalid)
	}
	if len(deltas) == 0 {
		return nil
	}
	k := s.k.meta("counters:" + key)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for name, d := range deltas {
			p.HIncrBy(ctx, k, name, d)
		}
		return nil
	})
	return wrap(err, "add counters %s", key)
}

// Counters returns counter set key.
func (s *Store) Counters(ctx context.Context, key string) (map[string]int64, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	raw, err := s.rdb.HGetAll(ctx, s.k.meta("counters:"+key)).Result()
	if err != nil {
		return nil, wrap(err, "counters %s", key)
	}
	out := make(map[string]int64, len(raw))
	for name, v := range raw {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("counters %s: %s is %q: %w", key, name, v, err)
		}
		out[name] = n
	}
	return out, nil
}

// AppendLog pushes entry to the front of list key and trims it to max.
func (s *Store) AppendLog(ctx context.Context, key string, entry []byte, max int) error {
	if err := s.check(); err != nil {
		return err
	}
	if key == "" || max < 1 {
		return fmt.Errorf("append log: empty key or max < 1: %w", chat.ErrInvalid)
	}
	k := s.k.meta("log:" + key)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, k, entry)
		p.LTrim(ctx, k, 0, int64(max-1))
		return nil
	})
	return wrap(err, "append log %s", key)
}

// Log returns up to limit entries of list key, newest first.
func (s *Store) Log(ctx context.Context, key string, limit int) ([][]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	stop := int64(-1)
	if limit > 0 {
		stop = int64(limit - 1)
	}
	vals, err := s.rdb.LRange(ctx, s.k.meta("log:"+key), 0, stop).Result()
	if err != nil {
		return nil, wrap(err, "log %s", key)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}
