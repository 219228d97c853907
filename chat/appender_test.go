package chat

import (
	"encoding/json"
	"testing"
	"time"
)

// The hand-made appenders give exactly the bytes of encoding/json.
func TestAppendersMatchEncodingJSON(t *testing.T) {
	t.Parallel()
	texts := []string{
		"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\r\x00\x01\x1f\x7f",
		"bad utf8 \xff\xfe end", "line sep \u2028 para \u2029", "emoji 🙂 and ünïcödé", "\xed\xa0\x80 surrogate half",
	}
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -7*3600)}
	for i, text := range texts {
		for j, loc := range zones {
			m := &Message{
				ConversationID: "conv-" + text, Seq: int64(i*1000 + j), ClientID: text,
				Author: Author{Kind: AuthorVisitor, ID: text, Name: text},
				Text:   text, At: time.Date(2026, 11, 29, 18, 0, i, j*123456789, loc),
			}
			if i%2 == 1 {
				m.Author = Author{Kind: AuthorAgent}
			}
			for _, v := range []any{
				messageFrame{Type: TypeMessage, Message: m},
				&event{Kind: evMessage, Message: m},
				ackFrame{Type: TypeAck, ClientID: text, ConversationID: m.ConversationID, Seq: m.Seq, Ref: text},
				ackFrame{Type: TypeAck, ID: "id-" + text, ClientID: text, ConversationID: m.ConversationID},
			} {
				want, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if got := encode(v); string(got) != string(want) {
					t.Errorf("encode(%#v) =\n%s\nwant\n%s", v, got, want)
				}
			}
		}
	}
	// Events other than a bare message go through encoding/json.
	ev := &event{Kind: evMessage, Message: &Message{Text: "x"}, AgentName: "Ann"}
	if want, _ := json.Marshal(ev); string(encode(ev)) != string(want) {
		t.Errorf("encode(event with agent name) = %s, want %s", encode(ev), want)
	}
}

// A message event parsed by hand equals what encoding/json decodes, for
// every string the encoder may write; other events still decode.
func TestMessageEventDecode(t *testing.T) {
	t.Parallel()
	texts := []string{"", "plain", `quote " and \ backslash`, "<b>&</b>", "tab\tnew\nline\x00", "bad \xff utf8", "\u2028", "emoji 🙂"}
	for i, text := range texts {
		for _, a := range []Author{{Kind: AuthorVisitor, ID: text, Name: text}, {Kind: AuthorAgent}, {Kind: AuthorSystem, Name: text}} {
			m := &Message{ConversationID: "c-" + text, Seq: int64(i) - 1, ClientID: text, Author: a, Text: text,
				At: time.Date(2026, 11, 29, 18, 0, i, i*1000, time.FixedZone("z", 3600*i))}
			payload := encode(&event{Kind: evMessage, Message: m})
			var got event
			if err := json.Unmarshal(payload, &got); err != nil {
				t.Fatalf("decode %s: %v", payload, err)
			}
			type plain event
			var want plain
			if err := json.Unmarshal(payload, &want); err != nil {
				t.Fatal(err)
			}
			if got.Kind != want.Kind || got.Message == nil || *got.Message != *want.Message || !got.Message.At.Equal(m.At) {
				t.Errorf("decode %s = %+v, want %+v", payload, got.Message, want.Message)
			}
		}
	}
	for _, payload := range []string{
		`{"k":"typing","author":{"kind":"agent","id":"a"},"typing":true}`,
		`{"message":{"seq":3},"k":"message"}`,
		`{"k":"message","message":{"conversation_id":"c","seq":1,"client_id":"x","author":{"kind":"visitor"},"text":"hi","at":"2026-11-29T18:00:00Z"},"agent_name":"Ann"}`,
	} {
		var got event
		if err := json.Unmarshal([]byte(payload), &got); err != nil {
			t.Fatalf("decode %s: %v", payload, err)
		}
		type plain event
		var want plain
		_ = json.Unmarshal([]byte(payload), &want)
		if got.Kind != want.Kind || got.AgentName != want.AgentName || (got.Message == nil) != (want.Message == nil) {
			t.Errorf("decode %s = %+v, want %+v", payload, got, want)
		}
	}
	if err := json.Unmarshal([]byte(`{"k":`), new(event)); err == nil {
		t.Error("decode of a cut event succeeded")
	}
}
