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
			name:          "four 5xx do not eject",
			events:        []event{{fail5xx: 4}},
			wantAvailable: true,
		},
		{
			name:   "five 5xx eject for 30s",
			events: []event{{fail5xx: 5}},
			want:   []ejection{{0, EjectConsecutive5xx, 30 * time.Second}},
		},
		{
			name:          "success resets the count",
			events:        []event{{fail5xx: 4}, {success: true}, {fail5xx: 4}},
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
			events:        []event{{fail5xx: 5}, {advance: 30 * time.Second}},
			want:          []ejection{{0, EjectConsecutive5xx, 30 * time.Second}},
			wantAvailable: true,
		},
		{
			name:   "failures while ejected do not extend it",
			events: []event{{connect: true}, {advance: 10 * time.Second, connect: true}, {fail5xx: 10}},
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
			cfg:    Outlier{Consecutive5xx: 2, ConsecutiveConnectFailures: 3, BaseEjection: time.Second},
			events: []event{{connect: true}, {connect: true}, {fail5xx: 2}},
			want:   []ejection{{2, EjectConsecutive5xx, time.Second}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			cfg := tt.cfg.withDefaults()
			u := &Upstream{ID: "a"}
			var got []ejection
			record := func(step int, reason string, until time.Time, ejected bool) {
				if ejected {
					got = append(got, ejection{step, reason, until.Sub(clock.Now())})
				}
			}
			for i, ev := range tt.events {
				clock.Advance(ev.advance)
				for range ev.fail5xx {
					reason, until, ejected := u.failed(false, clock.Now(), cfg)
					record(i, reason, until, ejected)
				}
				if ev.connect {
					reason, until, ejected := u.failed(true, clock.Now(), cfg)
					record(i, reason, until, ejected)
				}
				if ev.success {
					u.succeeded()
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

func TestSetHealthy(t *testing.T) {
	clock := newFakeClock()
	cfg := Outlier{}.withDefaults()
	u := &Upstream{ID: "a"}
	if !u.Available(clock.Now()) {
		t.Fatal("a new upstream is not available")
	}
	u.SetHealthy(true) // no transition: keeps an ejection
	u.failed(true, clock.Now(), cfg)
	u.SetHealthy(true)
	if u.Available(clock.Now()) {
		t.Fatal("a healthy report without a transition ended the ejection")
	}
	u.SetHealthy(false)
	if u.Available(clock.Now().Add(time.Hour)) {
		t.Fatal("an unhealthy upstream is available")
	}
	u.SetHealthy(true) // unhealthy → healthy ends the ejection, keeps the streak
	if !u.Available(clock.Now()) {
		t.Fatal("recovering from unhealthy did not end the ejection")
	}
	_, until, _ := u.failed(true, clock.Now(), cfg)
	if got, want := until.Sub(clock.Now()), time.Minute; got != want {
		t.Errorf("next ejection lasts %s, want %s (streak kept)", got, want)
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
