package struggle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/detect/backtest"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// hub records offers instead of sending them.
type hub struct {
	mu     sync.Mutex
	online bool
	offers []offer
}

type offer struct{ visitor, id, text, mode string }

func (h *hub) Offer(_ context.Context, visitorID, offerID, text, mode string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offers = append(h.offers, offer{visitorID, offerID, text, mode})
}

func (h *hub) AgentsOnline(context.Context) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.online
}

func (h *hub) taken() []offer {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.offers
	h.offers = nil
	return out
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	store chat.Store
	hub   *hub
	clock *clock
	svc   *Service
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	f := &fixture{store: st, hub: &hub{online: true}, clock: &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}}
	f.svc = f.node()
	return f
}

// node is another service on the same store, as on another node.
func (f *fixture) node() *Service {
	s := New(Options{Store: f.store, Now: f.clock.Now})
	s.Attach(f.hub)
	return s
}

// runningNode is another node that has loaded the demo site's detector
// settings (the defaults), so that later changes reach it by reload.
func (f *fixture) runningNode(t *testing.T) *Service {
	t.Helper()
	s := f.node()
	if _, err := s.siteFor(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) visitor(t *testing.T, id string) chat.VisitorRef {
	t.Helper()
	if err := f.store.PutVisitor(context.Background(), chat.Visitor{ID: id, SiteKey: "demo", CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	return chat.VisitorRef{SiteKey: "demo", VisitorID: id}
}

// declines sends n "card declined" reports on /checkout, 5 s apart.
func (f *fixture) declines(svc *Service, ref chat.VisitorRef, n int) {
	batch := [][]byte{event(f.clock.Now(), `"k":"page","path":"/checkout"`)}
	for range n {
		f.clock.Add(5 * time.Second)
		batch = append(batch, event(f.clock.Now(), `"k":"report","msg":"Your card was declined"`))
	}
	svc.HandleEvents(context.Background(), ref, batch)
}

func event(at time.Time, fields string) []byte {
	return fmt.Appendf(nil, `{"t":%d,%s}`, at.UnixMilli(), fields)
}

func TestOfferThenNoThanksSilencesAcrossNodes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ref := f.visitor(t, "v1")
	f.declines(f.svc, ref, 2)
	offers := f.hub.taken()
	if len(offers) != 1 || offers[0].mode != "chat" || offers[0].visitor != "v1" {
		t.Fatalf("offers = %+v, want one chat offer to v1", offers)
	}
	f.svc.OfferResponse(ctx, ref, offers[0].id, false)
	f.svc.OfferResponse(ctx, ref, offers[0].id, false) // a repeat is counted once
	f.svc.flush(ctx, false)

	// The visitor moves to another node: the engine there starts afresh,
	// but the stored journey carries the "no thanks".
	other := f.node()
	f.clock.Add(time.Minute)
	f.declines(other, ref, 3)
	if got := f.hub.taken(); len(got) != 0 {
		t.Fatalf("offers after no thanks on another node = %+v, want none", got)
	}
	other.flush(ctx, false)
	rows, err := other.Counters(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Rule == "card-declined" && (r.Offered != 1 || r.Declined != 1 || r.Fired < 2) {
			t.Fatalf("card-declined counters across both nodes = %+v, want offered 1, declined 1, fired ≥ 2", r)
		}
	}
}

// After a broker gap, the offers of the last two minutes that are still
// unanswered go out again, the same offer, to visitors still connected
// here. An answered offer, an older one and a departed visitor's do not.
func TestOffersReplayedAfterBrokerGap(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	refs := map[string]chat.VisitorRef{}
	for _, id := range []string{"old", "answered", "gone", "fresh"} {
		refs[id] = f.visitor(t, id)
		f.declines(f.svc, refs[id], 2)
		if id == "old" {
			f.clock.Add(replayFor)
		}
	}
	sent := map[string]offer{}
	for _, o := range f.hub.taken() {
		sent[o.visitor] = o
	}
	if len(sent) != 4 {
		t.Fatalf("offers to %v, want one to each of the 4 visitors", sent)
	}
	f.svc.OfferResponse(ctx, refs["answered"], sent["answered"].id, true)
	f.svc.VisitorGone(refs["gone"])

	f.svc.ReplayOffers(ctx)
	if got := f.hub.taken(); len(got) != 1 || got[0] != sent["fresh"] {
		t.Fatalf("replayed %+v, want only %+v", got, sent["fresh"])
	}
	f.svc.OfferResponse(ctx, refs["fresh"], sent["fresh"].id, false)
	f.svc.ReplayOffers(ctx)
	if got := f.hub.taken(); len(got) != 0 {
		t.Fatalf("replayed %+v after the last offer was answered, want none", got)
	}
}

func TestNoAgentOnlineOffersMessage(t *testing.T) {
	f := newFixture(t)
	f.hub.online = false
	f.declines(f.svc, f.visitor(t, "v1"), 2)
	if got := f.hub.taken(); len(got) != 1 || got[0].mode != "message" {
		t.Fatalf("offers = %+v, want one leave-a-message offer", got)
	}
}

func TestHoldoutRecordsButNeverOffers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.svc.SetPolicy(ctx, "demo", chat.OfferPolicy{Holdout: 0.5}, chat.Agent{Email: "pm@example.com"}); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		f.declines(f.svc, f.visitor(t, fmt.Sprintf("v%d", i)), 2)
	}
	offered := len(f.hub.taken())
	rows, _ := f.svc.Counters(ctx, "demo")
	var held int64
	for _, r := range rows {
		held += r.Holdout
	}
	if offered+int(held) != n || offered < n/4 || int(held) < n/4 {
		t.Fatalf("offered %d, held out %d of %d flagged visitors; want every one in exactly one group, about half each", offered, held, n)
	}
	if err := f.svc.SetPolicy(ctx, "demo", chat.OfferPolicy{Holdout: 0.9}, chat.Agent{}); err == nil {
		t.Fatal("a 90 % holdout was accepted")
	}
}

func TestShadowRulesNeverOffer(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rules := `{"version":1,"threshold":5,"rules":[{"id":"pay","signal":"report","count":2,"window":"5m","weight":8,"shadow":true,"match":{"message":["declined"]}}]}`
	if _, err := f.svc.SetRules(ctx, "demo", []byte(rules), chat.Agent{Email: "pm@example.com"}); err != nil {
		t.Fatal(err)
	}
	ref := f.visitor(t, "v1")
	f.declines(f.svc, ref, 4)
	if got := f.hub.taken(); len(got) != 0 {
		t.Fatalf("a shadow rule offered: %+v", got)
	}
	rows, _ := f.svc.Counters(ctx, "demo")
	if len(rows) != 1 || !rows[0].Shadow || rows[0].Fired == 0 || rows[0].Offered != 0 {
		t.Fatalf("counters = %+v, want the shadow rule fired and never offered", rows)
	}
	if j := f.svc.Journey("v1"); j == nil || len(j.Findings) == 0 || !j.Findings[0].Shadow {
		t.Fatalf("journey = %+v, want the shadow finding recorded as shadow", j)
	}
}

func TestJourneyIsBounded(t *testing.T) {
	f := newFixture(t)
	ref := f.visitor(t, "v1")
	var batch [][]byte
	for i := range 3 * chat.MaxTrail {
		f.clock.Add(10 * time.Second)
		batch = append(batch, event(f.clock.Now(), fmt.Sprintf(`"k":"page","path":"/p%d"`, i)))
		batch = append(batch, event(f.clock.Now(), fmt.Sprintf(`"k":"error","msg":"boom %d"`, i)))
		batch = append(batch, event(f.clock.Now(), fmt.Sprintf(`"k":"request","method":"GET","path":"/api/%c%c","status":500`, 'a'+i%26, 'a'+i/26)))
	}
	f.svc.HandleEvents(context.Background(), ref, batch)
	j := f.svc.Journey("v1")
	if len(j.Trail) != chat.MaxTrail || len(j.Errors) != chat.MaxErrors || len(j.Requests) != chat.MaxRequests || len(j.Findings) > chat.MaxFindings {
		t.Fatalf("journey sizes %d/%d/%d/%d exceed the bounds", len(j.Trail), len(j.Errors), len(j.Requests), len(j.Findings))
	}
	last := j.Trail[len(j.Trail)-1]
	if last.Path != fmt.Sprintf("/p%d", 3*chat.MaxTrail-1) || j.Trail[0].DwellMS != 10_000 {
		t.Fatalf("trail keeps the newest pages with their dwell: first %+v, last %+v", j.Trail[0], last)
	}
}

func TestBadEventsAndSkewedClocks(t *testing.T) {
	f := newFixture(t)
	ref := f.visitor(t, "v1")
	// A browser clock a day behind, and junk mixed in: the batch still counts.
	skewed := f.clock.Now().Add(-24 * time.Hour)
	f.svc.HandleEvents(context.Background(), ref, [][]byte{
		[]byte(`not json`), []byte(`{"k":"nope"}`),
		event(skewed, `"k":"page","path":"/checkout"`),
		event(skewed.Add(time.Second), `"k":"report","msg":"card declined"`),
		event(skewed.Add(2*time.Second), `"k":"report","msg":"card declined"`),
	})
	if got := f.hub.taken(); len(got) != 1 {
		t.Fatalf("offers = %+v, want one despite junk and a skewed clock", got)
	}
	j := f.svc.Journey("v1")
	if d := f.clock.Now().Sub(j.Trail[0].At); d < 0 || d > time.Minute {
		t.Fatalf("page time %v is not on the server's clock %v", j.Trail[0].At, f.clock.Now())
	}
}

func TestRecorderLabelsOutcomes(t *testing.T) {
	f := newFixture(t)
	rec, err := NewRecorder(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	rec.now = f.clock.Now
	svc := New(Options{Store: f.store, Now: f.clock.Now, Recorder: rec})
	svc.Attach(f.hub)
	ctx := context.Background()

	buyer, asker := f.visitor(t, "buyer"), f.visitor(t, "asker")
	svc.HandleEvents(ctx, buyer, [][]byte{event(f.clock.Now(), `"k":"track","name":"purchase","props":{"email":"x@example.com"}`)})
	f.declines(svc, asker, 2)
	svc.Assess(asker) // the visitor starts a conversation
	if err := rec.Flush(0); err != nil {
		t.Fatal(err)
	}
	sessions, err := rec.Sessions(ctx, "demo", 10)
	if err != nil || len(sessions) != 2 {
		t.Fatalf("sessions = %d, %v; want 2", len(sessions), err)
	}
	byVisit := map[string]backtest.Session{}
	for _, s := range sessions {
		byVisit[s.Visit] = s
	}
	if s := byVisit["demo/buyer"]; s.Outcome != backtest.OutcomeConverted || s.Events[0].Props != nil {
		t.Fatalf("buyer = %+v, want converted with the track props dropped", s)
	}
	s := byVisit["demo/asker"]
	if s.Outcome != backtest.OutcomeContactedSupport || len(s.Episodes) != 1 || s.Episodes[0].Page != "/checkout" {
		t.Fatalf("asker = %+v, want contacted_support with an episode on /checkout", s)
	}
	if _, err := NewRecorder(t.TempDir(), 2); err == nil {
		t.Fatal("a sample share of 2 was accepted")
	}
}

// TestStruggleCarriesAcrossNodes: a visitor whose card is declined once on
// node A and once more on node B is offered help on B, as on one node; and
// back on A, A picks up what B saw.
func TestStruggleCarriesAcrossNodes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, b := f.svc, f.node()
	ref := f.visitor(t, "v1")
	decline := func(svc *Service) {
		f.clock.Add(5 * time.Second)
		svc.HandleEvents(ctx, ref, [][]byte{event(f.clock.Now(), `"k":"report","msg":"Your card was declined"`)})
	}
	a.HandleEvents(ctx, ref, [][]byte{event(f.clock.Now(), `"k":"page","path":"/checkout"`)})
	decline(a)
	a.flush(ctx, false)
	a.VisitorGone(ref)
	if got := f.hub.taken(); len(got) != 0 {
		t.Fatalf("one decline offered: %+v", got)
	}

	decline(b) // the second decline, on another node
	offers := f.hub.taken()
	if len(offers) != 1 {
		t.Fatalf("offers on node B after the second decline = %+v, want one: B did not carry on from A", offers)
	}
	b.OfferResponse(ctx, ref, offers[0].id, false)
	b.flush(ctx, false)
	b.VisitorGone(ref)

	// Back on A: it adopts B's newer journey, "no thanks" included.
	f.clock.Add(time.Second)
	decline(a)
	decline(a)
	if got := f.hub.taken(); len(got) != 0 {
		t.Fatalf("node A offered again after 'no thanks' on node B: %+v", got)
	}
	if j := a.Journey("v1"); j == nil || j.DeclinedAt.IsZero() || len(j.Errors) != 1 || j.Errors[0].Count != 4 {
		t.Fatalf("node A's journey = %+v, want B's 'no thanks' and all four declines", j)
	}
}

// A journey whose trail alone changes is written at most every
// JourneyInterval; a finding, a visitor leaving this node or a stop write
// it at the next flush.
func TestJourneyWrittenWhenDue(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ref := f.visitor(t, "v1")
	page := func(path string) {
		f.clock.Add(time.Second)
		f.svc.HandleEvents(ctx, ref, [][]byte{event(f.clock.Now(), `"k":"page","path":"`+path+`"`)})
	}
	lastStored := func() string {
		t.Helper()
		j, err := f.svc.StoredJourney(ctx, "v1")
		if err != nil || j == nil || len(j.Trail) == 0 {
			t.Fatalf("stored journey = %+v, %v", j, err)
		}
		return j.Trail[len(j.Trail)-1].Path
	}

	page("/a")
	f.svc.flush(ctx, false)
	if got := lastStored(); got != "/a" {
		t.Fatalf("first write: last page %s, want /a", got)
	}
	page("/b")
	f.svc.flush(ctx, false)
	if got := lastStored(); got != "/a" {
		t.Fatalf("a trail change within JourneyInterval was written at once: last page %s", got)
	}
	f.clock.Add(f.svc.o.JourneyInterval)
	f.svc.flush(ctx, false)
	if got := lastStored(); got != "/b" {
		t.Fatalf("after JourneyInterval: last page %s, want /b", got)
	}

	// A finding is written at the next flush.
	f.declines(f.svc, ref, 2)
	f.svc.flush(ctx, false)
	if j, _ := f.svc.StoredJourney(ctx, "v1"); j == nil || len(j.Findings) == 0 {
		t.Fatalf("a finding waited for JourneyInterval: %+v", j)
	}

	// So is the journey of a visitor who left this node, and every change
	// at a stop.
	page("/c")
	f.svc.VisitorGone(ref)
	f.svc.flush(ctx, false)
	if got := lastStored(); got != "/c" {
		t.Fatalf("visitor gone: last page %s, want /c", got)
	}
	page("/d")
	f.svc.flush(ctx, true)
	if got := lastStored(); got != "/d" {
		t.Fatalf("flush of all: last page %s, want /d", got)
	}
}

func TestRecordingFilesAreTheSitesOwn(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	for _, site := range []string{"acme", "acme-staging", "acme-2026"} {
		for _, d := range []time.Time{day.AddDate(0, 0, -1), day} {
			if err := os.WriteFile(recordingFile(dir, site, d), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "acme-notes.jsonl"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := RecordingFiles(dir, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "acme-2026-11-28.jsonl"), filepath.Join(dir, "acme-2026-11-29.jsonl")}
	if !slices.Equal(got, want) {
		t.Fatalf("RecordingFiles(acme) = %q, want %q", got, want)
	}
	if got, _ := RecordingFiles(dir, "acme-2026"); len(got) != 2 {
		t.Fatalf("RecordingFiles(acme-2026) = %q, want its 2 files", got)
	}
}

// A flush encodes journeys outside the visitor's shard lock while the visitor's
// batches keep changing them in place: under the race detector this
// fails if the record it encodes shares a list with the live journey.
func TestFlushEncodesWhileBatchesArrive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ref := f.visitor(t, "v1")
	const batches = 2000
	pages := [2]string{"/cart", "/checkout"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range batches {
			f.svc.HandleEvents(ctx, ref, [][]byte{
				event(f.clock.Now(), fmt.Sprintf(`"k":"page","path":%q`, pages[i%2])),
				event(f.clock.Now(), `"k":"error","msg":"boom","fp":"e1"`),
			})
		}
	}()
	for flushing := true; flushing; {
		select {
		case <-done:
			flushing = false
		default:
			f.svc.flush(ctx, true)
		}
	}
	f.svc.flush(ctx, true)
	rec, err := f.svc.storedJourney(ctx, "v1")
	if err != nil || rec == nil {
		t.Fatalf("stored journey = %v, %v", rec, err)
	}
	if n := len(rec.Trail); n < 2 || rec.Trail[n-1].Path != pages[(batches-1)%2] {
		t.Fatalf("stored trail = %+v, want it to end on the last page", rec.Trail)
	}
}

// journeyReads counts the stored journeys a service reads.
type journeyReads struct {
	chat.Store
	mu sync.Mutex
	n  map[string]int
}

func (j *journeyReads) Meta(ctx context.Context, k string) ([]byte, error) {
	j.mu.Lock()
	j.n[k]++
	j.mu.Unlock()
	return j.Store.Meta(ctx, k)
}

func (j *journeyReads) reads(visitorID string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.n[journeyKey(visitorID)]
}

// A visitor the hello just made has no stored journey, so none is read
// (a store round trip under the detection lock); a known visitor's is read
// once, on its first batch.
func TestNewVisitorSkipsTheJourneyRead(t *testing.T) {
	f := newFixture(t)
	counted := &journeyReads{Store: f.store, n: map[string]int{}}
	svc := New(Options{Store: counted, Now: f.clock.Now})
	svc.Attach(f.hub)
	ctx := context.Background()
	page := [][]byte{event(f.clock.Now(), `"k":"page","path":"/checkout"`)}

	fresh := f.visitor(t, "v-new")
	fresh.New = true
	svc.HandleEvents(ctx, fresh, page)
	svc.HandleEvents(ctx, f.visitor(t, "v-known"), page)
	if n := counted.reads("v-new"); n != 0 {
		t.Errorf("new visitor: %d journey reads, want 0", n)
	}
	if n := counted.reads("v-known"); n != 1 {
		t.Errorf("known visitor: %d journey reads, want 1", n)
	}

	// The new visitor's journey is kept all the same.
	svc.flush(ctx, true)
	j, err := svc.StoredJourney(ctx, "v-new")
	if err != nil || j == nil || len(j.Trail) != 1 || j.Trail[0].Path != "/checkout" {
		t.Fatalf("stored journey of the new visitor = %+v, %v; want its /checkout page", j, err)
	}
}

// blockedJourney holds the read of one visitor's stored journey until
// release is closed, as a slow or distant store would.
type blockedJourney struct {
	chat.Store
	visitorID string
	reading   chan struct{} // closed when the read starts
	release   chan struct{}
	once      sync.Once
}

func (b *blockedJourney) Meta(ctx context.Context, k string) ([]byte, error) {
	if k == journeyKey(b.visitorID) {
		b.once.Do(func() { close(b.reading) })
		<-b.release
	}
	return b.Store.Meta(ctx, k)
}

// A connection's first batch reads the visitor's stored journey; while
// that read waits on the store, the site's other visitors are detected
// and offered help, even one whose state shares the slow visitor's lock.
func TestSlowJourneyReadHoldsUpOnlyItsVisitor(t *testing.T) {
	f := newFixture(t)
	blocked := &blockedJourney{Store: f.store, visitorID: "v-slow", reading: make(chan struct{}), release: make(chan struct{})}
	svc := New(Options{Store: blocked, Now: f.clock.Now})
	svc.Attach(f.hub)
	ctx := context.Background()
	st, err := svc.siteFor(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	other := ""
	for i := 0; other == ""; i++ {
		if id := fmt.Sprintf("v%d", i); st.shardOf(id) == st.shardOf("v-slow") {
			other = id
		}
	}

	slow := f.visitor(t, "v-slow")
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		f.declines(svc, slow, 2)
	}()
	<-blocked.reading
	otherDone := make(chan struct{})
	go func() {
		defer close(otherDone)
		f.declines(svc, f.visitor(t, other), 2)
	}()
	select {
	case <-otherDone:
	case <-time.After(10 * time.Second):
		close(blocked.release)
		t.Fatalf("visitor %s waited for v-slow's journey read", other)
	}
	if got := f.hub.taken(); len(got) != 1 || got[0].visitor != other {
		t.Fatalf("offers while v-slow's read waits = %+v, want one to %s", got, other)
	}
	close(blocked.release)
	<-slowDone
	if got := f.hub.taken(); len(got) != 1 || got[0].visitor != "v-slow" {
		t.Fatalf("offers after the read = %+v, want one to v-slow", got)
	}
}

// A site's visitors are spread over several engines: a rules change, made
// on this node or read back from the store by another, reaches each.
func TestRulesReachEveryShard(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := f.runningNode(t)
	// One decline is enough under these rules; the defaults want two.
	rules := `{"version":1,"threshold":5,"rules":[{"id":"pay-once","signal":"report","count":1,"window":"5m","weight":8,"match":{"message":["declined"]}}]}`
	if _, err := f.svc.SetRules(ctx, "demo", []byte(rules), chat.Agent{Email: "pm@example.com"}); err != nil {
		t.Fatal(err)
	}
	other.reload(ctx)

	for _, svc := range []*Service{f.svc, other} {
		st, err := svc.siteFor(ctx, "demo")
		if err != nil {
			t.Fatal(err)
		}
		for i := range st.shards {
			if rs := st.shards[i].engine.Ruleset(); len(rs.Rules) != 1 || rs.Rules[0].ID != "pay-once" {
				t.Fatalf("shard %d runs %d rules, want the new one", i, len(rs.Rules))
			}
		}
		covered := map[*shard]bool{}
		for i := 0; len(covered) < siteShards; i++ {
			id := fmt.Sprintf("v%p-%d", svc, i)
			if sh := st.shardOf(id); !covered[sh] {
				covered[sh] = true
				f.declines(svc, f.visitor(t, id), 1)
			}
		}
		if got := f.hub.taken(); len(got) != siteShards {
			t.Fatalf("%d offers after one decline each from %d visitors, one per shard; want one each", len(got), siteShards)
		}
	}
}

// An offer policy saved on one node reaches another at its next reload:
// with every day closed, its offers become "leave a message".
func TestPolicyChangeReachesOtherNodes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := f.runningNode(t)
	closed := chat.OfferPolicy{Hours: &chat.BusinessHours{Days: map[string]string{}}}
	if err := f.svc.SetPolicy(ctx, "demo", closed, chat.Agent{Email: "pm@example.com"}); err != nil {
		t.Fatal(err)
	}
	other.reload(ctx)
	f.declines(other, f.visitor(t, "v1"), 2)
	if got := f.hub.taken(); len(got) != 1 || got[0].mode != "message" {
		t.Fatalf("offers on the other node = %+v, want one leave-a-message offer", got)
	}
}
