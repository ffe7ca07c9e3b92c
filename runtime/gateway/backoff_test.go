package gateway

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCrashBackoff(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	type result struct {
		Next    CrashState
		Delay   time.Duration
		Looping bool
	}
	tests := []struct {
		name string
		prev CrashState
		f    failure
		want result
	}{
		{
			name: "the first crash waits a second",
			want: result{Next: CrashState{Crashes: 1, NotBefore: now.Add(time.Second)}, Delay: time.Second},
		},
		{
			name: "the second crash of a streak waits twice as long",
			prev: CrashState{Crashes: 1, NotBefore: now.Add(-10 * time.Second)},
			want: result{Next: CrashState{Crashes: 2, NotBefore: now.Add(2 * time.Second)}, Delay: 2 * time.Second},
		},
		{
			name: "the third is a crash loop and waits twice as long again",
			prev: CrashState{Crashes: 2, NotBefore: now.Add(-time.Second)},
			want: result{Next: CrashState{Crashes: 3, NotBefore: now.Add(4 * time.Second)}, Delay: 4 * time.Second, Looping: true},
		},
		{
			name: "a crash exactly a window after the backoff ended still counts",
			prev: CrashState{Crashes: 3, NotBefore: now.Add(-crashWindow)},
			want: result{Next: CrashState{Crashes: 4, NotBefore: now.Add(8 * time.Second)}, Delay: 8 * time.Second, Looping: true},
		},
		{
			name: "a crash later than a window after the backoff starts a new streak",
			prev: CrashState{Crashes: 5, NotBefore: now.Add(-crashWindow - time.Nanosecond)},
			want: result{Next: CrashState{Crashes: 1, NotBefore: now.Add(time.Second)}, Delay: time.Second},
		},
		{
			name: "the delay is capped",
			prev: CrashState{Crashes: 10, NotBefore: now},
			want: result{Next: CrashState{Crashes: 11, NotBefore: now.Add(maxCrashDelay)}, Delay: maxCrashDelay, Looping: true},
		},
		{
			// 1s<<34 overflows a Duration: a streak of hours must not wrap
			// to a negative delay and replace at full speed.
			name: "a streak of hours stays at the cap",
			prev: CrashState{Crashes: 40, NotBefore: now.Add(-time.Minute)},
			want: result{Next: CrashState{Crashes: 41, NotBefore: now.Add(maxCrashDelay)}, Delay: maxCrashDelay, Looping: true},
		},
		{
			name: "a failed start counts like a crash and says so",
			prev: CrashState{Crashes: 1, NotBefore: now},
			f:    failureStart,
			want: result{Next: CrashState{Crashes: 2, NotBefore: now.Add(2 * time.Second), StartFailed: true}, Delay: 2 * time.Second},
		},
		{
			name: "a crash after a failed start is a crash again",
			prev: CrashState{Crashes: 2, NotBefore: now, StartFailed: true},
			want: result{Next: CrashState{Crashes: 3, NotBefore: now.Add(4 * time.Second)}, Delay: 4 * time.Second, Looping: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got result
			got.Next, got.Delay, got.Looping = crashBackoff(tt.prev, tt.f, now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("crashBackoff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCrashStateLooping(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		cs   CrashState
		want bool
	}{
		{"no crash", CrashState{}, false},
		{"two crashes backing off", CrashState{Crashes: 2, NotBefore: now.Add(time.Second)}, false},
		{"three crashes backing off", CrashState{Crashes: 3, NotBefore: now.Add(time.Second)}, true},
		// Between two failures the replacement runs: the streak, and
		// the loop, go on until it has run crashWindow.
		{"three crashes, backoff over", CrashState{Crashes: 3, NotBefore: now}, true},
		{"three crashes, a window after the backoff", CrashState{Crashes: 3, NotBefore: now.Add(-crashWindow)}, true},
		{"three crashes, longer than a window after the backoff", CrashState{Crashes: 3, NotBefore: now.Add(-crashWindow - time.Nanosecond)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cs.Looping(now); got != tt.want {
				t.Errorf("Looping = %v, want %v", got, tt.want)
			}
		})
	}
}
