package chat

import (
	"encoding/json"

	"github.com/lifelinehq/lifeline/internal/jsonwire"
)

// decodeFast fills in from data when the frame keeps to the plain layout
// the widget and the console write for their busiest frames (messages,
// typing, reads, event batches): known keys with plain ASCII strings,
// integers, booleans, and events of any valid JSON. It reports false for
// anything else (escapes or other text in a kept string, nulls, the
// object-valued fields, unknown keys, bad syntax), and decode falls back
// to encoding/json, so its answers and errors stay the same.
// FuzzDecodeFast holds it to json.Unmarshal.
func (in *Inbound) decodeFast(data []byte) bool {
	s := jsonwire.New(data)
	return s.Object(func(key []byte) bool { return in.field(s, key) })
}

// field reads the value of key into in.
func (in *Inbound) field(s *jsonwire.Scanner, key []byte) bool {
	switch string(key) {
	case "type":
		return s.StrTo(&in.Type)
	case "id":
		return s.StrTo(&in.ID)
	case "token":
		return s.StrTo(&in.Token)
	case "last_seq":
		return s.Int64To(&in.LastSeq)
	case "locale":
		return s.StrTo(&in.Locale)
	case "conversation_id":
		return s.StrTo(&in.ConversationID)
	case "client_id":
		return s.StrTo(&in.ClientID)
	case "text":
		return s.StrTo(&in.Text)
	case "seq":
		return s.Int64To(&in.Seq)
	case "typing":
		return s.BoolTo(&in.Typing)
	case "events":
		return in.events(s)
	case "offer_id":
		return s.StrTo(&in.OfferID)
	case "accept":
		return s.BoolTo(&in.Accept)
	case "email":
		return s.StrTo(&in.Email)
	case "solved":
		return jsonwire.Ptr(&in.Solved, s.BoolTo)
	case "status":
		return s.StrTo(&in.Status)
	case "capacity":
		return s.IntTo(&in.Capacity)
	case "agent_id":
		return s.StrTo(&in.AgentID)
	case "visitor_id":
		return s.StrTo(&in.VisitorID)
	}
	return false
}

// events reads an array of values, each kept as its bytes in the frame
// (the frame's buffer is the caller's to keep).
func (in *Inbound) events(s *jsonwire.Scanner) bool {
	out := make([]json.RawMessage, 0, 20)
	ok := s.Array(func() bool {
		raw, ok := s.Skip()
		out = append(out, raw)
		return ok
	})
	if ok {
		in.Events = out
	}
	return ok
}
