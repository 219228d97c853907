package chat

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
)

// helloStore keeps visitors in memory and counts conversation lookups;
// the hub's other store calls are not expected in a hello.
type helloStore struct {
	Store
	mu       sync.Mutex
	visitors map[string]Visitor
	lookups  int
	puts     int
}

func (s *helloStore) PutVisitor(_ context.Context, v Visitor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.visitors[v.ID] = v
	s.puts++
	return nil
}

func (s *helloStore) Visitor(_ context.Context, id string) (Visitor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.visitors[id]
	if !ok {
		return Visitor{}, ErrNotFound
	}
	return v, nil
}

func (s *helloStore) UpdateVisitor(_ context.Context, id string, fn func(*Visitor) error) (Visitor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.visitors[id]
	if !ok {
		return Visitor{}, ErrNotFound
	}
	if err := fn(&v); err != nil {
		return Visitor{}, err
	}
	s.visitors[id] = v
	return v, nil
}

func (s *helloStore) Conversations(context.Context, ConversationQuery) ([]Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	return nil, nil
}

// refDetector records the visitor refs of the batches it is handed.
type refDetector struct {
	Detector
	mu   sync.Mutex
	refs []VisitorRef
}

func (d *refDetector) HandleEvents(_ context.Context, v VisitorRef, _ [][]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refs = append(d.refs, v)
}

// A hello without a token makes a visitor that can have no conversation
// or stored journey: the hub looks up neither and tells the detector the
// visitor is new. A hello with the token returned is a known visitor.
func TestNewVisitorHelloSkipsLookups(t *testing.T) {
	st := &helloStore{visitors: map[string]Visitor{}}
	det := &refDetector{}
	h, err := NewHub(Config{Store: st, Secret: []byte("0123456789abcdef"), Detector: det})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	hello := func(token string) visitorWelcome {
		t.Helper()
		_, w := sayHello(t, h, token)
		return w
	}

	w := hello("")
	if st.lookups != 0 || len(det.refs) != 1 || !det.refs[0].New || det.refs[0].VisitorID != w.VisitorID {
		t.Fatalf("new visitor: %d conversation lookups, detector refs %+v; want none and one ref marked new", st.lookups, det.refs)
	}
	hello(w.Token)
	if st.lookups != 1 || len(det.refs) != 2 || det.refs[1].New || det.refs[1].VisitorID != w.VisitorID {
		t.Fatalf("returning visitor: %d conversation lookups, detector refs %+v; want one and a ref not marked new", st.lookups, det.refs)
	}
}

// sayHello opens a visitor client on the demo site and says hello with
// token, returning the client and its welcome.
func sayHello(t *testing.T, h *Hub, token string) (*client, visitorWelcome) {
	t.Helper()
	return sayHelloOn(t, h, Site{Key: "demo"}, token)
}

// sayHelloOn is sayHello on a site of the test's.
func sayHelloOn(t *testing.T, h *Hub, site Site, token string) (*client, visitorWelcome) {
	t.Helper()
	tr := &recordingTransport{wrote: make(chan struct{}, 4)}
	c := newClient(h, tr, kindVisitor, "127.0.0.1")
	c.site = site
	frame, _ := json.Marshal(map[string]any{"type": "hello", "token": token, "page": map[string]string{"path": "/checkout"}})
	h.handleVisitor(context.Background(), c, frame)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var welcome visitorWelcome
	if len(tr.tried) != 1 || json.Unmarshal([]byte(tr.tried[0]), &welcome) != nil || welcome.Type != TypeWelcome {
		t.Fatalf("hello answered %q, want a welcome", tr.tried)
	}
	return c, welcome
}

// A known visitor is changed with UpdateVisitor, never read and put
// back: a hello from a second tab, an identify or a context call must
// not undo what another tab or node wrote in between. Only a new
// visitor is put.
func TestKnownVisitorIsUpdatedNotReplaced(t *testing.T) {
	st := &helloStore{visitors: map[string]Visitor{}}
	h, err := NewHub(Config{Store: st, Secret: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	_, w := sayHello(t, h, "")
	c, _ := sayHello(t, h, w.Token)
	for _, f := range []map[string]any{
		{"type": "identify", "identity": map[string]string{"id": "u_42", "name": "Ava"}},
		{"type": "context", "attributes": map[string]string{"plan": "pro"}},
	} {
		frame, _ := json.Marshal(f)
		h.handleVisitor(context.Background(), c, frame)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	v := st.visitors[w.VisitorID]
	if st.puts != 1 || v.ExternalID != "u_42" || v.Attributes["plan"] != "pro" {
		t.Fatalf("%d puts, visitor %+v; want the one put of the new visitor, then updates that set u_42 and plan", st.puts, v)
	}
}

// The welcome carries the site's widget settings: its theme, its strings
// and whether visitors see read receipts (by default they do).
func TestWelcomeCarriesSiteSettings(t *testing.T) {
	h, err := NewHub(Config{Store: &helloStore{visitors: map[string]Visitor{}}, Secret: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	if _, w := sayHello(t, h, ""); !w.Site.ReadReceipts {
		t.Errorf("welcome.site = %+v on a default site, want read receipts on", w.Site)
	}
	site := Site{Key: "demo", Theme: "#0b7a55", Strings: map[string]string{"title": "Hilfe"}, HideReadReceipts: true}
	_, w := sayHelloOn(t, h, site, "")
	if w.Site.ReadReceipts || w.Site.Theme != "#0b7a55" || w.Site.Strings["title"] != "Hilfe" {
		t.Errorf("welcome.site = %+v, want the theme, the strings and read receipts off", w.Site)
	}
}
