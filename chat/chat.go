// Package chat is Lifeline's domain: sites, visitors, agents, conversations,
// messages, routing and the hub that connects visitors to agents in real time.
//
// chat defines the Store and Broker interfaces it consumes; implementations
// live elsewhere (internal/store/bolt, internal/redis) and are chosen by cmd.
package chat

import (
	"errors"
	"strings"
)

// Contract errors. Every Store and Broker returns these (possibly wrapped) so
// callers can test them with errors.Is; the conformance suites in chattest
// check that they do.
var (
	// ErrNotFound means the requested record does not exist.
	ErrNotFound = errors.New("chat: not found")
	// ErrConflict means a write lost a race or violates a uniqueness or state
	// rule, e.g. claiming a conversation that is no longer waiting.
	ErrConflict = errors.New("chat: conflict")
	// ErrCapacity means an agent is already at capacity.
	ErrCapacity = errors.New("chat: agent at capacity")
	// ErrClosed means the Store, Broker or Hub has been closed.
	ErrClosed = errors.New("chat: closed")
	// ErrInvalid means an argument failed validation. Errors wrapping it
	// say what was wrong after it, as "…: chat: invalid argument: what".
	ErrInvalid = errors.New("chat: invalid argument")
)

// Problem returns what a validation error says was wrong, for the person
// who gave the input: the text after ErrInvalid, without the operation
// and record IDs wrapped around it. Other errors keep their whole text.
func Problem(err error) string {
	msg, mark := err.Error(), ErrInvalid.Error()+": "
	if _, what, ok := strings.Cut(msg, mark); ok && errors.Is(err, ErrInvalid) {
		return strings.ReplaceAll(what, mark, "") // joined problems each carry it
	}
	return msg
}
