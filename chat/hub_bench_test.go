package chat

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	benchMessageFrame = []byte(`{"type":"message","client_id":"c-1f3a9","text":"Hi, my card keeps getting declined at checkout. Can you help?"}`)
	benchEventsFrame  = []byte(`{"type":"events","events":[` +
		`{"t":1764421200000,"k":"page","path":"/checkout","title":"Checkout","ref":"/cart"},` +
		`{"t":1764421200100,"k":"click","sel":"#pay","x":600,"y":480},` +
		`{"t":1764421200200,"k":"click","sel":"#pay","x":601,"y":480},` +
		`{"t":1764421200300,"k":"track","name":"view_item"},` +
		`{"t":1764421200400,"k":"error","msg":"Payment failed: your card was declined","fp":"e-card-declined","src":"/static/checkout.js","line":42,"col":7},` +
		`{"t":1764421200500,"k":"request","method":"POST","path":"/api/pay","status":402,"dur":180},` +
		`{"t":1764421200600,"k":"invalid","form":"pay","field":"cvc","ftype":"text","flags":["valueMissing"]},` +
		`{"t":1764421200700,"k":"submit","form":"pay","ok":false},` +
		`{"t":1764421200800,"k":"click","sel":"#pay","x":603,"y":481},` +
		`{"t":1764421200900,"k":"visibility","visible":true}]}`)
	benchMessage = Message{
		ConversationID: "9b2c6f0e-4d0a-4c55-9f1e-4f3e1c2a7b10", Seq: 42, ClientID: "c-1f3a9",
		Author: Author{Kind: AuthorVisitor, ID: "5f0c7a52-2b1e-4a8e-8f55-0d9c6b1e2a33", Name: "Ava"},
		Text:   "Hi, my card keeps getting declined at checkout. Can you help?",
		At:     time.Date(2026, 11, 29, 18, 0, 0, 123456789, time.UTC),
	}
)

// BenchmarkDecodeVisitorMessage is the hub's parse and validation of the
// most frequent visitor frame.
func BenchmarkDecodeVisitorMessage(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeVisitor(benchMessageFrame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeVisitorEvents is a batch of ten behaviour events.
func BenchmarkDecodeVisitorEvents(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeVisitor(benchEventsFrame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeAck is the ack every stored message gets.
func BenchmarkEncodeAck(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		encode(ackFrame{Type: TypeAck, ClientID: "c-1f3a9", ConversationID: benchMessage.ConversationID, Seq: 42, Ref: "LF-7K3Q"})
	}
}

// BenchmarkEncodeMessage is the message frame fanned out to a room.
func BenchmarkEncodeMessage(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		encode(messageFrame{Type: TypeMessage, Message: &benchMessage})
	}
}

// BenchmarkEventRoundTrip is a message event through the broker's wire
// form: encoded by the publisher, decoded by each node's room.
func BenchmarkEventRoundTrip(b *testing.B) {
	h := &Hub{}
	b.ReportAllocs()
	for b.Loop() {
		p := encode(&event{Kind: evMessage, Message: &benchMessage})
		if _, ok := h.decodeEvent(p); !ok {
			b.Fatal("decode failed")
		}
	}
}

// countingTransport is a socket that only counts what it is given.
type countingTransport struct {
	frames *atomic.Int64
	wg     *sync.WaitGroup
}

func (t countingTransport) write(frames [][]byte, _ time.Duration) error {
	t.frames.Add(int64(len(frames)))
	t.wg.Add(-len(frames))
	return nil
}

// tryWrite is never called: the benchmark's clients are agents, whose
// frames always go through the writer.
func (countingTransport) tryWrite([][]byte) (ok, owed bool) { return false, false }

func (countingTransport) close(StatusCode, string) {}

// fanoutStore is the part of a Store a room needs.
type fanoutStore struct {
	Store
}

func (fanoutStore) Conversation(_ context.Context, id string) (Conversation, error) {
	return Conversation{ID: id, Status: StatusActive}, nil
}

func (fanoutStore) Messages(context.Context, string, int64, int) ([]Message, error) { return nil, nil }

func (fanoutStore) Notes(context.Context, string) ([]Note, error) { return nil, nil }

// BenchmarkFanout publishes a message to one conversation with n sockets
// attached (a visitor's tabs and the agents watching) through the
// in-process broker, until every socket's writer has written it.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{2, 10, 100} {
		b.Run(fmt.Sprint(n, "sockets"), func(b *testing.B) {
			ctx := context.Background()
			h, err := NewHub(Config{Store: fanoutStore{}, Secret: []byte("bench-secret-0123456789"), SendQueue: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			var frames atomic.Int64
			var wg sync.WaitGroup
			for range n {
				c := newClient(h, countingTransport{&frames, &wg}, kindAgent, "127.0.0.1")
				if err := h.attach(ctx, c, "conv-1", false); err != nil {
					b.Fatal(err)
				}
			}
			m := benchMessage
			m.ConversationID = "conv-1"
			b.ReportAllocs()
			seq := int64(0)
			for b.Loop() {
				seq++
				m.Seq = seq
				wg.Add(n)
				h.publish(ctx, &event{Kind: evMessage, Message: &m}, convTopic("conv-1"))
			}
			wg.Wait()
			b.ReportMetric(float64(frames.Load())/b.Elapsed().Seconds(), "frames/s")
			_ = h.Shutdown(ctx)
		})
	}
}
