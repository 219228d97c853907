package chattest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lifelinehq/lifeline/chat"
)

// TestStore checks that a chat.Store keeps every contract documented in
// chat/store.go, including the contract errors (matched with errors.Is) and
// the races the hub relies on: gap-free sequences under concurrent appends,
// idempotent appends, exactly one winner of an Assign race, capacity under
// concurrent Assign, and atomic UpdateConversation.
//
// Each subtest runs in parallel with the others and calls newStore for its
// own store. The suite closes that store in a t.Cleanup it registers right
// after newStore returns, so newStore must not close it, but may register
// cleanups of its own for what lies behind it (a temporary directory, a
// server): those run after the suite's Close. Close must be idempotent; a
// second Close may return nil or chat.ErrClosed.
//
// The store need not be empty: every record has a fresh random ID, and
// listings are checked for the records the subtest wrote, their order and
// that everything listed matches the query.
//
// Times are compared with time.Time.Equal after truncation to milliseconds
// in UTC, so a store may keep milliseconds and any location.
func TestStore(t *testing.T, newStore func(t *testing.T) chat.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s chat.Store)
	}{
		{"Ping", testPing},
		{"Site", testSite},
		{"SitesOrdered", testSitesOrdered},
		{"Visitor", testVisitor},
		{"FindVisitors", testFindVisitors},
		{"UpdateVisitor", testUpdateVisitor},
		{"UpdateVisitorConcurrent", testUpdateVisitorConcurrent},
		{"Agent", testAgent},
		{"AgentsOrdered", testAgentsOrdered},
		{"Session", testSession},
		{"CreateConversation", testCreateConversation},
		{"ConversationByRef", testConversationByRef},
		{"Conversations", testConversations},
		{"ConversationsFollowChanges", testConversationsFollowChanges},
		{"UpdateConversation", testUpdateConversation},
		{"UpdateConversationConcurrent", testUpdateConversationConcurrent},
		{"Assign", testAssign},
		{"AssignRace", testAssignRace},
		{"AssignCapacityRace", testAssignCapacityRace},
		{"AgentLoad", testAgentLoad},
		{"AppendMessage", testAppendMessage},
		{"AppendMessageErrors", testAppendMessageErrors},
		{"AppendMessageConcurrent", testAppendMessageConcurrent},
		{"AppendMessageIdempotent", testAppendMessageIdempotent},
		{"LastMessage", testLastMessage},
		{"Messages", testMessages},
		{"Notes", testNotes},
		{"PutMetaIfAbsent", testPutMetaIfAbsent},
		{"MetaCountersLog", testMetaCountersLog},
		{"Closed", testClosed},
		{"DeleteConversation", testDeleteConversation},
		{"DeleteVisitor", testDeleteVisitor},
		{"Outbox", testOutbox},
		{"OutboxClaimRace", testOutboxClaimRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(func() { closeQuietly(t, "Store", s) })
			tt.fn(t, s)
		})
	}
}

// conv is a valid waiting conversation with fresh IDs.
func conv(site string, created time.Time) chat.Conversation {
	return chat.Conversation{
		ID:        newID("conv"),
		Ref:       newRef(),
		SiteKey:   site,
		VisitorID: newID("vis"),
		Status:    chat.StatusWaiting,
		CreatedAt: created,
		UpdatedAt: created,
	}
}

func mustCreate(t *testing.T, s chat.Store, c chat.Conversation) chat.Conversation {
	t.Helper()
	noErr(t, fmt.Sprintf("CreateConversation(%s)", c.ID), s.CreateConversation(context.Background(), c))
	return c
}

func mustConv(t *testing.T, s chat.Store, id string) chat.Conversation {
	t.Helper()
	c, err := s.Conversation(context.Background(), id)
	noErr(t, fmt.Sprintf("Conversation(%s)", id), err)
	return c
}

// normConv, normSite… return a copy with every time at millisecond
// precision in UTC, so that reflect.DeepEqual compares what a store keeps.
func normConv(c chat.Conversation) chat.Conversation {
	c.CreatedAt, c.UpdatedAt, c.AssignedAt, c.ResolvedAt = ms(c.CreatedAt), ms(c.UpdatedAt), ms(c.AssignedAt), ms(c.ResolvedAt)
	if c.Last != nil {
		last := *c.Last
		last.At = ms(last.At)
		c.Last = &last
	}
	return c
}

func normSite(s chat.Site) chat.Site      { s.CreatedAt = ms(s.CreatedAt); return s }
func normAgent(a chat.Agent) chat.Agent   { a.CreatedAt = ms(a.CreatedAt); return a }
func normMsg(m chat.Message) chat.Message { m.At = ms(m.At); return m }
func normNote(n chat.Note) chat.Note      { n.At = ms(n.At); return n }
func normVisitor(v chat.Visitor) chat.Visitor {
	v.CreatedAt, v.LastSeen = ms(v.CreatedAt), ms(v.LastSeen)
	return v
}

func normSession(s chat.Session) chat.Session {
	s.CreatedAt, s.ExpiresAt = ms(s.CreatedAt), ms(s.ExpiresAt)
	return s
}

// sameAs fails t unless got equals want after norm.
func sameAs[T any](t *testing.T, what string, got, want T, norm func(T) T) {
	t.Helper()
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

func ids(cs []chat.Conversation) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func testPing(t *testing.T, s chat.Store) {
	noErr(t, "Ping", s.Ping(context.Background()))
}

func testSite(t *testing.T, s chat.Store) {
	ctx := context.Background()
	site := chat.Site{
		Key:            newID("site"),
		Name:           "Shop",
		Origins:        []string{"shop.example.com", "*.example.com"},
		IdentitySecret: "s3cret",
		Theme:          "#112233",
		Strings:        map[string]string{"greeting": "Hej", "away": "Borta"},
		CreatedAt:      now(),
	}
	noErr(t, "PutSite", s.PutSite(ctx, site))
	got, err := s.Site(ctx, site.Key)
	noErr(t, "Site", err)
	sameAs(t, "Site", got, site, normSite)

	site.Name, site.Origins = "Shop 2", []string{"new.example.com"}
	noErr(t, "PutSite(replace)", s.PutSite(ctx, site))
	got, err = s.Site(ctx, site.Key)
	noErr(t, "Site", err)
	sameAs(t, "Site after replace", got, site, normSite)

	_, err = s.Site(ctx, newID("site"))
	wantErr(t, "Site(unknown)", err, chat.ErrNotFound)
	wantErr(t, "PutSite(empty key)", s.PutSite(ctx, chat.Site{Name: "x"}), chat.ErrInvalid)
}

func testSitesOrdered(t *testing.T, s chat.Store) {
	ctx := context.Background()
	base := newID("site")
	keys := []string{base + "-b", base + "-c", base + "-a"}
	for _, k := range keys {
		noErr(t, "PutSite", s.PutSite(ctx, chat.Site{Key: k, Name: k, CreatedAt: now()}))
	}
	sites, err := s.Sites(ctx)
	noErr(t, "Sites", err)
	var all, ours []string
	for _, site := range sites {
		all = append(all, site.Key)
		if strings.HasPrefix(site.Key, base) {
			ours = append(ours, site.Key)
		}
	}
	if !slices.IsSorted(all) {
		t.Errorf("Sites keys = %q, want sorted", all)
	}
	if want := []string{base + "-a", base + "-b", base + "-c"}; !slices.Equal(ours, want) {
		t.Errorf("Sites (ours) = %q, want %q", ours, want)
	}
}

func testVisitor(t *testing.T, s chat.Store) {
	ctx := context.Background()
	v := chat.Visitor{
		ID:         newID("vis"),
		SiteKey:    newID("site"),
		ExternalID: "u_42",
		Name:       "Ava",
		Email:      "ava@example.com",
		Verified:   true,
		Attributes: map[string]string{"plan": "pro", "cart": "42.50"},
		Device:     "desktop",
		Locale:     "sv-SE",
		CreatedAt:  now().Add(-time.Hour),
		LastSeen:   now(),
	}
	noErr(t, "PutVisitor", s.PutVisitor(ctx, v))
	got, err := s.Visitor(ctx, v.ID)
	noErr(t, "Visitor", err)
	sameAs(t, "Visitor", got, v, normVisitor)

	v.Name, v.Verified, v.Attributes = "Ava B", false, map[string]string{"plan": "free"}
	noErr(t, "PutVisitor(replace)", s.PutVisitor(ctx, v))
	got, err = s.Visitor(ctx, v.ID)
	noErr(t, "Visitor", err)
	sameAs(t, "Visitor after replace", got, v, normVisitor)

	_, err = s.Visitor(ctx, newID("vis"))
	wantErr(t, "Visitor(unknown)", err, chat.ErrNotFound)
	wantErr(t, "PutVisitor(empty ID)", s.PutVisitor(ctx, chat.Visitor{SiteKey: "x"}), chat.ErrInvalid)
	wantErr(t, "PutVisitor(empty site)", s.PutVisitor(ctx, chat.Visitor{ID: newID("vis")}), chat.ErrInvalid)
}

func testFindVisitors(t *testing.T, s chat.Store) {
	ctx := context.Background()
	siteA, siteB := newID("site"), newID("site")
	email := newID("ava") + "@Example.com"
	ext := newID("ext")
	mk := func(site, email, ext string) chat.Visitor {
		v := chat.Visitor{ID: newID("vis"), SiteKey: site, Email: email, ExternalID: ext, CreatedAt: now(), LastSeen: now()}
		noErr(t, "PutVisitor", s.PutVisitor(ctx, v))
		return v
	}
	v1 := mk(siteA, email, ext)
	v2 := mk(siteA, newID("bob")+"@example.com", newID("ext"))
	v3 := mk(siteB, email, ext) // same email and external ID, other site
	_ = v2

	find := func(q chat.VisitorQuery) []string {
		t.Helper()
		vs, err := s.FindVisitors(ctx, q)
		noErr(t, fmt.Sprintf("FindVisitors(%+v)", q), err)
		var out []string
		for _, v := range vs {
			if v.SiteKey != q.SiteKey {
				t.Errorf("FindVisitors(%+v) returned visitor %s of site %s", q, v.ID, v.SiteKey)
			}
			out = append(out, v.ID)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		q    chat.VisitorQuery
		want []string
	}{
		{"email", chat.VisitorQuery{SiteKey: siteA, Email: email}, []string{v1.ID}},
		{"email other case", chat.VisitorQuery{SiteKey: siteA, Email: strings.ToUpper(email)}, []string{v1.ID}},
		{"email other site", chat.VisitorQuery{SiteKey: siteB, Email: strings.ToLower(email)}, []string{v3.ID}},
		{"external ID", chat.VisitorQuery{SiteKey: siteA, ExternalID: ext}, []string{v1.ID}},
		{"external ID other site", chat.VisitorQuery{SiteKey: siteB, ExternalID: ext}, []string{v3.ID}},
		{"both", chat.VisitorQuery{SiteKey: siteA, Email: email, ExternalID: ext}, []string{v1.ID}},
		{"both, mismatched", chat.VisitorQuery{SiteKey: siteA, Email: email, ExternalID: v2.ExternalID}, nil},
		{"unknown email", chat.VisitorQuery{SiteKey: siteA, Email: "nobody@example.com"}, nil},
		{"unknown site", chat.VisitorQuery{SiteKey: newID("site"), Email: email}, nil},
	}
	for _, tt := range tests {
		if got := find(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("%s: FindVisitors(%+v) = %q, want %q", tt.name, tt.q, got, tt.want)
		}
	}

	// A replaced visitor moves in the indexes.
	newEmail := newID("ava2") + "@example.com"
	v1.Email, v1.ExternalID = newEmail, newID("ext")
	noErr(t, "PutVisitor", s.PutVisitor(ctx, v1))
	if got := find(chat.VisitorQuery{SiteKey: siteA, Email: email}); len(got) != 0 {
		t.Errorf("FindVisitors(old email) = %q, want none", got)
	}
	if got := find(chat.VisitorQuery{SiteKey: siteA, ExternalID: ext}); len(got) != 0 {
		t.Errorf("FindVisitors(old external ID) = %q, want none", got)
	}
	if got, want := find(chat.VisitorQuery{SiteKey: siteA, Email: newEmail}), []string{v1.ID}; !slices.Equal(got, want) {
		t.Errorf("FindVisitors(new email) = %q, want %q", got, want)
	}

	// Limit.
	shared := newID("many") + "@example.com"
	for range 3 {
		mk(siteA, shared, "")
	}
	if got := find(chat.VisitorQuery{SiteKey: siteA, Email: shared, Limit: 2}); len(got) != 2 {
		t.Errorf("FindVisitors(Limit 2) = %d visitors, want 2", len(got))
	}
	if got := find(chat.VisitorQuery{SiteKey: siteA, Email: shared}); len(got) != 3 {
		t.Errorf("FindVisitors(no limit) = %d visitors, want 3", len(got))
	}
}

func testAgent(t *testing.T, s chat.Store) {
	ctx := context.Background()
	a := chat.Agent{
		ID:           newID("agent"),
		Email:        newID("ava") + "@Example.com",
		Name:         "Ava",
		Role:         chat.RoleAdmin,
		PasswordHash: []byte("$2a$10$hash"),
		Capacity:     3,
		CreatedAt:    now(),
	}
	noErr(t, "CreateAgent", s.CreateAgent(ctx, a))
	got, err := s.Agent(ctx, a.ID)
	noErr(t, "Agent", err)
	sameAs(t, "Agent", got, a, normAgent)
	got, err = s.AgentByEmail(ctx, strings.ToUpper(a.Email))
	noErr(t, "AgentByEmail(upper)", err)
	sameAs(t, "AgentByEmail(upper)", got, a, normAgent)
	got, err = s.AgentByEmail(ctx, strings.ToLower(a.Email))
	noErr(t, "AgentByEmail(lower)", err)
	sameAs(t, "AgentByEmail(lower)", got, a, normAgent)

	dupID := a
	dupID.Email = newID("other") + "@example.com"
	wantErr(t, "CreateAgent(same ID)", s.CreateAgent(ctx, dupID), chat.ErrConflict)
	dupEmail := chat.Agent{ID: newID("agent"), Email: strings.ToLower(a.Email), Role: chat.RoleAgent}
	wantErr(t, "CreateAgent(same email, other case)", s.CreateAgent(ctx, dupEmail), chat.ErrConflict)
	_, err = s.Agent(ctx, dupEmail.ID)
	wantErr(t, "Agent(rejected)", err, chat.ErrNotFound)

	_, err = s.Agent(ctx, newID("agent"))
	wantErr(t, "Agent(unknown)", err, chat.ErrNotFound)
	_, err = s.AgentByEmail(ctx, newID("nobody")+"@example.com")
	wantErr(t, "AgentByEmail(unknown)", err, chat.ErrNotFound)
	wantErr(t, "UpdateAgent(unknown)", s.UpdateAgent(ctx, chat.Agent{ID: newID("agent"), Email: newID("x") + "@example.com"}), chat.ErrNotFound)

	// Update: every field, including a new email.
	b := chat.Agent{ID: newID("agent"), Email: newID("bob") + "@example.com", Role: chat.RoleAgent, CreatedAt: now()}
	noErr(t, "CreateAgent(b)", s.CreateAgent(ctx, b))
	oldEmail := b.Email
	b.Email, b.Name, b.Role, b.Disabled, b.Capacity, b.Away, b.PasswordHash = newID("bobby")+"@example.com", "Bobby", chat.RoleAnalyst, true, 7, true, []byte("new")
	noErr(t, "UpdateAgent", s.UpdateAgent(ctx, b))
	got, err = s.Agent(ctx, b.ID)
	noErr(t, "Agent after update", err)
	sameAs(t, "Agent after update", got, b, normAgent)
	got, err = s.AgentByEmail(ctx, b.Email)
	noErr(t, "AgentByEmail(new email)", err)
	if got.ID != b.ID {
		t.Errorf("AgentByEmail(new email).ID = %s, want %s", got.ID, b.ID)
	}
	_, err = s.AgentByEmail(ctx, oldEmail)
	wantErr(t, "AgentByEmail(old email)", err, chat.ErrNotFound)
	// The old email is free again.
	noErr(t, "CreateAgent(freed email)", s.CreateAgent(ctx, chat.Agent{ID: newID("agent"), Email: oldEmail, Role: chat.RoleAgent}))

	// Taking another agent's email conflicts and changes nothing.
	taken := b
	taken.Email = strings.ToUpper(a.Email)
	wantErr(t, "UpdateAgent(taken email)", s.UpdateAgent(ctx, taken), chat.ErrConflict)
	got, err = s.Agent(ctx, b.ID)
	noErr(t, "Agent after conflict", err)
	sameAs(t, "Agent after conflict", got, b, normAgent)
	got, err = s.AgentByEmail(ctx, a.Email)
	noErr(t, "AgentByEmail(a) after conflict", err)
	if got.ID != a.ID {
		t.Errorf("AgentByEmail(a).ID after conflict = %s, want %s", got.ID, a.ID)
	}

	// Changing only the case of one's own email is no conflict.
	b.Email = strings.ToUpper(b.Email)
	noErr(t, "UpdateAgent(own email, other case)", s.UpdateAgent(ctx, b))
}

func testAgentsOrdered(t *testing.T, s chat.Store) {
	ctx := context.Background()
	base := newID("agents")
	emails := []string{base + "-b@example.com", base + "-c@example.com", base + "-a@example.com"}
	for _, e := range emails {
		noErr(t, "CreateAgent", s.CreateAgent(ctx, chat.Agent{ID: newID("agent"), Email: e, Role: chat.RoleAgent}))
	}
	agents, err := s.Agents(ctx)
	noErr(t, "Agents", err)
	var all, ours []string
	for _, a := range agents {
		all = append(all, strings.ToLower(a.Email))
		if strings.HasPrefix(a.Email, base) {
			ours = append(ours, a.Email)
		}
	}
	if !slices.IsSorted(all) {
		t.Errorf("Agents emails = %q, want sorted", all)
	}
	if want := []string{emails[2], emails[0], emails[1]}; !slices.Equal(ours, want) {
		t.Errorf("Agents (ours) = %q, want %q", ours, want)
	}
}

func testSession(t *testing.T, s chat.Store) {
	ctx := context.Background()
	t0 := now()
	sess := chat.Session{ID: newID("sess"), AgentID: newID("agent"), CSRF: "csrf-token", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	noErr(t, "PutSession", s.PutSession(ctx, sess))
	got, err := s.Session(ctx, sess.ID, t0.Add(time.Minute))
	noErr(t, "Session(before expiry)", err)
	sameAs(t, "Session", got, sess, normSession)

	_, err = s.Session(ctx, sess.ID, t0.Add(time.Hour+time.Second))
	wantErr(t, "Session(after expiry)", err, chat.ErrNotFound)
	_, err = s.Session(ctx, newID("sess"), t0)
	wantErr(t, "Session(unknown)", err, chat.ErrNotFound)

	// Replacing extends it.
	sess.ExpiresAt = t0.Add(2 * time.Hour)
	noErr(t, "PutSession(extend)", s.PutSession(ctx, sess))
	_, err = s.Session(ctx, sess.ID, t0.Add(time.Hour+time.Second))
	noErr(t, "Session(after extension)", err)

	noErr(t, "DeleteSession", s.DeleteSession(ctx, sess.ID))
	_, err = s.Session(ctx, sess.ID, t0)
	wantErr(t, "Session(deleted)", err, chat.ErrNotFound)
	noErr(t, "DeleteSession(again)", s.DeleteSession(ctx, sess.ID))
	noErr(t, "DeleteSession(unknown)", s.DeleteSession(ctx, newID("sess")))
}

func testCreateConversation(t *testing.T, s chat.Store) {
	ctx := context.Background()
	t0 := now()
	c := chat.Conversation{
		ID:          newID("conv"),
		Ref:         newRef(),
		SiteKey:     newID("site"),
		VisitorID:   newID("vis"),
		Status:      chat.StatusActive,
		AgentID:     newID("agent"),
		Priority:    3,
		Explanation: "Card declined 3 times on /checkout in 40 s",
		Email:       "ava@example.com",
		Feedback:    "no",
		CreatedAt:   t0.Add(-time.Hour),
		UpdatedAt:   t0,
		AssignedAt:  t0.Add(-time.Minute),
		ResolvedAt:  t0.Add(-30 * time.Minute),
	}
	mustCreate(t, s, c)
	sameAs(t, "Conversation", mustConv(t, s, c.ID), c, normConv)

	dupID := conv(c.SiteKey, t0)
	dupID.ID = c.ID
	wantErr(t, "CreateConversation(same ID)", s.CreateConversation(ctx, dupID), chat.ErrConflict)
	sameAs(t, "Conversation after ID conflict", mustConv(t, s, c.ID), c, normConv)

	dupRef := conv(c.SiteKey, t0)
	dupRef.Ref = strings.ToLower(c.Ref)
	wantErr(t, "CreateConversation(same ref, other case)", s.CreateConversation(ctx, dupRef), chat.ErrConflict)
	_, err := s.Conversation(ctx, dupRef.ID)
	wantErr(t, "Conversation(rejected)", err, chat.ErrNotFound)

	_, err = s.Conversation(ctx, newID("conv"))
	wantErr(t, "Conversation(unknown)", err, chat.ErrNotFound)

	invalid := []struct {
		name string
		edit func(*chat.Conversation)
	}{
		{"empty ID", func(c *chat.Conversation) { c.ID = "" }},
		{"empty ref", func(c *chat.Conversation) { c.Ref = "" }},
		{"empty site", func(c *chat.Conversation) { c.SiteKey = "" }},
		{"empty visitor", func(c *chat.Conversation) { c.VisitorID = "" }},
		{"empty status", func(c *chat.Conversation) { c.Status = "" }},
		{"unknown status", func(c *chat.Conversation) { c.Status = "closed" }},
	}
	for _, tt := range invalid {
		c := conv(newID("site"), t0)
		tt.edit(&c)
		wantErr(t, "CreateConversation("+tt.name+")", s.CreateConversation(ctx, c), chat.ErrInvalid)
	}
}

func testConversationByRef(t *testing.T, s chat.Store) {
	ctx := context.Background()
	c := mustCreate(t, s, conv(newID("site"), now()))
	for _, ref := range []string{c.Ref, strings.ToLower(c.Ref), strings.ToUpper(c.Ref)} {
		got, err := s.ConversationByRef(ctx, ref)
		noErr(t, fmt.Sprintf("ConversationByRef(%q)", ref), err)
		if got.ID != c.ID {
			t.Errorf("ConversationByRef(%q).ID = %s, want %s", ref, got.ID, c.ID)
		}
	}
	_, err := s.ConversationByRef(ctx, newRef())
	wantErr(t, "ConversationByRef(unknown)", err, chat.ErrNotFound)
}

// checkList fails t unless every conversation in got matches q, got is
// newest first, and the conversations of ours that got holds are want in
// that order. Listings may hold conversations of others (a shared backend).
func checkList(t *testing.T, s chat.Store, q chat.ConversationQuery, ours map[string]bool, want []string) {
	t.Helper()
	got, err := s.Conversations(context.Background(), q)
	noErr(t, fmt.Sprintf("Conversations(%+v)", q), err)
	var mine []string
	for i, c := range got {
		if (q.SiteKey != "" && c.SiteKey != q.SiteKey) ||
			(q.VisitorID != "" && c.VisitorID != q.VisitorID) ||
			(q.AgentID != "" && c.AgentID != q.AgentID) ||
			(len(q.Statuses) > 0 && !slices.Contains(q.Statuses, c.Status)) {
			t.Errorf("Conversations(%+v) returned %s (site %s, visitor %s, agent %s, status %s), which does not match",
				q, c.ID, c.SiteKey, c.VisitorID, c.AgentID, c.Status)
		}
		if i > 0 && c.CreatedAt.After(got[i-1].CreatedAt) {
			t.Errorf("Conversations(%+v)[%d] created %v after [%d] at %v: want newest first", q, i, c.CreatedAt, i-1, got[i-1].CreatedAt)
		}
		if ours[c.ID] {
			mine = append(mine, c.ID)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	if len(got) > limit {
		t.Errorf("Conversations(%+v) = %d conversations, want at most %d", q, len(got), limit)
	}
	if !slices.Equal(mine, want) {
		t.Errorf("Conversations(%+v) = %q, want %q", q, mine, want)
	}
}

func testConversations(t *testing.T, s chat.Store) {
	site, other := newID("site"), newID("site")
	visitor, agent1, agent2 := newID("vis"), newID("agent"), newID("agent")
	// Creation times a second apart, in the future, so they are the newest
	// of any backend; created out of order to show sorting is by CreatedAt.
	t0 := now().Add(time.Hour)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	spec := []struct {
		i       int
		site    string
		visitor string
		status  chat.Status
		agent   string
	}{
		{3, site, visitor, chat.StatusWaiting, ""},
		{0, site, visitor, chat.StatusResolved, agent1},
		{5, site, "", chat.StatusActive, agent1},
		{1, site, "", chat.StatusPending, agent2},
		{4, site, "", chat.StatusWaiting, ""},
		{2, other, visitor, chat.StatusWaiting, ""},
		{6, other, "", chat.StatusActive, agent1},
	}
	id := map[int]string{}
	ours := map[string]bool{}
	for _, sp := range spec {
		c := conv(sp.site, at(sp.i))
		if sp.visitor != "" {
			c.VisitorID = sp.visitor
		}
		c.Status, c.AgentID = sp.status, sp.agent
		mustCreate(t, s, c)
		id[sp.i] = c.ID
		ours[c.ID] = true
	}
	list := func(is ...int) []string {
		out := make([]string, len(is))
		for k, i := range is {
			out[k] = id[i]
		}
		return out
	}
	st := func(ss ...chat.Status) []chat.Status { return ss }
	tests := []struct {
		name string
		q    chat.ConversationQuery
		want []string
	}{
		{"site", chat.ConversationQuery{SiteKey: site}, list(5, 4, 3, 1, 0)},
		{"site limit", chat.ConversationQuery{SiteKey: site, Limit: 2}, list(5, 4)},
		{"visitor", chat.ConversationQuery{VisitorID: visitor}, list(3, 2, 0)},
		{"visitor and site", chat.ConversationQuery{VisitorID: visitor, SiteKey: other}, list(2)},
		{"agent", chat.ConversationQuery{AgentID: agent1}, list(6, 5, 0)},
		{"agent and statuses", chat.ConversationQuery{AgentID: agent1, Statuses: st(chat.StatusActive, chat.StatusPending)}, list(6, 5)},
		{"agent and site", chat.ConversationQuery{AgentID: agent1, SiteKey: site}, list(5, 0)},
		{"status waiting", chat.ConversationQuery{Statuses: st(chat.StatusWaiting)}, list(4, 3, 2)},
		{"site and waiting", chat.ConversationQuery{SiteKey: site, Statuses: st(chat.StatusWaiting)}, list(4, 3)},
		{"site and several statuses", chat.ConversationQuery{SiteKey: site, Statuses: st(chat.StatusPending, chat.StatusWaiting, chat.StatusResolved)}, list(4, 3, 1, 0)},
		{"several statuses limit", chat.ConversationQuery{SiteKey: site, Statuses: st(chat.StatusWaiting, chat.StatusActive), Limit: 2}, list(5, 4)},
		{"all", chat.ConversationQuery{Limit: 1000}, list(6, 5, 4, 3, 2, 1, 0)},
		{"unknown visitor", chat.ConversationQuery{VisitorID: newID("vis")}, nil},
		{"unknown agent", chat.ConversationQuery{AgentID: newID("agent")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkList(t, s, tt.q, ours, tt.want)
		})
	}
}

func testConversationsFollowChanges(t *testing.T, s chat.Store) {
	ctx := context.Background()
	site, agent1, agent2 := newID("site"), newID("agent"), newID("agent")
	t0 := now()
	c := mustCreate(t, s, conv(site, t0))
	ours := map[string]bool{c.ID: true}
	one := []string{c.ID}
	waiting := chat.ConversationQuery{SiteKey: site, Statuses: []chat.Status{chat.StatusWaiting}}
	active := chat.ConversationQuery{SiteKey: site, Statuses: []chat.Status{chat.StatusActive}}
	resolved := chat.ConversationQuery{SiteKey: site, Statuses: []chat.Status{chat.StatusResolved}}
	byAgent1 := chat.ConversationQuery{AgentID: agent1}
	byAgent2 := chat.ConversationQuery{AgentID: agent2}

	checkList(t, s, waiting, ours, one)
	checkList(t, s, active, ours, nil)

	_, err := s.Assign(ctx, c.ID, agent1, 0, t0)
	noErr(t, "Assign", err)
	checkList(t, s, waiting, ours, nil)
	checkList(t, s, active, ours, one)
	checkList(t, s, byAgent1, ours, one)

	// Transfer.
	_, err = s.UpdateConversation(ctx, c.ID, func(c *chat.Conversation) error { c.AgentID = agent2; return nil })
	noErr(t, "UpdateConversation(transfer)", err)
	checkList(t, s, byAgent1, ours, nil)
	checkList(t, s, byAgent2, ours, one)

	_, err = s.UpdateConversation(ctx, c.ID, func(c *chat.Conversation) error {
		c.Status, c.ResolvedAt = chat.StatusResolved, t0
		return nil
	})
	noErr(t, "UpdateConversation(resolve)", err)
	checkList(t, s, active, ours, nil)
	checkList(t, s, resolved, ours, one)

	// Reopened to the queue.
	_, err = s.UpdateConversation(ctx, c.ID, func(c *chat.Conversation) error {
		c.Status, c.AgentID = chat.StatusWaiting, ""
		return nil
	})
	noErr(t, "UpdateConversation(requeue)", err)
	checkList(t, s, resolved, ours, nil)
	checkList(t, s, waiting, ours, one)
	checkList(t, s, byAgent2, ours, nil)
	checkList(t, s, chat.ConversationQuery{SiteKey: site}, ours, one)
}

func testUpdateConversation(t *testing.T, s chat.Store) {
	ctx := context.Background()
	t0 := now()
	c := mustCreate(t, s, conv(newID("site"), t0))

	want := c
	want.Priority, want.Explanation, want.Email, want.Feedback, want.VisitorRead, want.AgentRead = 2, "Coupon rejected twice", "ava@example.com", "yes", 7, 6
	want.Status, want.AgentID, want.UpdatedAt, want.AssignedAt = chat.StatusPending, newID("agent"), t0.Add(time.Second), t0.Add(time.Second)
	got, err := s.UpdateConversation(ctx, c.ID, func(cur *chat.Conversation) error {
		sameAs(t, "UpdateConversation fn argument", *cur, c, normConv)
		cur.Priority, cur.Explanation, cur.Email, cur.Feedback, cur.VisitorRead, cur.AgentRead = want.Priority, want.Explanation, want.Email, want.Feedback, want.VisitorRead, want.AgentRead
		cur.Status, cur.AgentID, cur.UpdatedAt, cur.AssignedAt = want.Status, want.AgentID, want.UpdatedAt, want.AssignedAt
		return nil
	})
	noErr(t, "UpdateConversation", err)
	sameAs(t, "UpdateConversation result", got, want, normConv)
	sameAs(t, "Conversation after update", mustConv(t, s, c.ID), want, normConv)

	// An error from fn aborts: it is returned and nothing is written.
	errStop := errors.New("stop")
	_, err = s.UpdateConversation(ctx, c.ID, func(cur *chat.Conversation) error {
		cur.Priority, cur.Status = 99, chat.StatusResolved
		return errStop
	})
	wantErr(t, "UpdateConversation(fn error)", err, errStop)
	sameAs(t, "Conversation after aborted update", mustConv(t, s, c.ID), want, normConv)
	_, err = s.UpdateConversation(ctx, c.ID, func(cur *chat.Conversation) error {
		return fmt.Errorf("wrapped: %w", chat.ErrConflict)
	})
	wantErr(t, "UpdateConversation(fn ErrConflict)", err, chat.ErrConflict)

	// The update keeps the messages' LastSeq.
	_, _, err = s.AppendMessage(ctx, chat.Message{ConversationID: c.ID, ClientID: newID("m"), Text: "hi"})
	noErr(t, "AppendMessage", err)
	got, err = s.UpdateConversation(ctx, c.ID, func(cur *chat.Conversation) error { cur.Priority++; return nil })
	noErr(t, "UpdateConversation", err)
	if got.LastSeq != 1 {
		t.Errorf("UpdateConversation after one append: LastSeq = %d, want 1", got.LastSeq)
	}

	called := false
	_, err = s.UpdateConversation(ctx, newID("conv"), func(*chat.Conversation) error { called = true; return nil })
	wantErr(t, "UpdateConversation(unknown)", err, chat.ErrNotFound)
	if called {
		t.Errorf("UpdateConversation(unknown) called fn")
	}
}

func testUpdateConversationConcurrent(t *testing.T, s chat.Store) {
	ctx := context.Background()
	c := mustCreate(t, s, conv(newID("site"), now()))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.UpdateConversation(ctx, c.ID, func(cur *chat.Conversation) error {
				cur.Priority++
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		noErr(t, "UpdateConversation", err)
	}
	if got := mustConv(t, s, c.ID).Priority; got != n {
		t.Errorf("Priority after %d concurrent increments = %d, want %d", n, got, n)
	}
}

func testAssign(t *testing.T, s chat.Store) {
	ctx := context.Background()
	t0 := now()
	agent := newID("agent")
	c := mustCreate(t, s, conv(newID("site"), t0))
	at := t0.Add(5 * time.Second)
	got, err := s.Assign(ctx, c.ID, agent, 0, at)
	noErr(t, "Assign", err)
	if got.Status != chat.StatusActive || got.AgentID != agent || !ms(got.AssignedAt).Equal(at) {
		t.Errorf("Assign = status %s, agent %s, assigned %v; want %s, %s, %v", got.Status, got.AgentID, got.AssignedAt, chat.StatusActive, agent, at)
	}
	stored := mustConv(t, s, c.ID)
	if stored.Status != chat.StatusActive || stored.AgentID != agent || !ms(stored.AssignedAt).Equal(at) {
		t.Errorf("Conversation after Assign = status %s, agent %s, assigned %v; want %s, %s, %v", stored.Status, stored.AgentID, stored.AssignedAt, chat.StatusActive, agent, at)
	}

	_, err = s.Assign(ctx, c.ID, newID("agent"), 0, at)
	wantErr(t, "Assign(active)", err, chat.ErrConflict)
	_, err = s.Assign(ctx, c.ID, agent, 0, at)
	wantErr(t, "Assign(active, same agent)", err, chat.ErrConflict)
	if got := mustConv(t, s, c.ID).AgentID; got != agent {
		t.Errorf("AgentID after refused Assign = %s, want %s", got, agent)
	}
	for _, st := range []chat.Status{chat.StatusPending, chat.StatusResolved} {
		c := conv(newID("site"), t0)
		c.Status = st
		mustCreate(t, s, c)
		_, err = s.Assign(ctx, c.ID, agent, 0, at)
		wantErr(t, fmt.Sprintf("Assign(%s)", st), err, chat.ErrConflict)
	}
	_, err = s.Assign(ctx, newID("conv"), agent, 0, at)
	wantErr(t, "Assign(unknown)", err, chat.ErrNotFound)
}

func testAssignRace(t *testing.T, s chat.Store) {
	ctx := context.Background()
	c := mustCreate(t, s, conv(newID("site"), now()))
	const n = 20
	type result struct {
		agent string
		err   error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range n {
		agent := newID("agent")
		wg.Go(func() {
			_, err := s.Assign(ctx, c.ID, agent, 0, now())
			results <- result{agent, err}
		})
	}
	wg.Wait()
	close(results)
	var winners []string
	for r := range results {
		switch {
		case r.err == nil:
			winners = append(winners, r.agent)
		case !errors.Is(r.err, chat.ErrConflict):
			t.Errorf("Assign lost with %v, want %v", r.err, chat.ErrConflict)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d of %d racing Assign calls won, want exactly 1", len(winners), n)
	}
	if got := mustConv(t, s, c.ID); got.AgentID != winners[0] || got.Status != chat.StatusActive {
		t.Errorf("Conversation after race = agent %s, status %s; want %s, %s", got.AgentID, got.Status, winners[0], chat.StatusActive)
	}
	load, err := s.AgentLoad(ctx, winners[0])
	noErr(t, "AgentLoad", err)
	if load != 1 {
		t.Errorf("AgentLoad(winner) = %d, want 1", load)
	}
}

func testAssignCapacityRace(t *testing.T, s chat.Store) {
	ctx := context.Background()
	site, agent := newID("site"), newID("agent")
	const n, capacity = 10, 3
	var convs []chat.Conversation
	for range n {
		convs = append(convs, mustCreate(t, s, conv(site, now())))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, c := range convs {
		wg.Go(func() {
			_, errs[i] = s.Assign(ctx, c.ID, agent, capacity, now())
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			if got := mustConv(t, s, convs[i].ID); got.Status != chat.StatusActive || got.AgentID != agent {
				t.Errorf("won conversation = status %s, agent %s; want active, %s", got.Status, got.AgentID, agent)
			}
		case errors.Is(err, chat.ErrCapacity):
			if got := mustConv(t, s, convs[i].ID); got.Status != chat.StatusWaiting || got.AgentID != "" {
				t.Errorf("refused conversation = status %s, agent %q; want waiting, no agent", got.Status, got.AgentID)
			}
		default:
			t.Errorf("Assign = %v, want nil or %v", err, chat.ErrCapacity)
		}
	}
	if won != capacity {
		t.Errorf("%d of %d concurrent Assign calls won with capacity %d, want %d", won, n, capacity, capacity)
	}
	load, err := s.AgentLoad(ctx, agent)
	noErr(t, "AgentLoad", err)
	if load != capacity {
		t.Errorf("AgentLoad = %d, want %d", load, capacity)
	}
}

func testAgentLoad(t *testing.T, s chat.Store) {
	ctx := context.Background()
	site, agent := newID("site"), newID("agent")
	wantLoad := func(what string, want int) {
		t.Helper()
		got, err := s.AgentLoad(ctx, agent)
		noErr(t, "AgentLoad", err)
		if got != want {
			t.Errorf("%s: AgentLoad = %d, want %d", what, got, want)
		}
	}
	wantLoad("new agent", 0)

	c1 := mustCreate(t, s, conv(site, now()))
	c2 := mustCreate(t, s, conv(site, now()))
	for _, c := range []chat.Conversation{c1, c2} {
		_, err := s.Assign(ctx, c.ID, agent, 2, now())
		noErr(t, "Assign", err)
	}
	wantLoad("two assigned", 2)
	c3 := mustCreate(t, s, conv(site, now()))
	_, err := s.Assign(ctx, c3.ID, agent, 2, now())
	wantErr(t, "Assign(at capacity)", err, chat.ErrCapacity)

	set := func(id string, st chat.Status) {
		t.Helper()
		_, err := s.UpdateConversation(ctx, id, func(c *chat.Conversation) error { c.Status = st; return nil })
		noErr(t, fmt.Sprintf("UpdateConversation(%s)", st), err)
	}
	set(c1.ID, chat.StatusPending)
	wantLoad("one pending, one active", 2)
	set(c1.ID, chat.StatusResolved)
	wantLoad("one resolved", 1)
	_, err = s.Assign(ctx, c3.ID, agent, 2, now())
	noErr(t, "Assign(after resolve)", err)
	wantLoad("refilled", 2)
	set(c1.ID, chat.StatusActive) // "no" to "Did this solve it?" reopens
	wantLoad("reopened active", 3)
	set(c2.ID, chat.StatusResolved)
	set(c2.ID, chat.StatusPending)
	wantLoad("reopened pending", 3)

	// Capacity 0 means no limit.
	c4 := mustCreate(t, s, conv(site, now()))
	_, err = s.Assign(ctx, c4.ID, agent, 0, now())
	noErr(t, "Assign(capacity 0)", err)
	wantLoad("unlimited", 4)

	// A conversation created active with an agent counts too.
	direct := conv(site, now())
	direct.Status, direct.AgentID = chat.StatusActive, agent
	mustCreate(t, s, direct)
	wantLoad("created active", 5)

	// Back to the queue without an agent.
	_, err = s.UpdateConversation(ctx, c4.ID, func(c *chat.Conversation) error {
		c.Status, c.AgentID = chat.StatusWaiting, ""
		return nil
	})
	noErr(t, "UpdateConversation(requeue)", err)
	wantLoad("requeued", 4)
}

func testAppendMessage(t *testing.T, s chat.Store) {
	ctx := context.Background()
	t0 := now()
	c := mustCreate(t, s, conv(newID("site"), t0.Add(-time.Hour)))
	at := t0.Add(-time.Minute)
	in := []chat.Message{
		{ConversationID: c.ID, ClientID: newID("m"), Author: chat.Author{Kind: chat.AuthorVisitor, ID: c.VisitorID}, Text: "Hej! Kortet nekas 💳", At: at},
		{ConversationID: c.ID, ClientID: newID("m"), Author: chat.Author{Kind: chat.AuthorAgent, ID: newID("agent"), Name: "Ava"}, Text: "Let me look.\n<b>not html</b>", At: at.Add(time.Second)},
		{ConversationID: c.ID, ClientID: newID("m"), Author: chat.Author{Kind: chat.AuthorSystem}, Text: "", At: at.Add(2 * time.Second)},
	}
	for i, m := range in {
		got, created, err := s.AppendMessage(ctx, m)
		noErr(t, "AppendMessage", err)
		if !created {
			t.Errorf("AppendMessage(%d) created = false, want true", i)
		}
		m.Seq = int64(i + 1)
		sameAs(t, fmt.Sprintf("AppendMessage(%d)", i), got, m, normMsg)
		in[i] = m
	}
	msgs, err := s.Messages(ctx, c.ID, 0, 0)
	noErr(t, "Messages", err)
	if len(msgs) != len(in) {
		t.Fatalf("len(Messages) = %d, want %d", len(msgs), len(in))
	}
	for i := range in {
		sameAs(t, fmt.Sprintf("Messages[%d]", i), msgs[i], in[i], normMsg)
	}
	got := mustConv(t, s, c.ID)
	if got.LastSeq != 3 {
		t.Errorf("LastSeq = %d, want 3", got.LastSeq)
	}
	if ms(got.UpdatedAt).Before(ms(in[2].At)) {
		t.Errorf("UpdatedAt = %v, want not before the last message at %v", got.UpdatedAt, in[2].At)
	}

	// A zero At is set to now.
	before := time.Now().Add(-time.Second)
	m, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: c.ID, ClientID: newID("m"), Text: "now"})
	noErr(t, "AppendMessage(zero At)", err)
	if m.Seq != 4 || m.At.Before(before) || m.At.After(time.Now().Add(time.Second)) {
		t.Errorf("AppendMessage(zero At) = seq %d at %v, want seq 4 at about now", m.Seq, m.At)
	}
	msgs, err = s.Messages(ctx, c.ID, 3, 0)
	noErr(t, "Messages(after 3)", err)
	if len(msgs) != 1 || !ms(msgs[0].At).Equal(ms(m.At)) {
		t.Errorf("Messages(after 3) = %+v, want one message at %v", msgs, m.At)
	}
	if got := mustConv(t, s, c.ID); ms(got.UpdatedAt).Before(ms(m.At)) {
		t.Errorf("UpdatedAt = %v, want not before %v", got.UpdatedAt, m.At)
	}
}

func testAppendMessageErrors(t *testing.T, s chat.Store) {
	ctx := context.Background()
	c := mustCreate(t, s, conv(newID("site"), now()))
	unknown := newID("conv")
	_, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: unknown, ClientID: newID("m"), Text: "x"})
	wantErr(t, "AppendMessage(unknown conversation)", err, chat.ErrNotFound)
	_, err = s.Messages(ctx, unknown, 0, 0)
	wantErr(t, "Messages(unknown conversation)", err, chat.ErrNotFound)
	_, _, err = s.AppendMessage(ctx, chat.Message{ConversationID: c.ID, Text: "x"})
	wantErr(t, "AppendMessage(empty ClientID)", err, chat.ErrInvalid)
	_, _, err = s.AppendMessage(ctx, chat.Message{ClientID: newID("m"), Text: "x"})
	wantErr(t, "AppendMessage(empty ConversationID)", err, chat.ErrInvalid)
	// Nothing was stored by the failures.
	msgs, err := s.Messages(ctx, c.ID, 0, 0)
	noErr(t, "Messages", err)
	if len(msgs) != 0 || mustConv(t, s, c.ID).LastSeq != 0 {
		t.Errorf("after failed appends: %d messages, LastSeq %d; want none, 0", len(msgs), mustConv(t, s, c.ID).LastSeq)
	}
	_, err = s.Conversation(ctx, unknown)
	wantErr(t, "Conversation(unknown) after append to it", err, chat.ErrNotFound)
}

func testAppendMessageConcurrent(t *testing.T, s chat.Store) {
	ctx := context.Background()
	c := mustCreate(t, s, conv(newID("site"), now()))
	const writers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	var mu sync.Mutex
	seqs := map[int64]string{}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				text := fmt.Sprintf("w%d-%d", w, i)
				m, created, err := s.AppendMessage(ctx, chat.Message{ConversationID: c.ID, ClientID: newID("m"), Text: text})
				if err == nil && !created {
					err = fmt.Errorf("AppendMessage(%s) created = false, want true", text)
				}
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				if prev, dup := seqs[m.Seq]; dup {
					errs <- fmt.Errorf("seq %d given to %s and %s", m.Seq, prev, text)
				}
				seqs[m.Seq] = text
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	const n = writers * each
	msgs, err := s.Messages(ctx, c.ID, 0, 0)
	noErr(t, "Messages", err)
	if len(msgs) != n {
		t.Fatalf("len(Messages) = %d, want %d", len(msgs), n)
	}
	last := map[int]int{} // writer -> last i seen, to check each writer's order
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("Messages[%d].Seq = %d, want %d", i, m.Seq, i+1)
		}
		if seqs[m.Seq] != m.Text {
			t.Errorf("Messages[%d].Text = %q, want %q (as acknowledged)", i, m.Text, seqs[m.Seq])
		}
		var w, k int
		if _, err := fmt.Sscanf(m.Text, "w%d-%d", &w, &k); err != nil {
			t.Fatalf("Messages[%d].Text = %q: %v", i, m.Text, err)
		}
		if prev, ok := last[w]; ok && k <= prev {
			t.Errorf("writer %d: message %d stored after %d", w, k, prev)
		}
		last[w] = k
	}
	if got := mustConv(t, s, c.ID).LastSeq; got != n {
		t.Errorf("LastSeq = %d, want %d", got, n)
	}
}

func testAppendMessageIdempotent(t *testing.T, s chat.Store) {
	ctx := context.Background()
	c := mustCreate(t, s, conv(newID("site"), now()))
	_, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: c.ID, ClientID: newID("m"), Text: "first"})
	noErr(t, "AppendMessage", err)

	clientID := newID("m")
	const n = 10
	type result struct {
		m       chat.Message
		created bool
		err     error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, created, err := s.AppendMessage(ctx, chat.Message{ConversationID: c.ID, ClientID: clientID, Text: "same"})
			results[i] = result{m, created, err}
		})
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		noErr(t, "AppendMessage(same ClientID)", r.err)
		if r.created {
			created++
		}
		if r.m.Seq != results[0].m.Seq || r.m.ClientID != clientID || r.m.Text != "same" {
			t.Errorf("AppendMessage(same ClientID) = seq %d, client %s, text %q; want seq %d, %s, %q",
				r.m.Seq, r.m.ClientID, r.m.Text, results[0].m.Seq, clientID, "same")
		}
	}
	if created != 1 {
		t.Errorf("%d of %d concurrent appends with one ClientID created a message, want 1", created, n)
	}
	if results[0].m.Seq != 2 {
		t.Errorf("Seq = %d, want 2", results[0].m.Seq)
	}

	// A later retry, even with other content, returns the stored message.
	retry, ok, err := s.AppendMessage(ctx, chat.Message{ConversationID: c.ID, ClientID: clientID, Text: "edited"})
	noErr(t, "AppendMessage(retry)", err)
	if ok || retry.Seq != 2 || retry.Text != "same" {
		t.Errorf("AppendMessage(retry) = seq %d, text %q, created %v; want 2, %q, false", retry.Seq, retry.Text, ok, "same")
	}
	msgs, err := s.Messages(ctx, c.ID, 0, 0)
	noErr(t, "Messages", err)
	if len(msgs) != 2 {
		t.Errorf("len(Messages) = %d, want 2 (stored once)", len(msgs))
	}
	if got := mustConv(t, s, c.ID).LastSeq; got != 2 {
		t.Errorf("LastSeq = %d, want 2", got)
	}

	// The same ClientID in another conversation is another message.
	other := mustCreate(t, s, conv(c.SiteKey, now()))
	m, ok, err := s.AppendMessage(ctx, chat.Message{ConversationID: other.ID, ClientID: clientID, Text: "other"})
	noErr(t, "AppendMessage(other conversation)", err)
	if !ok || m.Seq != 1 || m.Text != "other" {
		t.Errorf("AppendMessage(same ClientID, other conversation) = seq %d, text %q, created %v; want 1, %q, true", m.Seq, m.Text, ok, "other")
	}
}

func testMessages(t *testing.T, s chat.Store) {
	ctx := context.Background()
	c := mustCreate(t, s, conv(newID("site"), now()))
	const n = 10
	for i := range n {
		_, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: c.ID, ClientID: newID("m"), Text: fmt.Sprint(i + 1)})
		noErr(t, "AppendMessage", err)
	}
	empty := mustCreate(t, s, conv(c.SiteKey, now()))
	tests := []struct {
		conv         string
		after        int64
		limit        int
		first, count int64
	}{
		{c.ID, 0, 0, 1, n},
		{c.ID, 0, -1, 1, n},
		{c.ID, 0, 3, 1, 3},
		{c.ID, 2, 3, 3, 3},
		{c.ID, 7, 0, 8, 3},
		{c.ID, 7, 5, 8, 3},
		{c.ID, 9, 1, 10, 1},
		{c.ID, n, 0, 0, 0},
		{c.ID, n + 5, 10, 0, 0},
		{empty.ID, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		msgs, err := s.Messages(ctx, tt.conv, tt.after, tt.limit)
		noErr(t, "Messages", err)
		var got []int64
		for _, m := range msgs {
			got = append(got, m.Seq)
			if m.Text != fmt.Sprint(m.Seq) || m.ConversationID != tt.conv {
				t.Errorf("Messages(after %d, limit %d): seq %d has text %q, conversation %s", tt.after, tt.limit, m.Seq, m.Text, m.ConversationID)
			}
		}
		var want []int64
		for i := range tt.count {
			want = append(want, tt.first+i)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Messages(after %d, limit %d) seqs = %v, want %v", tt.after, tt.limit, got, want)
		}
	}
}

func testNotes(t *testing.T, s chat.Store) {
	ctx := context.Background()
	c := mustCreate(t, s, conv(newID("site"), now()))
	other := mustCreate(t, s, conv(c.SiteKey, now()))
	t0 := now()
	var want []chat.Note
	for i := range 3 {
		n := chat.Note{ID: newID("note"), ConversationID: c.ID, AgentID: newID("agent"), Text: fmt.Sprintf("note %d: VIP customer", i), At: t0.Add(time.Duration(i) * time.Second)}
		noErr(t, "AddNote", s.AddNote(ctx, n))
		want = append(want, n)
	}
	noErr(t, "AddNote(other)", s.AddNote(ctx, chat.Note{ID: newID("note"), ConversationID: other.ID, Text: "other", At: t0}))
	got, err := s.Notes(ctx, c.ID)
	noErr(t, "Notes", err)
	if len(got) != len(want) {
		t.Fatalf("len(Notes) = %d, want %d", len(got), len(want))
	}
	for i := range want {
		sameAs(t, fmt.Sprintf("Notes[%d]", i), got[i], want[i], normNote)
	}
	wantErr(t, "AddNote(unknown conversation)", s.AddNote(ctx, chat.Note{ID: newID("note"), ConversationID: newID("conv"), Text: "x", At: t0}), chat.ErrNotFound)
	fresh := mustCreate(t, s, conv(c.SiteKey, now()))
	got, err = s.Notes(ctx, fresh.ID)
	noErr(t, "Notes(none)", err)
	if len(got) != 0 {
		t.Errorf("Notes(none) = %+v, want none", got)
	}
}

func testPutMetaIfAbsent(t *testing.T, s chat.Store) {
	ctx := context.Background()
	k := newID("meta")
	const n = 10
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = s.PutMetaIfAbsent(ctx, k, []byte(fmt.Sprintf("value-%d", i)))
		})
	}
	wg.Wait()
	offered := map[string]bool{}
	for i := range n {
		offered[fmt.Sprintf("value-%d", i)] = true
	}
	for i := range n {
		noErr(t, "PutMetaIfAbsent", errs[i])
		if string(got[i]) != string(got[0]) {
			t.Errorf("PutMetaIfAbsent racer %d got %q, racer 0 got %q: want one value", i, got[i], got[0])
		}
	}
	if !offered[string(got[0])] {
		t.Errorf("PutMetaIfAbsent = %q, want one of %q", got[0], slices.Sorted(maps.Keys(offered)))
	}
	later, err := s.PutMetaIfAbsent(ctx, k, []byte("later"))
	noErr(t, "PutMetaIfAbsent(later)", err)
	if string(later) != string(got[0]) {
		t.Errorf("PutMetaIfAbsent(later) = %q, want %q", later, got[0])
	}
	bin := []byte{0, 1, 2, 255}
	got2, err := s.PutMetaIfAbsent(ctx, newID("meta"), bin)
	noErr(t, "PutMetaIfAbsent(binary)", err)
	if string(got2) != string(bin) {
		t.Errorf("PutMetaIfAbsent(binary) = %v, want %v", got2, bin)
	}
}

func testClosed(t *testing.T, s chat.Store) {
	ctx := context.Background()
	c := mustCreate(t, s, conv(newID("site"), now()))
	noErr(t, "Close", s.Close())
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"PutSite", func() error { return s.PutSite(ctx, chat.Site{Key: newID("site")}) }},
		{"Site", func() error { _, err := s.Site(ctx, "x"); return err }},
		{"Sites", func() error { _, err := s.Sites(ctx); return err }},
		{"PutVisitor", func() error { return s.PutVisitor(ctx, chat.Visitor{ID: newID("vis"), SiteKey: "x"}) }},
		{"Visitor", func() error { _, err := s.Visitor(ctx, "x"); return err }},
		{"FindVisitors", func() error { _, err := s.FindVisitors(ctx, chat.VisitorQuery{SiteKey: "x"}); return err }},
		{"CreateAgent", func() error {
			return s.CreateAgent(ctx, chat.Agent{ID: newID("agent"), Email: newID("a") + "@example.com"})
		}},
		{"UpdateAgent", func() error { return s.UpdateAgent(ctx, chat.Agent{ID: "x", Email: "x@example.com"}) }},
		{"Agent", func() error { _, err := s.Agent(ctx, "x"); return err }},
		{"AgentByEmail", func() error { _, err := s.AgentByEmail(ctx, "x@example.com"); return err }},
		{"Agents", func() error { _, err := s.Agents(ctx); return err }},
		{"PutSession", func() error { return s.PutSession(ctx, chat.Session{ID: newID("sess"), ExpiresAt: now()}) }},
		{"Session", func() error { _, err := s.Session(ctx, "x", now()); return err }},
		{"DeleteSession", func() error { return s.DeleteSession(ctx, "x") }},
		{"CreateConversation", func() error { return s.CreateConversation(ctx, conv("x", now())) }},
		{"Conversation", func() error { _, err := s.Conversation(ctx, c.ID); return err }},
		{"ConversationByRef", func() error { _, err := s.ConversationByRef(ctx, c.Ref); return err }},
		{"Conversations", func() error { _, err := s.Conversations(ctx, chat.ConversationQuery{}); return err }},
		{"UpdateConversation", func() error {
			_, err := s.UpdateConversation(ctx, c.ID, func(*chat.Conversation) error { return nil })
			return err
		}},
		{"Assign", func() error { _, err := s.Assign(ctx, c.ID, "agent", 0, now()); return err }},
		{"AgentLoad", func() error { _, err := s.AgentLoad(ctx, "agent"); return err }},
		{"AppendMessage", func() error {
			_, _, err := s.AppendMessage(ctx, chat.Message{ConversationID: c.ID, ClientID: newID("m")})
			return err
		}},
		{"Messages", func() error { _, err := s.Messages(ctx, c.ID, 0, 0); return err }},
		{"AddNote", func() error { return s.AddNote(ctx, chat.Note{ID: newID("note"), ConversationID: c.ID}) }},
		{"Notes", func() error { _, err := s.Notes(ctx, c.ID); return err }},
		{"PutMetaIfAbsent", func() error { _, err := s.PutMetaIfAbsent(ctx, "k", []byte("v")); return err }},
	}
	for _, call := range calls {
		wantErr(t, call.name+" after Close", call.call(), chat.ErrClosed)
	}
	if err := s.Close(); err != nil && !errors.Is(err, chat.ErrClosed) {
		t.Errorf("second Close = %v, want nil or %v", err, chat.ErrClosed)
	}
}

func testMetaCountersLog(t *testing.T, s chat.Store) {
	ctx := context.Background()
	k := newID("meta")
	if _, err := s.Meta(ctx, k); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("Meta of an absent key: err = %v, want ErrNotFound", err)
	}
	for _, v := range []string{"one", "two"} {
		if err := s.PutMeta(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Meta(ctx, k); err != nil || string(got) != v {
			t.Fatalf("Meta = %q, %v; want %q", got, err, v)
		}
	}
	if err := s.PutMeta(ctx, "", nil); !errors.Is(err, chat.ErrInvalid) {
		t.Errorf("PutMeta with an empty key: err = %v, want ErrInvalid", err)
	}
	for range 2 { // deleting an absent key is fine too
		if err := s.DeleteMeta(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Meta(ctx, k); !errors.Is(err, chat.ErrNotFound) {
			t.Fatalf("Meta after DeleteMeta: err = %v, want ErrNotFound", err)
		}
	}

	set := newID("counters")
	if got, err := s.Counters(ctx, set); err != nil || len(got) != 0 {
		t.Fatalf("Counters of a new set = %v, %v; want empty", got, err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := s.AddCounters(ctx, set, map[string]int64{"fired": 1, "offered": 2}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.Counters(ctx, set)
	if err != nil || got["fired"] != 20 || got["offered"] != 40 || len(got) != 2 {
		t.Fatalf("Counters after 20 concurrent adds = %v, %v; want fired 20, offered 40", got, err)
	}

	log := newID("log")
	for i := range 5 {
		if err := s.AppendLog(ctx, log, []byte{byte('a' + i)}, 3); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := s.Log(ctx, log, 0)
	if err != nil {
		t.Fatal(err)
	}
	var str string
	for _, e := range entries {
		str += string(e)
	}
	if str != "edc" {
		t.Fatalf("Log = %q, want the newest three, newest first: \"edc\"", str)
	}
	if entries, _ := s.Log(ctx, log, 2); len(entries) != 2 {
		t.Fatalf("Log with limit 2 returned %d entries", len(entries))
	}
}

// testLastMessage checks that a conversation read alone or in a list
// carries its last message's preview, which appends move on, a repeated
// append leaves alone, and a record update cannot change.
func testLastMessage(t *testing.T, s chat.Store) {
	ctx := context.Background()
	t0 := now()
	site := newID("site")
	c := mustCreate(t, s, conv(site, t0.Add(-time.Hour)))
	if got := mustConv(t, s, c.ID).Last; got != nil {
		t.Fatalf("Last before any message = %+v, want nil", got)
	}
	first := chat.Message{ConversationID: c.ID, ClientID: newID("m"), Author: chat.Author{Kind: chat.AuthorVisitor, ID: c.VisitorID},
		Text: "Hello,\n\n  my card was declined", At: t0.Add(-time.Minute)}
	_, _, err := s.AppendMessage(ctx, first)
	noErr(t, "AppendMessage(first)", err)
	want := chat.MessagePreview{Author: chat.AuthorVisitor, Text: "Hello, my card was declined", At: first.At}
	check := func(when string, want chat.MessagePreview) {
		t.Helper()
		got := mustConv(t, s, c.ID)
		if got.Last == nil {
			t.Fatalf("%s: Last = nil, want %+v", when, want)
		}
		sameAs(t, when+": Last", *got.Last, want, func(p chat.MessagePreview) chat.MessagePreview { p.At = ms(p.At); return p })
		list, err := s.Conversations(ctx, chat.ConversationQuery{SiteKey: site})
		noErr(t, when+": Conversations", err)
		if len(list) != 1 || list[0].Last == nil || list[0].Last.Text != want.Text {
			t.Fatalf("%s: listed conversations = %+v, want ours with Last %q", when, list, want.Text)
		}
	}
	check("after the first message", want)

	long := chat.Message{ConversationID: c.ID, ClientID: newID("m"), Author: chat.Author{Kind: chat.AuthorAgent, ID: newID("agent"), Name: "Ava"},
		Text: strings.Repeat("Let me look. ", 40), At: t0.Add(-30 * time.Second)}
	_, _, err = s.AppendMessage(ctx, long)
	noErr(t, "AppendMessage(long)", err)
	agentWant := *chat.PreviewOf(long)
	if n := utf8.RuneCountInString(agentWant.Text); n > chat.PreviewRunes || !strings.HasSuffix(agentWant.Text, "…") {
		t.Fatalf("PreviewOf(long) = %q (%d code points), want it cut to %d with an ellipsis", agentWant.Text, n, chat.PreviewRunes)
	}
	check("after a long agent message", agentWant)

	_, created, err := s.AppendMessage(ctx, first)
	noErr(t, "AppendMessage(first again)", err)
	if created {
		t.Fatal("a repeated append created a message")
	}
	check("after a repeated append", agentWant)

	_, err = s.UpdateConversation(ctx, c.ID, func(cv *chat.Conversation) error {
		cv.Status = chat.StatusPending
		cv.Last = &chat.MessagePreview{Text: "forged"}
		return nil
	})
	noErr(t, "UpdateConversation", err)
	check("after a record update", agentWant)
}

func testUpdateVisitor(t *testing.T, s chat.Store) {
	ctx := context.Background()
	site := newID("site")
	v := chat.Visitor{ID: newID("vis"), SiteKey: site, Email: "old@example.com", CreatedAt: now().Add(-time.Hour)}
	noErr(t, "PutVisitor", s.PutVisitor(ctx, v))

	got, err := s.UpdateVisitor(ctx, v.ID, func(cur *chat.Visitor) error {
		cur.ExternalID, cur.Email, cur.Verified = "u_7", "new@example.com", true
		return nil
	})
	noErr(t, "UpdateVisitor", err)
	want := v
	want.ExternalID, want.Email, want.Verified = "u_7", "new@example.com", true
	sameAs(t, "UpdateVisitor result", got, want, normVisitor)
	stored, err := s.Visitor(ctx, v.ID)
	noErr(t, "Visitor", err)
	sameAs(t, "Visitor after UpdateVisitor", stored, want, normVisitor)
	// The lookups follow the change.
	found, err := s.FindVisitors(ctx, chat.VisitorQuery{SiteKey: site, ExternalID: "u_7"})
	noErr(t, "FindVisitors(external ID)", err)
	if len(found) != 1 || found[0].ID != v.ID {
		t.Errorf("FindVisitors(external ID) = %v, want the updated visitor", found)
	}
	found, err = s.FindVisitors(ctx, chat.VisitorQuery{SiteKey: site, Email: "old@example.com"})
	noErr(t, "FindVisitors(old email)", err)
	if len(found) != 0 {
		t.Errorf("FindVisitors(old email) = %v, want none", found)
	}

	refused := errors.New("refused")
	_, err = s.UpdateVisitor(ctx, v.ID, func(cur *chat.Visitor) error {
		cur.Name = "not written"
		return refused
	})
	if !errors.Is(err, refused) {
		t.Errorf("UpdateVisitor(fn fails) = %v, want fn's error", err)
	}
	_, err = s.UpdateVisitor(ctx, v.ID, func(cur *chat.Visitor) error { cur.SiteKey = "other"; return nil })
	wantErr(t, "UpdateVisitor(change site)", err, chat.ErrInvalid)
	if stored, _ := s.Visitor(ctx, v.ID); stored.Name != "" || stored.SiteKey != site {
		t.Errorf("after refused updates the visitor is %+v, want it unchanged", stored)
	}
	_, err = s.UpdateVisitor(ctx, newID("vis"), func(*chat.Visitor) error { return nil })
	wantErr(t, "UpdateVisitor(unknown)", err, chat.ErrNotFound)
}

// testUpdateVisitorConcurrent has writers each add their own attribute to
// one visitor at once: an update that read before another's write and
// wrote after it would lose that attribute.
func testUpdateVisitorConcurrent(t *testing.T, s chat.Store) {
	ctx := context.Background()
	v := chat.Visitor{ID: newID("vis"), SiteKey: newID("site"), CreatedAt: now()}
	noErr(t, "PutVisitor", s.PutVisitor(ctx, v))
	const writers = 12
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			_, err := s.UpdateVisitor(ctx, v.ID, func(cur *chat.Visitor) error {
				if cur.Attributes == nil {
					cur.Attributes = map[string]string{}
				}
				cur.Attributes[fmt.Sprint("k", i)] = "v"
				return nil
			})
			noErr(t, "UpdateVisitor", err)
		})
	}
	wg.Wait()
	got, err := s.Visitor(ctx, v.ID)
	noErr(t, "Visitor", err)
	if len(got.Attributes) != writers {
		t.Fatalf("attributes after %d concurrent updates = %v, want all %d", writers, got.Attributes, writers)
	}
}
