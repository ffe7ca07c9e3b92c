package flow

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// recovered recovers j as a restarted gateway would, restart after the
// execution started: a new Runner of src, with a new caller answering
// script, a new clock and a new journal.
func recovered(t *testing.T, src string, j *Journaled, resume bool, restart time.Duration, script map[string][]reply) (*Result, *fakeCaller, *fakeJournal) {
	t.Helper()
	var res *Result
	var caller *fakeCaller
	journal := newFakeJournal(t)
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		clk.now = t0.Add(restart)
		caller = newFakeCaller(clk, script)
		r := New("shop", mustFlow(t, src), caller, clk, WithJournal(journal))
		res = drive(t, clk, func() *Result { return r.Recover(t.Context(), j, resume) })
	})
	return res, caller, journal
}

func TestRecover(t *testing.T) {
	done := func(step string) CompensationResult {
		return CompensationResult{Step: step, Outcome: CompensationDone, Status: 200, Tries: 1}
	}
	tests := []struct {
		name string
		src  string
		// original is the script of the execution that was interrupted,
		// crashAfter the last of its records that was durable.
		original   map[string][]reply
		crashAfter string
		resume     bool
		// restart is when the gateway recovers, after the execution
		// started; 3s unless set.
		restart time.Duration
		script  map[string][]reply

		calls   []string
		status  int
		problem string // the problem's type, when the answer is one
		detail  string
		outcome Outcome
		comps   []CompensationResult
		// compError is the error of the first compensation, if any.
		compError string
		states    string
		// log is the recovery's own journal.
		log []string
		// resent names a step whose call is sent again, exactly as the
		// first time.
		resent string
	}{
		{
			name: "sync, after a step succeeded: compensated, not sent again",
			src:  ledger, original: ledgerScript(), crashAfter: "step a succeeded",
			calls:  []string{"a/compensate"},
			status: 503, problem: ProblemCancelled, outcome: Compensated,
			detail: `the execution was cancelled: its gateway restarted before step "b" started, and its client is gone`,
			comps:  []CompensationResult{done("a")},
			states: "a:succeeded b:not_started c:not_started d:not_started",
			log:    []string{"compensation a done", "end compensated (waited)"},
		},
		{
			name: "sync, after an intent, the compensation needing the step's answer: sent again, then compensated",
			src:  ledger, original: ledgerScript(), crashAfter: "intent a",
			script: map[string][]reply{"a": {withStatus(201, `{"id": "a1"}`)}},
			calls:  []string{"a", "a/compensate"},
			status: 503, problem: ProblemCancelled, outcome: Compensated,
			detail: `the execution was cancelled: its gateway restarted while step "a" ran, and its client is gone`,
			comps:  []CompensationResult{done("a")},
			states: "a:succeeded b:not_started c:not_started d:not_started",
			log:    []string{"intent a (waited)", "step a succeeded", "compensation a done", "end compensated (waited)"},
			resent: "a",
		},
		{
			name: "sync, after an intent, the compensation not needing the step's answer: compensated without sending it",
			src:  ledger, original: ledgerScript(), crashAfter: "intent b",
			calls:  []string{"b/compensate", "a/compensate"},
			status: 503, problem: ProblemCancelled, outcome: Compensated,
			detail: `the execution was cancelled: its gateway restarted while step "b" ran, and its client is gone`,
			comps:  []CompensationResult{done("b"), done("a")},
			states: "a:succeeded b:cancelled c:not_started d:not_started",
			log:    []string{"compensation b done", "compensation a done", "end compensated (waited)"},
		},
		{
			name: "sync, after an intent, sending the step again failing: not compensated",
			src:  ledger, original: ledgerScript(), crashAfter: "intent a",
			script: map[string][]reply{"a": {withStatus(500, "")}},
			calls:  []string{"a"},
			status: 503, problem: ProblemCancelled, outcome: Partial,
			comps:     []CompensationResult{{Step: "a", Outcome: NotCompensated}},
			compError: "the gateway restarted while the step was in flight, and sending it again for its answer failed: answered 500, expected 2xx",
			states:    "a:cancelled b:not_started c:not_started d:not_started",
			// No outcome of a: it stays in doubt for a later recovery.
			log: []string{"intent a (waited)", "compensation a not_compensated", "end partially_compensated (waited)"},
		},
		{
			name:     "sync, after some compensations: those done are not run again",
			src:      ledger,
			original: with(ledgerScript(), map[string][]reply{"d": {withStatus(500, "")}}), crashAfter: "compensation b done",
			calls:  []string{"a/compensate"},
			status: 503, problem: ProblemCancelled, outcome: Compensated,
			detail: `the execution was cancelled: its gateway restarted after step "d" failed, and its client is gone`,
			comps:  []CompensationResult{done("b"), done("a")},
			states: "a:succeeded b:succeeded c:succeeded d:failed",
			log:    []string{"compensation a done", "end compensated (waited)"},
		},
		{
			name:     "sync, after every compensation",
			src:      ledger,
			original: with(ledgerScript(), map[string][]reply{"d": {withStatus(500, "")}}), crashAfter: "compensation a done",
			status: 503, problem: ProblemCancelled, outcome: Compensated,
			comps:  []CompensationResult{done("b"), done("a")},
			states: "a:succeeded b:succeeded c:succeeded d:failed",
			log:    []string{"end compensated (waited)"},
		},
		{
			name: "sync, after the last step, before the end",
			src:  ledger, original: ledgerScript(), crashAfter: "step d succeeded",
			calls:  []string{"b/compensate", "a/compensate"},
			status: 503, problem: ProblemCancelled, outcome: Compensated,
			detail: "the execution was cancelled: its gateway restarted after its last step ended, and its client is gone",
			comps:  []CompensationResult{done("b"), done("a")},
			states: "a:succeeded b:succeeded c:succeeded d:succeeded",
			log:    []string{"compensation b done", "compensation a done", "end compensated (waited)"},
		},
		{
			name: "sync, parallel member in doubt while its sibling ended",
			src:  fork, original: forkScript(), crashAfter: "step c succeeded",
			calls:  []string{"b/compensate", "a/compensate"},
			status: 503, problem: ProblemCancelled, outcome: Compensated,
			comps:  []CompensationResult{done("b"), done("a")},
			states: "a:succeeded b:cancelled c:succeeded d:not_started",
			log:    []string{"compensation b done", "compensation a done", "end compensated (waited)"},
		},
		{
			name: "async, after a step succeeded: the remaining steps run",
			src:  ledger, original: ledgerScript(), crashAfter: "step b succeeded", resume: true,
			script:  map[string][]reply{"c": {ok(`{"n": 1}`)}, "d": {withStatus(201, `{"id": "d1"}`)}},
			calls:   []string{"c", "d"},
			status:  200,
			outcome: Succeeded,
			states:  "a:succeeded b:succeeded c:succeeded d:succeeded",
			log:     []string{"step c succeeded", "step d succeeded", "end succeeded (waited)"},
		},
		{
			name: "async, after an intent: the step in doubt runs again with its key",
			src:  ledger, original: ledgerScript(), crashAfter: "intent b", resume: true,
			calls:   []string{"b", "c", "d"},
			status:  200,
			outcome: Succeeded,
			states:  "a:succeeded b:succeeded c:succeeded d:succeeded",
			log:     []string{"intent b (waited)", "step b succeeded", "step c succeeded", "step d succeeded", "end succeeded (waited)"},
			resent:  "b",
		},
		{
			name: "async, a parallel member in flight: only it runs again",
			src:  fork, original: forkScript(), crashAfter: "step c succeeded", resume: true,
			calls:   []string{"b", "d"},
			status:  200,
			outcome: Succeeded,
			states:  "a:succeeded b:succeeded c:succeeded d:succeeded",
			log:     []string{"intent b (waited)", "step b succeeded", "step d succeeded", "end succeeded (waited)"},
			resent:  "b",
		},
		{
			name:     "async, after a required step failed: compensated, answered as Execute would",
			src:      ledger,
			original: with(ledgerScript(), map[string][]reply{"d": {withStatus(500, "")}}), crashAfter: "step d failed", resume: true,
			calls:  []string{"b/compensate", "a/compensate"},
			status: 502, problem: ProblemStepFailed, outcome: Compensated,
			detail: `step "d" failed after 1 try: answered 500, expected 2xx`,
			comps:  []CompensationResult{done("b"), done("a")},
			states: "a:succeeded b:succeeded c:succeeded d:failed",
			log:    []string{"compensation b done", "compensation a done", "end compensated (waited)"},
		},
		{
			name: "async, past the deadline",
			src:  ledger, original: ledgerScript(), crashAfter: "step a succeeded", resume: true, restart: 11 * time.Second,
			calls:  []string{"a/compensate"},
			status: 504, problem: ProblemDeadline, outcome: Compensated,
			comps:  []CompensationResult{done("a")},
			states: "a:succeeded b:not_started c:not_started d:not_started",
			log:    []string{"compensation a done", "end compensated (waited)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			journal := newFakeJournal(t)
			_, first := run(t, tt.src, tt.original, WithJournal(journal))
			j := journal.crashAfter(tt.crashAfter)
			restart := tt.restart
			if restart == 0 {
				restart = 3 * time.Second
			}
			res, caller, log := recovered(t, tt.src, j, tt.resume, restart, tt.script)

			if res.Status != tt.status || res.Outcome != tt.outcome || !res.Recovered {
				t.Errorf("status %d, outcome %s, recovered %v; want %d, %s, true; body %s",
					res.Status, res.Outcome, res.Recovered, tt.status, tt.outcome, res.Body)
			}
			if diff := cmp.Diff(tt.calls, caller.keys(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.comps, res.Compensations, cmpopts.IgnoreFields(CompensationResult{}, "Error"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("compensations (-want +got):\n%s", diff)
			}
			if tt.compError != "" && res.Compensations[0].Error != tt.compError {
				t.Errorf("compensation error %q\n want %q", res.Compensations[0].Error, tt.compError)
			}
			if got := stepStates(res); got != tt.states {
				t.Errorf("states:\n got %s\nwant %s", got, tt.states)
			}
			if diff := cmp.Diff(tt.log, log.log()); diff != "" {
				t.Errorf("recovery's journal (-want +got):\n%s", diff)
			}
			if end := log.find("end " + string(res.Outcome)); end == nil || !end.end.Recovered || end.end.Status != res.Status {
				t.Errorf("end record %+v, want recovered with status %d", end, res.Status)
			}
			if got := res.Header.Get(HeaderFlowID); got != "f1" {
				t.Errorf("%s: %q, want f1", HeaderFlowID, got)
			}
			if !res.Started.Equal(t0) || res.Duration < restart {
				t.Errorf("started %v, duration %s; want the execution's start and its time since", res.Started, res.Duration)
			}
			if tt.problem != "" {
				var p problemDetails
				if err := json.Unmarshal(res.Body, &p); err != nil || p.Type != tt.problem {
					t.Errorf("problem %s: %v, want type %s", res.Body, err, tt.problem)
				}
				if tt.detail != "" && p.Detail != tt.detail {
					t.Errorf("detail %q\n want %q", p.Detail, tt.detail)
				}
			}
			if tt.resent != "" {
				was, again := first.callsOf(tt.resent)[0].req, caller.callsOf(tt.resent)[0].req
				w := was.Method + " " + was.Path + " " + was.Header.Get("Idempotency-Key") + " " + string(was.Body)
				g := again.Method + " " + again.Path + " " + again.Header.Get("Idempotency-Key") + " " + string(again.Body)
				if g != w || !strings.Contains(g, "f1-"+tt.resent) {
					t.Errorf("%s sent again as %q, first as %q", tt.resent, g, w)
				}
			}
		})
	}
}

// TestRecoverAnswers checks that a resumed execution reads the restored
// steps as the interrupted one would have: answers parsed from their raw
// bodies, in the compensations' requests and in the default response.
func TestRecoverAnswers(t *testing.T) {
	journal := newFakeJournal(t)
	run(t, ledger, ledgerScript(), WithJournal(journal))
	res, _, _ := recovered(t, ledger, journal.crashAfter("step b succeeded"), true, time.Second, map[string][]reply{
		"c": {ok(`{"n": 1}`)},
		"d": {withStatus(201, `{"id": "d1"}`)},
	})
	assertJSON(t, `{"a":{"id":"a1"},"b":{"id":"b1"},"c":{"n":1},"d":{"id":"d1"}}`, res.Body)

	_, caller, _ := recovered(t, ledger, journal.crashAfter("step b succeeded"), false, time.Second, nil)
	if got := caller.callsOf("a/compensate"); len(got) != 1 || got[0].req.Path != "/a/a1" || got[0].req.Header.Get("Idempotency-Key") != "f1-a-compensate" {
		t.Errorf("a's compensation: %+v, want DELETE /a/a1 with key f1-a-compensate", got)
	}
}

// TestRecoverTwice checks that a recovery interrupted in turn leaves a
// journal the next recovery finishes from: a step sent again is not sent
// a third time, a compensation done is not repeated.
func TestRecoverTwice(t *testing.T) {
	// b's compensation needs b's answer.
	src := strings.Replace(ledger, "/b/${{ flow.id }}", "/b/${{ b.body.id }}", 1)
	journal := newFakeJournal(t)
	run(t, src, ledgerScript(), WithJournal(journal))
	first := journal.crashAfter("intent b")
	// The first recovery sends b again, compensates it, then crashes
	// before compensating a.
	_, _, log1 := recovered(t, src, first, false, time.Second, map[string][]reply{"b": {withStatus(201, `{"id": "b1"}`)}})
	second := *first
	for _, e := range log1.entries {
		switch {
		case e.step != nil:
			second.Steps = append(second.Steps, e.step)
		case e.comp != nil && e.comp.Step == "b":
			second.Compensations = append(second.Compensations, e.comp)
		}
	}
	res, caller, log2 := recovered(t, src, &second, false, 2*time.Second, nil)
	if diff := cmp.Diff([]string{"a/compensate"}, caller.keys()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if res.Outcome != Compensated || len(res.Compensations) != 2 {
		t.Errorf("outcome %s, compensations %v; want compensated, b and a", res.Outcome, res.Compensations)
	}
	if diff := cmp.Diff([]string{"compensation a done", "end compensated (waited)"}, log2.log()); diff != "" {
		t.Errorf("second recovery's journal (-want +got):\n%s", diff)
	}
}
