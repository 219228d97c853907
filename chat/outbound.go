package chat

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/lifelinehq/lifeline/internal/jsonwire"
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
	// AgentRead is how far support has read (Conversation.AgentRead).
	AgentRead int64 `json:"agent_read,omitempty"`
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
	// ReadReceipts is whether the widget shows "Seen" under the visitor's
	// messages once support has read them.
	ReadReceipts bool `json:"read_receipts"`
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

var pongFrame = []byte(`{"type":"pong"}`)

// encode marshals an outbound frame. Outbound types contain nothing that can
// fail to marshal, so an error is a programming mistake.
//
// The frames of every chat message (its ack, its broker event and the
// message frame) are written by hand-made appenders that give the same
// bytes as encoding/json (appender_test.go checks); the rest use
// encoding/json.
func encode(v any) []byte {
	switch f := v.(type) {
	case ackFrame:
		return appendAck(make([]byte, 0, 160), &f)
	case messageFrame:
		if f.Message != nil {
			if b, ok := appendMessageFrame(make([]byte, 0, 256+len(f.Message.Text)), f.Type, f.Message); ok {
				return b
			}
		}
	case *event:
		if f.Message != nil && *f == (event{Kind: evMessage, Message: f.Message}) {
			if b, ok := appendMessageEvent(make([]byte, 0, 256+len(f.Message.Text)), f.Message); ok {
				return b
			}
		}
	}
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
	v := &VisitorConversation{ID: c.ID, Ref: c.Ref, Status: c.Status, Feedback: c.Feedback, LastSeq: c.LastSeq, AgentRead: c.AgentRead}
	if agentName != "" {
		v.Agent = &Named{Name: agentName}
	}
	return v
}

// appendAck appends f as encoding/json would.
func appendAck(b []byte, f *ackFrame) []byte {
	b = append(b, `{"type":`...)
	b = jsonwire.AppendString(b, f.Type)
	if f.ID != "" {
		b = append(b, `,"id":`...)
		b = jsonwire.AppendString(b, f.ID)
	}
	b = append(b, `,"client_id":`...)
	b = jsonwire.AppendString(b, f.ClientID)
	b = append(b, `,"conversation_id":`...)
	b = jsonwire.AppendString(b, f.ConversationID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, f.Seq, 10)
	if f.Ref != "" {
		b = append(b, `,"ref":`...)
		b = jsonwire.AppendString(b, f.Ref)
	}
	return append(b, '}')
}

// appendMessageFrame appends {"type":typ,"message":m}; ok is false if m
// needs encoding/json (a time it cannot format).
func appendMessageFrame(b []byte, typ string, m *Message) ([]byte, bool) {
	b = append(b, `{"type":`...)
	b = jsonwire.AppendString(b, typ)
	b = append(b, `,"message":`...)
	b, ok := appendMessage(b, m)
	return append(b, '}'), ok
}

// appendMessageEvent appends a message event as encoding/json would.
func appendMessageEvent(b []byte, m *Message) ([]byte, bool) {
	b = append(b, `{"k":"message","message":`...)
	b, ok := appendMessage(b, m)
	return append(b, '}'), ok
}

func appendMessage(b []byte, m *Message) ([]byte, bool) {
	if y := m.At.Year(); y < 0 || y > 9999 {
		return b, false // time.Time.MarshalJSON fails; let encoding/json say so
	}
	if _, off := m.At.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, false
	}
	b = append(b, `{"conversation_id":`...)
	b = jsonwire.AppendString(b, m.ConversationID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, m.Seq, 10)
	b = append(b, `,"client_id":`...)
	b = jsonwire.AppendString(b, m.ClientID)
	b = append(b, `,"author":{"kind":`...)
	b = jsonwire.AppendString(b, string(m.Author.Kind))
	if m.Author.ID != "" {
		b = append(b, `,"id":`...)
		b = jsonwire.AppendString(b, m.Author.ID)
	}
	if m.Author.Name != "" {
		b = append(b, `,"name":`...)
		b = jsonwire.AppendString(b, m.Author.Name)
	}
	b = append(b, `},"text":`...)
	b = jsonwire.AppendString(b, m.Text)
	b = append(b, `,"at":"`...)
	b = m.At.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...), true
}

// UnmarshalJSON decodes a broker event. A message event in the layout
// appendMessageEvent writes (every node writes them so) is parsed by hand,
// since every message is decoded by every room it reaches; anything else
// goes through encoding/json.
func (e *event) UnmarshalJSON(b []byte) error {
	if m, ok := parseMessageEvent(b); ok {
		*e = event{Kind: evMessage, Message: m}
		return nil
	}
	type plain event // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*e = event(p)
	return nil
}

// parseMessageEvent reads exactly the bytes appendMessageEvent writes;
// ok is false for anything else.
func parseMessageEvent(b []byte) (*Message, bool) {
	s := jsonwire.New(b)
	m := &Message{}
	var kind, at string
	ok := s.Lit(`{"k":"message","message":{"conversation_id":`) && s.TextTo(&m.ConversationID) &&
		s.Lit(`,"seq":`) && s.Int64To(&m.Seq) &&
		s.Lit(`,"client_id":`) && s.TextTo(&m.ClientID) &&
		s.Lit(`,"author":{"kind":`) && s.TextTo(&kind)
	if !ok {
		return nil, false
	}
	m.Author.Kind = AuthorKind(kind)
	if s.Lit(`,"id":`) && !s.TextTo(&m.Author.ID) {
		return nil, false
	}
	if s.Lit(`,"name":`) && !s.TextTo(&m.Author.Name) {
		return nil, false
	}
	ok = s.Lit(`},"text":`) && s.TextTo(&m.Text) && s.Lit(`,"at":`) && s.TextTo(&at) && s.Lit(`}}`) && s.End()
	if !ok {
		return nil, false
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return nil, false
	}
	m.At = t
	return m, true
}
