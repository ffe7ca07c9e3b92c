package journal

import (
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/flow"
)

// t0 is the start of every test's clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a fake Options.Now that advances a millisecond a call.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

// open opens a Store at path and closes it at the end of the test.
func open(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// tempPath is a journal directory in a new temporary directory.
func tempPath(t testing.TB) string { return filepath.Join(t.TempDir(), "journal") }

// wait fails the test when c's record is not durable.
func wait(t testing.TB, c flow.Commit) {
	t.Helper()
	if err := c.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// beginRec is a Begin of execution id of flow started at started.
func beginRec(id, flowName string, started time.Time) *flow.BeginRecord {
	return &flow.BeginRecord{
		ID: id, Flow: flowName, Started: started, Deadline: started.Add(10 * time.Second),
		Input: &flow.Input{ID: id, Method: "POST", Path: "/checkout/" + id, Body: []byte(`{"items":[1]}`)},
	}
}

// endRec is an End with outcome, finished a second after started.
func endRec(outcome flow.Outcome, started time.Time) *flow.EndRecord {
	status := http.StatusCreated
	if outcome != flow.Succeeded {
		status = http.StatusBadGateway
	}
	return &flow.EndRecord{
		Outcome: outcome, Status: status, Finished: started.Add(time.Second), Duration: time.Second,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"ok":true}`),
	}
}

// run journals a whole execution: Begin and End with outcome, waiting on
// End.
func run(t testing.TB, s *Store, id, flowName string, started time.Time, outcome flow.Outcome) {
	t.Helper()
	s.Begin(beginRec(id, flowName, started))
	wait(t, s.End(id, endRec(outcome, started)))
}

// liveFrames returns how many frames of executions kept the index
// points at, and how many executions it holds.
func liveFrames(t testing.TB, s *Store) (frames, executions int) {
	t.Helper()
	s.idx.RLock()
	defer s.idx.RUnlock()
	for _, e := range s.entries {
		frames += len(e.recs)
	}
	return frames, len(s.entries)
}
