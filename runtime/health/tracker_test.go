package health

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestTracker(t *testing.T) {
	// step is one check result at t0+at and what the tracker must say
	// after it. fail is the failure message; "" is a pass.
	type step struct {
		at       time.Duration
		fail     string
		state    State
		failures int
		tr       *Transition
	}
	moved := func(at time.Duration, from, to State, reason string) *Transition {
		return &Transition{From: from, To: to, At: t0.Add(at), Reason: reason}
	}
	health := func(retries int, startPeriod time.Duration) *cellspec.Health {
		return &cellspec.Health{
			HTTP:        "/healthz",
			Interval:    cellspec.Duration(2 * time.Second),
			Timeout:     cellspec.Duration(time.Second),
			Retries:     retries,
			StartPeriod: cellspec.Duration(startPeriod),
		}
	}
	const s = time.Second

	tests := []struct {
		name   string
		health *cellspec.Health
		steps  []step
	}{
		{
			name:   "failures inside the start period are not counted",
			health: health(3, 10*s),
			steps: []step{
				{at: 0, fail: "refused", state: StateStarting},
				{at: 2 * s, fail: "refused", state: StateStarting},
				{at: 8 * s, fail: "refused", state: StateStarting},
				{at: 9*s + 999*time.Millisecond, fail: "refused", state: StateStarting},
				{at: 10 * s, fail: "refused", state: StateStarting, failures: 1},
				{at: 12 * s, fail: "refused", state: StateStarting, failures: 2},
				{at: 14 * s, fail: "status 503", state: StateUnhealthy, failures: 3,
					tr: moved(14*s, StateStarting, StateUnhealthy, "3 failed health checks in a row, last: status 503")},
			},
		},
		{
			name:   "a pass ends the start period early",
			health: health(3, 10*s),
			steps: []step{
				{at: 0, fail: "refused", state: StateStarting},
				{at: 2 * s, state: StateHealthy,
					tr: moved(2*s, StateStarting, StateHealthy, "health check passed")},
				{at: 4 * s, fail: "refused", state: StateHealthy, failures: 1},
				{at: 6 * s, fail: "refused", state: StateHealthy, failures: 2},
				{at: 8 * s, fail: "refused", state: StateUnhealthy, failures: 3,
					tr: moved(8*s, StateHealthy, StateUnhealthy, "3 failed health checks in a row, last: refused")},
			},
		},
		{
			name:   "unhealthy exactly at the retries threshold",
			health: health(2, 0),
			steps: []step{
				{at: 0, state: StateHealthy, tr: moved(0, StateStarting, StateHealthy, "health check passed")},
				{at: 2 * s, fail: "a", state: StateHealthy, failures: 1},
				{at: 4 * s, fail: "b", state: StateUnhealthy, failures: 2,
					tr: moved(4*s, StateHealthy, StateUnhealthy, "2 failed health checks in a row, last: b")},
				{at: 6 * s, fail: "c", state: StateUnhealthy, failures: 3},
			},
		},
		{
			name:   "a pass breaks a streak of failures",
			health: health(3, 0),
			steps: []step{
				{at: 0, state: StateHealthy, tr: moved(0, StateStarting, StateHealthy, "health check passed")},
				{at: 2 * s, fail: "x", state: StateHealthy, failures: 1},
				{at: 4 * s, fail: "x", state: StateHealthy, failures: 2},
				{at: 6 * s, state: StateHealthy},
				{at: 8 * s, fail: "x", state: StateHealthy, failures: 1},
				{at: 10 * s, fail: "x", state: StateHealthy, failures: 2},
			},
		},
		{
			name:   "recovery from unhealthy on the first pass",
			health: health(1, 0),
			steps: []step{
				{at: 0, fail: "down", state: StateUnhealthy, failures: 1,
					tr: moved(0, StateStarting, StateUnhealthy, "1 failed health check: down")},
				{at: 2 * s, fail: "down", state: StateUnhealthy, failures: 2},
				{at: 4 * s, state: StateHealthy, tr: moved(4*s, StateUnhealthy, StateHealthy, "health check passed")},
				{at: 6 * s, state: StateHealthy},
				{at: 8 * s, fail: "down again", state: StateUnhealthy, failures: 1,
					tr: moved(8*s, StateHealthy, StateUnhealthy, "1 failed health check: down again")},
			},
		},
		{
			name:   "zero retries means the default of three",
			health: health(0, 0),
			steps: []step{
				{at: 0, fail: "x", state: StateStarting, failures: 1},
				{at: 2 * s, fail: "x", state: StateStarting, failures: 2},
				{at: 4 * s, fail: "x", state: StateUnhealthy, failures: 3,
					tr: moved(4*s, StateStarting, StateUnhealthy, "3 failed health checks in a row, last: x")},
			},
		},
		{
			name:   "no health check stays none",
			health: nil,
			steps: []step{
				{at: 0, fail: "x", state: StateNone},
				{at: 2 * s, state: StateNone},
				{at: 4 * s, fail: "x", state: StateNone},
			},
		},
		{
			name:   "a health block naming no check stays none",
			health: &cellspec.Health{Retries: 1},
			steps: []step{
				{at: 0, fail: "x", state: StateNone},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := NewTracker(tt.health, t0)
			if tt.health == nil || tt.health.Kind() == "" {
				if got := tk.State(); got != StateNone {
					t.Fatalf("initial state = %s, want none", got)
				}
			} else if got := tk.State(); got != StateStarting {
				t.Fatalf("initial state = %s, want starting", got)
			}
			for i, st := range tt.steps {
				var err error
				if st.fail != "" {
					err = errors.New(st.fail)
				}
				var got step
				got.at, got.fail = st.at, st.fail
				if tr, ok := tk.Record(t0.Add(st.at), err); ok {
					got.tr = &tr
				}
				got.state, got.failures = tk.State(), tk.Failures()
				if diff := cmp.Diff(st, got, cmp.AllowUnexported(step{})); diff != "" {
					t.Errorf("step %d (+%s) mismatch (-want +got):\n%s", i, st.at, diff)
				}
			}
		})
	}
}

func TestTrackerLastError(t *testing.T) {
	tk := NewTracker(&cellspec.Health{TCP: true, Retries: 3, StartPeriod: cellspec.Duration(time.Minute)}, t0)
	tk.Record(t0, errors.New("connection refused"))
	if got, want := tk.LastError(), "connection refused"; got != want {
		t.Errorf("LastError() inside the start period = %q, want %q", got, want)
	}
	tk.Record(t0.Add(time.Second), errors.New(""))
	if got, want := tk.LastError(), "health check failed"; got != want {
		t.Errorf("LastError() for an empty message = %q, want %q", got, want)
	}
	tk.Record(t0.Add(2*time.Second), nil)
	if got := tk.LastError(); got != "" {
		t.Errorf("LastError() after a pass = %q, want empty", got)
	}
}

func TestStateReady(t *testing.T) {
	want := map[State]bool{StateNone: true, StateStarting: false, StateHealthy: true, StateUnhealthy: false}
	for s, w := range want {
		if got := s.Ready(); got != w {
			t.Errorf("%s.Ready() = %v, want %v", s, got, w)
		}
	}
}
