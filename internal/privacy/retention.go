package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/struggle"
)

// Retention is a site's retention periods in days; zero keeps forever.
type Retention struct {
	// Transcripts: resolved conversations (messages, notes) last updated
	// longer ago are deleted.
	Transcripts int `json:"transcripts_days"`
	// Journeys: the behaviour journey (pages, errors, findings) of
	// visitors not seen for longer is cleared.
	Journeys int `json:"journeys_days"`
	// Recordings: recording files of older days are deleted.
	Recordings int `json:"recordings_days"`
}

// maxRetentionDays bounds every period (about 27 years).
const maxRetentionDays = 10_000

// Validate reports a negative or absurd period as chat.ErrInvalid.
func (r Retention) Validate() error {
	for _, d := range []int{r.Transcripts, r.Journeys, r.Recordings} {
		if d < 0 || d > maxRetentionDays {
			return fmt.Errorf("retention days must be 0 (keep) to %d: %w", maxRetentionDays, chat.ErrInvalid)
		}
	}
	return nil
}

func retentionKey(site string) string { return "retention/" + site }

// Retention returns a site's periods (zero when none are set).
func (s *Service) Retention(ctx context.Context, site string) (Retention, error) {
	var r Retention
	if _, err := chat.MetaJSON(ctx, s.o.Store, retentionKey(site), &r); err != nil {
		return Retention{}, err
	}
	return r, nil
}

// SetRetention stores a site's periods and audits the change.
func (s *Service) SetRetention(ctx context.Context, site string, r Retention, by Actor) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if _, err := s.o.Store.Site(ctx, site); err != nil {
		return err
	}
	data, _ := json.Marshal(r)
	if err := s.o.Store.PutMeta(ctx, retentionKey(site), data); err != nil {
		return err
	}
	s.audit(ctx, site, by, "retention.update", string(data))
	return nil
}

// SweeperOptions configures a Sweeper. A zero field means its default.
type SweeperOptions struct {
	// Interval between sweeps. Defaults to 10 minutes.
	Interval time.Duration
	// Batch is how many records one step deletes before pausing. Defaults
	// to 100.
	Batch int
	// Pause between batches, so that the sweep never holds the store for
	// long. Defaults to 50 ms.
	Pause time.Duration
	// Scan is the most candidates read per site and kind per sweep.
	// Defaults to 10 000.
	Scan int
	// Registerer receives the removal counter. Nil skips it.
	Registerer prometheus.Registerer
}

// Sweeper deletes what is past each site's retention, in the background.
type Sweeper struct {
	svc     *Service
	o       SweeperOptions
	removed *prometheus.CounterVec

	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// NewSweeper returns a sweeper for svc's store. Start runs it.
func NewSweeper(svc *Service, o SweeperOptions) *Sweeper {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Pause <= 0 {
		o.Pause = 50 * time.Millisecond
	}
	if o.Scan <= 0 {
		o.Scan = 10_000
	}
	w := &Sweeper{svc: svc, o: o, removed: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lifeline_retention_removed_total",
		Help: "Records removed by the retention sweeper, by kind (conversation, journey, recording_file).",
	}, []string{"kind"})}
	if o.Registerer != nil {
		o.Registerer.MustRegister(w.removed)
	}
	return w
}

// Start runs sweeps every Interval until Stop.
func (w *Sweeper) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.wg.Go(func() {
		t := time.NewTicker(w.o.Interval)
		defer t.Stop()
		for {
			if err := w.Sweep(ctx); err != nil && ctx.Err() == nil {
				w.svc.o.Logger.Warn("retention sweep", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// Stop ends the sweeps and waits for the current one.
func (w *Sweeper) Stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

// Removed returns how many records of kind the sweeper removed.
func (w *Sweeper) Removed(kind string) float64 {
	var m dto.Metric
	_ = w.removed.WithLabelValues(kind).Write(&m)
	return m.GetCounter().GetValue()
}

// Sweep runs one pass over every site.
func (w *Sweeper) Sweep(ctx context.Context) error {
	sites, err := w.svc.o.Store.Sites(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, site := range sites {
		r, err := w.svc.Retention(ctx, site.Key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		now := w.svc.o.Now()
		if r.Transcripts > 0 {
			errs = append(errs, w.sweepTranscripts(ctx, site.Key, now.AddDate(0, 0, -r.Transcripts)))
		}
		if r.Journeys > 0 {
			errs = append(errs, w.sweepJourneys(ctx, site.Key, now.AddDate(0, 0, -r.Journeys)))
		}
		if r.Recordings > 0 {
			errs = append(errs, w.sweepRecordings(site.Key, now.AddDate(0, 0, -r.Recordings)))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// step counts one removal and pauses after each batch.
func (w *Sweeper) step(ctx context.Context, n *int) error {
	*n++
	if *n%w.o.Batch != 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(w.o.Pause):
		return nil
	}
}

func (w *Sweeper) sweepTranscripts(ctx context.Context, site string, cutoff time.Time) error {
	convs, err := w.svc.o.Store.Conversations(ctx, chat.ConversationQuery{SiteKey: site, Statuses: []chat.Status{chat.StatusResolved}, Limit: w.o.Scan})
	if err != nil {
		return err
	}
	n := 0
	for _, c := range convs {
		if !c.UpdatedAt.Before(cutoff) {
			continue
		}
		if err := w.svc.deleteConversation(ctx, c); err != nil {
			return err
		}
		w.removed.WithLabelValues("conversation").Inc()
		if err := w.step(ctx, &n); err != nil {
			return err
		}
	}
	return nil
}

func (w *Sweeper) sweepJourneys(ctx context.Context, site string, cutoff time.Time) error {
	list, err := w.svc.o.Store.FindVisitors(ctx, chat.VisitorQuery{SiteKey: site, Limit: w.o.Scan})
	if err != nil {
		return err
	}
	n := 0
	o := &w.svc.o
	if o.Journey == nil || o.DropJourney == nil {
		return nil
	}
	for _, v := range list {
		if !v.LastSeen.Before(cutoff) || o.Journey(ctx, v.ID) == nil {
			continue
		}
		if err := o.DropJourney(ctx, v.ID); err != nil {
			return err
		}
		w.removed.WithLabelValues("journey").Inc()
		if err := w.step(ctx, &n); err != nil {
			return err
		}
	}
	return nil
}

func (w *Sweeper) sweepRecordings(site string, cutoff time.Time) error {
	if w.svc.o.RecordDir == "" {
		return nil
	}
	files, err := struggle.RecordingFiles(w.svc.o.RecordDir, site)
	if err != nil {
		return err
	}
	day := cutoff.UTC().Truncate(24 * time.Hour)
	for _, name := range files {
		if d, ok := struggle.RecordingDay(site, name); ok && d.Before(day) {
			if err := os.Remove(name); err != nil && !os.IsNotExist(err) {
				return err
			}
			w.removed.WithLabelValues("recording_file").Inc()
		}
	}
	return nil
}
