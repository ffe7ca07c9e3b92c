package api

import (
	"encoding/json"
	"net/http"
	"time"
)

// Admin API paths of flow executions, served by a gateway whose cell has
// flows. GET PathExecutions?flow=&failed=1&since=RFC3339&limit=N lists
// them newest first ([]ExecutionSummary); GET PathExecutions/<id> returns
// one (Execution); POST PathExecutions/<id>/retry (with the token) starts
// a new execution with the same input (RetryResult), refused with 409
// while the execution runs.
const PathExecutions = "/v1/executions"

// ExecutionFilter selects executions to list.
type ExecutionFilter struct {
	// Flow keeps one flow's executions; "" keeps every flow's.
	Flow string
	// Failed keeps the executions that ended without succeeding.
	Failed bool
	// Since keeps the executions started at or after it.
	Since time.Time
	// Limit bounds the list; 0 means the gateway's default.
	Limit int
}

// Execution states, as the journal computes them.
const (
	ExecutionRunning              = "running"
	ExecutionCompensating         = "compensating"
	ExecutionSucceeded            = "succeeded"
	ExecutionFailed               = "failed"
	ExecutionCompensated          = "compensated"
	ExecutionPartiallyCompensated = "partially_compensated"
)

// ExecutionSummary is one line of an execution log.
type ExecutionSummary struct {
	ID   string `json:"id"`
	Cell string `json:"cell,omitempty"`
	Flow string `json:"flow"`
	// State is one of the Execution* states.
	State      string    `json:"state"`
	Outcome    string    `json:"outcome,omitempty"`
	Started    time.Time `json:"started"`
	DurationMs float64   `json:"duration_ms,omitempty"`
	FailedStep string    `json:"failed_step,omitempty"`
	// Recovered: a restarted gateway finished the execution.
	Recovered bool `json:"recovered,omitempty"`
	Async     bool `json:"async,omitempty"`
}

// Execution is one execution with its timeline, as GET
// /_orchestro/executions/<id> on a gateway's data port and GET
// PathExecutions/<id> on its admin port return it.
type Execution struct {
	ID            string                  `json:"id"`
	Cell          string                  `json:"cell,omitempty"`
	Flow          string                  `json:"flow"`
	State         string                  `json:"state"`
	Async         bool                    `json:"async,omitempty"`
	Started       time.Time               `json:"started"`
	Deadline      time.Time               `json:"deadline,omitzero"`
	Finished      time.Time               `json:"finished,omitzero"`
	DurationMs    float64                 `json:"duration_ms,omitempty"`
	Outcome       string                  `json:"outcome,omitempty"`
	FailedStep    string                  `json:"failed_step,omitempty"`
	TimedOut      bool                    `json:"timed_out,omitempty"`
	Recovered     bool                    `json:"recovered,omitempty"`
	Steps         []ExecutionStep         `json:"steps"`
	Compensations []ExecutionCompensation `json:"compensations"`
	Response      *ExecutionResponse      `json:"response,omitempty"`
}

// ExecutionStep is one step of an execution's timeline. State is
// succeeded, failed, skipped, cancelled, not_started, or in_flight (its
// call was sent and no outcome is recorded).
type ExecutionStep struct {
	ID          string    `json:"id"`
	State       string    `json:"state"`
	Status      int       `json:"status,omitempty"`
	Tries       int       `json:"tries,omitempty"`
	Error       string    `json:"error,omitempty"`
	Started     time.Time `json:"started,omitzero"`
	DurationMs  float64   `json:"duration_ms,omitempty"`
	Reached     bool      `json:"reached,omitempty"`
	Compensated string    `json:"compensated,omitempty"`
}

// ExecutionCompensation is the outcome of one compensation: done, failed
// or not_compensated.
type ExecutionCompensation struct {
	Step    string `json:"step"`
	Outcome string `json:"outcome"`
	Status  int    `json:"status,omitempty"`
	Tries   int    `json:"tries,omitempty"`
	Error   string `json:"error,omitempty"`
}

// ExecutionResponse is the answer of an execution that ended: its body as
// JSON when it is JSON, else a JSON string.
type ExecutionResponse struct {
	Status  int             `json:"status"`
	Headers http.Header     `json:"headers,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"`
}

// RetryResult names the execution a retry started.
type RetryResult struct {
	ID string `json:"id"`
}
