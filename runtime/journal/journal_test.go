package journal

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/flow"
)

// TestRoundTrip records every kind of record, reopens the file and reads
// them back, through Unfinished for an execution that did not end and
// through Get for one that did.
func TestRoundTrip(t *testing.T) {
	path := tempPath(t)
	s := open(t, path, Options{})

	input := &flow.Input{
		ID: "x1", Method: "POST", Path: "/checkout/42",
		Query:     map[string][]string{"coupon": {"a", "b"}},
		Header:    http.Header{"Content-Type": {"application/json"}, "X-User": {"ann"}},
		Body:      []byte(`{"items":[{"sku":"a","qty":2}]}`),
		Captures:  map[string]string{"order": "42"},
		RequestID: "req-1", Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	begin := &flow.BeginRecord{ID: "x1", Flow: "place-order", Async: true, Started: t0, Deadline: t0.Add(24 * time.Hour), Input: input}
	reserve := &flow.StepRecord{
		Step: "reserve", State: flow.StepSucceeded, Status: 201,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"r-7"}`),
		Tries: 2, Started: t0.Add(time.Millisecond), Duration: 1500 * time.Microsecond, Reached: true,
	}
	charge := &flow.StepRecord{
		Step: "charge", State: flow.StepFailed, Status: 402, Body: []byte("declined\x00\xff"),
		Tries: 1, Error: "status 402", Started: t0.Add(3 * time.Millisecond), Duration: time.Millisecond, Reached: true,
	}
	comp := &flow.CompensationResult{Step: "reserve", Outcome: flow.CompensationDone, Status: 404, Tries: 3, Error: ""}

	s.Begin(begin)
	s.Intent("x1", "reserve")
	s.Step("x1", reserve)
	s.Intent("x1", "charge")
	s.Step("x1", charge)
	wait(t, s.Compensation("x1", comp))

	// A second execution that ends.
	end := &flow.EndRecord{
		Outcome: flow.Compensated, Status: 402,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"error":"payment_declined"}`),
		FailedStep: "charge", TimedOut: true, Finished: t0.Add(2 * time.Second), Duration: 2 * time.Second, Recovered: true,
	}
	s.Begin(beginRec("x2", "place-order", t0.Add(time.Second)))
	s.Intent("x2", "reserve")
	s.Step("x2", reserve)
	s.Intent("x2", "charge")
	s.Compensation("x2", comp)
	wait(t, s.End("x2", end))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, Options{})
	got, err := s.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	want := []*flow.Journaled{{
		Begin:         begin,
		Intents:       []string{"reserve", "charge"},
		Steps:         []*flow.StepRecord{reserve, charge},
		Compensations: []*flow.CompensationResult{comp},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Unfinished (-want +got):\n%s", diff)
	}

	x, err := s.Get("x2")
	if err != nil {
		t.Fatal(err)
	}
	b2 := beginRec("x2", "place-order", t0.Add(time.Second))
	wantX := &Execution{
		ID: "x2", Flow: "place-order", State: Compensated, Started: b2.Started, Deadline: b2.Deadline,
		Finished: end.Finished, Duration: Duration(end.Duration), Outcome: flow.Compensated,
		FailedStep: "charge", TimedOut: true, Recovered: true,
		Steps: []Step{
			{ID: "reserve", State: flow.StepSucceeded, Status: 201, Tries: 2, Started: reserve.Started,
				Duration: Duration(reserve.Duration), Reached: true, Compensated: flow.CompensationDone,
				Header: reserve.Header, Body: reserve.Body},
			{ID: "charge", State: StepInFlight},
		},
		Compensations: []flow.CompensationResult{*comp},
		Response:      &Response{Status: 402, Headers: end.Header, Body: []byte(`{"error":"payment_declined"}`)},
		Input:         b2.Input,
	}
	if diff := cmp.Diff(wantX, x); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}

	if _, err := s.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an unknown id: %v, want ErrNotFound", err)
	}
}

// TestRecordsRefused checks the records that fail at once, without being
// queued.
func TestRecordsRefused(t *testing.T) {
	path := tempPath(t)
	s := open(t, path, Options{})
	wait(t, s.Begin(beginRec("a", "f", t0)))
	wait(t, s.End("a", endRec(flow.Succeeded, t0)))
	s.Begin(beginRec("b", "f", t0))
	s.End("b", endRec(flow.Succeeded, t0)) // not waited: its End may still be queued

	tests := []struct {
		name string
		rec  func(s *Store) flow.Commit
		want string
	}{
		{"begin of an execution that ended", func(s *Store) flow.Commit { return s.Begin(beginRec("a", "f", t0)) }, "already journaled"},
		{"begin of an execution whose end is queued", func(s *Store) flow.Commit { return s.Begin(beginRec("b", "f", t0)) }, "already"},
		{"step of an unknown execution", func(s *Store) flow.Commit { return s.Step("zz", &flow.StepRecord{Step: "s"}) }, "not begun"},
		{"intent after the end", func(s *Store) flow.Commit { return s.Intent("b", "s") }, "ended"},
		{"empty id", func(s *Store) flow.Commit { return s.Begin(beginRec("", "f", t0)) }, "empty execution id"},
		{"id with NUL", func(s *Store) flow.Commit { return s.Begin(beginRec("a\x00b", "f", t0)) }, "NUL"},
		{"long id", func(s *Store) flow.Commit { return s.Begin(beginRec(strings.Repeat("x", 513), "f", t0)) }, "over 512"},
		{"empty flow", func(s *Store) flow.Commit { return s.Begin(beginRec("c", "", t0)) }, "empty flow name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rec(s).Wait()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Wait = %v, want an error with %q", err, tt.want)
			}
		})
	}

	// After a reopen, the file is what tells an id is taken.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	if err := s.Begin(beginRec("b", "f", t0)).Wait(); err == nil || !strings.Contains(err.Error(), "already journaled") {
		t.Errorf("Begin of an id journaled before the reopen: %v", err)
	}
	// A refused record leaves the journal usable.
	wait(t, s.Begin(beginRec("c", "f", t0)))
}

// TestBeginDefaultsTimes checks that a Begin and an End without times are
// stamped with Options.Now.
func TestBeginDefaultsTimes(t *testing.T) {
	clk := newClock()
	s := open(t, tempPath(t), Options{Now: clk.Now})
	b := beginRec("a", "f", time.Time{})
	s.Begin(b)
	e := endRec(flow.Succeeded, t0)
	e.Finished = time.Time{}
	wait(t, s.End("a", e))
	x, err := s.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	if !x.Started.Equal(t0.Add(time.Millisecond)) || !x.Finished.Equal(t0.Add(2*time.Millisecond)) {
		t.Errorf("started %v, finished %v: want the clock's first two times", x.Started, x.Finished)
	}
	if !b.Started.IsZero() {
		t.Error("Begin changed the caller's record")
	}
}

// TestUnfinishedAfterReopen checks that executions carry on after a
// reopen: their records keep their order, and an End finishes them.
func TestUnfinishedAfterReopen(t *testing.T) {
	path := tempPath(t)
	s := open(t, path, Options{})
	for _, id := range []string{"b", "a", "c"} {
		s.Begin(beginRec(id, "f", t0.Add(time.Duration(id[0])*time.Second)))
		s.Intent(id, "one")
	}
	wait(t, s.Step("a", &flow.StepRecord{Step: "one", State: flow.StepSucceeded}))
	wait(t, s.End("c", endRec(flow.Succeeded, t0)))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, Options{})
	got, err := s.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range got {
		ids = append(ids, j.Begin.ID)
	}
	if diff := cmp.Diff([]string{"a", "b"}, ids); diff != "" {
		t.Errorf("unfinished, oldest first (-want +got):\n%s", diff)
	}

	// Recovery goes on with a.
	s.Intent("a", "two")
	s.Step("a", &flow.StepRecord{Step: "two", State: flow.StepCancelled})
	s.Compensation("a", &flow.CompensationResult{Step: "one", Outcome: flow.CompensationDone})
	wait(t, s.End("a", &flow.EndRecord{Outcome: flow.Compensated, Status: 502, Recovered: true}))
	x, err := s.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, st := range x.Steps {
		steps = append(steps, st.ID+":"+st.State+":"+st.Compensated)
	}
	want := []string{"one:succeeded:done", "two:cancelled:"}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if x.State != Compensated || !x.Recovered {
		t.Errorf("state %s, recovered %v", x.State, x.Recovered)
	}
	got, err = s.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Begin.ID != "b" {
		t.Errorf("unfinished after a's end: %v", got)
	}
}

// TestReadsAfterClose checks that a closed Store fails clearly.
func TestReadsAfterClose(t *testing.T) {
	s := open(t, tempPath(t), Options{})
	wait(t, s.Begin(beginRec("a", "f", t0)))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, err := range map[string]error{
		"Begin":      s.Begin(beginRec("b", "f", t0)).Wait(),
		"Step":       s.Step("a", &flow.StepRecord{Step: "s"}).Wait(),
		"End":        s.End("a", &flow.EndRecord{}).Wait(),
		"Get":        second(s.Get("a")),
		"List":       second(s.List(Filter{})),
		"Unfinished": second(s.Unfinished()),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
