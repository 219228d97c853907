package chat

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"
)

// presenceInfo is an agent's entry in the broker's presence set.
type presenceInfo struct {
	Status   string `json:"status"`
	Capacity int    `json:"capacity"`
	Node     string `json:"node"`
}

// presenceChoice is the availability an agent chose on one node. It
// travels with the agent list, so that the agent's sockets on other nodes
// (another tab behind the load balancer) follow it instead of announcing
// the old status again.
type presenceChoice struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Capacity int    `json:"capacity"`
}

func (h *Hub) kickRouter() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *Hub) routeLoop() {
	tick := time.NewTicker(h.cfg.RouteInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.kick:
		case <-tick.C:
		}
		h.route()
	}
}

// route assigns waiting conversations to online agents with room, least
// busy first, then pushes queue positions and wait estimates to this node's
// waiting visitors. Every node runs it; Store.Assign makes racing nodes
// assign each conversation exactly once and never over capacity.
func (h *Hub) route() {
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	waiting, err := h.store.Conversations(ctx, ConversationQuery{Statuses: []Status{StatusWaiting}, Limit: 1000})
	if err != nil {
		if h.ctx.Err() == nil {
			h.log.Warn("route: list queue", "err", err)
		}
		return
	}
	sortQueue(waiting)
	online, err := h.onlineAgents(ctx)
	if err != nil {
		h.log.Warn("route: presence", "err", err)
	}
	rest := waiting[:0:0]
	for i, done := range h.assignAll(ctx, waiting, online) {
		if !done {
			rest = append(rest, waiting[i])
		}
	}
	h.metrics.QueueLength(len(rest))
	h.pushQueuePositions(rest, online)
}

// onlineAgent is an agent who can take conversations now.
type onlineAgent struct {
	id       string
	capacity int
	load     int
}

func (h *Hub) onlineAgents(ctx context.Context) ([]*onlineAgent, error) {
	members, err := h.broker.Presence(ctx, agentsSet)
	if err != nil {
		return nil, err
	}
	var out []*onlineAgent
	for id, raw := range members {
		var info presenceInfo
		if json.Unmarshal(raw, &info) != nil || info.Status != "online" {
			continue
		}
		load, err := h.store.AgentLoad(ctx, id)
		if err != nil {
			continue
		}
		out = append(out, &onlineAgent{id: id, capacity: info.Capacity, load: load})
	}
	return out, nil
}

// assignAll gives the queue's conversations, in order, each to the
// least-busy agent with room, and reports which it settled (assigned here
// or by another node). The choices are made first and stored together
// (eachAtOnce): each Assign waits for a durable commit, and made one after
// another they took a commit each in a burst of new conversations, where
// together they share group commits. A conversation refused because its
// agent filled up meanwhile (on another node) is then offered to the
// others, one at a time.
func (h *Hub) assignAll(ctx context.Context, queue []Conversation, agents []*onlineAgent) []bool {
	to := make([]*onlineAgent, len(queue))
	for i := range queue {
		if a := leastBusy(agents); a != nil {
			a.load++
			to[i] = a
		}
	}
	errs := make([]error, len(queue))
	eachAtOnce(len(queue), func(i int) {
		if a := to[i]; a != nil {
			got, err := h.store.Assign(ctx, queue[i].ID, a.id, a.capacity, h.now())
			if errs[i] = err; err == nil {
				h.assigned(ctx, got)
			}
		}
	})
	for i, err := range errs { // take back the plan where nothing was assigned
		if to[i] != nil && err != nil {
			to[i].load--
		}
	}
	done := make([]bool, len(queue))
	for i, err := range errs {
		switch {
		case to[i] == nil:
		case err == nil, errors.Is(err, ErrConflict): // assigned, here or by another node
			done[i] = true
		case errors.Is(err, ErrCapacity):
			to[i].load = to[i].capacity // another node filled them
		default:
			h.log.Warn("assign", "conv", queue[i].ID, "agent", to[i].id, "err", err)
		}
	}
	for i, err := range errs {
		if errors.Is(err, ErrCapacity) {
			done[i] = h.assignOne(ctx, queue[i], agents)
		}
	}
	return done
}

// leastBusy returns the agent with the lowest share of its capacity in
// use (ties to the lower ID), or nil if none has room.
func leastBusy(agents []*onlineAgent) *onlineAgent {
	var best *onlineAgent
	for _, a := range agents {
		if a.load >= a.capacity {
			continue
		}
		if best == nil || a.load*best.capacity < best.load*a.capacity ||
			(a.load*best.capacity == best.load*a.capacity && a.id < best.id) {
			best = a
		}
	}
	return best
}

// assignOne gives conv to the least-busy agent with room, if any.
func (h *Hub) assignOne(ctx context.Context, conv Conversation, agents []*onlineAgent) bool {
	for {
		best := leastBusy(agents)
		if best == nil {
			return false
		}
		got, err := h.store.Assign(ctx, conv.ID, best.id, best.capacity, h.now())
		switch {
		case err == nil:
			best.load++
			h.assigned(ctx, got)
			return true
		case errors.Is(err, ErrCapacity):
			best.load = best.capacity // another node filled them; try the next
		case errors.Is(err, ErrConflict):
			return true // another node took it
		default:
			h.log.Warn("assign", "conv", conv.ID, "agent", best.id, "err", err)
			return false
		}
	}
}

// assigned tells the conversation's room, its agent and the queue that
// conv was just assigned.
func (h *Hub) assigned(ctx context.Context, conv Conversation) {
	h.log.Info("assigned", "conv", conv.ID, "agent", conv.AgentID)
	h.publishConversation(ctx, conv)
}

// sortQueue orders waiting conversations: higher priority first, then
// oldest first.
func sortQueue(q []Conversation) {
	slices.SortStableFunc(q, func(a, b Conversation) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return a.CreatedAt.Compare(b.CreatedAt)
	})
}

// pushQueuePositions sends each local waiting visitor its place and an
// estimated wait, only when either changed. It visits the sockets of the
// queued conversations' visitors only: a node holding thousands of
// visitors runs this every RouteInterval and at every change to the
// queue, and visiting every socket (taking each one's lock) cost 5.7 ms
// and 760 KB a pass with 19,000 of them whenever anyone waited
// (BenchmarkQueuePositions; 1.7 µs now).
func (h *Hub) pushQueuePositions(queue []Conversation, online []*onlineAgent) {
	if len(queue) == 0 {
		return
	}
	pos := make(map[string]int, len(queue))
	for i, c := range queue {
		pos[c.ID] = i + 1
	}
	slots := 0
	for _, a := range online {
		slots += a.capacity
	}
	avg := h.handle.average()
	h.mu.Lock()
	var targets []*client
	for _, conv := range queue {
		if g := h.visitors[conv.VisitorID]; g != nil {
			for c := range g.clients {
				targets = append(targets, c)
			}
		}
	}
	h.mu.Unlock()
	for _, c := range targets {
		c.mu.Lock()
		p, ok := pos[c.conv]
		if ok {
			eta := -1 // unknown: nobody online
			if slots > 0 {
				eta = int((time.Duration(p) * avg / time.Duration(slots)).Seconds())
			}
			if p != c.lastPos || eta != c.lastETA {
				c.lastPos, c.lastETA = p, eta
				c.sendLocked(encode(queueFrame{Type: TypeQueue, ConversationID: c.conv, Position: p, ETASeconds: eta}))
			}
		}
		c.mu.Unlock()
	}
}

// handleStats keeps an exponentially weighted average of how long agents
// take to resolve a conversation, for wait estimates.
type handleStats struct {
	mu  sync.Mutex
	avg time.Duration
}

const defaultHandleTime = 4 * time.Minute

func (s *handleStats) observe(d time.Duration) {
	if d <= 0 || d > 24*time.Hour {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.avg == 0 {
		s.avg = d
		return
	}
	s.avg = (s.avg*4 + d) / 5
}

func (s *handleStats) average() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.avg == 0 {
		return defaultHandleTime
	}
	return s.avg
}

// onNodeEvent handles the queue and presence topics, which every node
// subscribes to once.
func (h *Hub) onNodeEvent(payload []byte) {
	ev, ok := h.decodeEvent(payload)
	if !ok {
		return
	}
	switch ev.Kind {
	case evConversation:
		conv := ev.Conversation
		if conv == nil {
			return
		}
		frame := encode(conversationFrame{Type: TypeConversation, Conversation: conv})
		h.mu.Lock()
		var owners []*client
		for _, g := range h.agents {
			for c := range g.clients {
				c.send(frame)
				if g.agent.ID == conv.AgentID && (conv.Status == StatusActive || conv.Status == StatusPending) {
					owners = append(owners, c)
				}
			}
		}
		h.mu.Unlock()
		for _, c := range owners {
			// Attaching reads the store, so do it off the broker's goroutine.
			h.spawn(func() {
				if err := h.attach(h.ctx, c, conv.ID, true); err != nil {
					h.log.Warn("attach assigned agent", "conv", conv.ID, "err", err)
				}
			})
		}
		if conv.Status == StatusWaiting {
			h.kickRouter()
		}
	case evPresence:
		frame := make([]byte, 0, len(payload)+16)
		frame = append(frame, `{"type":"presence",`...)
		// The payload is {"k":"presence","agents":[...]}: reuse its tail.
		var p struct {
			Agents json.RawMessage `json:"agents"`
			Chose  *presenceChoice `json:"chose"`
		}
		if json.Unmarshal(payload, &p) != nil || p.Agents == nil {
			return
		}
		frame = append(frame, `"agents":`...)
		frame = append(frame, p.Agents...)
		frame = append(frame, '}')
		h.mu.Lock()
		if ch := p.Chose; ch != nil && (ch.Status == "online" || ch.Status == "away") {
			if g := h.agents[ch.ID]; g != nil && g.agent.Role != RoleAnalyst {
				g.status = ch.Status
				if ch.Capacity > 0 {
					g.capacity = ch.Capacity
				}
			}
		}
		for _, g := range h.agents {
			for c := range g.clients {
				c.send(frame)
			}
		}
		h.mu.Unlock()
		h.kickRouter()
	}
}

// refreshPresence (re)announces a local agent.
func (h *Hub) refreshPresence(ctx context.Context, g *agentGroup) {
	h.mu.Lock()
	info := presenceInfo{Status: g.status, Capacity: g.capacity, Node: h.cfg.Node}
	id := g.agent.ID
	h.mu.Unlock()
	if err := h.broker.SetPresence(ctx, agentsSet, id, encode(info), h.cfg.PresenceTTL); err != nil && ctx.Err() == nil {
		h.log.Warn("refresh presence", "agent", id, "err", err)
	}
}

// Agents returns every agent with their live status and load.
func (h *Hub) Agents(ctx context.Context) ([]AgentView, error) {
	agents, err := h.store.Agents(ctx)
	if err != nil {
		return nil, err
	}
	members, err := h.broker.Presence(ctx, agentsSet)
	if err != nil {
		return nil, err
	}
	out := make([]AgentView, 0, len(agents))
	for _, a := range agents {
		if a.Disabled {
			continue
		}
		v := AgentView{ID: a.ID, Name: a.Name, Email: a.Email, Role: a.Role, Status: "offline", Capacity: a.EffectiveCapacity()}
		if raw, ok := members[a.ID]; ok {
			var info presenceInfo
			if json.Unmarshal(raw, &info) == nil {
				v.Status, v.Capacity = info.Status, info.Capacity
			}
		}
		if v.Load, err = h.store.AgentLoad(ctx, a.ID); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// publishPresence sends every node the current agent list, with the
// choice an agent just made if any, reporting whether it could.
func (h *Hub) publishPresence(ctx context.Context, chose *presenceChoice) bool {
	views, err := h.Agents(ctx)
	if err != nil {
		h.log.Warn("presence list", "err", err)
		return false
	}
	payload := encode(struct {
		Kind   string          `json:"k"`
		Agents []AgentView     `json:"agents"`
		Chose  *presenceChoice `json:"chose,omitempty"`
	}{evPresence, views, chose})
	if err := h.broker.Publish(ctx, presenceTopic, payload); err != nil {
		h.log.Warn("publish presence", "err", err)
		return false
	}
	return true
}

// refreshAllPresence (re)announces every local agent.
func (h *Hub) refreshAllPresence(ctx context.Context) {
	h.mu.Lock()
	groups := slices.Collect(maps.Values(h.agents))
	h.mu.Unlock()
	for _, g := range groups {
		h.refreshPresence(ctx, g)
	}
}

// AgentsOnline reports whether any agent is online to answer now.
func (h *Hub) AgentsOnline(ctx context.Context) bool {
	members, err := h.broker.Presence(ctx, agentsSet)
	if err != nil {
		return false
	}
	for _, raw := range members {
		var info presenceInfo
		if json.Unmarshal(raw, &info) == nil && info.Status == "online" {
			return true
		}
	}
	return false
}
