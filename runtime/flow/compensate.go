package flow

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// endedStep is what the compensation order needs to know of a step that
// ended.
type endedStep struct {
	index int
	state stepState
	// reached reports that a try may have reached a replica.
	reached bool
	// compensable reports that the step has a compensate.
	compensable bool
}

// compensationOrder returns the indices of the steps to compensate, in the
// order their compensations run, from the steps in the order they ended.
//
// Steps cancelled in flight that may have taken effect come first, the one
// written last first: they were running when the execution stopped, after
// every step that had completed (but for completed members of their own
// parallel group, which are independent of them, so either order is
// right). The steps that succeeded, optional ones included, follow, the
// last to complete first: a step may rely on what an earlier one did (a
// charge on a reservation), so what was done last is undone first.
//
// Failed, skipped and unstarted steps did nothing to undo, nor did a
// cancelled step none of whose tries reached a replica; a step without
// compensate has nothing to run.
func compensationOrder(ended []endedStep) []int {
	var inFlight, done []int
	for _, s := range ended {
		if !s.compensable {
			continue
		}
		switch {
		case s.state == stateCancelled && s.reached:
			inFlight = append(inFlight, s.index)
		case s.state == stateSucceeded:
			done = append(done, s.index)
		}
	}
	slices.Sort(inFlight)
	slices.Reverse(inFlight)
	slices.Reverse(done)
	return append(inFlight, done...)
}

// compensate runs the compensations the execution needs, one after
// another, and returns their outcomes in the order they ran. They are not
// bounded by ctx or the flow's deadline, only by their own timeouts and
// attempts: a rollback left half done is worse than a late answer. A
// compensation a journal recorded as done before a recovery is reported
// in its turn but not run again.
func (e *execution) compensate(ctx context.Context) []CompensationResult {
	ended := make([]endedStep, len(e.ended))
	for i, idx := range e.ended {
		run := &e.runs[idx]
		ended[i] = endedStep{index: idx, state: run.state, reached: run.reached, compensable: run.plan.comp != nil}
	}
	order := compensationOrder(ended)
	if len(order) == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	out := make([]CompensationResult, 0, len(order))
	for _, idx := range order {
		run := &e.runs[idx]
		if run.compensated != nil { // done before a recovery
			out = append(out, *run.compensated)
			run.compensated = &out[len(out)-1]
			continue
		}
		out = append(out, e.compensateStep(ctx, run))
		run.compensated = &out[len(out)-1] // out does not grow past len(order)
		if e.r.journal != nil {
			e.r.journal.Compensation(e.id.flowID, run.compensated)
		}
	}
	return out
}

// compensateStep runs one step's compensation.
func (e *execution) compensateStep(ctx context.Context, run *stepRun) CompensationResult {
	p := run.plan
	res := CompensationResult{Step: p.step.ID}
	if run.inDoubt && p.comp.needsAnswer {
		if err := e.resend(ctx, run); err != nil {
			res.Outcome, res.Error = NotCompensated, err.Error()
			return res
		}
	}
	if run.state == stateCancelled && p.comp.needsAnswer {
		res.Outcome = NotCompensated
		res.Error = "cancelled in flight, so it has no answer for its compensation to refer to"
		return res
	}
	req, err := buildRequest(e.env, &p.comp.call, &e.id, p.step.ID, true)
	if err != nil {
		res.Outcome, res.Error = CompensationFailed, err.Error()
		return res
	}
	out := e.call(ctx, req, p.comp.policy, compensationDone)
	res.Tries = out.tries
	if out.resp != nil {
		res.Status = out.resp.Status
	}
	switch {
	case out.fault != faultNone:
		res.Outcome, res.Error = CompensationFailed, out.err.Error()
	case compensationDone(res.Status):
		res.Outcome = CompensationDone
	default:
		res.Outcome = CompensationFailed
		res.Error = fmt.Sprintf("answered %d, expected 2xx or 404", res.Status)
	}
	return res
}

// compensationDone reports whether a compensation's answer means the step
// is undone: a 2xx, or a 404 (nothing left to undo, as when a previous try
// did it).
func compensationDone(status int) bool {
	return status >= 200 && status < 300 || status == 404
}

// resend sends again the call of a step in doubt whose compensation needs
// its answer: the same request, with the same Idempotency-Key, so that a
// service that honours keys answers as it did the first time rather than
// acting twice. It is bounded by the step's timeout and attempts, not by
// the flow's deadline, which a recovery does not run.
//
// When the step succeeds, its outcome is journaled and its answer made
// visible to its compensation. Otherwise it returns why, and the step
// stays in doubt, in the journal too: the first call may still have taken
// effect, and a later recovery tries again.
func (e *execution) resend(ctx context.Context, run *stepRun) error {
	p := run.plan
	inDoubt := *run
	*run = stepRun{plan: p}
	pol := p.policy
	pol.bounded = false
	e.runStepWith(ctx, p, pol)
	if run.state != stateSucceeded {
		err := run.err
		if err == nil {
			err = errors.New(run.state.String())
		}
		*run = inDoubt
		return fmt.Errorf("%w, and sending it again for its answer failed: %w", errRestarted, err)
	}
	if e.r.journal != nil {
		e.r.journal.Step(e.id.flowID, run.record())
	}
	e.publish(run)
	return nil
}
