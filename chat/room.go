package chat

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// room fans one conversation's live traffic out to this node's sockets. It
// subscribes to the conversation's topic while anyone local is attached.
//
// Ordering: the broker is a hint, the store is the truth. The room tracks the
// highest seq it has delivered; a message that skips ahead makes it read the
// gap from the store first (every seq below a published one is already
// durable), and anything at or below the mark is a duplicate and dropped. So
// every socket sees each message once, in seq order, even when nodes publish
// out of order or the broker drops a message.
type room struct {
	id    string
	refs  int           // attached clients plus attaches in progress; guarded by Hub.mu
	ready chan struct{} // closed once subscribed
	err   error         // set before ready is closed

	cancel func()

	mu        sync.Mutex
	clients   map[*client]struct{}
	delivered int64
	// visitorRead is the furthest seq the visitor has reported read while
	// this room existed, for agents who attach later (a reloaded console
	// shows "Seen" without waiting for the visitor to read again).
	visitorRead int64
}

// visitorGroup is one visitor's sockets on this node (tabs).
type visitorGroup struct {
	clients map[*client]struct{}
	cancel  func()
}

// agentGroup is one agent's sockets on this node.
type agentGroup struct {
	agent    Agent
	status   string
	capacity int
	clients  map[*client]struct{}
}

// view shows a as this node has them: their live status and capacity,
// without the load. The caller holds Hub.mu.
func (g *agentGroup) view(a Agent) AgentView {
	return AgentView{ID: a.ID, Name: a.Name, Email: a.Email, Role: a.Role, Status: g.status, Capacity: g.capacity}
}

// attach joins c to the conversation's room and sends it every message after
// the client's cursor, then live traffic.
func (h *Hub) attach(ctx context.Context, c *client, convID string, own bool) error {
	c.mu.Lock()
	if c.closed {
		// unregister may already have detached every room: joining now
		// would hold the room forever.
		c.mu.Unlock()
		return nil
	}
	if _, ok := c.rooms[convID]; ok {
		c.rooms[convID] = c.rooms[convID] || own
		c.mu.Unlock()
		return nil
	}
	c.rooms[convID] = own
	c.mu.Unlock()

	r, err := h.acquireRoom(ctx, convID)
	if err != nil {
		c.mu.Lock()
		delete(c.rooms, convID)
		c.mu.Unlock()
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c.mu.Lock()
	_, still := c.rooms[convID]
	after := min(c.cursors[convID], r.delivered)
	c.mu.Unlock()
	if !still {
		// Detached (or unregistered) while the room was being acquired;
		// detach found c not yet a member, so the reference is ours to drop.
		h.releaseRoom(r)
		return nil
	}
	msgs, err := h.store.Messages(ctx, convID, after, 0)
	if err != nil {
		h.releaseRoom(r)
		c.mu.Lock()
		delete(c.rooms, convID)
		c.mu.Unlock()
		return fmt.Errorf("attach %s: %w", convID, err)
	}
	// The read may run ahead of the room's mark (messages stored but not yet
	// published here): those go to everyone in the room, or the members
	// would drop them as duplicates when their events arrive. Each socket
	// drops what it has already seen.
	r.clients[c] = struct{}{}
	for i := range msgs {
		m := &msgs[i]
		frame := encode(messageFrame{Type: TypeMessage, Message: m})
		if m.Seq <= r.delivered {
			c.deliver(m, frame, true)
			continue
		}
		for rc := range r.clients {
			rc.deliver(m, frame, rc == c)
		}
		r.delivered = m.Seq
	}
	if c.kind == kindAgent {
		// Agents see the notes too: a note written just before a transfer
		// is published before the new agent has joined the room. Clients
		// drop notes they already hold by id.
		notes, err := h.store.Notes(ctx, convID)
		if err != nil {
			h.log.Warn("read notes for an agent", "conv", convID, "err", err)
		}
		for i := range notes {
			c.replay(encode(noteFrame{Type: TypeNote, Note: &notes[i]}))
		}
		conv, err := h.store.Conversation(ctx, convID)
		if err != nil {
			h.log.Warn("read conversation for an agent", "conv", convID, "err", err)
		}
		if m := h.visitorMark(r, conv.VisitorRead); m > 0 {
			c.replay(encode(readFrame{Type: TypeRead, ConversationID: convID, Seq: m, Reader: string(AuthorVisitor)}))
		}
	}
	return nil
}

// visitorMark returns the furthest read mark of r's visitor this node
// knows: the room's, one not yet stored, or seen (a live frame's, or the
// record's, from any node), never past the room's last message; the room
// keeps it. The caller holds r.mu.
func (h *Hub) visitorMark(r *room, seen int64) int64 {
	r.visitorRead = max(r.visitorRead, min(max(seen, h.marks.get(r.id, false)), r.delivered))
	return r.visitorRead
}

// detach removes c from the room.
func (h *Hub) detach(c *client, convID string) {
	c.mu.Lock()
	_, ok := c.rooms[convID]
	delete(c.rooms, convID)
	c.mu.Unlock()
	if !ok {
		return
	}
	h.mu.Lock()
	r := h.rooms[convID]
	h.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	_, member := r.clients[c]
	delete(r.clients, c)
	r.mu.Unlock()
	if member {
		h.releaseRoom(r)
	}
}

func (h *Hub) acquireRoom(ctx context.Context, convID string) (*room, error) {
	h.mu.Lock()
	r := h.rooms[convID]
	if r == nil {
		r = &room{id: convID, ready: make(chan struct{}), clients: make(map[*client]struct{})}
		h.rooms[convID] = r
		r.refs++
		h.mu.Unlock()
		r.cancel, r.err = h.subscribe(ctx, convTopic(convID), func(ev *event) { h.onRoomEvent(r, ev) })
		if r.err == nil {
			// Messages stored before the subscription are read from the
			// store by whoever attaches, so start the mark at the tail.
			conv, err := h.store.Conversation(ctx, convID)
			if err != nil {
				r.cancel()
				r.err = err
			} else {
				r.mu.Lock()
				if conv.LastSeq > r.delivered {
					r.delivered = conv.LastSeq
				}
				r.mu.Unlock()
			}
		}
		close(r.ready)
	} else {
		r.refs++
		h.mu.Unlock()
		<-r.ready
	}
	if r.err != nil {
		h.releaseRoom(r)
		return nil, fmt.Errorf("join conversation %s: %w", convID, r.err)
	}
	return r, nil
}

func (h *Hub) releaseRoom(r *room) {
	h.mu.Lock()
	r.refs--
	var cancel func()
	if r.refs == 0 {
		if h.rooms[r.id] == r {
			delete(h.rooms, r.id)
		}
		if r.err == nil {
			cancel = r.cancel
		}
	}
	h.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// onRoomEvent handles an event on a conversation topic.
func (h *Hub) onRoomEvent(r *room, ev *event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Kind {
	case evMessage:
		if ev.Message == nil || ev.Message.Seq <= r.delivered {
			return
		}
		if ev.Message.Seq > r.delivered+1 {
			if err := h.fillGap(r); err != nil {
				// Delivering this one would skip the gap for good: leave
				// both to a resync, which retries until the store answers.
				h.log.Warn("room event", "conv", r.id, "err", err)
				h.Resync()
				return
			}
			if ev.Message.Seq <= r.delivered {
				return
			}
		}
		r.delivered = ev.Message.Seq
		frame := encode(messageFrame{Type: TypeMessage, Message: ev.Message})
		for c := range r.clients {
			c.deliver(ev.Message, frame, false)
		}
	case evConversation:
		if ev.Conversation == nil {
			return
		}
		frame := encode(conversationFrame{Type: TypeConversation, Conversation: visitorView(*ev.Conversation, ev.AgentName)})
		for c := range r.clients {
			if c.kind == kindVisitor {
				c.send(frame)
			}
		}
	case evNote:
		frame := encode(noteFrame{Type: TypeNote, Note: ev.Note})
		r.sendTo(kindAgent, frame)
	case evTyping:
		if ev.Author == nil {
			return
		}
		frame := encode(typingFrame{Type: TypeTyping, ConversationID: r.id, Author: *ev.Author, Typing: ev.Typing})
		r.sendTo(oppositeOf(ev.Author.Kind), frame)
	case evRead:
		frame := encode(readFrame{Type: TypeRead, ConversationID: r.id, Seq: ev.Seq, Reader: ev.Reader})
		if ev.Reader == string(AuthorVisitor) {
			h.visitorMark(r, ev.Seq)
			r.sendTo(kindAgent, frame)
		} else {
			r.sendTo(kindVisitor, frame)
		}
	}
}

func oppositeOf(k AuthorKind) clientKind {
	if k == AuthorVisitor {
		return kindAgent
	}
	return kindVisitor
}

func (r *room) sendTo(kind clientKind, frame []byte) {
	for c := range r.clients {
		if c.kind == kind {
			c.send(frame)
		}
	}
}

// fillGap reads messages the broker skipped from the store and delivers
// them. The caller holds r.mu.
func (h *Hub) fillGap(r *room) error {
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	msgs, err := h.store.Messages(ctx, r.id, r.delivered, 0)
	if err != nil {
		return fmt.Errorf("fill message gap in %s after %d: %w", r.id, r.delivered, err)
	}
	for i := range msgs {
		m := &msgs[i]
		frame := encode(messageFrame{Type: TypeMessage, Message: m})
		for c := range r.clients {
			c.deliver(m, frame, true)
		}
		r.delivered = m.Seq
	}
	return nil
}

// publish sends an event on topics, encoded at most once. Subscribers in
// this process may be handed ev itself (see MemoryBroker.PublishValue), so
// they treat it as read-only. Failures are logged: the broker is a hint and
// readers resync from the store.
func (h *Hub) publish(ctx context.Context, ev *event, topics ...string) {
	var payload []byte
	encoded := func() []byte {
		if payload == nil {
			payload = encode(ev)
		}
		return payload
	}
	for _, topic := range topics {
		var err error
		if h.values != nil {
			err = h.values.PublishValue(ctx, topic, ev, encoded)
		} else {
			err = h.broker.Publish(ctx, topic, encoded())
		}
		if err != nil {
			h.log.Warn("publish", "topic", topic, "kind", ev.Kind, "err", err)
		}
	}
}

// publishConversation tells the conversation's room, every agent and the
// topics in also that it changed.
func (h *Hub) publishConversation(ctx context.Context, conv Conversation, also ...string) {
	h.publish(ctx, &event{Kind: evConversation, Conversation: &conv, AgentName: h.agentName(ctx, conv.AgentID)}, append(also, convTopic(conv.ID), queueTopic)...)
	h.kickRouter()
}

func (h *Hub) agentName(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	a, err := h.store.Agent(ctx, id)
	if err != nil {
		return ""
	}
	if a.Name != "" {
		return a.Name
	}
	return "Support"
}

// Resync catches this node's live state up with the Store after broker
// traffic may have been lost, as when the broker reconnects to Redis after a
// restart: every local socket is sent what it missed (see resyncOnce), the
// detector replays its unanswered offers, and the router re-reads the
// queue. It returns at once; calls made while a resync is pending
// coalesce. Start arranges for it to run after every resubscription of a
// broker that reports them.
func (h *Hub) Resync() {
	select {
	case h.resync <- struct{}{}:
	default:
	}
}

// resyncLoop runs Resync's work, retrying with backoff while the store
// fails (it is usually coming back at the same moment as the broker).
func (h *Hub) resyncLoop() {
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.resync:
		}
		backoff := 100 * time.Millisecond
		for !h.resyncOnce() {
			select {
			case <-h.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
		if h.detector != nil {
			h.detector.ReplayOffers(h.ctx)
		}
		h.kickRouter()
	}
}

// resyncOnce brings this node's sockets up to date with the store after
// broker traffic was lost. Messages come from each room's gap; everything
// else announced only on the broker is sent again as it now stands:
//   - each visitor's tabs follow a conversation started in another tab, and
//     an erased visitor's sockets close;
//   - each room's visitors are told the conversation's status, agent and
//     feedback, and its agents get its notes;
//   - each agent gets a fresh welcome (the queue, their conversations, their
//     status and load), joins what was assigned to them meanwhile, and gets
//     the agent list.
//
// Once it has succeeded, the detector sends again the offers it made
// meanwhile (Detector.ReplayOffers). It reports whether every read
// succeeded.
func (h *Hub) resyncOnce() bool {
	start := h.now()
	visitors, ok := h.resyncVisitors()
	rooms, roomsOK := h.resyncRooms()
	ok = roomsOK && ok
	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
	defer cancel()
	ok = h.attachAssigned(ctx, true) && ok
	ok = h.resyncPresence(ctx) && ok
	h.log.Info("resynced after lost broker traffic", "visitors", visitors, "rooms", rooms, "took", h.now().Sub(start).Round(time.Millisecond), "complete", ok)
	return ok
}

// resyncTimeout bounds the store reads of one visitor or room in a resync.
const resyncTimeout = 5 * time.Second

// resyncWidth is how many visitors or rooms a resync reads from the store
// at once. One at a time, a node's 10,000 visitors on Redis took 10,000
// round trips end to end.
const resyncWidth = 16

// inParallel calls fn for every item, resyncWidth at a time, and reports
// whether every call did its part.
func inParallel[T any](items []T, fn func(T) bool) bool {
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(resyncWidth, len(items)) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(items)); i = next.Add(1) - 1 {
				if !fn(items[i]) {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return !failed.Load()
}

// resyncVisitors resends every local visitor's state, returning how many
// there were and whether every read succeeded.
func (h *Hub) resyncVisitors() (int, bool) {
	h.mu.Lock()
	ids := slices.Collect(maps.Keys(h.visitors))
	h.mu.Unlock()
	return len(ids), inParallel(ids, func(id string) bool {
		err := h.resyncVisitor(id)
		if err != nil && h.ctx.Err() == nil {
			h.log.Warn("resync visitor", "visitor", id, "err", err)
			return false
		}
		return true
	})
}

func (h *Hub) resyncVisitor(id string) error {
	ctx, cancel := context.WithTimeout(h.ctx, resyncTimeout)
	defer cancel()
	_, err := h.store.Visitor(ctx, id)
	if errors.Is(err, ErrNotFound) {
		h.closeVisitorSockets(id) // erased meanwhile
		return nil
	}
	if err != nil {
		return err
	}
	list, err := h.store.Conversations(ctx, ConversationQuery{VisitorID: id, Limit: 1})
	if err != nil || len(list) == 0 {
		return err
	}
	h.showTabs(h.visitorTabs(id), list[0], h.agentName(ctx, list[0].AgentID))
	return nil
}

// resyncRooms fills every ready room's gap and resends its state,
// returning how many rooms there were and whether every read succeeded.
func (h *Hub) resyncRooms() (int, bool) {
	h.mu.Lock()
	rooms := slices.Collect(maps.Values(h.rooms))
	h.mu.Unlock()
	return len(rooms), inParallel(rooms, func(r *room) bool {
		select {
		case <-r.ready:
		default:
			return true // still subscribing: whoever attaches reads the store
		}
		if r.err != nil {
			return true
		}
		r.mu.Lock()
		err := h.fillGap(r)
		if err == nil {
			err = h.resendState(r)
		}
		r.mu.Unlock()
		if err != nil && !errors.Is(err, ErrNotFound) && h.ctx.Err() == nil {
			h.log.Warn("resync", "err", err)
			return false
		}
		return true
	})
}

// resendState tells the room's visitors the conversation as it stands and
// sends its agents every note (they drop the ones they hold by id). The
// caller holds r.mu, so the event of any later change is sent after it.
func (h *Hub) resendState(r *room) error {
	visitors, agents := false, false
	for c := range r.clients {
		visitors = visitors || c.kind == kindVisitor
		agents = agents || c.kind == kindAgent
	}
	if !visitors && !agents {
		return nil
	}
	ctx, cancel := context.WithTimeout(h.ctx, resyncTimeout)
	defer cancel()
	conv, err := h.store.Conversation(ctx, r.id)
	if err != nil {
		return fmt.Errorf("resend state of %s: %w", r.id, err)
	}
	if visitors {
		r.sendTo(kindVisitor, encode(conversationFrame{Type: TypeConversation, Conversation: visitorView(conv, h.agentName(ctx, conv.AgentID))}))
	}
	if agents {
		notes, err := h.store.Notes(ctx, r.id)
		if err != nil {
			return fmt.Errorf("resend notes of %s: %w", r.id, err)
		}
		for i := range notes {
			r.sendTo(kindAgent, encode(noteFrame{Type: TypeNote, Note: &notes[i]}))
		}
		if m := h.visitorMark(r, conv.VisitorRead); m > 0 {
			r.sendTo(kindAgent, encode(readFrame{Type: TypeRead, ConversationID: r.id, Seq: m, Reader: string(AuthorVisitor)}))
		}
	}
	return nil
}

// resyncPresence re-announces this node's agents (a restarted Redis may
// have lost them) and sends every node's agents the list as it now stands.
func (h *Hub) resyncPresence(ctx context.Context) bool {
	h.refreshAllPresence(ctx)
	return h.publishPresence(ctx, nil)
}

// attachAssigned tells local agents' sockets about conversations assigned
// to them that they have not joined, and joins them. Assignments are
// announced on the broker once, so one is missed when the announcement is
// lost or the assigning node dies between storing and announcing it. With
// welcome, every socket is first sent a fresh welcome, as on its hello. It
// reports whether every read succeeded.
func (h *Hub) attachAssigned(ctx context.Context, welcome bool) bool {
	var queue []Conversation
	if welcome {
		var err error
		if queue, err = h.waitingQueue(ctx); err != nil {
			if h.ctx.Err() == nil {
				h.log.Warn("resync queue", "err", err)
			}
			return false
		}
	}
	type local struct {
		view    AgentView
		clients []*client
	}
	h.mu.Lock()
	agents := make(map[string]*local, len(h.agents))
	for id, g := range h.agents {
		l := &local{view: g.view(g.agent)}
		for c := range g.clients {
			l.clients = append(l.clients, c)
		}
		agents[id] = l
	}
	h.mu.Unlock()
	ok := true
	for id, l := range agents {
		assigned, err := h.assignedTo(ctx, id)
		if err != nil {
			if h.ctx.Err() == nil {
				h.log.Warn("assigned conversations", "agent", id, "err", err)
			}
			ok = false
			continue
		}
		if welcome {
			frame := welcomeFrame(l.view, queue, assigned)
			for _, c := range l.clients {
				c.send(frame)
			}
		}
		for _, conv := range assigned {
			var frame []byte
			for _, c := range l.clients {
				c.mu.Lock()
				_, attached := c.rooms[conv.ID]
				c.mu.Unlock()
				if attached {
					continue
				}
				if frame == nil {
					frame = encode(conversationFrame{Type: TypeConversation, Conversation: &conv})
				}
				c.send(frame)
				if err := h.attach(ctx, c, conv.ID, true); err != nil {
					h.log.Warn("attach assigned agent", "conv", conv.ID, "agent", id, "err", err)
					ok = false
				}
			}
		}
	}
	return ok
}
