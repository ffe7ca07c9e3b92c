package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/orchestro/orchestro/runtime/flow"
)

// record is one queued record, ready to put.
type record struct {
	kind byte
	key  []byte
	val  []byte
	ex   *liveExec
	// pending is the execution's bucketUnfinished value (Begin only).
	pending []byte
	// end is the execution's index entry once ended (End only).
	end *Summary
}

func (r *record) size() int { return len(r.key) + len(r.val) + len(r.pending) }

// batch is the records of one group commit. It is the Commit of each of
// them: they are durable together or not at all, so one channel serves
// them all and a record costs no allocation of its own beyond its key and
// encoding.
type batch struct {
	recs []record
	size int
	done chan struct{}
	err  error
}

// Wait blocks until the batch is committed, and returns the commit's
// error.
func (b *batch) Wait() error {
	<-b.done
	return b.err
}

// failedCommit is the Commit of a record refused before it was queued.
type failedCommit struct{ err error }

func (c failedCommit) Wait() error { return c.err }

// intentValue is an Intent record's value.
type intentValue struct {
	Step string `json:"step"`
}

// Begin queues an execution's start. A Begin with a zero Started is
// recorded as started at Options.Now. It fails at once (the Commit's Wait
// returns the error) when the id or flow name cannot be a key, or when the
// journal already holds an execution of that id.
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
	val, err := json.Marshal(&r)
	if err != nil {
		return failedCommit{fmt.Errorf("journal begin of execution %s: %w", r.ID, err)}
	}
	pending, err := json.Marshal(pendingValue{Flow: r.Flow, Started: r.Started})
	if err != nil {
		return failedCommit{fmt.Errorf("journal begin of execution %s: %w", r.ID, err)}
	}
	ex := &liveExec{id: r.ID, flow: r.Flow, started: r.Started, async: r.Async, skey: startedKey(r.Started, r.ID), seq: 1}
	rc := record{kind: kindBegin, key: recordKey(ex.skey, 0, kindBegin), val: val, ex: ex, pending: pending}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.waitRoom(rc.size()); err != nil {
		return failedCommit{fmt.Errorf("journal begin of execution %s: %w", r.ID, err)}
	}
	if _, ok := s.live[r.ID]; ok {
		return failedCommit{fmt.Errorf("journal begin of execution %s: already begun", r.ID)}
	}
	// An execution that ended is no longer in live; its records are
	// durable by then (the writer removes it from live after its End's
	// commit), so looking in the file finds them.
	switch held, err := s.holds(r.ID); {
	case err != nil:
		return failedCommit{fmt.Errorf("journal begin of execution %s: %w", r.ID, err)}
	case held:
		return failedCommit{fmt.Errorf("journal begin of execution %s: already journaled", r.ID)}
	}
	s.live[r.ID] = ex
	return s.push(rc)
}

// Intent queues that a step's call is about to be sent.
func (s *Store) Intent(id, step string) flow.Commit {
	val, err := json.Marshal(intentValue{Step: step})
	return s.add("intent", id, kindIntent, val, err, nil)
}

// Step queues a step's outcome.
func (s *Store) Step(id string, rec *flow.StepRecord) flow.Commit {
	val, err := json.Marshal(rec)
	return s.add("step", id, kindStep, val, err, nil)
}

// Compensation queues the outcome of a step's compensation.
func (s *Store) Compensation(id string, rec *flow.CompensationResult) flow.Commit {
	val, err := json.Marshal(rec)
	return s.add("compensation", id, kindCompensation, val, err, nil)
}

// End queues an execution's answer. An End with a zero Finished is
// recorded as finished at Options.Now. Records of the execution queued
// after it fail.
func (s *Store) End(id string, rec *flow.EndRecord) flow.Commit {
	r := *rec
	if r.Finished.IsZero() {
		r.Finished = s.opts.Now()
	}
	val, err := json.Marshal(&r)
	return s.add("end", id, kindEnd, val, err, &r)
}

// add queues a record of a live execution: val is its encoding, or encErr
// why it has none, and end the End record for an End.
func (s *Store) add(what, id string, kind byte, val []byte, encErr error, end *flow.EndRecord) flow.Commit {
	if encErr != nil {
		return failedCommit{fmt.Errorf("journal %s of execution %s: %w", what, id, encErr)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.waitRoom(len(id) + 6 + len(val)); err != nil {
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
	rc := record{kind: kind, key: recordKey(ex.skey, ex.seq, kind), val: val, ex: ex}
	ex.seq++
	if kind == kindEnd {
		ex.ended = true
		rc.end = &Summary{
			ID: id, Flow: ex.flow, State: stateOf(true, end.Outcome, false), Outcome: end.Outcome, Started: ex.started,
			Duration: Duration(end.Duration), FailedStep: end.FailedStep, Recovered: end.Recovered, Async: ex.async,
		}
	}
	return s.push(rc)
}

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

// holds reports whether the file holds execution id. s.mu is held, so
// that no Begin of the same id is queued meanwhile.
func (s *Store) holds(id string) (bool, error) {
	var held bool
	err := s.db.View(func(tx *bolt.Tx) error {
		held = tx.Bucket(bucketIDs).Get([]byte(id)) != nil
		return nil
	})
	return held, err
}

// push adds r to the last queued batch, or to a new one when there is
// none or it is full, and returns its batch. s.mu is held.
func (s *Store) push(r record) *batch {
	var b *batch
	if n := len(s.queue); n > 0 {
		b = s.queue[n-1]
	}
	n := r.size()
	if b == nil || len(b.recs) >= maxBatchRecords || b.size+n > maxBatchBytes {
		b = &batch{done: make(chan struct{})}
		s.queue = append(s.queue, b)
		s.work.Signal()
	}
	b.recs = append(b.recs, r)
	b.size += n
	s.queued += n
	return b
}

// errNoBegin reports records of an execution without its Begin record.
var errNoBegin = errors.New("no begin record")
