package load

import (
	"encoding/json"
	"fmt"
	"strings"
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
// as the node, so it walks the JSON once without reflection: through
// encoding/json, decoding was a quarter of its CPU at 10,000 messages/s,
// taken from the node it measures. A frame the walk does not take whole
// (a kept string with an escape or a non-ASCII byte, a value of a kind
// the field does not take, or anything that is not well-formed JSON) goes
// through encoding/json, which decides.
func decodeFrame(b []byte, f *frame) error {
	*f = frame{}
	w := walker{b: b}
	if w.object(func(key []byte) bool {
		switch string(key) {
		case "type":
			return w.str(&f.Type)
		case "code":
			return w.str(&f.Code)
		case "client_id":
			return w.str(&f.ClientID)
		case "message":
			m := &f.Message
			return w.objectOrNull(func(key []byte) bool {
				switch string(key) {
				case "client_id":
					return w.str(&m.ClientID)
				case "text":
					return w.str(&m.Text)
				case "author":
					return w.objectOrNull(func(key []byte) bool {
						if string(key) == "kind" {
							return w.str(&m.Author.Kind)
						}
						return w.other(key, "kind")
					})
				}
				return w.other(key, "client_id", "text", "author")
			})
		case "conversation":
			c := &f.Conversation
			return w.objectOrNull(func(key []byte) bool {
				switch string(key) {
				case "id":
					return w.str(&c.ID)
				case "agent_id":
					return w.str(&c.AgentID)
				case "status":
					return w.str(&c.Status)
				}
				return w.other(key, "id", "agent_id", "status")
			})
		}
		return w.other(key, "type", "code", "client_id", "message", "conversation")
	}) && w.end() {
		return nil
	}
	*f = frame{}
	err := json.Unmarshal(b, f)
	if err != nil && f.Type == "" {
		return fmt.Errorf("decode frame: %w", err)
	}
	return nil
}

// walker reads JSON for decodeFrame. Each method reports false when the
// input is not what it expects, and decodeFrame then starts over with
// encoding/json. It checks what it skips only as far as finding where a
// value ends, which is enough: a frame it accepts but encoding/json would
// refuse cannot come from the node, whose frames come from an encoder.
type walker struct {
	b []byte
	i int
}

func (w *walker) space() {
	for w.i < len(w.b) && (w.b[w.i] == ' ' || w.b[w.i] == '\t' || w.b[w.i] == '\n' || w.b[w.i] == '\r') {
		w.i++
	}
}

func (w *walker) next(c byte) bool {
	w.space()
	if w.i < len(w.b) && w.b[w.i] == c {
		w.i++
		return true
	}
	return false
}

func (w *walker) end() bool {
	w.space()
	return w.i == len(w.b)
}

// object reads an object, calling field with each key and the walker at
// its value; field reads the value.
func (w *walker) object(field func(key []byte) bool) bool {
	if !w.next('{') {
		return false
	}
	if w.next('}') {
		return true
	}
	for {
		w.space()
		key, ok := w.plain()
		if !ok || !w.next(':') || !field(key) {
			return false
		}
		if !w.next(',') {
			return w.next('}')
		}
	}
}

// objectOrNull reads an object as object does, or null. Any other value
// (an error frame's message is a string) is left to encoding/json.
func (w *walker) objectOrNull(field func(key []byte) bool) bool {
	w.space()
	return w.lit("null") || w.object(field)
}

// other skips the value of a key decodeFrame does not keep. A key that
// differs from a kept one only in case, which encoding/json would match,
// is left to encoding/json.
func (w *walker) other(key []byte, kept ...string) bool {
	for _, k := range kept {
		if strings.EqualFold(string(key), k) {
			return false
		}
	}
	return w.skip()
}

// plain reads a string of printable ASCII without escapes, in place.
func (w *walker) plain() ([]byte, bool) {
	if w.i >= len(w.b) || w.b[w.i] != '"' {
		return nil, false
	}
	for j := w.i + 1; j < len(w.b); j++ {
		switch c := w.b[j]; {
		case c == '"':
			s := w.b[w.i+1 : j]
			w.i = j + 1
			return s, true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// str reads a plain string into dst; null leaves dst as it is.
func (w *walker) str(dst *string) bool {
	w.space()
	if w.lit("null") {
		return true
	}
	s, ok := w.plain()
	if ok {
		*dst = string(s)
	}
	return ok
}

func (w *walker) lit(l string) bool {
	if len(w.b)-w.i >= len(l) && string(w.b[w.i:w.i+len(l)]) == l {
		w.i += len(l)
		return true
	}
	return false
}

// skip passes over one value of any kind.
func (w *walker) skip() bool {
	w.space()
	if w.i >= len(w.b) {
		return false
	}
	switch c := w.b[w.i]; {
	case c == '"':
		for j := w.i + 1; j < len(w.b); j++ {
			switch w.b[j] {
			case '\\':
				j++
			case '"':
				w.i = j + 1
				return true
			}
		}
		return false
	case c == '{':
		return w.object(func([]byte) bool { return w.skip() })
	case c == '[':
		w.i++
		if w.next(']') {
			return true
		}
		for {
			if !w.skip() {
				return false
			}
			if !w.next(',') {
				return w.next(']')
			}
		}
	case c == 't':
		return w.lit("true")
	case c == 'f':
		return w.lit("false")
	case c == 'n':
		return w.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		j := w.i + 1
		for j < len(w.b) && (w.b[j] >= '0' && w.b[j] <= '9' || w.b[j] == '.' || w.b[j] == 'e' || w.b[j] == 'E' || w.b[j] == '+' || w.b[j] == '-') {
			j++
		}
		w.i = j
		return true
	}
	return false
}
