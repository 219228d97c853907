package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/client"
)

// hubNode is a chat.Hub served over loopback HTTP in the test process: the
// hub and its sockets without logins and the REST API, for tests and
// benchmarks that run several nodes on one Redis and need to see inside
// them. /ws/visitor?site=KEY serves a site's visitors; /ws/agent serves the
// agent named by the "agent" cookie (see dialAgent).
type hubNode struct {
	hub *chat.Hub
	url string
}

// testSecret signs visitor tokens; every node of a test shares it.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// newHubNode starts a hub on st and br, stopped when the test ends. The
// caller closes st and br (register their Close before calling, so they
// run after the hub's shutdown). tune may adjust the config.
func newHubNode(t testing.TB, st chat.Store, br chat.Broker, name string, tune func(*chat.Config)) *hubNode {
	t.Helper()
	cfg := chat.Config{Store: st, Broker: br, Secret: testSecret, Node: name}
	if tune != nil {
		tune(&cfg)
	}
	hub, err := chat.NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/visitor", func(w http.ResponseWriter, r *http.Request) {
		site, err := st.Site(r.Context(), r.URL.Query().Get("site"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		conn, err := chat.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		hub.ServeVisitor(context.WithoutCancel(r.Context()), conn, site, "127.0.0.1")
	})
	mux.HandleFunc("GET /ws/agent", func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie("agent")
		if err != nil {
			http.Error(w, "no agent cookie", http.StatusUnauthorized)
			return
		}
		a, err := st.Agent(r.Context(), ck.Value)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		conn, err := chat.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		hub.ServeAgent(context.WithoutCancel(r.Context()), conn, a, "127.0.0.1")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("hub %s shutdown: %v", name, err)
		}
		srv.Close()
	})
	return &hubNode{hub: hub, url: srv.URL}
}

// dialAgent opens an agent socket on n for agentID and says hello.
func (n *hubNode) dialAgent(ctx context.Context, agentID string) (*client.Conn, client.Frame, error) {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(n.url)
	jar.SetCookies(u, []*http.Cookie{{Name: "agent", Value: agentID}})
	c, err := client.DialAgent(ctx, n.url, client.Options{HTTPClient: &http.Client{Jar: jar}})
	if err != nil {
		return nil, client.Frame{}, err
	}
	if err := c.Send(ctx, map[string]any{"type": "hello"}); err != nil {
		c.CloseNow()
		return nil, client.Frame{}, err
	}
	w, err := c.Until(ctx, "welcome", nil)
	if err != nil {
		c.CloseNow()
		return nil, client.Frame{}, err
	}
	return c, w, nil
}

// dialVisitor opens a visitor socket on n for the site and says hello.
func (n *hubNode) dialVisitor(ctx context.Context, site string) (*client.Conn, error) {
	c, err := client.DialVisitor(ctx, n.url, site, client.Options{})
	if err != nil {
		return nil, err
	}
	if err := c.Send(ctx, map[string]any{"type": "hello"}); err != nil {
		c.CloseNow()
		return nil, err
	}
	if _, err := c.Until(ctx, "welcome", nil); err != nil {
		c.CloseNow()
		return nil, err
	}
	return c, nil
}
