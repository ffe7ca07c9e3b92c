package flow

import (
	"context"
	"errors"
)

// ending is why an execution ended.
type ending uint8

const (
	endSucceeded ending = iota
	// endStepFailed: a required step failed.
	endStepFailed
	endDeadline
	// endCancelled: the execution's context ended.
	endCancelled
	// endAnswerFailed: the answer could not be rendered.
	endAnswerFailed
	// endJournalFailed: every step succeeded but the journal could not
	// hold the execution's end.
	endJournalFailed
)

// finish decides how the execution ended, compensates when it failed, and
// builds the result. cause is why the steps' context ended, nil if it did
// not.
//
// With a journal, the end is journaled, and waited for when some step may
// have taken effect (see mayHaveTakenEffect). A success whose end the
// journal cannot hold is not answered as one: a recovery after a crash
// would compensate it, so it is compensated now and answered as failed.
func (e *execution) finish(ctx context.Context, cause error) *Result {
	end, culprit := e.ending(cause)
	if e.abandoned {
		// Its client is gone: whatever its steps did, it is answered
		// (to its journal) as one the client cancelled.
		end = endCancelled
	}
	var ans answer
	var answerErr error
	if end == endSucceeded {
		if ans, answerErr = e.successAnswer(); answerErr != nil {
			end = endAnswerFailed
		}
	}
	if end == endSucceeded && e.r.journal != nil && e.mayHaveTakenEffect() {
		res := e.result(end, cause, culprit, ans, nil)
		err := e.end(res)
		if err == nil {
			return res
		}
		end, ans, answerErr = endJournalFailed, answer{}, err
	}
	var comps []CompensationResult
	if end != endSucceeded {
		comps = e.compensate(ctx)
		if end == endStepFailed && culprit.answer != nil {
			// The answer as declared (with the step's status if it
			// declares none); the failing step's result is in the
			// environment by its id.
			if ans, answerErr = culprit.answer.render(e.env, culprit.status); answerErr != nil {
				end = endAnswerFailed
			}
		}
		if ans.status == 0 {
			ans = e.problem(end, culprit, answerErr, comps)
		}
	}
	res := e.result(end, cause, culprit, ans, comps)
	if e.r.journal != nil {
		// A failure is answered even when the journal cannot hold it:
		// a recovery would only compensate it again, which compensations
		// allow (their Idempotency-Keys, and a 404 counting as done).
		_ = e.end(res)
	}
	return res
}

// result builds the Result of an execution that ended with end on step
// culprit (nil when none), answering ans after running comps.
func (e *execution) result(end ending, cause error, culprit *stepRun, ans answer, comps []CompensationResult) *Result {
	res := &Result{
		Outcome:       outcome(end, comps),
		Status:        ans.status,
		Header:        ans.header,
		Body:          ans.body,
		TimedOut:      end == endDeadline || (end == endStepFailed && errors.Is(cause, errDeadline)),
		Compensations: comps,
		Started:       e.started,
		Steps:         make([]StepResult, len(e.runs)),
		Recovered:     e.recovered,
	}
	if culprit != nil {
		res.FailedStep = culprit.plan.step.ID
	}
	res.Header.Set(HeaderFlowID, e.id.flowID)
	switch res.Outcome {
	case Compensated:
		res.Header.Set(HeaderCompensated, "true")
	case Partial:
		res.Header.Set(HeaderCompensated, "partial")
	}
	for i := range e.runs {
		res.Steps[i] = e.runs[i].result()
	}
	res.Duration = e.r.clock.Now().Sub(e.started)
	return res
}

// result reports the step's run.
func (run *stepRun) result() StepResult {
	sr := StepResult{
		ID:       run.plan.step.ID,
		State:    run.state.String(),
		Status:   run.status,
		Tries:    run.tries,
		Duration: run.duration(),
	}
	if run.compensated != nil {
		sr.Compensated = run.compensated.Outcome
	}
	if run.err != nil {
		sr.Error = run.err.Error()
	}
	return sr
}

// ending returns why the execution ended and the step it ended on: the
// required step that failed, or the first step (as written) cut short by
// the deadline or by ctx. Steps that all ended succeed even when the
// deadline passed right after the last one.
func (e *execution) ending(cause error) (ending, *stepRun) {
	if e.failed != nil {
		return endStepFailed, e.failed
	}
	for i := range e.runs {
		run := &e.runs[i]
		if run.state != stateCancelled && run.state != stateNotStarted {
			continue
		}
		if errors.Is(cause, errDeadline) {
			return endDeadline, run
		}
		return endCancelled, run
	}
	return endSucceeded, nil
}

// outcome is the Outcome of an execution that ended with end and ran
// comps.
func outcome(end ending, comps []CompensationResult) Outcome {
	if end == endSucceeded {
		return Succeeded
	}
	if len(comps) == 0 {
		return Failed
	}
	for _, c := range comps {
		if c.Outcome != CompensationDone {
			return Partial
		}
	}
	return Compensated
}
