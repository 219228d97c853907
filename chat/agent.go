package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

func (h *Hub) handleAgent(ctx context.Context, c *client, data []byte) {
	in, err := DecodeAgent(data)
	if err != nil {
		h.replyErr(c, err, in.ID, in.ClientID)
		return
	}
	h.metrics.Frame("agent", in.Type)
	if !c.helloed && in.Type != TypeHello && in.Type != TypePing {
		c.sendError(CodeHelloRequired, "say hello first", in.ID, in.ClientID)
		return
	}
	if writes(in.Type) && c.agent.Role == RoleAnalyst {
		c.sendError(CodeForbidden, "analysts can read conversations but not act on them", in.ID, in.ClientID)
		return
	}
	switch in.Type {
	case TypePing:
		c.send(pongFrame)
	case TypeHello:
		err = h.agentHello(ctx, c, &in)
	case TypePresence:
		err = h.agentPresence(ctx, c, in.Status, in.Capacity)
	case TypeOpen:
		c.mu.Lock()
		if _, ok := c.rooms[in.ConversationID]; !ok {
			c.cursors[in.ConversationID] = in.LastSeq
		}
		c.mu.Unlock()
		err = h.attach(ctx, c, in.ConversationID, false)
	case TypeClose:
		c.mu.Lock()
		own := c.rooms[in.ConversationID]
		c.mu.Unlock()
		if !own {
			h.detach(c, in.ConversationID)
		}
	case TypeMessage:
		err = h.agentMessage(ctx, c, &in)
	case TypeNote:
		err = h.addNote(ctx, c.agent, in.ConversationID, in.Text)
	case TypeTyping:
		h.publish(ctx, &event{Kind: evTyping, Author: &Author{Kind: AuthorAgent, ID: c.agent.ID, Name: c.agent.Name}, Typing: in.Typing}, convTopic(in.ConversationID))
	case TypeRead:
		h.publish(ctx, &event{Kind: evRead, Seq: in.Seq, Reader: string(AuthorAgent)}, convTopic(in.ConversationID))
		h.marks.note(in.ConversationID, true, in.Seq)
	case TypeClaim:
		err = h.claim(ctx, c, in.ConversationID)
	case TypeTransfer:
		_, err = h.Transfer(ctx, c.agent, in.ConversationID, in.AgentID, in.Text)
	case TypeResolve:
		_, err = h.Resolve(ctx, c.agent, in.ConversationID)
	case TypeReopen:
		_, err = h.Reopen(ctx, c.agent, in.ConversationID)
	case TypePending:
		var conv Conversation
		conv, err = h.updateConversation(ctx, in.ConversationID, func(cv *Conversation) error {
			if cv.Status != StatusActive {
				return frameErr(CodeConflict, "only an active conversation can wait on the customer")
			}
			cv.Status = StatusPending
			return nil
		})
		if err == nil {
			h.audit(ctx, c.agent, conv.SiteKey, "conversation.pending", conv.ID, conv.Ref)
		}
	case TypeInvite:
		err = h.invite(ctx, c.agent, in.VisitorID, in.Text)
	}
	if err != nil {
		h.replyErr(c, err, in.ID, in.ClientID)
	}
}

// writes reports whether a frame type changes conversations.
func writes(typ string) bool {
	switch typ {
	case TypeMessage, TypeNote, TypeClaim, TypeTransfer, TypeResolve, TypeReopen, TypePending, TypeInvite, TypeTyping, TypeRead:
		return true
	}
	return false
}

func (h *Hub) agentHello(ctx context.Context, c *client, in *Inbound) error {
	if c.helloed {
		return frameErr(CodeInvalid, "hello was already said on this socket")
	}
	a, err := h.store.Agent(ctx, c.agent.ID)
	if err != nil {
		return err
	}
	if a.Disabled {
		c.close(ClosePolicy, "account disabled")
		return nil
	}
	c.agent = a
	c.helloed = true
	h.mu.Lock()
	g := h.agents[a.ID]
	if g == nil {
		g = &agentGroup{agent: a, status: "online", capacity: a.EffectiveCapacity(), clients: make(map[*client]struct{})}
		if a.Role == RoleAnalyst || a.Away {
			// Analysts never take conversations; others start as they
			// last chose (see savePresence).
			g.status = "away"
		}
		h.agents[a.ID] = g
	}
	g.clients[c] = struct{}{}
	view := g.view(a)
	h.mu.Unlock()
	h.refreshPresence(ctx, g)

	queue, err := h.waitingQueue(ctx)
	if err != nil {
		return err
	}
	assigned, err := h.assignedTo(ctx, a.ID)
	if err != nil {
		return err
	}
	c.send(welcomeFrame(view, queue, assigned))
	for id, seq := range in.Resume {
		c.mu.Lock()
		c.cursors[id] = seq
		c.mu.Unlock()
	}
	for _, conv := range assigned {
		if err := h.attach(ctx, c, conv.ID, true); err != nil {
			return err
		}
	}
	for id := range in.Resume {
		if err := h.attach(ctx, c, id, false); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	h.publishPresence(ctx, nil)
	h.kickRouter()
	return nil
}

// welcomeFrame is an agent's welcome: who they are on this node, with
// their load, the queue and the conversations assigned to them.
func welcomeFrame(view AgentView, queue, assigned []Conversation) []byte {
	view.Load = len(assigned)
	return encode(agentWelcome{Type: TypeWelcome, Agent: view, Queue: nonNil(queue), Assigned: nonNil(assigned)})
}

// waitingQueue returns the waiting conversations in the order agents see
// them, as an agent's welcome carries them.
func (h *Hub) waitingQueue(ctx context.Context) ([]Conversation, error) {
	queue, err := h.store.Conversations(ctx, ConversationQuery{Statuses: []Status{StatusWaiting}, Limit: 500})
	if err != nil {
		return nil, err
	}
	sortQueue(queue)
	return queue, nil
}

// assignedTo returns the open conversations assigned to an agent.
func (h *Hub) assignedTo(ctx context.Context, agentID string) ([]Conversation, error) {
	return h.store.Conversations(ctx, ConversationQuery{AgentID: agentID, Statuses: []Status{StatusActive, StatusPending}, Limit: 500})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (h *Hub) agentPresence(ctx context.Context, c *client, status string, capacity int) error {
	h.mu.Lock()
	g := h.agents[c.agent.ID]
	var chose *presenceChoice
	if g != nil {
		if c.agent.Role != RoleAnalyst {
			g.status = status
		}
		if capacity > 0 {
			g.capacity = capacity
		}
		chose = &presenceChoice{ID: c.agent.ID, Status: g.status, Capacity: g.capacity}
	}
	h.mu.Unlock()
	if g == nil {
		return nil
	}
	if err := h.savePresence(ctx, c.agent.ID, status == "away", capacity); err != nil {
		return err
	}
	h.refreshPresence(ctx, g)
	h.publishPresence(ctx, chose)
	h.kickRouter()
	return nil
}

// savePresence keeps the status and capacity (when given) an agent chose
// on their record, so that their next socket, after a reload, a reconnect
// or on another node, starts with them.
func (h *Hub) savePresence(ctx context.Context, agentID string, away bool, capacity int) error {
	a, err := h.store.Agent(ctx, agentID)
	if err != nil {
		return err
	}
	if a.Away == away && (capacity <= 0 || a.Capacity == capacity) {
		return nil
	}
	a.Away = away
	if capacity > 0 {
		a.Capacity = capacity
	}
	return h.store.UpdateAgent(ctx, a)
}

func (h *Hub) agentMessage(ctx context.Context, c *client, in *Inbound) error {
	start := h.now()
	conv, err := h.store.Conversation(ctx, in.ConversationID)
	if err != nil {
		return err
	}
	if conv.Status == StatusWaiting {
		// Replying to a waiting conversation takes it.
		if conv, err = h.store.Assign(ctx, conv.ID, c.agent.ID, 0, h.now()); err != nil && !errors.Is(err, ErrConflict) {
			return err
		} else if err == nil {
			h.publishConversation(ctx, conv)
		}
	}
	m, _, err := h.store.AppendMessage(ctx, Message{
		ConversationID: in.ConversationID, ClientID: in.ClientID, Text: in.Text,
		Author: Author{Kind: AuthorAgent, ID: c.agent.ID, Name: c.agent.Name},
	})
	if err != nil {
		return err
	}
	h.metrics.MessageStored(h.now().Sub(start))
	// Publish before acknowledging, and again for a retry: a node that dies
	// between storing and publishing has not acknowledged, so the client's
	// retry (on any node) publishes. Rooms drop what they already delivered.
	h.publish(ctx, &event{Kind: evMessage, Message: &m}, convTopic(m.ConversationID))
	c.send(encode(ackFrame{Type: TypeAck, ID: in.ID, ClientID: in.ClientID, ConversationID: m.ConversationID, Seq: m.Seq}))
	return nil
}

// AddNote stores an internal note by an agent and shows it live to agents
// on every node (agent assist posts action results with it).
func (h *Hub) AddNote(ctx context.Context, by Agent, convID, text string) error {
	return h.addNote(ctx, by, convID, text)
}

func (h *Hub) addNote(ctx context.Context, by Agent, convID, text string) error {
	n := Note{ID: uuid.NewString(), ConversationID: convID, AgentID: by.ID, Text: text, At: h.now()}
	if err := h.store.AddNote(ctx, n); err != nil {
		return err
	}
	h.publish(ctx, &event{Kind: evNote, Note: &n}, convTopic(convID), queueTopic)
	return nil
}

func (h *Hub) claim(ctx context.Context, c *client, convID string) error {
	conv, err := h.Claim(ctx, c.agent, convID)
	if err != nil {
		return err
	}
	return h.attach(ctx, c, conv.ID, true)
}

// Claim gives a waiting conversation to agent. Of several racing claims,
// exactly one succeeds; the others get ErrConflict.
func (h *Hub) Claim(ctx context.Context, agent Agent, convID string) (Conversation, error) {
	conv, err := h.store.Assign(ctx, convID, agent.ID, 0, h.now())
	if err != nil {
		return conv, fmt.Errorf("claim %s: %w", convID, err)
	}
	h.log.Info("claimed", "conv", convID, "agent", agent.ID)
	h.publishConversation(ctx, conv)
	h.audit(ctx, agent, conv.SiteKey, "conversation.claim", conv.ID, conv.Ref)
	return conv, nil
}

// Transfer hands an open conversation to another agent, with a private note
// for them.
func (h *Hub) Transfer(ctx context.Context, by Agent, convID, toAgentID, note string) (Conversation, error) {
	to, err := h.store.Agent(ctx, toAgentID)
	if err != nil {
		return Conversation{}, fmt.Errorf("transfer to %s: %w", toAgentID, err)
	}
	if to.Disabled || to.Role == RoleAnalyst {
		return Conversation{}, frameErr(CodeInvalid, "that agent cannot take conversations")
	}
	conv, err := h.updateConversation(ctx, convID, func(cv *Conversation) error {
		if cv.Status == StatusResolved {
			return frameErr(CodeConflict, "reopen the conversation before transferring it")
		}
		cv.AgentID = to.ID
		cv.Status = StatusActive
		if cv.AssignedAt.IsZero() {
			cv.AssignedAt = h.now()
		}
		return nil
	})
	if err != nil {
		return conv, err
	}
	text := "Transferred by " + displayName(by) + " to " + displayName(to)
	if note = strings.TrimSpace(note); note != "" {
		text += ": " + note
	}
	h.log.Info("transferred", "conv", convID, "from", by.ID, "to", to.ID)
	h.audit(ctx, by, conv.SiteKey, "conversation.transfer", conv.ID, conv.Ref+" to "+to.Email)
	return conv, h.addNote(ctx, by, convID, text)
}

func displayName(a Agent) string {
	if a.Name != "" {
		return a.Name
	}
	return a.Email
}

// Resolve closes a conversation; the visitor is asked "Did this solve it?".
func (h *Hub) Resolve(ctx context.Context, by Agent, convID string) (Conversation, error) {
	conv, err := h.updateConversation(ctx, convID, func(cv *Conversation) error {
		if cv.Status == StatusResolved {
			return frameErr(CodeConflict, "the conversation is already resolved")
		}
		cv.Status = StatusResolved
		cv.ResolvedAt = h.now()
		cv.Feedback = ""
		return nil
	})
	if err == nil && !conv.AssignedAt.IsZero() {
		h.handle.observe(conv.ResolvedAt.Sub(conv.AssignedAt))
	}
	if err == nil {
		h.audit(ctx, by, conv.SiteKey, "conversation.resolve", conv.ID, conv.Ref)
	}
	if err == nil && conv.Cause != "" && h.detector != nil {
		h.detector.Resolved(ctx, conv)
	}
	return conv, err
}

// Reopen moves a resolved conversation back to active, keeping its agent or
// taking it for by.
func (h *Hub) Reopen(ctx context.Context, by Agent, convID string) (Conversation, error) {
	conv, err := h.updateConversation(ctx, convID, func(cv *Conversation) error {
		if cv.Status != StatusResolved {
			return frameErr(CodeConflict, "the conversation is not resolved")
		}
		if cv.AgentID == "" {
			cv.AgentID = by.ID
			cv.AssignedAt = h.now()
		}
		reopen(cv, h.now())
		return nil
	})
	if err == nil {
		h.audit(ctx, by, conv.SiteKey, "conversation.reopen", conv.ID, conv.Ref)
	}
	return conv, err
}

// Auditor records who did what; audit.Log implements it.
type Auditor interface {
	Record(ctx context.Context, by Agent, site, action, target, detail string)
}

func (h *Hub) audit(ctx context.Context, by Agent, site, action, target, detail string) {
	if h.cfg.Audit != nil {
		h.cfg.Audit.Record(ctx, by, site, action, target, detail)
	}
}

// defaultInvite is the text of a hand-sent offer without one.
const defaultInvite = "Hi! Can we help you with anything?"

func (h *Hub) invite(ctx context.Context, by Agent, visitorID, text string) error {
	v, err := h.store.Visitor(ctx, visitorID)
	if err != nil {
		return err
	}
	h.audit(ctx, by, v.SiteKey, "visitor.invite", visitorID, "")
	if text = strings.TrimSpace(text); text == "" {
		text = defaultInvite
	}
	h.Offer(ctx, visitorID, "invite-"+uuid.NewString(), text, "chat")
	return nil
}
