// Package client speaks Lifeline's WebSocket protocol from Go, for tests and
// the load generator. It is not a public SDK: the widget and the console are
// the real clients.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/lifelinehq/lifeline/chat"
)

// Frame is any server frame, decoded into the union of the fields the
// protocol uses (docs/protocol.md).
type Frame struct {
	Type           string            `json:"type"`
	ID             string            `json:"id"`
	Code           string            `json:"code"`
	Message        json.RawMessage   `json:"message"` // a chat message, or an error's text
	Retryable      bool              `json:"retryable"`
	ClientID       string            `json:"client_id"`
	ConversationID string            `json:"conversation_id"`
	Seq            int64             `json:"seq"`
	Ref            string            `json:"ref"`
	VisitorID      string            `json:"visitor_id"`
	Token          string            `json:"token"`
	AgentsOnline   bool              `json:"agents_online"`
	Conversation   json.RawMessage   `json:"conversation"`
	Queue          []json.RawMessage `json:"queue"`
	Assigned       []json.RawMessage `json:"assigned"`
	Position       int               `json:"position"`
	ETASeconds     int               `json:"eta_seconds"`
	OfferID        string            `json:"offer_id"`
	Text           string            `json:"text"`
	Mode           string            `json:"mode"`
	Typing         bool              `json:"typing"`
	Reader         string            `json:"reader"`
	Raw            []byte            `json:"-"`
}

// ChatMessage decodes a message frame's message.
func (f Frame) ChatMessage() (chat.Message, error) {
	var m chat.Message
	err := json.Unmarshal(f.Message, &m)
	return m, err
}

// Conv decodes a conversation frame's conversation (agent view).
func (f Frame) Conv() (chat.Conversation, error) {
	var c chat.Conversation
	err := json.Unmarshal(f.Conversation, &c)
	return c, err
}

// ErrorText is an error frame's message.
func (f Frame) ErrorText() string {
	var s string
	_ = json.Unmarshal(f.Message, &s)
	return s
}

// Conn is one socket.
type Conn struct {
	ws *websocket.Conn
}

// Options tune a dial.
type Options struct {
	// Origin is sent as the Origin header (browsers always send one).
	Origin string
	// HTTPClient carries cookies for agents; nil uses a plain client.
	HTTPClient *http.Client
}

func wsURL(base, path string) string {
	u := strings.TrimRight(base, "/") + path
	u = strings.Replace(u, "http://", "ws://", 1)
	return strings.Replace(u, "https://", "wss://", 1)
}

// DialVisitor opens /ws/visitor for a site.
func DialVisitor(ctx context.Context, base, site string, o Options) (*Conn, error) {
	return wrap(dial(ctx, base, "/ws/visitor?site="+url.QueryEscape(site), o))
}

// DialAgent opens /ws/agent with the session in o.HTTPClient's cookie jar.
func DialAgent(ctx context.Context, base string, o Options) (*Conn, error) {
	return wrap(dial(ctx, base, "/ws/agent", o))
}

func wrap(ws *websocket.Conn, err error) (*Conn, error) {
	if err != nil {
		return nil, err
	}
	return &Conn{ws: ws}, nil
}

// dial opens a socket at path under base (an http or https URL); the read
// limit is 1 MiB.
func dial(ctx context.Context, base, path string, o Options) (*websocket.Conn, error) {
	u := wsURL(base, path)
	h := http.Header{}
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h, HTTPClient: o.HTTPClient})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", u, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	ws.SetReadLimit(1 << 20)
	return ws, nil
}

// Send writes one frame.
func (c *Conn) Send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// SendRaw writes bytes as a text frame, valid JSON or not.
func (c *Conn) SendRaw(ctx context.Context, b []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Next reads the next frame.
func (c *Conn) Next(ctx context.Context) (Frame, error) {
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return Frame{}, err
	}
	var f Frame
	if err := json.Unmarshal(b, &f); err != nil {
		return Frame{}, fmt.Errorf("decode frame %q: %w", b, err)
	}
	f.Raw = b
	return f, nil
}

// Until reads frames until one has the type, returning it and discarding
// others through skip (which may be nil).
func (c *Conn) Until(ctx context.Context, typ string, skip func(Frame)) (Frame, error) {
	for {
		f, err := c.Next(ctx)
		if err != nil {
			return f, err
		}
		if f.Type == typ {
			return f, nil
		}
		if skip != nil {
			skip(f)
		}
	}
}

// Close closes the socket normally.
func (c *Conn) Close() error { return c.ws.Close(websocket.StatusNormalClosure, "") }

// CloseNow drops the socket without a close handshake.
func (c *Conn) CloseNow() error { return c.ws.CloseNow() }

// Session is a logged-in agent's HTTP client.
type Session struct {
	Base   string
	HTTP   *http.Client
	CSRF   string
	Agent  chat.Agent
	Origin string
}

// Login logs an agent in and returns a session whose client carries the
// cookie.
func Login(ctx context.Context, base, email, password string) (*Session, error) {
	jar, _ := cookiejar.New(nil)
	s := &Session{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Jar: jar}, Origin: strings.TrimRight(base, "/")}
	var out struct {
		Agent chat.Agent `json:"agent"`
		CSRF  string     `json:"csrf_token"`
	}
	if err := s.Do(ctx, http.MethodPost, "/api/v1/login", map[string]string{"email": email, "password": password}, &out); err != nil {
		return nil, err
	}
	s.CSRF, s.Agent = out.CSRF, out.Agent
	return s, nil
}

// StatusError is a non-2xx API answer.
type StatusError struct {
	Status int
	Code   string
	Body   string
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Body) }

// Do calls the API with the session's cookie and CSRF token, decoding a
// JSON answer into out (may be nil).
func (s *Session) Do(ctx context.Context, method, path string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.Base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", s.Origin)
	if s.CSRF != "" {
		req.Header.Set("X-CSRF-Token", s.CSRF)
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(buf.Bytes(), &e)
		return &StatusError{Status: resp.StatusCode, Code: e.Error.Code, Body: buf.String()}
	}
	if out != nil && buf.Len() > 0 {
		return json.Unmarshal(buf.Bytes(), out)
	}
	return nil
}

// DialAgent opens the agent socket with this session.
func (s *Session) DialAgent(ctx context.Context) (*Conn, error) {
	return DialAgent(ctx, s.Base, Options{Origin: s.Origin, HTTPClient: s.HTTP})
}
