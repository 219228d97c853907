package detect

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeEvent(t *testing.T) {
	at := time.UnixMilli(1767603600000)
	tests := []struct {
		in   string
		want Event
	}{
		{`{"t":1767603600000,"k":"page","path":"/orders/123?x=1#top","title":"Order","ref":"/orders"}`, Event{Kind: KindPage, Path: "/orders/:id", Title: "Order", Ref: "/orders"}},
		{`{"t":1767603600000,"k":"error","msg":"Failed for bob@example.com","fp":"ab12","src":"/app.js","line":3,"col":9}`, Event{Kind: KindError, Msg: "Failed for <email>", FP: "ab12", Src: "/app.js", Line: 3, Col: 9}},
		{`{"t":1767603600000,"k":"request","method":"post","path":"/api/pay","status":402,"dur":312.5}`, Event{Kind: KindRequest, Method: "POST", Path: "/api/pay", Status: 402, Dur: 312}},
		{`{"t":1767603600000,"k":"invalid","form":"address","field":"zip","ftype":"text","flags":["valueMissing","patternMismatch","bogus"]}`, Event{Kind: KindInvalid, Form: "address", Field: "zip", FType: "text", Flags: ValueMissing | PatternMismatch}},
		{`{"t":1767603600000,"k":"submit","form":"address","ok":false}`, Event{Kind: KindSubmit, Form: "address"}},
		{`{"t":1767603600000,"k":"click","sel":"button#pay","x":10,"y":20.7,"dead":true,"rage":4}`, Event{Kind: KindClick, Sel: "button#pay", X: 10, Y: 20, Dead: true, Rage: 4}},
		{`{"t":1767603600000,"k":"visibility","visible":false}`, Event{Kind: KindVisibility}},
		{`{"t":1767603600000,"k":"idle","idle":true}`, Event{Kind: KindIdle, Idle: true}},
		{`{"t":1767603600000,"k":"track","name":"search_empty","props":{"q_len":"3"}}`, Event{Kind: KindTrack, Name: "search_empty", Props: map[string]string{"q_len": "3"}}},
		{`{"t":1767603600000,"k":"report","msg":"Card declined 4111111111111111"}`, Event{Kind: KindReport, Msg: "Card declined <n>"}},
		{`{"t":1767603600000,"k":"longtask","dur":2500}`, Event{Kind: KindLongTask, Dur: 2500}},
	}
	for _, tt := range tests {
		got, err := DecodeEvent([]byte(tt.in))
		if err != nil {
			t.Errorf("DecodeEvent(%s): %v", tt.in, err)
			continue
		}
		tt.want.Time = at
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DecodeEvent(%s) =\n%+v, want\n%+v", tt.in, got, tt.want)
		}
		// Marshal and decode again: same event.
		b, err := got.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := DecodeEvent(b)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %s = %+v, %v", b, again, err)
		}
	}
}

func TestDecodeEventErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "unexpected end"},
		{`[]`, "cannot unmarshal"},
		{`{"k":"page","path":"/"}`, `missing "t"`},
		{`{"t":0,"k":"page","path":"/"}`, "out of range"},
		{`{"t":"soon","k":"page","path":"/"}`, "invalid number"},
		{`{"t":1,"path":"/"}`, `missing "k"`},
		{`{"t":1,"k":"teleport"}`, `unknown kind "teleport"`},
		{`{"t":1,"k":"page"}`, `page event without "path"`},
		{`{"t":1,"k":"request","path":"/a"}`, `without "status"`},
		{`{"t":1,"k":"request","path":"/a","status":1000}`, "out of range"},
		{`{"t":1,"k":"submit","form":"a"}`, `without "ok"`},
		{`{"t":1,"k":"track"}`, `without "name"`},
		{"{\"t\":1,\"k\":\"track\",\"name\":\"\xff\"}", `without "name"`},    // nothing left once cut
		{"{\"t\":1,\"k\":\"invalid\",\"form\":\"\xe2\"}", `without "field"`}, // found by FuzzDecodeEvent
		{`{"t":1,"k":"page","path":"/"} {}`, "after top-level value"},
		{`{"t":1,"k":"page","path":"` + strings.Repeat("a", MaxEventBytes) + `"}`, "limit"},
	}
	for _, tt := range tests {
		_, err := DecodeEvent([]byte(tt.in))
		if err == nil || !errors.Is(err, ErrEvent) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeEvent(%.60s) error = %v, want ErrEvent containing %q", tt.in, err, tt.want)
		}
	}
}

func TestDecodeEventLimits(t *testing.T) {
	long := strings.Repeat("é", 400)
	ev, err := DecodeEvent([]byte(`{"t":1,"k":"error","msg":"` + long + `","fp":"` + long + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Msg) > maxMsg || len(ev.FP) > maxFP || !strings.HasPrefix(long, ev.Msg) {
		t.Errorf("limits: msg %d bytes, fp %d bytes", len(ev.Msg), len(ev.FP))
	}
}

func TestDecodeBatch(t *testing.T) {
	raw := []json.RawMessage{
		json.RawMessage(`{"t":1,"k":"page","path":"/"}`),
		json.RawMessage(`{"t":1,"k":"nope"}`),
		json.RawMessage(`{"t":2,"k":"click","sel":"a"}`),
	}
	evs, err := DecodeBatch(raw)
	if len(evs) != 2 || err == nil || !strings.Contains(err.Error(), "events[1]") {
		t.Errorf("DecodeBatch = %d events, %v; want 2 and an error naming events[1]", len(evs), err)
	}
}

func TestCleanPathAndRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/orders/123", "/orders/:id"},
		{"/u/550e8400-e29b-41d4-a716-446655440000/edit", "/u/:id/edit"},
		{"/v2/items", "/v2/items"},
		{"/cafe", "/cafe"},
		{"/a?b=1", "/a"},
	} {
		if got := CleanPath(tt.in); got != tt.want {
			t.Errorf("CleanPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"no secrets", "no secrets"},
		{"order 1234 ok", "order 1234 ok"},
		{"card 4111111111111111 declined", "card <n> declined"},
		{"mail a.b@c.io now", "mail <email> now"},
	} {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
