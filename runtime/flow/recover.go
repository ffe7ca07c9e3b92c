package flow

import (
	"context"
	"errors"
	"slices"
)

// errRestarted is why a step in doubt has no outcome.
var errRestarted = errors.New("the gateway restarted while the step was in flight")

// Recover finishes an execution that a journal holds no end of, after the
// gateway that ran it stopped: the same flow id, so its calls carry the
// same Idempotency-Keys. j.Begin must be set. The Runner must run the flow
// j's execution ran; records of steps it does not have are ignored.
//
// The outcome of each step j records is restored, in the order recorded
// (the completion order, which compensation reverses), with the answer as
// later steps and compensations read it. A step with an intent and no
// outcome is in doubt: its call may have taken effect.
//
// With resume false (a synchronous execution, whose client is gone), it is
// compensated as an execution stopped in flight: the steps in doubt
// first, as steps cancelled in flight, then the steps that succeeded, the
// last to complete first. A compensation j records as done is not run
// again. A step in doubt whose compensation refers to its own answer is
// sent again first, the same call with the same Idempotency-Key, so that a
// service that honours keys answers as it did rather than acting twice;
// when that fails, the step is not_compensated (and stays in doubt in the
// journal). The result is what Execute answers an execution its client
// cancelled (503, ProblemCancelled).
//
// With resume true (an asynchronous execution), the steps with no outcome
// run, those in doubt again with their keys, until the flow's deadline as
// recorded, and the answer is Execute's. One that had stopped before the
// restart (a required step failed, a step was cancelled, or compensation
// had begun) runs no further step: it is compensated as above and
// answered as Execute would have answered it (the failed step's answer,
// the deadline's), or as cancelled when that cannot be told.
//
// Either way the Result reports Recovered, and the recovery's own
// progress goes to the Runner's journal as Execute's does, its end record
// marked Recovered.
func (r *Runner) Recover(ctx context.Context, j *Journaled, resume bool) *Result {
	in := &Input{}
	if j.Begin.Input != nil {
		copied := *j.Begin.Input
		in = &copied
	}
	in.ID = j.Begin.ID
	e := r.newExecution(in, j.Begin.Started)
	if !j.Begin.Deadline.IsZero() {
		e.deadline = j.Begin.Deadline.Sub(j.Begin.Started)
	}
	e.recovered = true
	e.async = j.Begin.Async
	inDoubt, stopped := e.restore(j)
	if resume && !stopped {
		return e.run(ctx)
	}
	for _, idx := range inDoubt {
		run := &e.runs[idx]
		run.state, run.reached, run.inDoubt, run.err = stateCancelled, true, true, errRestarted
		e.ended = append(e.ended, idx)
	}
	var cause error
	if resume && e.r.clock.Now().Sub(e.started) >= e.deadline {
		cause = errDeadline
	}
	end, _ := e.ending(cause)
	// A resumed execution answers as Execute would have, when it can
	// tell: a step failed, or the deadline passed.
	e.abandoned = !resume || end == endSucceeded
	return e.finish(ctx, cause)
}

// restore sets the runs of the steps j records the outcome of, in the
// order recorded, and makes them visible to expressions. It returns the
// steps in doubt, and whether the execution had stopped.
func (e *execution) restore(j *Journaled) (inDoubt []int, stopped bool) {
	byID := make(map[string]*stepPlan, len(e.r.steps))
	for _, p := range e.r.steps {
		byID[p.step.ID] = p
	}
	for _, rec := range j.Steps {
		p := byID[rec.Step]
		state, ok := parseStepState(rec.State)
		if p == nil || !ok || e.runs[p.index].state != stateNotStarted {
			continue
		}
		run := &e.runs[p.index]
		e.restoreStep(run, rec, state)
		e.ended = append(e.ended, p.index)
		e.publish(run)
		switch {
		case state == stateCancelled:
			stopped = true
		case state == stateFailed && !p.step.Optional && e.failed == nil:
			e.failed = run
			stopped = true
		}
	}
	for _, c := range j.Compensations {
		stopped = true
		if p := byID[c.Step]; p != nil && c.Outcome == CompensationDone {
			e.runs[p.index].compensated = c
		}
	}
	for _, id := range j.Intents {
		p := byID[id]
		if p == nil || e.runs[p.index].state != stateNotStarted || slices.Contains(inDoubt, p.index) {
			continue
		}
		inDoubt = append(inDoubt, p.index)
	}
	return inDoubt, stopped
}

// restoreStep sets run from its journal record, as callStep and runStep
// would have: the answer's body parsed, an optional step's fallback, the
// on_status answer its status selects.
func (e *execution) restoreStep(run *stepRun, rec *StepRecord, state stepState) {
	p := run.plan
	run.state, run.status, run.header, run.raw = state, rec.Status, rec.Header, rec.Body
	run.tries, run.reached = rec.Tries, rec.Reached
	run.started, run.took = rec.Started, rec.Duration
	if rec.Error != "" {
		run.err = errors.New(rec.Error)
	}
	if p.readBody {
		run.body = parseBody(rec.Header.Get(headerContentType), rec.Body)
	}
	if state != stateFailed {
		return
	}
	if p.step.Optional {
		// The error recorded says already if the fallback failed.
		run.body, _ = p.step.Fallback.Eval(e.env)
		return
	}
	run.answer = p.onStatus[run.status]
}

// parseStepState is the stepState of a StepRecord's State.
func parseStepState(s string) (stepState, bool) {
	switch s {
	case StepSucceeded:
		return stateSucceeded, true
	case StepFailed:
		return stateFailed, true
	case StepSkipped:
		return stateSkipped, true
	case StepCancelled:
		return stateCancelled, true
	}
	return stateNotStarted, false
}
