package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Frame types shared by both endpoints; see docs/protocol.md.
const (
	TypeHello         = "hello"
	TypeMessage       = "message"
	TypeTyping        = "typing"
	TypeRead          = "read"
	TypeEvents        = "events"
	TypeIdentify      = "identify"
	TypeContext       = "context"
	TypeOfferResponse = "offer_response"
	TypeLeaveMessage  = "leave_message"
	TypeFeedback      = "feedback"
	TypePing          = "ping"
	TypePresence      = "presence"
	TypeOpen          = "open"
	TypeClose         = "close"
	TypeNote          = "note"
	TypeClaim         = "claim"
	TypeTransfer      = "transfer"
	TypeResolve       = "resolve"
	TypeReopen        = "reopen"
	TypeInvite        = "invite"
	TypePending       = "pending"

	TypeWelcome      = "welcome"
	TypeAck          = "ack"
	TypeConversation = "conversation"
	TypeQueue        = "queue"
	TypeOffer        = "offer"
	TypePong         = "pong"
	TypeError        = "error"
)

// Error codes sent in error frames; see docs/protocol.md.
const (
	CodeBadFrame      = "bad_frame"
	CodeUnknownType   = "unknown_type"
	CodeHelloRequired = "hello_required"
	CodeBadToken      = "bad_token"
	CodeTooLong       = "too_long"
	CodeTooLarge      = "too_large"
	CodeInvalid       = "invalid"
	CodeRateLimited   = "rate_limited"
	CodeNotFound      = "not_found"
	CodeForbidden     = "forbidden"
	CodeConflict      = "conflict"
	CodeCapacity      = "capacity"
	CodeUnavailable   = "unavailable"
	CodeInternal      = "internal"
)

// Protocol limits; see docs/protocol.md.
const (
	// MaxTextRunes is the longest message or note text, in code points.
	MaxTextRunes = 4000
	// MaxBatchEvents is the most behaviour events in one events frame.
	MaxBatchEvents = 200
	// maxIDLen bounds client ids, conversation ids and similar fields.
	maxIDLen = 64
	// maxAttributes bounds attributes in identify and context frames.
	maxAttributes = 50
	// maxAttrLen bounds one attribute key or value, in bytes.
	maxAttrLen = 256
)

// FrameError is a protocol error answered with an error frame.
type FrameError struct {
	Code    string
	Message string
}

func (e *FrameError) Error() string { return e.Code + ": " + e.Message }

func frameErr(code, format string, args ...any) *FrameError {
	return &FrameError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Page describes where the visitor is. The widget strips query and fragment.
type Page struct {
	Path     string `json:"path"`
	Title    string `json:"title,omitempty"`
	Referrer string `json:"referrer,omitempty"`
}

// Identity is what identify carries for a logged-in user.
type Identity struct {
	ID         string            `json:"id"`
	Name       string            `json:"name,omitempty"`
	Email      string            `json:"email,omitempty"`
	Hash       string            `json:"hash,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Inbound is a decoded client frame. Fields a type does not use are zero.
type Inbound struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`

	Token   string           `json:"token,omitempty"`
	LastSeq int64            `json:"last_seq,omitempty"`
	Resume  map[string]int64 `json:"resume,omitempty"`
	Page    *Page            `json:"page,omitempty"`
	Locale  string           `json:"locale,omitempty"`
	Device  *Device          `json:"device,omitempty"`

	ConversationID string `json:"conversation_id,omitempty"`
	ClientID       string `json:"client_id,omitempty"`
	Text           string `json:"text,omitempty"`
	Seq            int64  `json:"seq,omitempty"`
	Typing         bool   `json:"typing,omitempty"`

	Events     []json.RawMessage `json:"events,omitempty"`
	Identity   *Identity         `json:"identity,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`

	OfferID string `json:"offer_id,omitempty"`
	Accept  bool   `json:"accept,omitempty"`
	Email   string `json:"email,omitempty"`
	Solved  *bool  `json:"solved,omitempty"`

	Status    string `json:"status,omitempty"`
	Capacity  int    `json:"capacity,omitempty"`
	AgentID   string `json:"agent_id,omitempty"`
	VisitorID string `json:"visitor_id,omitempty"`
}

// visitorTypes and agentTypes are the frame types each endpoint accepts.
var (
	visitorTypes = map[string]bool{
		TypeHello: true, TypeMessage: true, TypeTyping: true, TypeRead: true,
		TypeEvents: true, TypeIdentify: true, TypeContext: true,
		TypeOfferResponse: true, TypeLeaveMessage: true, TypeFeedback: true, TypePing: true,
	}
	agentTypes = map[string]bool{
		TypeHello: true, TypePresence: true, TypeOpen: true, TypeClose: true,
		TypeMessage: true, TypeNote: true, TypeTyping: true, TypeRead: true,
		TypeClaim: true, TypeTransfer: true, TypeResolve: true, TypeReopen: true, TypePending: true,
		TypeInvite: true, TypePing: true,
	}
)

// DecodeVisitor parses and validates a frame from a visitor.
func DecodeVisitor(data []byte) (Inbound, error) { return decode(data, visitorTypes) }

// DecodeAgent parses and validates a frame from an agent.
func DecodeAgent(data []byte) (Inbound, error) {
	in, err := decode(data, agentTypes)
	if err == nil && agentNeedsConversation[in.Type] && in.ConversationID == "" {
		err = frameErr(CodeInvalid, "%s needs conversation_id", in.Type)
	}
	return in, err
}

func decode(data []byte, allowed map[string]bool) (Inbound, error) {
	var in Inbound
	if !in.decodeFast(data) {
		// encoding/json takes its target as an interface, which would move
		// in to the heap for every frame: only the slow path pays for that.
		slow := new(Inbound)
		if err := json.Unmarshal(data, slow); err != nil {
			return Inbound{}, frameErr(CodeBadFrame, "frame is not a valid JSON object: %v", jsonProblem(err))
		}
		in = *slow
	}
	if in.Type == "" {
		return in, frameErr(CodeUnknownType, "frame has no type")
	}
	if !allowed[in.Type] {
		return in, frameErr(CodeUnknownType, "unknown frame type %q", truncate(in.Type, 32))
	}
	if len(in.ID) > maxIDLen {
		in.ID = ""
		return in, frameErr(CodeInvalid, "id longer than %d bytes", maxIDLen)
	}
	return in, validate(&in)
}

// validate checks the fields the frame's type needs.
func validate(in *Inbound) error {
	for _, f := range [...]struct{ name, v string }{
		{"client_id", in.ClientID}, {"conversation_id", in.ConversationID}, {"offer_id", in.OfferID},
		{"agent_id", in.AgentID}, {"visitor_id", in.VisitorID},
	} {
		if len(f.v) > maxIDLen {
			return frameErr(CodeInvalid, "%s longer than %d bytes", f.name, maxIDLen)
		}
	}
	if len(in.Token) > 512 {
		return frameErr(CodeInvalid, "token longer than 512 bytes")
	}
	if in.Seq < 0 || in.LastSeq < 0 {
		return frameErr(CodeInvalid, "seq must not be negative")
	}
	if !utf8.ValidString(in.Text) {
		return frameErr(CodeInvalid, "text is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(in.Text); n > MaxTextRunes {
		return frameErr(CodeTooLong, "text has %d characters; the limit is %d", n, MaxTextRunes)
	}
	if len(in.Events) > MaxBatchEvents {
		return frameErr(CodeTooLarge, "batch has %d events; the limit is %d", len(in.Events), MaxBatchEvents)
	}
	if len(in.Resume) > 1000 {
		return frameErr(CodeTooLarge, "resume lists %d conversations; the limit is 1000", len(in.Resume))
	}
	if err := checkAttributes(in.Attributes); err != nil {
		return err
	}
	if in.Identity != nil {
		if err := checkAttributes(in.Identity.Attributes); err != nil {
			return err
		}
		if len(in.Identity.ID) > 256 || len(in.Identity.Name) > 256 || len(in.Identity.Email) > 256 || len(in.Identity.Hash) > 128 {
			return frameErr(CodeTooLarge, "identity field longer than 256 bytes")
		}
	}
	switch in.Type {
	case TypeMessage:
		if in.ClientID == "" {
			return frameErr(CodeInvalid, "message needs a client_id")
		}
		if isBlank(in.Text) {
			return frameErr(CodeInvalid, "message needs a non-empty text")
		}
	case TypeNote:
		if isBlank(in.Text) {
			return frameErr(CodeInvalid, "note needs a non-empty text")
		}
	case TypeLeaveMessage:
		if in.ClientID == "" || isBlank(in.Text) {
			return frameErr(CodeInvalid, "leave_message needs client_id and text")
		}
		if !ValidEmail(in.Email) {
			return frameErr(CodeInvalid, "leave_message needs a valid email")
		}
	case TypeIdentify:
		if in.Identity == nil || in.Identity.ID == "" {
			return frameErr(CodeInvalid, "identify needs identity.id")
		}
		if in.Identity.Email != "" && !ValidEmail(in.Identity.Email) {
			return frameErr(CodeInvalid, "identity.email is not a valid email")
		}
	case TypeFeedback:
		if in.Solved == nil {
			return frameErr(CodeInvalid, "feedback needs solved (true or false)")
		}
	case TypeOfferResponse:
		if in.OfferID == "" {
			return frameErr(CodeInvalid, "offer_response needs offer_id")
		}
	case TypePresence:
		if in.Status != "online" && in.Status != "away" {
			return frameErr(CodeInvalid, "presence status must be online or away")
		}
		if in.Capacity < 0 || in.Capacity > 100 {
			return frameErr(CodeInvalid, "capacity must be between 0 and 100")
		}
	case TypeTransfer:
		if in.ConversationID == "" || in.AgentID == "" {
			return frameErr(CodeInvalid, "transfer needs conversation_id and agent_id")
		}
	case TypeInvite:
		if in.VisitorID == "" {
			return frameErr(CodeInvalid, "invite needs visitor_id")
		}
	}
	return nil
}

// agentNeedsConversation lists agent frames that act on one conversation.
var agentNeedsConversation = map[string]bool{
	TypeOpen: true, TypeClose: true, TypeClaim: true, TypeResolve: true, TypeReopen: true,
	TypePending: true, TypeMessage: true, TypeNote: true, TypeTyping: true, TypeRead: true,
}

func checkAttributes(m map[string]string) error {
	if len(m) > maxAttributes {
		return frameErr(CodeTooLarge, "%d attributes; the limit is %d", len(m), maxAttributes)
	}
	for k, v := range m {
		if k == "" || len(k) > maxAttrLen || len(v) > maxAttrLen {
			return frameErr(CodeTooLarge, "attribute keys must be 1 to %d bytes and values at most %d", maxAttrLen, maxAttrLen)
		}
	}
	return nil
}

func isBlank(s string) bool {
	for _, r := range s {
		if r != ' ' && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}

// ValidEmail is a deliberately loose check: something@domain.tld, no spaces.
func ValidEmail(s string) bool {
	if len(s) < 3 || len(s) > 254 {
		return false
	}
	at := -1
	for i, r := range s {
		switch {
		case r == '@':
			if at >= 0 {
				return false
			}
			at = i
		case r <= ' ' || r == '<' || r == '>' || r == ',' || r == ';':
			return false
		}
	}
	if at <= 0 || at == len(s)-1 {
		return false
	}
	domain := s[at+1:]
	for i := 1; i < len(domain)-1; i++ {
		if domain[i] == '.' {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// jsonProblem describes a decode error without echoing the input back.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type (%s)", te.Field, te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed"
}

// Device is what the widget reports of the visitor's screen in hello.
type Device struct {
	Kind string `json:"kind"` // desktop, tablet or mobile
	W    int    `json:"w"`
	H    int    `json:"h"`
}

// String is the form shown to agents, e.g. "desktop 1920×1080".
func (d Device) String() string {
	kind := truncate(d.Kind, 20)
	if d.W <= 0 || d.H <= 0 || d.W > 100000 || d.H > 100000 {
		return kind
	}
	return fmt.Sprintf("%s %d×%d", kind, d.W, d.H)
}
