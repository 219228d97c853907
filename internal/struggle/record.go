package struggle

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/detect"
	"github.com/lifelinehq/lifeline/detect/backtest"
)

// Recorder keeps a sample of visits as JSON Lines recordings for backtests
// (the format `lifeline replay` reads). It records only the behaviour
// events the widget sends, which never hold typed values, and labels each
// visit with its outcome: contacted_support when the visitor started a
// conversation, converted after a conversion track event, else abandoned.
//
// A visit that contacted support gets a struggle episode starting a minute
// before the contact on the page they contacted from: asking for help is
// the only ground truth production has, and an alert up to two minutes
// after that onset counts as a hit.
type Recorder struct {
	dir   string
	share float64
	now   func() time.Time

	mu     sync.Mutex
	visits map[string]*recording
}

type recording struct {
	s    backtest.Session
	seen time.Time
}

// Recording limits: events kept per visit, visits buffered at once.
const (
	maxRecordedEvents = 500
	maxRecordings     = 10_000
	contactLead       = time.Minute
)

// ConversionEvents are the track event names that mark a visit converted.
var ConversionEvents = []string{"purchase", "order_completed", "checkout_completed", "signup_completed", "converted"}

// NewRecorder records share (0 to 1) of visits into dir.
func NewRecorder(dir string, share float64) (*Recorder, error) {
	if share < 0 || share > 1 {
		return nil, fmt.Errorf("record sample %g: %w: want 0 to 1", share, chat.ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("recordings directory: %w", err)
	}
	return &Recorder{dir: dir, share: share, now: time.Now, visits: map[string]*recording{}}, nil
}

// sampled picks visits by a hash of the visitor ID: stable for one visitor,
// random across them.
func (r *Recorder) sampled(visitorID string) bool {
	sum := sha256.Sum256([]byte("record:" + visitorID))
	return float64(binary.BigEndian.Uint64(sum[:8]))/float64(^uint64(0)) < r.share
}

// Events adds a batch to the visit's recording.
func (r *Recorder) Events(ref chat.VisitorRef, events []detect.Event) {
	if !r.sampled(ref.VisitorID) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.visits[ref.VisitorID]
	if rec == nil {
		if len(r.visits) >= maxRecordings {
			return // a full buffer drops new visits, never memory bounds
		}
		rec = &recording{s: backtest.Session{Visit: ref.SiteKey + "/" + ref.VisitorID, Site: ref.SiteKey, Outcome: backtest.OutcomeAbandoned}}
		r.visits[ref.VisitorID] = rec
	}
	rec.seen = r.now()
	for _, ev := range events {
		if len(rec.s.Events) >= maxRecordedEvents {
			break
		}
		ev.Props = nil // site-defined properties may be personal
		rec.s.Events = append(rec.s.Events, ev)
		if ev.Kind == detect.KindTrack && rec.s.Outcome == backtest.OutcomeAbandoned {
			for _, name := range ConversionEvents {
				if strings.EqualFold(ev.Name, name) {
					rec.s.Outcome = backtest.OutcomeConverted
				}
			}
		}
	}
}

// Contacted labels the visit contacted_support at now on page.
func (r *Recorder) Contacted(visitorID, page string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.visits[visitorID]
	if rec == nil || rec.s.Outcome == backtest.OutcomeContactedSupport {
		return
	}
	rec.s.Outcome = backtest.OutcomeContactedSupport
	rec.s.Episodes = append(rec.s.Episodes, backtest.Episode{Page: page, Onset: now.Add(-contactLead), Label: backtest.OutcomeContactedSupport})
}

// Flush writes the visits idle for longer than idle (all with idle 0) to
// one file per site and day.
func (r *Recorder) Flush(idle time.Duration) error {
	now := r.now()
	r.mu.Lock()
	var done []backtest.Session
	for id, rec := range r.visits {
		if idle == 0 || now.Sub(rec.seen) > idle {
			done = append(done, rec.s)
			delete(r.visits, id)
		}
	}
	r.mu.Unlock()
	bySite := map[string][]backtest.Session{}
	for _, s := range done {
		bySite[s.Site] = append(bySite[s.Site], s)
	}
	var errs []error
	for site, list := range bySite {
		errs = append(errs, r.write(site, now, list))
	}
	return errors.Join(errs...)
}

// Recording files are named SITE-YYYY-MM-DD.jsonl after the UTC day they
// were written on. The privacy package finds, erases and expires them by
// these helpers.
const recordingDayLayout = "2006-01-02"

// recordingFile is the file in dir a site's sessions of day t go to.
func recordingFile(dir, site string, t time.Time) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%s.jsonl", site, t.UTC().Format(recordingDayLayout)))
}

// RecordingFiles lists the recording files of site in dir, in name order
// (oldest day first). Only SITE-YYYY-MM-DD.jsonl names count: site "acme"
// must not pick up the files of site "acme-staging".
func RecordingFiles(dir, site string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, site+"-*.jsonl"))
	if err != nil {
		return nil, err
	}
	own := names[:0]
	for _, name := range names {
		if _, ok := RecordingDay(site, name); ok {
			own = append(own, name)
		}
	}
	return own, nil
}

// RecordingDay parses the day of a recording file name of site.
func RecordingDay(site, name string) (time.Time, bool) {
	base := strings.TrimSuffix(filepath.Base(name), ".jsonl")
	day, ok := strings.CutPrefix(base, site+"-")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(recordingDayLayout, day)
	return t, err == nil
}

func (r *Recorder) write(site string, now time.Time, list []backtest.Session) error {
	name := recordingFile(r.dir, site, now)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("write recording: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, s := range list {
		line, err := json.Marshal(s)
		if err != nil {
			continue
		}
		w.Write(line)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write recording %s: %w", name, err)
	}
	return f.Close()
}

// Sessions reads up to limit recorded sessions of site, newest files first.
func (r *Recorder) Sessions(ctx context.Context, site string, limit int) ([]backtest.Session, error) {
	matches, err := RecordingFiles(r.dir, site)
	if err != nil {
		return nil, err
	}
	var out []backtest.Session
	for i := len(matches) - 1; i >= 0 && len(out) < limit; i-- {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(matches[i])
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
		for sc.Scan() && len(out) < limit {
			if s, err := backtest.DecodeSession(sc.Bytes()); err == nil {
				out = append(out, s)
			}
		}
		f.Close()
	}
	return out, nil
}
