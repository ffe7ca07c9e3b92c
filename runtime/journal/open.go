package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Open opens the journal in directory dir, creating the directory when it
// does not exist, and starts its writer. It reads every segment to
// rebuild the index; a torn tail of the last segment (a crash during a
// write) is cut off and logged. A segment that is not a journal's, a
// damaged frame anywhere else, a journal locked by another process for
// over a second, or a file that cannot be read make Open fail with an
// error naming the file; Open never removes or rewrites a file it
// refused.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Retain <= 0 {
		opts.Retain = DefaultRetain
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.segmentSize == 0 {
		opts.segmentSize = defaultSegmentSize
	}
	if opts.compactAbove == 0 {
		opts.compactAbove = defaultCompactAbove
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	if err := lockFile(lock, lockTimeout); err != nil {
		_ = lock.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("open journal %s: locked by another process for over %v", dir, lockTimeout)
		}
		return nil, fmt.Errorf("open journal %s: lock: %w", dir, err)
	}
	s := &Store{
		dir:        dir,
		opts:       opts,
		lock:       lock,
		live:       make(map[string]*liveExec),
		entries:    make(map[string]*entry),
		finished:   make(map[string][]*entry),
		writerDone: make(chan struct{}),
	}
	s.work.L = &s.mu
	s.room.L = &s.mu
	s.lazy = time.AfterFunc(time.Hour, s.wake)
	s.lazy.Stop()
	fail := func(err error) (*Store, error) {
		s.lazy.Stop()
		for _, seg := range s.segs {
			_ = seg.f.Close()
		}
		_ = lock.Close()
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	// Spares are prepared again when needed.
	if spares, err := filepath.Glob(filepath.Join(dir, segmentPrefix+"*"+segmentSuffix+spareSuffix)); err == nil {
		for _, p := range spares {
			_ = os.Remove(p)
		}
	}
	if err := s.load(); err != nil {
		return fail(err)
	}
	if len(s.segs) == 0 {
		seg, err := createSegment(dir, 1, opts.segmentSize)
		if err != nil {
			return fail(err)
		}
		s.segs, s.total = []*segment{seg}, seg.size
	}
	s.maintain()
	go s.write()
	return s, nil
}

// loading is what load gathers of one execution.
type loading struct {
	// recs are where its records are, by number; has tells which numbers
	// were found.
	recs  []loc
	has   []bool
	begin *beginHead
	end   *endHead
	comp  bool
}

// load reads every segment in order and rebuilds the index and the
// executions not ended.
func (s *Store) load() error {
	ns, err := segmentNumbers(s.dir)
	if err != nil {
		return err
	}
	found := make(map[string]*loading)
	for i, n := range ns {
		seg, err := s.loadSegment(n, i == len(ns)-1, found)
		if seg != nil {
			s.segs = append(s.segs, seg)
			s.total += seg.size
		}
		if err != nil {
			return err
		}
	}
	for id, l := range found {
		if len(l.has) == 0 || !l.has[0] {
			// Records without their Begin are what remains of an
			// execution retention dropped, once the segments with its
			// first records were removed: dead space.
			continue
		}
		if l.begin == nil {
			return fmt.Errorf("execution %s: record 0 is not a begin", id)
		}
		if i := slices.Index(l.has, false); i >= 0 {
			return fmt.Errorf("execution %s: record %d of %d missing from every segment", id, i, len(l.has))
		}
		e := &entry{recs: l.recs}
		b := *l.begin
		if l.end != nil {
			e.sum, e.ended = l.end.summary(id, b), true
		} else {
			e.sum = Summary{ID: id, Flow: b.flow, State: stateOf(false, "", l.comp), Started: b.started, Async: b.async}
			s.live[id] = &liveExec{id: id, flow: b.flow, started: b.started, async: b.async, seq: uint32(len(l.recs))}
		}
		for _, r := range e.recs {
			r.seg.live += r.n
			s.liveBytes += r.n
		}
		s.entries[id] = e
		if e.ended {
			s.finished[b.flow] = append(s.finished[b.flow], e)
		}
	}
	// Retention as the writer applies it, for a Retain lowered since, and
	// for executions dropped before the process stopped whose first
	// segment was still there.
	for flowName, list := range s.finished {
		slices.SortFunc(list, byStart)
		if excess := len(list) - s.opts.Retain; excess > 0 {
			for _, old := range list[:excess] {
				s.drop(old)
			}
			list = slices.Delete(list, 0, excess)
		}
		s.finished[flowName] = list
	}
	return nil
}

// loadSegment reads segment n and adds its records to found. The last
// segment is the one written when the process stopped: a frame cut short
// or damaged there is a torn tail, cut off; anywhere else it is damage,
// an error. It returns the segment, open, even with an error, for the
// caller to close.
func (s *Store) loadSegment(n uint64, last bool, found map[string]*loading) (*segment, error) {
	path := filepath.Join(s.dir, segmentName(n))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	seg := &segment{n: n, path: path, f: f}
	data, err := os.ReadFile(path)
	if err != nil {
		return seg, err
	}
	switch {
	case bytes.HasPrefix(data, []byte(segmentMagic)):
	case last && bytes.HasPrefix([]byte(segmentMagic), data):
		// Created, and the process stopped before its magic was durable.
		if err := rewriteMagic(f); err != nil {
			return seg, fmt.Errorf("%s: %w", path, err)
		}
		seg.size = int64(len(segmentMagic))
		return seg, nil
	default:
		return seg, fmt.Errorf("%s: not a journal segment (or of another version)", path)
	}
	off := len(segmentMagic)
	for off < len(data) {
		if allZero(data[off:]) {
			// The rest of a segment prepared with zeros: no frame yet.
			break
		}
		p, size, err := nextFrame(data[off:])
		if err == nil {
			err = s.loadFrame(seg, int64(off), int64(size), p, found)
		}
		if err == nil {
			off += size
			continue
		}
		if !last || !(errors.Is(err, errTorn) || errors.Is(err, errDamaged)) {
			return seg, fmt.Errorf("%s at byte %d: %w", path, off, err)
		}
		// A write the process did not finish: zeroed, so that the file
		// keeps its blocks (see prepareSegment) and reads as unused.
		s.logf("journal %s: cleared the last %d bytes of %s, a write the process did not finish (%v)", s.dir, len(data)-off, path, err)
		_, err = f.WriteAt(make([]byte, len(data)-off), int64(off))
		if err == nil {
			err = fdatasync(f)
		}
		if err != nil {
			return seg, fmt.Errorf("%s: clear a torn tail: %w", path, err)
		}
		break
	}
	seg.size = int64(off)
	return seg, nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// rewriteMagic writes a segment's magic over a file that holds part of
// it.
func rewriteMagic(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(segmentMagic), 0); err != nil {
		return err
	}
	return fdatasync(f)
}

// loadFrame adds one frame to what load found.
func (s *Store) loadFrame(seg *segment, off, size int64, p []byte, found map[string]*loading) error {
	r, err := parsePayload(p)
	if err != nil {
		return err
	}
	l := found[r.id]
	if l == nil || r.seq == 0 {
		// A record 0 starts the execution afresh: a compaction's copy,
		// which replaces the records found before it, or a new execution
		// of an id that retention dropped. Either way every record of the
		// execution comes after it in the log.
		l = new(loading)
		found[r.id] = l
	}
	if int(r.seq) >= len(l.recs) {
		l.recs = slices.Grow(l.recs, int(r.seq)+1-len(l.recs))[:r.seq+1]
		l.has = slices.Grow(l.has, int(r.seq)+1-len(l.has))[:r.seq+1]
	}
	l.recs[r.seq], l.has[r.seq] = loc{seg: seg, off: off, n: size}, true
	d := dec{b: r.body}
	switch r.kind {
	case kindBegin:
		h := decodeBeginHead(&d)
		l.begin = &h
	case kindEnd:
		h := decodeEndHead(&d)
		l.end = &h
	case kindCompensation:
		l.comp = true
	}
	if d.err != nil {
		return fmt.Errorf("record %d of execution %s: %w", r.seq, r.id, d.err)
	}
	return nil
}
