// Package redis implements chat.Store and chat.Broker on Redis through
// go-redis, so that many stateless Lifeline nodes share one deployment's
// state; a single server and a Redis Cluster both work.
//
// # Key layout
//
// Every key starts with StoreOptions.Prefix (or BrokerOptions.Prefix),
// outside any hash tag, so deployments and tests share a server without
// sharing keys. The hash tag then decides the cluster slot:
//
//	{sites}                 hash   site key -> site JSON
//	{agents}                hash   agent ID -> agent JSON
//	{agents}:email          hash   lower-case email -> agent ID (uniqueness)
//	{agents}:emailof        hash   agent ID -> lower-case email
//	{v:ID}                  string visitor JSON
//	{vx:SITE}[:em:E|:ext:X] zset   visitor IDs of a site (by email, by external ID)
//	{s:ID}                  string session JSON, expiring with the session
//	{r:REF}                 string upper-case reference -> conversation ID
//	{c:ID}                  hash   conversation: v (JSON as written by Go)
//	{c:ID}:s                hash   seq (last seq), upd (last message time), last (its preview), advanced by appends
//	{c:ID}:m                list   message JSON; element i has seq i+1
//	{c:ID}:cid              hash   client ID -> seq (idempotent appends)
//	{c:ID}:n                list   note JSON
//	{ix:NAME}               zset   conversation IDs scored by creation time (µs):
//	                               all, site:KEY, vis:ID, ag:ID, st:STATUS
//	{a:ID}:open             hash   conversation ID -> load entry of an agent
//	{meta}:KEY              string shared node metadata
//
// A conversation's own keys share the hash tag {c:ID}, so one Lua script
// appends a message atomically on a cluster. Indexes live in other slots:
// they are kept a superset of the truth (an entry is added before the
// conversation is written and again after, and removed only after, followed
// by a re-check that puts it back if it belongs) and every read verifies
// entries against the conversation record, dropping stale ones. A crash
// between steps therefore leaves at worst an extra entry, which the next
// read repairs; it never hides a conversation from the queue.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/chat"
)

// StoreOptions configures a Store. The zero value is usable.
type StoreOptions struct {
	// Prefix is put before every key, outside the hash tag, to isolate
	// deployments (and tests) sharing a server. Defaults to "lifeline:".
	Prefix string
	// Logger receives repair and retry events. If nil, logs are discarded.
	Logger *slog.Logger
}

// Store is a chat.Store on Redis or Redis Cluster. It is safe for
// concurrent use by many goroutines and many nodes.
type Store struct {
	rdb    redis.UniversalClient
	k      keys
	log    *slog.Logger
	closed atomic.Bool
	// watchers holds a slot per WATCH transaction running (watch).
	watchers chan struct{}
}

var _ chat.Store = (*Store)(nil)

// NewStore returns a Store using client, which may be a *redis.Client or a
// *redis.ClusterClient. The caller keeps ownership of client: Close does
// not close it.
func NewStore(client redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "lifeline:"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Store{rdb: client, k: keys{opts.Prefix}, log: opts.Logger,
		watchers: make(chan struct{}, max(1, poolSize(client)/2))}
}

// poolSize is how many connections client keeps per server.
func poolSize(client redis.UniversalClient) int {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().PoolSize
	case *redis.ClusterClient:
		return c.Options().PoolSize
	}
	return 10 * runtime.GOMAXPROCS(0) // go-redis's default
}

// watch runs fn in a WATCH transaction on keys. fn holds the transaction's
// connection and makes other calls meanwhile (index and load updates, on
// keys of other hash slots), each needing a connection of its own, so
// watches may hold at most half the pool at once: then every watch finds
// a connection for its calls. Unbounded, as many concurrent updates as the
// pool had connections each held one and waited for a second until their
// contexts ended (a route round assigning 64 conversations at once did).
func (s *Store) watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	select {
	case s.watchers <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.watchers }()
	return s.rdb.Watch(ctx, fn, keys...)
}

// keys builds the key names described in the package comment.
type keys struct{ p string }

func (k keys) sites() string            { return k.p + "{sites}" }
func (k keys) agents() string           { return k.p + "{agents}" }
func (k keys) agentEmails() string      { return k.p + "{agents}:email" }
func (k keys) agentEmailOf() string     { return k.p + "{agents}:emailof" }
func (k keys) visitor(id string) string { return k.p + "{v:" + id + "}" }
func (k keys) session(id string) string { return k.p + "{s:" + id + "}" }
func (k keys) ref(ref string) string    { return k.p + "{r:" + strings.ToUpper(ref) + "}" }
func (k keys) conv(id string) string    { return k.p + "{c:" + id + "}" }
func (k keys) seq(id string) string     { return k.p + "{c:" + id + "}:s" }
func (k keys) msgs(id string) string    { return k.p + "{c:" + id + "}:m" }
func (k keys) cids(id string) string    { return k.p + "{c:" + id + "}:cid" }
func (k keys) notes(id string) string   { return k.p + "{c:" + id + "}:n" }
func (k keys) ix(name string) string    { return k.p + "{ix:" + name + "}" }
func (k keys) load(agent string) string { return k.p + "{a:" + agent + "}:open" }
func (k keys) meta(key string) string   { return k.p + "{meta}:" + key }
func (k keys) visitorIx(site, kind, val string) string {
	if kind == "" {
		return k.p + "{vx:" + site + "}"
	}
	return k.p + "{vx:" + site + "}:" + kind + ":" + val
}

func (s *Store) check() error {
	if s.closed.Load() {
		return chat.ErrClosed
	}
	return nil
}

// wrap adds what the store was doing to a Redis error, leaving nil alone.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis store: "+format+": %w", append(args, err)...)
}

func token() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// PutSite creates or replaces a site.
func (s *Store) PutSite(ctx context.Context, site chat.Site) error {
	if err := s.check(); err != nil {
		return err
	}
	if site.Key == "" {
		return fmt.Errorf("put site: empty key: %w", chat.ErrInvalid)
	}
	b, err := json.Marshal(site)
	if err != nil {
		return fmt.Errorf("put site %s: %w", site.Key, err)
	}
	return wrap(s.rdb.HSet(ctx, s.k.sites(), site.Key, b).Err(), "put site %s", site.Key)
}

// Site returns the site with the key, or chat.ErrNotFound.
func (s *Store) Site(ctx context.Context, key string) (chat.Site, error) {
	var site chat.Site
	if err := s.check(); err != nil {
		return site, err
	}
	b, err := s.rdb.HGet(ctx, s.k.sites(), key).Bytes()
	if errors.Is(err, redis.Nil) {
		return site, fmt.Errorf("site %s: %w", key, chat.ErrNotFound)
	}
	if err != nil {
		return site, wrap(err, "get site %s", key)
	}
	if err := json.Unmarshal(b, &site); err != nil {
		return site, fmt.Errorf("decode site %s: %w", key, err)
	}
	return site, nil
}

// Sites returns every site ordered by key.
func (s *Store) Sites(ctx context.Context) ([]chat.Site, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	m, err := s.rdb.HGetAll(ctx, s.k.sites()).Result()
	if err != nil {
		return nil, wrap(err, "list sites")
	}
	out := make([]chat.Site, 0, len(m))
	for k, v := range m {
		var site chat.Site
		if err := json.Unmarshal([]byte(v), &site); err != nil {
			return nil, fmt.Errorf("decode site %s: %w", k, err)
		}
		out = append(out, site)
	}
	slices.SortFunc(out, func(a, b chat.Site) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// agentRecord is how an agent is stored: PasswordHash is hidden from JSON
// on chat.Agent but must be kept.
type agentRecord struct {
	chat.Agent
	PasswordHash []byte `json:"password_hash,omitempty"`
}

func encodeAgent(a chat.Agent) ([]byte, error) {
	return json.Marshal(agentRecord{Agent: a, PasswordHash: a.PasswordHash})
}

func decodeAgent(b []byte) (chat.Agent, error) {
	var r agentRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return chat.Agent{}, err
	}
	r.Agent.PasswordHash = r.PasswordHash
	return r.Agent, nil
}

// putAgentScript writes an agent and its email index in the {agents} slot.
// ARGV: id, json, lower email, mode ("create" or "update").
// Returns 1 on success, 0 if the ID exists (create) or is absent (update),
// -1 if the email belongs to another agent.
var putAgentScript = redis.NewScript(`
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if ARGV[4] == 'create' and exists then return 0 end
if ARGV[4] == 'update' and not exists then return 0 end
if ARGV[3] ~= '' then
  local owner = redis.call('HGET', KEYS[2], ARGV[3])
  if owner and owner ~= ARGV[1] then return -1 end
end
local old = redis.call('HGET', KEYS[3], ARGV[1])
if old and old ~= ARGV[3] then redis.call('HDEL', KEYS[2], old) end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

func (s *Store) putAgent(ctx context.Context, a chat.Agent, mode string) error {
	if err := s.check(); err != nil {
		return err
	}
	if a.ID == "" {
		return fmt.Errorf("%s agent: empty ID: %w", mode, chat.ErrInvalid)
	}
	b, err := encodeAgent(a)
	if err != nil {
		return fmt.Errorf("%s agent %s: %w", mode, a.ID, err)
	}
	r, err := putAgentScript.Run(ctx, s.rdb, []string{s.k.agents(), s.k.agentEmails(), s.k.agentEmailOf()},
		a.ID, b, strings.ToLower(a.Email), mode).Int()
	if err != nil {
		return wrap(err, "%s agent %s", mode, a.ID)
	}
	switch {
	case r == 0 && mode == "create":
		return fmt.Errorf("create agent %s: ID taken: %w", a.ID, chat.ErrConflict)
	case r == 0:
		return fmt.Errorf("update agent %s: %w", a.ID, chat.ErrNotFound)
	case r < 0:
		return fmt.Errorf("%s agent %s: email taken: %w", mode, a.ID, chat.ErrConflict)
	}
	return nil
}

// CreateAgent adds an agent; chat.ErrConflict if the ID or email is taken.
func (s *Store) CreateAgent(ctx context.Context, a chat.Agent) error {
	return s.putAgent(ctx, a, "create")
}

// UpdateAgent replaces an existing agent.
func (s *Store) UpdateAgent(ctx context.Context, a chat.Agent) error {
	return s.putAgent(ctx, a, "update")
}

// Agent returns the agent, or chat.ErrNotFound.
func (s *Store) Agent(ctx context.Context, id string) (chat.Agent, error) {
	if err := s.check(); err != nil {
		return chat.Agent{}, err
	}
	b, err := s.rdb.HGet(ctx, s.k.agents(), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return chat.Agent{}, fmt.Errorf("agent %s: %w", id, chat.ErrNotFound)
	}
	if err != nil {
		return chat.Agent{}, wrap(err, "get agent %s", id)
	}
	a, err := decodeAgent(b)
	if err != nil {
		return a, fmt.Errorf("decode agent %s: %w", id, err)
	}
	return a, nil
}

// agentByEmailScript reads the email index and the agent in one step.
var agentByEmailScript = redis.NewScript(`
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return false end
return redis.call('HGET', KEYS[1], id)
`)

// AgentByEmail finds an agent by email, case-insensitively.
func (s *Store) AgentByEmail(ctx context.Context, email string) (chat.Agent, error) {
	if err := s.check(); err != nil {
		return chat.Agent{}, err
	}
	lower := strings.ToLower(email)
	b, err := agentByEmailScript.Run(ctx, s.rdb, []string{s.k.agents(), s.k.agentEmails()}, lower).Text()
	if errors.Is(err, redis.Nil) || (err == nil && email == "") {
		return chat.Agent{}, fmt.Errorf("agent with email %q: %w", email, chat.ErrNotFound)
	}
	if err != nil {
		return chat.Agent{}, wrap(err, "get agent by email")
	}
	a, err := decodeAgent([]byte(b))
	if err != nil {
		return a, fmt.Errorf("decode agent: %w", err)
	}
	return a, nil
}

// Agents returns every agent ordered by email.
func (s *Store) Agents(ctx context.Context) ([]chat.Agent, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	m, err := s.rdb.HGetAll(ctx, s.k.agents()).Result()
	if err != nil {
		return nil, wrap(err, "list agents")
	}
	out := make([]chat.Agent, 0, len(m))
	for id, v := range m {
		a, err := decodeAgent([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("decode agent %s: %w", id, err)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b chat.Agent) int {
		if c := strings.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// sessionGrace keeps a session's key at least this long, so a caller whose
// clock disagrees with the server's still sees the session until its own
// now passes ExpiresAt; Session checks ExpiresAt itself.
const sessionGrace = time.Hour

// PutSession stores an agent session; Redis expires the key after
// ExpiresAt (or after an hour, whichever is later).
func (s *Store) PutSession(ctx context.Context, sess chat.Session) error {
	if err := s.check(); err != nil {
		return err
	}
	if sess.ID == "" {
		return fmt.Errorf("put session: empty ID: %w", chat.ErrInvalid)
	}
	b, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	var ttl time.Duration
	if !sess.ExpiresAt.IsZero() {
		ttl = max(time.Until(sess.ExpiresAt), sessionGrace)
	}
	return wrap(s.rdb.Set(ctx, s.k.session(sess.ID), b, ttl).Err(), "put session")
}

// Session returns a session; chat.ErrNotFound if absent or expired at now.
func (s *Store) Session(ctx context.Context, id string, now time.Time) (chat.Session, error) {
	var sess chat.Session
	if err := s.check(); err != nil {
		return sess, err
	}
	b, err := s.rdb.Get(ctx, s.k.session(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return sess, fmt.Errorf("session: %w", chat.ErrNotFound)
	}
	if err != nil {
		return sess, wrap(err, "get session")
	}
	if err := json.Unmarshal(b, &sess); err != nil {
		return sess, fmt.Errorf("decode session: %w", err)
	}
	if !sess.ExpiresAt.IsZero() && !now.Before(sess.ExpiresAt) {
		return chat.Session{}, fmt.Errorf("session expired: %w", chat.ErrNotFound)
	}
	return sess, nil
}

// DeleteSession removes a session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := s.check(); err != nil {
		return err
	}
	return wrap(s.rdb.Del(ctx, s.k.session(id)).Err(), "delete session")
}

// PutMetaIfAbsent stores value under key unless the key exists, and
// returns the value in force (SET NX GET, one atomic command).
func (s *Store) PutMetaIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	old, err := s.rdb.SetArgs(ctx, s.k.meta(key), value, redis.SetArgs{Mode: "NX", Get: true}).Bytes()
	if errors.Is(err, redis.Nil) {
		return slices.Clone(value), nil
	}
	if err != nil {
		return nil, wrap(err, "put meta %s", key)
	}
	return old, nil
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	return wrap(s.rdb.Ping(ctx).Err(), "ping")
}

// Close marks the store closed; later calls return chat.ErrClosed. It does
// not close the client, which the caller owns. It is idempotent.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}
