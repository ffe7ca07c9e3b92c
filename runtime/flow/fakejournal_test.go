package flow

import (
	"encoding/json"
	"sync"
	"testing"
)

// fakeJournal is an in-memory Journal that records every call in order.
// It keeps each record as a JSON round trip of it, as a journal that
// encodes its records would, so what Recover reads is what a store gives
// back. A test may hold the Wait of a record until it releases it, or fail
// it.
type fakeJournal struct {
	t testing.TB

	mu      sync.Mutex
	entries []*journalEntry
	// holds and fails are by entry key (see journalEntry.key).
	holds map[string]chan struct{}
	fails map[string]error
}

// journalEntry is one call of the fake journal.
type journalEntry struct {
	// key names the call: "begin f1", "intent a", "step a succeeded",
	// "compensation a done", "end compensated".
	key    string
	begin  *BeginRecord
	step   *StepRecord
	comp   *CompensationResult
	end    *EndRecord
	intent string
	// waited reports that the engine called the entry's Wait.
	waited bool
}

func newFakeJournal(t testing.TB) *fakeJournal {
	return &fakeJournal{t: t, holds: map[string]chan struct{}{}, fails: map[string]error{}}
}

// hold makes the Wait of the record with key block until the returned
// function is called.
func (j *fakeJournal) hold(key string) (release func()) {
	ch := make(chan struct{})
	j.mu.Lock()
	j.holds[key] = ch
	j.mu.Unlock()
	return func() { close(ch) }
}

// fail makes the Wait of the record with key return err.
func (j *fakeJournal) fail(key string, err error) {
	j.mu.Lock()
	j.fails[key] = err
	j.mu.Unlock()
}

// roundTrip returns a copy of v through JSON.
func roundTrip[T any](t testing.TB, v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		t.Errorf("encode %T: %v", v, err)
		return nil
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Errorf("decode %T: %v", v, err)
	}
	return &out
}

func (j *fakeJournal) add(e *journalEntry) Commit {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, e)
	return &fakeCommit{j: j, e: e}
}

func (j *fakeJournal) Begin(rec *BeginRecord) Commit {
	return j.add(&journalEntry{key: "begin " + rec.ID, begin: roundTrip(j.t, rec)})
}

func (j *fakeJournal) Intent(id, step string) Commit {
	return j.add(&journalEntry{key: "intent " + step, intent: step})
}

func (j *fakeJournal) Step(id string, rec *StepRecord) Commit {
	return j.add(&journalEntry{key: "step " + rec.Step + " " + rec.State, step: roundTrip(j.t, rec)})
}

func (j *fakeJournal) Compensation(id string, rec *CompensationResult) Commit {
	return j.add(&journalEntry{key: "compensation " + rec.Step + " " + rec.Outcome, comp: roundTrip(j.t, rec)})
}

func (j *fakeJournal) End(id string, rec *EndRecord) Commit {
	return j.add(&journalEntry{key: "end " + string(rec.Outcome), end: roundTrip(j.t, rec)})
}

type fakeCommit struct {
	j *fakeJournal
	e *journalEntry
}

func (c *fakeCommit) Wait() error {
	c.j.mu.Lock()
	c.e.waited = true
	hold, err := c.j.holds[c.e.key], c.j.fails[c.e.key]
	c.j.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return err
}

// log returns the entries' keys in order, "(waited)" after those whose
// Wait was called.
func (j *fakeJournal) log() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]string, len(j.entries))
	for i, e := range j.entries {
		out[i] = e.key
		if e.waited {
			out[i] += " (waited)"
		}
	}
	return out
}

// find returns the first entry with key.
func (j *fakeJournal) find(key string) *journalEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range j.entries {
		if e.key == key {
			return e
		}
	}
	return nil
}

// crashAfter returns what a journal would hold after a crash right after
// the record with key was made durable: that record and every earlier
// one.
func (j *fakeJournal) crashAfter(key string) *Journaled {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out Journaled
	for _, e := range j.entries {
		switch {
		case e.begin != nil:
			out.Begin = e.begin
		case e.step != nil:
			out.Steps = append(out.Steps, e.step)
		case e.comp != nil:
			out.Compensations = append(out.Compensations, e.comp)
		case e.end != nil:
			j.t.Fatalf("crash after %q: the execution ended before it", key)
		default:
			out.Intents = append(out.Intents, e.intent)
		}
		if e.key == key {
			return &out
		}
	}
	j.t.Fatalf("crash after %q: no such record", key)
	return nil
}

// instantJournal makes every record durable at once.
type instantJournal struct{}

type doneCommit struct{}

func (doneCommit) Wait() error { return nil }

func (instantJournal) Begin(*BeginRecord) Commit                       { return doneCommit{} }
func (instantJournal) Intent(string, string) Commit                    { return doneCommit{} }
func (instantJournal) Step(string, *StepRecord) Commit                 { return doneCommit{} }
func (instantJournal) Compensation(string, *CompensationResult) Commit { return doneCommit{} }
func (instantJournal) End(string, *EndRecord) Commit                   { return doneCommit{} }
