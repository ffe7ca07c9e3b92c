package journal

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/flow"
)

// pinned is an execution begun before the others and never ended: it
// pins the first segment until a compaction copies it forward.
type pinned struct {
	begin   *flow.BeginRecord
	reserve *flow.StepRecord
	comp    *flow.CompensationResult
}

func newPinned(id string) *pinned {
	started := t0.Add(-time.Hour)
	return &pinned{
		begin: &flow.BeginRecord{
			ID: id, Flow: "a", Started: started, Deadline: started.Add(48 * time.Hour),
			Input: &flow.Input{
				ID: id, Method: "POST", Path: "/orders/" + id,
				Query:    map[string][]string{"q": {"1", "2"}},
				Header:   http.Header{"X-User": {"ann"}},
				Body:     []byte(`{"items":[1,2,3]}`),
				Captures: map[string]string{"id": id}, RequestID: "req-" + id, Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			},
		},
		reserve: &flow.StepRecord{
			Step: "reserve", State: flow.StepSucceeded, Status: 201, Header: http.Header{"Content-Type": {"text/plain"}},
			Body: bytes.Repeat([]byte("r"), 3000), Tries: 2, Started: started.Add(time.Second), Duration: time.Second, Reached: true,
		},
		comp: &flow.CompensationResult{Step: "reserve", Outcome: flow.CompensationDone, Status: 204, Tries: 1},
	}
}

// journal records p's records and waits on the last.
func (p *pinned) journal(t testing.TB, s *Store) {
	t.Helper()
	id := p.begin.ID
	s.Begin(p.begin)
	s.Intent(id, "reserve")
	s.Step(id, p.reserve)
	s.Intent(id, "charge")
	wait(t, s.Compensation(id, p.comp))
}

// unfinished is what Unfinished returns of p alone.
func (p *pinned) unfinished() []*flow.Journaled {
	return []*flow.Journaled{{
		Begin:         p.begin,
		Intents:       []string{"reserve", "charge"},
		Steps:         []*flow.StepRecord{p.reserve},
		Compensations: []*flow.CompensationResult{p.comp},
	}}
}

// segmentOf returns the number of the segment each record of execution id
// is in.
func segmentsOf(t testing.TB, s *Store, id string) []uint64 {
	t.Helper()
	s.idx.RLock()
	defer s.idx.RUnlock()
	e := s.entries[id]
	if e == nil {
		t.Fatalf("execution %s not in the index", id)
	}
	var ns []uint64
	for _, l := range e.recs {
		ns = append(ns, l.seg.n)
	}
	return ns
}

// TestCompactionMovesUnfinished pins the first segment with an unfinished
// execution and journals many executions that retention drops: the
// writer copies the unfinished one forward and removes the first
// segment, and the execution reads the same, before and after a reopen,
// while none of those dropped comes back.
func TestCompactionMovesUnfinished(t *testing.T) {
	const size = 64 << 10
	path := tempPath(t)
	var logs logLines
	opts := Options{Retain: 2, segmentSize: size, compactAbove: 2 * size, Logf: logs.Logf}
	s := open(t, path, opts)

	u := newPinned("u")
	u.journal(t, s)
	wantU, err := s.Get("u")
	if err != nil {
		t.Fatal(err)
	}
	if wantU.State != Compensating {
		t.Fatalf("u is %s, want %s", wantU.State, Compensating)
	}
	// k is finished and kept (the only one of its flow), with records in
	// the first segment and in the second.
	s.Begin(beginRec("k", "k", t0.Add(-time.Minute)))
	wait(t, s.Intent("k", "one"))
	journalMany(t, s, "f", t0.Add(-30*time.Minute), 60)
	if got := segmentsOf(t, s, "k"); !cmp.Equal(got, []uint64{1, 1}) {
		t.Fatalf("k's records are in segments %v, want [1 1]", got)
	}
	s.Step("k", &flow.StepRecord{Step: "one", State: flow.StepSucceeded, Body: []byte("k")})
	wait(t, s.End("k", endRec(flow.Succeeded, t0.Add(-time.Minute))))
	if got := segmentsOf(t, s, "k"); got[0] != 1 || got[len(got)-1] == 1 {
		t.Fatalf("k's records are in segments %v, want the first and a later one", got)
	}
	wantK, err := s.Get("k")
	if err != nil {
		t.Fatal(err)
	}

	journalMany(t, s, "e", t0, 400)
	waitFor(t, "a compaction", func() bool { return len(logs.with("compacted")) > 0 })

	if _, err := os.Stat(filepath.Join(path, segmentName(1))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("first segment after a compaction: %v, want it removed", err)
	}
	if segs := segmentFiles(t, path); len(segs) > 4 {
		t.Errorf("segments after compactions: %q, want at most 4", segs)
	}
	for _, id := range []string{"u", "k"} {
		ns := segmentsOf(t, s, id)
		for _, n := range ns {
			if n == 1 || n != ns[0] {
				t.Errorf("%s's records are in segments %v, want all in one later segment", id, ns)
				break
			}
		}
	}
	checkIndex(t, s)
	before := snap(t, s)
	if diff := cmp.Diff(wantU, before.executions["u"]); diff != "" {
		t.Errorf("Get(u) after compaction (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantK, before.executions["k"]); diff != "" {
		t.Errorf("Get(k) after compaction (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(u.unfinished(), before.unfinished); diff != "" {
		t.Errorf("Unfinished after compaction (-want +got):\n%s", diff)
	}
	var ids []string
	for _, sum := range before.list {
		ids = append(ids, sum.ID)
	}
	if diff := cmp.Diff([]string{"e0399", "e0398", "e0397", "e0396", "k", "u"}, ids); diff != "" {
		t.Errorf("executions kept (-want +got):\n%s", diff)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var logs2 logLines
	opts.Logf = logs2.Logf
	s = open(t, path, opts)
	checkIndex(t, s)
	compareSnapshots(t, "after reopen", before, snap(t, s))
	for _, id := range []string{"e0000", "e0395", "f0059"} {
		if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%s), dropped, after reopen: %v, want ErrNotFound", id, err)
		}
	}
	if cleared := logs2.with("cleared"); len(cleared) != 0 {
		t.Errorf("reopen logged %q", cleared)
	}

	// u carries on after the reopen, and ends: the oldest finished of its
	// flow, retention drops it at once, and no copy of it comes back.
	wait(t, s.Intent("u", "refund"))
	wait(t, s.End("u", endRec(flow.Compensated, u.begin.Started)))
	if _, err := s.Get("u"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(u) after its end: %v, want ErrNotFound", err)
	}
	after := snap(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, opts)
	checkIndex(t, s)
	compareSnapshots(t, "after u ended and a reopen", after, snap(t, s))
	if len(after.unfinished) != 0 {
		t.Errorf("unfinished after u ended: %d", len(after.unfinished))
	}
}

// TestCompactionAtOpen journals, without compaction, a log that is mostly
// dropped executions behind an unfinished one, and reopens it with
// compaction on: Open compacts, and the journal reads the same.
func TestCompactionAtOpen(t *testing.T) {
	const size = 64 << 10
	path := tempPath(t)
	opts := Options{Retain: 2, segmentSize: size, compactAbove: 1 << 40}
	s := open(t, path, opts)
	u := newPinned("u")
	u.journal(t, s)
	journalMany(t, s, "e", t0, 300)
	if segs := segmentFiles(t, path); len(segs) < 4 || segs[0] != segmentName(1) {
		t.Fatalf("segments without compaction: %q, want at least 4 from the first", segs)
	}
	before := snap(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var logs logLines
	opts.compactAbove, opts.Logf = 2*size, logs.Logf
	s = open(t, path, opts)
	if len(logs.with("compacted")) != 1 {
		t.Errorf("Open logged %q, want one compaction", logs.all())
	}
	if _, err := os.Stat(filepath.Join(path, segmentName(1))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("first segment after Open compacted: %v, want it removed", err)
	}
	checkIndex(t, s)
	compareSnapshots(t, "after Open compacted", before, snap(t, s))
	if diff := cmp.Diff(u.unfinished(), before.unfinished); diff != "" {
		t.Errorf("Unfinished (-want +got):\n%s", diff)
	}

	// The next commit removes the segments left with nothing kept.
	run(t, s, "next", "b", t0.Add(time.Hour), flow.Succeeded)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if segs := segmentFiles(t, path); len(segs) > 2 {
		t.Errorf("segments after a commit: %q, want at most 2", segs)
	}
	s = open(t, path, opts)
	checkIndex(t, s)
	got := snap(t, s)
	if diff := cmp.Diff(u.unfinished(), got.unfinished); diff != "" {
		t.Errorf("Unfinished after the old segments went (-want +got):\n%s", diff)
	}
	if len(got.list) != len(before.list) {
		t.Errorf("%d executions, want %d", len(got.list), len(before.list))
	}
}
