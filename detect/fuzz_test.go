package detect

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"
)

var eventSeeds = []string{
	`{"t":1767603600000,"k":"page","path":"/orders/123?x=1#top","title":"Order","ref":"/orders"}`,
	`{"t":1767603600000,"k":"error","msg":"Failed for bob@example.com 1234567","fp":"ab12","src":"/app.js","line":3,"col":9}`,
	`{"t":1767603600000,"k":"request","method":"post","path":"/api/pay","status":402,"dur":312.5}`,
	`{"t":1767603600000,"k":"invalid","form":"address","field":"zip","ftype":"text","flags":["valueMissing"]}`,
	`{"t":1767603600000,"k":"submit","form":"address","ok":false}`,
	`{"t":1767603600000,"k":"click","sel":"button#pay","x":10,"y":20,"dead":true,"rage":4}`,
	`{"t":1767603600000,"k":"visibility","visible":false}`,
	`{"t":1767603600000,"k":"idle","idle":true}`,
	`{"t":1767603600000,"k":"track","name":"app_crash","props":{"a":"b"}}`,
	`{"t":1767603600000,"k":"report","msg":"Card declined"}`,
	`{"t":1767603600000,"k":"longtask","dur":2500}`,
	`{"t":1e300,"k":"click","x":-1e300,"y":"NaN"}`,
	`{"t":1,"k":"page","path":"\u0000/\ud800"}`,
}

// FuzzDecodeEvent checks that DecodeEvent never panics, that what it
// accepts survives MarshalJSON, that input split in two is handled, and
// that the engine takes any decoded event.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range eventSeeds {
		f.Add([]byte(s))
	}
	e := NewEngine(Config{MaxVisits: 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, part := range [][]byte{data, data[:len(data)/2], data[len(data)/2:]} {
			ev, err := DecodeEvent(part)
			if err != nil {
				continue
			}
			b, err := ev.MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON(%+v): %v", ev, err)
			}
			if want, _ := wireJSON(ev); string(b) != string(want) {
				t.Fatalf("MarshalJSON(%+v) =\n%s\nencoding/json writes\n%s", ev, b, want)
			}
			again, err := DecodeEvent(b)
			if err != nil {
				t.Fatalf("DecodeEvent(MarshalJSON(DecodeEvent(%q))) = %v", part, err)
			}
			if !reflect.DeepEqual(again, ev) {
				t.Fatalf("round trip of %q:\n%+v\nwant\n%+v", part, again, ev)
			}
			ev.Visit = string(rune('a' + len(part)%4))
			for _, f := range e.Observe(ev) {
				_ = f.Sentence()
			}
			e.Expire(ev.Time.Add(-time.Hour))
		}
		var raws []json.RawMessage
		if json.Unmarshal(data, &raws) == nil {
			_, _ = DecodeBatch(raws)
		}
	})
}

// wireJSON is what encoding/json makes of the event's wire struct: the
// bytes AppendJSON must write.
func wireJSON(ev Event) ([]byte, error) {
	t := json.Number(strconv.FormatInt(ev.Time.UnixMilli(), 10))
	w := wireEvent{T: &t, K: ev.Kind.String()}
	switch ev.Kind {
	case KindPage:
		w.Path, w.Title, w.Ref = ev.Path, ev.Title, ev.Ref
	case KindError:
		w.Msg, w.FP, w.Src, w.Line, w.Col = &ev.Msg, ev.FP, ev.Src, ev.Line, ev.Col
	case KindRequest:
		d := float64(ev.Dur)
		w.Method, w.Path, w.Status, w.Dur = ev.Method, ev.Path, &ev.Status, &d
	case KindInvalid:
		w.Form, w.Field, w.FType, w.Flags = ev.Form, ev.Field, ev.FType, ev.Flags.Names()
	case KindSubmit:
		w.Form, w.OK = ev.Form, &ev.OK
	case KindClick:
		x, y := float64(ev.X), float64(ev.Y)
		w.Sel, w.X, w.Y, w.Dead, w.Rage = ev.Sel, &x, &y, ev.Dead, ev.Rage
	case KindVisibility:
		w.Visible = &ev.Visible
	case KindIdle:
		w.Idle = &ev.Idle
	case KindTrack:
		w.Name, w.Props = ev.Name, ev.Props
	case KindReport:
		w.Msg = &ev.Msg
	case KindLongTask:
		d := float64(ev.Dur)
		w.Dur = &d
	default:
		return nil, fmt.Errorf("unknown kind %d", ev.Kind)
	}
	return json.Marshal(w)
}

// AppendJSON writes what encoding/json writes for the wire struct, for
// events no decoder would make too: every kind with empty and odd
// strings, extreme numbers, several flags and properties.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	texts := []string{"", "plain", `q " \ <b>&</b>`, "tab\t\x00\x1f", "bad \xff", "\u2028", "émoji 🙂"}
	nums := []int{0, 1, -1, 312, 1 << 30, -1 << 20, 1<<62 + 1, math.MinInt64}
	at := time.UnixMilli(1767603600123)
	for i, s := range texts {
		n := nums[i%len(nums)]
		m := nums[(i+3)%len(nums)]
		for k := KindPage; k < numKinds; k++ {
			ev := Event{Kind: k, Time: at.Add(time.Duration(n)), Path: s, Title: s, Ref: s, Msg: s, FP: s, Src: s,
				Line: n, Col: m, Method: s, Status: n, Dur: m, Form: s, Field: s, FType: s, Flags: Validity(n),
				OK: i%2 == 0, Sel: s, X: n, Y: m, Dead: i%2 == 1, Rage: m, Visible: i%2 == 0, Idle: i%2 == 1,
				Name: s, Props: map[string]string{s: s, "z" + s: "", "a": s}}
			want, err := wireJSON(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ev.AppendJSON([]byte("prefix"))
			if err != nil || string(got) != "prefix"+string(want) {
				t.Errorf("AppendJSON(%+v) =\n%s, %v\nencoding/json writes\n%s", ev, got, err, want)
			}
		}
	}
	for _, k := range []Kind{KindUnknown, numKinds} {
		if b, err := (Event{Kind: k}).AppendJSON([]byte("x")); err == nil || string(b) != "x" {
			t.Errorf("AppendJSON of kind %d = %q, %v; want x and an error", k, b, err)
		}
	}
}

// FuzzParseRuleset checks that ParseRuleset never panics, that input split
// in two is handled, and that an accepted ruleset marshals to JSON that
// parses again and runs in an engine.
func FuzzParseRuleset(f *testing.F) {
	f.Add(DefaultRulesetJSON())
	f.Add([]byte(`{"version":1,"rules":[{"id":"a","signal":"report","window":"2h","match":{"status":"4xx,500-599"}}],"pages":[{"page":"/x","weights":{"a":3}}]}`))
	f.Add([]byte(`{"version":1,"half_life":"1s","rules":[{"id":"b","signal":"rage_click","dead_bonus":0,"alone":false,"say":"{page} {times}"}]}`))
	f.Add([]byte(`{"version":1,"rules":[null,{},{"id":5}],"pages":[null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, part := range [][]byte{data, data[:len(data)/2], data[len(data)/2:]} {
			rs, err := ParseRuleset(part)
			if err != nil {
				continue
			}
			b, err := json.Marshal(rs)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if _, err := ParseRuleset(b); err != nil {
				t.Fatalf("ParseRuleset(Marshal(ParseRuleset(%q))) = %v", part, err)
			}
			e, err := NewEngineRuleset(Config{}, rs)
			if err != nil {
				t.Fatalf("NewEngineRuleset: %v", err)
			}
			for _, s := range eventSeeds[:11] {
				ev, _ := DecodeEvent([]byte(s))
				ev.Visit = "v"
				e.Observe(ev)
			}
		}
	})
}

// wireSeeds are inputs at the edges of decodeFast's subset.
var wireSeeds = []string{
	`{}`, ` { "t" : 1 , "k" : "page" } `, `{"t":1,"T":2}`, `{"k":"a","k":"b"}`, `{"t":-0,"line":-0}`,
	`{"line":1.5}`, `{"line":1e2}`, `{"line":99999999999999999999}`, `{"dur":1e400}`, `{"t":01}`,
	`{"flags":[]}`, `{"flags":null}`, `{"flags":["a","b"],"flags":["c"]}`, `{"msg":null}`, `{"msg":"a\"b"}`,
	`{"title":"Caf\u00e9"}`, "{\"title\":\"Café\"}", `{"ok":true,"visible":false,"idle":true,"dead":false}`,
	`{"x":-1.25e-3,"y":0}`, `{"t":1}x`, `{"t":1,}`, `{"t":"1"}`, `{"props":{}}`, `{"unknown":1}`,
	"{\"title\":\"\xff\"}", "{\"msg\":\"caf\xc3\"}", "{\"path\":\"\u2028\"}", "{\"k\":\"pagé\"}",
}

// FuzzDecodeFast holds the hand decoder to encoding/json: whatever it
// accepts, json.Unmarshal accepts and decodes to the same wireEvent.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range append(eventSeeds, wireSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast wireEvent
		if !fast.decodeFast(data) {
			return
		}
		var slow wireEvent
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("decodeFast accepted %q, which json.Unmarshal refuses: %v", data, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\ndecodeFast   %+v\njson.Unmarshal %+v", data, fast, slow)
		}
	})
}

// The events the widget sends take the fast path; the rest fall back.
func TestDecodeFastCoversTheWidgetsEvents(t *testing.T) {
	// Pages and errors in most languages are not ASCII.
	text := []string{"{\"t\":1,\"k\":\"page\",\"path\":\"/caf\u00e9\",\"title\":\"Café — Boutique\"}",
		"{\"t\":2,\"k\":\"error\",\"msg\":\"Carte refusée\",\"src\":\"/paiement\"}"}
	for _, s := range append(eventSeeds[:8:8], text...) {
		var w wireEvent
		if !w.decodeFast([]byte(s)) {
			t.Errorf("decodeFast(%s) fell back", s)
		}
	}
	for _, s := range []string{eventSeeds[8], eventSeeds[11], `{"k":"a\u0062"}`, `{"t":1,"T":2}`, `{"msg":null}`, `{"line":1.5}`, `{"t":1}x`} {
		var w wireEvent
		if w.decodeFast([]byte(s)) {
			t.Errorf("decodeFast(%s) took it", s)
		}
	}
}
