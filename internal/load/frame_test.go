package load

import (
	"encoding/json"
	"testing"
)

// referenceFrame is decodeFrame as it was, through encoding/json alone.
func referenceFrame(b []byte) (frame, bool) {
	var f frame
	err := json.Unmarshal(b, &f)
	return f, err == nil || f.Type != ""
}

var frameSeeds = []string{
	`{"type":"ack","client_id":"n1-0-17","conversation_id":"c_9","seq":4,"ref":"LL-7Q2"}`,
	`{"type":"message","conversation_id":"c_9","message":{"conversation_id":"c_9","seq":4,"client_id":"n1-0-17","author":{"kind":"visitor","id":"v_1","name":""},"text":"t=1764470000000000000 hello","at":"2026-11-30T03:00:00Z","attachments":[]}}`,
	`{"type":"conversation","conversation":{"id":"c_9","ref":"LL-7Q2","status":"active","agent_id":"a_2","agent":{"name":"Ana"},"tags":["billing"],"score":0.75,"urgent":true,"note":null}}`,
	`{"type":"error","code":"rate_limited","message":"slow down: 20 messages/s at most"}`,
	`{"type":"offer","offer":{"id":"o_1","reason":"card_declined","text":"Need a hand?"}}`,
	` { "type" : "message" , "message" : { "text" : "caf\u00e9 \"quoted\"", "client_id":"x" } } `,
	`{"type":"message","message":null,"conversation":null}`,
	`{"Type":"ack","CLIENT_ID":"x"}`,
	`{"type":"ack","client_id":7}`,
	`{"type":"ack","type":"message","message":{"text":"a"},"message":{"client_id":"b"}}`,
	`{"type":"ack"`,
	`[1,2]`,
	`{}`,
}

func TestDecodeFrameReadsServerFrames(t *testing.T) {
	var f frame
	if err := decodeFrame([]byte(frameSeeds[1]), &f); err != nil {
		t.Fatal(err)
	}
	if f.Type != "message" || f.Message.ClientID != "n1-0-17" || f.Message.Author.Kind != "visitor" ||
		f.Message.Text != "t=1764470000000000000 hello" {
		t.Fatalf("message frame decoded as %+v", f)
	}
	if err := decodeFrame([]byte(frameSeeds[2]), &f); err != nil {
		t.Fatal(err)
	}
	if f.Type != "conversation" || f.Conversation.ID != "c_9" || f.Conversation.AgentID != "a_2" || f.Conversation.Status != "active" {
		t.Fatalf("conversation frame decoded as %+v", f)
	}
	if err := decodeFrame([]byte(frameSeeds[3]), &f); err != nil || f.Type != "error" || f.Code != "rate_limited" {
		t.Fatalf("error frame decoded as %+v, %v", f, err)
	}
	if err := decodeFrame([]byte(`{"type":`), &f); err == nil {
		t.Fatal("a truncated frame decoded without error")
	}
}

// FuzzDecodeFrame holds the walk to encoding/json: on any well-formed
// JSON both give the same frame, and the same verdict.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got frame
		err := decodeFrame(b, &got)
		if !json.Valid(b) {
			return
		}
		want, ok := referenceFrame(b)
		if (err == nil) != ok || got != want {
			t.Fatalf("decodeFrame(%q) = %+v, %v; encoding/json gives %+v, ok %v", b, got, err, want, ok)
		}
	})
}

// BenchmarkDecodeFrame compares the walk with encoding/json on the frame
// the generator reads most (a visitor's message at its agent).
func BenchmarkDecodeFrame(b *testing.B) {
	msg := []byte(frameSeeds[1])
	b.Run("walk", func(b *testing.B) {
		b.ReportAllocs()
		var f frame
		for b.Loop() {
			if err := decodeFrame(msg, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := referenceFrame(msg); !ok {
				b.Fatal("not decoded")
			}
		}
	})
}
