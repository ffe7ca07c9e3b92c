package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// write is the writer goroutine: it commits the queued batches one after
// another, each in one transaction, until the Store closes and the queue
// is empty. While it commits one batch, records queue in the next, which
// is how commits group.
func (s *Store) write() {
	defer close(s.writerDone)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closing {
			s.work.Wait()
		}
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return
		}
		b := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		err := s.failed
		s.mu.Unlock()

		var took time.Duration
		if err == nil {
			start := time.Now()
			err = s.commit(b)
			took = time.Since(start)
			if err != nil {
				err = fmt.Errorf("journal %s: commit of %d records: %w", s.path, len(b.recs), err)
				s.logf("%v; every later record fails", err)
			}
		}

		s.mu.Lock()
		s.queued -= b.size
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

		b.err = err
		close(b.done)
		if err == nil && s.opts.OnCommit != nil {
			s.opts.OnCommit(len(b.recs), took)
		}
	}
}

// appendFill is the FillPercent of the buckets whose keys grow with time.
const appendFill = 0.9

// commit applies a batch's records in order in one transaction.
func (s *Store) commit(b *batch) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := bucketsOf(tx)
		// Keys that start with a start time are put in the order of their
		// time, give or take the executions running at once: pages split
		// nearly full rather than in halves.
		bk.records.FillPercent = appendFill
		bk.started.FillPercent = appendFill
		bk.flows.FillPercent = appendFill
		for i := range b.recs {
			if err := s.apply(bk, &b.recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// apply puts one record and keeps the indexes with it.
func (s *Store) apply(bk buckets, r *record) error {
	ex := r.ex
	if err := bk.records.Put(r.key, r.val); err != nil {
		return fmt.Errorf("record of execution %s: %w", ex.id, err)
	}
	switch r.kind {
	case kindBegin:
		if err := bk.ids.Put([]byte(ex.id), ex.skey[:8]); err != nil {
			return fmt.Errorf("begin of execution %s: %w", ex.id, err)
		}
		if err := bk.unfinished.Put([]byte(ex.id), r.pending); err != nil {
			return fmt.Errorf("begin of execution %s: %w", ex.id, err)
		}
		if err := bk.flows.Put(flowKey(ex.flow, ex.skey), []byte{}); err != nil {
			return fmt.Errorf("begin of execution %s: %w", ex.id, err)
		}
		return putSummary(bk, ex.skey, ex.summary())
	case kindCompensation:
		if ex.compensating {
			return nil
		}
		ex.compensating = true
		return putSummary(bk, ex.skey, ex.summary())
	case kindEnd:
		if err := bk.unfinished.Delete([]byte(ex.id)); err != nil {
			return fmt.Errorf("end of execution %s: %w", ex.id, err)
		}
		if err := putSummary(bk, ex.skey, r.end); err != nil {
			return err
		}
		s.finished[ex.flow]++
		return s.prune(bk, ex.flow)
	}
	return nil
}

// putSummary writes an execution's entry in bucketStarted.
func putSummary(bk buckets, skey []byte, sum *Summary) error {
	v, err := json.Marshal(sum)
	if err == nil {
		err = bk.started.Put(skey, v)
	}
	if err != nil {
		return fmt.Errorf("index entry of execution %s: %w", sum.ID, err)
	}
	return nil
}

// prune drops the oldest finished executions of a flow beyond Retain:
// their records and index entries. The flow's count is kept in memory, so
// an execution that ends within Retain costs no read; past it, the walk
// from the flow's oldest execution passes only the unfinished ones older
// than the dropped ones.
func (s *Store) prune(bk buckets, flowName string) error {
	excess := s.finished[flowName] - s.opts.Retain
	if excess <= 0 {
		return nil
	}
	prefix := flowPrefix(flowName)
	var victims [][]byte
	c := bk.flows.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(victims) < excess; k, _ = c.Next() {
		if bk.unfinished.Get(k[len(prefix)+8:]) == nil {
			victims = append(victims, bytes.Clone(k))
		}
	}
	for _, fkey := range victims {
		skey := fkey[len(prefix):]
		id := startedKeyID(skey)
		if err := deleteRecords(bk.records, skey); err != nil {
			return fmt.Errorf("drop execution %s: %w", id, err)
		}
		if err := bk.ids.Delete([]byte(id)); err != nil {
			return fmt.Errorf("drop execution %s: %w", id, err)
		}
		if err := bk.started.Delete(skey); err != nil {
			return fmt.Errorf("drop execution %s: %w", id, err)
		}
		if err := bk.flows.Delete(fkey); err != nil {
			return fmt.Errorf("drop execution %s: %w", id, err)
		}
	}
	s.finished[flowName] -= len(victims)
	return nil
}

// deleteRecords deletes every record of the execution whose key in
// bucketStarted is skey.
func deleteRecords(records *bolt.Bucket, skey []byte) error {
	prefix := recordPrefix(skey)
	var keys [][]byte
	c := records.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := records.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
