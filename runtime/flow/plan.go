package flow

import (
	"slices"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// stepPlan is what New prepares of a step.
type stepPlan struct {
	index    int
	step     *cellspec.Step
	group    bool
	call     callPlan
	policy   policy
	onStatus map[int]*answerPlan
	comp     *compPlan
	// visible reports that an expression names the step, so it is added
	// to the environment; readBody that its answer's body is read, by an
	// expression or the default response, so it is parsed.
	visible, readBody bool
	// effect reports that the step's call may change something: it has a
	// compensate, or its method is not a plain read.
	effect bool
}

// compPlan is what New prepares of a step's compensation.
type compPlan struct {
	call   callPlan
	policy policy
	// needsAnswer reports that the compensation's templates refer to
	// the step's own id, so it cannot be rendered for a step cancelled in
	// flight, which has no answer.
	needsAnswer bool
}

// policy is how a call is tried: how often, how long each try may take,
// and whether the execution's deadline bounds it (a compensation's is
// not).
type policy struct {
	retry   cellspec.Retry
	timeout time.Duration
	bounded bool
}

// plan prepares step s, a member of a parallel group when group is set.
func (r *Runner) plan(s *cellspec.Step, group bool) *stepPlan {
	p := &stepPlan{
		index:  len(r.steps),
		step:   s,
		group:  group,
		call:   newCallPlan(s.Call, s.Headers, s.Query, s.Body, ""),
		policy: policy{retry: s.Retry, timeout: positive(s.Timeout.D(), cellspec.DefaultStepTimeout), bounded: true},
	}
	for status, os := range s.OnStatus {
		if os == nil || os.Fail == nil {
			continue
		}
		if p.onStatus == nil {
			p.onStatus = map[int]*answerPlan{}
		}
		p.onStatus[status] = newAnswerPlan(os.Fail)
	}
	if c := s.Compensate; c != nil {
		p.comp = &compPlan{
			call:        newCallPlan(c.Call, c.Headers, c.Query, c.Body, "-compensate"),
			policy:      policy{retry: c.Retry, timeout: positive(c.Timeout.D(), cellspec.DefaultStepTimeout)},
			needsAnswer: refersTo(s.ID, c),
		}
	}
	p.effect = p.comp != nil || s.Call != nil && !isSafe(s.Call.Method)
	r.steps = append(r.steps, p)
	return p
}

// referencedNames returns every name the templates of a flow refer to.
func referencedNames(f *cellspec.Flow) map[string]bool {
	names := map[string]bool{}
	add := func(ts ...*cellspec.Template) {
		for _, t := range ts {
			for _, n := range t.Refs() {
				names[n] = true
			}
		}
	}
	addCall := func(c *cellspec.Call) {
		if c != nil {
			add(c.Path)
		}
	}
	addMap := func(m map[string]*cellspec.Template) {
		for _, t := range m {
			add(t)
		}
	}
	addAnswer := func(a *cellspec.FlowAnswer) {
		if a != nil {
			addMap(a.Headers)
			add(a.Body)
		}
	}
	var addStep func(s *cellspec.Step)
	addStep = func(s *cellspec.Step) {
		for _, m := range s.Parallel {
			addStep(m)
		}
		addCall(s.Call)
		addMap(s.Headers)
		addMap(s.Query)
		add(s.Body, s.When, s.Fallback)
		for _, os := range s.OnStatus {
			if os != nil {
				addAnswer(os.Fail)
			}
		}
		if c := s.Compensate; c != nil {
			addCall(c.Call)
			addMap(c.Headers)
			addMap(c.Query)
			add(c.Body)
		}
	}
	for _, s := range f.Steps {
		addStep(s)
	}
	addAnswer(f.Response)
	return names
}

// members returns the calls of a parallel group; a group nested in it
// starts with it, so its members are the group's.
func members(g *cellspec.Step) []*cellspec.Step {
	var out []*cellspec.Step
	for _, m := range g.Parallel {
		if m.IsGroup() {
			out = append(out, members(m)...)
		} else {
			out = append(out, m)
		}
	}
	return out
}

// refersTo reports whether any template of a compensation refers to name.
func refersTo(name string, c *cellspec.Compensate) bool {
	ts := []*cellspec.Template{c.Body}
	if c.Call != nil {
		ts = append(ts, c.Call.Path)
	}
	for _, t := range c.Headers {
		ts = append(ts, t)
	}
	for _, t := range c.Query {
		ts = append(ts, t)
	}
	for _, t := range ts {
		if slices.Contains(t.Refs(), name) {
			return true
		}
	}
	return false
}

func positive(d, fallback time.Duration) time.Duration {
	if d <= 0 {
		return fallback
	}
	return d
}
