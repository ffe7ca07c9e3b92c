package flow

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Caller makes one try of a step's call (or a compensation's). The
// gateway's caller sends it through its own balancing, passive health and
// records: a failed dial moves to another replica within the try, as for
// any request, but the try is never retried on its own; the engine decides
// retries.
//
// Call returns the answer with its body read whole, up to req.MaxBody
// bytes. On failure it returns an error that wraps ErrConnect when the
// request never reached a replica, ErrBodyTooLarge when the answer's body
// is over MaxBody, and anything else when the request may have reached
// it. It returns when ctx ends, with ctx's error wrapped.
//
// The tries of a call may share one Request, and Call may be called from
// several goroutines at once (the members of a parallel group): Call must
// not modify req.
type Caller interface {
	Call(ctx context.Context, req *Request) (*Response, error)
}

// Request is one call a flow makes.
type Request struct {
	Flow string
	Step string
	// Compensation is true for a compensation's call.
	Compensation bool
	Method       string
	// Target is a service of the cell, or "cell:<name>" for a cell in
	// uses.
	Target string
	// Path is the path and, when there is one, "?query", encoded.
	Path   string
	Header http.Header
	Body   []byte
	// MaxBody bounds the answer's body.
	MaxBody int64
}

// Response is a call's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Errors a Caller wraps.
var (
	// ErrConnect means the request never reached a replica: no replica
	// was available or none could be connected to.
	ErrConnect = errors.New("no connection")
	// ErrBodyTooLarge means the answer's body is over the flow's
	// max_body.
	ErrBodyTooLarge = errors.New("answer body over the flow's max_body")
)

// Clock is the time an execution runs on; tests drive a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d and returns a
	// function that stops it (reporting whether it did so before f ran).
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Input is the client's request that started an execution.
//
// It is part of a journal's BeginRecord, hence its JSON names.
type Input struct {
	// ID is the execution's id (flow.id, X-Orchestro-Flow-Id).
	ID     string              `json:"id"`
	Method string              `json:"method"`
	Path   string              `json:"path"`
	Query  map[string][]string `json:"query,omitempty"`
	// Header holds the client's header fields; expressions see them with
	// lower-case names.
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
	// Captures are the route's {name} segments.
	Captures map[string]string `json:"captures,omitempty"`
	// RequestID and Traceparent are passed on to every call
	// (X-Request-ID, and a child span of traceparent).
	RequestID   string `json:"request_id,omitempty"`
	Traceparent string `json:"traceparent,omitempty"`
}

// Outcome is how an execution ended.
type Outcome string

// Outcomes, as the metrics label them.
const (
	Succeeded Outcome = "succeeded"
	// Failed: a required step failed and nothing needed compensating.
	Failed Outcome = "failed"
	// Compensated: a required step failed and every completed step was
	// compensated.
	Compensated Outcome = "compensated"
	// Partial: a required step failed and some compensation failed (or
	// could not be rendered).
	Partial Outcome = "partially_compensated"
)

// Result is an execution's answer and what happened on the way.
type Result struct {
	Outcome Outcome
	Status  int
	Header  http.Header
	Body    []byte
	// TimedOut reports that the deadline passed.
	TimedOut bool
	// Recovered reports an execution finished by Runner.Recover after a
	// gateway restart rather than by the Execute or Start that began it.
	Recovered bool
	// FailedStep is the id of the step that failed the execution or,
	// when the deadline passed or ctx ended, of the first step (as
	// written) that it cut short or kept from starting.
	FailedStep string
	Steps      []StepResult
	// Compensations are in the order they ran.
	Compensations []CompensationResult
	Started       time.Time
	Duration      time.Duration
}

// States of a step, as StepResult.State reports them.
const (
	StepSucceeded = "succeeded"
	// StepFailed: the step did not succeed after its tries (an optional
	// one too: its fallback became its body).
	StepFailed = "failed"
	// StepSkipped: its when was false.
	StepSkipped = "skipped"
	// StepCancelled: the execution stopped while the step was running.
	StepCancelled = "cancelled"
	// StepNotStarted: the execution stopped before the step's turn.
	StepNotStarted = "not_started"
)

// StepResult is one step's outcome.
type StepResult struct {
	ID string
	// State is StepSucceeded, StepFailed, StepSkipped, StepCancelled or
	// StepNotStarted.
	State    string
	Status   int
	Tries    int
	Error    string
	Duration time.Duration
	// Compensated is the outcome of its compensation, "" when none ran.
	Compensated string
}

// Outcomes of a compensation, as CompensationResult.Outcome and
// StepResult.Compensated report them.
const (
	// CompensationDone: the compensation answered 2xx or 404.
	CompensationDone = "done"
	// CompensationFailed: it did not, after its tries, or its request
	// could not be rendered.
	CompensationFailed = "failed"
	// NotCompensated: the step was cancelled in flight, so it has no
	// answer, and its compensation refers to that answer.
	NotCompensated = "not_compensated"
)

// CompensationResult is one compensation's outcome: done, failed, or
// not_compensated (it could not be rendered without the step's answer).
type CompensationResult struct {
	Step    string `json:"step"`
	Outcome string `json:"outcome"`
	Status  int    `json:"status,omitempty"`
	Tries   int    `json:"tries,omitempty"`
	Error   string `json:"error,omitempty"`
}
