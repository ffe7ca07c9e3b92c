package health

import (
	"fmt"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// State is the health of one replica as seen by active checks.
type State string

// States of a replica.
const (
	// StateNone is the state of a replica whose service has no health
	// check. It never changes; such a replica is ready once it runs.
	StateNone State = "none"
	// StateStarting means no check has passed yet. Failures inside the
	// start period are not counted, so a slow starter is not condemned.
	StateStarting State = "starting"
	// StateHealthy means the last counted result was a pass, or fewer than
	// retries failures have followed it.
	StateHealthy State = "healthy"
	// StateUnhealthy means retries consecutive counted checks failed.
	StateUnhealthy State = "unhealthy"
)

// Ready reports whether a replica in this state may receive traffic: it is
// healthy, or its service has no health check.
func (s State) Ready() bool { return s == StateHealthy || s == StateNone }

// Transition is a change of state, returned so the caller can emit a
// controller event.
type Transition struct {
	From State
	To   State
	// At is the time of the check result that caused the change.
	At time.Time
	// Reason explains the change; a move to unhealthy names the number of
	// failures and the last failure's message.
	Reason string
}

// Defaults of the cell file, applied again here so that a Health built by
// hand or imported without them still gives a working check.
const (
	defaultInterval = 2 * time.Second
	defaultTimeout  = time.Second
	defaultRetries  = 3
)

func intervalOf(h *cellspec.Health) time.Duration {
	if h.Interval > 0 {
		return h.Interval.D()
	}
	return defaultInterval
}

func timeoutOf(h *cellspec.Health) time.Duration {
	if h.Timeout > 0 {
		return h.Timeout.D()
	}
	return defaultTimeout
}

func retriesOf(h *cellspec.Health) int {
	if h.Retries > 0 {
		return h.Retries
	}
	return defaultRetries
}

// Tracker is the health state machine of one replica. It is a pure
// function of the results it is given and their times: it starts no
// goroutine, reads no clock and does no I/O. It is not safe for concurrent
// use; the Prober gives each target its own.
type Tracker struct {
	retries     int
	startPeriod time.Duration
	started     time.Time

	state    State
	failures int
	lastErr  string
}

// NewTracker returns the tracker of a replica that started at started and
// whose service has the health check h. A nil h, or one that names no
// check, gives a tracker that stays in StateNone.
func NewTracker(h *cellspec.Health, started time.Time) *Tracker {
	if h == nil || h.Kind() == "" {
		return &Tracker{state: StateNone}
	}
	return &Tracker{
		retries:     retriesOf(h),
		startPeriod: h.StartPeriod.D(),
		started:     started,
		state:       StateStarting,
	}
}

// State returns the current state.
func (t *Tracker) State() State { return t.state }

// Failures returns the number of consecutive counted failures; failures
// inside the start period, before the first pass, are not counted.
func (t *Tracker) Failures() int { return t.failures }

// LastError returns the message of the latest failure, counted or not, or
// "" when the latest check passed.
func (t *Tracker) LastError() string { return t.lastErr }

// Record feeds the result of a check that ran at time at; err is nil for a
// pass. It returns the transition the result caused, if any. Results must
// be recorded in the order they were taken.
//
// As with Docker, a pass ends the start period early: once a replica has
// been healthy, every failure counts.
func (t *Tracker) Record(at time.Time, err error) (Transition, bool) {
	if t.state == StateNone {
		return Transition{}, false
	}
	if err == nil {
		t.failures = 0
		t.lastErr = ""
		return t.move(at, StateHealthy, "health check passed")
	}
	t.lastErr = err.Error()
	if t.lastErr == "" {
		t.lastErr = "health check failed"
	}
	if t.state == StateStarting && at.Before(t.started.Add(t.startPeriod)) {
		return Transition{}, false
	}
	t.failures++
	if t.failures < t.retries {
		return Transition{}, false
	}
	return t.move(at, StateUnhealthy, failureReason(t.failures, t.lastErr))
}

func (t *Tracker) move(at time.Time, to State, reason string) (Transition, bool) {
	if t.state == to {
		return Transition{}, false
	}
	tr := Transition{From: t.state, To: to, At: at, Reason: reason}
	t.state = to
	return tr, true
}

func failureReason(n int, last string) string {
	if n == 1 {
		return "1 failed health check: " + last
	}
	return fmt.Sprintf("%d failed health checks in a row, last: %s", n, last)
}
