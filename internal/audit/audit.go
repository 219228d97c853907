// Package audit records who did what to which conversation, visitor, rule
// or setting, in the shared Store so every node writes to and reads the
// same trail. Entries never hold erased content.
package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"time"

	"github.com/lifelinehq/lifeline/chat"
)

// Entry is one recorded action.
type Entry struct {
	At time.Time `json:"at"`
	// AgentID and AgentEmail name who acted: an agent, or an API key as
	// "key:<id>" and "key:<name>".
	AgentID    string `json:"agent_id"`
	AgentEmail string `json:"agent_email"`
	// Action is what was done, such as "conversation.transfer" or
	// "rules.update".
	Action string `json:"action"`
	Site   string `json:"site,omitempty"`
	// Target is the record acted on: a conversation, visitor, agent, key.
	Target string `json:"target,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Keep is how many entries each trail keeps.
const Keep = 5000

// globalKey is the trail of every site together; admins query it.
const globalKey = "audit-global"

func siteKey(site string) string { return "audit/" + site }

// Log writes and reads the audit trail.
type Log struct {
	store chat.Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Log on store. logger may be nil.
func New(store chat.Store, logger *slog.Logger) *Log {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Log{store: store, log: logger, now: time.Now}
}

// Record appends an entry to the site's trail and the global one. A failed
// write is logged, never returned: the action itself has happened.
func (l *Log) Record(ctx context.Context, by chat.Agent, site, action, target, detail string) {
	if l == nil {
		return
	}
	e := Entry{At: l.now().UTC(), AgentID: by.ID, AgentEmail: by.Email, Action: action, Site: site, Target: target, Detail: detail}
	data, _ := json.Marshal(e)
	keys := []string{globalKey}
	if site != "" {
		keys = append(keys, siteKey(site))
	}
	for _, k := range keys {
		if err := l.store.AppendLog(ctx, k, data, Keep); err != nil {
			l.log.Error("write audit entry", "action", action, "site", site, "err", err)
		}
	}
	l.log.Info("audit", "action", action, "site", site, "target", target, "by", by.Email)
}

// Entries returns up to limit entries, newest first: the site's trail, or
// every site's when site is empty.
func (l *Log) Entries(ctx context.Context, site string, limit int) ([]Entry, error) {
	key := globalKey
	if site != "" {
		key = siteKey(site)
	}
	raw, err := l.store.Log(ctx, key, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(raw))
	for _, r := range raw {
		var e Entry
		if json.Unmarshal(r, &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}
