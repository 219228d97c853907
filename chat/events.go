package chat

import (
	"context"
	"time"
)

// EventType names a domain event as integrations (webhooks) see it.
type EventType string

// Event types. Their JSON shapes are documented in docs/webhooks.md.
const (
	EventConversationCreated     EventType = "conversation.created"
	EventConversationAssigned    EventType = "conversation.assigned"
	EventConversationTransferred EventType = "conversation.transferred"
	EventConversationResolved    EventType = "conversation.resolved"
	EventConversationReopened    EventType = "conversation.reopened"
	EventMessageCreated          EventType = "message.created"
	EventStruggleDetected        EventType = "struggle.detected"
	EventOfferShown              EventType = "offer.shown"
	EventOfferAccepted           EventType = "offer.accepted"
	EventOfferDeclined           EventType = "offer.declined"
	EventVisitorIdentified       EventType = "visitor.identified"
)

// EventTypes lists every event type.
var EventTypes = []EventType{
	EventConversationCreated, EventConversationAssigned, EventConversationTransferred,
	EventConversationResolved, EventConversationReopened, EventMessageCreated,
	EventStruggleDetected, EventOfferShown, EventOfferAccepted, EventOfferDeclined,
	EventVisitorIdentified,
}

// Valid reports whether t is a known event type.
func (t EventType) Valid() bool {
	for _, x := range EventTypes {
		if t == x {
			return true
		}
	}
	return false
}

// Event is something that happened on a site, for integrations. Only the
// fields of its type are set.
type Event struct {
	Type      EventType
	SiteKey   string
	At        time.Time
	VisitorID string
	// AgentID is the agent who acted or was given the conversation.
	AgentID      string
	Conversation *Conversation // conversation.*
	Message      *Message      // message.created
	Visitor      *Visitor      // visitor.identified
	Offer        *OfferEvent   // offer.*
	Finding      *FindingSeen  // struggle.detected
}

// OfferEvent describes a proactive offer.
type OfferEvent struct {
	ID   string `json:"id"`
	Rule string `json:"rule,omitempty"`
	Mode string `json:"mode,omitempty"`
	Text string `json:"text,omitempty"`
}

// Emitter receives domain events from the hub and the detector. Emit must
// not block or fail the caller: implementations queue and return.
type Emitter interface {
	Emit(ctx context.Context, e Event)
}

// evErased tells every node to close an erased visitor's sockets.
const evErased = "erased"

// DisconnectVisitor closes the visitor's sockets on every node, for
// erasure: their tokens stop working because the record is gone, and open
// sockets must not keep acting for a visitor that no longer exists.
func (h *Hub) DisconnectVisitor(ctx context.Context, visitorID string) {
	h.closeVisitorSockets(visitorID)
	h.publish(ctx, &event{Kind: evErased}, visitorTopic(visitorID))
}

// closeVisitorSockets closes this node's sockets of the visitor.
func (h *Hub) closeVisitorSockets(visitorID string) {
	for _, c := range h.visitorTabs(visitorID) {
		c.close(ClosePolicy, "visitor erased")
	}
}

// visitorTabs returns this node's sockets of the visitor.
func (h *Hub) visitorTabs(visitorID string) []*client {
	h.mu.Lock()
	defer h.mu.Unlock()
	var tabs []*client
	if g := h.visitors[visitorID]; g != nil {
		for c := range g.clients {
			tabs = append(tabs, c)
		}
	}
	return tabs
}
