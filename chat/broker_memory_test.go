package chat_test

import (
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
