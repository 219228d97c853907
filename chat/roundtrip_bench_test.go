package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// benchNode is a hub on the durable bolt store (fsync on every commit)
// behind a loopback HTTP server, with one agent online.
type benchNode struct {
	hub   *chat.Hub
	store *bolt.Store
	srv   *httptest.Server
	agent *websocket.Conn
	// delivered[client id] is closed when the agent receives the message.
	mu        sync.Mutex
	waiters   map[string]chan struct{}
	delivered atomic.Int64
}

func newBenchNode(b *testing.B) *benchNode {
	b.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	site, err := chat.NewSite("bench", "Bench", []string{"127.0.0.1:*"})
	if err != nil {
		b.Fatal(err)
	}
	agent := chat.Agent{ID: "agent-1", Email: "a@bench.test", Name: "Agent", Role: chat.RoleAgent, Capacity: 100, CreatedAt: time.Now()}
	if err := st.PutSite(ctx, site); err != nil {
		b.Fatal(err)
	}
	if err := st.CreateAgent(ctx, agent); err != nil {
		b.Fatal(err)
	}
	// The frame rate limit is for people; a benchmark sends as fast as it can.
	hub, err := chat.NewHub(chat.Config{Store: st, Secret: []byte("bench-secret-0123456789"), FrameRate: 1e9, FrameBurst: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	if err := hub.Start(ctx); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v", func(w http.ResponseWriter, r *http.Request) {
		c, err := chat.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err == nil {
			hub.ServeVisitor(context.WithoutCancel(r.Context()), c, site, "127.0.0.1")
		}
	})
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) {
		c, err := chat.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err == nil {
			hub.ServeAgent(context.WithoutCancel(r.Context()), c, agent, "127.0.0.1")
		}
	})
	n := &benchNode{hub: hub, store: st, srv: httptest.NewServer(mux), waiters: make(map[string]chan struct{})}
	n.agent = n.dial(b, "/a")
	n.send(b, n.agent, `{"type":"hello"}`)
	n.until(b, n.agent, "welcome")
	n.send(b, n.agent, `{"type":"presence","status":"online","capacity":100}`)
	go n.readAgent()
	b.Cleanup(func() {
		n.agent.CloseNow()
		n.srv.Close()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(sctx)
		_ = st.Close()
	})
	return n
}

func (n *benchNode) dial(b *testing.B, path string) *websocket.Conn {
	b.Helper()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(n.srv.URL, "http")+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func (n *benchNode) send(b *testing.B, c *websocket.Conn, frame string) {
	if err := c.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
		b.Error(err)
	}
}

type benchFrame struct {
	Type     string `json:"type"`
	Code     string `json:"code"`
	ClientID string `json:"client_id"`
	Message  struct {
		ClientID string `json:"client_id"`
	} `json:"message"`
}

// until reads frames from c until one of type typ arrives; it is safe
// to call from RunParallel's goroutines.
func until(c *websocket.Conn, typ string) (benchFrame, error) {
	for {
		_, data, err := c.Read(context.Background())
		if err != nil {
			return benchFrame{}, err
		}
		var f benchFrame
		_ = json.Unmarshal(data, &f)
		if f.Type == typ {
			return f, nil
		}
		if f.Type == "error" {
			return f, fmt.Errorf("error frame while waiting for %s: %s", typ, data)
		}
	}
}

func (n *benchNode) until(b *testing.B, c *websocket.Conn, typ string) benchFrame {
	b.Helper()
	f, err := until(c, typ)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// readAgent wakes whoever waits for each message the agent receives.
func (n *benchNode) readAgent() {
	for {
		_, data, err := n.agent.Read(context.Background())
		if err != nil {
			return
		}
		var f benchFrame
		if json.Unmarshal(data, &f) != nil || f.Type != "message" {
			continue
		}
		n.delivered.Add(1)
		n.mu.Lock()
		ch := n.waiters[f.Message.ClientID]
		delete(n.waiters, f.Message.ClientID)
		n.mu.Unlock()
		if ch != nil {
			close(ch)
		}
	}
}

func (n *benchNode) expect(id string) chan struct{} {
	ch := make(chan struct{})
	n.mu.Lock()
	n.waiters[id] = ch
	n.mu.Unlock()
	return ch
}

// visitor opens a visitor whose conversation the agent already holds.
func (n *benchNode) visitor(b *testing.B, name string) *websocket.Conn {
	v := n.dial(b, "/v")
	n.send(b, v, `{"type":"hello"}`)
	n.until(b, v, "welcome")
	id := name + "-open"
	done := n.expect(id)
	n.send(b, v, `{"type":"message","client_id":"`+id+`","text":"hello"}`)
	n.until(b, v, "ack")
	select {
	case <-done: // assigned and delivered
	case <-time.After(30 * time.Second):
		b.Fatal("the agent never got the opening message")
	}
	return v
}

// BenchmarkRoundTrip is one visitor message through the hub with the
// durable store: the visitor sends, the node stores it (fsync), acks, and
// the agent receives it. One at a time, so ns/op is the round trip.
func BenchmarkRoundTrip(b *testing.B) {
	n := newBenchNode(b)
	v := n.visitor(b, "v0")
	defer v.CloseNow()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := "m" + strconv.Itoa(i)
		done := n.expect(id)
		n.send(b, v, `{"type":"message","client_id":"`+id+`","text":"Hi, my card keeps getting declined at checkout."}`)
		n.until(b, v, "ack")
		<-done
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRoundTripParallel is many visitors in their own conversations
// sending at once, each waiting for its ack, with the agent receiving every
// message: group commit shares each fsync among them.
func BenchmarkRoundTripParallel(b *testing.B) {
	n := newBenchNode(b)
	const visitors = 64
	pool := make(chan *websocket.Conn, visitors)
	for i := range visitors {
		pool <- n.visitor(b, fmt.Sprint("v", i))
	}
	b.Cleanup(func() {
		close(pool)
		for v := range pool {
			v.CloseNow()
		}
	})
	before := n.delivered.Load()
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(visitors / 2)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		v := <-pool
		defer func() { pool <- v }()
		for pb.Next() {
			id := "m" + strconv.FormatInt(next.Add(1), 10)
			n.send(b, v, `{"type":"message","client_id":"`+id+`","text":"Hi, my card keeps getting declined at checkout."}`)
			if _, err := until(v, "ack"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	// Every acked message reaches the agent before the clock stops.
	for n.delivered.Load()-before < int64(b.N) && time.Since(start) < time.Minute {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got := n.delivered.Load() - before; got != int64(b.N) {
		b.Fatalf("agent received %d messages, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
