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
)

// finish decides how the execution ended, compensates when it failed, and
// builds the result. cause is why the steps' context ended, nil if it did
// not.
func (e *execution) finish(ctx context.Context, cause error) *Result {
	end, culprit := e.ending(cause)
	var ans answer
	var answerErr error
	if end == endSucceeded {
		if ans, answerErr = e.successAnswer(); answerErr != nil {
			end = endAnswerFailed
		}
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

	res := &Result{
		Outcome:       outcome(end, comps),
		Status:        ans.status,
		Header:        ans.header,
		Body:          ans.body,
		TimedOut:      end == endDeadline || (end == endStepFailed && errors.Is(cause, errDeadline)),
		Compensations: comps,
		Started:       e.started,
		Steps:         make([]StepResult, len(e.runs)),
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
		ID:          run.plan.step.ID,
		State:       run.state.String(),
		Status:      run.status,
		Tries:       run.tries,
		Duration:    run.duration(),
		Compensated: run.compensated,
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
