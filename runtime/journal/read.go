package journal

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/orchestro/orchestro/runtime/flow"
)

// Unfinished returns every execution that began and did not end, oldest
// first: the input of the engine's recovery at gateway start.
func (s *Store) Unfinished() ([]*flow.Journaled, error) {
	var out []*flow.Journaled
	err := s.view(func(bk buckets) error {
		return bk.unfinished.ForEach(func(k, _ []byte) error {
			skey := bk.startedKey(k)
			if skey == nil {
				return fmt.Errorf("execution %s: unfinished, not in the id index", k)
			}
			var t timeline
			if err := t.read(bk.records, skey); err != nil {
				return err
			}
			if t.begin == nil {
				return fmt.Errorf("execution %s: %w", k, errNoBegin)
			}
			out = append(out, &flow.Journaled{Begin: t.begin, Intents: t.intents, Steps: t.steps, Compensations: t.comps})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("journal %s: read unfinished executions: %w", s.path, err)
	}
	slices.SortFunc(out, func(a, b *flow.Journaled) int {
		return cmp.Or(a.Begin.Started.Compare(b.Begin.Started), cmp.Compare(a.Begin.ID, b.Begin.ID))
	})
	return out, nil
}

// Get returns the whole timeline of execution id, or an error wrapping
// ErrNotFound.
func (s *Store) Get(id string) (*Execution, error) {
	if checkName("execution id", id) != nil {
		return nil, fmt.Errorf("execution %q: %w", id, ErrNotFound)
	}
	var (
		t     timeline
		found bool
	)
	err := s.view(func(bk buckets) error {
		skey := bk.startedKey([]byte(id))
		if found = skey != nil; !found {
			return nil
		}
		return t.read(bk.records, skey)
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("journal %s: read execution %s: %w", s.path, id, err)
	case !found:
		return nil, fmt.Errorf("execution %s: %w", id, ErrNotFound)
	case t.begin == nil:
		return nil, fmt.Errorf("journal %s: read execution %s: %w", s.path, id, errNoBegin)
	}
	return t.execution(), nil
}

// List returns the summaries of the executions f keeps, the most recently
// started first. It reads the index only, never the records.
func (s *Store) List(f Filter) ([]*Summary, error) {
	out := []*Summary{}
	var since []byte
	if !f.Since.IsZero() {
		ts := timeBytes(f.Since)
		since = ts[:]
	}
	// add keeps sum when f does, and reports whether the list is full.
	add := func(v []byte) (bool, error) {
		sum := new(Summary)
		if err := json.Unmarshal(v, sum); err != nil {
			return false, err
		}
		if f.keep(sum) {
			out = append(out, sum)
		}
		return f.Limit > 0 && len(out) >= f.Limit, nil
	}
	err := s.view(func(bk buckets) error {
		if f.Flow == "" {
			c := bk.started.Cursor()
			for k, v := c.Last(); k != nil; k, v = c.Prev() {
				if len(k) < 8 {
					return fmt.Errorf("index key %q: %w", k, errBadKey)
				}
				if since != nil && bytes.Compare(k[:8], since) < 0 {
					return nil
				}
				if full, err := add(v); full || err != nil {
					return err
				}
			}
			return nil
		}
		prefix := flowPrefix(f.Flow)
		c := bk.flows.Cursor()
		k, _ := c.Seek(prefixEnd(prefix))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			skey := k[len(prefix):]
			if len(skey) < 8 {
				return fmt.Errorf("flow index key %q: %w", k, errBadKey)
			}
			if since != nil && bytes.Compare(skey[:8], since) < 0 {
				return nil
			}
			v := bk.started.Get(skey)
			if v == nil {
				return fmt.Errorf("execution %s: in the flow index, not in the start index", startedKeyID(skey))
			}
			if full, err := add(v); full || err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal %s: list executions: %w", s.path, err)
	}
	return out, nil
}

// view runs fn in a read transaction.
func (s *Store) view(fn func(bk buckets) error) error {
	err := s.db.View(func(tx *bolt.Tx) error { return fn(bucketsOf(tx)) })
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// startedKey returns the key in bucketStarted of execution id, nil when
// the journal does not hold it.
func (bk buckets) startedKey(id []byte) []byte {
	ts := bk.ids.Get(id)
	if len(ts) != 8 {
		return nil
	}
	skey := make([]byte, 0, 8+len(id))
	skey = append(skey, ts...)
	return append(skey, id...)
}

// timeline is an execution's records, decoded.
type timeline struct {
	begin   *flow.BeginRecord
	intents []string
	steps   []*flow.StepRecord
	comps   []*flow.CompensationResult
	end     *flow.EndRecord
}

// read decodes every record of the execution whose key in bucketStarted
// is skey.
func (t *timeline) read(records *bolt.Bucket, skey []byte) error {
	id := startedKeyID(skey)
	prefix := recordPrefix(skey)
	c := records.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		_, kind, err := parseRecordKey(prefix, k)
		if err == nil {
			err = t.add(kind, v)
		}
		if err != nil {
			return fmt.Errorf("execution %s: %w", id, err)
		}
	}
	return nil
}

// add decodes one record.
func (t *timeline) add(kind byte, v []byte) error {
	var err error
	switch kind {
	case kindBegin:
		t.begin = new(flow.BeginRecord)
		err = json.Unmarshal(v, t.begin)
	case kindIntent:
		var iv intentValue
		err = json.Unmarshal(v, &iv)
		t.intents = append(t.intents, iv.Step)
	case kindStep:
		sr := new(flow.StepRecord)
		err = json.Unmarshal(v, sr)
		t.steps = append(t.steps, sr)
	case kindCompensation:
		cr := new(flow.CompensationResult)
		err = json.Unmarshal(v, cr)
		t.comps = append(t.comps, cr)
	case kindEnd:
		t.end = new(flow.EndRecord)
		err = json.Unmarshal(v, t.end)
	default:
		err = fmt.Errorf("record kind %q: %w", kind, errBadKey)
	}
	if err != nil {
		return fmt.Errorf("record %c: %w", kind, err)
	}
	return nil
}

// execution is the API view of a complete timeline (t.begin set).
func (t *timeline) execution() *Execution {
	b := t.begin
	x := &Execution{
		ID: b.ID, Flow: b.Flow, Async: b.Async, Started: b.Started, Deadline: b.Deadline, Input: b.Input,
		Steps:         make([]Step, 0, len(t.steps)),
		Compensations: make([]flow.CompensationResult, 0, len(t.comps)),
	}
	compensated := make(map[string]string, len(t.comps))
	for _, c := range t.comps {
		x.Compensations = append(x.Compensations, *c)
		compensated[c.Step] = c.Outcome
	}
	recorded := make(map[string]bool, len(t.steps))
	for _, r := range t.steps {
		recorded[r.Step] = true
		x.Steps = append(x.Steps, Step{
			ID: r.Step, State: r.State, Status: r.Status, Tries: r.Tries, Error: r.Error,
			Started: r.Started, Duration: Duration(r.Duration), Reached: r.Reached,
			Compensated: compensated[r.Step], Header: r.Header, Body: r.Body,
		})
	}
	for _, id := range t.intents {
		if !recorded[id] {
			recorded[id] = true
			x.Steps = append(x.Steps, Step{ID: id, State: StepInFlight, Compensated: compensated[id]})
		}
	}
	if e := t.end; e != nil {
		x.Finished, x.Duration, x.Outcome = e.Finished, Duration(e.Duration), e.Outcome
		x.FailedStep, x.TimedOut, x.Recovered = e.FailedStep, e.TimedOut, e.Recovered
		x.Response = responseOf(e)
	}
	x.State = stateOf(t.end != nil, x.Outcome, len(t.comps) > 0)
	return x
}
