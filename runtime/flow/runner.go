package flow

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// Runner executes one flow. It is immutable once built: everything an
// execution changes lives in that execution, so one Runner serves any
// number of concurrent executions.
type Runner struct {
	cell   string
	flow   *cellspec.Flow
	caller Caller
	clock  Clock
	// journal makes executions durable; nil when they are not.
	journal Journal
	// draw returns a value in [0, n) for the jitter of retry waits.
	draw func(n int64) int64
	// onWait, when set, sees asynchronous executions wait for a replica.
	onWait func(delta int)

	deadline time.Duration
	maxBody  int64
	// units are the flow's top-level steps in order: one call, or the
	// members of a parallel group.
	units [][]*stepPlan
	// steps are the calls, in the order written; stepPlan.index is a
	// step's position here.
	steps    []*stepPlan
	response *answerPlan
	// env says which of input, path and flow the expressions name: the
	// others are not built.
	env envNeeds
}

// An Option changes how New builds a Runner.
type Option func(*Runner)

// WithWaiting sets a hook that sees asynchronous executions start (+1) and
// stop (-1) waiting for a replica of a call's target, for a gauge of the
// executions queued while a service is down.
func WithWaiting(hook func(delta int)) Option {
	return func(r *Runner) { r.onWait = hook }
}

// WithJitter sets where the jitter of retry waits comes from: draw returns
// a value in [0, n), and must be safe for concurrent use. The default is
// math/rand/v2's Int64N; tests pass a seeded or fixed source.
func WithJitter(draw func(n int64) int64) Option {
	return func(r *Runner) { r.draw = draw }
}

// New returns the Runner of flow f of cell. Its calls go through c and its
// timers through clk (RealClock when nil). f must be loaded: its defaults
// filled in and its references checked. f must not change afterwards.
func New(cell string, f *cellspec.Flow, c Caller, clk Clock, opts ...Option) *Runner {
	r := &Runner{
		cell:     cell,
		flow:     f,
		caller:   c,
		clock:    clk,
		draw:     rand.Int64N,
		deadline: positive(f.Deadline.D(), cellspec.DefaultFlowDeadline),
		maxBody:  f.MaxBody,
	}
	if r.clock == nil {
		r.clock = RealClock{}
	}
	if r.maxBody <= 0 {
		r.maxBody = cellspec.DefaultFlowMaxBody
	}
	for _, o := range opts {
		o(r)
	}
	names := referencedNames(f)
	all := names["$env"] // an expression may read any name through $env
	r.env = envNeeds{input: all || names[envInput], path: all || names[envPath], flow: all || names[envFlow]}
	for _, s := range f.Steps {
		if !s.IsGroup() {
			r.units = append(r.units, []*stepPlan{r.plan(s, false)})
			continue
		}
		var unit []*stepPlan
		for _, m := range members(s) {
			unit = append(unit, r.plan(m, true))
		}
		if len(unit) > 0 {
			r.units = append(r.units, unit)
		}
	}
	if f.Response != nil {
		r.response = newAnswerPlan(f.Response)
	}
	for _, p := range r.steps {
		p.visible = all || names[p.step.ID]
		p.readBody = p.visible || r.response == nil
	}
	return r
}

// Cell returns the cell the flow belongs to.
func (r *Runner) Cell() string { return r.cell }

// Flow returns the flow the Runner executes.
func (r *Runner) Flow() *cellspec.Flow { return r.flow }

// Causes of an execution's context ending, besides its parent's.
var (
	errDeadline   = errors.New("the flow's deadline passed")
	errStepFailed = errors.New("a required step failed")
	// errTryTimeout ends a single try.
	errTryTimeout = errors.New("the try timed out")
)

// Execute runs the flow for one request and returns its answer and what
// happened. The steps stop when a required one fails, when the flow's
// deadline passes or when ctx ends; the compensations that follow run to
// their end whatever ctx does, each bounded by its own timeout and
// attempts, so Execute may return some time after ctx ends.
//
// With a journal (WithJournal), Execute journals the execution as it goes
// and waits only where a crash could otherwise leave an effect nobody
// knows of: before the first try of a step that has a compensate, and
// before answering when some step may have taken effect (see the package
// documentation).
func (r *Runner) Execute(ctx context.Context, in *Input) *Result {
	if in == nil {
		in = &Input{}
	}
	e := r.newExecution(in, r.clock.Now())
	if r.journal != nil {
		e.begin(in, false) // the first intent or the end waits for it
	}
	return e.run(ctx)
}

// Start begins an asynchronous execution, whose client is answered before
// it ends (202 Accepted, then the journal's record of it). It returns once
// the journal holds the execution's start, so that the client is told it
// was accepted only when a gateway that crashes would resume it, and an
// error, with nothing run, when the journal cannot hold it. Without a
// journal it returns at once: the execution is not durable.
//
// run executes the flow as Execute does, and must be called once. Its ctx
// stops the steps as Execute's does: an asynchronous execution has no
// client to go away, so it is the context of whatever owns the execution
// (a gateway), and run belongs on a goroutine of that owner. The flow's
// async_deadline, not its deadline, bounds it, from Start.
func (r *Runner) Start(in *Input) (run func(ctx context.Context) *Result, err error) {
	if in == nil {
		in = &Input{}
	}
	e := r.newExecution(in, r.clock.Now())
	e.deadline = positive(r.flow.AsyncDeadline.D(), cellspec.DefaultAsyncDeadline)
	e.async = true
	if r.journal != nil {
		if err := e.begin(in, true).Wait(); err != nil {
			e.abandonStart()
			return nil, fmt.Errorf("journal the start of execution %s of flow %s: %w", e.id.flowID, r.flow.Name, err)
		}
	}
	return e.run, nil
}

// run runs the steps until they end or the execution stops, then
// finishes it.
func (e *execution) run(ctx context.Context) *Result {
	runCtx, cancel := context.WithCancelCause(ctx)
	e.cancel = cancel
	stopDeadline := func() bool { return false }
	if left := e.deadline - e.r.clock.Now().Sub(e.started); left > 0 {
		stopDeadline = e.r.clock.AfterFunc(left, func() { cancel(errDeadline) })
	} else {
		cancel(errDeadline) // a resumed execution whose deadline passed
	}
	e.runSteps(runCtx)
	stopDeadline()
	cause := context.Cause(runCtx)
	cancel(nil)
	return e.finish(ctx, cause)
}
