package bolt

import (
	"hash/maphash"

	bbolt "go.etcd.io/bbolt"
)

// clientIDs is the append writer's record of the client IDs that the
// conversations it appends to hold, as clientHash values: those in the
// B+tree when it first looked, those then pending in the log, and those it
// has appended since. A message whose client ID is not among them is new
// and needs no lookup in the B+tree; one whose is (a retry, or a hash
// collision) is looked up as before. That lookup, a cursor seek through
// cold pages for every message, was 4–5 % of the node's CPU at 10,000
// msgs/s.
//
// It holds every ID a conversation can have stored because the append
// writer is the only way a client ID reaches the B+tree (a checkpoint
// copies what the writer logged, or what Open replayed into the pending
// log), and because a set is read from one consistent view: a read
// transaction and the pending messages taken after it began, which the
// writer checks as prepare always has (Store.released), forgetting the
// sets made from a view that failed the check. Deletions only make a set
// say "maybe" where the answer is no, which costs a lookup.
//
// Only the writer goroutine uses it.
type clientIDs struct {
	convs map[string]map[uint64]struct{} // a nil set: too many, look up every ID
	n     int                            // hashes held
	made  []string                       // sets made since the last keep or forget

	perConv int // most hashes kept for a conversation (maxConvClientIDs; smaller in tests)
	total   int // bound on the sets' size (maxClientIDs; smaller in tests): see size
}

// Bounds on clientIDs' memory. A hash takes about 20 bytes in its set and
// a conversation's entry about 160 (convWeight hashes), so the sets stay
// under about 5 MiB. A conversation over perConv messages is looked up
// message by message, as is one whose set would take the sets past total;
// once they reach total, they are dropped after the group, and made again
// as conversations append, each by one scan of its client IDs. Sets are
// only dropped between groups: one made in the middle of a group would
// miss the messages the group has given sequence numbers so far.
const (
	maxConvClientIDs = 4096
	maxClientIDs     = 1 << 18
	convWeight       = 8
)

// size is the sets' size in hashes, a conversation counting convWeight.
func (c *clientIDs) size() int { return c.n + convWeight*len(c.convs) }

func newClientIDs() clientIDs {
	return clientIDs{convs: make(map[string]map[uint64]struct{}), perConv: maxConvClientIDs, total: maxClientIDs}
}

// known returns conversation id's set, if one was read; a nil set means
// look every ID up.
func (c *clientIDs) known(id string) (map[uint64]struct{}, bool) {
	set, ok := c.convs[id]
	return set, ok
}

// read makes conversation id's set from cur (on the B+tree's messages
// bucket) and pending, the conversation's pending messages taken after
// cur's transaction began. key is scratch space, returned for reuse.
func (c *clientIDs) read(id string, cur *bbolt.Cursor, pending []pendingMsg, key []byte) (map[uint64]struct{}, []byte) {
	p := appendClientKey(key[:0], id, "")
	set := make(map[uint64]struct{}, len(pending))
	for k, _ := cur.Seek(p); k != nil && hasPrefix(k, p); k, _ = cur.Next() {
		if len(set) == c.perConv {
			set = nil
			break
		}
		set[maphash.Bytes(clientSeed, k[len(p):])] = struct{}{}
	}
	for i := 0; set != nil && i < len(pending); i++ {
		set[pending[i].cid] = struct{}{}
		if len(set) > c.perConv {
			set = nil
		}
	}
	if c.size()+len(set) > c.total {
		set = nil
	}
	c.convs[id] = set
	c.n += len(set)
	c.made = append(c.made, id)
	return set, p
}

// add records that conversation id now holds client ID hash h.
func (c *clientIDs) add(id string, h uint64) {
	set := c.convs[id]
	if set == nil {
		return
	}
	if len(set) == c.perConv {
		c.convs[id] = nil
		c.n -= len(set)
		return
	}
	if _, ok := set[h]; !ok {
		set[h] = struct{}{}
		c.n++
	}
}

// keep accepts the sets made since the last keep or forget (the view
// they were read from held), and drops every set once they hold total.
// The writer calls it between groups.
func (c *clientIDs) keep() {
	c.made = c.made[:0]
	if c.size() >= c.total {
		clear(c.convs)
		c.n = 0
	}
}

// forget drops the sets made since the last keep or forget: the view they
// were read from may have missed messages a checkpoint moved meanwhile.
func (c *clientIDs) forget() {
	for _, id := range c.made {
		c.n -= len(c.convs[id])
		delete(c.convs, id)
	}
	c.made = c.made[:0]
}
