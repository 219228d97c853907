package load

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lifelinehq/lifeline/internal/jsonwire"
)

// frame is the part of a server frame the generator looks at.
type frame struct {
	Type     string `json:"type"`
	Code     string `json:"code"`
	ClientID string `json:"client_id"`
	Message  struct {
		ClientID string `json:"client_id"`
		Text     string `json:"text"`
		Author   struct {
			Kind string `json:"kind"`
		} `json:"author"`
	} `json:"message"`
	Conversation struct {
		ID      string `json:"id"`
		AgentID string `json:"agent_id"`
		Status  string `json:"status"`
	} `json:"conversation"`
}

// decodeFrame reads the frame's fields. An error frame's message is a
// string, which does not fit Message; the type and code are still
// decoded.
//
// The generator reads every frame the node sends, on the same two cores
// as the node, so it reads the JSON once without reflection, with the
// jsonwire scanner the node's own hot decoders use: through encoding/json,
// decoding was a quarter of its CPU at 10,000 messages/s, taken from the
// node it measures. A frame the scanner does not take whole (a kept
// string with an escape or a non-ASCII byte, a value of a kind the field
// does not take, a key that differs from a kept one only in case, which
// encoding/json would match, or anything that is not well-formed JSON)
// goes through encoding/json, which decides.
func decodeFrame(b []byte, f *frame) error {
	*f = frame{}
	s := jsonwire.New(b)
	str := func(dst *string) bool { return s.Null() || s.StrTo(dst) }
	object := func(field func(key []byte) bool) bool { return s.Null() || s.Fields(field) }
	other := func(key []byte, kept ...string) bool {
		for _, k := range kept {
			if strings.EqualFold(string(key), k) {
				return false
			}
		}
		_, ok := s.Skip()
		return ok
	}
	if s.Object(func(key []byte) bool {
		switch string(key) {
		case "type":
			return str(&f.Type)
		case "code":
			return str(&f.Code)
		case "client_id":
			return str(&f.ClientID)
		case "message":
			m := &f.Message
			return object(func(key []byte) bool {
				switch string(key) {
				case "client_id":
					return str(&m.ClientID)
				case "text":
					return str(&m.Text)
				case "author":
					return object(func(key []byte) bool {
						if string(key) == "kind" {
							return str(&m.Author.Kind)
						}
						return other(key, "kind")
					})
				}
				return other(key, "client_id", "text", "author")
			})
		case "conversation":
			c := &f.Conversation
			return object(func(key []byte) bool {
				switch string(key) {
				case "id":
					return str(&c.ID)
				case "agent_id":
					return str(&c.AgentID)
				case "status":
					return str(&c.Status)
				}
				return other(key, "id", "agent_id", "status")
			})
		}
		return other(key, "type", "code", "client_id", "message", "conversation")
	}) {
		return nil
	}
	*f = frame{}
	err := json.Unmarshal(b, f)
	if err != nil && f.Type == "" {
		return fmt.Errorf("decode frame: %w", err)
	}
	return nil
}
