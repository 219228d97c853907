package chat

import (
	"context"
	"errors"

	"github.com/coder/websocket"
)

// Read limits per frame; see docs/protocol.md.
const (
	visitorReadLimit = 64 << 10
	agentReadLimit   = 256 << 10
)

// wsTransport adapts a coder/websocket connection to the hub's transport.
// This is the only file in chat that knows about WebSockets.
type wsTransport struct{ conn *websocket.Conn }

func (t wsTransport) write(ctx context.Context, frame []byte) error {
	return t.conn.Write(ctx, websocket.MessageText, frame)
}

func (t wsTransport) close(code StatusCode, reason string) {
	_ = t.conn.Close(websocket.StatusCode(code), reason)
}

// ServeVisitor runs a visitor's socket for site until it closes. The caller
// has already checked the site and the Origin.
func (h *Hub) ServeVisitor(ctx context.Context, conn *websocket.Conn, site Site, ip string) {
	conn.SetReadLimit(visitorReadLimit)
	c := newClient(h, wsTransport{conn}, kindVisitor, ip)
	c.site = site
	h.serve(ctx, c, conn, h.handleVisitor)
}

// ServeAgent runs an authenticated agent's socket until it closes.
func (h *Hub) ServeAgent(ctx context.Context, conn *websocket.Conn, agent Agent, ip string) {
	conn.SetReadLimit(agentReadLimit)
	c := newClient(h, wsTransport{conn}, kindAgent, ip)
	c.agent = agent
	h.serve(ctx, c, conn, h.handleAgent)
}

// maxStrikes is how many rate-limited frames in a row close a socket.
const maxStrikes = 5

func (h *Hub) serve(ctx context.Context, c *client, conn *websocket.Conn, handle func(context.Context, *client, []byte)) {
	if !h.register(c) {
		_ = conn.Close(websocket.StatusCode(CloseServiceRestart), "server restarting: reconnect")
		return
	}
	defer h.unregister(c)
	draining := false // closing after the queued errors are written
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if s := websocket.CloseStatus(err); s == -1 && !errors.Is(err, context.Canceled) {
				h.log.Debug("socket read ended", "kind", c.kind.String(), "err", err)
			}
			return
		}
		if draining {
			continue // read on so the close handshake can finish
		}
		now := h.now()
		c.lastActive.Store(now.UnixNano())
		if !c.allow(now) {
			c.sendError(CodeRateLimited, "too many frames; slow down", "", "")
			if c.strikes >= maxStrikes {
				c.closeAfterFlush(ClosePolicy, "rate limit exceeded")
				draining = true
			}
			continue
		}
		if typ != websocket.MessageText {
			c.sendError(CodeBadFrame, "frames must be JSON text", "", "")
			continue
		}
		handle(ctx, c, data)
	}
}
