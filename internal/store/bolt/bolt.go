// Package bolt is Lifeline's embedded durable chat.Store: one file on
// go.etcd.io/bbolt, and beside it a message log (wal.go) that makes
// appends durable with one write and one fdatasync per group.
//
// Records are JSON. Every lookup the hub makes on a hot path goes through a
// bucket keyed for it (a reference, a status queue, an agent's open
// conversations, a conversation's messages by sequence number), never a
// scan of all records. Message appends from many callers are gathered by
// one writer goroutine and logged together; a checkpointer copies the log
// into the B+tree every few seconds (checkpoint.go), and reads see logged
// messages until then (pending.go). Visitor and meta puts are gathered by
// a second writer into one bbolt transaction per group; every other write
// is its own transaction. bbolt runs one writer at a time, so they
// interleave safely.
package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/lifelinehq/lifeline/chat"
)

// Bucket names. Index keys join their parts with a NUL byte, which is why
// IDs, keys and references containing NUL are rejected as chat.ErrInvalid.
var (
	bSites       = []byte("sites")           // key -> Site
	bVisitors    = []byte("visitors")        // id -> Visitor
	bVisSite     = []byte("visitors.site")   // site \0 id -> ""
	bVisEmail    = []byte("visitors.email")  // site \0 lower(email) \0 id -> ""
	bVisExt      = []byte("visitors.ext")    // site \0 external id \0 id -> ""
	bAgents      = []byte("agents")          // id -> agentRecord
	bAgentEmail  = []byte("agents.email")    // lower(email) -> id
	bSessions    = []byte("sessions")        // id -> Session
	bSessionExp  = []byte("sessions.expiry") // expires(12) id -> ""
	bConvs       = []byte("convs")           // id -> Conversation
	bConvRef     = []byte("convs.ref")       // upper(ref) -> id
	bConvAll     = []byte("convs.all")       // created(12) id -> ""
	bConvStatus  = []byte("convs.status")    // status \0 created(12) id -> ""
	bConvAgent   = []byte("convs.agent")     // agent \0 created id -> ""
	bConvVisitor = []byte("convs.visitor")   // visitor \0 created id -> ""
	bConvSite    = []byte("convs.site")      // site \0 created id -> ""
	bAgentOpen   = []byte("agents.open")     // agent \0 conv id -> ""  (active or pending)
	bMessages    = []byte("messages")        // see codec.go
	bNotes       = []byte("notes")           // conv \0 n(8, big-endian) -> Note
	bMeta        = []byte("meta")            // key -> value
	bLogs        = []byte("logs")            // name \0 n(8, big-endian, from 1 without gaps) -> entry
	bLog         = []byte("log")             // the message log's ID and checkpoint (checkpoint.go)

	allBuckets = [][]byte{
		bSites, bVisitors, bVisSite, bVisEmail, bVisExt, bAgents, bAgentEmail,
		bSessions, bSessionExp, bConvs, bConvRef, bConvAll, bConvStatus, bConvAgent,
		bConvVisitor, bConvSite, bAgentOpen, bMessages, bNotes, bMeta, bLogs, bLog,
	}
)

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// Logger receives lifecycle and error logs. Nil discards them.
	Logger *slog.Logger
	// Timeout is how long Open waits for the file lock held by another
	// process. Defaults to 5 s.
	Timeout time.Duration
	// MaxBatch is the most appends committed in one transaction. Defaults
	// to 2048.
	MaxBatch int
	// QueueLen is how many appends, and apart from them how many puts,
	// may wait for their writer before callers block. Defaults to 4096.
	QueueLen int
	// CommitDelay is how long the append writer waits, after the first
	// append of a group arrives, for others to join it before logging
	// them, like PostgreSQL's commit_delay; appends beyond MaxBatch wait
	// for the next group. A group costs one fdatasync of the log whatever
	// it holds, and appends that arrive during one form the next group
	// anyway, so the delay pays only when many appends are in flight: the
	// writer waits only after a group of CommitSiblings appends or more
	// (PostgreSQL's commit_siblings), so a lone writer, or a node at a
	// few thousand messages a second, is not slowed. Defaults to 500 µs;
	// negative commits at once.
	CommitDelay time.Duration
	// CommitSiblings is the smallest group after which the append writer
	// sleeps out CommitDelay before the next. On this machine class, at
	// 2,000 messages/s (groups of 1–3) waiting after every shared group
	// made the p50 twice and the p99 1.6 times as long, for 11 % less CPU;
	// with 64 appends in flight not waiting halved the group size and cost
	// up to a quarter of the throughput. Eight keeps a node at a few
	// thousand messages a second (groups of 1.6–1.9 on average) out of
	// the delay, where five let it in now and then. Defaults to 8.
	CommitSiblings int
	// PutDelay is CommitDelay for the writer of visitor and meta puts,
	// whose groups cost a bbolt commit (two fsyncs and the pages it
	// touches): worth waiting for in a storm of hellos. Defaults to
	// 500 µs; negative commits at once.
	PutDelay time.Duration
	// CheckpointInterval is how long appended messages may stay in the
	// message log (wal.go) before a checkpoint copies them into the
	// B+tree; a log over 16 MiB is checkpointed at once. A checkpoint
	// spreads its writes over half the time its messages took to arrive
	// (paceSpan). Longer intervals spread a checkpoint's fixed costs (a
	// page write per conversation it touches) over more messages and hold
	// more of them in memory; the log is replayed on Open after a crash.
	// Defaults to 5 s.
	CheckpointInterval time.Duration
	// NoSync skips fsync on commit: acknowledged messages may be lost on a
	// crash. For tests and benchmarks only. Defaults to false.
	NoSync bool
}

// Stats counts the work of the group-commit writers since Open.
type Stats struct {
	// Commits is how many groups were committed: appends logged, or puts
	// stored in one transaction.
	Commits uint64
	// Appends is how many AppendMessage, PutVisitor and PutMeta calls
	// and group changes (change.go) those commits answered, including
	// idempotent repeats and calls answered with ErrNotFound or refused.
	Appends uint64
}

// Store is the embedded chat.Store. It is safe for concurrent use.
type Store struct {
	db       *bbolt.DB
	log      *slog.Logger
	maxBatch int
	delay    time.Duration // Options.CommitDelay; ≤ 0: none
	siblings int           // Options.CommitSiblings
	putDelay time.Duration // Options.PutDelay; ≤ 0: none

	mu     sync.RWMutex // guards closed against sends on reqs and puts
	closed bool
	reqs   chan *appendReq // appends (and flushes), for writer
	puts   chan *appendReq // visitor and meta puts, for putWriter
	wg     sync.WaitGroup
	done   atomic.Bool // set once Close begins; read without mu on every call
	once   sync.Once
	errc   error

	commits atomic.Uint64
	appends atomic.Uint64
	syncs   atomic.Pointer[func(kind string, d time.Duration)] // see ObserveSyncs

	cache *recordCache // decoded conversations and visitors; see cache.go

	// The message log (wal.go, checkpoint.go). wal, ckptBusy and clients
	// belong to the writer goroutine.
	wal       *wal
	clients   clientIDs // see clientids.go
	pend      *pendingLog
	every     time.Duration // Options.CheckpointInterval
	ckptBusy  bool          // a generation is with the checkpointer
	ckptReq   chan ckptJob  // writer -> checkpointer: store this generation
	ckptDone  chan struct{} // checkpointer -> writer: stored
	ckptHurry chan struct{} // writer -> checkpointer: stop pacing; buffered
	logErr    atomic.Pointer[error]
	// released counts the checkpointer's drops from pend, each counted
	// before it starts. A read transaction that began before a checkpoint
	// committed, and read pend after the checkpointer dropped what it
	// stored, would miss those messages; such a read sees the count move
	// and runs again (viewPending).
	released atomic.Uint64

	// batchHook and putHook, if set (by tests, before the writer's next
	// request), are called by the append writer and the put writer with
	// the size of each group before it commits.
	batchHook, putHook func(n int)
	// ckptPiece is about how many bytes one checkpoint transaction
	// writes (defaultCkptPiece; smaller in tests). pieceHook, if set by a
	// test, is called after each transaction of a checkpoint but its
	// last. pace waits between them (waitUntil; tests replace it).
	ckptPiece int
	pieceHook func()
	pace      func(until time.Time) bool
}

var _ chat.Store = (*Store)(nil)

// Open opens or creates the database file at path, creating its parent
// directories, and starts the append writer. Close releases both.
func Open(path string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 2048
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = 4096
	}
	if opts.CommitDelay == 0 {
		opts.CommitDelay = 500 * time.Microsecond
	}
	if opts.CommitSiblings <= 0 {
		opts.CommitSiblings = 8
	}
	if opts.PutDelay == 0 {
		opts.PutDelay = 500 * time.Microsecond
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 5 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open bolt store: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opts.Timeout,
		// The freelist is rebuilt on open instead of written on every
		// commit: smaller commits for the append path.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
		NoSync:         opts.NoSync,
	})
	if err != nil {
		return nil, fmt.Errorf("open bolt store %s: %w", path, err)
	}
	var logID, done uint64
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if err := moveLogs(tx); err != nil {
			return err
		}
		b := tx.Bucket(bLog)
		if v := b.Get(keyLogID); len(v) == 8 {
			logID = binary.BigEndian.Uint64(v)
		} else {
			logID = rand.Uint64() | 1 // never 0
			if err := b.Put(keyLogID, u64(logID)); err != nil {
				return err
			}
		}
		if v := b.Get(keyCheckpoint); len(v) == 8 {
			done = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open bolt store %s: %w", path, err), db.Close())
	}
	w, logged, err := openWAL(path, logID, done, opts.NoSync)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open bolt store %s: %w", path, err), db.Close())
	}
	s := &Store{
		db:        db,
		log:       opts.Logger,
		maxBatch:  opts.MaxBatch,
		delay:     opts.CommitDelay,
		siblings:  opts.CommitSiblings,
		putDelay:  opts.PutDelay,
		reqs:      make(chan *appendReq, opts.QueueLen),
		puts:      make(chan *appendReq, opts.QueueLen),
		cache:     newRecordCache(),
		wal:       w,
		pend:      newPendingLog(),
		clients:   newClientIDs(),
		every:     opts.CheckpointInterval,
		ckptPiece: defaultCkptPiece,
		ckptReq:   make(chan ckptJob),
		ckptDone:  make(chan struct{}),
		ckptHurry: make(chan struct{}, 1),
	}
	s.pace = s.waitUntil
	if err := s.replay(logged); err != nil {
		return nil, errors.Join(fmt.Errorf("open bolt store %s: replay message log: %w", path, err), w.close(), db.Close())
	}
	s.wg.Go(s.writer)
	s.wg.Go(s.putWriter)
	s.wg.Go(s.checkpointer)
	s.log.Info("bolt store open", "path", path)
	return s, nil
}

// replay stores the messages a crash left in the log, oldest generation
// first.
func (s *Store) replay(logged []loggedGen) error {
	if len(logged) == 0 {
		return nil
	}
	byConv := make(map[string][]pendingMsg)
	n := 0
	for _, lg := range logged {
		for _, pm := range lg.msgs {
			byConv[pm.m.ConversationID] = append(byConv[pm.m.ConversationID], pm)
		}
		n += len(lg.msgs)
	}
	if err := s.storeLogged(byConv, logged[len(logged)-1].gen, 0); err != nil {
		return err
	}
	s.log.Info("message log replayed", "messages", n, "generations", len(logged))
	return nil
}

// Stats returns the group-commit counters, for metrics.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Appends: s.appends.Load()}
}

// ObserveSyncs has fn told the duration of every durable write from now
// on: kind "log" for a group of appends written to the message log and
// fdatasynced, "tree" for a B+tree write transaction with its two fsyncs
// (visitor and meta puts, record updates, checkpoints), from asking for
// bbolt's write lock to the commit's end. Slow ones are
// the disk holding up every acknowledgement. fn runs on the writers'
// goroutines and must be quick.
func (s *Store) ObserveSyncs(fn func(kind string, d time.Duration)) { s.syncs.Store(&fn) }

// synced tells the observer, if any, how long a durable write took.
func (s *Store) synced(kind string, start time.Time) {
	if fn := s.syncs.Load(); fn != nil {
		(*fn)(kind, time.Since(start))
	}
}

// dbUpdate runs fn in a bbolt write transaction, timed for ObserveSyncs.
func (s *Store) dbUpdate(fn func(*bbolt.Tx) error) error {
	start := time.Now()
	err := s.db.Update(fn)
	s.synced("tree", start)
	return err
}

// Ping reports ErrClosed after Close, the error that stopped the message
// log, if any, and otherwise whether a read transaction can start.
func (s *Store) Ping(context.Context) error {
	if err := s.logErr.Load(); err != nil {
		return *err
	}
	return s.view(func(*bbolt.Tx) error { return nil })
}

// Close stops accepting appends (they return chat.ErrClosed), commits the
// appends already queued, waits for the writer and closes the file. It is
// idempotent; later calls return the first call's result.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.reqs)
		close(s.puts)
		s.mu.Unlock()
		s.done.Store(true)
		s.wg.Wait()
		if err := errors.Join(s.wal.close(), s.db.Close()); err != nil {
			s.errc = fmt.Errorf("close bolt store: %w", err)
		}
		s.log.Info("bolt store closed")
	})
	return s.errc
}

// view runs fn in a read transaction, mapping a closed database to
// chat.ErrClosed.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	if s.done.Load() {
		return chat.ErrClosed
	}
	return closedErr(s.db.View(fn))
}

// viewPending is view for an fn that also reads pending messages: it runs
// fn again if the checkpointer dropped some meanwhile (see released), so
// fn must start its results afresh on each call. Drops come at most once
// per checkpoint interval, so a retry is rare.
func (s *Store) viewPending(fn func(*bbolt.Tx) error) error {
	for {
		n := s.released.Load()
		err := s.view(fn)
		if err != nil || s.released.Load() == n {
			return err
		}
	}
}

// update runs fn in its own write transaction. Afterwards the record
// cache (cache.go) is emptied: fn may have changed any conversation or
// visitor. A write that knows which records it changed uses updateKnown.
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	return s.updateKnown(fn, s.cache.forgetAll)
}

// updateKnown runs fn in its own write transaction, then forget, which
// drops from the record cache whatever fn changed (nil: fn changed no
// conversation or visitor record).
func (s *Store) updateKnown(fn func(*bbolt.Tx) error, forget func()) error {
	if s.done.Load() {
		return chat.ErrClosed
	}
	err := closedErr(s.dbUpdate(fn))
	if forget != nil {
		forget()
	}
	return err
}

func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", chat.ErrClosed, err)
	}
	return err
}

// key joins parts with NUL bytes.
func key(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

// prefix is key(parts...) followed by a NUL: every key that starts with it
// belongs to that group.
func prefix(parts ...string) []byte { return append(key(parts...), 0) }

// hasNUL reports whether any s contains a NUL byte.
func hasNUL(ss ...string) bool {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				return true
			}
		}
	}
	return false
}

// appendTime appends t as 12 bytes that sort in time order: seconds since
// the epoch with the sign bit flipped, then nanoseconds.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// get decodes the JSON record under k in bucket name into v. It reports
// false if the key is absent.
func get(tx *bbolt.Tx, name, k []byte, v any) (bool, error) {
	raw := tx.Bucket(name).Get(k)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %s %q: %w", name, k, err)
	}
	return true, nil
}

// put encodes v as JSON under k in bucket name.
func put(tx *bbolt.Tx, name, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %q: %w", name, k, err)
	}
	return tx.Bucket(name).Put(k, raw)
}

// scanPrefix calls fn with every key (and value) under p in bucket name, in
// key order, newest last; reverse walks it backwards. fn returns false to
// stop.
func scanPrefix(tx *bbolt.Tx, name, p []byte, reverse bool, fn func(k, v []byte) (bool, error)) error {
	c := tx.Bucket(name).Cursor()
	var k, v []byte
	switch {
	case reverse && len(p) == 0:
		k, v = c.Last()
	case reverse:
		// The first key after the group: p with its last byte incremented
		// (p ends in NUL or a kind letter, so this never overflows).
		end := append([]byte(nil), p...)
		end[len(end)-1]++
		if k, _ = c.Seek(end); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	default:
		k, v = c.Seek(p)
	}
	for k != nil && hasPrefix(k, p) {
		more, err := fn(k, v)
		if err != nil || !more {
			return err
		}
		if reverse {
			k, v = c.Prev()
		} else {
			k, v = c.Next()
		}
	}
	return nil
}

func hasPrefix(b, p []byte) bool { return len(b) >= len(p) && string(b[:len(p)]) == string(p) }
