package detect

import (
	"encoding/json"

	"github.com/lifelinehq/lifeline/internal/jsonwire"
)

// decodeFast fills w from data, an event object in the layout the widget
// writes: known keys only, strings without escapes (valid UTF-8 in the
// fields that hold text, such as a page's title or an error's message;
// printable ASCII in the others), integers where the field is an integer. It reports false for anything
// else (an escape, a null, an unknown key, "props", a syntax error), and
// the caller decodes with encoding/json instead. Whenever it reports
// true, w is what json.Unmarshal would have made of data; FuzzDecodeFast
// holds it to that. Events are the node's busiest input (a 20-event batch
// per visitor every few seconds), and reflection was most of their cost.
func (w *wireEvent) decodeFast(data []byte) bool {
	s := jsonwire.New(data)
	return s.Object(func(key []byte) bool { return w.field(s, key) })
}

// field reads the value of key into w.
func (w *wireEvent) field(s *jsonwire.Scanner, key []byte) bool {
	switch string(key) {
	case "t":
		n, ok := s.Num()
		if ok {
			num := json.Number(n)
			w.T = &num
		}
		return ok
	case "k":
		return s.StrTo(&w.K)
	case "path":
		return s.TextTo(&w.Path)
	case "title":
		return s.TextTo(&w.Title)
	case "ref":
		return s.TextTo(&w.Ref)
	case "fp":
		return s.StrTo(&w.FP)
	case "src":
		return s.TextTo(&w.Src)
	case "method":
		return s.StrTo(&w.Method)
	case "form":
		return s.TextTo(&w.Form)
	case "field":
		return s.TextTo(&w.Field)
	case "ftype":
		return s.StrTo(&w.FType)
	case "sel":
		return s.TextTo(&w.Sel)
	case "name":
		return s.TextTo(&w.Name)
	case "msg":
		return jsonwire.Ptr(&w.Msg, s.TextTo)
	case "line":
		return s.IntTo(&w.Line)
	case "col":
		return s.IntTo(&w.Col)
	case "rage":
		return s.IntTo(&w.Rage)
	case "status":
		return jsonwire.Ptr(&w.Status, s.IntTo)
	case "dur":
		return jsonwire.Ptr(&w.Dur, s.FloatTo)
	case "x":
		return jsonwire.Ptr(&w.X, s.FloatTo)
	case "y":
		return jsonwire.Ptr(&w.Y, s.FloatTo)
	case "dead":
		return s.BoolTo(&w.Dead)
	case "ok":
		return jsonwire.Ptr(&w.OK, s.BoolTo)
	case "visible":
		return jsonwire.Ptr(&w.Visible, s.BoolTo)
	case "idle":
		return jsonwire.Ptr(&w.Idle, s.BoolTo)
	case "flags":
		return s.Strings(&w.Flags)
	}
	return false
}
