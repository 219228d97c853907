package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Store is the durable state of a Lifeline deployment. The embedded default
// lives in internal/store/bolt; internal/redis serves many nodes. Every
// implementation passes chattest.TestStore.
//
// Methods return ErrNotFound, ErrConflict, ErrCapacity or ErrInvalid
// (wrapped) for the conditions documented on each.
type Store interface {
	// PutSite creates or replaces a site. ErrInvalid if Key is empty.
	PutSite(ctx context.Context, s Site) error
	// Site returns the site with the key, or ErrNotFound.
	Site(ctx context.Context, key string) (Site, error)
	// Sites returns every site ordered by key.
	Sites(ctx context.Context) ([]Site, error)

	// PutVisitor creates or replaces a visitor. ErrInvalid if ID or SiteKey is empty.
	PutVisitor(ctx context.Context, v Visitor) error
	// UpdateVisitor atomically reads the visitor, applies fn and writes
	// the result as PutVisitor does, so that writers racing on one
	// visitor (two tabs, two nodes) lose none of each other's changes. If
	// fn returns an error nothing is written and that error is returned.
	// fn may be called more than once and must not have side effects; it
	// must not change ID or SiteKey (ErrInvalid). ErrNotFound if the
	// visitor does not exist.
	UpdateVisitor(ctx context.Context, id string, fn func(*Visitor) error) (Visitor, error)
	// Visitor returns the visitor, or ErrNotFound.
	Visitor(ctx context.Context, id string) (Visitor, error)
	// FindVisitors returns the visitors of a site matching every non-empty
	// field of q (Email compares case-insensitively).
	FindVisitors(ctx context.Context, q VisitorQuery) ([]Visitor, error)

	// CreateAgent adds an agent. ErrConflict if the ID or the email
	// (case-insensitive) is taken.
	CreateAgent(ctx context.Context, a Agent) error
	// UpdateAgent replaces an existing agent. ErrNotFound if absent,
	// ErrConflict if the new email belongs to another agent.
	UpdateAgent(ctx context.Context, a Agent) error
	// Agent returns the agent, or ErrNotFound.
	Agent(ctx context.Context, id string) (Agent, error)
	// AgentByEmail finds an agent by email, case-insensitively, or ErrNotFound.
	AgentByEmail(ctx context.Context, email string) (Agent, error)
	// Agents returns every agent ordered by email.
	Agents(ctx context.Context) ([]Agent, error)

	// PutSession stores an agent session.
	PutSession(ctx context.Context, s Session) error
	// Session returns a session; ErrNotFound if absent or expired at now.
	Session(ctx context.Context, id string, now time.Time) (Session, error)
	// DeleteSession removes a session; deleting an absent one is not an error.
	DeleteSession(ctx context.Context, id string) error

	// CreateConversation stores a new conversation. ErrConflict if its ID or
	// Ref is taken; ErrInvalid if ID, Ref, SiteKey or VisitorID is empty or
	// Status is not valid.
	CreateConversation(ctx context.Context, c Conversation) error
	// Conversation returns the conversation, or ErrNotFound.
	Conversation(ctx context.Context, id string) (Conversation, error)
	// ConversationByRef finds a conversation by its reference
	// (case-insensitive), or ErrNotFound.
	ConversationByRef(ctx context.Context, ref string) (Conversation, error)
	// Conversations lists conversations matching q, newest first.
	Conversations(ctx context.Context, q ConversationQuery) ([]Conversation, error)
	// UpdateConversation atomically reads the conversation, applies fn and
	// writes the result. If fn returns an error nothing is written and that
	// error is returned. fn may be called more than once (optimistic
	// retries) and must not have side effects. fn must not change ID, Ref,
	// SiteKey, VisitorID or LastSeq.
	UpdateConversation(ctx context.Context, id string, fn func(*Conversation) error) (Conversation, error)
	// Assign atomically gives a waiting conversation to an agent, setting
	// Status active, AgentID and AssignedAt (= now). It returns ErrConflict if
	// the conversation is not waiting, and ErrCapacity if the agent already has
	// capacity or more active or pending conversations (capacity <= 0 means
	// no limit). Exactly one of several racing Assign calls wins.
	Assign(ctx context.Context, id, agentID string, capacity int, now time.Time) (Conversation, error)
	// AgentLoad returns how many active or pending conversations the agent has.
	AgentLoad(ctx context.Context, agentID string) (int, error)

	// AppendMessage durably stores m at the next sequence number of its
	// conversation and returns it with Seq set (and At set to now if zero).
	// It also advances the conversation's LastSeq and UpdatedAt and makes
	// the message its Last. If a message with the same ClientID is already
	// in the conversation, it returns that stored message and created =
	// false, storing nothing.
	// ErrNotFound if the conversation does not exist; ErrInvalid if ClientID
	// or ConversationID is empty.
	AppendMessage(ctx context.Context, m Message) (stored Message, created bool, err error)
	// Messages returns up to limit messages with Seq > afterSeq in order
	// (limit <= 0 means all). ErrNotFound if the conversation does not exist.
	Messages(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]Message, error)

	// AddNote stores an internal note. ErrNotFound if the conversation does
	// not exist.
	AddNote(ctx context.Context, n Note) error
	// Notes returns a conversation's notes, oldest first.
	Notes(ctx context.Context, conversationID string) ([]Note, error)

	// PutMetaIfAbsent stores value under key unless the key exists, and
	// returns the value in force. Nodes use it to agree on shared secrets.
	PutMetaIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error)

	// PutMeta stores value under key, replacing any value. Nodes keep
	// site-wide settings here (detector rules, playbooks).
	PutMeta(ctx context.Context, key string, value []byte) error
	// Meta returns the value under key, or ErrNotFound.
	Meta(ctx context.Context, key string) ([]byte, error)
	// DeleteMeta removes key; removing an absent key is not an error.
	DeleteMeta(ctx context.Context, key string) error
	// AddCounters adds deltas to the named counters of the set key,
	// atomically, creating them at zero. Every node adds its own deltas.
	AddCounters(ctx context.Context, key string, deltas map[string]int64) error
	// Counters returns the set's counters; an empty map if none exist.
	Counters(ctx context.Context, key string) (map[string]int64, error)
	// AppendLog adds entry to the front of the log key and keeps the newest
	// max entries (an audit trail).
	AppendLog(ctx context.Context, key string, entry []byte, max int) error
	// Log returns up to limit entries of the log key, newest first.
	Log(ctx context.Context, key string, limit int) ([][]byte, error)

	// DeleteConversation removes a conversation with its messages, notes,
	// reference and index entries, and frees its agent's load. Deleting an
	// absent conversation is not an error. Erasure and retention use it.
	DeleteConversation(ctx context.Context, id string) error
	// DeleteVisitor removes a visitor record and its lookup index entries,
	// not its conversations. Deleting an absent visitor is not an error.
	DeleteVisitor(ctx context.Context, id string) error

	// PutOutbox adds item to the durable queue, or replaces the item with
	// its ID (data and due time). ErrInvalid if queue or item.ID is empty.
	PutOutbox(ctx context.Context, queue string, item OutboxItem) error
	// ClaimOutbox returns up to limit items of the queue that are due at
	// now, earliest first, and moves each one's due time to now+lease, so
	// that no other caller claims it meanwhile. An item that is neither
	// deleted nor put again comes back after the lease: a crashed worker's
	// jobs are not lost. Of racing claims, each item goes to one.
	ClaimOutbox(ctx context.Context, queue string, now time.Time, lease time.Duration, limit int) ([]OutboxItem, error)
	// DeleteOutbox removes an item; deleting an absent one is not an error.
	DeleteOutbox(ctx context.Context, queue, id string) error
	// OutboxItems lists up to limit items of the queue (limit <= 0 means
	// 100), earliest due first, without claiming them.
	OutboxItems(ctx context.Context, queue string, limit int) ([]OutboxItem, error)

	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	// Close releases the store. Calls after Close return ErrClosed.
	Close() error
}

// MetaJSON decodes the JSON value stored under key (with PutMeta) into v
// and reports whether there was one. A missing key is not an error: it
// leaves v as it was and reports false, so a caller that reads settings,
// health or a journey chooses its own default.
func MetaJSON(ctx context.Context, st Store, key string, v any) (bool, error) {
	data, err := st.Meta(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode stored %s: %w", key, err)
	}
	return true, nil
}

// VisitorQuery selects visitors of one site.
type VisitorQuery struct {
	SiteKey    string
	Email      string
	ExternalID string
	Limit      int // <= 0 means 100
}

// ConversationQuery selects conversations. Empty fields match everything.
type ConversationQuery struct {
	SiteKey   string
	VisitorID string
	AgentID   string
	Statuses  []Status
	Limit     int // <= 0 means 100
}

// OutboxItem is one job of a durable queue (webhook deliveries). Data is
// opaque to the store.
type OutboxItem struct {
	ID   string
	Due  time.Time
	Data []byte
}
