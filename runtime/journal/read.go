package journal

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/orchestro/orchestro/runtime/flow"
)

// Unfinished returns every execution that began and did not end, oldest
// first: the input of the engine's recovery at gateway start.
func (s *Store) Unfinished() ([]*flow.Journaled, error) {
	s.idx.RLock()
	defer s.idx.RUnlock()
	if s.entries == nil {
		return nil, ErrClosed
	}
	var out []*flow.Journaled
	for _, e := range s.entries {
		if e.ended {
			continue
		}
		t, err := s.read(e)
		if err != nil {
			return nil, fmt.Errorf("journal %s: read unfinished executions: %w", s.dir, err)
		}
		out = append(out, &flow.Journaled{Begin: t.begin, Intents: t.intents, Steps: t.steps, Compensations: t.comps})
	}
	slices.SortFunc(out, func(a, b *flow.Journaled) int {
		return cmp.Or(a.Begin.Started.Compare(b.Begin.Started), cmp.Compare(a.Begin.ID, b.Begin.ID))
	})
	return out, nil
}

// Get returns the whole timeline of execution id, or an error wrapping
// ErrNotFound.
func (s *Store) Get(id string) (*Execution, error) {
	s.idx.RLock()
	defer s.idx.RUnlock()
	if s.entries == nil {
		return nil, ErrClosed
	}
	e := s.entries[id]
	if e == nil {
		return nil, fmt.Errorf("execution %s: %w", id, ErrNotFound)
	}
	t, err := s.read(e)
	if err != nil {
		return nil, fmt.Errorf("journal %s: read execution %s: %w", s.dir, id, err)
	}
	return t.execution(), nil
}

// List returns the summaries of the executions f keeps, the most recently
// started first. It reads the index only, never the records.
func (s *Store) List(f Filter) ([]*Summary, error) {
	s.idx.RLock()
	if s.entries == nil {
		s.idx.RUnlock()
		return nil, ErrClosed
	}
	out := []*Summary{}
	for _, e := range s.entries {
		if f.keep(&e.sum) {
			sum := e.sum
			out = append(out, &sum)
		}
	}
	s.idx.RUnlock()
	slices.SortFunc(out, func(a, b *Summary) int {
		return cmp.Or(b.Started.Compare(a.Started), cmp.Compare(b.ID, a.ID))
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit:f.Limit]
	}
	return out, nil
}

// read decodes every record of an execution. s.idx is held.
func (s *Store) read(e *entry) (*timeline, error) {
	t := new(timeline)
	for seq, l := range e.recs {
		p, err := readFrame(l)
		if err == nil && p.id != e.sum.ID {
			err = fmt.Errorf("%s at %d: a record of execution %s", l.seg.path, l.off, p.id)
		}
		if err == nil {
			err = t.add(p)
		}
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", seq, err)
		}
	}
	if t.begin == nil {
		return nil, fmt.Errorf("execution %s: no begin record", e.sum.ID)
	}
	return t, nil
}

// timeline is an execution's records, decoded.
type timeline struct {
	begin   *flow.BeginRecord
	intents []string
	steps   []*flow.StepRecord
	comps   []*flow.CompensationResult
	end     *flow.EndRecord
}

// add decodes one record.
func (t *timeline) add(p payload) error {
	d := dec{b: p.body}
	switch p.kind {
	case kindBegin:
		t.begin = decodeBegin(&d, p.id)
	case kindIntent:
		t.intents = append(t.intents, d.str())
	case kindStep:
		t.steps = append(t.steps, decodeStep(&d))
	case kindCompensation:
		t.comps = append(t.comps, decodeCompensation(&d))
	case kindEnd:
		t.end = decodeEnd(&d)
	}
	if d.err != nil {
		return fmt.Errorf("record %c: %w", p.kind, d.err)
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
