package bolt

import (
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

func TestMessageCodec(t *testing.T) {
	tests := []chat.Message{
		{ClientID: "c1", Author: chat.Author{Kind: chat.AuthorVisitor, ID: "v1"}, Text: "Hej 💳", At: time.Unix(1_700_000_000, 123456789)},
		{ClientID: "c2", Author: chat.Author{Kind: chat.AuthorAgent, ID: "a", Name: "Ava"}, Text: "", At: time.Unix(-5, 1)},
		{ClientID: "x", At: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, m := range tests {
		m.ConversationID, m.Seq = "conv", 7
		got, err := decodeMessage("conv", 7, encodeMessage(m))
		if err != nil {
			t.Fatalf("decodeMessage(encodeMessage(%+v)) = %v", m, err)
		}
		if !got.At.Equal(m.At) {
			t.Errorf("At = %v, want %v", got.At, m.At)
		}
		got.At, m.At = time.Time{}, time.Time{}
		if got != m {
			t.Errorf("decodeMessage(encodeMessage(m)) = %+v, want %+v", got, m)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeMessage(chat.Message{ClientID: "c1", Author: chat.Author{Kind: chat.AuthorVisitor, ID: "v"}, Text: "hi", At: time.Unix(1, 2)}))
	f.Add([]byte{msgVersion})
	f.Add([]byte{msgVersion, 2, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage("c", 1, b)
		if err != nil {
			return
		}
		// What decodes re-encodes to a record that decodes the same.
		again, err := decodeMessage("c", 1, encodeMessage(m))
		if err != nil || again != m {
			t.Fatalf("round trip of %+v = %+v, %v", m, again, err)
		}
	})
}
