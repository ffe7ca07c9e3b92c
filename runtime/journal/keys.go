package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Bucket names. See the package documentation for what each holds.
var (
	bucketMeta       = []byte("meta")
	bucketRecords    = []byte("records")
	bucketUnfinished = []byte("unfinished")
	bucketStarted    = []byte("started")
	bucketFlows      = []byte("flows")
	bucketIDs        = []byte("ids")
)

// keyVersion, in bucketMeta, holds the layout version.
var keyVersion = []byte("version")

// layoutVersion is the version of the layout this package writes and
// reads. A change that an older gateway would misread bumps it.
const layoutVersion = "1"

// Record kinds, the last byte of a record's key. They are letters so that
// a key dump reads: "…\x00\x00\x00\x00\x03S" is the fourth record, a step.
const (
	kindBegin        byte = 'B'
	kindIntent       byte = 'I'
	kindStep         byte = 'S'
	kindCompensation byte = 'C'
	kindEnd          byte = 'E'
)

// maxIDLen bounds an execution id, which is a key prefix of every record:
// ids are short tokens, and bbolt keys are best kept small.
const maxIDLen = 512

// checkName reports whether s can be an execution id or a flow name: not
// empty, no NUL byte (the separator in keys) and not over maxIDLen.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case len(s) > maxIDLen:
		return fmt.Errorf("%s of %d bytes, over %d", what, len(s), maxIDLen)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s %q holds a NUL byte", what, s)
	}
	return nil
}

// recordKey is the key of an execution's seq-th record: its key in
// bucketStarted (start time, id), NUL, seq as 4 big-endian bytes, kind.
// An id holds no NUL, which sorts before any of its bytes, so one
// execution's records are contiguous, in seq order; and records sort
// by their execution's start, so new records are put near the end of the
// bucket, where its pages are already dirty.
func recordKey(skey []byte, seq uint32, kind byte) []byte {
	k := make([]byte, 0, len(skey)+6)
	k = append(k, skey...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint32(k, seq)
	return append(k, kind)
}

// recordPrefix is the prefix of every record key of the execution whose
// key in bucketStarted is skey.
func recordPrefix(skey []byte) []byte {
	k := make([]byte, 0, len(skey)+1)
	k = append(k, skey...)
	return append(k, 0)
}

// errBadKey reports a key that does not have the layout's shape.
var errBadKey = errors.New("malformed key")

// parseRecordKey returns the seq and kind of a key under prefix.
func parseRecordKey(prefix, k []byte) (uint32, byte, error) {
	if len(k) != len(prefix)+5 || !bytes.HasPrefix(k, prefix) {
		return 0, 0, fmt.Errorf("record key %q: %w", k, errBadKey)
	}
	return binary.BigEndian.Uint32(k[len(prefix):]), k[len(k)-1], nil
}

// timeBytes is t in 8 bytes that sort as the times do: Unix nanoseconds,
// big-endian, with the sign bit flipped so that times before 1970 sort
// first.
func timeBytes(t time.Time) [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixNano())^(1<<63))
	return b
}

// startedKey is an execution's key in bucketStarted: start time, id.
func startedKey(started time.Time, id string) []byte {
	ts := timeBytes(started)
	k := make([]byte, 0, 8+len(id))
	k = append(k, ts[:]...)
	return append(k, id...)
}

// flowPrefix is the prefix of every key of a flow in bucketFlows.
func flowPrefix(flow string) []byte {
	k := make([]byte, 0, len(flow)+1)
	k = append(k, flow...)
	return append(k, 0)
}

// flowKey is an execution's key in bucketFlows: flow, NUL, its key in
// bucketStarted.
func flowKey(flow string, skey []byte) []byte {
	k := make([]byte, 0, len(flow)+1+len(skey))
	k = append(k, flow...)
	k = append(k, 0)
	return append(k, skey...)
}

// splitFlowKey returns the flow of a bucketFlows key and the execution's
// key in bucketStarted.
func splitFlowKey(k []byte) (flow string, skey []byte, err error) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k)-i-1 <= 8 {
		return "", nil, fmt.Errorf("flow index key %q: %w", k, errBadKey)
	}
	return string(k[:i]), k[i+1:], nil
}

// startedKeyID returns the id of a bucketStarted key.
func startedKeyID(skey []byte) string { return string(skey[8:]) }

// prefixEnd returns the least key greater than every key with prefix p,
// whose last byte is NUL in this layout; so the end is p with that byte
// made 1.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	end[len(end)-1]++
	return end
}
