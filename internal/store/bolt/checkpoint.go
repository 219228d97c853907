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

// startCheckpoint ends the log's current generation and hands it to the
// checkpointer. Only the writer calls it, only while no checkpoint runs:
// the file it switches to holds the generation before, which the last
// checkpoint stored.
func (s *Store) startCheckpoint() {
	s.ckptBusy = true
	gen, err := s.wal.rotate()
	if err != nil {
		s.log.Warn("message log kept its size", "err", err)
	}
	s.ckptReq <- gen
}

// checkpointAll waits for a running checkpoint, then checkpoints whatever
// the log holds, and waits for that too. The writer calls it for flushes
// and before it returns.
func (s *Store) checkpointAll() {
	if s.ckptBusy {
		<-s.ckptDone
		s.ckptBusy = false
	}
	if s.wal.off > 0 {
		s.startCheckpoint()
		<-s.ckptDone
		s.ckptBusy = false
	}
}

// checkpointer copies each generation the writer hands it into the
// B+tree, then drops it from the pending messages and reports done. A
// failed transaction (a full disk, say) is retried with backoff: the
// writer keeps logging meanwhile, into the other file, which grows. Once
// Close has begun it gives up after one failure; Open replays the log.
func (s *Store) checkpointer() {
	for gen := range s.ckptReq {
		for wait := 50 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			err := s.storeLogged(s.pend.upTo(gen), gen)
			if err == nil {
				s.released.Add(1)
				s.pend.release(gen)
				break
			}
			s.log.Error("checkpoint of the message log failed", "generation", gen, "err", err)
			if s.done.Load() {
				break
			}
			time.Sleep(wait)
		}
		s.ckptDone <- struct{}{}
	}
}

// defaultCkptChunk is about how many messages one checkpoint transaction
// stores (whole conversations each). A checkpoint holds bbolt's write
// lock, which the puts (hellos, assignments, visitor updates) also need,
// so a generation of several seconds at 10,000 messages/s is stored in
// pieces of a few milliseconds each rather than in one transaction of a
// few hundred.
const defaultCkptChunk = 4096

// storeLogged copies logged messages into the B+tree and records gen as
// checkpointed, in transactions of about s.ckptChunk messages with gen
// recorded by the last. It writes conversations in key order, so their
// pages are visited once each. The messages of a conversation that no
// longer exists are skipped: it was deleted after they were logged.
// Writing a message that is already there (a replay after a crash between
// a checkpoint's transactions, or between a checkpoint and its log's
// reuse) rewrites the same bytes.
func (s *Store) storeLogged(byConv map[string][]pendingMsg, gen uint64) error {
	ids := slices.Sorted(maps.Keys(byConv))
	var k []byte
	for {
		err := s.dbUpdate(func(tx *bbolt.Tx) error {
			convs, msgs := tx.Bucket(bConvs), tx.Bucket(bMessages)
			for n := 0; len(ids) > 0 && n < s.ckptChunk; ids = ids[1:] {
				id := ids[0]
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
				n += len(byConv[id])
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
	}
}

// flush checkpoints the whole log, so that the B+tree alone holds every
// acknowledged message.
func (s *Store) flush(ctx context.Context) error {
	r := reqPool.Get().(*appendReq)
	r.ctx, r.flush = ctx, true
	return s.request(ctx, s.reqs, r)
}
