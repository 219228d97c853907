package detect

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lifelinehq/lifeline/internal/jsonwire"
)

// Kind is the kind of a behaviour event, the "k" field of docs/protocol.md.
type Kind uint8

// Event kinds, one per row of docs/protocol.md "Behaviour events".
const (
	KindUnknown    Kind = iota
	KindPage            // a page view or in-app navigation
	KindError           // a JS error or unhandled rejection
	KindRequest         // a failed fetch or XHR
	KindInvalid         // a form control failed validation
	KindSubmit          // a form submit
	KindClick           // a click, maybe rage or dead
	KindVisibility      // the tab became visible or hidden
	KindIdle            // no input for 30 s, or input again
	KindTrack           // lifeline('track', name, props)
	KindReport          // lifeline('error', msg)
	KindLongTask        // a long task or slow interaction
	numKinds
)

var kindNames = [numKinds]string{"", "page", "error", "request", "invalid", "submit", "click", "visibility", "idle", "track", "report", "longtask"}

// String returns the wire name of the kind, as in "click".
func (k Kind) String() string {
	if k < numKinds && k != KindUnknown {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind returns the Kind named by the wire name s, or KindUnknown.
func ParseKind(s string) Kind {
	for i := 1; i < int(numKinds); i++ {
		if kindNames[i] == s {
			return Kind(i)
		}
	}
	return KindUnknown
}

// Validity is a set of ValidityState flags of an invalid form control.
type Validity uint16

// ValidityState flags, as named by the DOM.
const (
	BadInput Validity = 1 << iota
	CustomError
	PatternMismatch
	RangeOverflow
	RangeUnderflow
	StepMismatch
	TooLong
	TooShort
	TypeMismatch
	ValueMissing
)

var validityNames = [...]string{"badInput", "customError", "patternMismatch", "rangeOverflow", "rangeUnderflow", "stepMismatch", "tooLong", "tooShort", "typeMismatch", "valueMissing"}

// Names returns the DOM names of the flags in v.
func (v Validity) Names() []string {
	var out []string
	for i, n := range validityNames {
		if v&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// Field length limits applied by DecodeEvent. Longer strings are cut at a
// rune boundary; an event longer than MaxEventBytes is refused.
const (
	MaxEventBytes = 8 << 10
	maxPath       = 512
	maxTitle      = 200
	maxMsg        = 300
	maxFP         = 64
	maxSel        = 200
	maxName       = 100
	maxProps      = 20
	maxPropValue  = 200
	maxMethod     = 10
)

// Event is one behaviour event. The browser-side fields follow
// docs/protocol.md "Behaviour events"; Site and Visit are set by the server.
type Event struct {
	// Site is the site key, set by the server. Optional.
	Site string
	// Visit identifies the visit (for example site key + visitor ID); the
	// engine keeps state per Visit. Set by the server.
	Visit string
	// Time is when the event happened in the browser ("t", Unix ms).
	Time time.Time
	// Kind is the event kind ("k").
	Kind Kind

	// Path is the page path (page) or request path (request), without query.
	Path string
	// Title and Ref are the page title and previous path (page).
	Title, Ref string

	// Msg is the redacted error message (error, report).
	Msg string
	// FP is the error fingerprint (error). DecodeEvent derives one from
	// Msg and Src when the widget sends none.
	FP string
	// Src, Line and Col locate the error's top frame (error).
	Src       string
	Line, Col int

	// Method and Status describe a failed request; Status 0 is a network
	// error (request).
	Method string
	Status int
	// Dur is a duration in ms (request, longtask).
	Dur int

	// Form, Field and FType name the form, control and input type
	// (invalid; Form also on submit).
	Form, Field, FType string
	// Flags are the control's true ValidityState flags (invalid).
	Flags Validity
	// OK reports whether a submit went through (submit).
	OK bool

	// Sel is a short stable selector of the clicked element; X and Y are
	// the click position (click).
	Sel  string
	X, Y int
	// Dead reports that nothing changed after the click (click).
	Dead bool
	// Rage is the length of the rage chain the widget saw, 0 if none (click).
	Rage int

	// Visible is the tab's new visibility (visibility).
	Visible bool
	// Idle is true when the visitor went idle, false when input resumed (idle).
	Idle bool

	// Name and Props are the site's event name and properties (track).
	Name  string
	Props map[string]string
}

// wireEvent is the JSON shape of an event; pointers tell missing from zero.
type wireEvent struct {
	T       *json.Number      `json:"t"`
	K       string            `json:"k"`
	Path    string            `json:"path,omitempty"`
	Title   string            `json:"title,omitempty"`
	Ref     string            `json:"ref,omitempty"`
	Msg     *string           `json:"msg,omitempty"`
	FP      string            `json:"fp,omitempty"`
	Src     string            `json:"src,omitempty"`
	Line    int               `json:"line,omitempty"`
	Col     int               `json:"col,omitempty"`
	Method  string            `json:"method,omitempty"`
	Status  *int              `json:"status,omitempty"`
	Dur     *float64          `json:"dur,omitempty"`
	Form    string            `json:"form,omitempty"`
	Field   string            `json:"field,omitempty"`
	FType   string            `json:"ftype,omitempty"`
	Flags   []string          `json:"flags,omitempty"`
	OK      *bool             `json:"ok,omitempty"`
	Sel     string            `json:"sel,omitempty"`
	X       *float64          `json:"x,omitempty"`
	Y       *float64          `json:"y,omitempty"`
	Dead    bool              `json:"dead,omitempty"`
	Rage    int               `json:"rage,omitempty"`
	Visible *bool             `json:"visible,omitempty"`
	Idle    *bool             `json:"idle,omitempty"`
	Name    string            `json:"name,omitempty"`
	Props   map[string]string `json:"props,omitempty"`
}

// ErrEvent is wrapped by every error DecodeEvent returns.
var ErrEvent = errors.New("detect: bad event")

// maxUnixMs is 3000-01-01; later times are refused.
const maxUnixMs = 32503680000000

// DecodeEvent decodes one behaviour event object in the format of
// docs/protocol.md. It checks the fields each kind needs, cuts strings to
// their limits, strips query strings and fragments from paths, replaces ids
// in paths with ":id", and redacts digit runs and e-mail addresses from
// messages. Site and Visit are left empty for the caller. Errors wrap
// ErrEvent. It never panics.
func DecodeEvent(data []byte) (Event, error) {
	if len(data) > MaxEventBytes {
		return Event{}, fmt.Errorf("%w: %d bytes, limit %d", ErrEvent, len(data), MaxEventBytes)
	}
	// The widget's layout is read by hand; anything else by json.Unmarshal,
	// not a Decoder: it rejects trailing data too, and a Decoder's buffers
	// per event were the node's largest detection cost.
	// w stays on the stack (it is about 350 bytes an event); the fallback
	// decodes into a copy of its own, which encoding/json moves to the heap.
	var w wireEvent
	if !w.decodeFast(data) {
		slow := new(wireEvent)
		if err := json.Unmarshal(data, slow); err != nil {
			return Event{}, fmt.Errorf("%w: %w", ErrEvent, err)
		}
		w = *slow
	}
	if w.T == nil {
		return Event{}, fmt.Errorf("%w: missing \"t\"", ErrEvent)
	}
	ms, err := w.T.Int64()
	if err != nil {
		f, ferr := w.T.Float64()
		if ferr != nil {
			return Event{}, fmt.Errorf("%w: \"t\" %s is not a Unix time in ms", ErrEvent, w.T.String())
		}
		ms = int64(f)
	}
	if ms <= 0 || ms > maxUnixMs {
		return Event{}, fmt.Errorf("%w: \"t\" %d is out of range", ErrEvent, ms)
	}
	ev := Event{Time: time.UnixMilli(ms), Kind: ParseKind(w.K)}
	missing := func(field string) (Event, error) {
		return Event{}, fmt.Errorf("%w: %s event without %q", ErrEvent, w.K, field)
	}
	switch ev.Kind {
	case KindUnknown:
		if w.K == "" {
			return Event{}, fmt.Errorf("%w: missing \"k\"", ErrEvent)
		}
		return Event{}, fmt.Errorf("%w: unknown kind %q", ErrEvent, cut(w.K, 20))
	case KindPage:
		ev.Path, ev.Title, ev.Ref = CleanPath(w.Path), cut(w.Title, maxTitle), CleanPath(w.Ref)
		if ev.Path == "" {
			return missing("path")
		}
	case KindError:
		if w.Msg == nil && w.FP == "" {
			return missing("msg")
		}
		if w.Msg != nil {
			ev.Msg = cut(Redact(cut(*w.Msg, maxMsg)), maxMsg)
		}
		ev.Src, ev.Line, ev.Col = CleanPath(w.Src), clampInt(w.Line), clampInt(w.Col)
		ev.FP = cut(w.FP, maxFP)
		if ev.FP == "" {
			ev.FP = fmt.Sprintf("%08x", hashStrings(ev.Msg, ev.Src))
		}
	case KindRequest:
		if CleanPath(w.Path) == "" {
			return missing("path")
		}
		if w.Status == nil {
			return missing("status")
		}
		if *w.Status < 0 || *w.Status > 999 {
			return Event{}, fmt.Errorf("%w: request status %d is out of range", ErrEvent, *w.Status)
		}
		ev.Path, ev.Status = CleanPath(w.Path), *w.Status
		ev.Method = strings.ToUpper(cut(w.Method, maxMethod))
		if ev.Method == "" {
			ev.Method = "GET"
		}
		ev.Dur = dur(w.Dur)
	case KindInvalid:
		// Checked once cut: a name of invalid UTF-8 alone cuts to nothing.
		ev.Form, ev.Field, ev.FType = cut(w.Form, maxName), cut(w.Field, maxName), cut(w.FType, maxName)
		if ev.Form == "" && ev.Field == "" {
			return missing("field")
		}
		for _, f := range w.Flags {
			for i, n := range validityNames {
				if f == n {
					ev.Flags |= 1 << i
				}
			}
		}
	case KindSubmit:
		if w.OK == nil {
			return missing("ok")
		}
		ev.Form, ev.OK = cut(w.Form, maxName), *w.OK
	case KindClick:
		ev.Sel, ev.X, ev.Y, ev.Dead = cut(w.Sel, maxSel), coord(w.X), coord(w.Y), w.Dead
		ev.Rage = min(max(w.Rage, 0), 1000)
	case KindVisibility:
		if w.Visible == nil {
			return missing("visible")
		}
		ev.Visible = *w.Visible
	case KindIdle:
		if w.Idle == nil {
			return missing("idle")
		}
		ev.Idle = *w.Idle
	case KindTrack:
		if ev.Name = cut(w.Name, maxName); ev.Name == "" {
			return missing("name")
		}
		if len(w.Props) > 0 {
			ev.Props = make(map[string]string, min(len(w.Props), maxProps))
			for k, v := range w.Props {
				if len(ev.Props) == maxProps {
					break
				}
				ev.Props[cut(k, maxName)] = cut(v, maxPropValue)
			}
		}
	case KindReport:
		if w.Msg == nil {
			return missing("msg")
		}
		ev.Msg = cut(Redact(cut(*w.Msg, maxMsg)), maxMsg)
	case KindLongTask:
		if w.Dur == nil {
			return missing("dur")
		}
		ev.Dur = dur(w.Dur)
	}
	return ev, nil
}

// DecodeBatch decodes the events of an "events" frame. It keeps the events
// that decode and returns the errors of the others joined, each naming the
// event's index.
func DecodeBatch(raw []json.RawMessage) ([]Event, error) {
	out := make([]Event, 0, len(raw))
	var errs []error
	for i, r := range raw {
		ev, err := DecodeEvent(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("events[%d]: %w", i, err))
			continue
		}
		out = append(out, ev)
	}
	return out, errors.Join(errs...)
}

// MarshalJSON writes the event in the wire format DecodeEvent reads. Site
// and Visit are not part of it.
func (ev Event) MarshalJSON() ([]byte, error) { return ev.AppendJSON(make([]byte, 0, 160)) }

// AppendJSON appends the event as MarshalJSON writes it: the bytes
// encoding/json writes for the wire format's struct, the fields each kind
// has in the struct's order, without reflection (the struggle service's
// journey saves encode thousands of events a second).
func (ev Event) AppendJSON(b []byte) ([]byte, error) {
	if ev.Kind == KindUnknown || ev.Kind >= numKinds {
		return b, fmt.Errorf("detect: marshal event: unknown kind %d", ev.Kind)
	}
	b = append(b, `{"t":`...)
	b = strconv.AppendInt(b, ev.Time.UnixMilli(), 10)
	b = append(b, `,"k":`...)
	b = jsonwire.AppendString(b, kindNames[ev.Kind])
	switch ev.Kind {
	case KindPage:
		b = appendStr(b, `,"path":`, ev.Path)
		b = appendStr(b, `,"title":`, ev.Title)
		b = appendStr(b, `,"ref":`, ev.Ref)
	case KindError:
		b = append(b, `,"msg":`...)
		b = jsonwire.AppendString(b, ev.Msg)
		b = appendStr(b, `,"fp":`, ev.FP)
		b = appendStr(b, `,"src":`, ev.Src)
		b = appendInt(b, `,"line":`, ev.Line)
		b = appendInt(b, `,"col":`, ev.Col)
	case KindRequest:
		b = appendStr(b, `,"path":`, ev.Path)
		b = appendStr(b, `,"method":`, ev.Method)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(ev.Status), 10)
		b = appendNum(b, `,"dur":`, ev.Dur)
	case KindInvalid:
		b = appendStr(b, `,"form":`, ev.Form)
		b = appendStr(b, `,"field":`, ev.Field)
		b = appendStr(b, `,"ftype":`, ev.FType)
		sep := `,"flags":[`
		for i, n := range validityNames {
			if ev.Flags&(1<<i) != 0 {
				b = append(b, sep...)
				b = jsonwire.AppendString(b, n)
				sep = ","
			}
		}
		if sep == "," {
			b = append(b, ']')
		}
	case KindSubmit:
		b = appendStr(b, `,"form":`, ev.Form)
		b = append(b, `,"ok":`...)
		b = strconv.AppendBool(b, ev.OK)
	case KindClick:
		b = appendStr(b, `,"sel":`, ev.Sel)
		b = appendNum(b, `,"x":`, ev.X)
		b = appendNum(b, `,"y":`, ev.Y)
		if ev.Dead {
			b = append(b, `,"dead":true`...)
		}
		b = appendInt(b, `,"rage":`, ev.Rage)
	case KindVisibility:
		b = append(b, `,"visible":`...)
		b = strconv.AppendBool(b, ev.Visible)
	case KindIdle:
		b = append(b, `,"idle":`...)
		b = strconv.AppendBool(b, ev.Idle)
	case KindTrack:
		b = appendStr(b, `,"name":`, ev.Name)
		if len(ev.Props) > 0 {
			b = append(b, `,"props":{`...)
			for i, k := range slices.Sorted(maps.Keys(ev.Props)) {
				if i > 0 {
					b = append(b, ',')
				}
				b = jsonwire.AppendString(b, k)
				b = append(b, ':')
				b = jsonwire.AppendString(b, ev.Props[k])
			}
			b = append(b, '}')
		}
	case KindReport:
		b = append(b, `,"msg":`...)
		b = jsonwire.AppendString(b, ev.Msg)
	case KindLongTask:
		b = appendNum(b, `,"dur":`, ev.Dur)
	}
	return append(b, '}'), nil
}

// appendStr appends key and s, unless s is empty (omitempty).
func appendStr(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return jsonwire.AppendString(append(b, key...), s)
}

// appendInt appends key and n, unless n is 0 (omitempty).
func appendInt(b []byte, key string, n int) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), int64(n), 10)
}

// appendNum appends key and n as the wire's float64 field holds it:
// encoding/json writes an integral float64 of this size in 'f' format.
func appendNum(b []byte, key string, n int) []byte {
	return strconv.AppendFloat(append(b, key...), float64(n), 'f', -1, 64)
}

func dur(f *float64) int {
	if f == nil || *f != *f || *f < 0 {
		return 0
	}
	if *f > 1<<30 {
		return 1 << 30
	}
	return int(*f)
}

func coord(f *float64) int {
	if f == nil || *f != *f {
		return 0
	}
	return int(max(min(*f, 1<<20), -1<<20))
}

func clampInt(n int) int { return min(max(n, 0), 1<<30) }

// cut shortens s to at most n bytes at a rune boundary and drops invalid
// UTF-8 and control characters.
func cut(s string, n int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f || s[i] >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		if len(s) > n {
			return s[:n]
		}
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CleanPath strips the query string and fragment, cuts the path to 512
// bytes and replaces id-like segments (digits, UUIDs, long hex) with ":id",
// so /orders/123?x=1 becomes /orders/:id.
func CleanPath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	p = cut(p, maxPath)
	if !strings.ContainsAny(p, "0123456789") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if isID(s) {
			segs[i] = ":id"
		}
	}
	return strings.Join(segs, "/")
}

func isID(s string) bool {
	if s == "" {
		return false
	}
	digits, hex := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '-':
			hex++
		default:
			return false
		}
	}
	return hex == 0 || (len(s) >= 16 && digits > 0)
}

// Redact replaces e-mail addresses with "<email>" and runs of five or more
// digits with "<n>" in an error message, a second line of defence behind the
// widget's own redaction.
func Redact(s string) string {
	need := strings.IndexByte(s, '@') >= 0
	run := 0
	for i := 0; i < len(s) && !need; i++ {
		if s[i] >= '0' && s[i] <= '9' {
			run++
			need = run >= 5
		} else {
			run = 0
		}
	}
	if !need {
		return s
	}
	var b strings.Builder
	words := strings.SplitAfter(s, " ")
	for _, w := range words {
		core := strings.TrimRight(w, " ")
		if at := strings.IndexByte(core, '@'); at > 0 && at < len(core)-1 && strings.Contains(core[at:], ".") {
			b.WriteString("<email>")
			b.WriteString(w[len(core):])
			continue
		}
		run := 0
		for i := 0; i < len(w); i++ {
			c := w[i]
			if c >= '0' && c <= '9' {
				run++
				continue
			}
			flushDigits(&b, w[i-run:i], run)
			run = 0
			b.WriteByte(c)
		}
		flushDigits(&b, w[len(w)-run:], run)
	}
	return b.String()
}

func flushDigits(b *strings.Builder, digits string, run int) {
	if run >= 5 {
		b.WriteString("<n>")
	} else {
		b.WriteString(digits)
	}
}

// hashStrings is FNV-1a over the strings with a separator; it does not
// allocate.
func hashStrings(ss ...string) uint32 {
	h := uint32(2166136261)
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			h ^= uint32(s[i])
			h *= 16777619
		}
		h ^= 0xff
		h *= 16777619
	}
	return h
}

func hash1(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func hash2(a, b string) uint32 {
	h := hash1(a)
	h ^= 0xff
	h *= 16777619
	for i := 0; i < len(b); i++ {
		h ^= uint32(b[i])
		h *= 16777619
	}
	return h
}
