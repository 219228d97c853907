package webhook

import (
	"context"
	"errors"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

// Tap returns st with every conversation, message and identity change the
// hub writes reported to events as a chat.Event. Events are derived from
// what is stored, so each is reported once, by the node that wrote it,
// whichever code path (socket, REST, router) made the change:
//
//   - CreateConversation: conversation.created
//   - Assign: conversation.assigned
//   - UpdateConversation: conversation.resolved when the status becomes
//     resolved, conversation.reopened when it leaves resolved,
//     conversation.transferred when an open conversation changes agent
//   - AppendMessage (created only): message.created, without the site and
//     visitor, which the Service fills from the conversation when it
//     queues the event, off the chat write path
//   - PutVisitor or UpdateVisitor that sets or changes the external ID or
//     verification: visitor.identified
//
// Other methods pass through. The hub and the detector get the tapped
// store; maintenance (erasure, retention) uses the plain one.
func Tap(st chat.Store, events chat.Emitter) chat.Store {
	return &tap{Store: st, ev: events}
}

type tap struct {
	chat.Store
	ev chat.Emitter
}

func (t *tap) emitConv(ctx context.Context, typ chat.EventType, c chat.Conversation) {
	t.ev.Emit(ctx, chat.Event{Type: typ, SiteKey: c.SiteKey, VisitorID: c.VisitorID, AgentID: c.AgentID, At: c.UpdatedAt, Conversation: &c})
}

func (t *tap) CreateConversation(ctx context.Context, c chat.Conversation) error {
	err := t.Store.CreateConversation(ctx, c)
	if err == nil {
		t.emitConv(ctx, chat.EventConversationCreated, c)
	}
	return err
}

func (t *tap) Assign(ctx context.Context, id, agentID string, capacity int, now time.Time) (chat.Conversation, error) {
	c, err := t.Store.Assign(ctx, id, agentID, capacity, now)
	if err == nil {
		t.emitConv(ctx, chat.EventConversationAssigned, c)
	}
	return c, err
}

func (t *tap) UpdateConversation(ctx context.Context, id string, fn func(*chat.Conversation) error) (chat.Conversation, error) {
	var before chat.Conversation
	c, err := t.Store.UpdateConversation(ctx, id, func(cv *chat.Conversation) error {
		before = *cv // the last call is the one written
		return fn(cv)
	})
	if err != nil {
		return c, err
	}
	switch {
	case c.Status == chat.StatusResolved && before.Status != chat.StatusResolved:
		t.emitConv(ctx, chat.EventConversationResolved, c)
	case c.Status != chat.StatusResolved && before.Status == chat.StatusResolved:
		t.emitConv(ctx, chat.EventConversationReopened, c)
	case c.Open() && c.AgentID != before.AgentID && c.AgentID != "" && before.AgentID != "":
		t.emitConv(ctx, chat.EventConversationTransferred, c)
	case c.Open() && c.AgentID != "" && before.AgentID == "":
		t.emitConv(ctx, chat.EventConversationAssigned, c)
	}
	return c, nil
}

func (t *tap) AppendMessage(ctx context.Context, m chat.Message) (chat.Message, bool, error) {
	stored, created, err := t.Store.AppendMessage(ctx, m)
	if err == nil && created {
		t.ev.Emit(ctx, chat.Event{Type: chat.EventMessageCreated, AgentID: agentOf(stored), At: stored.At, Message: &stored})
	}
	return stored, created, err
}

func agentOf(m chat.Message) string {
	if m.Author.Kind == chat.AuthorAgent {
		return m.Author.ID
	}
	return ""
}

func (t *tap) UpdateVisitor(ctx context.Context, id string, fn func(*chat.Visitor) error) (chat.Visitor, error) {
	var before chat.Visitor
	v, err := t.Store.UpdateVisitor(ctx, id, func(cur *chat.Visitor) error {
		before = *cur // the last call is the one written
		return fn(cur)
	})
	if err == nil {
		t.identified(ctx, before, v)
	}
	return v, err
}

// identified reports visitor.identified when v has an external ID that
// old did not have, or another verification.
func (t *tap) identified(ctx context.Context, old, v chat.Visitor) {
	if v.ExternalID != "" && (old.ExternalID != v.ExternalID || old.Verified != v.Verified) {
		t.ev.Emit(ctx, chat.Event{Type: chat.EventVisitorIdentified, SiteKey: v.SiteKey, VisitorID: v.ID, Visitor: &v})
	}
}

func (t *tap) PutVisitor(ctx context.Context, v chat.Visitor) error {
	if v.ExternalID == "" {
		return t.Store.PutVisitor(ctx, v)
	}
	old, oerr := t.Store.Visitor(ctx, v.ID)
	if oerr != nil && !errors.Is(oerr, chat.ErrNotFound) {
		return t.Store.PutVisitor(ctx, v)
	}
	if err := t.Store.PutVisitor(ctx, v); err != nil {
		return err
	}
	t.identified(ctx, old, v)
	return nil
}
