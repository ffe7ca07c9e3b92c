package journal

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orchestro/orchestro/runtime/flow"
)

// State is where an execution stands, as the executions API reports it.
type State string

// States of an execution.
const (
	// Running: begun, not ended, and no compensation recorded.
	Running State = "running"
	// Compensating: not ended, and some compensation recorded.
	Compensating State = "compensating"
	// The others are the outcome the execution ended with.
	Succeeded            State = State(flow.Succeeded)
	Failed               State = State(flow.Failed)
	Compensated          State = State(flow.Compensated)
	PartiallyCompensated State = State(flow.Partial)
)

// StepInFlight is the state of a step whose call was about to be sent
// (an intent is recorded) and whose outcome is not.
const StepInFlight = "in_flight"

// stateOf is the state of an execution from what its journal holds: its
// End's outcome when it ended, else whether any compensation is recorded.
func stateOf(ended bool, outcome flow.Outcome, compensating bool) State {
	switch {
	case ended:
		return State(outcome)
	case compensating:
		return Compensating
	default:
		return Running
	}
}

// Duration is a time.Duration that JSON renders as a number of
// milliseconds, as flow expressions see a step's duration_ms.
type Duration time.Duration

// MarshalJSON renders d in milliseconds, with as many decimals as it
// needs.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', -1, 64), nil
}

// UnmarshalJSON reads a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration in milliseconds: %w", err)
	}
	*d = Duration(math.Round(ms * float64(time.Millisecond)))
	return nil
}

// Execution is the whole timeline of one execution, as
// GET /_orchestro/executions/<id> serves it. Fields with the "-" tag are
// for the gateway and the CLI (recovery, retry, flows show), not for the
// API.
type Execution struct {
	ID       string    `json:"id"`
	Flow     string    `json:"flow"`
	State    State     `json:"state"`
	Async    bool      `json:"async,omitempty"`
	Started  time.Time `json:"started"`
	Deadline time.Time `json:"deadline,omitzero"`
	// Finished and the fields after it up to Recovered are the End's; they
	// are zero while the execution runs.
	Finished   time.Time    `json:"finished,omitzero"`
	Duration   Duration     `json:"duration_ms,omitzero"`
	Outcome    flow.Outcome `json:"outcome,omitempty"`
	FailedStep string       `json:"failed_step,omitempty"`
	TimedOut   bool         `json:"timed_out,omitempty"`
	Recovered  bool         `json:"recovered,omitempty"`
	// Steps are the recorded outcomes in the order they were recorded (the
	// steps' completion order), then the steps in flight in the order
	// their intents were recorded.
	Steps []Step `json:"steps"`
	// Compensations are in the order they ran.
	Compensations []flow.CompensationResult `json:"compensations"`
	// Response is the answer, once the execution ended.
	Response *Response `json:"response,omitempty"`
	// Input is the client's request.
	Input *flow.Input `json:"-"`
}

// Step is one step of an execution's timeline.
type Step struct {
	ID string `json:"id"`
	// State is one of flow's step states (flow.StepSucceeded, …) or
	// StepInFlight.
	State    string    `json:"state"`
	Status   int       `json:"status,omitempty"`
	Tries    int       `json:"tries,omitempty"`
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Duration Duration  `json:"duration_ms,omitzero"`
	// Reached reports that a try may have reached a replica.
	Reached bool `json:"reached,omitempty"`
	// Compensated is the outcome of the step's compensation, "" when none
	// is recorded.
	Compensated string `json:"compensated,omitempty"`
	// Header and Body are the step's answer. The API leaves them out: they
	// can be large and hold what the flow keeps from its client.
	Header http.Header `json:"-"`
	Body   []byte      `json:"-"`
}

// Response is an execution's answer.
type Response struct {
	Status  int         `json:"status"`
	Headers http.Header `json:"headers,omitempty"`
	// Body is the answer's body as JSON when it is JSON (by its
	// Content-Type), else as a JSON string; absent when empty.
	Body json.RawMessage `json:"body,omitempty"`
}

// Summary is one line of an execution list.
type Summary struct {
	ID         string       `json:"id"`
	Flow       string       `json:"flow"`
	State      State        `json:"state"`
	Outcome    flow.Outcome `json:"outcome,omitempty"`
	Started    time.Time    `json:"started"`
	Duration   Duration     `json:"duration_ms,omitzero"`
	FailedStep string       `json:"failed_step,omitempty"`
	Recovered  bool         `json:"recovered,omitempty"`
	Async      bool         `json:"async,omitempty"`
}

// Filter selects executions for List.
type Filter struct {
	// Flow keeps the executions of one flow; "" keeps all.
	Flow string
	// Failed keeps the executions that ended with an outcome other than
	// succeeded. Executions that have not ended have no outcome yet, so it
	// leaves them out.
	Failed bool
	// Since keeps the executions started at or after it.
	Since time.Time
	// Limit bounds how many are returned; 0 or less means no bound.
	Limit int
}

// keep reports whether f keeps s.
func (f *Filter) keep(s *Summary) bool {
	if f.Flow != "" && s.Flow != f.Flow {
		return false
	}
	if f.Failed && (s.Outcome == "" || s.Outcome == flow.Succeeded) {
		return false
	}
	return !s.Started.Before(f.Since)
}

// responseOf is the API view of an End record.
func responseOf(end *flow.EndRecord) *Response {
	return &Response{Status: end.Status, Headers: end.Header, Body: apiBody(end.Header, end.Body)}
}

// apiBody renders a body for the API: as is when its Content-Type is JSON
// and it is valid JSON, else as a JSON string. A JSON-looking body of
// another type stays a string, since that is what the client received.
// Bytes that are not UTF-8 become U+FFFD.
func apiBody(h http.Header, body []byte) json.RawMessage {
	if len(body) == 0 {
		return nil
	}
	if isJSONType(h.Get("Content-Type")) && json.Valid(body) {
		return body
	}
	s, _ := json.Marshal(string(body)) // a string always encodes
	return s
}

// isJSONType reports whether a Content-Type is application/json or a
// +json type.
func isJSONType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
