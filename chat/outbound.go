package chat

import (
	"encoding/json"
	"time"
)

// Outbound frames. Each is encoded once and the bytes are shared by every
// connection it goes to.

type errorFrame struct {
	Type      string `json:"type"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
	ID        string `json:"id,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
}

type ackFrame struct {
	Type           string `json:"type"`
	ID             string `json:"id,omitempty"`
	ClientID       string `json:"client_id"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	Ref            string `json:"ref,omitempty"`
}

type messageFrame struct {
	Type    string   `json:"type"`
	Message *Message `json:"message"`
}

// VisitorConversation is the part of a conversation a visitor may see.
type VisitorConversation struct {
	ID       string `json:"id"`
	Ref      string `json:"ref"`
	Status   Status `json:"status"`
	Agent    *Named `json:"agent,omitempty"`
	Feedback string `json:"feedback,omitempty"`
	LastSeq  int64  `json:"last_seq"`
}

// Named is a display name.
type Named struct {
	Name string `json:"name"`
}

type conversationFrame struct {
	Type         string `json:"type"`
	Conversation any    `json:"conversation"`
}

type queueFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	Position       int    `json:"position"`
	ETASeconds     int    `json:"eta_seconds"`
}

type typingFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	Author         Author `json:"author"`
	Typing         bool   `json:"typing"`
}

type readFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	Reader         string `json:"reader"`
}

type noteFrame struct {
	Type string `json:"type"`
	Note *Note  `json:"note"`
}

type offerFrame struct {
	Type    string `json:"type"`
	OfferID string `json:"offer_id"`
	Text    string `json:"text"`
	Mode    string `json:"mode"`
}

// SiteSettings is what the widget needs to look right.
type SiteSettings struct {
	Theme   string            `json:"theme,omitempty"`
	Strings map[string]string `json:"strings,omitempty"`
}

type visitorWelcome struct {
	Type         string               `json:"type"`
	VisitorID    string               `json:"visitor_id"`
	Token        string               `json:"token"`
	Conversation *VisitorConversation `json:"conversation,omitempty"`
	AgentsOnline bool                 `json:"agents_online"`
	Site         SiteSettings         `json:"site"`
}

// AgentView is an agent as other agents see it.
type AgentView struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email,omitempty"`
	Role     Role   `json:"role"`
	Status   string `json:"status"`
	Capacity int    `json:"capacity"`
	Load     int    `json:"load"`
}

type agentWelcome struct {
	Type     string         `json:"type"`
	Agent    AgentView      `json:"agent"`
	Queue    []Conversation `json:"queue"`
	Assigned []Conversation `json:"assigned"`
}

type presenceFrame struct {
	Type   string      `json:"type"`
	Agents []AgentView `json:"agents"`
}

var pongFrame = []byte(`{"type":"pong"}`)

// encode marshals an outbound frame. Outbound types contain nothing that can
// fail to marshal, so an error is a programming mistake.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("chat: encode outbound frame: " + err.Error())
	}
	return b
}

// event is what travels through the Broker on conversation, visitor, queue
// and presence topics.
type event struct {
	Kind         string        `json:"k"`
	Message      *Message      `json:"message,omitempty"`
	Conversation *Conversation `json:"conversation,omitempty"`
	Note         *Note         `json:"note,omitempty"`
	Author       *Author       `json:"author,omitempty"`
	Typing       bool          `json:"typing,omitempty"`
	Seq          int64         `json:"seq,omitempty"`
	Reader       string        `json:"reader,omitempty"`
	Offer        *offerFrame   `json:"offer,omitempty"`
	// AgentName travels with conversation events so the visitor sees who
	// is helping without another lookup.
	AgentName string    `json:"agent_name,omitempty"`
	At        time.Time `json:"at,omitzero"`
}

// Event kinds.
const (
	evMessage      = "message"
	evConversation = "conversation"
	evNote         = "note"
	evTyping       = "typing"
	evRead         = "read"
	evOffer        = "offer"
	evPresence     = "presence"
)

// Broker topics.
func convTopic(id string) string    { return "conv." + id }
func visitorTopic(id string) string { return "visitor." + id }

const (
	queueTopic    = "queue"
	presenceTopic = "presence"
	agentsSet     = "agents"
)

func visitorView(c Conversation, agentName string) *VisitorConversation {
	v := &VisitorConversation{ID: c.ID, Ref: c.Ref, Status: c.Status, Feedback: c.Feedback, LastSeq: c.LastSeq}
	if agentName != "" {
		v.Agent = &Named{Name: agentName}
	}
	return v
}
