package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/chat"
)

// appendScript appends a message atomically in the conversation's slot.
// KEYS: {c:ID} hash, {c:ID}:m list, {c:ID}:cid hash, {c:ID}:s hash.
// ARGV: client ID, message JSON (without seq), message time (RFC 3339),
// the message's preview (JSON), kept as the conversation's last. Returns
// {-1} if the conversation is missing, {0, seq, json} if the client ID
// was already stored, {1, seq} when stored now. The list length always
// equals seq, so seq is gap-free and element i holds seq i+1.
var appendScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'v') == 0 then return {-1} end
local s = redis.call('HGET', KEYS[3], ARGV[1])
if s then return {0, tonumber(s), redis.call('LINDEX', KEYS[2], tonumber(s) - 1)} end
local seq = redis.call('HINCRBY', KEYS[4], 'seq', 1)
if redis.call('RPUSH', KEYS[2], ARGV[2]) ~= seq then
  return redis.error_reply('ERR lifeline: message list out of step with seq')
end
redis.call('HSET', KEYS[3], ARGV[1], seq)
local upd = redis.call('HGET', KEYS[4], 'upd')
if not upd or upd < ARGV[3] then redis.call('HSET', KEYS[4], 'upd', ARGV[3]) end
redis.call('HSET', KEYS[4], 'last', ARGV[4])
return {1, seq}
`)

// AppendMessage stores m at the next sequence number of its conversation
// with one Lua script on the conversation's slot; with appendfsync always
// the reply comes after the write is on disk.
func (s *Store) AppendMessage(ctx context.Context, m chat.Message) (chat.Message, bool, error) {
	if err := s.check(); err != nil {
		return chat.Message{}, false, err
	}
	if m.ClientID == "" || m.ConversationID == "" {
		return chat.Message{}, false, fmt.Errorf("append message: empty client or conversation ID: %w", chat.ErrInvalid)
	}
	if m.At.IsZero() {
		m.At = time.Now()
	}
	m.Seq = 0
	b, err := json.Marshal(m)
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("append message to %s: %w", m.ConversationID, err)
	}
	last, err := json.Marshal(chat.PreviewOf(m))
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("append message to %s: %w", m.ConversationID, err)
	}
	at := m.At.UTC().Format(timeKey)
	id := m.ConversationID
	res, err := appendScript.Run(ctx, s.rdb, []string{s.k.conv(id), s.k.msgs(id), s.k.cids(id), s.k.seq(id)}, m.ClientID, b, at, last).Slice()
	if err != nil {
		return chat.Message{}, false, wrap(err, "append message to %s", id)
	}
	switch code, _ := res[0].(int64); code {
	case -1:
		return chat.Message{}, false, fmt.Errorf("append message to %s: %w", id, chat.ErrNotFound)
	case 0:
		var old chat.Message
		raw, _ := res[2].(string)
		if err := json.Unmarshal([]byte(raw), &old); err != nil {
			return chat.Message{}, false, fmt.Errorf("decode message of %s: %w", id, err)
		}
		old.Seq = res[1].(int64)
		return old, false, nil
	default:
		m.Seq = res[1].(int64)
		return m, true, nil
	}
}

// Messages returns up to limit messages with Seq > afterSeq in order.
func (s *Store) Messages(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]chat.Message, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	afterSeq = max(afterSeq, 0)
	stop := int64(-1)
	if limit > 0 {
		stop = afterSeq + int64(limit) - 1
	}
	var exists *redis.BoolCmd
	var rng *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.HExists(ctx, s.k.conv(conversationID), "v")
		rng = p.LRange(ctx, s.k.msgs(conversationID), afterSeq, stop)
		return nil
	})
	if err != nil {
		return nil, wrap(err, "read messages of %s", conversationID)
	}
	if !exists.Val() {
		return nil, fmt.Errorf("messages of %s: %w", conversationID, chat.ErrNotFound)
	}
	raw := rng.Val()
	out := make([]chat.Message, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal([]byte(r), &out[i]); err != nil {
			return nil, fmt.Errorf("decode message %d of %s: %w", afterSeq+int64(i)+1, conversationID, err)
		}
		out[i].Seq = afterSeq + int64(i) + 1
	}
	return out, nil
}

// addNoteScript appends a note if the conversation exists (returns 0 if not).
var addNoteScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'v') == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
`)

// AddNote stores an internal note in the conversation's slot.
func (s *Store) AddNote(ctx context.Context, n chat.Note) error {
	if err := s.check(); err != nil {
		return err
	}
	if n.ConversationID == "" {
		return fmt.Errorf("add note: empty conversation ID: %w", chat.ErrInvalid)
	}
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("add note to %s: %w", n.ConversationID, err)
	}
	ok, err := addNoteScript.Run(ctx, s.rdb, []string{s.k.conv(n.ConversationID), s.k.notes(n.ConversationID)}, b).Int()
	if err != nil {
		return wrap(err, "add note to %s", n.ConversationID)
	}
	if ok == 0 {
		return fmt.Errorf("add note to %s: %w", n.ConversationID, chat.ErrNotFound)
	}
	return nil
}

// Notes returns a conversation's notes, oldest first.
func (s *Store) Notes(ctx context.Context, conversationID string) ([]chat.Note, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	raw, err := s.rdb.LRange(ctx, s.k.notes(conversationID), 0, -1).Result()
	if err != nil {
		return nil, wrap(err, "read notes of %s", conversationID)
	}
	out := make([]chat.Note, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal([]byte(r), &out[i]); err != nil {
			return nil, fmt.Errorf("decode note of %s: %w", conversationID, err)
		}
	}
	return out, nil
}

// timeKey formats t in UTC with a fixed width, so that Lua can compare two
// of them as strings.
const timeKey = "2006-01-02T15:04:05.000000000Z"
