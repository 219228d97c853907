package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/chat"
)

// visitorIndexes returns the index keys v belongs to: its site, and its
// site's email and external ID lookups.
func (s *Store) visitorIndexes(v chat.Visitor) []string {
	out := []string{s.k.visitorIx(v.SiteKey, "", "")}
	if v.Email != "" {
		out = append(out, s.k.visitorIx(v.SiteKey, "em", strings.ToLower(v.Email)))
	}
	if v.ExternalID != "" {
		out = append(out, s.k.visitorIx(v.SiteKey, "ext", v.ExternalID))
	}
	return out
}

func visitorScore(v chat.Visitor) float64 { return float64(v.CreatedAt.UnixMicro()) }

// PutVisitor creates or replaces a visitor. The lookup indexes are updated
// around the write so that they always hold at least the truth (see the
// package comment).
func (s *Store) PutVisitor(ctx context.Context, v chat.Visitor) error {
	if err := s.check(); err != nil {
		return err
	}
	if v.ID == "" || v.SiteKey == "" {
		return fmt.Errorf("put visitor: empty ID or site: %w", chat.ErrInvalid)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("put visitor %s: %w", v.ID, err)
	}
	old, oldErr := s.Visitor(ctx, v.ID)
	if oldErr != nil && !errors.Is(oldErr, chat.ErrNotFound) {
		return oldErr
	}
	add := s.visitorIndexes(v)
	if err := s.zaddAll(ctx, add, visitorScore(v), v.ID); err != nil {
		return wrap(err, "index visitor %s", v.ID)
	}
	if err := s.rdb.Set(ctx, s.k.visitor(v.ID), b, 0).Err(); err != nil {
		return wrap(err, "put visitor %s", v.ID)
	}
	if err := s.zaddAll(ctx, add, visitorScore(v), v.ID); err != nil {
		return wrap(err, "index visitor %s", v.ID)
	}
	if oldErr == nil {
		return s.unindexVisitor(ctx, v.ID, s.staleIndexes(old, v))
	}
	return nil
}

// staleIndexes returns the index keys old belongs to and v does not.
func (s *Store) staleIndexes(old, v chat.Visitor) []string {
	keep := s.visitorIndexes(v)
	var stale []string
	for _, k := range s.visitorIndexes(old) {
		if !slices.Contains(keep, k) {
			stale = append(stale, k)
		}
	}
	return stale
}

// unindexVisitor removes id from the keys, then re-reads the visitor and
// puts back any entry it belongs to, so a racing writer's entry survives.
func (s *Store) unindexVisitor(ctx context.Context, id string, ixs []string) error {
	if len(ixs) == 0 {
		return nil
	}
	p := s.rdb.Pipeline()
	for _, k := range ixs {
		p.ZRem(ctx, k, id)
	}
	if _, err := p.Exec(ctx); err != nil {
		return wrap(err, "unindex visitor %s", id)
	}
	now, err := s.Visitor(ctx, id)
	if errors.Is(err, chat.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var back []string
	for _, k := range s.visitorIndexes(now) {
		if slices.Contains(ixs, k) {
			back = append(back, k)
		}
	}
	return wrap(s.zaddAll(ctx, back, visitorScore(now), id), "reindex visitor %s", id)
}

// zaddAll adds member to every key with score, keeping an existing score.
func (s *Store) zaddAll(ctx context.Context, ixs []string, score float64, member string) error {
	if len(ixs) == 0 {
		return nil
	}
	p := s.rdb.Pipeline()
	for _, k := range ixs {
		p.ZAddNX(ctx, k, redis.Z{Score: score, Member: member})
	}
	_, err := p.Exec(ctx)
	return err
}

// Visitor returns the visitor, or chat.ErrNotFound.
func (s *Store) Visitor(ctx context.Context, id string) (chat.Visitor, error) {
	var v chat.Visitor
	if err := s.check(); err != nil {
		return v, err
	}
	b, err := s.rdb.Get(ctx, s.k.visitor(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return v, fmt.Errorf("visitor %s: %w", id, chat.ErrNotFound)
	}
	if err != nil {
		return v, wrap(err, "get visitor %s", id)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode visitor %s: %w", id, err)
	}
	return v, nil
}

// UpdateVisitor reads, changes and writes the visitor under WATCH on its
// record, retried when another writer changed it in between; the lookup
// indexes are updated around the write as PutVisitor does.
func (s *Store) UpdateVisitor(ctx context.Context, id string, fn func(*chat.Visitor) error) (chat.Visitor, error) {
	if err := s.check(); err != nil {
		return chat.Visitor{}, err
	}
	key := s.k.visitor(id)
	for attempt := 0; ; attempt++ {
		var old, cur chat.Visitor
		err := s.watch(ctx, func(tx *redis.Tx) error {
			b, err := tx.Get(ctx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return fmt.Errorf("visitor %s: %w", id, chat.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &old); err != nil {
				return fmt.Errorf("decode visitor %s: %w", id, err)
			}
			cur = old
			cur.Attributes = maps.Clone(old.Attributes) // fn may change them
			if err := fn(&cur); err != nil {
				return fnError{err}
			}
			if cur.ID != old.ID || cur.SiteKey != old.SiteKey {
				return fmt.Errorf("update visitor %s: changed ID or site: %w", id, chat.ErrInvalid)
			}
			nb, err := json.Marshal(cur)
			if err != nil {
				return fmt.Errorf("update visitor %s: %w", id, err)
			}
			if err := s.zaddAll(ctx, s.visitorIndexes(cur), visitorScore(cur), id); err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, nb, 0)
				return nil
			})
			return err
		}, key)
		switch {
		case err == nil:
			if err := s.unindexVisitor(ctx, id, s.staleIndexes(old, cur)); err != nil {
				// The write is durable; a stale entry only costs a read
				// that finds the visitor no longer matches.
				s.log.Warn("redis store: unindex visitor", "visitor", id, "err", err)
			}
			return cur, nil
		case errors.Is(err, redis.TxFailedErr) && attempt < maxTxRetries:
			continue
		}
		if fe, ok := errors.AsType[fnError](err); ok {
			return chat.Visitor{}, fe.err
		}
		if errors.Is(err, redis.TxFailedErr) {
			return chat.Visitor{}, fmt.Errorf("update visitor %s: too much contention: %w", id, chat.ErrConflict)
		}
		if errors.Is(err, chat.ErrNotFound) || errors.Is(err, chat.ErrInvalid) {
			return chat.Visitor{}, err
		}
		return chat.Visitor{}, wrap(err, "update visitor %s", id)
	}
}

// FindVisitors returns the visitors of a site matching every non-empty
// field of q, oldest first. Candidates come from the most selective index
// and are checked against the visitor records.
func (s *Store) FindVisitors(ctx context.Context, q chat.VisitorQuery) ([]chat.Visitor, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	ix := s.k.visitorIx(q.SiteKey, "", "")
	switch {
	case q.ExternalID != "":
		ix = s.k.visitorIx(q.SiteKey, "ext", q.ExternalID)
	case q.Email != "":
		ix = s.k.visitorIx(q.SiteKey, "em", strings.ToLower(q.Email))
	}
	match := func(v chat.Visitor) bool {
		return v.SiteKey == q.SiteKey &&
			(q.Email == "" || strings.EqualFold(v.Email, q.Email)) &&
			(q.ExternalID == "" || v.ExternalID == q.ExternalID)
	}
	var out []chat.Visitor
	var stale []string
	const batch = 200
	for start := int64(0); len(out) < limit; start += batch {
		ids, err := s.rdb.ZRange(ctx, ix, start, start+batch-1).Result()
		if err != nil {
			return nil, wrap(err, "find visitors")
		}
		if len(ids) == 0 {
			break
		}
		p := s.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(ids))
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.k.visitor(id))
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, wrap(err, "find visitors")
		}
		for i, c := range cmds {
			b, err := c.Bytes()
			if errors.Is(err, redis.Nil) {
				stale = append(stale, ids[i])
				continue
			}
			if err != nil {
				return nil, wrap(err, "find visitors")
			}
			var v chat.Visitor
			if err := json.Unmarshal(b, &v); err != nil {
				return nil, fmt.Errorf("decode visitor %s: %w", ids[i], err)
			}
			if !match(v) {
				if !slices.Contains(s.visitorIndexes(v), ix) {
					stale = append(stale, v.ID)
				}
				continue
			}
			out = append(out, v)
			if len(out) == limit {
				break
			}
		}
	}
	for _, id := range stale {
		if err := s.unindexVisitor(ctx, id, []string{ix}); err != nil {
			s.log.Warn("redis store: repair visitor index", "visitor", id, "err", err)
		}
	}
	return out, nil
}
