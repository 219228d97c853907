package webhook

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/lifelinehq/lifeline/chat"
)

// SchemaVersion is the version of the delivery body; a breaking change
// bumps it.
const SchemaVersion = 1

// Body is the JSON of every delivery (docs/webhooks.md).
type Body struct {
	Version int            `json:"version"`
	ID      string         `json:"id"` // the event's ID; stable across retries
	Type    chat.EventType `json:"type"`
	Site    string         `json:"site"`
	At      time.Time      `json:"created_at"`
	Data    Data           `json:"data"`
}

// Data is the event-specific part. Fields not relevant to the type are
// left out.
type Data struct {
	VisitorID    string            `json:"visitor_id,omitempty"`
	AgentID      string            `json:"agent_id,omitempty"`
	Conversation *Conversation     `json:"conversation,omitempty"`
	Message      *Message          `json:"message,omitempty"`
	Visitor      *Visitor          `json:"visitor,omitempty"`
	Finding      *chat.FindingSeen `json:"finding,omitempty"`
	Offer        *chat.OfferEvent  `json:"offer,omitempty"`
}

// Conversation is a conversation as webhooks show it.
type Conversation struct {
	ID          string      `json:"id"`
	Ref         string      `json:"ref"`
	Status      chat.Status `json:"status"`
	VisitorID   string      `json:"visitor_id"`
	AgentID     string      `json:"agent_id,omitempty"`
	Priority    int         `json:"priority"`
	Explanation string      `json:"explanation,omitempty"`
	Cause       string      `json:"cause,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
	ResolvedAt  time.Time   `json:"resolved_at,omitzero"`
}

// Message is a chat message as webhooks show it.
type Message struct {
	ConversationID string      `json:"conversation_id"`
	Seq            int64       `json:"seq"`
	Author         chat.Author `json:"author"`
	Text           string      `json:"text"`
	At             time.Time   `json:"at"`
}

// Visitor is an identified visitor as webhooks show it.
type Visitor struct {
	ID         string            `json:"id"`
	ExternalID string            `json:"external_id,omitempty"`
	Name       string            `json:"name,omitempty"`
	Email      string            `json:"email,omitempty"`
	Verified   bool              `json:"verified"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Payload builds the delivery body of e with a fresh event ID.
func Payload(e chat.Event) ([]byte, error) {
	b := Body{Version: SchemaVersion, ID: "evt_" + uuid.NewString(), Type: e.Type, Site: e.SiteKey, At: e.At.UTC(),
		Data: Data{VisitorID: e.VisitorID, AgentID: e.AgentID, Finding: e.Finding, Offer: e.Offer}}
	if c := e.Conversation; c != nil {
		b.Data.Conversation = &Conversation{ID: c.ID, Ref: c.Ref, Status: c.Status, VisitorID: c.VisitorID, AgentID: c.AgentID,
			Priority: c.Priority, Explanation: c.Explanation, Cause: c.Cause, CreatedAt: c.CreatedAt.UTC(), ResolvedAt: c.ResolvedAt.UTC()}
	}
	if m := e.Message; m != nil {
		b.Data.Message = &Message{ConversationID: m.ConversationID, Seq: m.Seq, Author: m.Author, Text: m.Text, At: m.At.UTC()}
	}
	if v := e.Visitor; v != nil {
		b.Data.Visitor = &Visitor{ID: v.ID, ExternalID: v.ExternalID, Name: v.Name, Email: v.Email, Verified: v.Verified, Attributes: v.Attributes}
	}
	out, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", e.Type, err)
	}
	return out, nil
}
