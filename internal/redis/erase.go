package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/chat"
)

// DeleteConversation removes a conversation's keys (record, sequence
// state, messages, client IDs, notes: one slot, one DEL), then its
// reference, index entries and agent load entry. The record goes first, so
// a crash part-way leaves only stale index entries, which reads repair.
func (s *Store) DeleteConversation(ctx context.Context, id string) error {
	if err := s.check(); err != nil {
		return err
	}
	keys := []string{s.k.seq(id), s.k.msgs(id), s.k.cids(id), s.k.notes(id)}
	c, err := s.readConv(ctx, s.rdb, id)
	if errors.Is(err, chat.ErrNotFound) {
		// The record may be gone after a crash part-way: drop the rest.
		return wrap(s.rdb.Del(ctx, keys...).Err(), "delete conversation %s", id)
	}
	if err != nil {
		return err
	}
	if err := s.rdb.Del(ctx, append(keys, s.k.conv(id))...).Err(); err != nil {
		return wrap(err, "delete conversation %s", id)
	}
	if err := releaseRefScript.Run(ctx, s.rdb, []string{s.k.ref(c.Ref)}, id).Err(); err != nil {
		return wrap(err, "release reference of %s", id)
	}
	p := s.rdb.Pipeline()
	for _, n := range convIndexes(c) {
		p.ZRem(ctx, s.k.ix(n), id)
	}
	if c.AgentID != "" {
		p.HDel(ctx, s.k.load(c.AgentID), id)
	}
	if _, err := p.Exec(ctx); err != nil {
		return wrap(err, "unindex conversation %s", id)
	}
	return nil
}

// DeleteVisitor removes a visitor record, then its index entries.
func (s *Store) DeleteVisitor(ctx context.Context, id string) error {
	if err := s.check(); err != nil {
		return err
	}
	v, err := s.Visitor(ctx, id)
	if errors.Is(err, chat.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.rdb.Del(ctx, s.k.visitor(id)).Err(); err != nil {
		return wrap(err, "delete visitor %s", id)
	}
	p := s.rdb.Pipeline()
	for _, k := range s.visitorIndexes(v) {
		p.ZRem(ctx, k, id)
	}
	if _, err := p.Exec(ctx); err != nil {
		return wrap(err, "unindex visitor %s", id)
	}
	return nil
}

// Outbox keys share the queue's hash tag, so one script claims atomically
// on a cluster:
//
//	{ob:QUEUE}      hash  item ID -> data
//	{ob:QUEUE}:due  zset  item ID scored by due time (ms since the epoch)
func (k keys) outbox(q string) string    { return k.p + "{ob:" + q + "}" }
func (k keys) outboxDue(q string) string { return k.p + "{ob:" + q + "}:due" }

// claimOutboxScript returns {id, due, data, ...} of up to ARGV[3] items
// due at ARGV[1] and moves their due time to ARGV[2].
var claimOutboxScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #ids, 2 do
  local id = ids[i]
  local v = redis.call('HGET', KEYS[1], id)
  if v then
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    out[#out+1] = id
    out[#out+1] = ids[i+1]
    out[#out+1] = v
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return out
`)

// PutOutbox adds or replaces an item with HSET and ZADD in one MULTI.
func (s *Store) PutOutbox(ctx context.Context, queue string, item chat.OutboxItem) error {
	if err := s.check(); err != nil {
		return err
	}
	if queue == "" || item.ID == "" {
		return fmt.Errorf("put outbox: empty queue or ID: %w", chat.ErrInvalid)
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.k.outbox(queue), item.ID, item.Data)
		p.ZAdd(ctx, s.k.outboxDue(queue), redis.Z{Score: float64(item.Due.UnixMilli()), Member: item.ID})
		return nil
	})
	return wrap(err, "put outbox %s/%s", queue, item.ID)
}

// ClaimOutbox claims due items with one script.
func (s *Store) ClaimOutbox(ctx context.Context, queue string, now time.Time, lease time.Duration, limit int) ([]chat.OutboxItem, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	vals, err := claimOutboxScript.Run(ctx, s.rdb, []string{s.k.outbox(queue), s.k.outboxDue(queue)},
		now.UnixMilli(), now.Add(lease).UnixMilli(), limit).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrap(err, "claim outbox %s", queue)
	}
	var out []chat.OutboxItem
	for i := 0; i+2 < len(vals); i += 3 {
		ms, err := strconv.ParseFloat(vals[i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("claim outbox %s: due %q: %w", queue, vals[i+1], err)
		}
		out = append(out, chat.OutboxItem{ID: vals[i], Due: time.UnixMilli(int64(ms)).UTC(), Data: []byte(vals[i+2])})
	}
	return out, nil
}

// DeleteOutbox removes an item.
func (s *Store) DeleteOutbox(ctx context.Context, queue, id string) error {
	if err := s.check(); err != nil {
		return err
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, s.k.outbox(queue), id)
		p.ZRem(ctx, s.k.outboxDue(queue), id)
		return nil
	})
	return wrap(err, "delete outbox %s/%s", queue, id)
}

// OutboxItems lists items by due time.
func (s *Store) OutboxItems(ctx context.Context, queue string, limit int) ([]chat.OutboxItem, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	zs, err := s.rdb.ZRangeWithScores(ctx, s.k.outboxDue(queue), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, wrap(err, "outbox %s", queue)
	}
	if len(zs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(zs))
	for i, z := range zs {
		ids[i], _ = z.Member.(string)
	}
	data, err := s.rdb.HMGet(ctx, s.k.outbox(queue), ids...).Result()
	if err != nil {
		return nil, wrap(err, "outbox %s", queue)
	}
	var out []chat.OutboxItem
	for i, z := range zs {
		v, ok := data[i].(string)
		if !ok {
			continue
		}
		out = append(out, chat.OutboxItem{ID: ids[i], Due: time.UnixMilli(int64(z.Score)).UTC(), Data: []byte(v)})
	}
	return out, nil
}
