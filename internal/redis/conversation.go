package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/chat"
)

// maxTxRetries bounds the optimistic retries of one UpdateConversation.
const maxTxRetries = 100

// readConvScript reads a conversation's record and its sequence state:
// {v, seq, upd, last}. The two live in separate keys of one slot so that
// appends (which only touch {c:ID}:s) do not abort an UpdateConversation
// watching {c:ID}.
var readConvScript = redis.NewScript(`
return {redis.call('HGET', KEYS[1], 'v'), redis.call('HGET', KEYS[2], 'seq'), redis.call('HGET', KEYS[2], 'upd'), redis.call('HGET', KEYS[2], 'last')}
`)

// seqFields are the fields of a conversation's sequence state that
// decodeConv reads after the record.
var seqFields = []string{"seq", "upd", "last"}

// decodeConv builds a conversation from {v, seq, upd, last}. ok is false
// when the conversation does not exist.
func decodeConv(vals []any) (c chat.Conversation, ok bool, err error) {
	v, _ := vals[0].(string)
	if v == "" {
		return c, false, nil
	}
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return c, true, fmt.Errorf("decode conversation: %w", err)
	}
	if seq, _ := vals[1].(string); seq != "" {
		if _, err := fmt.Sscan(seq, &c.LastSeq); err != nil {
			return c, true, fmt.Errorf("decode conversation seq %q: %w", seq, err)
		}
	}
	if upd, _ := vals[2].(string); upd != "" {
		var t time.Time
		if err := t.UnmarshalText([]byte(upd)); err == nil && t.After(c.UpdatedAt) {
			c.UpdatedAt = t
		}
	}
	c.Last = nil
	if last, _ := vals[3].(string); last != "" {
		c.Last = new(chat.MessagePreview)
		if err := json.Unmarshal([]byte(last), c.Last); err != nil {
			return c, true, fmt.Errorf("decode conversation's last message: %w", err)
		}
	}
	return c, true, nil
}

func (s *Store) readConv(ctx context.Context, c redis.Scripter, id string) (chat.Conversation, error) {
	vals, err := readConvScript.Run(ctx, c, []string{s.k.conv(id), s.k.seq(id)}).Slice()
	if err != nil {
		return chat.Conversation{}, wrap(err, "get conversation %s", id)
	}
	conv, ok, err := decodeConv(vals)
	if err != nil {
		return conv, fmt.Errorf("conversation %s: %w", id, err)
	}
	if !ok {
		return conv, fmt.Errorf("conversation %s: %w", id, chat.ErrNotFound)
	}
	return conv, nil
}

// readConvs fetches many conversations in one pipeline; missing ones are
// reported in the second result.
func (s *Store) readConvs(ctx context.Context, ids []string) (map[string]chat.Conversation, error) {
	p := s.rdb.Pipeline()
	recs := make([]*redis.StringCmd, len(ids))
	seqs := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		recs[i] = p.HGet(ctx, s.k.conv(id), "v")
		seqs[i] = p.HMGet(ctx, s.k.seq(id), seqFields...)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrap(err, "get conversations")
	}
	out := make(map[string]chat.Conversation, len(ids))
	for i := range ids {
		var v any
		if recs[i].Err() == nil {
			v = recs[i].Val()
		}
		c, ok, err := decodeConv(append([]any{v}, seqs[i].Val()...))
		if err != nil {
			return nil, fmt.Errorf("conversation %s: %w", ids[i], err)
		}
		if ok {
			out[ids[i]] = c
		}
	}
	return out, nil
}

// convIndexes names the indexes c belongs to.
func convIndexes(c chat.Conversation) []string {
	out := []string{"all", "site:" + c.SiteKey, "vis:" + c.VisitorID, "st:" + string(c.Status)}
	if c.AgentID != "" {
		out = append(out, "ag:"+c.AgentID)
	}
	return out
}

func convScore(c chat.Conversation) float64 { return float64(c.CreatedAt.UnixMicro()) }

// openWith returns the agent whose load c counts against: its agent while
// active or pending, else "".
func openWith(c chat.Conversation) string {
	if c.Status == chat.StatusActive || c.Status == chat.StatusPending {
		return c.AgentID
	}
	return ""
}

func (s *Store) indexConv(ctx context.Context, c chat.Conversation) error {
	ixs := convIndexes(c)
	keys := make([]string, len(ixs))
	for i, n := range ixs {
		keys[i] = s.k.ix(n)
	}
	return wrap(s.zaddAll(ctx, keys, convScore(c), c.ID), "index conversation %s", c.ID)
}

// unindexConv removes id from the named indexes, then re-reads the
// conversation and puts back the entries it still belongs to: a racing
// writer that indexed the conversation just before our removal is not lost.
func (s *Store) unindexConv(ctx context.Context, id string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	p := s.rdb.Pipeline()
	for _, n := range names {
		p.ZRem(ctx, s.k.ix(n), id)
	}
	if _, err := p.Exec(ctx); err != nil {
		return wrap(err, "unindex conversation %s", id)
	}
	c, err := s.readConv(ctx, s.rdb, id)
	if errors.Is(err, chat.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var back []string
	for _, n := range convIndexes(c) {
		if slices.Contains(names, n) {
			back = append(back, s.k.ix(n))
		}
	}
	return wrap(s.zaddAll(ctx, back, convScore(c), id), "reindex conversation %s", id)
}

// afterWrite brings the indexes and agent loads in line with a committed
// change from old (zero if created) to c. The new entries were added before
// the write; they are written again here, after it, so that a racing
// writer's removal cannot leave them out.
func (s *Store) afterWrite(ctx context.Context, old, c chat.Conversation) error {
	if err := s.indexConv(ctx, c); err != nil {
		return err
	}
	if a := openWith(c); a != "" {
		if err := s.ensureLoad(ctx, a, c.ID); err != nil {
			return err
		}
	}
	if old.ID == "" {
		return nil
	}
	var stale []string
	now := convIndexes(c)
	for _, n := range convIndexes(old) {
		if !slices.Contains(now, n) {
			stale = append(stale, n)
		}
	}
	if err := s.unindexConv(ctx, c.ID, stale); err != nil {
		return err
	}
	if a := openWith(old); a != "" && a != openWith(c) {
		if _, err := s.repairLoad(ctx, a, c.ID); err != nil {
			return err
		}
	}
	return nil
}

func validStatus(st chat.Status) error {
	if !st.Valid() {
		return fmt.Errorf("status %q: %w", st, chat.ErrInvalid)
	}
	return nil
}

// claimRefScript points a reference at a conversation unless it points at
// another one. ARGV: conversation ID, the stale owner to replace or "".
// Returns 1 if claimed now, 0 if it already pointed at ARGV[1], or the
// current owner's ID.
var claimRefScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then return 0 end
if cur and cur ~= ARGV[2] then return cur end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

// releaseRefScript deletes a reference if it still points at ARGV[1].
var releaseRefScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// CreateConversation stores a new conversation. The reference is claimed
// first ({r:REF} slot), then the indexes, then the record itself with
// HSETNX on {c:ID}; a reference left by a crash between the steps points at
// a missing conversation and is taken over by the next claimant.
func (s *Store) CreateConversation(ctx context.Context, c chat.Conversation) error {
	if err := s.check(); err != nil {
		return err
	}
	if c.ID == "" || c.Ref == "" || c.SiteKey == "" || c.VisitorID == "" {
		return fmt.Errorf("create conversation: empty ID, ref, site or visitor: %w", chat.ErrInvalid)
	}
	if err := validStatus(c.Status); err != nil {
		return fmt.Errorf("create conversation %s: %w", c.ID, err)
	}
	c.LastSeq, c.Last = 0, nil
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("create conversation %s: %w", c.ID, err)
	}
	n, err := s.rdb.Exists(ctx, s.k.conv(c.ID)).Result()
	if err != nil {
		return wrap(err, "create conversation %s", c.ID)
	}
	if n > 0 {
		return fmt.Errorf("create conversation %s: ID taken: %w", c.ID, chat.ErrConflict)
	}
	claimed, err := s.claimRef(ctx, c)
	if err != nil {
		return err
	}
	release := func() {
		if claimed {
			if err := releaseRefScript.Run(ctx, s.rdb, []string{s.k.ref(c.Ref)}, c.ID).Err(); err != nil {
				s.log.Warn("redis store: release reference", "conv", c.ID, "err", err)
			}
		}
	}
	if err := s.indexConv(ctx, c); err != nil {
		release()
		return err
	}
	tok := token()
	var reserved string
	if a := openWith(c); a != "" {
		if r, err := s.reserve(ctx, a, c.ID, tok, 0); err != nil {
			release()
			return err
		} else if r == 1 {
			reserved = a
		}
	}
	ok, err := s.rdb.HSetNX(ctx, s.k.conv(c.ID), "v", b).Result()
	if err == nil && !ok {
		// go-redis retries a command whose reply was lost; if the first
		// try wrote it, the record is ours.
		cur, gerr := s.rdb.HGet(ctx, s.k.conv(c.ID), "v").Result()
		ok = gerr == nil && cur == string(b)
	}
	if err != nil || !ok {
		release()
		if reserved != "" {
			s.releaseLoad(ctx, reserved, c.ID, tok)
		}
		if err != nil {
			return wrap(err, "create conversation %s", c.ID)
		}
		return fmt.Errorf("create conversation %s: ID taken: %w", c.ID, chat.ErrConflict)
	}
	return s.afterWrite(ctx, chat.Conversation{}, c)
}

// claimRef points c.Ref at c.ID. It reports whether this call made the
// claim (and so must undo it on failure).
func (s *Store) claimRef(ctx context.Context, c chat.Conversation) (bool, error) {
	key := s.k.ref(c.Ref)
	stale := ""
	for range 3 {
		r, err := claimRefScript.Run(ctx, s.rdb, []string{key}, c.ID, stale).Result()
		if err != nil {
			return false, wrap(err, "claim reference of %s", c.ID)
		}
		switch r := r.(type) {
		case int64:
			return r == 1, nil
		case string:
			other, err := s.readConv(ctx, s.rdb, r)
			if err == nil && strings.EqualFold(other.Ref, c.Ref) {
				return false, fmt.Errorf("create conversation %s: ref %s taken: %w", c.ID, c.Ref, chat.ErrConflict)
			}
			if err != nil && !errors.Is(err, chat.ErrNotFound) {
				return false, err
			}
			stale = r // left by a failed create: take it over
		}
	}
	return false, fmt.Errorf("create conversation %s: ref %s contended: %w", c.ID, c.Ref, chat.ErrConflict)
}

// Conversation returns the conversation, or chat.ErrNotFound.
func (s *Store) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	if err := s.check(); err != nil {
		return chat.Conversation{}, err
	}
	return s.readConv(ctx, s.rdb, id)
}

// ConversationByRef finds a conversation by reference, case-insensitively.
func (s *Store) ConversationByRef(ctx context.Context, ref string) (chat.Conversation, error) {
	if err := s.check(); err != nil {
		return chat.Conversation{}, err
	}
	id, err := s.rdb.Get(ctx, s.k.ref(ref)).Result()
	if errors.Is(err, redis.Nil) {
		return chat.Conversation{}, fmt.Errorf("conversation ref %s: %w", ref, chat.ErrNotFound)
	}
	if err != nil {
		return chat.Conversation{}, wrap(err, "get conversation ref %s", ref)
	}
	c, err := s.readConv(ctx, s.rdb, id)
	if err == nil && !strings.EqualFold(c.Ref, ref) {
		err = fmt.Errorf("conversation ref %s: %w", ref, chat.ErrNotFound)
	}
	return c, err
}

// Conversations lists conversations matching q, newest (by CreatedAt)
// first. It reads the most selective index and checks every candidate
// against its record, repairing stale entries.
func (s *Store) Conversations(ctx context.Context, q chat.ConversationQuery) ([]chat.Conversation, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	var names []string
	switch {
	case q.VisitorID != "":
		names = []string{"vis:" + q.VisitorID}
	case q.AgentID != "":
		names = []string{"ag:" + q.AgentID}
	case len(q.Statuses) > 0:
		for _, st := range q.Statuses {
			if n := "st:" + string(st); !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	case q.SiteKey != "":
		names = []string{"site:" + q.SiteKey}
	default:
		names = []string{"all"}
	}
	match := func(c chat.Conversation) bool {
		return (q.SiteKey == "" || c.SiteKey == q.SiteKey) &&
			(q.VisitorID == "" || c.VisitorID == q.VisitorID) &&
			(q.AgentID == "" || c.AgentID == q.AgentID) &&
			(len(q.Statuses) == 0 || slices.Contains(q.Statuses, c.Status))
	}
	var out []chat.Conversation
	for _, n := range names {
		got, err := s.scanIndex(ctx, n, match, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	slices.SortFunc(out, func(a, b chat.Conversation) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// scanIndex returns up to limit conversations of one index that match,
// newest first, and removes entries that no longer belong to the index.
func (s *Store) scanIndex(ctx context.Context, name string, match func(chat.Conversation) bool, limit int) ([]chat.Conversation, error) {
	key := s.k.ix(name)
	batch := int64(max(limit, 100))
	var out []chat.Conversation
	var stale []string
	for start := int64(0); len(out) < limit; start += batch {
		ids, err := s.rdb.ZRevRange(ctx, key, start, start+batch-1).Result()
		if err != nil {
			return nil, wrap(err, "list conversations")
		}
		if len(ids) == 0 {
			break
		}
		convs, err := s.readConvs(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			c, ok := convs[id]
			if !ok || !slices.Contains(convIndexes(c), name) {
				stale = append(stale, id)
				continue
			}
			if match(c) {
				out = append(out, c)
				if len(out) == limit {
					break
				}
			}
		}
		if int64(len(ids)) < batch {
			break
		}
	}
	for _, id := range stale {
		if err := s.unindexConv(ctx, id, []string{name}); err != nil {
			s.log.Warn("redis store: repair conversation index", "conv", id, "index", name, "err", err)
		}
	}
	return out, nil
}

// fnError carries an error returned by an UpdateConversation callback out
// of the WATCH transaction unchanged.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }
func (e fnError) Unwrap() error { return e.err }

// UpdateConversation atomically reads the conversation, applies fn and
// writes the result: WATCH on {c:ID}, then MULTI/EXEC, retried when another
// writer changed the record in between (appends do not: they advance
// {c:ID}:s, which is not watched, and LastSeq is read from it). Indexes and
// agent loads in other slots are updated around the write as described in
// the package comment.
func (s *Store) UpdateConversation(ctx context.Context, id string, fn func(*chat.Conversation) error) (chat.Conversation, error) {
	if err := s.check(); err != nil {
		return chat.Conversation{}, err
	}
	return s.update(ctx, id, fn)
}

func (s *Store) update(ctx context.Context, id string, fn func(*chat.Conversation) error) (chat.Conversation, error) {
	key := s.k.conv(id)
	// owned holds the load reservations this call added (agent -> token).
	// They are kept across optimistic retries and settled at the end.
	owned := map[string]string{}
	var seen chat.Conversation // the latest state read
	settle := func(committed string) {
		for a, tok := range owned {
			// Keep the entry if it is our committed load, or if the state
			// that beat us has the conversation open with that agent: then
			// it is that writer's load, rewritten after its commit.
			if a != committed && a != openWith(seen) {
				s.releaseLoad(ctx, a, id, tok)
			}
		}
	}
	for attempt := 0; ; attempt++ {
		var old, cur chat.Conversation
		err := s.watch(ctx, func(tx *redis.Tx) error {
			var err error
			old, err = s.readConv(ctx, tx, id)
			if err != nil {
				return err
			}
			seen = old
			cur = old
			if err := fn(&cur); err != nil {
				return fnError{err}
			}
			if cur.ID != old.ID || cur.Ref != old.Ref || cur.SiteKey != old.SiteKey || cur.VisitorID != old.VisitorID {
				return fmt.Errorf("update conversation %s: changed ID, ref, site or visitor: %w", id, chat.ErrInvalid)
			}
			cur.LastSeq, cur.Last = old.LastSeq, nil // kept in the sequence state
			if err := validStatus(cur.Status); err != nil {
				return fmt.Errorf("update conversation %s: %w", id, err)
			}
			b, err := json.Marshal(cur)
			if err != nil {
				return fmt.Errorf("update conversation %s: %w", id, err)
			}
			if err := s.indexConv(ctx, cur); err != nil {
				return err
			}
			if a := openWith(cur); a != "" && a != openWith(old) && owned[a] == "" {
				tok := token()
				r, err := s.reserve(ctx, a, id, tok, 0)
				if err != nil {
					return err
				}
				if r == 1 {
					owned[a] = tok
				}
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, key, "v", b)
				return nil
			})
			return err
		}, key)
		switch {
		case err == nil:
			settle(openWith(cur))
			// The write is durable; the entries added before it already
			// cover it, so a failure here only delays repair.
			if err := s.afterWrite(ctx, old, cur); err != nil {
				s.log.Warn("redis store: after conversation write", "conv", id, "err", err)
			}
			return cur, nil
		case errors.Is(err, redis.TxFailedErr) && attempt < maxTxRetries:
			continue
		}
		_, isFn := errors.AsType[fnError](err)
		if isFn || errors.Is(err, redis.TxFailedErr) || errors.Is(err, chat.ErrNotFound) || errors.Is(err, chat.ErrInvalid) {
			settle("") // nothing was written
		} // else the outcome may be unknown: repairLoad settles after reserveGrace
		if fe, ok := errors.AsType[fnError](err); ok {
			return chat.Conversation{}, fe.err
		}
		if errors.Is(err, redis.TxFailedErr) {
			return chat.Conversation{}, fmt.Errorf("update conversation %s: too much contention: %w", id, chat.ErrConflict)
		}
		if errors.Is(err, chat.ErrNotFound) || errors.Is(err, chat.ErrInvalid) || errors.Is(err, chat.ErrClosed) {
			return chat.Conversation{}, err
		}
		return chat.Conversation{}, wrap(err, "update conversation %s", id)
	}
}
