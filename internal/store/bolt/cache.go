package bolt

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lifelinehq/lifeline/chat"
)

// maxCached bounds each map of the record cache; a full map is emptied
// and refills with what is read next.
const maxCached = 1 << 16

// recordCache keeps decoded conversation and visitor records, which the
// hub reads on every message, and sites, read on every handshake: decoding their JSON was the largest cost of
// a message after the socket writes. Only this process writes the file
// (bbolt holds an exclusive lock), so the cache is exact as long as every
// write drops what it changed after its transaction: Store.update drops
// everything, Store.updateKnown what its caller names.
//
// A reader notes gen before its read transaction and stores what it
// decoded only if gen has not moved since; a writer bumps gen after its
// commit and then deletes the key. So a value read before a commit is
// never stored after it.
type recordCache struct {
	gen atomic.Uint64

	mu       sync.Mutex
	convs    map[string]cachedConv
	visitors map[string]chat.Visitor
	sites    map[string]chat.Site // read on every WebSocket handshake
}

func newRecordCache() *recordCache {
	return &recordCache{convs: make(map[string]cachedConv), visitors: make(map[string]chat.Visitor), sites: make(map[string]chat.Site)}
}

// site returns a deep copy.
func (c *recordCache) site(key string) (chat.Site, bool) {
	c.mu.Lock()
	v, ok := c.sites[key]
	c.mu.Unlock()
	return cloneSite(v), ok
}

func (c *recordCache) putSite(gen uint64, v chat.Site) {
	v = cloneSite(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(c.sites) >= maxCached {
		clear(c.sites)
	}
	c.sites[v.Key] = v
}

func cloneSite(v chat.Site) chat.Site {
	v.Origins = slices.Clone(v.Origins)
	v.Strings = maps.Clone(v.Strings)
	return v
}

// cachedConv is a conversation record as stored, and the sequence number
// and preview of its last message, which the group-commit writer keeps
// current: a conversation read on every message then costs no read
// transaction at all.
type cachedConv struct {
	rec     chat.Conversation
	lastSeq int64
	last    *chat.MessagePreview // nil before the first message; never changed
}

// conversation is the record with LastSeq, Last and UpdatedAt from its
// last message, as getConv returns it.
func (e cachedConv) conversation() chat.Conversation {
	c := e.rec
	c.SetLast(e.lastSeq, e.last)
	return c
}

func (c *recordCache) conv(id string) (cachedConv, bool) {
	c.mu.Lock()
	v, ok := c.convs[id]
	c.mu.Unlock()
	return v, ok
}

func (c *recordCache) putConv(gen uint64, v cachedConv) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(c.convs) >= maxCached {
		clear(c.convs)
	}
	c.convs[v.rec.ID] = v
}

// committed runs after each group commit of appends: the conversations
// that got messages (fresh holds them) move their last message on (ok),
// or, if the commit failed, are dropped.
func (c *recordCache) committed(convs map[string]*groupConv, fresh []pendingMsg, ok bool) {
	c.gen.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, gc := range convs {
		e, found := c.convs[id]
		switch {
		case !found || len(gc.added) == 0:
		case !ok:
			delete(c.convs, id)
		case gc.lastSeq > e.lastSeq:
			e.lastSeq, e.last = gc.lastSeq, chat.PreviewOf(fresh[gc.added[len(gc.added)-1]].m)
			c.convs[id] = e
		}
	}
}

// visitor returns a deep copy: callers may change what they get.
func (c *recordCache) visitor(id string) (chat.Visitor, bool) {
	c.mu.Lock()
	v, ok := c.visitors[id]
	c.mu.Unlock()
	if !ok {
		return v, false
	}
	return cloneVisitor(v), true
}

func (c *recordCache) putVisitor(gen uint64, v chat.Visitor) {
	v = cloneVisitor(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(c.visitors) >= maxCached {
		clear(c.visitors)
	}
	c.visitors[v.ID] = v
}

// forgetConv, forgetVisitor and forgetAll run after a transaction that
// wrote the records, whether it committed or not.
func (c *recordCache) forgetConv(id string) {
	c.gen.Add(1)
	c.mu.Lock()
	delete(c.convs, id)
	c.mu.Unlock()
}

func (c *recordCache) forgetVisitor(id string) {
	c.gen.Add(1)
	c.mu.Lock()
	delete(c.visitors, id)
	c.mu.Unlock()
}

func (c *recordCache) forgetAll() {
	c.gen.Add(1)
	c.mu.Lock()
	clear(c.convs)
	clear(c.visitors)
	clear(c.sites)
	c.mu.Unlock()
}

func cloneVisitor(v chat.Visitor) chat.Visitor {
	v.Attributes = maps.Clone(v.Attributes)
	if v.Context != nil {
		cx := v.Context.Clone()
		v.Context = &cx
	}
	return v
}
