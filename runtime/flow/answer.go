package flow

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/orchestro/orchestro/cellspec"
)

// Header fields of every execution's answer.
const (
	// HeaderFlowID carries the execution's id.
	HeaderFlowID = "X-Orchestro-Flow-Id"
	// HeaderCompensated is "true" when compensation ran and every
	// compensation is done, "partial" when some is not; it is absent when
	// nothing needed compensating.
	HeaderCompensated = "X-Orchestro-Compensated"
)

// Problem types (RFC 9457) of a failed execution's answer, when no
// on_status fail answer applies. They are stable: clients may branch on
// them.
const (
	// ProblemStepFailed (502): a required step failed.
	ProblemStepFailed = "urn:orchestro:problem:flow-step-failed"
	// ProblemDeadline (504): the flow's deadline passed.
	ProblemDeadline = "urn:orchestro:problem:flow-deadline"
	// ProblemCancelled (503): the execution was cancelled, because its
	// client went away or the gateway is shutting down.
	ProblemCancelled = "urn:orchestro:problem:flow-cancelled"
	// ProblemAnswer (502): every step succeeded but the flow's response,
	// or a step's on_status fail answer, could not be rendered.
	ProblemAnswer = "urn:orchestro:problem:flow-answer"
	// ProblemJournal (503): every step succeeded but the gateway could
	// not journal the execution's end, so it compensated the steps rather
	// than answer a success a recovery might undo.
	ProblemJournal = "urn:orchestro:problem:flow-journal"
)

const contentTypeProblem = "application/problem+json"

// answerPlan is what New prepares of a flow's answer: its response, or an
// on_status fail answer.
type answerPlan struct {
	status  int
	headers []namedTemplate
	body    *cellspec.Template
	literal *encodedBody
}

func newAnswerPlan(a *cellspec.FlowAnswer) *answerPlan {
	p := &answerPlan{status: a.Status, headers: sortedTemplates(a.Headers, true), body: a.Body}
	if a.Body != nil && a.Body.IsLiteral() {
		if b, err := encodeBody(a.Body.Raw()); err == nil {
			p.literal = &b
		}
	}
	return p
}

// answer is what an execution sends its client.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// render renders the answer with env; status is its status when it
// declares none.
func (a *answerPlan) render(env map[string]any, status int) (answer, error) {
	h := newHeader(len(a.headers) + 3)
	if err := h.render(env, a.headers); err != nil {
		return answer{}, err
	}
	body, err := renderBody(env, a.body, a.literal)
	if err != nil {
		return answer{}, fmt.Errorf("body: %w", err)
	}
	if body.data != nil {
		h.setDefault(headerContentType, body.contentType)
	}
	if a.status > 0 {
		status = a.status
	}
	return answer{status: status, header: h.h, body: body.data}, nil
}

// successAnswer renders the flow's response; without one, it answers 200
// with an object of every step's body by id (null for a skipped step).
func (e *execution) successAnswer() (answer, error) {
	if e.r.response != nil {
		return e.r.response.render(e.env, http.StatusOK)
	}
	bodies := make(map[string]any, len(e.runs))
	for i := range e.runs {
		bodies[e.runs[i].plan.step.ID] = e.runs[i].body
	}
	b, err := json.Marshal(bodies)
	if err != nil {
		return answer{}, fmt.Errorf("body: %w", err)
	}
	return answer{status: http.StatusOK, header: http.Header{headerContentType: {contentTypeJSON}}, body: b}, nil
}

// problemDetails is the body of a failed execution's answer (RFC 9457)
// with the flow's extension members. Every member is always present, so
// clients read one shape.
type problemDetails struct {
	Type          string                `json:"type"`
	Title         string                `json:"title"`
	Status        int                   `json:"status"`
	Detail        string                `json:"detail"`
	Flow          string                `json:"flow"`
	FlowID        string                `json:"flow_id"`
	Step          string                `json:"step"`
	StepStatus    int                   `json:"step_status"`
	Compensations []problemCompensation `json:"compensations"`
}

type problemCompensation struct {
	Step    string `json:"step"`
	Outcome string `json:"outcome"`
}

// problem builds the problem answer of an execution that ended with end
// on step culprit (nil when none), answerErr being why the answer could
// not be rendered.
func (e *execution) problem(end ending, culprit *stepRun, answerErr error, comps []CompensationResult) answer {
	p := problemDetails{
		Flow:          e.id.flowName,
		FlowID:        e.id.flowID,
		Compensations: make([]problemCompensation, len(comps)),
	}
	for i, c := range comps {
		p.Compensations[i] = problemCompensation{Step: c.Step, Outcome: c.Outcome}
	}
	if culprit != nil {
		p.Step, p.StepStatus = culprit.plan.step.ID, culprit.status
	}
	switch end {
	case endStepFailed:
		p.Type, p.Title, p.Status = ProblemStepFailed, "Flow step failed", http.StatusBadGateway
		p.Detail = stepFailure(culprit)
	case endDeadline:
		p.Type, p.Title, p.Status = ProblemDeadline, "Flow deadline exceeded", http.StatusGatewayTimeout
		p.Detail = fmt.Sprintf("the flow's deadline of %s passed %s", e.r.deadline, during(culprit))
	case endCancelled:
		p.Type, p.Title, p.Status = ProblemCancelled, "Flow execution cancelled", http.StatusServiceUnavailable
		p.Detail = "the execution was cancelled " + during(culprit)
		if e.abandoned {
			p.Detail = "the execution was cancelled: its gateway restarted " + during(culprit) + ", and its client is gone"
		}
	case endJournalFailed:
		p.Type, p.Title, p.Status = ProblemJournal, "Flow journal failed", http.StatusServiceUnavailable
		p.Detail = fmt.Sprintf("every step succeeded but the execution's end could not be journaled, so its steps were compensated: %v", answerErr)
	default:
		p.Type, p.Title, p.Status = ProblemAnswer, "Flow answer failed", http.StatusBadGateway
		p.Detail = fmt.Sprintf("the answer could not be rendered: %v", answerErr)
		if culprit != nil {
			p.Detail = fmt.Sprintf("%s; the answer declared for it could not be rendered: %v", stepFailure(culprit), answerErr)
		}
	}
	b, _ := json.Marshal(p) // strings and ints only: it cannot fail
	return answer{status: p.Status, header: http.Header{headerContentType: {contentTypeProblem}}, body: b}
}

// during says where an execution that stopped was: in which step.
func during(run *stepRun) string {
	switch {
	case run == nil:
		return "after its last step ended"
	case run.state == stateFailed:
		return fmt.Sprintf("after step %q failed", run.plan.step.ID)
	case run.state == stateNotStarted:
		return fmt.Sprintf("before step %q started", run.plan.step.ID)
	}
	return fmt.Sprintf("while step %q ran", run.plan.step.ID)
}

// stepFailure describes why a step failed, for the problem's detail.
func stepFailure(run *stepRun) string {
	switch run.tries {
	case 0:
		return fmt.Sprintf("step %q failed: %v", run.plan.step.ID, run.err)
	case 1:
		return fmt.Sprintf("step %q failed after 1 try: %v", run.plan.step.ID, run.err)
	}
	return fmt.Sprintf("step %q failed after %d tries: %v", run.plan.step.ID, run.tries, run.err)
}
