package chat_test

import (
	"context"
	"errors"
	"testing"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/chat/chattest"
	"github.com/lifelinehq/lifeline/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func TestMemoryBroker(t *testing.T) {
	chattest.TestBroker(t, func(t *testing.T) (chat.Broker, chat.Broker) {
		b := chat.NewMemoryBroker()
		return b, b
	})
}

// Values reach SubscribeValue's handlers as they are, and everyone else as
// the bytes of one encode, which is skipped when nobody needs bytes. Bytes
// from Publish reach SubscribeValue's handlers without a value.
func TestMemoryBrokerValues(t *testing.T) {
	ctx := context.Background()
	b := chat.NewMemoryBroker()
	defer b.Close()
	type got struct {
		payload string
		v       any
	}
	var values, bytes []got
	cancelV, err := b.SubscribeValue(ctx, "t", func(p []byte, v any) { values = append(values, got{string(p), v}) })
	if err != nil {
		t.Fatal(err)
	}
	encodes := 0
	encode := func() []byte { encodes++; return []byte("v1") }
	val := &struct{ N int }{1}

	if err := b.PublishValue(ctx, "t", val, encode); err != nil {
		t.Fatal(err)
	}
	if encodes != 0 || len(values) != 1 || values[0].v != val || values[0].payload != "" {
		t.Fatalf("value subscriber alone: got %+v with %d encodes, want the value itself and no encode", values, encodes)
	}

	cancelB, _ := b.Subscribe(ctx, "t", func(p []byte) { bytes = append(bytes, got{string(p), nil}) })
	b.Subscribe(ctx, "t", func(p []byte) { bytes = append(bytes, got{string(p), nil}) })
	values = nil
	if err := b.PublishValue(ctx, "t", val, encode); err != nil {
		t.Fatal(err)
	}
	if encodes != 1 || len(bytes) != 2 || bytes[0].payload != "v1" || bytes[1].payload != "v1" || len(values) != 1 || values[0].v != val {
		t.Fatalf("mixed subscribers: values %+v, bytes %+v, %d encodes; want the value, the bytes twice, one encode", values, bytes, encodes)
	}

	values, bytes = nil, nil
	if err := b.Publish(ctx, "t", []byte("raw")); err != nil {
		t.Fatal(err)
	}
	if len(values) != 1 || values[0].payload != "raw" || values[0].v != nil || len(bytes) != 2 {
		t.Fatalf("Publish: values %+v, bytes %+v; want the payload and no value", values, bytes)
	}

	cancelV()
	cancelB()
	values, bytes = nil, nil
	b.PublishValue(ctx, "t", val, encode)
	if len(values) != 0 || len(bytes) != 1 {
		t.Fatalf("after cancelling two of three: values %+v, bytes %+v", values, bytes)
	}
	b.Close()
	if err := b.PublishValue(ctx, "t", val, encode); !errors.Is(err, chat.ErrClosed) {
		t.Fatalf("PublishValue after Close = %v, want ErrClosed", err)
	}
	if _, err := b.SubscribeValue(ctx, "t", func([]byte, any) {}); !errors.Is(err, chat.ErrClosed) {
		t.Fatalf("SubscribeValue after Close = %v, want ErrClosed", err)
	}
}
