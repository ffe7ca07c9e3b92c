package cellspec

import (
	"fmt"
	"regexp"

	"github.com/expr-lang/expr"
)

// Which names a flow's expressions may use. Every expression sees input,
// path and flow. A step's request (call, headers, query, body), its when
// and its fallback see the steps that end before it starts: those of the
// earlier entries of steps, never itself nor a member of its own parallel
// group. Its compensate sees those and the step itself. The flow's
// response and the answers of on_status see every step, since by then each
// step has run, failed, been skipped or not been started (its ok is then
// false and its body null).

// flowNames are the names every expression of a flow sees besides the
// step ids: the client's request, the captured path segments and the
// execution.
var flowNames = []string{"input", "path", "flow"}

// exprScope says where an expression of a flow sits.
type exprScope struct {
	// step is the step the expression belongs to; nil for the answers
	// (response, on_status fail), which see every step.
	step *Step
	// self lets the expression use step's own answer: true in its
	// compensate.
	self bool
}

// stepPlace is where a step runs: the index of its entry in steps (the
// members of a group share their group's), whether it is a member, and
// its key path in the flow ("steps[1].parallel[0]").
type stepPlace struct {
	step   *Step
	stage  int
	member bool
	path   string
}

// places lists the flow's steps in the order written, members of groups
// included, groups themselves not.
func (f *Flow) places() []stepPlace {
	var out []stepPlace
	for i, s := range f.Steps {
		p := fmt.Sprintf("steps[%d]", i)
		if s.IsGroup() {
			for j, m := range s.Parallel {
				out = append(out, stepPlace{step: m, stage: i, member: true, path: fmt.Sprintf("%s.parallel[%d]", p, j)})
			}
			continue
		}
		out = append(out, stepPlace{step: s, stage: i, path: p})
	}
	return out
}

// eachStep calls fn for every step of the flow written at path, groups
// left out and their members included, with the step's key path.
func (f *Flow) eachStep(path string, fn func(path string, s *Step)) {
	for _, p := range f.places() {
		fn(path+"."+p.path, p.step)
	}
}

// scope returns the names visible at sc, and for a step id that is not
// visible there, the reason.
func (f *Flow) scope(sc exprScope) *Scope {
	places := f.places()
	here := stepPlace{stage: len(f.Steps)}
	for _, p := range places {
		if p.step == sc.step {
			here = p
		}
	}
	visible := func(p stepPlace) bool {
		switch {
		case sc.step == nil:
			return true
		case p.step == sc.step:
			return sc.self
		}
		return p.stage < here.stage
	}
	names := append([]string{}, flowNames...)
	for _, p := range places {
		if id := p.step.ID; id != "" && visible(p) && !contains(names, id) {
			names = append(names, id)
		}
	}
	return &Scope{Names: names, Known: func(name string) string {
		for _, p := range places {
			if p.step.ID != name {
				continue
			}
			switch {
			case p.step == sc.step:
				return fmt.Sprintf("step %q cannot use its own answer here; only its compensate can", name)
			case p.stage == here.stage:
				return fmt.Sprintf("step %q runs in the same parallel group as %q", name, sc.step.ID)
			default:
				return fmt.Sprintf("step %q runs after %q", name, sc.step.ID)
			}
		}
		return ""
	}}
}

// exprNamePattern is what a step id or a route capture must look like
// to be a name in expressions: '-' would read as a subtraction.
var exprNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// exprWord reports whether name, although it has the shape of a name, is
// a word of the expression language (an operator such as in, a builtin
// such as len), so that <name>.body does not read a variable.
func exprWord(name string) bool {
	_, err := expr.Compile(name+".body", expr.AllowUndefinedVariables())
	return err != nil
}
