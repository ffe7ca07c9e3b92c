package flow

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// stepState is where a step is in an execution.
type stepState uint8

const (
	stateNotStarted stepState = iota
	stateSucceeded
	stateFailed
	stateSkipped
	stateCancelled
)

func (s stepState) String() string {
	switch s {
	case stateSucceeded:
		return StepSucceeded
	case stateFailed:
		return StepFailed
	case stateSkipped:
		return StepSkipped
	case stateCancelled:
		return StepCancelled
	}
	return StepNotStarted
}

// stepRun is what happened to one step of an execution.
type stepRun struct {
	plan  *stepPlan
	state stepState
	// reached reports that a try may have reached a replica: a step
	// cancelled in flight may have taken effect.
	reached bool
	// inDoubt reports, in a recovered execution, a step whose call was
	// about to be sent when the gateway stopped and whose outcome is
	// unknown: it may have taken effect.
	inDoubt bool
	status  int
	header  http.Header
	// body is the answer's parsed body, or an optional step's fallback.
	body any
	// raw is the answer's body as it came, kept for the journal only.
	raw   []byte
	tries int
	// err says why the step failed or was cancelled.
	err     error
	started time.Time
	// took is how long the step ran, once it ended.
	took time.Duration
	// answer is the on_status fail answer the step's status selected.
	answer *answerPlan
	// compensated is the outcome of the step's compensation, nil until
	// it runs. A recovery sets it to the compensation its journal
	// records as done, which is not run again.
	compensated *CompensationResult
}

func (run *stepRun) fail(err error) {
	run.state, run.err = stateFailed, err
}

func (run *stepRun) duration() time.Duration { return run.took }

// execution is the state of one execution.
type execution struct {
	r       *Runner
	id      callIdentity
	env     map[string]any
	started time.Time
	// deadline is how long after started the steps may run: the flow's
	// deadline when the execution started.
	deadline time.Duration
	// async marks an execution whose client was answered at once: a
	// call that finds no replica to take it waits for one (see call)
	// rather than spending its tries.
	async bool
	// cancel stops the steps: a required step failed, or the deadline
	// passed.
	cancel context.CancelCauseFunc
	// runs holds each step's run; a step's goroutine owns it until the
	// step ends.
	runs []stepRun

	// mu guards ended and failed, which the members of a parallel group
	// write as each ends.
	mu sync.Mutex
	// ended lists the indices of the steps in the order they ended.
	ended []int
	// failed is the required step that failed the execution.
	failed *stepRun

	// recovered reports an execution rebuilt from its journal
	// (Runner.Recover): it runs only the steps the journal holds no
	// outcome of. abandoned reports one that is compensated and answered
	// as cancelled instead, its client being gone.
	recovered, abandoned bool
}

// newExecution returns the state of an execution of in that started at
// started.
func (r *Runner) newExecution(in *Input, started time.Time) *execution {
	id := in.ID
	if id == "" {
		id = NewExecutionID()
	}
	e := &execution{
		r: r,
		id: callIdentity{
			flowName:  r.flow.Name,
			flowID:    id,
			requestID: in.RequestID,
			trace:     newTraceContext(in.Traceparent),
			maxBody:   r.maxBody,
		},
		started:  started,
		deadline: r.deadline,
		runs:     make([]stepRun, len(r.steps)),
		ended:    make([]int, 0, len(r.steps)),
	}
	e.env = newEnv(in, id, r.flow.Name, started, len(r.steps), r.env)
	for i, p := range r.steps {
		e.runs[i].plan = p
	}
	return e
}

// NewExecutionID returns a new execution id: 32 random hex digits. The
// engine gives one to an execution whose input has none, so that its
// Idempotency-Keys are still its own; a gateway takes one before it
// starts an execution, to name it in its answer.
func NewExecutionID() string {
	var b [32]byte
	putHex(b[:16], rand.Uint64())
	putHex(b[16:], rand.Uint64())
	return string(b[:])
}

// runSteps runs the steps in order until they are all done or the
// execution stops.
func (e *execution) runSteps(ctx context.Context) {
	for _, unit := range e.r.units {
		if ctx.Err() != nil {
			return
		}
		if e.recovered {
			if unit = e.unended(unit); len(unit) == 0 {
				continue
			}
		}
		if len(unit) == 1 && !unit[0].group {
			run := e.runStep(ctx, unit[0])
			e.stepEnded(run)
			e.publish(run)
			continue
		}
		e.runGroup(ctx, unit)
	}
}

// runGroup starts the members of a parallel group together and waits for
// all of them. A required member failing stops the execution at once,
// which cancels its siblings in flight. The first member runs on the
// calling goroutine: one goroutine fewer to start and wake.
func (e *execution) runGroup(ctx context.Context, unit []*stepPlan) {
	var wg sync.WaitGroup
	for _, p := range unit[1:] {
		wg.Go(func() { e.stepEnded(e.runStep(ctx, p)) })
	}
	e.stepEnded(e.runStep(ctx, unit[0]))
	wg.Wait()
	// Members read the environment while they run, so it is written
	// only once none is running.
	for _, p := range unit {
		e.publish(&e.runs[p.index])
	}
}

// unended returns the members of unit that have not ended: a resumed
// execution runs only those.
func (e *execution) unended(unit []*stepPlan) []*stepPlan {
	var out []*stepPlan
	for _, p := range unit {
		if e.runs[p.index].state == stateNotStarted {
			out = append(out, p)
		}
	}
	return out
}

// stepEnded records that a step ended: its place in the completion order,
// and whether it fails the execution. The members of a parallel group
// call it as each ends. Its journal record is queued under the same lock,
// so the journal's order of steps is the completion order.
func (e *execution) stepEnded(run *stepRun) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ended = append(e.ended, run.plan.index)
	if e.r.journal != nil {
		e.r.journal.Step(e.id.flowID, run.record())
	}
	if run.state == stateFailed && !run.plan.step.Optional && e.failed == nil {
		e.failed = run
		e.cancel(errStepFailed)
	}
}

// publish makes a step that ended visible to expressions by its id, if
// any names it.
func (e *execution) publish(run *stepRun) {
	if run.plan.visible {
		e.env[run.plan.step.ID] = stepEnv(run)
	}
}

// runStep runs one step: its when, then its tries.
func (e *execution) runStep(ctx context.Context, p *stepPlan) *stepRun {
	return e.runStepWith(ctx, p, p.policy)
}

// runStepWith runs one step with pol as its retry and timeout.
func (e *execution) runStepWith(ctx context.Context, p *stepPlan, pol policy) *stepRun {
	run := &e.runs[p.index]
	run.started = e.r.clock.Now()
	e.callStep(ctx, p, run, pol)
	if run.state == stateFailed && p.step.Optional {
		// The fallback replaces whatever the failed answer said, so
		// later steps see one shape of body or the other.
		v, err := p.step.Fallback.Eval(e.env)
		if err != nil {
			run.err = fmt.Errorf("%w; fallback: %w", run.err, err)
		}
		run.body = v
	}
	run.took = e.r.clock.Now().Sub(run.started)
	return run
}

func (e *execution) callStep(ctx context.Context, p *stepPlan, run *stepRun, pol policy) {
	s := p.step
	if s.When != nil {
		ok, err := evalWhen(s.When, e.env)
		if err != nil {
			run.fail(fmt.Errorf("when: %w", err))
			return
		}
		if !ok {
			run.state = stateSkipped
			return
		}
	}
	req, err := buildRequest(e.env, &p.call, &e.id, s.ID, false)
	if err != nil {
		run.fail(err)
		return
	}
	if p.comp != nil && e.r.journal != nil {
		// Once sent, the call may take effect: a recovery must know to
		// compensate it even if its outcome is never recorded.
		if err := e.r.journal.Intent(e.id.flowID, s.ID).Wait(); err != nil {
			run.fail(fmt.Errorf("journal the intent to send it: %w", err))
			return
		}
	}
	out := e.call(ctx, req, pol, s.Expects)
	run.tries, run.reached = out.tries, out.reached
	if out.resp != nil {
		run.status = out.resp.Status
	}
	switch {
	case out.fault == faultStopped:
		run.state, run.err = stateCancelled, fmt.Errorf("cancelled: %w", out.err)
	case out.fault != faultNone:
		run.fail(out.err)
	default:
		run.header = out.resp.Header
		if e.r.journal != nil {
			run.raw = out.resp.Body
		}
		if p.readBody {
			run.body = parseBody(out.resp.Header.Get(headerContentType), out.resp.Body)
		}
		if a := p.onStatus[run.status]; a != nil && !s.Optional {
			run.fail(fmt.Errorf("answered %d, which on_status fails", run.status))
			run.answer = a
		} else if s.Expects(run.status) {
			run.state = stateSucceeded
		} else {
			run.fail(fmt.Errorf("answered %d, expected %s", run.status, expectedText(s.Expect)))
		}
	}
}

// evalWhen evaluates a step's when: true runs the step, false or null
// skips it; any other value is an error rather than a guess.
func evalWhen(t *cellspec.Template, env map[string]any) (bool, error) {
	v, err := t.Eval(env)
	if err != nil {
		return false, err
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case nil:
		return false, nil
	}
	return false, fmt.Errorf("is %s, want true or false", cellspec.Text(v))
}

// expectedText describes the statuses a step expects.
func expectedText(expect []int) string {
	switch len(expect) {
	case 0:
		return "2xx"
	case 1:
		return fmt.Sprint(expect[0])
	}
	return fmt.Sprintf("one of %v", expect)
}
