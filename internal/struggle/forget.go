package struggle

import (
	"context"

	"github.com/lifelinehq/lifeline/chat"
)

// emit hands e to Options.Events, if set.
func (s *Service) emit(ctx context.Context, e chat.Event) {
	if s.o.Events == nil {
		return
	}
	if e.At.IsZero() {
		e.At = s.o.Now().UTC()
	}
	s.o.Events.Emit(ctx, e)
}

// ForgetVisitor drops what this node holds about a visitor (the journey
// not yet flushed, a buffered recording) and the stored journey, for
// erasure: a later flush must not write the journey back.
func (s *Service) ForgetVisitor(ctx context.Context, _, visitorID string) error {
	s.mu.Lock()
	delete(s.visits, visitorID)
	s.mu.Unlock()
	if s.o.Recorder != nil {
		s.o.Recorder.Forget(visitorID)
	}
	return s.DropJourney(ctx, visitorID)
}

// Forget drops a visit not yet written.
func (r *Recorder) Forget(visitorID string) {
	r.mu.Lock()
	delete(r.visits, visitorID)
	r.mu.Unlock()
}
