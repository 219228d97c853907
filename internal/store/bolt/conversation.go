package bolt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
)

// createdKey is the tail shared by the conversation list indexes: the
// creation time (12 bytes, in time order) then the ID, so a reverse scan
// lists newest first with ties broken by ID.
func createdKey(p []byte, c chat.Conversation) []byte {
	k := appendTime(p, c.CreatedAt)
	return append(k, c.ID...)
}

// loadsOn reports whether c counts towards its agent's load.
func loadsOn(c chat.Conversation) bool {
	return c.AgentID != "" && (c.Status == chat.StatusActive || c.Status == chat.StatusPending)
}

// convIndexes returns the index entries of c, bucket by bucket. The
// reference index is written once at creation: a reference never changes.
func convIndexes(c chat.Conversation) map[string][]byte {
	ix := map[string][]byte{
		string(bConvAll):     createdKey(nil, c),
		string(bConvStatus):  createdKey(prefix(string(c.Status)), c),
		string(bConvVisitor): createdKey(prefix(c.VisitorID), c),
		string(bConvSite):    createdKey(prefix(c.SiteKey), c),
	}
	if c.AgentID != "" {
		ix[string(bConvAgent)] = createdKey(prefix(c.AgentID), c)
	}
	if loadsOn(c) {
		ix[string(bAgentOpen)] = key(c.AgentID, c.ID)
	}
	return ix
}

// getConv reads a conversation. LastSeq comes from its last message, and
// that message's time advances UpdatedAt: appends leave the record alone.
// tx is a write transaction, or a read one run by viewPending.
func (s *Store) getConv(tx *bbolt.Tx, id []byte) (chat.Conversation, error) {
	var c chat.Conversation
	ok, err := get(tx, bConvs, id, &c)
	if err == nil && !ok {
		err = chat.ErrNotFound
	}
	if err != nil {
		return c, err
	}
	seq, last, err := s.lastMessage(tx, c.ID)
	if err != nil {
		return c, fmt.Errorf("last message of %s: %w", c.ID, err)
	}
	return cachedConv{rec: c, lastSeq: seq, last: last}.conversation(), nil
}

// writeConv stores c and moves its index entries from those of old.
func writeConv(tx *bbolt.Tx, old *chat.Conversation, c chat.Conversation) error {
	var oldIx map[string][]byte
	if old != nil {
		oldIx = convIndexes(*old)
	}
	if err := reindex(tx, old != nil, oldIx, convIndexes(c)); err != nil {
		return err
	}
	c.Last = nil // derived from the messages on every read
	return put(tx, bConvs, []byte(c.ID), c)
}

// CreateConversation stores a new conversation with LastSeq 0. It joins
// the put writer's group commit (change.go). It does not give up when ctx
// ends: a caller must not be told that a conversation it will never hear
// of again was not created.
func (s *Store) CreateConversation(ctx context.Context, c chat.Conversation) error {
	if c.ID == "" || c.Ref == "" || c.SiteKey == "" || c.VisitorID == "" ||
		hasNUL(c.ID, c.SiteKey, c.VisitorID, c.AgentID) {
		return fmt.Errorf("create conversation %q: empty ID, ref, site or visitor, or NUL: %w", c.ID, chat.ErrInvalid)
	}
	if !c.Status.Valid() {
		return fmt.Errorf("create conversation %s: status %q: %w", c.ID, c.Status, chat.ErrInvalid)
	}
	c.LastSeq = 0
	err := s.changeInGroup(context.WithoutCancel(ctx), func(tx *bbolt.Tx) error {
		if tx.Bucket(bConvs).Get([]byte(c.ID)) != nil {
			return refuse(fmt.Errorf("ID taken: %w", chat.ErrConflict))
		}
		ref := []byte(strings.ToUpper(c.Ref))
		if tx.Bucket(bConvRef).Get(ref) != nil {
			return refuse(fmt.Errorf("reference %s taken: %w", c.Ref, chat.ErrConflict))
		}
		if err := tx.Bucket(bConvRef).Put(ref, []byte(c.ID)); err != nil {
			return err
		}
		return writeConv(tx, nil, c)
	}, func() { s.cache.forgetConv(c.ID) })
	if err != nil {
		return fmt.Errorf("create conversation %s: %w", c.ID, err)
	}
	return nil
}

// Conversation returns the conversation, or ErrNotFound.
// The record and its last message's sequence number are cached
// (cache.go).
func (s *Store) Conversation(_ context.Context, id string) (chat.Conversation, error) {
	if e, ok := s.cache.conv(id); ok {
		if s.done.Load() {
			return chat.Conversation{}, fmt.Errorf("conversation %s: %w", id, chat.ErrClosed)
		}
		return e.conversation(), nil
	}
	var e cachedConv
	gen := s.cache.gen.Load()
	err := s.viewPending(func(tx *bbolt.Tx) error {
		e = cachedConv{}
		found, err := get(tx, bConvs, []byte(id), &e.rec)
		if err == nil && !found {
			err = chat.ErrNotFound
		}
		if err != nil {
			return err
		}
		if e.lastSeq, e.last, err = s.lastMessage(tx, id); err != nil {
			return fmt.Errorf("last message of %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("conversation %s: %w", id, err)
	}
	s.cache.putConv(gen, e)
	return e.conversation(), nil
}

// ConversationByRef finds a conversation by its reference
// (case-insensitive), or ErrNotFound.
func (s *Store) ConversationByRef(_ context.Context, ref string) (chat.Conversation, error) {
	var c chat.Conversation
	err := s.viewPending(func(tx *bbolt.Tx) (err error) {
		id := tx.Bucket(bConvRef).Get([]byte(strings.ToUpper(ref)))
		if id == nil {
			return chat.ErrNotFound
		}
		c, err = s.getConv(tx, id)
		return err
	})
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("conversation by reference %s: %w", ref, err)
	}
	return c, nil
}

// Conversations lists conversations matching q, newest (by CreatedAt) first,
// ties by ID descending. It walks the most selective index: visitor, then
// agent, then status, then site, then all.
func (s *Store) Conversations(_ context.Context, q chat.ConversationQuery) ([]chat.Conversation, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	type scan struct {
		name, p []byte
	}
	var scans []scan
	switch {
	case q.VisitorID != "":
		scans = []scan{{bConvVisitor, prefix(q.VisitorID)}}
	case q.AgentID != "":
		scans = []scan{{bConvAgent, prefix(q.AgentID)}}
	case len(q.Statuses) > 0:
		for _, st := range slices.Compact(slices.Sorted(slices.Values(q.Statuses))) {
			scans = append(scans, scan{bConvStatus, prefix(string(st))})
		}
	case q.SiteKey != "":
		scans = []scan{{bConvSite, prefix(q.SiteKey)}}
	default:
		scans = []scan{{bConvAll, nil}}
	}
	match := func(c chat.Conversation) bool {
		return (q.SiteKey == "" || c.SiteKey == q.SiteKey) &&
			(q.VisitorID == "" || c.VisitorID == q.VisitorID) &&
			(q.AgentID == "" || c.AgentID == q.AgentID) &&
			(len(q.Statuses) == 0 || slices.Contains(q.Statuses, c.Status))
	}
	var out []chat.Conversation
	err := s.viewPending(func(tx *bbolt.Tx) error {
		out = out[:0]
		for _, sc := range scans {
			n := 0
			err := scanPrefix(tx, sc.name, sc.p, true, func(k, _ []byte) (bool, error) {
				c, err := s.getConv(tx, k[len(sc.p)+12:])
				if errors.Is(err, chat.ErrNotFound) {
					return true, nil
				}
				if err != nil {
					return false, err
				}
				if match(c) {
					out = append(out, c)
					n++
				}
				return n < limit, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	if len(scans) > 1 {
		slices.SortFunc(out, func(a, b chat.Conversation) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return cmp.Compare(b.ID, a.ID)
		})
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// UpdateConversation atomically reads the conversation, applies fn and
// writes the result with its indexes, in the put writer's group commit
// (change.go; fn runs once). ErrInvalid if fn changed ID, Ref, SiteKey or
// VisitorID or set an invalid status; a changed LastSeq is ignored. Like
// CreateConversation it does not give up when ctx ends.
func (s *Store) UpdateConversation(ctx context.Context, id string, fn func(*chat.Conversation) error) (chat.Conversation, error) {
	var cur chat.Conversation
	err := s.changeInGroup(context.WithoutCancel(ctx), func(tx *bbolt.Tx) error {
		old, err := s.getConv(tx, []byte(id))
		if err != nil {
			return refuse(err)
		}
		cur = old
		if err := fn(&cur); err != nil {
			return refuse(fnError{err})
		}
		if cur.ID != old.ID || cur.Ref != old.Ref || cur.SiteKey != old.SiteKey || cur.VisitorID != old.VisitorID {
			return refuse(fmt.Errorf("changed ID, ref, site or visitor: %w", chat.ErrInvalid))
		}
		if !cur.Status.Valid() || hasNUL(cur.AgentID) {
			return refuse(fmt.Errorf("status %q or agent: %w", cur.Status, chat.ErrInvalid))
		}
		cur.LastSeq = old.LastSeq
		return writeConv(tx, &old, cur)
	}, func() { s.cache.forgetConv(id) })
	if fe, ok := errors.AsType[fnError](err); ok {
		return chat.Conversation{}, fe.err
	}
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("update conversation %s: %w", id, err)
	}
	return cur, nil
}

// Assign gives a waiting conversation to an agent under capacity, in the
// put writer's group commit (change.go), and, like CreateConversation,
// does not give up when ctx ends.
func (s *Store) Assign(ctx context.Context, id, agentID string, capacity int, now time.Time) (chat.Conversation, error) {
	if agentID == "" || hasNUL(agentID) {
		return chat.Conversation{}, fmt.Errorf("assign %s: empty agent or NUL: %w", id, chat.ErrInvalid)
	}
	var c chat.Conversation
	err := s.changeInGroup(context.WithoutCancel(ctx), func(tx *bbolt.Tx) error {
		old, err := s.getConv(tx, []byte(id))
		if err != nil {
			return refuse(err)
		}
		if old.Status != chat.StatusWaiting {
			return refuse(fmt.Errorf("status %s: %w", old.Status, chat.ErrConflict))
		}
		if capacity > 0 && agentLoad(tx, agentID) >= capacity {
			return refuse(fmt.Errorf("agent %s: %w", agentID, chat.ErrCapacity))
		}
		c = old
		c.Status = chat.StatusActive
		c.AgentID = agentID
		c.AssignedAt = now
		if now.After(c.UpdatedAt) {
			c.UpdatedAt = now
		}
		return writeConv(tx, &old, c)
	}, func() { s.cache.forgetConv(id) })
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("assign %s to %s: %w", id, agentID, err)
	}
	return c, nil
}

func agentLoad(tx *bbolt.Tx, agentID string) int {
	n := 0
	_ = scanPrefix(tx, bAgentOpen, prefix(agentID), false, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	return n
}

// AgentLoad returns how many active or pending conversations the agent has,
// counted from the agent's open-conversation index.
func (s *Store) AgentLoad(_ context.Context, agentID string) (int, error) {
	var n int
	err := s.view(func(tx *bbolt.Tx) error {
		n = agentLoad(tx, agentID)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("load of agent %s: %w", agentID, err)
	}
	return n, nil
}
