package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
)

// PutSite creates or replaces a site.
func (s *Store) PutSite(_ context.Context, site chat.Site) error {
	if site.Key == "" || hasNUL(site.Key) {
		return fmt.Errorf("put site %q: empty key or NUL: %w", site.Key, chat.ErrInvalid)
	}
	return s.update(func(tx *bbolt.Tx) error {
		if err := put(tx, bSites, []byte(site.Key), site); err != nil {
			return fmt.Errorf("put site %s: %w", site.Key, err)
		}
		return nil
	})
}

// Site returns the site with the key, or ErrNotFound. The record is
// decoded once and cached (cache.go); PutSite empties the cache.
func (s *Store) Site(_ context.Context, k string) (chat.Site, error) {
	if site, ok := s.cache.site(k); ok {
		if s.done.Load() {
			return chat.Site{}, fmt.Errorf("site %s: %w", k, chat.ErrClosed)
		}
		return site, nil
	}
	var site chat.Site
	gen := s.cache.gen.Load()
	err := s.view(func(tx *bbolt.Tx) error {
		ok, err := get(tx, bSites, []byte(k), &site)
		if err == nil && !ok {
			err = chat.ErrNotFound
		}
		if err == nil {
			s.cache.putSite(gen, site)
		}
		return err
	})
	if err != nil {
		return chat.Site{}, fmt.Errorf("site %s: %w", k, err)
	}
	return site, nil
}

// Sites returns every site ordered by key.
func (s *Store) Sites(context.Context) ([]chat.Site, error) {
	var out []chat.Site
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bSites).ForEach(func(k, v []byte) error {
			var site chat.Site
			if err := json.Unmarshal(v, &site); err != nil {
				return fmt.Errorf("decode site %s: %w", k, err)
			}
			out = append(out, site)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	return out, nil
}

// visitorIndexes returns the index entries of v, bucket by bucket.
func visitorIndexes(v chat.Visitor) map[string][]byte {
	ix := map[string][]byte{string(bVisSite): key(v.SiteKey, v.ID)}
	if v.Email != "" {
		ix[string(bVisEmail)] = key(v.SiteKey, strings.ToLower(v.Email), v.ID)
	}
	if v.ExternalID != "" {
		ix[string(bVisExt)] = key(v.SiteKey, v.ExternalID, v.ID)
	}
	return ix
}

// PutVisitor creates or replaces a visitor and its email and external-ID
// indexes, in the put writer's group commit (change.go).
func (s *Store) PutVisitor(ctx context.Context, v chat.Visitor) error {
	if v.ID == "" || v.SiteKey == "" || hasNUL(v.ID, v.SiteKey, v.Email, v.ExternalID) {
		return fmt.Errorf("put visitor %q: empty ID or site, or NUL: %w", v.ID, chat.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put visitor %s: %w", v.ID, err)
	}
	err := s.changeInGroup(ctx, func(tx *bbolt.Tx) error {
		if err := putVisitor(tx, v); err != nil {
			return fmt.Errorf("put visitor %s: %w", v.ID, err)
		}
		return nil
	}, func() { s.cache.forgetVisitor(v.ID) })
	if err != nil {
		return fmt.Errorf("put visitor %s: %w", v.ID, err)
	}
	return nil
}

// UpdateVisitor applies fn to the stored visitor in the put writer's
// transaction, so it commits in a group with other puts and no write
// lands between the read and the write.
func (s *Store) UpdateVisitor(ctx context.Context, id string, fn func(*chat.Visitor) error) (chat.Visitor, error) {
	if err := ctx.Err(); err != nil {
		return chat.Visitor{}, fmt.Errorf("update visitor %s: %w", id, err)
	}
	var v chat.Visitor
	err := s.changeInGroup(ctx, func(tx *bbolt.Tx) error {
		found, err := get(tx, bVisitors, []byte(id), &v)
		switch {
		case err != nil:
			return err
		case !found:
			return refuse(chat.ErrNotFound)
		}
		site := v.SiteKey
		if err := fn(&v); err != nil {
			return refuse(fnError{err})
		}
		if v.ID != id || v.SiteKey != site || hasNUL(v.Email, v.ExternalID) {
			return refuse(fmt.Errorf("changed ID or site, or NUL: %w", chat.ErrInvalid))
		}
		return putVisitor(tx, v)
	}, func() { s.cache.forgetVisitor(id) })
	if fe, ok := errors.AsType[fnError](err); ok {
		return chat.Visitor{}, fe.err // fn's own error, as it was returned
	}
	if err != nil {
		return chat.Visitor{}, fmt.Errorf("update visitor %s: %w", id, err)
	}
	return v, nil
}

// putVisitor writes v and moves its index entries.
func putVisitor(tx *bbolt.Tx, v chat.Visitor) error {
	var old chat.Visitor
	found, err := get(tx, bVisitors, []byte(v.ID), &old)
	if err != nil {
		return err
	}
	if err := reindex(tx, found, visitorIndexes(old), visitorIndexes(v)); err != nil {
		return err
	}
	return put(tx, bVisitors, []byte(v.ID), v)
}

// reindex deletes the entries of old (if hadOld) that new lacks and adds
// those of new. Both map a bucket name to one key.
func reindex(tx *bbolt.Tx, hadOld bool, old, new map[string][]byte) error {
	if hadOld {
		for name, k := range old {
			if nk, ok := new[name]; ok && bytes.Equal(nk, k) {
				continue
			}
			if err := tx.Bucket([]byte(name)).Delete(k); err != nil {
				return err
			}
		}
	}
	for name, k := range new {
		if ok := old[name]; hadOld && bytes.Equal(ok, k) {
			continue
		}
		if err := tx.Bucket([]byte(name)).Put(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// Visitor returns the visitor, or ErrNotFound.
// The record is decoded once and cached (cache.go).
func (s *Store) Visitor(_ context.Context, id string) (chat.Visitor, error) {
	if v, ok := s.cache.visitor(id); ok {
		if s.done.Load() {
			return chat.Visitor{}, fmt.Errorf("visitor %s: %w", id, chat.ErrClosed)
		}
		return v, nil
	}
	var v chat.Visitor
	gen := s.cache.gen.Load()
	err := s.view(func(tx *bbolt.Tx) error {
		ok, err := get(tx, bVisitors, []byte(id), &v)
		if err == nil && !ok {
			err = chat.ErrNotFound
		}
		if err == nil {
			s.cache.putVisitor(gen, v)
		}
		return err
	})
	if err != nil {
		return chat.Visitor{}, fmt.Errorf("visitor %s: %w", id, err)
	}
	return v, nil
}

// FindVisitors returns the visitors of a site matching every non-empty
// field of q, in index order (by ID within one email or external ID).
func (s *Store) FindVisitors(_ context.Context, q chat.VisitorQuery) ([]chat.Visitor, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	name, p := bVisSite, prefix(q.SiteKey)
	switch {
	case q.ExternalID != "":
		name, p = bVisExt, prefix(q.SiteKey, q.ExternalID)
	case q.Email != "":
		name, p = bVisEmail, prefix(q.SiteKey, strings.ToLower(q.Email))
	}
	var out []chat.Visitor
	err := s.view(func(tx *bbolt.Tx) error {
		return scanPrefix(tx, name, p, false, func(k, _ []byte) (bool, error) {
			id := k[len(p):]
			var v chat.Visitor
			ok, err := get(tx, bVisitors, id, &v)
			if err != nil || !ok {
				return err == nil, err
			}
			if v.SiteKey == q.SiteKey &&
				(q.Email == "" || strings.EqualFold(v.Email, q.Email)) &&
				(q.ExternalID == "" || v.ExternalID == q.ExternalID) {
				out = append(out, v)
			}
			return len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("find visitors of %s: %w", q.SiteKey, err)
	}
	return out, nil
}

// agentRecord is how an agent is stored: chat.Agent hides PasswordHash from
// JSON, but the store must keep it.
type agentRecord struct {
	chat.Agent
	PasswordHash []byte `json:"password_hash,omitempty"`
}

func putAgent(tx *bbolt.Tx, a chat.Agent) error {
	return put(tx, bAgents, []byte(a.ID), agentRecord{Agent: a, PasswordHash: a.PasswordHash})
}

func getAgent(tx *bbolt.Tx, id []byte) (chat.Agent, bool, error) {
	var r agentRecord
	ok, err := get(tx, bAgents, id, &r)
	r.Agent.PasswordHash = r.PasswordHash
	return r.Agent, ok, err
}

// CreateAgent adds an agent. ErrConflict if the ID or the email is taken;
// ErrInvalid if the ID or the email is empty (the email is the login).
func (s *Store) CreateAgent(_ context.Context, a chat.Agent) error {
	if a.ID == "" || a.Email == "" || hasNUL(a.ID) {
		return fmt.Errorf("create agent %q: empty ID or email, or NUL: %w", a.ID, chat.ErrInvalid)
	}
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		if tx.Bucket(bAgents).Get([]byte(a.ID)) != nil {
			return fmt.Errorf("ID taken: %w", chat.ErrConflict)
		}
		email := []byte(strings.ToLower(a.Email))
		if tx.Bucket(bAgentEmail).Get(email) != nil {
			return fmt.Errorf("email taken: %w", chat.ErrConflict)
		}
		if err := tx.Bucket(bAgentEmail).Put(email, []byte(a.ID)); err != nil {
			return err
		}
		return putAgent(tx, a)
	}, nil) // no conversation, visitor or site record changes
	if err != nil {
		return fmt.Errorf("create agent %s: %w", a.ID, err)
	}
	return nil
}

// UpdateAgent replaces an existing agent, moving its email index entry.
// ErrInvalid if the email is empty.
func (s *Store) UpdateAgent(_ context.Context, a chat.Agent) error {
	if a.Email == "" {
		return fmt.Errorf("update agent %q: empty email: %w", a.ID, chat.ErrInvalid)
	}
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		old, ok, err := getAgent(tx, []byte(a.ID))
		if err != nil {
			return err
		}
		if !ok {
			return chat.ErrNotFound
		}
		oldEmail, email := []byte(strings.ToLower(old.Email)), []byte(strings.ToLower(a.Email))
		if !bytes.Equal(oldEmail, email) {
			if owner := tx.Bucket(bAgentEmail).Get(email); owner != nil && string(owner) != a.ID {
				return fmt.Errorf("email taken: %w", chat.ErrConflict)
			}
			if err := tx.Bucket(bAgentEmail).Delete(oldEmail); err != nil {
				return err
			}
			if err := tx.Bucket(bAgentEmail).Put(email, []byte(a.ID)); err != nil {
				return err
			}
		}
		return putAgent(tx, a)
	}, nil) // no conversation, visitor or site record changes
	if err != nil {
		return fmt.Errorf("update agent %s: %w", a.ID, err)
	}
	return nil
}

// Agent returns the agent, or ErrNotFound.
func (s *Store) Agent(_ context.Context, id string) (chat.Agent, error) {
	var a chat.Agent
	err := s.view(func(tx *bbolt.Tx) error {
		var ok bool
		var err error
		a, ok, err = getAgent(tx, []byte(id))
		if err == nil && !ok {
			err = chat.ErrNotFound
		}
		return err
	})
	if err != nil {
		return chat.Agent{}, fmt.Errorf("agent %s: %w", id, err)
	}
	return a, nil
}

// AgentByEmail finds an agent by email, case-insensitively, or ErrNotFound.
func (s *Store) AgentByEmail(_ context.Context, email string) (chat.Agent, error) {
	var a chat.Agent
	err := s.view(func(tx *bbolt.Tx) error {
		id := tx.Bucket(bAgentEmail).Get([]byte(strings.ToLower(email)))
		if id == nil {
			return chat.ErrNotFound
		}
		var ok bool
		var err error
		a, ok, err = getAgent(tx, id)
		if err == nil && !ok {
			err = chat.ErrNotFound
		}
		return err
	})
	if err != nil {
		return chat.Agent{}, fmt.Errorf("agent by email: %w", err)
	}
	return a, nil
}

// Agents returns every agent ordered by (lower-cased) email.
func (s *Store) Agents(context.Context) ([]chat.Agent, error) {
	var out []chat.Agent
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bAgentEmail).ForEach(func(_, id []byte) error {
			a, ok, err := getAgent(tx, id)
			if ok {
				out = append(out, a)
			}
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

// sessionPurge is the most expired sessions PutSession deletes at once.
const sessionPurge = 100

// PutSession stores an agent session. It also deletes a few sessions that
// have expired, oldest first, so that they do not pile up.
func (s *Store) PutSession(_ context.Context, sess chat.Session) error {
	if sess.ID == "" {
		return fmt.Errorf("put session: empty ID: %w", chat.ErrInvalid)
	}
	now := time.Now()
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		var old chat.Session
		found, err := get(tx, bSessions, []byte(sess.ID), &old)
		if err != nil {
			return err
		}
		exp := tx.Bucket(bSessionExp)
		if found {
			if err := exp.Delete(append(appendTime(nil, old.ExpiresAt), old.ID...)); err != nil {
				return err
			}
		}
		if err := exp.Put(append(appendTime(nil, sess.ExpiresAt), sess.ID...), nil); err != nil {
			return err
		}
		if err := put(tx, bSessions, []byte(sess.ID), sess); err != nil {
			return err
		}
		return purgeSessions(tx, now)
	}, nil) // no conversation, visitor or site record changes
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	return nil
}

// purgeSessions deletes up to sessionPurge sessions expired at now.
func purgeSessions(tx *bbolt.Tx, now time.Time) error {
	limit := appendTime(nil, now)
	c := tx.Bucket(bSessionExp).Cursor()
	sessions := tx.Bucket(bSessions)
	n := 0
	for k, _ := c.First(); k != nil && n < sessionPurge && bytes.Compare(k[:len(limit)], limit) <= 0; k, _ = c.First() {
		if err := sessions.Delete(k[len(limit):]); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
		n++
	}
	return nil
}

// Session returns a session; ErrNotFound if absent or expired at now.
// Expired sessions stay in the file until deleted or replaced.
func (s *Store) Session(_ context.Context, id string, now time.Time) (chat.Session, error) {
	var sess chat.Session
	err := s.view(func(tx *bbolt.Tx) error {
		ok, err := get(tx, bSessions, []byte(id), &sess)
		if err == nil && (!ok || !now.Before(sess.ExpiresAt)) {
			err = chat.ErrNotFound
		}
		return err
	})
	if err != nil {
		// The ID is a secret's digest: keep it out of errors and logs.
		return chat.Session{}, fmt.Errorf("session: %w", err)
	}
	return sess, nil
}

// DeleteSession removes a session; deleting an absent one is not an error.
func (s *Store) DeleteSession(_ context.Context, id string) error {
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		var old chat.Session
		found, err := get(tx, bSessions, []byte(id), &old)
		if err != nil || !found {
			return err
		}
		if err := tx.Bucket(bSessionExp).Delete(append(appendTime(nil, old.ExpiresAt), old.ID...)); err != nil {
			return err
		}
		return tx.Bucket(bSessions).Delete([]byte(id))
	}, nil) // no conversation, visitor or site record changes
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// PutMetaIfAbsent stores value under k unless k exists, and returns the
// value in force. Values are stored behind a one-byte marker so that an
// empty value is told apart from an absent key.
func (s *Store) PutMetaIfAbsent(_ context.Context, k string, value []byte) ([]byte, error) {
	if k == "" {
		return nil, fmt.Errorf("put meta: empty key: %w", chat.ErrInvalid)
	}
	var out []byte
	err := s.updateKnown(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMeta)
		if cur := b.Get([]byte(k)); cur != nil {
			out = append([]byte{}, cur[1:]...)
			return nil
		}
		out = append([]byte{}, value...)
		return b.Put([]byte(k), metaValue(value))
	}, nil) // no conversation, visitor or site record changes
	if err != nil {
		return nil, fmt.Errorf("put meta %s: %w", k, err)
	}
	return out, nil
}
