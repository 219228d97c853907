// Package jsonwire reads the plain subset of JSON that Lifeline's own
// clients write, byte by byte and without reflection, for the decoders on
// the node's hottest paths (behaviour events, socket frames), and writes
// JSON strings exactly as encoding/json does for the encoders beside them.
//
// A Scanner never accepts what encoding/json would refuse. It refuses some
// JSON that encoding/json accepts (string escapes in the values a decoder
// keeps, nulls, numbers that do not fit the field), and each decoder then
// falls back to encoding/json for the whole input, so edge cases and error
// messages stay encoding/json's. Each decoder's fuzz test holds it to
// that: whatever the fast path accepts, json.Unmarshal decodes the same.
package jsonwire

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Scanner reads one JSON text. Every method reports false, leaving the
// position unspecified, when the input is not what it reads.
type Scanner struct {
	b []byte
	i int
}

// New returns a Scanner at the start of b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

func (s *Scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Next consumes c, after any space, if it comes next.
func (s *Scanner) Next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// End reports whether only space is left.
func (s *Scanner) End() bool {
	s.space()
	return s.i == len(s.b)
}

// Str reads a string of printable ASCII without escapes and returns its
// bytes in place.
func (s *Scanner) Str() ([]byte, bool) {
	if !s.Next('"') {
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

// StrTo reads a string as Str does into dst.
func (s *Scanner) StrTo(dst *string) bool {
	b, ok := s.Str()
	if ok {
		*dst = string(b)
	}
	return ok
}

// Object reads an object that is the whole rest of the input, calling
// field with each key and the Scanner at its value; field reads the value
// or reports false.
func (s *Scanner) Object(field func(key []byte) bool) bool {
	return s.Fields(field) && s.End()
}

// Fields reads an object as Object does, as a value inside another: more
// input may follow it.
func (s *Scanner) Fields(field func(key []byte) bool) bool {
	if !s.Next('{') {
		return false
	}
	if s.Next('}') {
		return true
	}
	for {
		key, ok := s.Str()
		if !ok || !s.Next(':') || !field(key) {
			return false
		}
		if s.Next(',') {
			continue
		}
		return s.Next('}')
	}
}

// Null consumes null, after any space, if it comes next.
func (s *Scanner) Null() bool {
	s.space()
	return s.Lit("null")
}

// Array reads an array, calling elem with the Scanner at each element;
// elem reads it or reports false.
func (s *Scanner) Array(elem func() bool) bool {
	if !s.Next('[') {
		return false
	}
	if s.Next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.Next(',') {
			continue
		}
		return s.Next(']')
	}
}

// Lit consumes lit if the input continues with exactly it, with no
// space first: for input in a layout Lifeline itself writes.
func (s *Scanner) Lit(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// TextTo reads any JSON string into dst: in place when it holds no escape
// and is valid UTF-8, through encoding/json otherwise (which also gives
// encoding/json's answer for invalid UTF-8).
func (s *Scanner) TextTo(dst *string) bool {
	s.space()
	start := s.i
	if s.i >= len(s.b) || s.b[s.i] != '"' || !s.skipString() {
		return false
	}
	tok := s.b[start:s.i]
	if body := tok[1 : len(tok)-1]; bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		*dst = string(body)
		return true
	}
	// Decoded into a string of its own: handing dst to encoding/json would
	// make every caller's destination escape to the heap, fast path too.
	var text string
	if json.Unmarshal(tok, &text) != nil {
		return false
	}
	*dst = text
	return true
}

// Strings reads an array of strings as Str does, as encoding/json fills a
// nil slice: [] makes an empty one.
func (s *Scanner) Strings(dst *[]string) bool {
	out := []string{}
	ok := s.Array(func() bool {
		var v string
		if !s.StrTo(&v) {
			return false
		}
		out = append(out, v)
		return true
	})
	if ok {
		*dst = out
	}
	return ok
}

// Num reads a number literal as JSON defines it.
func (s *Scanner) Num() (string, bool) {
	n, ok := s.num()
	return string(n), ok
}

// num reads a number literal in place.
func (s *Scanner) num() ([]byte, bool) {
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
		return nil, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return nil, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return nil, false
		}
	}
	s.i = j
	return b[start:j], true
}

// Int64To reads an integer literal that fits an int64 into dst, as
// encoding/json fills an integer field (it refuses fractions and
// exponents there).
func (s *Scanner) Int64To(dst *int64) bool {
	n, ok := s.num()
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return false
	}
	*dst = v
	return true
}

// IntTo reads an integer literal that fits an int into dst.
func (s *Scanner) IntTo(dst *int) bool {
	n, ok := s.num()
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(string(n), 10, strconv.IntSize)
	if err != nil {
		return false
	}
	*dst = int(v)
	return true
}

// FloatTo reads a number that fits a float64 into dst.
func (s *Scanner) FloatTo(dst *float64) bool {
	n, ok := s.num()
	if !ok {
		return false
	}
	v, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return false
	}
	*dst = v
	return true
}

// BoolTo reads true or false into dst.
func (s *Scanner) BoolTo(dst *bool) bool {
	s.space()
	switch rest := s.b[s.i:]; {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		*dst, s.i = true, s.i+4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		*dst, s.i = false, s.i+5
	default:
		return false
	}
	return true
}

// Ptr reads a value with read into a new variable that *dst then points
// to, as encoding/json fills a pointer field: Ptr(&p, s.BoolTo).
func Ptr[T any](dst **T, read func(*T) bool) bool {
	var v T
	if !read(&v) {
		return false
	}
	*dst = &v
	return true
}

// maxDepth bounds the nesting Skip follows; deeper input falls back to
// encoding/json, whose own limit is far higher.
const maxDepth = 32

// Skip reads any JSON value, checking its syntax as encoding/json's
// scanner does (strings may hold escapes and any bytes from 0x20 on), and
// returns its bytes in place, without the space around it.
func (s *Scanner) Skip() ([]byte, bool) {
	s.space()
	start := s.i
	if !s.skip(0) {
		return nil, false
	}
	return s.b[start:s.i], true
}

func (s *Scanner) skip(depth int) bool {
	if depth > maxDepth || s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{':
		s.i++
		if s.Next('}') {
			return true
		}
		for {
			s.space()
			if s.i >= len(s.b) || s.b[s.i] != '"' || !s.skipString() || !s.Next(':') {
				return false
			}
			s.space()
			if !s.skip(depth + 1) {
				return false
			}
			if s.Next(',') {
				continue
			}
			return s.Next('}')
		}
	case c == '[':
		s.i++
		if s.Next(']') {
			return true
		}
		for {
			s.space()
			if !s.skip(depth + 1) {
				return false
			}
			if s.Next(',') {
				continue
			}
			return s.Next(']')
		}
	case c == 't' || c == 'f':
		var v bool
		return s.BoolTo(&v)
	case c == 'n':
		if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
			s.i += 4
			return true
		}
		return false
	default:
		_, ok := s.num()
		return ok
	}
}

// skipString reads a string whose opening quote is next.
func (s *Scanner) skipString() bool {
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(s.b) {
				return false
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[j+1 : j+5] {
					if !isHex(h) {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

const hexDigits = "0123456789abcdef"

// safeASCII[c] reports whether AppendString writes the ASCII byte c as
// it is: one load a byte rather than six comparisons.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendString appends s quoted as encoding/json does: HTML-safe (<, >
// and & escaped), invalid UTF-8 replaced by U+FFFD, and U+2028 and U+2029
// escaped. The node's hand-written encoders use it, each held by a test
// to the bytes encoding/json writes.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
