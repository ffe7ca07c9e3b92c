package flow

import (
	"context"
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
// attempts: a rollback left half done is worse than a late answer.
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
		res := e.compensateStep(ctx, run)
		run.compensated = res.Outcome
		out = append(out, res)
	}
	return out
}

// compensateStep runs one step's compensation.
func (e *execution) compensateStep(ctx context.Context, run *stepRun) CompensationResult {
	p := run.plan
	res := CompensationResult{Step: p.step.ID}
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
