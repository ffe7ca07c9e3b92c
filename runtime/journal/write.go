package journal

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/orchestro/orchestro/runtime/flow"
)

// Record kinds, the first byte of a frame's payload. They are letters so
// that a dump of a segment reads.
const (
	kindBegin        byte = 'B'
	kindIntent       byte = 'I'
	kindStep         byte = 'S'
	kindCompensation byte = 'C'
	kindEnd          byte = 'E'
)

// maxIDLen bounds an execution id and a flow name: ids are short tokens,
// and every record carries its execution's.
const maxIDLen = 512

// checkName reports whether s can be an execution id or a flow name: not
// empty, no NUL byte and not over maxIDLen.
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

// record is one queued record: its frame is b.buf[off:off+n] of its
// batch.
type record struct {
	kind   byte
	ex     *liveExec
	off, n int
	// end is the execution's index entry once ended (End only).
	end *Summary
}

// batch is the records of one group commit, framed one after another as
// they will be written. It is the Commit of each of them: they are
// durable together or not at all, so one channel serves them all and a
// record costs no allocation of its own beyond its encoding.
type batch struct {
	s    *Store
	buf  []byte
	recs []record
	done chan struct{}
	err  error
}

// Wait blocks until the batch is committed, and returns the commit's
// error. A batch nobody waits for is committed within lazyCommit; a Wait
// has it committed now.
func (b *batch) Wait() error {
	select {
	case <-b.done:
		return b.err
	default:
	}
	b.s.mu.Lock()
	b.s.demand = true
	b.s.work.Signal()
	b.s.mu.Unlock()
	<-b.done
	return b.err
}

// batchSpace is the memory of a committed batch, for the next one: a
// busy journal would otherwise grow a buffer and a slice for every
// commit.
type batchSpace struct {
	buf  []byte
	recs []record
}

var spaces sync.Pool

// release gives a committed batch's memory to the next one. Only the
// writer holds b.buf and b.recs by then; callers hold b for Wait alone.
func (b *batch) release() {
	if cap(b.buf) <= maxBatchBytes {
		clear(b.recs) // drop the references to executions
		spaces.Put(&batchSpace{buf: b.buf, recs: b.recs})
	}
	b.buf, b.recs = nil, nil
}

// failedCommit is the Commit of a record refused before it was queued.
type failedCommit struct{ err error }

func (c failedCommit) Wait() error { return c.err }

// encoders recycles the buffers records are encoded in before they are
// framed into their batch.
var encoders = sync.Pool{New: func() any { return new(enc) }}

// maxPooledEncoder is the largest buffer put back in the pool: a record
// with a large body should not pin its buffer.
const maxPooledEncoder = 64 << 10

func getEncoder() *enc { e := encoders.Get().(*enc); e.b = e.b[:0]; return e }

func putEncoder(e *enc) {
	if cap(e.b) <= maxPooledEncoder {
		encoders.Put(e)
	}
}

// Begin queues an execution's start. A Begin with a zero Started is
// recorded as started at Options.Now. It fails at once (the Commit's Wait
// returns the error) when the id or flow name is not one a journal holds,
// or when the journal already holds an execution of that id.
func (s *Store) Begin(rec *flow.BeginRecord) flow.Commit {
	if err := checkName("execution id", rec.ID); err != nil {
		return failedCommit{fmt.Errorf("journal begin: %w", err)}
	}
	if err := checkName("flow name", rec.Flow); err != nil {
		return failedCommit{fmt.Errorf("journal begin of execution %s: %w", rec.ID, err)}
	}
	r := *rec
	if r.Started.IsZero() {
		r.Started = s.opts.Now()
	}
	e := getEncoder()
	defer putEncoder(e)
	encodeBegin(e, &r)
	ex := &liveExec{id: r.ID, flow: r.Flow, started: r.Started, async: r.Async, seq: 1}

	if err := checkSize(e.b); err != nil {
		return failedCommit{fmt.Errorf("journal begin of execution %s: %w", r.ID, err)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.waitRoom(frameSize(r.ID, e.b)); err != nil {
		return failedCommit{fmt.Errorf("journal begin of execution %s: %w", r.ID, err)}
	}
	if _, ok := s.live[r.ID]; ok {
		return failedCommit{fmt.Errorf("journal begin of execution %s: already begun", r.ID)}
	}
	// An execution that ended is no longer in live; it is in the index by
	// then (the writer removes it from live after its End's commit).
	if s.holds(r.ID) {
		return failedCommit{fmt.Errorf("journal begin of execution %s: already journaled", r.ID)}
	}
	s.live[r.ID] = ex
	return s.push(kindBegin, ex, 0, e.b, nil)
}

// Intent queues that a step's call is about to be sent.
func (s *Store) Intent(id, step string) flow.Commit {
	e := getEncoder()
	defer putEncoder(e)
	e.str(step)
	return s.add("intent", id, kindIntent, e.b, nil)
}

// Step queues a step's outcome.
func (s *Store) Step(id string, rec *flow.StepRecord) flow.Commit {
	e := getEncoder()
	defer putEncoder(e)
	encodeStep(e, rec)
	return s.add("step", id, kindStep, e.b, nil)
}

// Compensation queues the outcome of a step's compensation.
func (s *Store) Compensation(id string, rec *flow.CompensationResult) flow.Commit {
	e := getEncoder()
	defer putEncoder(e)
	encodeCompensation(e, rec)
	return s.add("compensation", id, kindCompensation, e.b, nil)
}

// End queues an execution's answer. An End with a zero Finished is
// recorded as finished at Options.Now. Records of the execution queued
// after it fail.
func (s *Store) End(id string, rec *flow.EndRecord) flow.Commit {
	r := *rec
	if r.Finished.IsZero() {
		r.Finished = s.opts.Now()
	}
	e := getEncoder()
	defer putEncoder(e)
	encodeEnd(e, &r)
	return s.add("end", id, kindEnd, e.b, &r)
}

// add queues a record of a live execution: body is its encoding, and end
// the End record for an End.
func (s *Store) add(what, id string, kind byte, body []byte, end *flow.EndRecord) flow.Commit {
	if err := checkSize(body); err != nil {
		return failedCommit{fmt.Errorf("journal %s of execution %s: %w", what, id, err)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.waitRoom(frameSize(id, body)); err != nil {
		return failedCommit{fmt.Errorf("journal %s of execution %s: %w", what, id, err)}
	}
	ex := s.live[id]
	switch {
	case ex == nil:
		return failedCommit{fmt.Errorf("journal %s of execution %s: not begun, or ended", what, id)}
	case ex.ended:
		return failedCommit{fmt.Errorf("journal %s of execution %s: already ended", what, id)}
	case ex.seq == math.MaxUint32:
		return failedCommit{fmt.Errorf("journal %s of execution %s: too many records", what, id)}
	}
	var sum *Summary
	if kind == kindEnd {
		ex.ended = true
		h := endHead{outcome: end.Outcome, failedStep: end.FailedStep, recovered: end.Recovered, duration: end.Duration}
		s := h.summary(id, beginHead{flow: ex.flow, async: ex.async, started: ex.started})
		sum = &s
	}
	seq := ex.seq
	ex.seq++
	return s.push(kind, ex, seq, body, sum)
}

// maxRecord bounds an encoded record, so that its frame is one Open
// reads back (maxFrame, with room for the frame's own fields).
const maxRecord = maxFrame - 1024

// checkSize refuses a record too large to journal: bodies over 64 MiB,
// which only a flow's max_body set that high lets through.
func checkSize(body []byte) error {
	if len(body) > maxRecord {
		return fmt.Errorf("record of %d bytes, over the journal's %d", len(body), maxRecord)
	}
	return nil
}

// frameSize is the size of the frame of a record of execution id.
func frameSize(id string, body []byte) int { return frameHeader + 5 + 3 + len(id) + len(body) }

// waitRoom waits until a record of n bytes fits in the queue, and reports
// why the record cannot be queued at all. s.mu is held.
func (s *Store) waitRoom(n int) error {
	for !s.closing && s.failed == nil && s.queued > 0 && s.queued+n > maxQueuedBytes {
		s.room.Wait()
	}
	switch {
	case s.closing:
		return ErrClosed
	case s.failed != nil:
		return s.failed
	}
	return nil
}

// holds reports whether the index holds execution id.
func (s *Store) holds(id string) bool {
	s.idx.RLock()
	defer s.idx.RUnlock()
	return s.entries[id] != nil
}

// push frames a record into the last queued batch, or into a new one when
// there is none or it is full, and returns its batch. s.mu is held.
func (s *Store) push(kind byte, ex *liveExec, seq uint32, body []byte, end *Summary) *batch {
	var b *batch
	if n := len(s.queue); n > 0 {
		b = s.queue[n-1]
	}
	if b == nil || len(b.recs) >= maxBatchRecords || len(b.buf)+frameSize(ex.id, body) > maxBatchBytes {
		b = &batch{s: s, done: make(chan struct{})}
		if sp, ok := spaces.Get().(*batchSpace); ok {
			b.buf, b.recs = sp.buf[:0], sp.recs[:0]
		}
		s.queue = append(s.queue, b)
		if len(s.queue) == 1 {
			// Nobody may wait for it: commit it within lazyCommit anyway.
			s.lazy.Reset(lazyCommit)
		} else {
			// The batch before it is full.
			s.work.Signal()
		}
	}
	off := len(b.buf)
	b.buf = appendFrame(b.buf, kind, seq, ex.id, body)
	n := len(b.buf) - off
	b.recs = append(b.recs, record{kind: kind, ex: ex, off: off, n: n, end: end})
	s.queued += n
	return b
}
