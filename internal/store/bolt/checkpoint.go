package bolt

import (
	"context"
	"maps"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// The log's records in bucket bLog.
var (
	keyLogID      = []byte("id")           // random u64 written in every record
	keyCheckpoint = []byte("checkpointed") // u64: every generation up to it is in the B+tree
)

// ckptJob is a generation handed to the checkpointer, with the time to
// spread its transactions over (0: one after another).
type ckptJob struct {
	gen  uint64
	span time.Duration
}

// startCheckpoint ends the log's current generation and hands it to the
// checkpointer, paced (see paceSpan) unless hurried. Only the writer calls
// it, only while no checkpoint runs: the file it switches to holds the
// generation before, which the last checkpoint stored.
func (s *Store) startCheckpoint(hurried bool) {
	s.ckptBusy = true
	span := time.Duration(0)
	if !hurried {
		span = paceSpan(s.every, time.Since(s.wal.began))
	}
	gen, err := s.wal.rotate()
	if err != nil {
		s.log.Warn("message log kept its size", "err", err)
	}
	s.ckptReq <- ckptJob{gen: gen, span: span}
}

// paceSpan is how long a checkpoint of a generation that took age to fill
// (about the interval, or less when the log filled up first) spreads its
// transactions over: half of that, so that it ends well before the next.
// A checkpoint writes a page or two for every conversation it touches,
// megabytes at once on a busy node, and each transaction ends in two
// fsyncs; written in one burst they held up the message log's fsyncs,
// and with them every acknowledgement, for 5–20 ms (the p99 at 2,000
// messages a second was twice what it was with no checkpoint running).
// Spread out, the log's writes wait behind a few pages at a time.
func paceSpan(every, age time.Duration) time.Duration {
	return min(every, age) / 2
}

// checkpointAll hurries a running checkpoint and waits for it, then
// checkpoints whatever the log holds, at once, and waits for that too. The
// writer calls it for flushes and before it returns.
func (s *Store) checkpointAll() {
	if s.ckptBusy {
		select {
		case s.ckptHurry <- struct{}{}:
		default:
		}
		<-s.ckptDone
		s.ckptBusy = false
		// A checkpoint that ended without waiting again leaves the token.
		select {
		case <-s.ckptHurry:
		default:
		}
	}
	if s.wal.off > 0 {
		s.startCheckpoint(true)
		<-s.ckptDone
		s.ckptBusy = false
	}
}

// checkpointer copies each generation the writer hands it into the
// B+tree, then drops it from the pending messages and reports done. A
// failed transaction (a full disk, say) is retried with backoff, at once
// rather than paced: the writer keeps logging meanwhile, into the other
// file, which grows. Once Close has begun it gives up after one failure;
// Open replays the log.
func (s *Store) checkpointer() {
	for job := range s.ckptReq {
		span := job.span
		for wait := 50 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			err := s.storeLogged(s.pend.upTo(job.gen), job.gen, span)
			if err == nil {
				s.released.Add(1)
				s.pend.release(job.gen)
				break
			}
			s.log.Error("checkpoint of the message log failed", "generation", job.gen, "err", err)
			if s.done.Load() {
				break
			}
			span = 0
			time.Sleep(wait)
		}
		s.ckptDone <- struct{}{}
	}
}

// waitUntil sleeps until t, or until checkpointAll hurries the checkpoint;
// it reports whether to go on pacing.
func (s *Store) waitUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-s.ckptHurry:
		return false
	}
}

// defaultCkptPiece is about how many bytes one checkpoint transaction
// writes: its messages, and ckptConvCost for each conversation. A
// checkpoint holds bbolt's write lock, which the puts (hellos,
// assignments, visitor updates) also need, and ends in fsyncs that the
// message log's wait behind, so a generation is stored in pieces of a
// few milliseconds each, paced (paceSpan), rather than in one
// transaction of a few hundred.
const defaultCkptPiece = 512 << 10

// ckptConvCost is what a conversation adds to a checkpoint transaction
// besides its messages: the leaf pages of its messages and of its client
// IDs that the transaction rewrites, about.
const ckptConvCost = 8 << 10

// storeLogged copies logged messages into the B+tree and records gen as
// checkpointed, in transactions of about s.ckptPiece bytes with gen
// recorded by the last. Given a span, it starts each transaction when its
// share of the bytes is due, so that the last starts within span of the
// first; a hurry (checkpointAll) ends the pacing. It writes conversations
// in key order, so their pages are visited once each. The messages of a
// conversation that no longer exists are skipped: it was deleted after
// they were logged. Writing a message that is already there (a replay
// after a crash between a checkpoint's transactions, or between a
// checkpoint and its log's reuse) rewrites the same bytes.
func (s *Store) storeLogged(byConv map[string][]pendingMsg, gen uint64, span time.Duration) error {
	ids := slices.Sorted(maps.Keys(byConv))
	costs := make([]int, len(ids)) // what each conversation adds to a transaction
	total := 0
	for i, id := range ids {
		costs[i] = ckptConvCost
		for _, pm := range byConv[id] {
			costs[i] += len(pm.enc)
		}
		total += costs[i]
	}
	start, written := time.Now(), 0
	var k []byte
	for {
		err := s.dbUpdate(func(tx *bbolt.Tx) error {
			convs, msgs := tx.Bucket(bConvs), tx.Bucket(bMessages)
			for n := 0; len(ids) > 0 && n < s.ckptPiece; ids, costs = ids[1:], costs[1:] {
				id := ids[0]
				n, written = n+costs[0], written+costs[0]
				if convs.Get([]byte(id)) == nil {
					continue
				}
				for _, pm := range byConv[id] {
					k = appendMsgKey(k[:0], id, pm.m.Seq)
					if err := msgs.Put(k, pm.enc); err != nil {
						return err
					}
					k = appendClientKey(k[:0], id, pm.m.ClientID)
					if err := msgs.Put(k, u64(uint64(pm.m.Seq))); err != nil {
						return err
					}
				}
			}
			if len(ids) > 0 {
				return nil
			}
			return tx.Bucket(bLog).Put(keyCheckpoint, u64(gen))
		})
		if err != nil || len(ids) == 0 {
			return err
		}
		if s.pieceHook != nil {
			s.pieceHook()
		}
		if span > 0 && !s.pace(start.Add(time.Duration(float64(span)*float64(written)/float64(total)))) {
			span = 0
		}
	}
}

// flush checkpoints the whole log, so that the B+tree alone holds every
// acknowledged message.
func (s *Store) flush(ctx context.Context) error {
	r := reqPool.Get().(*appendReq)
	r.ctx, r.flush = ctx, true
	return s.request(ctx, s.reqs, r)
}
