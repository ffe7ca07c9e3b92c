package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// segmentMagic starts every segment file: what it is and the version of
// its frames and records.
const segmentMagic = "orchestro journal 1\n"

// Segment file names are segmentPrefix, the segment's number in 10
// decimal digits, and segmentSuffix, so that they list in order.
const (
	segmentPrefix = "executions-"
	segmentSuffix = ".log"
)

// lockName is the file a Store holds a lock on while it is open.
const lockName = "LOCK"

// frameHeader is the length of a frame's header: the payload's length and
// its CRC-32C, 4 bytes each, little-endian.
const frameHeader = 8

// maxFrame bounds a frame's payload: a length past it is damage, not a
// record (a record is bounded by the queue; see maxQueuedBytes).
const maxFrame = maxQueuedBytes

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segment is one file of the log.
type segment struct {
	n    uint64
	path string
	f    *os.File
	// size is what the file holds of whole, durable frames (and the
	// magic). The writer goroutine alone changes it, for the active
	// segment; it is read under Store.idx.
	size int64
	// live is the bytes of its frames that hold records of executions the
	// Store keeps, under Store.idx.
	live int64
}

func segmentName(n uint64) string {
	return fmt.Sprintf("%s%010d%s", segmentPrefix, n, segmentSuffix)
}

// segmentNumbers returns the numbers of the segment files in dir, in
// order.
func segmentNumbers(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ns []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segmentPrefix) || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segmentPrefix), segmentSuffix), 10, 64)
		if err != nil || segmentName(n) != name {
			continue
		}
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns, nil
}

// spareSuffix names a segment file prepared ahead of its turn: not a
// segment yet, and removed at Open.
const spareSuffix = ".spare"

// prepareSegment writes the file of segment n under its spare name: the
// magic, then zeros up to size, durable. Overwriting blocks the file
// already has makes each fdatasync of a commit cheaper than extending
// the file would: the file's size and block map do not change, so only
// the data is written (half the CPU time and of the wait, measured on
// ext4).
func prepareSegment(dir string, n uint64, size int64) (*segment, error) {
	path := filepath.Join(dir, segmentName(n)+spareSuffix)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	err = writeZeros(f, size)
	if err == nil {
		_, err = f.WriteAt([]byte(segmentMagic), 0)
	}
	if err == nil {
		err = fdatasync(f)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("prepare %s: %w", path, err)
	}
	return &segment{n: n, path: path, f: f, size: int64(len(segmentMagic))}, nil
}

// writeZeros writes size zero bytes at the start of f.
func writeZeros(f *os.File, size int64) error {
	zeros := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return err
		}
	}
	return nil
}

// activate gives a prepared segment its name, durably: from then on it is
// the last segment, the one a torn tail is looked for in.
func (seg *segment) activate(dir string) error {
	path := filepath.Join(dir, segmentName(seg.n))
	if err := os.Rename(seg.path, path); err != nil {
		return err
	}
	seg.path = path
	return syncDir(dir)
}

// createSegment creates segment n in dir, prepared and named.
func createSegment(dir string, n uint64, size int64) (*segment, error) {
	seg, err := prepareSegment(dir, n, size)
	if err != nil {
		return nil, err
	}
	if err := seg.activate(dir); err != nil {
		seg.discard()
		return nil, fmt.Errorf("create %s: %w", seg.path, err)
	}
	return seg, nil
}

// discard closes and removes a segment that never held a record.
func (seg *segment) discard() {
	_ = seg.f.Close()
	_ = os.Remove(seg.path)
}

// syncDir makes the creations and removals of files in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// appendFrame appends the frame of one record to dst: the header, then
// the payload (kind, seq as 4 little-endian bytes, id, body).
func appendFrame(dst []byte, kind byte, seq uint32, id string, body []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = append(dst, kind)
	dst = binary.LittleEndian.AppendUint32(dst, seq)
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	dst = append(dst, id...)
	dst = append(dst, body...)
	payload := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// Why a frame cannot be read.
var (
	errTorn    = errors.New("frame cut short")
	errDamaged = errors.New("frame damaged (checksum mismatch)")
)

// nextFrame reads the frame at the start of b, and returns its payload and
// its whole length.
func nextFrame(b []byte) ([]byte, int, error) {
	if len(b) < frameHeader {
		return nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxFrame {
		return nil, 0, fmt.Errorf("%w: length %d", errDamaged, n)
	}
	if int64(len(b)) < frameHeader+int64(n) {
		return nil, 0, errTorn
	}
	payload := b[frameHeader : frameHeader+n]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errDamaged
	}
	return payload, frameHeader + int(n), nil
}

// payload is a frame's payload, split.
type payload struct {
	kind byte
	seq  uint32
	id   string
	body []byte
}

func parsePayload(p []byte) (payload, error) {
	if len(p) < 5 {
		return payload{}, errShort
	}
	r := payload{kind: p[0], seq: binary.LittleEndian.Uint32(p[1:])}
	d := dec{b: p[5:]}
	r.id = d.str()
	if d.err != nil {
		return payload{}, d.err
	}
	switch r.kind {
	case kindBegin, kindIntent, kindStep, kindCompensation, kindEnd:
	default:
		return payload{}, fmt.Errorf("record kind %q unknown", r.kind)
	}
	r.body = d.b
	return r, nil
}

// readFrame reads the frame at loc and returns its payload.
func readFrame(l loc) (payload, error) {
	b := make([]byte, l.n)
	if _, err := l.seg.f.ReadAt(b, l.off); err != nil {
		return payload{}, fmt.Errorf("%s at %d: %w", l.seg.path, l.off, err)
	}
	p, _, err := nextFrame(b)
	if err == nil {
		var r payload
		if r, err = parsePayload(p); err == nil {
			return r, nil
		}
	}
	return payload{}, fmt.Errorf("%s at %d: %w", l.seg.path, l.off, err)
}
