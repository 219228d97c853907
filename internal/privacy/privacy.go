// Package privacy honours visitors' rights over their data: export of
// everything held about a visitor, erasure everywhere, and per-site
// retention periods enforced by a background sweeper.
package privacy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/audit"
	"github.com/lifelinehq/lifeline/internal/struggle"
)

// Forgetter is anything outside the store that holds visitor data: the
// detector's memory, queued webhook deliveries.
type Forgetter interface {
	ForgetVisitor(ctx context.Context, siteKey, visitorID string) error
}

// ConversationForgetter is anything outside a conversation's own records
// that keeps data about it (assist's record of the suggestions shown and
// used and the tags added). It is told about every conversation erased
// with its visitor or expired by retention.
type ConversationForgetter interface {
	ForgetConversation(ctx context.Context, siteKey, conversationID string) error
}

// Options configures a Service. Store is required.
type Options struct {
	Store  chat.Store
	Logger *slog.Logger
	// RecordDir is where struggle recordings are (JSON Lines per site and
	// day). Empty means none are kept.
	RecordDir string
	// Forgetters are told about every erasure.
	Forgetters []Forgetter
	// ConversationForgetters are told about every conversation deleted.
	ConversationForgetters []ConversationForgetter
	// Disconnect closes the visitor's open sockets (Hub.DisconnectVisitor).
	Disconnect func(ctx context.Context, visitorID string)
	// Journey returns the visitor's journey (struggle.Service.JourneyOf),
	// or nil.
	Journey func(ctx context.Context, visitorID string) *chat.VisitContext
	// DropJourney deletes a visitor's stored journey, for retention.
	DropJourney func(ctx context.Context, visitorID string) error
	// Audit records erasures and retention changes. Nil records nothing.
	Audit *audit.Log
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Service exports and erases visitors' data.
type Service struct {
	o Options
}

// New returns a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}
}

// ExportVersion is the version of the export document.
const ExportVersion = 1

// Export is everything Lifeline holds about one visitor.
type Export struct {
	Version    int       `json:"version"`
	ExportedAt time.Time `json:"exported_at"`
	// Visitor holds identity, attributes, device, locale and the journey
	// (pages, errors, failed requests, detector findings, offers).
	Visitor       chat.Visitor         `json:"visitor"`
	Conversations []ConversationExport `json:"conversations"`
	// Recordings are the recorded behaviour sessions of the visitor, as
	// stored for backtests.
	Recordings []json.RawMessage `json:"recordings"`
}

// ConversationExport is one conversation with its messages and notes.
type ConversationExport struct {
	chat.Conversation
	Messages []chat.Message `json:"messages"`
	Notes    []chat.Note    `json:"notes"`
}

// maxConversations bounds the conversations of one visitor read at once.
const maxConversations = 10_000

// Export returns everything held about the visitor, or chat.ErrNotFound.
func (s *Service) Export(ctx context.Context, visitorID string) (Export, error) {
	v, err := s.o.Store.Visitor(ctx, visitorID)
	if err != nil {
		return Export{}, fmt.Errorf("export visitor: %w", err)
	}
	if s.o.Journey != nil {
		v.Context = s.o.Journey(ctx, visitorID)
	}
	out := Export{Version: ExportVersion, ExportedAt: s.o.Now().UTC(), Visitor: v,
		Conversations: []ConversationExport{}, Recordings: []json.RawMessage{}}
	convs, err := s.o.Store.Conversations(ctx, chat.ConversationQuery{VisitorID: visitorID, Limit: maxConversations})
	if err != nil {
		return Export{}, fmt.Errorf("export conversations of %s: %w", visitorID, err)
	}
	for _, c := range convs {
		ce := ConversationExport{Conversation: c}
		if ce.Messages, err = s.o.Store.Messages(ctx, c.ID, 0, 0); err != nil && !errors.Is(err, chat.ErrNotFound) {
			return Export{}, fmt.Errorf("export messages of %s: %w", c.ID, err)
		}
		if ce.Notes, err = s.o.Store.Notes(ctx, c.ID); err != nil && !errors.Is(err, chat.ErrNotFound) {
			return Export{}, fmt.Errorf("export notes of %s: %w", c.ID, err)
		}
		if ce.Messages == nil {
			ce.Messages = []chat.Message{}
		}
		if ce.Notes == nil {
			ce.Notes = []chat.Note{}
		}
		out.Conversations = append(out.Conversations, ce)
	}
	err = s.eachRecording(v.SiteKey, visitorID, func(line []byte) {
		out.Recordings = append(out.Recordings, json.RawMessage(bytes.Clone(line)))
	}, false)
	if err != nil {
		return Export{}, err
	}
	return out, nil
}

// Actor is who asked for an erasure, for the audit log.
type Actor struct {
	ID, Email string
}

// Erased counts what an erasure removed.
type Erased struct {
	Conversations  int `json:"conversations"`
	Messages       int `json:"messages"`
	RecordingLines int `json:"recording_lines"`
}

// Erase removes the visitor everywhere: open sockets are closed, the
// visitor record with its indexes, every conversation with its messages and
// notes, recorded sessions, queued deliveries and in-memory state. The
// visitor's token stops working, because the hub requires the record.
// An audit entry records the erasure with a digest of the visitor ID and
// counts, never the erased content. Erase is idempotent: if it fails part
// way, run it again. chat.ErrNotFound if nothing is held about the visitor.
func (s *Service) Erase(ctx context.Context, visitorID string, by Actor) (Erased, error) {
	var out Erased
	v, err := s.o.Store.Visitor(ctx, visitorID)
	if err != nil && !errors.Is(err, chat.ErrNotFound) {
		return out, fmt.Errorf("erase visitor: %w", err)
	}
	found := err == nil
	if s.o.Disconnect != nil {
		s.o.Disconnect(ctx, visitorID)
	}
	for _, f := range s.o.Forgetters {
		if err := f.ForgetVisitor(ctx, v.SiteKey, visitorID); err != nil {
			return out, fmt.Errorf("erase visitor: %w", err)
		}
	}
	if err := s.o.Store.DeleteVisitor(ctx, visitorID); err != nil {
		return out, fmt.Errorf("erase visitor: %w", err)
	}
	for range maxConversations / 100 {
		convs, err := s.o.Store.Conversations(ctx, chat.ConversationQuery{VisitorID: visitorID, Limit: 100})
		if err != nil {
			return out, fmt.Errorf("erase conversations: %w", err)
		}
		if len(convs) == 0 {
			break
		}
		for _, c := range convs {
			if v.SiteKey == "" {
				v.SiteKey = c.SiteKey
			}
			if err := s.deleteConversation(ctx, c); err != nil {
				return out, fmt.Errorf("erase conversation: %w", err)
			}
			found = true
			out.Conversations++
			out.Messages += int(c.LastSeq)
		}
	}
	if v.SiteKey != "" {
		err := s.eachRecording(v.SiteKey, visitorID, func([]byte) { out.RecordingLines++ }, true)
		if err != nil {
			return out, fmt.Errorf("erase recordings: %w", err)
		}
	}
	// A journey flush racing the first delete may have written the record
	// back; delete again now that nothing holds the visit.
	if err := s.o.Store.DeleteVisitor(ctx, visitorID); err != nil {
		return out, fmt.Errorf("erase visitor: %w", err)
	}
	if !found && out.RecordingLines == 0 {
		return out, fmt.Errorf("erase visitor %s: %w", visitorID, chat.ErrNotFound)
	}
	detail := fmt.Sprintf("visitor %s erased: %d conversations, %d messages, %d recorded sessions",
		Digest(visitorID), out.Conversations, out.Messages, out.RecordingLines)
	s.audit(ctx, v.SiteKey, by, "visitor.erase", detail)
	s.o.Logger.Info("visitor erased", "site", v.SiteKey, "conversations", out.Conversations)
	return out, nil
}

// deleteConversation removes c with everything kept about it. The
// forgetters go first: if one fails, the conversation is still there for
// the retry to find.
func (s *Service) deleteConversation(ctx context.Context, c chat.Conversation) error {
	for _, f := range s.o.ConversationForgetters {
		if err := f.ForgetConversation(ctx, c.SiteKey, c.ID); err != nil {
			return err
		}
	}
	return s.o.Store.DeleteConversation(ctx, c.ID)
}

// Digest is how audit entries name an erased visitor: the first 16 hex
// digits of SHA-256 of the ID. Whoever still has the ID can check it was
// erased; the entry itself does not hold it.
func Digest(visitorID string) string {
	sum := sha256.Sum256([]byte("lifeline-erased:" + visitorID))
	return hex.EncodeToString(sum[:8])
}

func (s *Service) audit(ctx context.Context, site string, by Actor, action, detail string) {
	s.o.Audit.Record(ctx, chat.Agent{ID: by.ID, Email: by.Email}, site, action, "", detail)
}

// eachRecording calls fn with every recorded session line of the visitor
// in the site's recording files. With remove, it rewrites each file that
// had such lines without them (a new file renamed over the old one).
func (s *Service) eachRecording(site, visitorID string, fn func(line []byte), remove bool) error {
	if s.o.RecordDir == "" || site == "" {
		return nil
	}
	files, err := struggle.RecordingFiles(s.o.RecordDir, site)
	if err != nil {
		return err
	}
	visit := site + "/" + visitorID
	for _, name := range files {
		if err := filterFile(name, visit, fn, remove); err != nil {
			return err
		}
	}
	return nil
}

func filterFile(name, visit string, fn func([]byte), remove bool) error {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var kept bytes.Buffer
	hits := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var head struct {
			Visit string `json:"visit"`
		}
		if bytes.Contains(line, []byte(visit)) && json.Unmarshal(line, &head) == nil && head.Visit == visit {
			hits++
			fn(line)
			continue
		}
		if remove {
			kept.Write(line)
			kept.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if !remove || hits == 0 {
		return nil
	}
	tmp := name + ".erase"
	if err := os.WriteFile(tmp, kept.Bytes(), 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
