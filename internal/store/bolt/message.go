package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
)

// appendReq is one AppendMessage call waiting for the append writer, or,
// with flush set, a request to checkpoint the message log (WriteBackup);
// or, with change set, a group change (change.go: visitor and meta puts,
// conversation changes, outbox items) waiting for the put writer: a
// visitor says hello on every connection and the detector saves each
// visitor's journey, so a storm of connections is a storm of such writes,
// and they share group commits.
type appendReq struct {
	ctx    context.Context
	m      chat.Message
	flush  bool
	change *groupChange
	done   chan appendRes // buffered: the writer never blocks on it
}

type appendRes struct {
	m       chat.Message
	created bool
	err     error
}

var reqPool = sync.Pool{New: func() any { return &appendReq{done: make(chan appendRes, 1)} }}

// AppendMessage durably stores m at the next sequence number of its
// conversation. The call joins the next group commit: one writer goroutine
// logs every append waiting for it with one write and one fdatasync
// (wal.go) and then answers them all, so throughput grows with the number
// of callers.
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
	res, err := s.submit(ctx, s.reqs, r)
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("append message to %s: %w", m.ConversationID, err)
	}
	return res.m, res.created, res.err
}

// submit hands r to the writer reading q and waits for its answer. The
// error is ErrClosed or ctx's; the answer's err is the commit's.
func (s *Store) submit(ctx context.Context, q chan *appendReq, r *appendReq) (appendRes, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return appendRes{}, chat.ErrClosed
	}
	select {
	case q <- r:
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

// request is submit for the requests answered with an error alone:
// puts and flushes.
func (s *Store) request(ctx context.Context, q chan *appendReq, r *appendReq) error {
	res, err := s.submit(ctx, q, r)
	if err == nil {
		err = res.err
	}
	return err
}

// writer is the append group-commit loop. It takes one waiting append,
// then every other one that arrives within the commit delay (up to
// maxBatch), logs them together and starts over, so a group also forms
// while the previous one is being written. Between groups it hands full
// or old log generations to the checkpointer. When Close has closed reqs
// and the queue is empty, it checkpoints what is left and returns.
func (s *Store) writer() {
	defer close(s.ckptReq)
	batch := make([]*appendReq, 0, s.maxBatch)
	var flushes []*appendReq
	g := &group{convs: make(map[string]*groupConv)}
	shared := false // whether the last group held s.siblings appends or more
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var tick <-chan time.Time
		if !s.ckptBusy && s.wal.off > 0 {
			timer.Reset(s.every - time.Since(s.wal.began))
			tick = timer.C
		}
		var ckptDone chan struct{}
		if s.ckptBusy {
			ckptDone = s.ckptDone
		}
		var first *appendReq
		ok := true
		select {
		case first, ok = <-s.reqs:
		case <-ckptDone:
			s.ckptBusy = false
		case <-tick:
			s.startCheckpoint(false)
		}
		timer.Stop()
		if !ok {
			s.checkpointAll()
			return
		}
		if first == nil {
			continue
		}
		batch = s.gather(s.reqs, append(batch[:0], first), s.delay, shared)
		shared = len(batch) >= s.siblings
		if s.batchHook != nil {
			s.batchHook(len(batch))
		}
		batch, flushes = splitFlushes(batch, flushes[:0])
		if len(batch) > 0 {
			s.commitMessages(g, batch)
		}
		if len(flushes) > 0 {
			s.checkpointAll()
			for _, r := range flushes {
				r.done <- appendRes{}
			}
		}
		clear(batch)
		clear(flushes)
		if !s.ckptBusy && s.wal.due(s.every) {
			s.startCheckpoint(false)
		}
	}
}

// splitFlushes moves the flush requests of batch to flushes.
func splitFlushes(batch, flushes []*appendReq) ([]*appendReq, []*appendReq) {
	kept := batch[:0]
	for _, r := range batch {
		if r.flush {
			flushes = append(flushes, r)
		} else {
			kept = append(kept, r)
		}
	}
	clear(batch[len(kept):])
	return kept, flushes
}

// putWriter is the group-commit loop of the group changes (change.go):
// like writer, but each group is one bbolt transaction.
func (s *Store) putWriter() {
	batch := make([]*appendReq, 0, s.maxBatch)
	shared := false
	for {
		first, ok := <-s.puts
		if !ok {
			return
		}
		batch = s.gather(s.puts, append(batch[:0], first), s.putDelay, shared)
		shared = len(batch) > 1
		if s.putHook != nil {
			s.putHook(len(batch))
		}
		s.commitPuts(batch)
		clear(batch)
	}
}

// commitPuts applies batch (group changes) in one transaction and answers
// every caller.
func (s *Store) commitPuts(batch []*appendReq) {
	pending := 0
	for _, r := range batch {
		if r.ctx.Err() == nil {
			pending++
		}
	}
	var err error
	if pending > 0 {
		err = closedErr(s.dbUpdate(func(tx *bbolt.Tx) error {
			for _, r := range batch {
				if r.ctx.Err() != nil {
					continue
				}
				err := r.change.apply(tx)
				if rf, ok := errors.AsType[refusal](err); ok {
					r.change.refused = rf.err
				} else if err != nil {
					return err
				}
			}
			return nil
		}))
	}
	for _, r := range batch {
		if r.change.forget != nil {
			r.change.forget()
		}
	}
	s.commits.Add(1)
	s.appends.Add(uint64(len(batch)))
	for _, r := range batch {
		res := appendRes{err: err} // the callers wrap it
		if err == nil {
			res.err = r.change.refused
		}
		if cerr := r.ctx.Err(); cerr != nil {
			// Nobody is waiting: the caller already returned ctx.Err().
			res.err = cerr
		}
		r.done <- res
	}
}

// gather sleeps out delay if wait is set, then adds to batch
// the requests queued on q by then, up to maxBatch. A writer waits only
// while groups are shared (the last was large enough: see
// Options.CommitSiblings; puts, more than one request): a lone client,
// each append waiting for the one before, would only be slowed.
// It sleeps rather than taking each request as it comes: waking the
// writer per request would cost the very CPU the delay saves.
func (s *Store) gather(q chan *appendReq, batch []*appendReq, delay time.Duration, wait bool) []*appendReq {
	if wait && delay > 0 {
		time.Sleep(delay)
	}
	for len(batch) < s.maxBatch {
		select {
		case r, ok := <-q:
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

// group is the append writer's scratch space for one group, reused.
type group struct {
	res   []appendRes
	convs map[string]*groupConv
	fresh []pendingMsg // the messages this group stores
	spare []*groupConv // for convs, reused
	key   []byte       // scratch for lookups
}

// conv returns the group's entry for a conversation, adding a blank one.
func (g *group) conv(id string) *groupConv {
	if gc := g.convs[id]; gc != nil {
		return gc
	}
	var gc *groupConv
	if n := len(g.spare); n > 0 {
		gc = g.spare[n-1]
		g.spare = g.spare[:n-1]
		*gc = groupConv{added: gc.added[:0]}
	} else {
		gc = &groupConv{}
	}
	g.convs[id] = gc
	return gc
}

// stored returns the message this group stores under clientID.
func (g *group) stored(gc *groupConv, clientID string) (chat.Message, bool) {
	for _, i := range gc.added {
		if g.fresh[i].m.ClientID == clientID {
			return g.fresh[i].m, true
		}
	}
	return chat.Message{}, false
}

// groupConv is one conversation touched by a group.
type groupConv struct {
	known   bool // lastSeq and missing are set
	missing bool
	lastSeq int64
	// pending is the conversation's logged messages not yet in the
	// B+tree, taken with the group's read transaction.
	pending []pendingMsg
	// added indexes g.fresh: the messages this group stores, so a repeat
	// within the group is answered without a read. A scan, not a map: a
	// conversation rarely has more than one message in a group, and a
	// map per conversation per group was 16 % of the node's allocations
	// at 10,000 msgs/s.
	added []int
}

// commitMessages logs batch and answers every caller.
func (s *Store) commitMessages(g *group, batch []*appendReq) {
	var err error
	for {
		// A checkpoint may drop pending messages while prepare reads
		// them (see Store.released): then prepare runs again.
		n := s.released.Load()
		if !g.reset(batch, s.logErr.Load()) {
			break
		}
		err = s.prepare(g, batch)
		if err == nil && s.released.Load() == n {
			s.clients.keep()
			break
		}
		s.clients.forget()
		if err != nil {
			break
		}
	}
	if err == nil && len(g.fresh) > 0 {
		start := time.Now()
		err = s.wal.write(g.fresh)
		s.synced("log", start)
		if err != nil {
			err = fmt.Errorf("%w: %w", errLogFailed, err)
			s.logErr.Store(&err)
			s.log.Error("message log failed: appends refused until a restart", "err", err)
		}
	}
	if err == nil {
		s.pend.add(g.fresh)
	}
	s.cache.committed(g.convs, g.fresh, err == nil)
	if err != nil {
		for i, r := range batch {
			if g.res[i].err == nil {
				g.res[i] = appendRes{err: fmt.Errorf("append message to %s: %w", r.m.ConversationID, err)}
			}
		}
	}
	s.commits.Add(1)
	s.appends.Add(uint64(len(batch)))
	for i, r := range batch {
		r.done <- g.res[i]
	}
}

// reset empties g for batch and answers the appends that need no work:
// those whose caller has gone, and all of them once the log has failed
// (logErr). It reports whether any append is left.
func (g *group) reset(batch []*appendReq, logErr *error) bool {
	g.res = slices.Grow(g.res[:0], len(batch))[:len(batch)]
	clear(g.res)
	for _, gc := range g.convs {
		gc.pending = nil
		g.spare = append(g.spare, gc)
	}
	clear(g.convs)
	clear(g.fresh)
	g.fresh = g.fresh[:0]
	live := false
	for i, r := range batch {
		switch {
		case r.ctx.Err() != nil:
			// Nobody is waiting: the caller already returned ctx.Err().
			g.res[i].err = r.ctx.Err()
		case logErr != nil:
			g.res[i].err = fmt.Errorf("append message to %s: %w", r.m.ConversationID, *logErr)
		default:
			live = true
		}
	}
	return live
}

// prepare gives every live append of batch its answer: a sequence number
// and a place in g.fresh, or the message stored before under its client
// ID, or ErrNotFound. It reads the B+tree in one read transaction and
// what is pending in the log. An error fails the whole group.
func (s *Store) prepare(g *group, batch []*appendReq) error {
	// One read transaction, begun only if needed, and one cursor over the
	// messages for every client-ID lookup: a Get makes a cursor each time.
	var tx *bbolt.Tx
	var cur *bbolt.Cursor
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	read := func() error {
		if tx == nil {
			t, err := s.db.Begin(false)
			if err != nil {
				return err
			}
			tx, cur = t, t.Bucket(bMessages).Cursor()
		}
		return nil
	}
	for i, r := range batch {
		if g.res[i].err != nil {
			continue
		}
		m := r.m
		id := m.ConversationID
		gc := g.conv(id)
		if !gc.known {
			if err := read(); err != nil {
				return err
			}
			gc.pending = s.pend.conv(id)
			if err := gc.load(tx, id, s.cache); err != nil {
				return err
			}
		}
		if gc.missing {
			g.res[i].err = fmt.Errorf("append message to %s: %w", id, chat.ErrNotFound)
			continue
		}
		if old, ok := g.stored(gc, m.ClientID); ok {
			g.res[i] = appendRes{m: old}
			continue
		}
		h := clientHash(m.ClientID)
		if old, ok := gc.logged(m.ClientID, h); ok {
			g.res[i] = appendRes{m: old}
			continue
		}
		set, ok := s.clients.known(id)
		if !ok {
			if err := read(); err != nil {
				return err
			}
			set, g.key = s.clients.read(id, cur, gc.pending, g.key)
		}
		if _, maybe := set[h]; set != nil && !maybe {
			s.fresh(g, gc, i, m, h)
			continue
		}
		if err := read(); err != nil {
			return err
		}
		g.key = appendClientKey(g.key[:0], id, m.ClientID)
		if k, v := cur.Seek(g.key); bytes.Equal(k, g.key) {
			if len(v) != 8 {
				return fmt.Errorf("client ID of %s: %w", id, errCorrupt)
			}
			seq := int64(binary.BigEndian.Uint64(v))
			old, err := decodeMessage(id, seq, tx.Bucket(bMessages).Get(msgKey(id, seq)))
			if err != nil {
				return fmt.Errorf("message %d of %s: %w", seq, id, err)
			}
			g.res[i] = appendRes{m: old}
			continue
		}
		s.fresh(g, gc, i, m, h)
	}
	return nil
}

// fresh gives batch[i], m, the conversation's next sequence number and a
// place among the messages the group stores; h is its client ID's hash.
func (s *Store) fresh(g *group, gc *groupConv, i int, m chat.Message, h uint64) {
	m.Seq = gc.lastSeq + 1
	gc.added = append(gc.added, len(g.fresh))
	g.fresh = append(g.fresh, newPending(m, encodeMessage(m), s.wal.gen, h))
	gc.lastSeq = m.Seq
	g.res[i] = appendRes{m: m, created: true}
	s.clients.add(m.ConversationID, h)
}

// load sets whether the conversation id exists and its last sequence
// number: from its newest pending message, else from the record cache,
// else from tx.
func (gc *groupConv) load(tx *bbolt.Tx, id string, cache *recordCache) error {
	gc.known = true
	if n := len(gc.pending); n > 0 {
		gc.lastSeq = gc.pending[n-1].m.Seq
		return nil
	}
	if e, ok := cache.conv(id); ok {
		gc.lastSeq = e.lastSeq
		return nil
	}
	if tx.Bucket(bConvs).Get([]byte(id)) == nil {
		gc.missing = true
		return nil
	}
	m, _, err := lastStored(tx, id)
	if err != nil {
		return fmt.Errorf("last message of %s: %w", id, err)
	}
	gc.lastSeq = m.Seq
	return nil
}

// logged returns the pending message with the client ID, whose
// clientHash is h, if any. A conversation holds few pending messages
// (those of the last checkpoint interval), so a scan beats a map.
func (gc *groupConv) logged(clientID string, h uint64) (chat.Message, bool) {
	for i := len(gc.pending) - 1; i >= 0; i-- {
		if p := &gc.pending[i]; p.cid == h && p.m.ClientID == clientID {
			return p.m, true
		}
	}
	return chat.Message{}, false
}

// Messages returns up to limit messages with Seq > afterSeq in order:
// one contiguous key range of the B+tree, then the pending messages
// (pending.go) after it.
func (s *Store) Messages(_ context.Context, conversationID string, afterSeq int64, limit int) ([]chat.Message, error) {
	var out []chat.Message
	err := s.viewPending(func(tx *bbolt.Tx) error {
		if tx.Bucket(bConvs).Get([]byte(conversationID)) == nil {
			return chat.ErrNotFound
		}
		p := msgPrefix(conversationID)
		out = out[:0]
		if limit > 0 && out == nil {
			out = make([]chat.Message, 0, min(limit, 256))
		}
		top := max(afterSeq, 0)
		c := tx.Bucket(bMessages).Cursor()
		for k, v := c.Seek(msgKey(conversationID, top+1)); k != nil && hasPrefix(k, p); k, v = c.Next() {
			if limit > 0 && len(out) == limit {
				return nil
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
			top = seq
		}
		for _, pm := range s.pend.conv(conversationID) {
			if limit > 0 && len(out) == limit {
				break
			}
			if pm.m.Seq > top {
				out = append(out, pm.m)
			}
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
