package proxy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEjectionDuration(t *testing.T) {
	tests := []struct {
		cfg  Outlier
		n    int
		want time.Duration
	}{
		{Outlier{}, 1, 30 * time.Second},
		{Outlier{}, 2, time.Minute},
		{Outlier{}, 3, 2 * time.Minute},
		{Outlier{}, 4, 4 * time.Minute},
		{Outlier{}, 5, 5 * time.Minute},
		{Outlier{}, 6, 5 * time.Minute},
		{Outlier{}, 1000, 5 * time.Minute},
		{Outlier{BaseEjection: time.Second, MaxEjection: 10 * time.Second}, 4, 8 * time.Second},
		{Outlier{BaseEjection: time.Second, MaxEjection: 10 * time.Second}, 5, 10 * time.Second},
	}
	for _, tt := range tests {
		if got := tt.cfg.EjectionDuration(tt.n); got != tt.want {
			t.Errorf("%+v.EjectionDuration(%d) = %s, want %s", tt.cfg, tt.n, got, tt.want)
		}
	}
}

// event is one step of a passive-health scenario.
type event struct {
	advance time.Duration
	fail5xx int  // 5xx answers in a row
	gateway int  // gateway failures in a row
	connect bool // one connection failure
	success bool
}

// ejection is what a scenario observed: the step and the ejection length.
type ejection struct {
	Step   int
	Reason string
	For    time.Duration
}

func TestPassiveEjection(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Outlier
		events []event
		want   []ejection
		// availability at the end of the scenario
		wantAvailable bool
	}{
		{
			name:          "5xx answers do not eject unless asked",
			events:        []event{{fail5xx: 50}},
			wantAvailable: true,
		},
		{
			name:          "four 5xx do not eject when five are asked",
			cfg:           Outlier{Consecutive5xx: 5},
			events:        []event{{fail5xx: 4}},
			wantAvailable: true,
		},
		{
			name:   "five 5xx eject when asked",
			cfg:    Outlier{Consecutive5xx: 5},
			events: []event{{fail5xx: 5}},
			want:   []ejection{{0, EjectConsecutive5xx, 30 * time.Second}},
		},
		{
			name:          "success resets the 5xx count",
			cfg:           Outlier{Consecutive5xx: 5},
			events:        []event{{fail5xx: 4}, {success: true}, {fail5xx: 4}},
			wantAvailable: true,
		},
		{
			name:          "four gateway failures do not eject",
			events:        []event{{gateway: 4}},
			wantAvailable: true,
		},
		{
			name:   "five gateway failures eject",
			events: []event{{gateway: 5}},
			want:   []ejection{{0, EjectGatewayFailure, 30 * time.Second}},
		},
		{
			name:          "any answer resets the gateway count, even a 5xx",
			events:        []event{{gateway: 4}, {fail5xx: 1}, {gateway: 4}, {success: true}, {gateway: 4}},
			wantAvailable: true,
		},
		{
			name:   "one connection failure ejects",
			events: []event{{connect: true}},
			want:   []ejection{{0, EjectConnectFailure, 30 * time.Second}},
		},
		{
			name: "backoff doubles and caps at 5m",
			events: []event{
				{connect: true},
				{advance: 30 * time.Second, connect: true},
				{advance: time.Minute, connect: true},
				{advance: 2 * time.Minute, connect: true},
				{advance: 4 * time.Minute, connect: true},
				{advance: 5 * time.Minute, connect: true},
			},
			want: []ejection{
				{0, EjectConnectFailure, 30 * time.Second},
				{1, EjectConnectFailure, time.Minute},
				{2, EjectConnectFailure, 2 * time.Minute},
				{3, EjectConnectFailure, 4 * time.Minute},
				{4, EjectConnectFailure, 5 * time.Minute},
				{5, EjectConnectFailure, 5 * time.Minute},
			},
		},
		{
			name:          "ejection ends on time",
			events:        []event{{gateway: 5}, {advance: 30 * time.Second}},
			want:          []ejection{{0, EjectGatewayFailure, 30 * time.Second}},
			wantAvailable: true,
		},
		{
			name:   "failures while ejected do not extend it",
			events: []event{{connect: true}, {advance: 10 * time.Second, connect: true}, {gateway: 10}},
			want:   []ejection{{0, EjectConnectFailure, 30 * time.Second}},
		},
		{
			name: "a long quiet spell starts a new streak",
			events: []event{
				{connect: true},
				{advance: 30 * time.Second, connect: true},
				{advance: time.Minute + 5*time.Minute, connect: true},
			},
			want: []ejection{
				{0, EjectConnectFailure, 30 * time.Second},
				{1, EjectConnectFailure, time.Minute},
				{2, EjectConnectFailure, 30 * time.Second},
			},
		},
		{
			name:   "custom thresholds",
			cfg:    Outlier{Consecutive5xx: 2, ConsecutiveGatewayFailures: 3, BaseEjection: time.Second},
			events: []event{{gateway: 2}, {fail5xx: 2}},
			want:   []ejection{{1, EjectConsecutive5xx, time.Second}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			cfg := tt.cfg.withDefaults()
			u := &Upstream{ID: "a"}
			var got []ejection
			observe := func(step int, f failure) {
				reason, over := u.record(f, cfg)
				if !over {
					return
				}
				if until, ok := u.eject(clock.Now(), cfg, reason); ok {
					got = append(got, ejection{step, reason, until.Sub(clock.Now())})
				}
			}
			for i, ev := range tt.events {
				clock.Advance(ev.advance)
				for range ev.fail5xx {
					observe(i, failure5xx)
				}
				for range ev.gateway {
					observe(i, failureGateway)
				}
				if ev.connect {
					observe(i, failureConnect)
				}
				if ev.success {
					observe(i, noFailure)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ejections mismatch (-want +got):\n%s", diff)
			}
			if got := u.Available(clock.Now()); got != tt.wantAvailable {
				t.Errorf("Available = %v, want %v", got, tt.wantAvailable)
			}
		})
	}
}

func TestFailureOf(t *testing.T) {
	tests := []struct {
		fail   failKind
		status int
		want   failure
	}{
		{failNone, 200, noFailure},
		{failNone, 404, noFailure},
		{failNone, 500, failure5xx},
		{failNone, 503, failure5xx},
		{failConnect, 0, failureConnect},
		{failNotSent, 0, failureGateway},
		{failBroken, 0, failureGateway},
		{failTimeout, 0, failureGateway},
		{failClient, 0, failureNone},
	}
	for _, tt := range tests {
		if got := failureOf(tt.fail, tt.status); got != tt.want {
			t.Errorf("failureOf(%d, %d) = %d, want %d", tt.fail, tt.status, got, tt.want)
		}
	}
}

func TestMayRetry(t *testing.T) {
	tests := []struct {
		fail       failKind
		status     int
		idempotent bool
		want       bool
	}{
		{failConnect, 0, false, true},
		{failNotSent, 0, false, true},
		{failBroken, 0, false, false},
		{failBroken, 0, true, true},
		{failTimeout, 0, false, false},
		{failTimeout, 0, true, true},
		{failNone, 502, false, false},
		{failNone, 503, true, true},
		{failNone, 500, true, false},
		{failNone, 200, true, false},
		{failClient, 0, true, false},
	}
	for _, tt := range tests {
		if got := mayRetry(tt.fail, tt.status, tt.idempotent); got != tt.want {
			t.Errorf("mayRetry(%d, %d, idempotent %v) = %v, want %v", tt.fail, tt.status, tt.idempotent, got, tt.want)
		}
	}
}

func TestPoolStateRules(t *testing.T) {
	tests := []struct {
		name          string
		st            poolState
		candAvailable bool
		maxPercent    int
		wantEject     bool
		wantPanic     bool
	}{
		{"the last available replica stays", poolState{inRotation: 1, healthy: 1, available: 1}, true, 50, false, false},
		{"one of two may go at 50%", poolState{inRotation: 2, healthy: 2, available: 2}, true, 50, true, false},
		{"not the second of two at 50%", poolState{inRotation: 2, healthy: 2, available: 1, ejected: 1}, true, 50, false, false},
		{"one of three at 50%", poolState{inRotation: 3, healthy: 3, available: 3}, true, 50, true, false},
		{"not two of three at 50%", poolState{inRotation: 3, healthy: 3, available: 2, ejected: 1}, true, 50, false, false},
		{"two of four at 50%", poolState{inRotation: 4, healthy: 4, available: 3, ejected: 1}, true, 50, true, false},
		{"three of four at 100%", poolState{inRotation: 4, healthy: 4, available: 2, ejected: 2}, true, 100, true, false},
		{"never the last one, even at 100%", poolState{inRotation: 4, healthy: 4, available: 1, ejected: 3}, true, 100, false, true},
		{"an unhealthy candidate leaves the others as they are", poolState{inRotation: 3, healthy: 2, available: 2}, false, 50, true, false},
		{"no ejection when the percentage forbids it", poolState{inRotation: 5, healthy: 5, available: 5}, true, -1, false, false},
		{"panic: fewer than half of the healthy available", poolState{inRotation: 4, healthy: 3, available: 1, ejected: 2}, true, 50, false, true},
		{"no panic at exactly half", poolState{inRotation: 4, healthy: 4, available: 2, ejected: 2}, false, 100, true, false},
		{"no panic when none is healthy", poolState{inRotation: 2}, false, 50, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.st.mayEject(tt.candAvailable, tt.maxPercent); got != tt.wantEject {
				t.Errorf("mayEject = %v, want %v", got, tt.wantEject)
			}
			if got := tt.st.panicking(); got != tt.wantPanic {
				t.Errorf("panicking = %v, want %v", got, tt.wantPanic)
			}
		})
	}
}

func TestSetHealthy(t *testing.T) {
	clock := newFakeClock()
	cfg := Outlier{}.withDefaults()
	u := &Upstream{ID: "a"}
	if !u.Available(clock.Now()) {
		t.Fatal("a new upstream is not available")
	}
	eject := func(reason string) time.Time {
		until, _ := u.eject(clock.Now(), cfg, reason)
		return until
	}
	eject(EjectGatewayFailure)
	u.SetHealthy(true)
	if u.Available(clock.Now()) {
		t.Fatal("a healthy report without a transition ended a gateway-failure ejection")
	}
	clock.Advance(cfg.EjectionDuration(1))
	eject(EjectConnectFailure)
	u.SetHealthy(true)
	if !u.Available(clock.Now()) {
		t.Fatal("a healthy report (the check connected) did not end a connect-failure ejection")
	}
	clock.Advance(time.Second)
	eject(EjectGatewayFailure)
	u.SetHealthy(false)
	if u.Available(clock.Now().Add(time.Hour)) {
		t.Fatal("an unhealthy upstream is available")
	}
	u.SetHealthy(true) // unhealthy → healthy ends the ejection, keeps the streak
	if !u.Available(clock.Now()) {
		t.Fatal("recovering from unhealthy did not end the ejection")
	}
	if got, want := eject(EjectGatewayFailure).Sub(clock.Now()), 8*cfg.BaseEjection; got != want {
		t.Errorf("fourth ejection lasts %s, want %s (streak kept)", got, want)
	}
}

func TestWaitIdle(t *testing.T) {
	u := &Upstream{ID: "a"}
	if !u.acquire() {
		t.Fatal("acquire failed on an upstream that is not draining")
	}
	u.draining.Store(true)
	if u.acquire() {
		t.Fatal("acquire succeeded on a draining upstream")
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := u.waitIdle(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("waitIdle with a request in flight and a canceled context = %v, want context.Canceled", err)
	}

	done := make(chan error, 1)
	go func() { done <- u.waitIdle(t.Context()) }()
	u.release()
	if err := <-done; err != nil {
		t.Fatalf("waitIdle = %v, want nil", err)
	}
	if err := u.waitIdle(t.Context()); err != nil {
		t.Fatalf("waitIdle when idle = %v, want nil", err)
	}
}
