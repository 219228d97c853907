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
	"unsafe"
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
//
// On Linux, where the file system allows it, the files are written with
// O_DIRECT (wal_linux.go): each group rewrites the block that holds the
// log's end, with the records already there, and zeros after its own (a
// record of length 0 ends the reading). Going around the page cache, a write and its
// fdatasync cost about 110 µs of CPU on this machine class against 170
// buffered, and take 195 µs against 260.
const walHeader = 24

// walBlock is the alignment of O_DIRECT writes: offsets, lengths and
// buffers. A multiple of any device's logical block size in use.
const walBlock = 4096

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

	// direct is whether the files are open with O_DIRECT. Then tail holds
	// the bytes of the block the log ends in (off % walBlock of them), and
	// out is the aligned buffer a group's blocks are written from.
	direct bool
	tail   []byte
	out    []byte
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
	// Without syncs (tests) the page cache is faster.
	w := &wal{id: id, noSync: noSync, limit: walLimit, keep: walKeep, direct: !noSync && oDirect != 0}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	var logged []loggedGen
	top := done
	created := false
	for i, name := range WALFiles(path) {
		f, err := w.openFile(name)
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

// openFile opens one log file, with O_DIRECT while w.direct. A file
// system that refuses it (tmpfs before Linux 6.6, for one) turns w.direct
// off for both files.
func (w *wal) openFile(name string) (*os.File, error) {
	if w.direct {
		f, err := openLogFile(name, oDirect)
		if !errors.Is(err, syscall.EINVAL) {
			return f, err
		}
		w.direct = false
		if w.files[0] != nil {
			if err := clearDirect(w.files[0]); err != nil {
				return nil, err
			}
		}
	}
	return openLogFile(name, 0)
}

// openLogFile opens (creating) a log file for writing with the extra
// flags. A variable so that a test can play a file system that refuses
// O_DIRECT, which none at hand does.
var openLogFile = func(name string, flags int) (*os.File, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|flags, 0o600)
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
		out = append(out, newPending(m, enc, gen, clientHash(m.ClientID)))
	}
	return out, nil
}

// write logs one group durably: one write, one fdatasync.
func (w *wal) write(msgs []pendingMsg) error {
	b := w.record(msgs)
	f := w.files[w.active]
	if err := w.put(f, b); err != nil {
		return fmt.Errorf("write message log: %w", err)
	}
	if !w.noSync {
		if err := fdatasync(f); err != nil {
			return fmt.Errorf("sync message log: %w", err)
		}
	}
	if w.off == 0 {
		w.began = time.Now()
	}
	w.off += int64(len(b))
	return nil
}

// put writes record b at the log's end: as whole blocks while w.direct,
// else through the page cache.
func (w *wal) put(f *os.File, b []byte) error {
	if w.direct {
		at, out := w.blocks(b)
		_, err := f.WriteAt(out, at)
		if err == nil {
			end := len(w.tail) + len(b)
			w.tail = append(w.tail[:0], out[end&^(walBlock-1):end]...)
			return nil
		}
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		// A file system that took the flag but not the write: the page
		// cache from now on, this group included.
		if err := w.buffered(); err != nil {
			return err
		}
	}
	_, err := f.WriteAt(b, w.off)
	return err
}

// blocks lays record b out for an O_DIRECT write at the log's end: the
// whole blocks from the one holding w.off, with the bytes already there
// (w.tail) before b and zeros after it. It returns their offset and the
// blocks, in w.out.
func (w *wal) blocks(b []byte) (int64, []byte) {
	head := len(w.tail)
	n := (head + len(b) + walBlock - 1) &^ (walBlock - 1)
	if cap(w.out) < n {
		w.out = alignedBuf(max(n, 2*cap(w.out)))
	}
	out := w.out[:n]
	copy(out, w.tail)
	copy(out[head:], b)
	clear(out[head+len(b):])
	return w.off - int64(head), out
}

// buffered turns O_DIRECT off for both files.
func (w *wal) buffered() error {
	w.direct = false
	return errors.Join(clearDirect(w.files[0]), clearDirect(w.files[1]))
}

// alignedBuf returns n zero bytes starting at a walBlock boundary, as
// O_DIRECT wants of a buffer.
func alignedBuf(n int) []byte {
	b := make([]byte, n+walBlock)
	skip := -int(uintptr(unsafe.Pointer(&b[0]))) & (walBlock - 1)
	return b[skip : skip+n : skip+n]
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
	w.tail = w.tail[:0]
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
