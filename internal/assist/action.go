package assist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/webhook"
)

// ActionResult is what running an action did.
type ActionResult struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// URL is the link to open (link actions).
	URL string `json:"url,omitempty"`
	// Note is the note added to the conversation, if any.
	Note string `json:"note,omitempty"`
	// Tags are the conversation's tags after a tag action.
	Tags []string `json:"tags,omitempty"`
	// Conversation is the conversation after a transfer.
	Conversation *chat.Conversation `json:"conversation,omitempty"`
}

// ActionError is an action that could not run: no such action here, no
// agent of the team available, or the site's endpoint failed. Its message
// is safe to show the agent.
type ActionError struct {
	// Status is the HTTP status the API answers with.
	Status  int
	Message string
}

func (e *ActionError) Error() string { return e.Message }

// RunAction runs one of the actions assist currently offers for the
// conversation (an action no longer offered, or hidden for a missing
// value, is refused). Confirmation is the console's job.
func (s *Service) RunAction(ctx context.Context, convID, itemID string, agent chat.Agent) (ActionResult, error) {
	conv, err := s.o.Store.Conversation(ctx, convID)
	if err != nil {
		return ActionResult{}, err
	}
	ev, err := s.evaluate(ctx, &conv, &agent)
	if err != nil {
		return ActionResult{}, err
	}
	res := ev.res
	i := slices.IndexFunc(res.Actions, func(it Item) bool { return it.ID == itemID })
	if i < 0 {
		return ActionResult{}, &ActionError{Status: http.StatusNotFound, Message: "this action is not offered for this conversation"}
	}
	it := res.Actions[i]
	out := ActionResult{ID: it.ID, Kind: it.Kind}
	log := s.o.Logger.With("conv", conv.ID, "action", it.ID, "agent", agent.ID)
	switch it.Kind {
	case KindLink:
		out.URL = it.URL
	case KindNote:
		if err := s.o.Hub.AddNote(ctx, agent, conv.ID, it.Text); err != nil {
			return out, err
		}
		out.Note = it.Text
	case KindTag:
		cs, err := s.updateConv(ctx, conv.SiteKey, conv.ID, func(cs *convState, d map[string]int64) bool {
			if slices.Contains(cs.Tags, it.Tag) || len(cs.Tags) >= 50 {
				return false
			}
			cs.Tags = append(cs.Tags, it.Tag)
			return true
		})
		if err != nil {
			return out, err
		}
		out.Tags = cs.Tags
		out.Note = "Tagged " + it.Tag
		if err := s.o.Hub.AddNote(ctx, agent, conv.ID, out.Note); err != nil {
			return out, err
		}
	case KindTransfer:
		to, err := s.transferTarget(ctx, ev.doc, it.action, agent)
		if err != nil {
			return out, err
		}
		note := "Transferred by the playbook " + strconv.Quote(it.Title)
		if it.Reason != "" {
			note += ": " + it.Reason
		}
		cv, err := s.o.Hub.Transfer(ctx, agent, conv.ID, to.ID, note)
		if err != nil {
			return out, err
		}
		out.Conversation, out.Note = &cv, note
	case KindWebhook:
		msg, err := s.callWebhook(ctx, &conv, ev.visitor, &it, agent)
		if err != nil {
			log.Warn("webhook action failed", "err", err)
			_ = s.o.Store.AddCounters(ctx, countersKey(conv.SiteKey), map[string]int64{it.ID + "/failed": 1})
			note := it.Label + " failed: " + err.Error()
			_ = s.o.Hub.AddNote(ctx, agent, conv.ID, note)
			return out, &ActionError{Status: http.StatusBadGateway, Message: note}
		}
		out.Note = it.Label + ": " + msg
		if err := s.o.Hub.AddNote(ctx, agent, conv.ID, out.Note); err != nil {
			return out, err
		}
	}
	log.Info("action run", "kind", it.Kind)
	_, err = s.updateConv(ctx, conv.SiteKey, conv.ID, func(cs *convState, d map[string]int64) bool {
		return markUsed(cs, d, it.ID)
	})
	return out, err
}

// transferTarget picks the agent: the named one, or the first member of
// the team (in doc, the document a belongs to) online with room, other
// than the agent asking.
func (s *Service) transferTarget(ctx context.Context, doc *Doc, a *Action, by chat.Agent) (chat.Agent, error) {
	if a.Agent != "" {
		to, err := s.o.Store.AgentByEmail(ctx, a.Agent)
		if errors.Is(err, chat.ErrNotFound) {
			return to, &ActionError{Status: http.StatusConflict, Message: "no agent " + a.Agent}
		}
		return to, err
	}
	live, err := s.o.Hub.Agents(ctx)
	if err != nil {
		return chat.Agent{}, err
	}
	for _, email := range doc.Teams[a.Team] {
		for _, v := range live {
			if strings.EqualFold(v.Email, email) && v.ID != by.ID && v.Status == "online" && v.Load < v.Capacity {
				return s.o.Store.Agent(ctx, v.ID)
			}
		}
	}
	return chat.Agent{}, &ActionError{Status: http.StatusConflict, Message: "nobody of the team " + a.Team + " is online with room"}
}

// WebhookRequest is the JSON body a webhook action posts (docs/assist.md).
type WebhookRequest struct {
	// ID is unique per run, for the receiver's idempotency.
	ID       string            `json:"id"`
	Type     string            `json:"type"` // "assist.action"
	At       time.Time         `json:"at"`
	Site     string            `json:"site"`
	Action   string            `json:"action"`
	Playbook string            `json:"playbook"`
	Params   map[string]string `json:"params,omitempty"`
	// Conversation, Visitor and Agent say who and what for.
	Conversation struct {
		ID  string `json:"id"`
		Ref string `json:"ref"`
	} `json:"conversation"`
	Visitor webhook.Visitor `json:"visitor"`
	Agent   struct {
		ID    string `json:"id"`
		Email string `json:"email"`
		Name  string `json:"name,omitempty"`
	} `json:"agent"`
	Finding *chat.FindingSeen `json:"finding,omitempty"`
}

// Headers of a webhook action, the same as internal/webhook's event
// deliveries; receivers can check them with webhook.Verify.
const (
	HeaderSignature = webhook.HeaderSignature
	HeaderTimestamp = webhook.HeaderTimestamp
	HeaderDelivery  = webhook.HeaderDelivery
	HeaderEvent     = webhook.HeaderEvent
)

// maxResult caps what of the endpoint's answer becomes the note.
const maxResult = 500

// callWebhook posts the signed request and returns the endpoint's answer
// as plain text: its JSON "message", or its text body.
func (s *Service) callWebhook(ctx context.Context, conv *chat.Conversation, v chat.Visitor, it *Item, agent chat.Agent) (string, error) {
	secret, err := s.ActionSecret(ctx, conv.SiteKey)
	if err != nil {
		return "", err
	}
	var req WebhookRequest
	req.ID, req.Type, req.At = uuid.NewString(), "assist.action", s.o.Now().UTC()
	req.Site, req.Action, req.Playbook, req.Params = conv.SiteKey, it.action.ID, it.Playbook, it.params
	req.Conversation.ID, req.Conversation.Ref = conv.ID, conv.Ref
	req.Visitor = webhook.Visitor{ID: v.ID, ExternalID: v.ExternalID, Name: v.Name, Email: v.Email, Verified: v.Verified, Attributes: v.Attributes}
	req.Agent.ID, req.Agent.Email, req.Agent.Name = agent.ID, agent.Email, agent.Name
	req.Finding = it.find
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	target, client := it.action.URL, s.o.HTTPClient
	if strings.HasPrefix(target, "/") {
		if s.o.BaseURL == "" {
			return "", errors.New("this node does not know its own URL")
		}
		target, client = strings.TrimSuffix(s.o.BaseURL, "/")+target, s.self
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.WebhookTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	webhook.SignRequest(hr, secret, "Lifeline-Assist/1", req.Type, req.ID, body, s.o.Now())
	resp, err := client.Do(hr)
	if err != nil {
		if errors.Is(err, webhook.ErrBlocked) {
			return "", errors.New("the endpoint's address is not allowed")
		}
		return "", errors.New("the endpoint could not be reached")
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("the endpoint answered %d", resp.StatusCode)
	}
	var answer struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &answer) == nil && answer.Message != "" {
		msg = answer.Message
	} else if strings.HasPrefix(msg, "{") || strings.HasPrefix(msg, "<") {
		msg = "" // JSON without a message, or HTML: say nothing of it
	}
	if msg == "" {
		msg = "done"
	}
	return clip(msg, maxResult), nil
}

func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
