package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/chat"
)

// Agent load and Assign.
//
// An agent's load lives in {a:AGENT}:open, a hash from conversation ID to an
// entry "r:<ms>:<token>" (reserved at Redis time ms, assignment in flight)
// or "c:0:<token>" (committed). The conversation itself lives in another
// slot, so no single script can check capacity and claim the conversation
// on a cluster. Assign therefore runs in three steps:
//
//  1. reserveScript, on the agent's slot, atomically counts the entries and
//     adds a reservation if the agent is under capacity (ErrCapacity
//     otherwise). In-flight reservations count, so racing Assigns on any
//     nodes can never push an agent over capacity.
//  2. A WATCH/MULTI compare-and-set on {c:ID} moves the conversation from
//     waiting to active; exactly one racing node wins, the others see a
//     conflict.
//  3. The winner rewrites the entry as committed; a loser releases its own
//     reservation with a compare-and-delete on its token.
//
// Every write that leaves a conversation active or pending with an agent
// writes the committed entry after the commit, so a release or repair that
// raced with it is overwritten. Entries that outlive the truth (a node died
// between steps, a conversation was resolved) are removed by repairLoad,
// which AgentLoad runs: it drops committed entries whose conversation is no
// longer open with the agent, and reservations older than reserveGrace.
// AgentLoad counts only entries the conversation records confirm, so it is
// exact; a reservation left by a crashed node can make Assign report
// ErrCapacity for at most reserveGrace.

// reserveGrace is how long a reservation protects an in-flight Assign from
// repair. It must be much longer than one Assign takes.
const reserveGrace = 10 * time.Second

// reserveScript adds a reservation for ARGV[1] with token ARGV[2] unless
// one exists (returns 0) or the hash holds capacity ARGV[3] or more
// entries (returns -1, ARGV[3] <= 0 means no limit). Returns 1 if added.
var reserveScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local cap = tonumber(ARGV[3])
if cap > 0 and redis.call('HLEN', KEYS[1]) >= cap then return -1 end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], 'r:' .. ms .. ':' .. ARGV[2])
return 1
`)

// dropLoadScript deletes entry ARGV[1] if it is still the one with token
// ARGV[2] and is committed or a reservation older than ARGV[3] ms
// (ARGV[3] = 0 drops any state).
var dropLoadScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local state, ms, tok = string.match(v, '^(%a):(%d+):(.*)$')
if tok ~= ARGV[2] then return 0 end
local grace = tonumber(ARGV[3])
if state == 'r' and grace > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now - tonumber(ms) < grace then return 0 end
end
return redis.call('HDEL', KEYS[1], ARGV[1])
`)

func (s *Store) reserve(ctx context.Context, agent, conv, tok string, capacity int) (int, error) {
	r, err := reserveScript.Run(ctx, s.rdb, []string{s.k.load(agent)}, conv, tok, capacity).Int()
	return r, wrap(err, "reserve agent %s for %s", agent, conv)
}

// ensureLoad records conv as committed load of agent.
func (s *Store) ensureLoad(ctx context.Context, agent, conv string) error {
	return wrap(s.rdb.HSet(ctx, s.k.load(agent), conv, "c:0:"+token()).Err(), "record load of agent %s", agent)
}

// releaseLoad drops this caller's own reservation. It runs after a failure,
// so its own errors are only logged.
func (s *Store) releaseLoad(ctx context.Context, agent, conv, tok string) {
	ctx = context.WithoutCancel(ctx)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := dropLoadScript.Run(ctx, s.rdb, []string{s.k.load(agent)}, conv, tok, 0).Err(); err != nil {
		s.log.Warn("redis store: release reservation", "agent", agent, "conv", conv, "err", err)
	}
}

// repairLoad checks the agent's entries (only conv's, if given) against
// the conversation records, removes stale ones and returns how many
// conversations are open with the agent.
func (s *Store) repairLoad(ctx context.Context, agent, only string) (int, error) {
	key := s.k.load(agent)
	entries, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return 0, wrap(err, "load of agent %s", agent)
	}
	ids := make([]string, 0, len(entries))
	for id := range entries {
		if only == "" || id == only {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	convs, err := s.readConvs(ctx, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if c, ok := convs[id]; ok && openWith(c) == agent {
			n++
			continue
		}
		tok := ""
		if parts := strings.SplitN(entries[id], ":", 3); len(parts) == 3 {
			tok = parts[2]
		}
		if err := dropLoadScript.Run(ctx, s.rdb, []string{key}, id, tok, reserveGrace.Milliseconds()).Err(); err != nil {
			return 0, wrap(err, "repair load of agent %s", agent)
		}
	}
	return n, nil
}

// AgentLoad returns how many active or pending conversations the agent
// has, recounted from the agent's entries checked against the conversation
// records (and repairing stale entries on the way).
func (s *Store) AgentLoad(ctx context.Context, agentID string) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	return s.repairLoad(ctx, agentID, "")
}

// Assign gives a waiting conversation to an agent: reserve capacity on the
// agent's slot, compare-and-set the conversation on its slot, and commit or
// release the reservation (see the comment at the top of load.go).
func (s *Store) Assign(ctx context.Context, id, agentID string, capacity int, now time.Time) (chat.Conversation, error) {
	if err := s.check(); err != nil {
		return chat.Conversation{}, err
	}
	if agentID == "" {
		return chat.Conversation{}, fmt.Errorf("assign %s: empty agent: %w", id, chat.ErrInvalid)
	}
	c, err := s.readConv(ctx, s.rdb, id)
	if err != nil {
		return c, err
	}
	if c.Status != chat.StatusWaiting {
		return chat.Conversation{}, fmt.Errorf("assign %s: status %s: %w", id, c.Status, chat.ErrConflict)
	}
	tok := token()
	r, err := s.reserve(ctx, agentID, id, tok, capacity)
	if err != nil {
		return chat.Conversation{}, err
	}
	if r < 0 { // maybe full of stale entries: repair and try once more
		if _, err := s.repairLoad(ctx, agentID, ""); err != nil {
			return chat.Conversation{}, err
		}
		if r, err = s.reserve(ctx, agentID, id, tok, capacity); err != nil {
			return chat.Conversation{}, err
		}
		if r < 0 {
			return chat.Conversation{}, fmt.Errorf("assign %s to %s: %w", id, agentID, chat.ErrCapacity)
		}
	}
	var lost chat.Conversation // the state that beat us, if any
	got, err := s.update(ctx, id, func(c *chat.Conversation) error {
		if c.Status != chat.StatusWaiting {
			lost = *c
			return fmt.Errorf("assign %s: status %s: %w", id, c.Status, chat.ErrConflict)
		}
		c.Status = chat.StatusActive
		c.AgentID = agentID
		c.AssignedAt = now
		c.UpdatedAt = now
		return nil
	})
	// On a contract error nothing was written and the reservation is ours
	// to release, unless a racing Assign gave the conversation to the same
	// agent: then the entry is the winner's load (it relied on our
	// reservation and rewrites the entry after its commit, which may not
	// have happened yet), and dropping it would let a third Assign overfill
	// the agent. Likewise when no connection could be made, nothing was
	// sent (as while Redis comes back from a restart and the pool still
	// refuses to dial): release it, or the agent would look full for
	// reserveGrace. On any other Redis error the outcome is unknown: keep
	// it, and repairLoad drops it after reserveGrace unless the write
	// happened.
	if r == 1 && openWith(lost) != agentID &&
		(errors.Is(err, chat.ErrConflict) || errors.Is(err, chat.ErrNotFound) || errors.Is(err, chat.ErrInvalid) || notSent(err)) {
		s.releaseLoad(ctx, agentID, id, tok)
	}
	return got, err
}

// notSent reports whether err means no connection to Redis could be made,
// so the command was never sent.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
