package bolt

import (
	"encoding/binary"
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
)

// Messages and client IDs share one bucket, keyed so that everything of a
// conversation is adjacent in the B+tree and an append dirties few pages:
//
//	conv \0 'c' client id -> seq (8 bytes, big-endian)
//	conv \0 'm' seq (8 bytes, big-endian) -> message (msgVersion encoding)
//
// A conversation's last message gives its LastSeq, and its time advances
// the conversation's UpdatedAt; appends never rewrite the conversation
// record.
const (
	kindClientID = 'c'
	kindMessage  = 'm'
)

func msgPrefix(conv string) []byte { return append(prefix(conv), kindMessage) }

func msgKey(conv string, seq int64) []byte { return appendMsgKey(nil, conv, seq) }

func clientKey(conv, clientID string) []byte { return appendClientKey(nil, conv, clientID) }

// appendMsgKey and appendClientKey append the keys to b, for callers that
// reuse one buffer (bbolt copies keys it stores).
func appendMsgKey(b []byte, conv string, seq int64) []byte {
	b = append(append(append(b, conv...), 0), kindMessage)
	return binary.BigEndian.AppendUint64(b, uint64(seq))
}

func appendClientKey(b []byte, conv, clientID string) []byte {
	return append(append(append(append(b, conv...), 0), kindClientID), clientID...)
}

// msgVersion is the first byte of every stored message. The rest is the
// time (varint seconds, uvarint nanoseconds), then ClientID, Author.Kind,
// Author.ID, Author.Name and Text, each a uvarint length and the bytes.
// ConversationID and Seq are in the key. Messages are the bulk of the file
// and of every resume, so they skip JSON: decoding one costs one
// allocation.
const msgVersion = 1

var errCorrupt = errors.New("bolt store: corrupt message record")

func encodeMessage(m chat.Message) []byte {
	n := 1 + 2*binary.MaxVarintLen64 + 5*binary.MaxVarintLen32 +
		len(m.ClientID) + len(m.Author.Kind) + len(m.Author.ID) + len(m.Author.Name) + len(m.Text)
	b := make([]byte, 0, n)
	b = append(b, msgVersion)
	b = binary.AppendVarint(b, m.At.Unix())
	b = binary.AppendUvarint(b, uint64(m.At.Nanosecond()))
	for _, s := range []string{m.ClientID, string(m.Author.Kind), m.Author.ID, m.Author.Name, m.Text} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// messageTime decodes only the time of a stored message.
func messageTime(v []byte) (time.Time, []byte, error) {
	if len(v) == 0 || v[0] != msgVersion {
		return time.Time{}, nil, errCorrupt
	}
	v = v[1:]
	sec, n := binary.Varint(v)
	if n <= 0 {
		return time.Time{}, nil, errCorrupt
	}
	v = v[n:]
	nsec, n := binary.Uvarint(v)
	if n <= 0 || nsec >= 1e9 {
		return time.Time{}, nil, errCorrupt
	}
	return time.Unix(sec, int64(nsec)).UTC(), v[n:], nil
}

func decodeMessage(conv string, seq int64, v []byte) (chat.Message, error) {
	at, rest, err := messageTime(v)
	if err != nil {
		return chat.Message{}, err
	}
	// One string holds every field; the fields are slices of it.
	s := string(rest)
	var fields [5]string
	off := 0
	for i := range fields {
		l, n := binary.Uvarint(rest[off:])
		if n <= 0 || uint64(len(rest)-off-n) < l {
			return chat.Message{}, errCorrupt
		}
		off += n
		fields[i] = s[off : off+int(l)]
		off += int(l)
	}
	return chat.Message{
		ConversationID: conv,
		Seq:            seq,
		ClientID:       fields[0],
		Author:         chat.Author{Kind: chat.AuthorKind(fields[1]), ID: fields[2], Name: fields[3]},
		Text:           fields[4],
		At:             at,
	}, nil
}

// lastMessage returns the sequence number and preview of the
// conversation's last message, or 0 and nil if it has none: its newest
// pending message (pending.go), or else the last in tx. tx is a write
// transaction, or a read one run by viewPending.
func (s *Store) lastMessage(tx *bbolt.Tx, conv string) (int64, *chat.MessagePreview, error) {
	m, ok := s.pend.last(conv)
	if !ok {
		var err error
		if m, ok, err = lastStored(tx, conv); err != nil || !ok {
			return 0, nil, err
		}
	}
	return m.Seq, chat.PreviewOf(m), nil
}

// lastStored returns the conversation's last message in tx; ok is false
// if it has none.
func lastStored(tx *bbolt.Tx, conv string) (m chat.Message, ok bool, err error) {
	p := msgPrefix(conv)
	err = scanPrefix(tx, bMessages, p, true, func(k, v []byte) (bool, error) {
		if len(k) != len(p)+8 {
			return false, errCorrupt
		}
		var err error
		m, err = decodeMessage(conv, int64(binary.BigEndian.Uint64(k[len(p):])), v)
		ok = err == nil
		return false, err
	})
	return m, ok, err
}
