package chat

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Detector is how struggle detection sees visitors. Its methods run on the
// visitor's reader goroutine and must be quick; to make an offer it calls
// Hub.Offer.
type Detector interface {
	// HandleEvents receives a batch of at most MaxBatchEvents raw behaviour
	// events (JSON objects, see docs/protocol.md). The slices are the
	// frame's read buffer, reused once it returns: copy what you keep.
	HandleEvents(ctx context.Context, v VisitorRef, events [][]byte)
	// OfferResponse reports the visitor's answer to an offer.
	OfferResponse(ctx context.Context, v VisitorRef, offerID string, accepted bool)
	// Assess returns what detection knows of a visitor who is starting a
	// conversation: its queue priority and the agent-facing explanation.
	Assess(v VisitorRef) Assessment
	// Resolved reports that a conversation whose Cause is set was resolved.
	Resolved(ctx context.Context, conv Conversation)
	// VisitorGone says the visitor has no socket left on this node.
	VisitorGone(v VisitorRef)
	// ReplayOffers says broker traffic may have been lost and is flowing
	// again (see Hub.Resync): offers made meanwhile, still unanswered, are
	// sent again through Hub.Offer.
	ReplayOffers(ctx context.Context)
}

// FeedbackObserver is an optional capability of a Detector: it hears each
// answer to "Did this solve it?" after it is stored (agent assist counts
// which suggestions led to a "yes").
type FeedbackObserver interface {
	Feedback(ctx context.Context, conv Conversation)
}

// Assessment is the detector's view of a visitor starting a conversation.
type Assessment struct {
	// Priority raises the conversation in the queue (0 to 3).
	Priority int
	// Explanation is one sentence for the agent, e.g. "Card declined 3
	// times on /checkout in 40 s".
	Explanation string
	// Cause is the ID of the rule behind the explanation.
	Cause string
}

// VisitorRef identifies a connected visitor to hooks.
type VisitorRef struct {
	SiteKey   string
	VisitorID string
	// ConversationID is the visitor's current conversation, if any.
	ConversationID string
	// New says the hello at hand made the visitor: nothing is stored
	// about it anywhere yet, so a hook need not look.
	New bool
}

func (h *Hub) handleVisitor(ctx context.Context, c *client, data []byte) {
	in, err := DecodeVisitor(data)
	if err != nil {
		h.replyErr(c, err, in.ID, in.ClientID)
		return
	}
	h.metrics.Frame("visitor", in.Type)
	if !c.helloed && in.Type != TypeHello && in.Type != TypePing {
		c.sendError(CodeHelloRequired, "say hello first", in.ID, in.ClientID)
		return
	}
	switch in.Type {
	case TypePing:
		c.send(pongFrame)
	case TypeHello:
		hello := in // a copy keeps in itself off the heap for every other frame
		err = h.visitorHello(ctx, c, &hello)
	case TypeMessage:
		err = h.visitorMessage(ctx, c, &in, "")
	case TypeLeaveMessage:
		err = h.visitorMessage(ctx, c, &in, strings.TrimSpace(in.Email))
	case TypeTyping:
		if conv := c.currentConv(); conv != "" {
			h.publish(ctx, &event{Kind: evTyping, Author: &Author{Kind: AuthorVisitor, ID: c.visitor}, Typing: in.Typing}, convTopic(conv))
		}
	case TypeRead:
		if conv := c.currentConv(); conv != "" {
			h.publish(ctx, &event{Kind: evRead, Seq: in.Seq, Reader: string(AuthorVisitor)}, convTopic(conv))
			h.marks.note(conv, false, in.Seq)
		}
	case TypeIdentify:
		err = h.visitorIdentify(ctx, c, in.Identity)
	case TypeContext:
		attrs := in.Attributes
		err = h.updateVisitor(ctx, c.visitor, func(v *Visitor) { mergeAttributes(v, attrs) })
	case TypeFeedback:
		err = h.visitorFeedback(ctx, c, in.ConversationID, *in.Solved)
	case TypeEvents:
		if h.detector != nil && len(in.Events) > 0 {
			raw := make([][]byte, len(in.Events))
			for i, e := range in.Events {
				raw[i] = e
			}
			h.detector.HandleEvents(ctx, c.ref(), raw)
		}
	case TypeOfferResponse:
		if h.detector != nil {
			h.detector.OfferResponse(ctx, c.ref(), in.OfferID, in.Accept)
		}
		if in.Accept {
			// Put the visitor in front of agents now, with what detection
			// knows, before they type a word.
			_, err = h.visitorConversation(ctx, c, "")
		}
	}
	if err != nil {
		h.replyErr(c, err, in.ID, in.ClientID)
	}
}

// replyErr answers a failed frame. Contract and protocol errors say what
// went wrong; anything else is logged and answered as unavailable.
func (h *Hub) replyErr(c *client, err error, id, clientID string) {
	var fe *FrameError
	if errors.As(err, &fe) {
		c.sendError(fe.Code, fe.Message, id, clientID)
		return
	}
	code := storeErrCode(err)
	msg := "the server cannot store this right now; retry"
	switch code {
	case CodeNotFound:
		msg = "no such conversation or visitor"
	case CodeConflict:
		msg = "the conversation changed; refresh it"
	case CodeCapacity:
		msg = "the agent is at capacity"
	case CodeInvalid:
		msg = "invalid request"
	default:
		h.log.Warn("frame failed", "kind", c.kind.String(), "err", err)
	}
	c.sendError(code, msg, id, clientID)
}

func (c *client) currentConv() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conv
}

func (c *client) ref() VisitorRef {
	return VisitorRef{SiteKey: c.site.Key, VisitorID: c.visitor, ConversationID: c.currentConv()}
}

func (h *Hub) visitorHello(ctx context.Context, c *client, in *Inbound) error {
	if c.helloed {
		return frameErr(CodeInvalid, "hello was already said on this socket")
	}
	now := h.now()
	seen := func(v *Visitor) {
		v.LastSeen = now
		if in.Device != nil {
			v.Device = in.Device.String()
		}
		if in.Locale != "" {
			v.Locale = truncate(in.Locale, 35)
		}
	}
	var v Visitor
	isNew := in.Token == ""
	if !isNew {
		id, ok := VerifyVisitorToken(h.cfg.Secret, c.site.Key, in.Token)
		if !ok {
			return frameErr(CodeBadToken, "the token is not valid for this site; drop it and say hello without one")
		}
		// An update, not a read and a put: another tab identifying the
		// visitor meanwhile must not be undone by this hello.
		var err error
		v, err = h.store.UpdateVisitor(ctx, id, func(cur *Visitor) error {
			if cur.SiteKey != c.site.Key {
				return ErrNotFound
			}
			seen(cur)
			return nil
		})
		if errors.Is(err, ErrNotFound) {
			return frameErr(CodeBadToken, "this visitor no longer exists; drop the token and say hello without one")
		}
		if err != nil {
			return err
		}
	} else {
		v = Visitor{ID: newRecordID(), SiteKey: c.site.Key, CreatedAt: now}
		seen(&v)
		if err := h.store.PutVisitor(ctx, v); err != nil {
			return err
		}
	}
	var conv *Conversation
	if !isNew { // a visitor made just now has no conversation to resume
		if list, err := h.store.Conversations(ctx, ConversationQuery{VisitorID: v.ID, Limit: 1}); err != nil {
			return err
		} else if len(list) > 0 {
			conv = &list[0]
		}
	}

	c.visitor = v.ID
	c.helloed = true
	if err := h.joinVisitorGroup(ctx, c); err != nil {
		c.helloed = false
		return err
	}
	w := visitorWelcome{
		Type: TypeWelcome, VisitorID: v.ID, Token: SignVisitorToken(h.cfg.Secret, c.site.Key, v.ID),
		AgentsOnline: h.AgentsOnline(ctx), Site: SiteSettings{Theme: c.site.Theme, Strings: c.site.Strings, ReadReceipts: !c.site.HideReadReceipts},
	}
	if conv != nil {
		w.Conversation = visitorView(*conv, h.agentName(ctx, conv.AgentID))
		c.mu.Lock()
		c.conv = conv.ID
		c.cursors[conv.ID] = in.LastSeq
		c.mu.Unlock()
	}
	c.send(encode(w))
	if conv != nil {
		if err := h.attach(ctx, c, conv.ID, true); err != nil {
			return err
		}
		if conv.Status == StatusWaiting {
			h.kickRouter() // sends this socket its queue position
		}
	}
	if h.detector != nil && in.Page != nil && in.Page.Path != "" {
		ref := c.ref()
		ref.New = isNew
		h.detector.HandleEvents(ctx, ref, [][]byte{pageEvent(now, in.Page)})
	}
	return nil
}

// pageEvent turns the hello's page into a behaviour event.
func pageEvent(now time.Time, p *Page) []byte {
	return encode(struct {
		T     int64  `json:"t"`
		K     string `json:"k"`
		Path  string `json:"path"`
		Title string `json:"title,omitempty"`
		Ref   string `json:"ref,omitempty"`
	}{now.UnixMilli(), "page", truncate(p.Path, 512), truncate(p.Title, 200), truncate(p.Referrer, 512)})
}

// joinVisitorGroup records the socket among the visitor's local sockets and
// subscribes to the visitor's topic when it is the first.
func (h *Hub) joinVisitorGroup(ctx context.Context, c *client) error {
	h.mu.Lock()
	g := h.visitors[c.visitor]
	if g != nil {
		g.clients[c] = struct{}{}
		h.mu.Unlock()
		return nil
	}
	g = &visitorGroup{clients: map[*client]struct{}{c: {}}}
	h.visitors[c.visitor] = g
	h.mu.Unlock()
	id := c.visitor
	cancel, err := h.subscribe(ctx, visitorTopic(id), func(ev *event) { h.onVisitorEvent(id, ev) })
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		delete(g.clients, c)
		if len(g.clients) == 0 && h.visitors[id] == g {
			delete(h.visitors, id)
		}
		return fmt.Errorf("subscribe visitor: %w", err)
	}
	if h.visitors[id] != g { // every socket left meanwhile
		defer cancel()
		return nil
	}
	g.cancel = cancel
	return nil
}

// onVisitorEvent handles events addressed to one visitor: offers, and a
// conversation started in another tab.
func (h *Hub) onVisitorEvent(visitorID string, ev *event) {
	tabs := h.visitorTabs(visitorID)
	switch ev.Kind {
	case evErased:
		for _, c := range tabs {
			c.close(ClosePolicy, "visitor erased")
		}
	case evOffer:
		if ev.Offer == nil {
			return
		}
		frame := encode(ev.Offer)
		for _, c := range tabs {
			c.send(frame)
		}
	case evConversation:
		if ev.Conversation != nil {
			h.showTabs(tabs, *ev.Conversation, ev.AgentName)
		}
	}
}

// showTabs moves the visitor's tabs that are not on conv (it started in
// another tab) onto it: each is told about it and attached to its room,
// off the caller's goroutine because attaching reads the store.
func (h *Hub) showTabs(tabs []*client, conv Conversation, agentName string) {
	var frame []byte
	for _, c := range tabs {
		c.mu.Lock()
		fresh := c.conv != conv.ID
		c.conv = conv.ID
		c.mu.Unlock()
		if !fresh {
			continue
		}
		if frame == nil {
			frame = encode(conversationFrame{Type: TypeConversation, Conversation: visitorView(conv, agentName)})
		}
		c.send(frame)
		h.spawn(func() {
			if err := h.attach(h.ctx, c, conv.ID, true); err != nil {
				h.log.Warn("attach visitor tab", "conv", conv.ID, "err", err)
			}
		})
	}
}

// visitorMessage stores a visitor's message (starting or reopening the
// conversation when needed) and acknowledges it once durable.
func (h *Hub) visitorMessage(ctx context.Context, c *client, in *Inbound, email string) error {
	start := h.now()
	conv, err := h.visitorConversation(ctx, c, email)
	if err != nil {
		return err
	}
	v, err := h.store.Visitor(ctx, c.visitor)
	if err != nil {
		return err
	}
	if email != "" && v.Email == "" {
		// Remember the address the visitor gave so agents can find them by
		// it later; it stays unverified.
		if v, err = h.store.UpdateVisitor(ctx, v.ID, func(cur *Visitor) error {
			if cur.Email == "" {
				cur.Email = email
			}
			return nil
		}); err != nil {
			return err
		}
	}
	m, created, err := h.store.AppendMessage(ctx, Message{
		ConversationID: conv.ID, ClientID: in.ClientID, Text: in.Text,
		Author: Author{Kind: AuthorVisitor, ID: v.ID, Name: v.Name},
	})
	if err != nil {
		return err
	}
	h.metrics.MessageStored(h.now().Sub(start))
	if created && conv.Status == StatusWaiting {
		// Agents choosing from the queue see what the visitor is saying
		// (an assigned conversation's agent gets the message itself).
		// A copy, so that conv itself stays on the stack.
		queued := conv
		queued.SetLast(m.Seq, PreviewOf(m))
		h.publish(ctx, &event{Kind: evConversation, Conversation: &queued}, queueTopic)
	}
	// Publish before acknowledging, and again for a retry: a node that dies
	// between storing and publishing has not acknowledged, so the client's
	// retry (on any node) publishes. Rooms drop what they already delivered.
	// The echo (when the room is on this node) and the ack leave together.
	c.cork()
	h.publish(ctx, &event{Kind: evMessage, Message: &m}, convTopic(conv.ID))
	c.send(encode(ackFrame{Type: TypeAck, ID: in.ID, ClientID: in.ClientID, ConversationID: conv.ID, Seq: m.Seq, Ref: conv.Ref}))
	c.uncork()
	return nil
}

// visitorConversation returns the visitor's open conversation, starting one
// when there is none and moving a resolved or pending one back to work.
func (h *Hub) visitorConversation(ctx context.Context, c *client, email string) (Conversation, error) {
	if id := c.currentConv(); id != "" {
		conv, err := h.store.Conversation(ctx, id)
		if err != nil {
			return Conversation{}, err
		}
		if conv.Status == StatusWaiting || conv.Status == StatusActive {
			if email != "" && conv.Email == "" {
				return h.updateConversation(ctx, id, func(cv *Conversation) error { cv.Email = email; return nil })
			}
			return conv, nil
		}
		if conv.Status == StatusPending || (conv.Status == StatusResolved && conv.Feedback == "") {
			// The customer answered or came back: back to the agent, or the queue.
			return h.updateConversation(ctx, id, func(cv *Conversation) error {
				reopen(cv, h.now())
				if email != "" {
					cv.Email = email
				}
				return nil
			})
		}
	}
	return h.startConversation(ctx, c, email)
}

// reopen moves a conversation back to its agent, or to the queue.
func reopen(cv *Conversation, now time.Time) {
	cv.Status = StatusWaiting
	if cv.AgentID != "" {
		cv.Status = StatusActive
	}
	cv.ResolvedAt = time.Time{}
	cv.Feedback = ""
	cv.UpdatedAt = now
}

// updateConversation applies fn and tells everyone about the result.
func (h *Hub) updateConversation(ctx context.Context, id string, fn func(*Conversation) error) (Conversation, error) {
	conv, err := h.store.UpdateConversation(ctx, id, func(cv *Conversation) error {
		if err := fn(cv); err != nil {
			return err
		}
		cv.UpdatedAt = h.now()
		return nil
	})
	if err != nil {
		return conv, err
	}
	h.publishConversation(ctx, conv)
	return conv, nil
}

func (h *Hub) startConversation(ctx context.Context, c *client, email string) (Conversation, error) {
	now := h.now()
	conv := Conversation{
		ID: newRecordID(), SiteKey: c.site.Key, VisitorID: c.visitor, Status: StatusWaiting,
		Email: email, CreatedAt: now, UpdatedAt: now,
	}
	if h.detector != nil {
		a := h.detector.Assess(c.ref())
		conv.Priority, conv.Explanation, conv.Cause = a.Priority, a.Explanation, a.Cause
	}
	var err error
	for i := 0; i < 8; i++ {
		conv.Ref = NewRef(4 + i/4)
		if err = h.store.CreateConversation(ctx, conv); !errors.Is(err, ErrConflict) {
			break
		}
	}
	if err != nil {
		return Conversation{}, fmt.Errorf("start conversation: %w", err)
	}
	c.mu.Lock()
	c.conv = conv.ID
	c.mu.Unlock()
	if err := h.attach(ctx, c, conv.ID, true); err != nil {
		return Conversation{}, err
	}
	h.log.Info("conversation started", "conv", conv.ID, "ref", conv.Ref, "site", conv.SiteKey)
	// The visitor's other tabs follow it (see onVisitorEvent).
	h.publishConversation(ctx, conv, visitorTopic(c.visitor))
	return conv, nil
}

// newRecordID returns a new visitor or conversation ID: a time-ordered
// UUID (version 7) rather than a random one. A store that keys records by
// ID in a B-tree (the embedded store does, and its indexes append the ID
// to the site key) then adds new records at the end of each index instead
// of on random pages: a group commit of the visitors of a connection storm
// writes a few pages rather than one or two per visitor. The 74 random
// bits left are plenty for an identifier that grants nothing by itself
// (a visitor's socket is bound by its signed token). Ordering holds
// within a process; across nodes it follows their clocks. Like
// uuid.NewString, it panics only if the system's random source fails.
func newRecordID() string { return uuid.Must(uuid.NewV7()).String() }

// refAlphabet is Crockford's base32 without easily confused letters.
const refAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewRef returns a random human-readable conversation reference such as
// "LF-7K3Q" with n characters after the prefix.
func NewRef(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = refAlphabet[int(b[i])%len(refAlphabet)]
	}
	return "LF-" + string(b)
}

func (h *Hub) visitorIdentify(ctx context.Context, c *client, id *Identity) error {
	verified := VerifyIdentity(c.site.IdentitySecret, id.ID, id.Hash)
	return h.updateVisitor(ctx, c.visitor, func(v *Visitor) {
		if v.Verified && !verified {
			// A claim without proof never replaces a proven identity.
			return
		}
		if verified && v.Verified && v.ExternalID != id.ID {
			// Another proven user on the same browser: start clean.
			v.Attributes = nil
		}
		v.ExternalID, v.Verified = id.ID, verified
		if id.Name != "" {
			v.Name = id.Name
		}
		if id.Email != "" {
			v.Email = strings.ToLower(id.Email)
		}
		mergeAttributes(v, id.Attributes)
	})
}

func mergeAttributes(v *Visitor, attrs map[string]string) {
	if len(attrs) == 0 {
		return
	}
	if v.Attributes == nil {
		v.Attributes = make(map[string]string, len(attrs))
	}
	for k, val := range attrs {
		if _, ok := v.Attributes[k]; !ok && len(v.Attributes) >= maxAttributes {
			continue
		}
		v.Attributes[k] = val
	}
}

// updateVisitor applies fn to the stored visitor atomically: identify,
// context and consent from one tab never undo another tab's or node's.
func (h *Hub) updateVisitor(ctx context.Context, id string, fn func(*Visitor)) error {
	_, err := h.store.UpdateVisitor(ctx, id, func(v *Visitor) error {
		fn(v)
		return nil
	})
	return err
}

func (h *Hub) visitorFeedback(ctx context.Context, c *client, convID string, solved bool) error {
	if convID == "" {
		convID = c.currentConv()
	}
	conv, err := h.store.Conversation(ctx, convID)
	if err != nil {
		return err
	}
	if conv.VisitorID != c.visitor {
		return fmt.Errorf("feedback: %w", ErrNotFound)
	}
	conv, err = h.updateConversation(ctx, convID, func(cv *Conversation) error {
		if cv.Status != StatusResolved {
			return frameErr(CodeConflict, "the conversation is not resolved")
		}
		if solved {
			cv.Feedback = "yes"
			return nil
		}
		reopen(cv, h.now())
		cv.Feedback = "no"
		return nil
	})
	if fo, ok := h.detector.(FeedbackObserver); ok && err == nil {
		fo.Feedback(ctx, conv)
	}
	return err
}
