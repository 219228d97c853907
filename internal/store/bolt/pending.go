package bolt

import (
	"hash/maphash"
	"sync"

	"github.com/lifelinehq/lifeline/chat"
)

// pendingMsg is a message in the log (wal.go) that no checkpoint has
// copied into the B+tree yet.
type pendingMsg struct {
	m   chat.Message
	enc []byte // encodeMessage(m), as logged and as it will be stored
	gen uint64 // the log generation holding it
	cid uint64 // clientHash(m.ClientID)
}

// clientSeed seeds clientHash for the life of the process.
var clientSeed = maphash.MakeSeed()

// clientHash lets a search for a client ID among pending messages compare
// one word each, not the IDs, which are of one length and live elsewhere.
func clientHash(id string) uint64 { return maphash.String(clientSeed, id) }

// newPending makes the pending entry of m, logged as enc in generation gen;
// cid is clientHash(m.ClientID).
func newPending(m chat.Message, enc []byte, gen, cid uint64) pendingMsg {
	return pendingMsg{m: m, enc: enc, gen: gen, cid: cid}
}

// pendingLog serves the logged messages that are not in the B+tree yet.
// The append writer adds to it once a group is durable in the log; the
// checkpointer drops a generation's messages once its transaction has
// committed, so every acknowledged message is here, in the B+tree, or in
// both (readers keep the B+tree's copy). A read transaction older than
// that commit may miss what was dropped: Store.viewPending reruns it.
//
// A conversation's slice is only ever appended to or cut at the front,
// never changed in place, so a copy of its header is a stable snapshot.
type pendingLog struct {
	mu    sync.RWMutex
	convs map[string][]pendingMsg // by conversation, in sequence order
}

func newPendingLog() *pendingLog { return &pendingLog{convs: make(map[string][]pendingMsg)} }

// conv returns a snapshot of the conversation's pending messages.
func (p *pendingLog) conv(id string) []pendingMsg {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.convs[id]
}

// last returns the sequence number and time of the conversation's last
// pending message; ok is false if it has none.
func (p *pendingLog) last(id string) (chat.Message, bool) {
	ms := p.conv(id)
	if len(ms) == 0 {
		return chat.Message{}, false
	}
	return ms[len(ms)-1].m, true
}

// add appends a durable group's new messages, in sequence order per
// conversation.
func (p *pendingLog) add(ms []pendingMsg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range ms {
		id := m.m.ConversationID
		p.convs[id] = append(p.convs[id], m)
	}
}

// upTo returns every pending message of generation gen or older, by
// conversation, for a checkpoint.
func (p *pendingLog) upTo(gen uint64) map[string][]pendingMsg {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make(map[string][]pendingMsg, len(p.convs))
	for id, ms := range p.convs {
		if k := upToGen(ms, gen); k > 0 {
			out[id] = ms[:k:k]
		}
	}
	return out
}

// release drops the messages of generation gen and older: a checkpoint
// has stored them.
func (p *pendingLog) release(gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, ms := range p.convs {
		switch k := upToGen(ms, gen); {
		case k == len(ms):
			delete(p.convs, id)
		case k > 0:
			p.convs[id] = ms[k:]
		}
	}
}

// upToGen returns how many of ms, oldest first, are of generation gen or
// older.
func upToGen(ms []pendingMsg, gen uint64) int {
	k := 0
	for k < len(ms) && ms[k].gen <= gen {
		k++
	}
	return k
}

// drop forgets a deleted conversation's messages. A checkpoint would skip
// them anyway (their conversation is gone); dropping them hides them and
// frees the memory now.
func (p *pendingLog) drop(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.convs, id)
}

// len returns how many messages are pending.
func (p *pendingLog) len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := 0
	for _, ms := range p.convs {
		n += len(ms)
	}
	return n
}
