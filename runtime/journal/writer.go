package journal

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"
)

// write is the writer goroutine: it commits the queued batches one after
// another, each with one write and one fdatasync, until the Store closes
// and the queue is empty. While it commits one batch, records queue in
// the next, which is how commits group. It commits a batch when it is
// full, when someone waits for it, or lazyCommit after its first record,
// whichever comes first: most records are waited for by nobody, and
// committing each of them as it comes would cost an fdatasync each on an
// idle gateway. Between batches it keeps the log in shape (see maintain).
func (s *Store) write() {
	defer close(s.writerDone)
	for {
		s.mu.Lock()
		for !s.closing && (len(s.queue) == 0 || len(s.queue) == 1 && !s.demand) {
			if len(s.queue) == 0 {
				s.demand = false
			}
			s.work.Wait()
		}
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return
		}
		if len(s.queue) == 1 && len(s.live) >= busyExecutions && !s.closing {
			// Many executions run: let those about to record do so
			// before the batch is taken, so that one fdatasync serves
			// more of them (0.2 commits an execution rather than 0.4 on
			// the benchmark flow at 64 connections).
			s.mu.Unlock()
			runtime.Gosched()
			s.mu.Lock()
		}
		b := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.committing = b
		err := s.failed
		s.mu.Unlock()

		var took time.Duration
		if err == nil {
			start := time.Now()
			err = s.commit(b)
			took = time.Since(start)
			if err != nil {
				err = fmt.Errorf("journal %s: commit of %d records: %w", s.dir, len(b.recs), err)
				s.logf("%v; every later record fails", err)
			}
		}

		s.mu.Lock()
		s.committing = nil
		s.queued -= len(b.buf)
		if err == nil {
			for i := range b.recs {
				if b.recs[i].kind == kindEnd {
					delete(s.live, b.recs[i].ex.id)
				}
			}
		} else if s.failed == nil {
			s.failed = err
		}
		s.room.Broadcast()
		s.mu.Unlock()

		n := len(b.recs)
		b.release()
		b.err = err
		close(b.done)
		if err == nil {
			if s.opts.OnCommit != nil {
				s.opts.OnCommit(n, took)
			}
			s.maintain()
		}
	}
}

// busyExecutions is the number of executions in flight from which the
// writer yields once before it takes a batch.
const busyExecutions = 16

// lazyCommit bounds how long a record nobody waits for stays queued.
const lazyCommit = 5 * time.Millisecond

// wake is the lazy-commit timer's function: the first batch is due.
func (s *Store) wake() {
	s.mu.Lock()
	if len(s.queue) > 0 {
		s.demand = true
		s.work.Signal()
	}
	s.mu.Unlock()
}

// Sync waits until every record queued before it is durable, and returns
// why one is not. Readers that must see what was just recorded (the
// executions API, once an execution ended) call it first.
func (s *Store) Sync() error {
	s.mu.Lock()
	b := s.committing
	if n := len(s.queue); n > 0 {
		b = s.queue[n-1]
	}
	s.mu.Unlock()
	if b == nil {
		return nil
	}
	return b.Wait()
}

// commit appends a batch's frames to the active segment with one write,
// makes them durable with one fdatasync, and then indexes them, so that
// readers see a record only once it is durable.
func (s *Store) commit(b *batch) error {
	seg := s.segs[len(s.segs)-1]
	off := seg.size
	if _, err := seg.f.WriteAt(b.buf, off); err != nil {
		return err
	}
	if err := fdatasync(seg.f); err != nil {
		return err
	}
	s.idx.Lock()
	defer s.idx.Unlock()
	seg.size += int64(len(b.buf))
	s.total += int64(len(b.buf))
	for i := range b.recs {
		r := &b.recs[i]
		s.index(r.kind, r.ex, loc{seg: seg, off: off + int64(r.off), n: int64(r.n)}, r.end)
	}
	return nil
}

// index adds one durable record to the index. s.idx is held.
func (s *Store) index(kind byte, ex *liveExec, l loc, end *Summary) {
	l.seg.live += l.n
	s.liveBytes += l.n
	if kind == kindBegin {
		s.entries[ex.id] = &entry{
			sum:  Summary{ID: ex.id, Flow: ex.flow, State: Running, Started: ex.started, Async: ex.async},
			recs: append(make([]loc, 0, 8), l),
		}
		return
	}
	// The Begin is durable before any later record of its execution, and
	// retention drops only ended executions: the entry is there.
	e := s.entries[ex.id]
	e.recs = append(e.recs, l)
	switch kind {
	case kindCompensation:
		if e.sum.State == Running {
			e.sum.State = Compensating
		}
	case kindEnd:
		e.sum, e.ended = *end, true
		s.finish(e)
	}
}

// finish adds an ended execution to its flow's list and drops the oldest
// finished executions of the flow beyond Retain. s.idx is held.
func (s *Store) finish(e *entry) {
	list := s.finished[e.sum.Flow]
	i, _ := slices.BinarySearchFunc(list, e, byStart)
	list = slices.Insert(list, i, e)
	if excess := len(list) - s.opts.Retain; excess > 0 {
		for _, old := range list[:excess] {
			s.drop(old)
		}
		list = slices.Delete(list, 0, excess)
	}
	s.finished[e.sum.Flow] = list
}

// byStart orders executions by start time, then id.
func byStart(a, b *entry) int {
	return cmp.Or(a.sum.Started.Compare(b.sum.Started), cmp.Compare(a.sum.ID, b.sum.ID))
}

// drop forgets an execution: its frames are dead space from now on.
// s.idx is held.
func (s *Store) drop(e *entry) {
	for _, l := range e.recs {
		l.seg.live -= l.n
		s.liveBytes -= l.n
	}
	delete(s.entries, e.sum.ID)
}

// maintain keeps the log in shape after a commit: it removes the oldest
// segments while they hold nothing kept, starts a new segment when the
// active one is full, and compacts when the log is much larger than what
// it keeps. Its failures are logged: the records are durable already.
func (s *Store) maintain() {
	for len(s.segs) > 1 && s.segs[0].live == 0 {
		if err := s.removeHead(); err != nil {
			s.logf("journal %s: %v", s.dir, err)
			return
		}
	}
	active := s.segs[len(s.segs)-1]
	if s.spare == nil && active.size >= s.opts.segmentSize/2 {
		ch := make(chan spareResult, 1)
		s.spare = ch
		go func(n uint64) {
			seg, err := prepareSegment(s.dir, n, s.opts.segmentSize)
			ch <- spareResult{seg, err}
		}(active.n + 1)
	}
	if active.size >= s.opts.segmentSize {
		if err := s.rotate(); err != nil {
			s.logf("journal %s: start a new segment: %v; the current one grows", s.dir, err)
		}
	}
	if s.total > s.opts.compactAbove && s.total > 2*s.liveBytes && len(s.segs) > 1 && !time.Now().Before(s.compactAfter) {
		start, total := time.Now(), s.total
		moved, err := s.compactHead()
		if err == nil {
			err = s.removeHead()
		}
		if err != nil {
			s.compactAfter = time.Now().Add(compactRetry)
			s.logf("journal %s: compaction: %v; retried in %v", s.dir, err, compactRetry)
			return
		}
		s.logf("journal %s: compacted: copied %d bytes kept from the oldest segment, log %d → %d bytes (%d kept) in %v",
			s.dir, moved, total, s.total, s.liveBytes, time.Since(start).Round(time.Millisecond))
	}
}

// spareResult is a segment prepared in the background.
type spareResult struct {
	seg *segment
	err error
}

// rotate starts the next segment, the spare prepared since the active
// one was half full; the writer appends to it from now on.
func (s *Store) rotate() error {
	r := <-s.spare
	s.spare = nil
	if r.err != nil {
		return r.err
	}
	if err := r.seg.activate(s.dir); err != nil {
		r.seg.discard()
		return err
	}
	s.idx.Lock()
	s.segs = append(s.segs, r.seg)
	s.total += r.seg.size
	s.idx.Unlock()
	return nil
}

// dropSpare removes the spare segment, if any, once the writer is done.
func (s *Store) dropSpare() {
	if s.spare == nil {
		return
	}
	if r := <-s.spare; r.seg != nil {
		r.seg.discard()
	}
	s.spare = nil
}

// removeHead removes the oldest segment, which holds nothing kept.
// Segments are only ever removed oldest first: see the package
// documentation for why that keeps a dropped execution from coming back
// unfinished.
func (s *Store) removeHead() error {
	s.idx.Lock()
	head := s.segs[0]
	if head.live != 0 {
		s.idx.Unlock()
		return fmt.Errorf("remove %s: it holds %d bytes kept", head.path, head.live)
	}
	s.segs = slices.Delete(s.segs, 0, 1)
	s.total -= head.size
	err := head.f.Close()
	s.idx.Unlock()
	if rerr := os.Remove(head.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return errors.Join(err, rerr)
	}
	return errors.Join(err, syncDir(s.dir))
}

// compactHead copies every execution that has a record in the oldest
// segment, all of its records, to the end of the active segment, so that
// the oldest segment holds nothing kept; it returns how many bytes it
// copied. The copies are durable before the index points at them.
func (s *Store) compactHead() (int64, error) {
	s.idx.RLock()
	head := s.segs[0]
	var moved []*entry
	for _, e := range s.entries {
		if slices.ContainsFunc(e.recs, func(l loc) bool { return l.seg == head }) {
			moved = append(moved, e)
		}
	}
	// Copied in start order, so that the file reads in that order too.
	slices.SortFunc(moved, byStart)
	var buf []byte
	for _, e := range moved {
		for _, l := range e.recs {
			start := len(buf)
			buf = append(buf, make([]byte, l.n)...)
			if _, err := l.seg.f.ReadAt(buf[start:], l.off); err != nil {
				s.idx.RUnlock()
				return 0, fmt.Errorf("read %s at %d: %w", l.seg.path, l.off, err)
			}
			if _, _, err := nextFrame(buf[start:]); err != nil {
				s.idx.RUnlock()
				return 0, fmt.Errorf("read %s at %d: %w", l.seg.path, l.off, err)
			}
		}
	}
	s.idx.RUnlock()

	seg := s.segs[len(s.segs)-1]
	off := seg.size
	if _, err := seg.f.WriteAt(buf, off); err != nil {
		return 0, err
	}
	if err := fdatasync(seg.f); err != nil {
		return 0, err
	}
	s.idx.Lock()
	defer s.idx.Unlock()
	seg.size += int64(len(buf))
	s.total += int64(len(buf))
	for _, e := range moved {
		for i, l := range e.recs {
			l.seg.live -= l.n
			e.recs[i] = loc{seg: seg, off: off, n: l.n}
			seg.live += l.n
			off += l.n
		}
	}
	return int64(len(buf)), nil
}
