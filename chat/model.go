package chat

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Role is what an agent account may do.
type Role string

// Roles. Admins manage sites and agents; agents chat; analysts tune detectors
// and read reports but never send messages.
const (
	RoleAdmin   Role = "admin"
	RoleAgent   Role = "agent"
	RoleAnalyst Role = "analyst"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleAgent || r == RoleAnalyst }

// Status is a conversation's place in its life cycle.
type Status string

// Conversation statuses (DESIGN.md §4).
const (
	StatusWaiting  Status = "waiting"  // in the queue, no agent yet
	StatusActive   Status = "active"   // assigned to an agent
	StatusPending  Status = "pending"  // waiting on the customer
	StatusResolved Status = "resolved" // done; "no" to "Did this solve it?" reopens
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusWaiting, StatusActive, StatusPending, StatusResolved:
		return true
	}
	return false
}

// Site is one website that embeds the widget.
type Site struct {
	// Key is the public site key used in the snippet (data-site).
	Key  string `json:"key"`
	Name string `json:"name"`
	// Origins are the allowed Origin host patterns for the visitor WebSocket,
	// in coder/websocket OriginPatterns syntax ("shop.example.com", "*.example.com").
	Origins []string `json:"origins"`
	// IdentitySecret signs identify calls: hash = hex(HMAC-SHA256(secret, user id)).
	IdentitySecret string `json:"identity_secret"`
	// Theme is the widget's accent colour as #rrggbb.
	Theme string `json:"theme,omitempty"`
	// Strings overrides widget texts by key (i18n).
	Strings map[string]string `json:"strings,omitempty"`
	// HideReadReceipts keeps the widget from showing visitors "Seen" under
	// their messages once support has read them (shown by default).
	HideReadReceipts bool      `json:"hide_read_receipts,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
}

// Visitor is one person on a site, anonymous or identified.
type Visitor struct {
	ID      string `json:"id"`
	SiteKey string `json:"site"`
	// ExternalID, Name and Email come from identify. Verified is true only when
	// the identify hash checked out against the site's identity secret.
	ExternalID string            `json:"external_id,omitempty"`
	Name       string            `json:"name,omitempty"`
	Email      string            `json:"email,omitempty"`
	Verified   bool              `json:"verified"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Device     string            `json:"device,omitempty"`
	Locale     string            `json:"locale,omitempty"`
	// Context is what struggle detection saw of the visit, kept so agents
	// on any node see it.
	Context   *VisitContext `json:"context,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	LastSeen  time.Time     `json:"last_seen"`
}

// Agent is a support agent, admin or analyst account.
type Agent struct {
	ID           string `json:"id"`
	Email        string `json:"email"`
	Name         string `json:"name"`
	Role         Role   `json:"role"`
	PasswordHash []byte `json:"-"`
	Disabled     bool   `json:"disabled"`
	// Capacity is how many active conversations the agent takes at once.
	// Zero means DefaultCapacity.
	Capacity int `json:"capacity"`
	// Away is the availability the agent chose last. Their sockets connect
	// away while it is set, so a reload or a dropped connection does not
	// put an agent who stepped away back in the router's rotation.
	Away      bool      `json:"away,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// DefaultCapacity is an agent's capacity when none is set.
const DefaultCapacity = 5

// EffectiveCapacity returns a.Capacity, or DefaultCapacity when unset.
func (a Agent) EffectiveCapacity() int {
	if a.Capacity <= 0 {
		return DefaultCapacity
	}
	return a.Capacity
}

// Session is a logged-in agent's browser session.
type Session struct {
	// ID is the secret cookie value's SHA-256 hex digest; the raw value is
	// never stored.
	ID        string    `json:"id"`
	AgentID   string    `json:"agent_id"`
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Conversation is one support thread between a visitor and agents.
type Conversation struct {
	ID        string `json:"id"`
	Ref       string `json:"ref"` // human-readable reference, e.g. LF-7K3Q
	SiteKey   string `json:"site"`
	VisitorID string `json:"visitor_id"`
	Status    Status `json:"status"`
	AgentID   string `json:"agent_id,omitempty"`
	// Priority orders the queue: higher first, then oldest first. Struggle
	// detection raises it.
	Priority int `json:"priority"`
	// Explanation is the detector's one-sentence reason, if any.
	Explanation string `json:"explanation,omitempty"`
	// Cause is the ID of the detector rule behind Explanation.
	Cause string `json:"cause,omitempty"`
	// Email is set when the visitor left a message for later.
	Email string `json:"email,omitempty"`
	// Feedback is the answer to "Did this solve it?": "", "yes" or "no".
	Feedback string `json:"feedback,omitempty"`
	LastSeq  int64  `json:"last_seq"`
	// VisitorRead is the furthest message the visitor reported seeing (a
	// `read` frame's seq), never past LastSeq. The hub writes it within a
	// second of the frame, so agents who join later, on any node, show
	// "Seen".
	VisitorRead int64 `json:"visitor_read,omitempty"`
	// AgentRead is the same for the agents: the furthest message any
	// agent reported seeing. The widget shows "Seen" from it.
	AgentRead int64 `json:"agent_read,omitempty"`
	// Last is the last message, shortened, for lists such as the queue;
	// nil before the first. Stores derive it from the messages: records
	// written with it set do not keep it.
	Last       *MessagePreview `json:"last_message,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	AssignedAt time.Time       `json:"assigned_at,omitzero"`
	ResolvedAt time.Time       `json:"resolved_at,omitzero"`
}

// MessagePreview is a conversation's last message as a list shows it.
type MessagePreview struct {
	Author AuthorKind `json:"author"`
	// Text is the message's text on one line, at most PreviewRunes code
	// points, ending in "…" when cut.
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// PreviewRunes is the longest MessagePreview text, in code points.
const PreviewRunes = 140

// PreviewOf returns m as a list shows it: runs of white space (line
// breaks included) become one space and a long text is cut, on a word
// boundary when one is near, with "…".
func PreviewOf(m Message) *MessagePreview {
	return &MessagePreview{Author: m.Author.Kind, Text: previewText(m.Text), At: m.At}
}

func previewText(s string) string {
	n, plain, prevSpace := 0, true, true // a leading space is not plain
	for _, r := range s {
		space := unicode.IsSpace(r)
		if space && (r != ' ' || prevSpace) {
			plain = false
		}
		prevSpace = space
		n++
	}
	if !plain || prevSpace && n > 0 {
		s = strings.Join(strings.Fields(s), " ")
		n = utf8.RuneCountInString(s)
	}
	if n <= PreviewRunes {
		return s
	}
	// Keep PreviewRunes-1 code points and the ellipsis, ending at the last
	// space when that drops under a quarter of them.
	end, k := 0, 0
	for i := range s {
		if k == PreviewRunes-1 {
			end = i
			break
		}
		k++
	}
	cut := s[:end]
	if i := strings.LastIndexByte(cut, ' '); i > len(cut)*3/4 {
		cut = cut[:i]
	}
	return cut + "…"
}

// SetLast records the conversation's last message: its sequence number
// and preview (nil for none), moving UpdatedAt on to the message's time
// if that is later.
func (c *Conversation) SetLast(seq int64, last *MessagePreview) {
	c.LastSeq, c.Last = seq, last
	if last != nil && last.At.After(c.UpdatedAt) {
		c.UpdatedAt = last.At
	}
}

// Open reports whether the conversation still needs or has an agent.
func (c Conversation) Open() bool { return c.Status != StatusResolved }

// AuthorKind says who wrote a message.
type AuthorKind string

// Author kinds.
const (
	AuthorVisitor AuthorKind = "visitor"
	AuthorAgent   AuthorKind = "agent"
	AuthorSystem  AuthorKind = "system"
)

// Author identifies the writer of a message.
type Author struct {
	Kind AuthorKind `json:"kind"`
	ID   string     `json:"id,omitempty"`
	Name string     `json:"name,omitempty"`
}

// Message is one chat message. Seq is per conversation, gap-free from 1.
type Message struct {
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	// ClientID is the sender's idempotency key: a retry with the same
	// ClientID in the same conversation is stored once.
	ClientID string    `json:"client_id"`
	Author   Author    `json:"author"`
	Text     string    `json:"text"`
	At       time.Time `json:"at"`
}

// Note is an internal note on a conversation, visible to agents only.
type Note struct {
	ID             string    `json:"id"`
	ConversationID string    `json:"conversation_id"`
	AgentID        string    `json:"agent_id"`
	Text           string    `json:"text"`
	At             time.Time `json:"at"`
}

// VisitContext is the recent journey of a visitor as agents see it: the
// page trail, errors, failed requests and the detector's findings. It never
// holds typed values. Lists are bounded (MaxTrail and friends).
type VisitContext struct {
	Trail       []PageVisit   `json:"trail,omitempty"`
	Errors      []ErrorSeen   `json:"errors,omitempty"`
	Requests    []RequestSeen `json:"requests,omitempty"`
	Findings    []FindingSeen `json:"findings,omitempty"`
	Score       float64       `json:"score"`
	Explanation string        `json:"explanation,omitempty"`
	// Offers is how many proactive offers the visitor was shown;
	// DeclinedAt is their last "no thanks".
	Offers     int       `json:"offers,omitempty"`
	DeclinedAt time.Time `json:"declined_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Clone returns a copy of c that shares no lists with it.
func (c VisitContext) Clone() VisitContext {
	c.Trail = slices.Clone(c.Trail)
	c.Errors = slices.Clone(c.Errors)
	c.Requests = slices.Clone(c.Requests)
	c.Findings = slices.Clone(c.Findings)
	return c
}

// Bounds of a VisitContext's lists; the oldest entries go first.
const (
	MaxTrail    = 20
	MaxErrors   = 10
	MaxRequests = 10
	MaxFindings = 10
)

// PageVisit is one page in the trail. DwellMS is the time until the next
// page, 0 for the current one.
type PageVisit struct {
	Path    string    `json:"path"`
	Title   string    `json:"title,omitempty"`
	At      time.Time `json:"at"`
	DwellMS int64     `json:"dwell_ms"`
}

// ErrorSeen is a JavaScript error or a site-reported error, counted by
// message.
type ErrorSeen struct {
	At    time.Time `json:"at"`
	Msg   string    `json:"msg"`
	Page  string    `json:"page,omitempty"`
	Count int       `json:"count"`
}

// RequestSeen is a failed request, counted by method, path and status.
type RequestSeen struct {
	At     time.Time `json:"at"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Status int       `json:"status"`
	Count  int       `json:"count"`
}

// FindingSeen is one detector finding with the evidence agent assist
// fills placeholders from. Evidence fields that do not apply are empty.
type FindingSeen struct {
	At       time.Time `json:"at"`
	Rule     string    `json:"rule"`
	Sentence string    `json:"sentence"`
	Shadow   bool      `json:"shadow,omitempty"`
	// Signal is the rule's signal, Page the page it fired on and Count the
	// number of events behind it.
	Signal string `json:"signal,omitempty"`
	Page   string `json:"page,omitempty"`
	Count  int    `json:"count,omitempty"`
	// Endpoint and Status describe a failed request, Message a redacted
	// error, Field a form control and Selector a clicked element.
	Endpoint string `json:"endpoint,omitempty"`
	Status   int    `json:"status,omitempty"`
	Message  string `json:"message,omitempty"`
	Field    string `json:"field,omitempty"`
	Selector string `json:"selector,omitempty"`
}
