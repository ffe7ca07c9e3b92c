package flow

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ledger is a sequential flow whose steps journal differently: a's
// compensation needs a's answer, b's does not; c is a plain read and d a
// write, neither with a compensate.
const ledger = `{"name": "ledger", "deadline": "10s", "steps": [
  {"id": "a", "call": "POST svc /a", "body": {"order": "${{ path.order }}"}, "compensate": {"call": "DELETE svc /a/${{ a.body.id }}"}},
  {"id": "b", "call": "POST svc /b", "compensate": {"call": "DELETE svc /b/${{ flow.id }}"}},
  {"id": "c", "call": "GET svc /c"},
  {"id": "d", "call": "POST svc /d"}
]}`

func ledgerScript() map[string][]reply {
	return map[string][]reply{
		"a": {withStatus(201, `{"id": "a1"}`)},
		"b": {withStatus(201, `{"id": "b1"}`)},
		"c": {ok(`{"n": 1}`)},
		"d": {withStatus(201, `{"id": "d1"}`)},
	}
}

// fork runs b (a write with a compensate) and c (a plain read) in
// parallel between a and d.
const fork = `{"name": "fork", "deadline": "10s", "steps": [
  {"id": "a", "call": "POST svc /a", "compensate": {"call": "DELETE svc /a/${{ a.body.id }}"}},
  {"parallel": [
    {"id": "b", "call": "POST svc /b", "compensate": {"call": "DELETE svc /b/${{ flow.id }}"}},
    {"id": "c", "call": "GET svc /c"}
  ]},
  {"id": "d", "call": "POST svc /d"}
]}`

// forkScript answers c after 10ms and b after 20ms.
func forkScript() map[string][]reply {
	return map[string][]reply{
		"a": {withStatus(201, `{"id": "a1"}`)},
		"b": {{status: 201, after: 20 * time.Millisecond}},
		"c": {{status: 200, after: 10 * time.Millisecond}},
	}
}

func with(script map[string][]reply, changes map[string][]reply) map[string][]reply {
	for k, v := range changes {
		script[k] = v
	}
	return script
}

func TestJournalSequence(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		script  map[string][]reply
		outcome Outcome
		log     []string
	}{
		{
			name: "success", src: ledger, script: ledgerScript(), outcome: Succeeded,
			log: []string{
				"begin f1",
				"intent a (waited)", "step a succeeded",
				"intent b (waited)", "step b succeeded",
				"step c succeeded",
				"step d succeeded",
				"end succeeded (waited)",
			},
		},
		{
			name: "failure with compensation", src: ledger,
			script:  with(ledgerScript(), map[string][]reply{"d": {withStatus(500, "")}}),
			outcome: Compensated,
			log: []string{
				"begin f1",
				"intent a (waited)", "step a succeeded",
				"intent b (waited)", "step b succeeded",
				"step c succeeded",
				"step d failed",
				"compensation b done", "compensation a done",
				"end compensated (waited)",
			},
		},
		{
			// c ends first; b's intent is waited for before it is sent.
			name: "parallel group", src: fork, script: forkScript(), outcome: Succeeded,
			log: []string{
				"begin f1",
				"intent a (waited)", "step a succeeded",
				"intent b (waited)", "step c succeeded", "step b succeeded",
				"step d succeeded",
				"end succeeded (waited)",
			},
		},
		{
			name: "parallel member failing, its sibling in flight", src: fork,
			script:  with(forkScript(), map[string][]reply{"b": {{block: true}}, "c": {{status: 500, after: 10 * time.Millisecond}}}),
			outcome: Compensated,
			log: []string{
				"begin f1",
				"intent a (waited)", "step a succeeded",
				"intent b (waited)", "step c failed", "step b cancelled",
				"compensation b done", "compensation a done",
				"end compensated (waited)",
			},
		},
		{
			// Nothing may have taken effect: the execution never waits.
			name:    "plain reads",
			src:     `{"name": "reads", "steps": [{"id": "x", "call": "GET svc /x"}, {"id": "y", "call": "GET svc /y"}]}`,
			outcome: Succeeded,
			log:     []string{"begin f1", "step x succeeded", "step y succeeded", "end succeeded"},
		},
		{
			name:    "a step skipped",
			src:     `{"name": "skip", "steps": [{"id": "x", "call": "POST svc /x", "when": false}]}`,
			outcome: Succeeded,
			log:     []string{"begin f1", "step x skipped", "end succeeded"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newFakeJournal(t)
			res, _ := run(t, tt.src, tt.script, WithJournal(j))
			if res.Outcome != tt.outcome {
				t.Errorf("outcome %s, want %s; body %s", res.Outcome, tt.outcome, res.Body)
			}
			if diff := cmp.Diff(tt.log, j.log()); diff != "" {
				t.Errorf("journal (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJournalRecords checks what the records hold.
func TestJournalRecords(t *testing.T) {
	j := newFakeJournal(t)
	script := ledgerScript()
	script["a"] = []reply{{status: 201, after: 30 * time.Millisecond, header: http.Header{"Content-Type": {"application/json"}}, body: `{"id": "a1"}`}}
	res, _ := run(t, ledger, script, WithJournal(j))

	wantBegin := &BeginRecord{ID: "f1", Flow: "ledger", Started: t0, Deadline: t0.Add(10 * time.Second), Input: testInput()}
	if diff := cmp.Diff(wantBegin, j.find("begin f1").begin); diff != "" {
		t.Errorf("begin (-want +got):\n%s", diff)
	}
	wantStep := &StepRecord{
		Step: "a", State: "succeeded", Status: 201,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id": "a1"}`),
		Tries: 1, Started: t0, Duration: 30 * time.Millisecond, Reached: true,
	}
	if diff := cmp.Diff(wantStep, j.find("step a succeeded").step); diff != "" {
		t.Errorf("step a (-want +got):\n%s", diff)
	}
	wantEnd := &EndRecord{
		Outcome: Succeeded, Status: 200, Header: res.Header, Body: res.Body,
		Finished: t0.Add(30 * time.Millisecond), Duration: 30 * time.Millisecond,
	}
	if diff := cmp.Diff(wantEnd, j.find("end succeeded").end); diff != "" {
		t.Errorf("end (-want +got):\n%s", diff)
	}
}

// TestJournalFailedStepRecord checks the record of a step that failed.
func TestJournalFailedStepRecord(t *testing.T) {
	j := newFakeJournal(t)
	run(t, ledger, with(ledgerScript(), map[string][]reply{"b": {{err: ErrConnect}}}), WithJournal(j))
	want := &StepRecord{Step: "b", State: "failed", Tries: 1, Error: "call b: no connection", Started: t0}
	if diff := cmp.Diff(want, j.find("step b failed").step); diff != "" {
		t.Errorf("step b (-want +got):\n%s", diff)
	}
}

// TestJournalIntentHolds checks that a compensable step is not sent
// before its intent is durable, and that a step without compensate does
// not wait for anything.
func TestJournalIntentHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		caller := newFakeCaller(clk, ledgerScript())
		j := newFakeJournal(t)
		releaseB := j.hold("intent b")
		// Neither the start nor a step record is waited for: holding
		// them changes nothing.
		releaseBegin := j.hold("begin f1")
		releaseC := j.hold("step c succeeded")
		defer releaseBegin()
		defer releaseC()
		r := New("shop", mustFlow(t, ledger), caller, clk, WithJournal(j))
		done := make(chan *Result, 1)
		go func() { done <- r.Execute(t.Context(), testInput()) }()

		synctest.Wait()
		if diff := cmp.Diff([]string{"a"}, caller.keys()); diff != "" {
			t.Fatalf("calls while b's intent is held (-want +got):\n%s", diff)
		}
		releaseB()
		res := <-done
		if res.Outcome != Succeeded {
			t.Errorf("outcome %s, want succeeded", res.Outcome)
		}
		if diff := cmp.Diff([]string{"a", "b", "c", "d"}, caller.keys()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
}

// TestJournalEndWait checks that the end is waited for exactly when some
// step may have taken effect.
func TestJournalEndWait(t *testing.T) {
	tests := []struct {
		name   string
		steps  string
		script map[string][]reply
		waited bool
	}{
		{name: "plain reads", steps: `{"id": "x", "call": "GET svc /x"}, {"id": "y", "call": "HEAD svc /y"}`},
		{name: "a write", steps: `{"id": "x", "call": "GET svc /x"}, {"id": "y", "call": "POST svc /y"}`, waited: true},
		{name: "a put", steps: `{"id": "x", "call": "PUT svc /x"}`, waited: true},
		{name: "a read with a compensate", steps: `{"id": "x", "call": "GET svc /x", "compensate": {"call": "DELETE svc /x"}}`, waited: true},
		{
			name: "a write that never reached a replica", steps: `{"id": "x", "call": "POST svc /x"}`,
			script: map[string][]reply{"x": {{err: ErrConnect}}},
		},
		{
			name: "a write that failed after reaching a replica", steps: `{"id": "x", "call": "POST svc /x"}`,
			script: map[string][]reply{"x": {withStatus(500, "")}}, waited: true,
		},
		{
			name: "an optional write that failed", steps: `{"id": "x", "call": "POST svc /x", "optional": true}, {"id": "y", "call": "GET svc /y"}`,
			script: map[string][]reply{"x": {{err: errors.New("connection reset")}}}, waited: true,
		},
		{
			name: "a write skipped", steps: `{"id": "x", "call": "POST svc /x", "when": false}, {"id": "y", "call": "GET svc /y"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newFakeJournal(t)
			res, _ := run(t, `{"name": "f", "steps": [`+tt.steps+`]}`, tt.script, WithJournal(j))
			log := j.log()
			last := log[len(log)-1]
			want := "end " + string(res.Outcome)
			if tt.waited {
				want += " (waited)"
			}
			if last != want {
				t.Errorf("last record %q, want %q (journal %v)", last, want, log)
			}
		})
	}
}

// TestJournalIntentError checks that a step whose intent cannot be
// journaled fails without being sent.
func TestJournalIntentError(t *testing.T) {
	j := newFakeJournal(t)
	j.fail("intent b", errors.New("disk full"))
	res, caller := run(t, ledger, ledgerScript(), WithJournal(j))
	if res.Status != 502 || res.Outcome != Compensated || res.FailedStep != "b" {
		t.Errorf("status %d, outcome %s, failed step %q; want 502, compensated, b", res.Status, res.Outcome, res.FailedStep)
	}
	if diff := cmp.Diff([]string{"a", "a/compensate"}, caller.keys()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	want := StepResult{ID: "b", State: "failed", Error: "journal the intent to send it: disk full"}
	if diff := cmp.Diff(want, stepResult(res, "b")); diff != "" {
		t.Errorf("step b (-want +got):\n%s", diff)
	}
	var p problemDetails
	if err := json.Unmarshal(res.Body, &p); err != nil || p.Detail != `step "b" failed: journal the intent to send it: disk full` {
		t.Errorf("problem %s: %v", res.Body, err)
	}
}

// TestJournalEndError checks that a success whose end cannot be journaled
// is compensated and answered as failed: a recovery would undo it.
func TestJournalEndError(t *testing.T) {
	j := newFakeJournal(t)
	j.fail("end succeeded", errors.New("disk full"))
	res, caller := run(t, ledger, ledgerScript(), WithJournal(j))
	if res.Status != 503 || res.Outcome != Compensated || res.FailedStep != "" || res.Header.Get(HeaderCompensated) != "true" {
		t.Errorf("status %d, outcome %s, failed step %q, compensated %q; want 503, compensated, none, true",
			res.Status, res.Outcome, res.FailedStep, res.Header.Get(HeaderCompensated))
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "b/compensate", "a/compensate"}, caller.keys()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	wantLog := []string{
		"begin f1", "intent a (waited)", "step a succeeded", "intent b (waited)", "step b succeeded",
		"step c succeeded", "step d succeeded", "end succeeded (waited)",
		"compensation b done", "compensation a done", "end compensated (waited)",
	}
	if diff := cmp.Diff(wantLog, j.log()); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
	var p problemDetails
	if err := json.Unmarshal(res.Body, &p); err != nil || p.Type != ProblemJournal ||
		p.Detail != "every step succeeded but the execution's end could not be journaled, so its steps were compensated: disk full" {
		t.Errorf("problem %s: %v", res.Body, err)
	}
}

// TestStart checks that an asynchronous execution starts only once its
// start is durable, and then runs as Execute does.
func TestStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		caller := newFakeCaller(clk, ledgerScript())
		j := newFakeJournal(t)
		release := j.hold("begin f1")
		r := New("shop", mustFlow(t, ledger), caller, clk, WithJournal(j))
		type started struct {
			run func(ctx context.Context) *Result
			err error
		}
		done := make(chan started, 1)
		go func() {
			run, err := r.Start(testInput())
			done <- started{run, err}
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Start returned before the start was durable")
		default:
		}
		release()
		s := <-done
		if s.err != nil {
			t.Fatal(s.err)
		}
		if len(caller.keys()) != 0 {
			t.Fatalf("calls before run: %v", caller.keys())
		}
		res := drive(t, clk, func() *Result { return s.run(t.Context()) })
		if res.Outcome != Succeeded || res.Recovered {
			t.Errorf("outcome %s, recovered %v; want succeeded, false", res.Outcome, res.Recovered)
		}
		if b := j.find("begin f1").begin; !b.Async {
			t.Errorf("begin record %+v, want async", b)
		}
		if diff := cmp.Diff("begin f1 (waited)", j.log()[0]); diff != "" {
			t.Errorf("first record (-want +got):\n%s", diff)
		}
	})
}

// TestStartBeginError checks that an asynchronous execution whose start
// cannot be journaled does not run, and is ended in the journal should
// its start be durable after all.
func TestStartBeginError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		caller := newFakeCaller(clk, nil)
		j := newFakeJournal(t)
		j.fail("begin f1", errors.New("disk full"))
		r := New("shop", mustFlow(t, ledger), caller, clk, WithJournal(j))
		run, err := r.Start(testInput())
		if run != nil || err == nil || err.Error() != "journal the start of execution f1 of flow ledger: disk full" {
			t.Errorf("Start: %v, %v; want no run and the journal's error", run != nil, err)
		}
		if diff := cmp.Diff([]string{"begin f1 (waited)", "end failed"}, j.log()); diff != "" {
			t.Errorf("journal (-want +got):\n%s", diff)
		}
		if len(caller.keys()) != 0 {
			t.Errorf("calls: %v", caller.keys())
		}
	})
}

// TestStartWithoutJournal checks that Start without a journal runs the
// execution as Execute does.
func TestStartWithoutJournal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		r := New("shop", mustFlow(t, ledger), newFakeCaller(clk, ledgerScript()), clk)
		run, err := r.Start(testInput())
		if err != nil {
			t.Fatal(err)
		}
		res := drive(t, clk, func() *Result { return run(t.Context()) })
		if res.Outcome != Succeeded {
			t.Errorf("outcome %s, want succeeded", res.Outcome)
		}
	})
}

// TestJournalConcurrent runs journaled executions of one Runner at once,
// with the real clock, for the race detector.
func TestJournalConcurrent(t *testing.T) {
	j := newFakeJournal(t)
	r := New("shop", mustFlow(t, placeOrder), instantCaller{}, RealClock{}, WithJournal(j))
	done := make(chan *Result)
	for i := range 8 {
		go func() {
			in := testInput()
			in.ID = "f" + string(rune('a'+i))
			done <- r.Execute(t.Context(), in)
		}()
	}
	for range 8 {
		if res := <-done; res.Status != 201 {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
	}
	// Per execution: its start, 2 intents, 5 steps and its end.
	if got := len(j.log()); got != 8*9 {
		t.Errorf("%d records, want %d", got, 8*9)
	}
}
