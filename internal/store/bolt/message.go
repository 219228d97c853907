package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
)

// appendReq is one AppendMessage call waiting for the writer, or, with
// visitor set, one PutVisitor call, or with meta set one PutMeta call: a
// visitor says hello on every connection and the detector saves each
// visitor's journey, so a storm of connections is a storm of such writes,
// and they share the group commits of the messages.
type appendReq struct {
	ctx     context.Context
	m       chat.Message
	visitor *chat.Visitor
	meta    *metaPut
	done    chan appendRes // buffered: the writer never blocks on it
}

// metaPut is a PutMeta call's key and value.
type metaPut struct {
	key   string
	value []byte
}

type appendRes struct {
	m       chat.Message
	created bool
	err     error
}

var reqPool = sync.Pool{New: func() any { return &appendReq{done: make(chan appendRes, 1)} }}

// AppendMessage durably stores m at the next sequence number of its
// conversation. The call joins the next group commit: one writer goroutine
// commits every append waiting for it in one transaction (one fsync) and
// then answers them all, so throughput grows with the number of callers.
//
// If ctx is done before the group holding m is committed, AppendMessage
// returns ctx.Err(), yet m may still be stored; a retry with the same
// ClientID returns it with created = false.
func (s *Store) AppendMessage(ctx context.Context, m chat.Message) (chat.Message, bool, error) {
	if m.ClientID == "" || m.ConversationID == "" || hasNUL(m.ConversationID) {
		return chat.Message{}, false, fmt.Errorf("append message: empty client or conversation ID, or NUL: %w", chat.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return chat.Message{}, false, fmt.Errorf("append message to %s: %w", m.ConversationID, err)
	}
	if m.At.IsZero() {
		m.At = time.Now()
	}
	m.Seq = 0
	r := reqPool.Get().(*appendReq)
	r.ctx, r.m = ctx, m
	res, err := s.submit(ctx, r)
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("append message to %s: %w", m.ConversationID, err)
	}
	return res.m, res.created, res.err
}

// submit hands r to the writer and waits for its answer. The error is
// ErrClosed or ctx's; the answer's err is the commit's.
func (s *Store) submit(ctx context.Context, r *appendReq) (appendRes, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return appendRes{}, chat.ErrClosed
	}
	select {
	case s.reqs <- r:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return appendRes{}, ctx.Err()
	}
	select {
	case res := <-r.done:
		*r = appendReq{done: r.done}
		reqPool.Put(r)
		return res, nil
	case <-ctx.Done():
		// The writer still owns r and will answer into r.done; r is not
		// reused.
		return appendRes{}, ctx.Err()
	}
}

// writer is the group-commit loop. It takes one waiting append, then every
// other one that arrives within the commit delay (up to maxBatch), commits
// them together and starts over, so a group also forms while the previous
// one is being written. It returns when Close has closed reqs and
// the queue is empty.
func (s *Store) writer() {
	batch := make([]*appendReq, 0, s.maxBatch)
	g := &group{convs: make(map[string]*groupConv)}
	shared := false // whether the last group held more than one append
	for {
		first, ok := <-s.reqs
		if !ok {
			return
		}
		batch = s.gather(append(batch[:0], first), shared)
		shared = len(batch) > 1
		if s.batchHook != nil {
			s.batchHook(len(batch))
		}
		s.commit(g, batch)
		clear(batch)
	}
}

// gather sleeps out the commit delay if wait is set, then adds to batch
// the appends queued by then, up to maxBatch. The writer waits only while
// groups are shared (the last held more than one append): a lone client,
// each append waiting for the one before, would only be slowed. It sleeps
// rather than taking each append as it comes: waking the writer per
// append would cost the very CPU the delay saves.
func (s *Store) gather(batch []*appendReq, wait bool) []*appendReq {
	if wait && s.delay > 0 {
		time.Sleep(s.delay)
	}
	for len(batch) < s.maxBatch {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// group is the writer's scratch space for one commit, reused across commits.
type group struct {
	res   []appendRes
	convs map[string]*groupConv
}

// groupConv is one conversation touched by a group.
type groupConv struct {
	lastSeq int64
	lastAt  time.Time // of the last message this group stored
	missing bool
	// added holds the messages stored by this group, by client ID, so a
	// repeat within the group is answered without a read.
	added map[string]chat.Message
}

// commit stores batch in one transaction and answers every caller.
func (s *Store) commit(g *group, batch []*appendReq) {
	g.res = slices.Grow(g.res[:0], len(batch))[:len(batch)]
	clear(g.res)
	clear(g.convs)
	pending := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			// Nobody is waiting: the caller already returned ctx.Err().
			g.res[i].err = err
			continue
		}
		pending++
	}
	var err error
	if pending > 0 {
		err = s.db.Update(func(tx *bbolt.Tx) error { return g.apply(tx, batch) })
	}
	err = closedErr(err) // returned to every caller, who decides whether to log it
	if pending > 0 {
		s.cache.committed(g.convs, err == nil)
	}
	for _, r := range batch {
		if r.visitor != nil {
			s.cache.forgetVisitor(r.visitor.ID)
		}
	}
	s.commits.Add(1)
	s.appends.Add(uint64(len(batch)))
	for i, r := range batch {
		res := g.res[i]
		if err != nil && res.err == nil {
			res = appendRes{err: err} // PutVisitor and PutMeta wrap it
			if r.visitor == nil && r.meta == nil {
				res.err = fmt.Errorf("append message to %s: %w", r.m.ConversationID, err)
			}
		}
		r.done <- res
	}
}

// apply writes every live request of batch into tx and records the
// answers in g.res. Appends change only the messages bucket (a
// conversation's LastSeq and UpdatedAt follow from its last message);
// visitor puts change the visitor and its indexes, meta puts one key.
func (g *group) apply(tx *bbolt.Tx, batch []*appendReq) error {
	msgs := tx.Bucket(bMessages)
	convs := tx.Bucket(bConvs)
	for i, r := range batch {
		if g.res[i].err != nil {
			continue
		}
		if r.visitor != nil {
			if err := putVisitor(tx, *r.visitor); err != nil {
				return fmt.Errorf("put visitor %s: %w", r.visitor.ID, err)
			}
			continue
		}
		if r.meta != nil {
			if err := tx.Bucket(bMeta).Put([]byte(r.meta.key), metaValue(r.meta.value)); err != nil {
				return fmt.Errorf("put meta %s: %w", r.meta.key, err)
			}
			continue
		}
		m := r.m
		gc := g.convs[m.ConversationID]
		if gc == nil {
			gc = &groupConv{}
			if convs.Get([]byte(m.ConversationID)) == nil {
				gc.missing = true
			} else {
				seq, _, err := lastMessage(tx, m.ConversationID)
				if err != nil {
					return fmt.Errorf("last message of %s: %w", m.ConversationID, err)
				}
				gc.lastSeq = seq
			}
			g.convs[m.ConversationID] = gc
		}
		if gc.missing {
			g.res[i].err = fmt.Errorf("append message to %s: %w", m.ConversationID, chat.ErrNotFound)
			continue
		}
		if old, ok := gc.added[m.ClientID]; ok {
			g.res[i] = appendRes{m: old}
			continue
		}
		ck := clientKey(m.ConversationID, m.ClientID)
		if v := msgs.Get(ck); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("client ID of %s: %w", m.ConversationID, errCorrupt)
			}
			seq := int64(binary.BigEndian.Uint64(v))
			old, err := decodeMessage(m.ConversationID, seq, msgs.Get(msgKey(m.ConversationID, seq)))
			if err != nil {
				return fmt.Errorf("message %d of %s: %w", seq, m.ConversationID, err)
			}
			g.res[i] = appendRes{m: old}
			continue
		}
		m.Seq = gc.lastSeq + 1
		if err := msgs.Put(msgKey(m.ConversationID, m.Seq), encodeMessage(m)); err != nil {
			return err
		}
		if err := msgs.Put(ck, u64(uint64(m.Seq))); err != nil {
			return err
		}
		gc.lastSeq, gc.lastAt = m.Seq, m.At
		if gc.added == nil {
			gc.added = make(map[string]chat.Message)
		}
		gc.added[m.ClientID] = m
		g.res[i] = appendRes{m: m, created: true}
	}
	return nil
}

// Messages returns up to limit messages with Seq > afterSeq in order,
// reading one contiguous key range.
func (s *Store) Messages(_ context.Context, conversationID string, afterSeq int64, limit int) ([]chat.Message, error) {
	var out []chat.Message
	err := s.view(func(tx *bbolt.Tx) error {
		if tx.Bucket(bConvs).Get([]byte(conversationID)) == nil {
			return chat.ErrNotFound
		}
		p := msgPrefix(conversationID)
		if limit > 0 {
			out = make([]chat.Message, 0, min(limit, 256))
		}
		c := tx.Bucket(bMessages).Cursor()
		for k, v := c.Seek(msgKey(conversationID, max(afterSeq, 0)+1)); k != nil && hasPrefix(k, p); k, v = c.Next() {
			if limit > 0 && len(out) == limit {
				break
			}
			if len(k) != len(p)+8 {
				return errCorrupt
			}
			seq := int64(binary.BigEndian.Uint64(k[len(p):]))
			m, err := decodeMessage(conversationID, seq, v)
			if err != nil {
				return fmt.Errorf("message %d: %w", seq, err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("messages of %s: %w", conversationID, err)
	}
	return out, nil
}

// AddNote stores an internal note after the conversation's other notes.
func (s *Store) AddNote(_ context.Context, n chat.Note) error {
	if n.ConversationID == "" || hasNUL(n.ConversationID) {
		return fmt.Errorf("add note: empty conversation ID or NUL: %w", chat.ErrInvalid)
	}
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		if tx.Bucket(bConvs).Get([]byte(n.ConversationID)) == nil {
			return chat.ErrNotFound
		}
		b := tx.Bucket(bNotes)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return put(tx, bNotes, binary.BigEndian.AppendUint64(prefix(n.ConversationID), seq), n)
	}, nil) // notes only
	if err != nil {
		return fmt.Errorf("add note to %s: %w", n.ConversationID, err)
	}
	return nil
}

// Notes returns a conversation's notes in the order they were added.
func (s *Store) Notes(_ context.Context, conversationID string) ([]chat.Note, error) {
	var out []chat.Note
	err := s.view(func(tx *bbolt.Tx) error {
		return scanPrefix(tx, bNotes, prefix(conversationID), false, func(k, v []byte) (bool, error) {
			var n chat.Note
			if err := json.Unmarshal(v, &n); err != nil {
				return false, fmt.Errorf("decode note %x: %w", k, err)
			}
			out = append(out, n)
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("notes of %s: %w", conversationID, err)
	}
	return out, nil
}
