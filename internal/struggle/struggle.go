// Package struggle wires the detect engine into a node: it feeds each
// visitor's behaviour events to its site's engine, turns verdicts into
// offers through the site's offer policy, keeps the journey agents see, and
// counts per rule what fired, was offered, accepted, declined and resolved.
package struggle

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/detect"
	"github.com/lifelinehq/lifeline/internal/audit"
)

// Offerer is what the service needs of the hub.
type Offerer interface {
	// Offer sends a proactive offer to every socket of the visitor.
	Offer(ctx context.Context, visitorID, offerID, text, mode string)
	// AgentsOnline reports whether an agent can answer now.
	AgentsOnline(ctx context.Context) bool
}

// Metrics receives the service's measurements. Nil discards them.
type Metrics interface {
	Events(n int)
	Finding(site, rule string, shadow bool)
	Offer(site, rule, mode string)
	OfferAnswer(site, rule string, accepted bool)
	// Resolved counts a conversation resolved after a rule's finding.
	Resolved(site, rule string)
	// OfferLatency is the time from a batch's arrival to its offer being
	// handed to the hub.
	OfferLatency(d time.Duration)
}

// Options configures a Service.
type Options struct {
	Store   chat.Store
	Logger  *slog.Logger
	Metrics Metrics
	// Engine sizes each site's engine.
	Engine detect.Config
	// FlushInterval is how often counters and changed visitor journeys
	// are written and rules re-read from the store (hot reload from any
	// node). Defaults to 2 s. A journey whose only changes are its pages,
	// score and recent events is written at most every JourneyInterval;
	// one with a new finding or offer, or whose visitor left this node, at
	// the next flush.
	FlushInterval time.Duration
	// JourneyInterval bounds how often a visitor's journey is written
	// while only its trail changes. Defaults to 10 s.
	JourneyInterval time.Duration
	// Audit records rule and policy changes. Nil records nothing.
	Audit *audit.Log
	// Recorder, if set, receives sampled visits for backtests.
	Recorder *Recorder
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Events receives struggle.detected and offer.* events (webhooks).
	// Nil discards them.
	Events chat.Emitter
}

// Service implements chat.Detector.
type Service struct {
	o   Options
	hub Offerer

	mu     sync.Mutex
	sites  map[string]*site
	visits map[string]*visit // by visitor ID

	flushing []flushed // flush's scratch list; only Run's goroutine flushes
}

var _ chat.Detector = (*Service)(nil)

// maxVisits bounds the journeys kept in memory; the least recently seen
// disconnected ones go first.
const maxVisits = 200_000

// visitIdle is how long a disconnected visitor's state is kept.
const visitIdle = 30 * time.Minute

// New returns a Service. Call Attach with the hub before it serves.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 2 * time.Second
	}
	if o.JourneyInterval <= 0 {
		o.JourneyInterval = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o, sites: make(map[string]*site), visits: make(map[string]*visit)}
}

// Attach gives the service the hub it offers through.
func (s *Service) Attach(h Offerer) { s.hub = h }

type nopMetrics struct{}

func (nopMetrics) Events(int)                       {}
func (nopMetrics) Finding(string, string, bool)     {}
func (nopMetrics) Offer(string, string, string)     {}
func (nopMetrics) OfferAnswer(string, string, bool) {}
func (nopMetrics) Resolved(string, string)          {}
func (nopMetrics) OfferLatency(time.Duration)       {}

// visit is what the service keeps of one visitor. online, since and seen
// are guarded by the service's mu, the fields from loaded to page by
// sh.mu.
type visit struct {
	key       string // site + "/" + visitor ID, the engine's visit key
	site      string
	sh        *shard // the shard of the site's state holding the visit
	visitorID string

	loaded  bool
	savedAt time.Time // when this node last wrote the journey
	jour    chat.VisitContext
	recent  recentEvents // the last events, replayed by the next node
	dirty   bool         // changed since it was written
	urgent  bool         // a finding, an offer or an answer not yet written
	offer   chat.OfferState
	pending map[string]sentOffer // unanswered offers by ID
	cause   string
	online  bool      // has a socket on this node
	since   time.Time // online since
	seen    time.Time // last event or connection
	page    string
}

// Run flushes counters and journeys, reloads changed rules and expires idle
// state until ctx ends, then flushes once more.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.flush(fctx, true)
			cancel()
			if s.o.Recorder != nil {
				if err := s.o.Recorder.Flush(0); err != nil {
					s.o.Logger.Warn("write recordings", "err", err)
				}
			}
			return
		case <-t.C:
			s.flush(ctx, false)
			s.reload(ctx)
			s.expire()
		}
	}
}

// siteFor returns the site's state, loading its rules on first use.
func (s *Service) siteFor(ctx context.Context, key string) (*site, error) {
	s.mu.Lock()
	st := s.sites[key]
	s.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := s.loadSite(ctx, key)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.sites[key]; cur != nil {
		return cur, nil
	}
	s.sites[key] = st
	return st, nil
}

// visitFor returns the visitor's state, creating it; st is the state of
// ref's site.
func (s *Service) visitFor(ref chat.VisitorRef, st *site) *visit {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.visits[ref.VisitorID]
	if v == nil {
		if len(s.visits) >= maxVisits {
			s.evictOldestLocked()
		}
		v = &visit{key: ref.SiteKey + "/" + ref.VisitorID, site: ref.SiteKey, sh: st.shardOf(ref.VisitorID), visitorID: ref.VisitorID, pending: map[string]sentOffer{}}
		s.visits[ref.VisitorID] = v
	}
	return v
}

func (s *Service) evictOldestLocked() {
	var oldest *visit
	for _, v := range s.visits {
		if !v.online && (oldest == nil || v.seen.Before(oldest.seen)) {
			oldest = v
		}
	}
	if oldest != nil {
		delete(s.visits, oldest.visitorID)
	}
}

// load reads the visitor's stored journey once, so a visitor who comes back
// to this or another node keeps their trail, offer history and "no thanks".
// v.sh.mu is held.
func (s *Service) load(ctx context.Context, v *visit) {
	if v.loaded {
		return
	}
	v.loaded = true
	stored, err := s.storedJourney(ctx, v.visitorID)
	if err != nil || stored == nil {
		return
	}
	v.adopt(v.sh.engine, stored)
}

// adopt takes over a journey another node stored, and replays its recent
// events into this node's engine. v.sh.mu is held.
func (v *visit) adopt(engine *detect.Engine, stored *storedJourneyRecord) {
	v.jour = stored.VisitContext
	v.offer.Offers = stored.Offers
	v.offer.DeclinedAt = stored.DeclinedAt
	if n := len(v.jour.Trail); n > 0 {
		v.page = v.jour.Trail[n-1].Path
		v.offer.NewPage(v.page)
	}
	v.recent.reset()
	v.replay(engine, stored.Recent)
}

// connected takes the journey stored when the visitor connected (nil if
// none): the first one this node sees of the visitor, or one another node
// wrote after this node last did, the visitor having spent time there.
// v.sh.mu is held.
func (v *visit) connected(stored *storedJourneyRecord) {
	switch {
	case stored == nil:
	case !v.loaded:
		v.adopt(v.sh.engine, stored)
	case stored.UpdatedAt.After(v.savedAt):
		v.sh.engine.Forget(v.key)
		v.adopt(v.sh.engine, stored)
	}
	v.loaded = true
}

// replay feeds the events another node saw to this node's engine, so its
// windows and counts carry on where they were. Verdicts are dropped: the
// other node already acted on them.
func (v *visit) replay(engine *detect.Engine, raw []json.RawMessage) {
	for _, r := range raw {
		ev, err := detect.DecodeEvent(r)
		if err != nil {
			continue
		}
		ev.Site, ev.Visit = v.site, v.key
		engine.Observe(ev)
		v.recent.add(ev)
	}
}

// storedJourneyRecord is a journey as stored: what agents see, plus the
// recent events for the next node.
type storedJourneyRecord struct {
	chat.VisitContext
	Recent []json.RawMessage `json:"recent,omitempty"`
}

func (s *Service) storedJourney(ctx context.Context, visitorID string) (*storedJourneyRecord, error) {
	var j storedJourneyRecord
	if ok, err := chat.MetaJSON(ctx, s.o.Store, journeyKey(visitorID), &j); !ok {
		return nil, err
	}
	return &j, nil
}

// journeyKey is where a visitor's journey is stored: a record of its own,
// so writing it never races with the hub's writes of the visitor record.
func journeyKey(visitorID string) string { return "journey/" + visitorID }

// StoredJourney returns the journey last written by any node, or nil.
func (s *Service) StoredJourney(ctx context.Context, visitorID string) (*chat.VisitContext, error) {
	j, err := s.storedJourney(ctx, visitorID)
	if j == nil || err != nil {
		return nil, err
	}
	return &j.VisitContext, nil
}

// JourneyOf returns the freshest journey of a visitor, this node's or the
// stored one, or nil when there is none.
func (s *Service) JourneyOf(ctx context.Context, visitorID string) *chat.VisitContext {
	if j := s.Journey(visitorID); j != nil {
		return j
	}
	j, err := s.StoredJourney(ctx, visitorID)
	if err != nil {
		s.o.Logger.Warn("read journey", "visitor", visitorID, "err", err)
	}
	return j
}

// DropJourney deletes a visitor's stored journey (retention). The visit
// state in memory stays: a visitor still active writes a fresh one.
func (s *Service) DropJourney(ctx context.Context, visitorID string) error {
	return s.o.Store.DeleteMeta(ctx, journeyKey(visitorID))
}

// eventBufs holds HandleEvents' decoded batches for reuse. A batch of 20
// events is about 7 KiB, a third of what a streaming visitor's frame made
// the collector chase; nothing keeps the slice (the engine, the journey,
// the replay ring and the recorder copy each event).
var eventBufs = sync.Pool{New: func() any { return new([]detect.Event) }}

// clockSkew is how far a batch's newest event may be from the server's
// clock before the batch is shifted onto it. Browser clocks drift; the
// engine needs one time line per visit.
const clockSkew = 5 * time.Second

// HandleEvents feeds a batch to the site's engine and sends an offer when
// the verdict and the policy agree.
func (s *Service) HandleEvents(ctx context.Context, ref chat.VisitorRef, raw [][]byte) {
	start := s.o.Now()
	st, err := s.siteFor(ctx, ref.SiteKey)
	if err != nil {
		s.o.Logger.Warn("load detector rules", "site", ref.SiteKey, "err", err)
		return
	}
	buf := eventBufs.Get().(*[]detect.Event)
	events := (*buf)[:0]
	defer func() {
		clear(events) // keep no strings of this batch alive
		*buf = events[:0]
		eventBufs.Put(buf)
	}()
	var newest time.Time
	for _, r := range raw {
		ev, err := detect.DecodeEvent(r)
		if err != nil {
			continue // one bad event never spoils the batch
		}
		if ev.Time.After(newest) {
			newest = ev.Time
		}
		events = append(events, ev)
	}
	s.o.Metrics.Events(len(events))
	if len(events) == 0 {
		return
	}
	if d := start.Sub(newest); d > clockSkew || d < -clockSkew {
		for i := range events {
			events[i].Time = events[i].Time.Add(d)
		}
	}
	if s.o.Recorder != nil {
		s.o.Recorder.Events(ref, events)
	}
	v := s.visitFor(ref, st)
	s.mu.Lock()
	fresh := !v.online // a new connection: it may come from another node
	if fresh {
		v.online, v.since = true, start
	}
	v.seen = start
	s.mu.Unlock()

	// A connection's first batch reads the stored journey (it may come
	// from another node) before taking the shard's lock, so a slow store
	// holds up this visitor only. A visitor made just now has none.
	var stored *storedJourneyRecord
	if fresh && !ref.New {
		var err error
		if stored, err = s.storedJourney(ctx, ref.VisitorID); err != nil {
			s.o.Logger.Warn("read visitor journey", "visitor", ref.VisitorID, "err", err)
		}
	}
	policy := st.policy.Load()

	var offers []sentOffer
	var found []chat.FindingSeen
	var countBuf [8]counted
	counts := countBuf[:0]
	sh := v.sh
	sh.mu.Lock()
	if fresh {
		v.connected(stored)
	}
	s.load(ctx, v) // another batch of the visitor's raced this one here
	for i := range events {
		ev := &events[i]
		ev.Site, ev.Visit = ref.SiteKey, v.key
		findings := sh.engine.Observe(*ev)
		v.note(ev)
		v.recent.add(*ev)
		causeSaid := ""
		a := sh.engine.Verdict()
		for j := range findings {
			f := &findings[j]
			counts = append(counts, counted{f.Rule, "fired"})
			s.o.Metrics.Finding(ref.SiteKey, f.Rule, f.Shadow)
			said := v.found(f)
			if f.Rule == a.Cause.Rule {
				causeSaid = said
			}
			if !f.Shadow {
				found = append(found, chat.FindingSeen{At: f.Evidence.Last.UTC(), Rule: f.Rule, Sentence: said})
			}
		}
		v.jour.Score = round2(a.Score)
		if causeSaid != "" {
			v.jour.Explanation, v.cause = causeSaid, a.Cause.Rule
		}
		if !a.Offer {
			continue
		}
		d := policy.Decide(&v.offer, ref.VisitorID, ev.Time, s.hub.AgentsOnline(ctx))
		switch {
		case d.Holdout:
			counts = append(counts, counted{a.Cause.Rule, "holdout"})
		case d.Offer:
			v.offer.Shown()
			v.jour.Offers = v.offer.Offers
			id := uuid.NewString()
			if len(v.pending) > 8 {
				clear(v.pending)
			}
			o := sentOffer{id: id, text: a.OfferText, mode: d.Mode, rule: a.Cause.Rule, at: start}
			v.pending[id] = o
			counts = append(counts, counted{a.Cause.Rule, "offered"})
			s.o.Metrics.Offer(ref.SiteKey, a.Cause.Rule, d.Mode)
			offers = append(offers, o)
		}
	}
	v.dirty = true
	if len(found) > 0 || len(offers) > 0 {
		v.urgent = true // agents on other nodes see these at once
	}
	sh.mu.Unlock()
	if len(counts) > 0 {
		st.count(counts...)
	}

	for i := range found {
		s.emit(ctx, chat.Event{Type: chat.EventStruggleDetected, SiteKey: ref.SiteKey, VisitorID: ref.VisitorID, Finding: &found[i]})
	}
	for _, o := range offers {
		s.hub.Offer(ctx, ref.VisitorID, o.id, o.text, o.mode)
		s.o.Metrics.OfferLatency(s.o.Now().Sub(start))
		s.emit(ctx, chat.Event{Type: chat.EventOfferShown, SiteKey: ref.SiteKey, VisitorID: ref.VisitorID,
			Offer: &chat.OfferEvent{ID: o.id, Rule: o.rule, Mode: o.mode, Text: o.text}})
	}
}

// sentOffer is an offer as it was sent, kept until the visitor answers it.
type sentOffer struct {
	id, text, mode, rule string
	at                   time.Time // when its batch arrived
}

// replayFor is how old an unanswered offer may be and still be sent again
// after a broker gap: a visitor who struggled a minute ago may still want
// the help, one who struggled ten minutes ago has moved on.
const replayFor = 2 * time.Minute

// ReplayOffers sends again, after broker traffic may have been lost, the
// offers this node made in the last replayFor that are still unanswered,
// to visitors still connected here. A visitor whose tab did get an offer
// sees the same one again (same ID), which the widget shows as one; the
// policy counts it once.
func (s *Service) ReplayOffers(ctx context.Context) {
	s.mu.Lock()
	online := make([]*visit, 0, len(s.visits))
	for _, v := range s.visits {
		if v.online {
			online = append(online, v)
		}
	}
	s.mu.Unlock()
	since := s.o.Now().Add(-replayFor)
	type replay struct {
		visitor string
		o       sentOffer
	}
	var again []replay
	for _, v := range online {
		v.sh.mu.Lock()
		for _, o := range v.pending {
			if o.at.After(since) {
				again = append(again, replay{v.visitorID, o})
			}
		}
		v.sh.mu.Unlock()
	}
	for _, r := range again {
		s.hub.Offer(ctx, r.visitor, r.o.id, r.o.text, r.o.mode)
	}
	if len(again) > 0 {
		s.o.Logger.Info("offers sent again after a broker gap", "offers", len(again))
	}
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// OfferResponse counts the answer; "no thanks" silences offers as the
// policy says.
func (s *Service) OfferResponse(ctx context.Context, ref chat.VisitorRef, offerID string, accepted bool) {
	st, err := s.siteFor(ctx, ref.SiteKey)
	if err != nil {
		return
	}
	v := s.visitFor(ref, st)
	v.sh.mu.Lock()
	s.load(ctx, v)
	sent, ok := v.pending[offerID]
	rule := sent.rule
	if !ok {
		v.sh.mu.Unlock()
		return // unknown or answered already: count each offer once
	}
	delete(v.pending, offerID)
	field := "declined"
	if accepted {
		field = "accepted"
		v.cause = rule
	} else {
		v.offer.DeclinedAt = s.o.Now()
		v.jour.DeclinedAt = v.offer.DeclinedAt
		v.dirty, v.urgent = true, true
	}
	v.sh.mu.Unlock()
	st.count(counted{rule, field})
	s.o.Metrics.OfferAnswer(ref.SiteKey, rule, accepted)
	typ := chat.EventOfferDeclined
	if accepted {
		typ = chat.EventOfferAccepted
	}
	s.emit(ctx, chat.Event{Type: typ, SiteKey: ref.SiteKey, VisitorID: ref.VisitorID, Offer: &chat.OfferEvent{ID: offerID, Rule: rule}})
}

// Assess tells the hub how to queue a visitor starting a conversation.
func (s *Service) Assess(ref chat.VisitorRef) chat.Assessment {
	s.mu.Lock()
	st, v := s.sites[ref.SiteKey], s.visits[ref.VisitorID]
	s.mu.Unlock()
	if st == nil || v == nil {
		return chat.Assessment{}
	}
	v.sh.mu.Lock()
	defer v.sh.mu.Unlock()
	a := v.sh.engine.Assess(v.key, s.o.Now())
	out := chat.Assessment{Priority: a.Priority(), Explanation: a.Explanation(), Cause: a.Cause.Rule}
	if out.Explanation == "" && v.jour.Explanation != "" {
		// The engine forgot (restart, another node) but the journey kept it.
		out.Explanation, out.Cause, out.Priority = v.jour.Explanation, v.cause, 1
	}
	if v.cause != "" {
		out.Cause = v.cause // the rule whose offer was accepted
	}
	if s.o.Recorder != nil {
		s.o.Recorder.Contacted(ref.VisitorID, v.page, s.o.Now())
	}
	return out
}

// Resolved counts a resolved conversation for the rule that caused it.
func (s *Service) Resolved(ctx context.Context, conv chat.Conversation) {
	st, err := s.siteFor(ctx, conv.SiteKey)
	if err != nil {
		return
	}
	st.count(counted{conv.Cause, "resolved"})
	s.o.Metrics.Resolved(conv.SiteKey, conv.Cause)
}

// VisitorGone keeps the visit's state (the next page view reconnects) but
// drops it from the live list.
func (s *Service) VisitorGone(ref chat.VisitorRef) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.visits[ref.VisitorID]; v != nil {
		v.online = false
	}
}

// flush writes counter deltas and the changed journeys that are due (see
// Options.FlushInterval), or with all every changed journey.
func (s *Service) flush(ctx context.Context, all bool) {
	s.mu.Lock()
	sites := make([]*site, 0, len(s.sites))
	for _, st := range s.sites {
		sites = append(sites, st)
	}
	// The scratch list is kept between flushes: a node holding thousands
	// of idle visitors would otherwise grow a new one every tick.
	visits := s.flushing[:0]
	for _, v := range s.visits {
		visits = append(visits, flushed{v, !v.online})
	}
	s.mu.Unlock()
	defer func() {
		clear(visits) // keep no visit alive past its erasure
		s.flushing = visits[:0]
	}()
	for _, st := range sites {
		st.flush(ctx, s.o.Store, s.o.Logger)
	}
	// Journeys are written flushConcurrency at a time: each write waits
	// for a durable commit, and the embedded store commits the writes
	// waiting together in one transaction, so a flush after a storm of
	// visitors takes a few commits rather than one per visitor.
	sem := make(chan struct{}, flushConcurrency)
	var wg sync.WaitGroup
	for _, f := range visits {
		data, ok := s.journeyRecord(f.v, all || f.gone)
		if !ok {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.saveJourney(ctx, f.v, data)
		})
	}
	wg.Wait()
}

// flushed is a visit a flush looks at.
type flushed struct {
	v    *visit
	gone bool // the visitor left this node: another may take it over
}

// flushConcurrency bounds the journey writes a flush has in flight.
const flushConcurrency = 4

// journeyRecord encodes v's journey if it changed since it was saved and
// is due: now, if something urgent changed or it was never written, or
// else once JourneyInterval has passed since it was.
func (s *Service) journeyRecord(v *visit, now bool) ([]byte, bool) {
	sh := v.sh
	sh.mu.Lock()
	if !v.dirty || !now && !v.urgent && !v.savedAt.IsZero() && s.o.Now().Sub(v.savedAt) < s.o.JourneyInterval {
		sh.mu.Unlock()
		return nil, false
	}
	v.dirty, v.urgent = false, false
	// Copy under the shard's lock, encode outside it: every batch of the
	// shard's visitors waits for that lock, and a flush encodes thousands
	// of journeys. The next batch updates the lists in place, so the
	// copy shares none (events are not changed once made).
	rec := storedJourneyRecord{VisitContext: v.jour.Clone()}
	recent := v.recent.list() // a copy
	rec.UpdatedAt = s.o.Now().UTC()
	v.savedAt = rec.UpdatedAt
	sh.mu.Unlock()

	rec.Recent = make([]json.RawMessage, 0, len(recent))
	for i := range recent {
		if b, err := recent[i].MarshalJSON(); err == nil {
			rec.Recent = append(rec.Recent, b)
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		s.o.Logger.Warn("encode visitor journey", "visitor", v.visitorID, "err", err)
		return nil, false
	}
	return data, true
}

// saveJourney writes a journey record, marking the visit dirty again if
// the write fails so the next flush retries it.
func (s *Service) saveJourney(ctx context.Context, v *visit, data []byte) {
	if err := s.o.Store.PutMeta(ctx, journeyKey(v.visitorID), data); err != nil {
		s.o.Logger.Warn("save visitor journey", "visitor", v.visitorID, "err", err)
		v.sh.mu.Lock()
		v.dirty, v.urgent = true, true // retried at the next flush
		v.sh.mu.Unlock()
		return
	}
	s.mu.Lock()
	forgotten := s.visits[v.visitorID] != v
	s.mu.Unlock()
	if forgotten {
		// Erased while this flush was writing: take the write back.
		_ = s.DropJourney(ctx, v.visitorID)
	}
}

// expire drops idle visits and lets the engines forget them.
func (s *Service) expire() {
	now := s.o.Now()
	s.mu.Lock()
	for id, v := range s.visits {
		if !v.online && !v.dirty && now.Sub(v.seen) > visitIdle {
			delete(s.visits, id)
		}
	}
	sites := make([]*site, 0, len(s.sites))
	for _, st := range s.sites {
		sites = append(sites, st)
	}
	s.mu.Unlock()
	for _, st := range sites {
		for i := range st.shards {
			sh := &st.shards[i]
			sh.mu.Lock()
			sh.engine.Expire(now)
			sh.mu.Unlock()
		}
	}
	if s.o.Recorder != nil {
		if err := s.o.Recorder.Flush(visitIdle); err != nil {
			s.o.Logger.Warn("write recordings", "err", err)
		}
	}
}

// LiveVisitor is a visitor connected to this node, for the console.
type LiveVisitor struct {
	Visitor     chat.Visitor `json:"visitor"`
	Page        string       `json:"page"`
	Score       float64      `json:"score"`
	Explanation string       `json:"explanation,omitempty"`
	OnlineSince time.Time    `json:"online_since"`
}

// Live returns the visitors of site connected to this node, most
// struggling first, at most limit.
func (s *Service) Live(ctx context.Context, siteKey string, limit int) ([]LiveVisitor, error) {
	type row struct {
		v     *visit
		id    string
		since time.Time
		score float64
	}
	var rows []row
	s.mu.Lock()
	for _, v := range s.visits {
		if v.site == siteKey && v.online {
			rows = append(rows, row{v: v, id: v.visitorID, since: v.since})
		}
	}
	s.mu.Unlock()
	for i := range rows {
		sh := rows[i].v.sh
		sh.mu.Lock()
		rows[i].score = rows[i].v.jour.Score
		sh.mu.Unlock()
	}
	// Rank from memory first so that only the visitors returned cost a
	// store read and a journey copy.
	slices.SortStableFunc(rows, func(a, b row) int {
		return compareLive(a.score, a.since, b.score, b.since)
	})
	n := len(rows)
	if limit > 0 && limit < n {
		n = limit
	}
	out := make([]LiveVisitor, 0, n)
	for _, r := range rows {
		if limit > 0 && len(out) == limit {
			break
		}
		rec, err := s.o.Store.Visitor(ctx, r.id)
		if errors.Is(err, chat.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		lv := LiveVisitor{Visitor: rec, OnlineSince: r.since}
		r.v.sh.mu.Lock()
		lv.Score, lv.Explanation, lv.Page = r.v.jour.Score, r.v.jour.Explanation, r.v.page
		lv.Visitor.Context = cloneJourney(r.v.jour)
		r.v.sh.mu.Unlock()
		out = append(out, lv)
	}
	// A score may have moved since the ranking; keep the list ordered by
	// the scores it reports.
	sortLive(out)
	return out, nil
}

// Journey returns the journey this node holds for a visitor, or nil.
func (s *Service) Journey(visitorID string) *chat.VisitContext {
	s.mu.Lock()
	v := s.visits[visitorID]
	s.mu.Unlock()
	if v == nil {
		return nil
	}
	v.sh.mu.Lock()
	defer v.sh.mu.Unlock()
	if !v.loaded && !v.dirty {
		return nil
	}
	return cloneJourney(v.jour)
}

func cloneJourney(j chat.VisitContext) *chat.VisitContext {
	out := j.Clone()
	return &out
}
