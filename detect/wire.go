package detect

import (
	"encoding/json"
	"strconv"
)

// decodeFast fills w from data, an event object in the layout the widget
// writes: known keys only, strings of printable ASCII without escapes,
// integers where the field is an integer. It reports false for anything
// else (an escape, a null, an unknown key, "props", a syntax error), and
// the caller decodes with encoding/json instead. Whenever it reports
// true, w is what json.Unmarshal would have made of data; FuzzDecodeFast
// holds it to that. Events are the node's busiest input (a 20-event batch
// per visitor every few seconds), and reflection was most of their cost.
func (w *wireEvent) decodeFast(data []byte) bool {
	s := wireScan{b: data}
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return s.end()
	}
	for {
		key, ok := s.str()
		if !ok || !s.next(':') || !w.field(&s, key) {
			return false
		}
		if s.next(',') {
			continue
		}
		return s.next('}') && s.end()
	}
}

// field reads the value of key into w.
func (w *wireEvent) field(s *wireScan, key []byte) bool {
	switch string(key) {
	case "t":
		n, ok := s.num()
		if ok {
			num := json.Number(n)
			w.T = &num
		}
		return ok
	case "k":
		return s.strTo(&w.K)
	case "path":
		return s.strTo(&w.Path)
	case "title":
		return s.strTo(&w.Title)
	case "ref":
		return s.strTo(&w.Ref)
	case "fp":
		return s.strTo(&w.FP)
	case "src":
		return s.strTo(&w.Src)
	case "method":
		return s.strTo(&w.Method)
	case "form":
		return s.strTo(&w.Form)
	case "field":
		return s.strTo(&w.Field)
	case "ftype":
		return s.strTo(&w.FType)
	case "sel":
		return s.strTo(&w.Sel)
	case "name":
		return s.strTo(&w.Name)
	case "msg":
		var m string
		if !s.strTo(&m) {
			return false
		}
		w.Msg = &m
		return true
	case "line":
		return s.intTo(&w.Line)
	case "col":
		return s.intTo(&w.Col)
	case "rage":
		return s.intTo(&w.Rage)
	case "status":
		var n int
		if !s.intTo(&n) {
			return false
		}
		w.Status = &n
		return true
	case "dur":
		return s.floatTo(&w.Dur)
	case "x":
		return s.floatTo(&w.X)
	case "y":
		return s.floatTo(&w.Y)
	case "dead":
		return s.boolTo(&w.Dead)
	case "ok":
		return s.boolPtrTo(&w.OK)
	case "visible":
		return s.boolPtrTo(&w.Visible)
	case "idle":
		return s.boolPtrTo(&w.Idle)
	case "flags":
		return s.strings(&w.Flags)
	}
	return false
}

// wireScan reads the JSON subset decodeFast accepts.
type wireScan struct {
	b []byte
	i int
}

func (s *wireScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c, after any space, if it comes next.
func (s *wireScan) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only space is left.
func (s *wireScan) end() bool {
	s.space()
	return s.i == len(s.b)
}

// str reads a string of printable ASCII without escapes, returning its
// bytes in place.
func (s *wireScan) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			out := s.b[s.i:j]
			s.i = j + 1
			return out, true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

func (s *wireScan) strTo(dst *string) bool {
	b, ok := s.str()
	if ok {
		*dst = string(b)
	}
	return ok
}

// strings reads an array of strings, as encoding/json fills a nil slice.
func (s *wireScan) strings(dst *[]string) bool {
	if !s.next('[') {
		return false
	}
	out := []string{}
	if !s.next(']') {
		for {
			var v string
			if !s.strTo(&v) {
				return false
			}
			out = append(out, v)
			if s.next(',') {
				continue
			}
			if !s.next(']') {
				return false
			}
			break
		}
	}
	*dst = out
	return true
}

// num reads a number literal as JSON defines it.
func (s *wireScan) num() (string, bool) {
	s.space()
	b, start, j := s.b, s.i, s.i
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case !digits():
		return "", false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return "", false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return "", false
		}
	}
	s.i = j
	return string(b[start:j]), true
}

// intTo reads an integer literal into an int field; encoding/json refuses
// fractions and exponents there, and so does the caller's fallback.
func (s *wireScan) intTo(dst *int) bool {
	n, ok := s.num()
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(n, 10, strconv.IntSize)
	if err != nil {
		return false
	}
	*dst = int(v)
	return true
}

func (s *wireScan) floatTo(dst **float64) bool {
	n, ok := s.num()
	if !ok {
		return false
	}
	v, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return false
	}
	*dst = &v
	return true
}

func (s *wireScan) boolTo(dst *bool) bool {
	s.space()
	switch {
	case hasWord(s.b[s.i:], "true"):
		*dst, s.i = true, s.i+4
	case hasWord(s.b[s.i:], "false"):
		*dst, s.i = false, s.i+5
	default:
		return false
	}
	return true
}

func (s *wireScan) boolPtrTo(dst **bool) bool {
	var v bool
	if !s.boolTo(&v) {
		return false
	}
	*dst = &v
	return true
}

func hasWord(b []byte, w string) bool { return len(b) >= len(w) && string(b[:len(w)]) == w }
