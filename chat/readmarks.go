package chat

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"
)

// readMarks holds the read marks heard on this node until markLoop writes
// them to their conversations. A read frame comes about once per message
// of the other side; a store update each would cost a durable write per
// message, so marks are soft state: live at once over the broker, stored
// within markInterval, and a node that dies loses at most that.
type readMarks struct {
	mu      sync.Mutex
	pending map[markKey]int64 // furthest mark not yet stored
}

// markKey names one side's mark of a conversation: the visitor's, or the
// agents' (any agent's: "support has seen it").
type markKey struct {
	conv  string
	agent bool
}

// note records that the reader has seen conv up to seq.
func (m *readMarks) note(conv string, agent bool, seq int64) {
	if seq <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending == nil {
		m.pending = make(map[markKey]int64)
	}
	k := markKey{conv, agent}
	m.pending[k] = max(m.pending[k], seq)
}

// get returns the reader's mark of conv not yet stored, or 0.
func (m *readMarks) get(conv string, agent bool) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending[markKey{conv, agent}]
}

// take empties the pending marks and returns them.
func (m *readMarks) take() map[markKey]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pending
	m.pending = nil
	return p
}

// markInterval is how often markLoop writes the marks: a conversation's
// marks since the last write cost one update.
const markInterval = time.Second

// errMarkKnown stops an update whose mark the record already has.
var errMarkKnown = errors.New("read mark already stored")

// markLoop writes the pending read marks every markInterval, and once
// more when the hub shuts down.
func (h *Hub) markLoop() {
	tick := time.NewTicker(markInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			h.storeMarks(ctx)
			cancel()
			return
		case <-tick.C:
			h.storeMarks(h.ctx)
		}
	}
}

// storeMarks writes each pending mark to its conversation, never past its
// last message nor back, all at once (eachAtOnce) so that a round's
// updates share group commits. A mark that fails to store waits for the
// next round; one of a conversation that is gone (erased), or that no
// store could hold (an agent's frame naming no real conversation), is
// dropped.
func (h *Hub) storeMarks(ctx context.Context) {
	pending := h.marks.take()
	keys := slices.Collect(maps.Keys(pending))
	errs := make([]error, len(keys))
	eachAtOnce(len(keys), func(i int) {
		k, seq := keys[i], pending[keys[i]]
		_, errs[i] = h.store.UpdateConversation(ctx, k.conv, func(c *Conversation) error {
			mark := &c.VisitorRead
			if k.agent {
				mark = &c.AgentRead
			}
			s := min(seq, c.LastSeq)
			if s <= *mark {
				return errMarkKnown
			}
			*mark = s
			return nil
		})
	})
	failed, last := 0, error(nil)
	for i, err := range errs {
		if err == nil || errors.Is(err, errMarkKnown) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
			continue
		}
		h.marks.note(keys[i].conv, keys[i].agent, pending[keys[i]])
		failed, last = failed+1, err
	}
	if failed > 0 && ctx.Err() == nil {
		h.log.Warn("store read marks", "failed", failed, "err", last)
	}
}
