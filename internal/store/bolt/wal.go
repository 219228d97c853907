package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The message log. An append is durable once its group is in the log:
// one write and one fdatasync per group, where a bbolt commit costs two
// fsyncs and a write per dirty page. Logged messages are served from
// memory (pending.go) until a checkpoint copies a generation of them into
// the B+tree in one transaction, which also records that generation as
// checkpointed; Open replays whatever a crash left uncheckpointed.
//
// The log is two files used in turn, <db>.wal0 and <db>.wal1, rewritten
// from the start on each use: overwriting blocks a file already has costs
// less than growing it (on ext4 on this machine class 170 µs of CPU per
// 4 KiB write and fdatasync against 260). Each use of a file is a new
// generation. A record is
//
//	length u32 | crc32c u32 | log ID u64 | generation u64 | body
//
// with the checksum over the ID, the generation and the body, and the body
// one group's messages, each as uvarint-prefixed conversation ID, the
// sequence number (uvarint) and the uvarint-prefixed encodeMessage bytes.
// Reading a file stops at the first record that is short, fails its
// checksum, or has another ID or generation: a torn last write, or what an
// earlier use of the file left behind. The ID, random per store file,
// keeps a log from being replayed into another store.
const walHeader = 24

// walLimit is the log size at which the writer starts a checkpoint
// without waiting for the interval: at 10,000 messages/s of a few hundred
// bytes, about as often as the default interval.
const walLimit = 16 << 20

// walKeep is the size a log file is cut back to when it is reused after a
// backlog grew it (see wal.rotate). Files of normal generations, walLimit
// and one group, stay below it and keep their blocks, which are cheaper
// to overwrite than to allocate again.
const walKeep = 2 * walLimit

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WALFiles returns the paths of the message log of the store file at
// path. They belong to that file: whoever moves or replaces it (a
// restore) must move them with it.
func WALFiles(path string) []string { return []string{path + ".wal0", path + ".wal1"} }

// wal is the log's writing end, owned by the append writer goroutine.
type wal struct {
	id     uint64
	files  [2]*os.File
	active int       // index into files
	gen    uint64    // generation being written
	off    int64     // where the next record goes
	began  time.Time // when gen got its first record
	noSync bool
	limit  int64 // walLimit and walKeep, smaller in tests
	keep   int64
	buf    []byte
}

// loggedGen is what one log file holds for replay.
type loggedGen struct {
	gen  uint64
	msgs []pendingMsg
}

// openWAL opens (creating) both log files of the store at path and reads
// back every record newer than generation done. The writer continues at
// a generation above all of them, in file 0.
func openWAL(path string, id, done uint64, noSync bool) (_ *wal, _ []loggedGen, err error) {
	w := &wal{id: id, noSync: noSync, limit: walLimit, keep: walKeep}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	var logged []loggedGen
	top := done
	created := false
	for i, name := range WALFiles(path) {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("open message log: %w", err)
		}
		w.files[i] = f
		raw, err := os.ReadFile(name)
		if err != nil {
			return nil, nil, fmt.Errorf("read message log: %w", err)
		}
		created = created || len(raw) == 0
		lg, err := readWAL(raw, id)
		if err != nil {
			return nil, nil, fmt.Errorf("read message log %s: %w", name, err)
		}
		top = max(top, lg.gen)
		if lg.gen > done && len(lg.msgs) > 0 {
			logged = append(logged, lg)
		}
	}
	if created && !noSync {
		// A new file's directory entry must be durable before any record
		// in it is acknowledged.
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, nil, fmt.Errorf("open message log: %w", err)
		}
	}
	if len(logged) == 2 && logged[0].gen > logged[1].gen {
		logged[0], logged[1] = logged[1], logged[0]
	}
	w.gen = top + 1
	return w, logged, nil
}

// readWAL decodes the records of one file's latest use: those of the
// first record's generation, up to the first that does not check out.
func readWAL(raw []byte, id uint64) (loggedGen, error) {
	var lg loggedGen
	for len(raw) >= walHeader {
		n := binary.LittleEndian.Uint32(raw)
		sum := binary.LittleEndian.Uint32(raw[4:])
		if n < walHeader || int64(n) > int64(len(raw)) || crc32.Checksum(raw[8:n], castagnoli) != sum {
			break
		}
		rid, gen := binary.LittleEndian.Uint64(raw[8:]), binary.LittleEndian.Uint64(raw[16:])
		if rid != id || (lg.gen != 0 && gen != lg.gen) {
			break
		}
		lg.gen = gen
		msgs, err := decodeGroup(raw[walHeader:n], gen)
		if err != nil {
			return lg, err
		}
		lg.msgs = append(lg.msgs, msgs...)
		raw = raw[n:]
	}
	return lg, nil
}

// appendLogged adds one message to the body of a record being built.
func appendLogged(b []byte, m pendingMsg) []byte {
	b = binary.AppendUvarint(b, uint64(len(m.m.ConversationID)))
	b = append(b, m.m.ConversationID...)
	b = binary.AppendUvarint(b, uint64(m.m.Seq))
	b = binary.AppendUvarint(b, uint64(len(m.enc)))
	return append(b, m.enc...)
}

// decodeGroup is the inverse of appendLogged over a whole body. A record
// that passed its checksum yet does not decode is corruption, not a torn
// write.
func decodeGroup(body []byte, gen uint64) ([]pendingMsg, error) {
	var out []pendingMsg
	field := func() ([]byte, bool) {
		l, n := binary.Uvarint(body)
		if n <= 0 || uint64(len(body)-n) < l {
			return nil, false
		}
		f := body[n : n+int(l)]
		body = body[n+int(l):]
		return f, true
	}
	for len(body) > 0 {
		conv, ok := field()
		if !ok {
			return nil, errCorrupt
		}
		seq, n := binary.Uvarint(body)
		if n <= 0 {
			return nil, errCorrupt
		}
		body = body[n:]
		enc, ok := field()
		if !ok {
			return nil, errCorrupt
		}
		m, err := decodeMessage(string(conv), int64(seq), enc)
		if err != nil {
			return nil, err
		}
		out = append(out, pendingMsg{m: m, enc: enc, gen: gen})
	}
	return out, nil
}

// write logs one group durably: one write, one fdatasync.
func (w *wal) write(msgs []pendingMsg) error {
	b := w.record(msgs)
	f := w.files[w.active]
	if _, err := f.WriteAt(b, w.off); err != nil {
		return fmt.Errorf("write message log: %w", err)
	}
	if !w.noSync {
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("sync message log: %w", err)
		}
	}
	if w.off == 0 {
		w.began = time.Now()
	}
	w.off += int64(len(b))
	return nil
}

// record encodes one group as a record of the current generation, in
// w's buffer (valid until the next call).
func (w *wal) record(msgs []pendingMsg) []byte {
	b := append(w.buf[:0], make([]byte, walHeader)...)
	for _, m := range msgs {
		b = appendLogged(b, m)
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	binary.LittleEndian.PutUint64(b[8:], w.id)
	binary.LittleEndian.PutUint64(b[16:], w.gen)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli))
	w.buf = b
	return b
}

// rotate starts the next generation in the other file and returns the
// one just ended. The caller has made sure the other file's generation is
// checkpointed. A file that a backlog grew past w.keep (the checkpointer
// failing or falling behind while the writer logged on) is cut back to
// w.keep as it is reused: otherwise its blocks past that stay allocated
// for good, and Open reads them all. A file that fails to shrink is only
// bigger than it needs to be: the error is for the log, the rotation
// stands.
func (w *wal) rotate() (ended uint64, err error) {
	ended = w.gen
	w.active = 1 - w.active
	w.gen++
	w.off = 0
	f := w.files[w.active]
	fi, err := f.Stat()
	if err == nil && fi.Size() > w.keep {
		err = f.Truncate(w.keep)
	}
	if err != nil {
		err = fmt.Errorf("trim message log %s: %w", f.Name(), err)
	}
	return ended, err
}

// due reports whether the current generation should be checkpointed
// now: it is over walLimit or older than every.
func (w *wal) due(every time.Duration) bool {
	return w.off > 0 && (w.off >= w.limit || time.Since(w.began) >= every)
}

func (w *wal) close() error {
	var errs []error
	for _, f := range w.files {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// errLogFailed wraps the error that stopped the log. After a failed write
// or fdatasync nobody knows which of the group's bytes reached the disk,
// so no later group may reuse its sequence numbers: every append fails
// until a restart replays what the log holds.
var errLogFailed = errors.New("message log failed; restart the node")
