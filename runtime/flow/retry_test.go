package flow

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

func TestShouldRetry(t *testing.T) {
	all := cellspec.Retry{RetryOn: []string{"connect", "timeout", "502", "503"}}
	none := cellspec.Retry{}
	tests := []struct {
		name       string
		retry      cellspec.Retry
		fault      fault
		status     int
		accepted   bool
		idempotent bool
		want       bool
	}{
		{name: "connect, listed", retry: all, fault: faultConnect, want: true},
		{name: "connect, listed, not idempotent", retry: all, fault: faultConnect, want: true},
		{name: "connect, not listed", retry: none, fault: faultConnect, idempotent: true, want: false},
		{name: "may have reached, idempotent", retry: all, fault: faultSent, idempotent: true, want: true},
		{name: "may have reached, not idempotent", retry: all, fault: faultSent, want: false},
		{name: "may have reached, connect not listed", retry: cellspec.Retry{RetryOn: []string{"timeout"}}, fault: faultSent, idempotent: true, want: false},
		{name: "timeout, idempotent", retry: all, fault: faultTimeout, idempotent: true, want: true},
		{name: "timeout, not idempotent", retry: all, fault: faultTimeout, want: false},
		{name: "timeout, not listed", retry: cellspec.Retry{RetryOn: []string{"connect"}}, fault: faultTimeout, idempotent: true, want: false},
		{name: "status listed", retry: all, status: 503, want: true},
		{name: "status listed, not idempotent", retry: all, status: 502, want: true},
		{name: "status not listed", retry: all, status: 500, idempotent: true, want: false},
		{name: "status listed but accepted", retry: all, status: 503, accepted: true, want: false},
		{name: "too large", retry: all, fault: faultTooLarge, idempotent: true, want: false},
		{name: "stopped", retry: all, fault: faultStopped, idempotent: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shouldRetry(tt.retry, tt.fault, tt.status, tt.accepted, tt.idempotent); got != tt.want {
				t.Errorf("shouldRetry = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsIdempotent(t *testing.T) {
	tests := []struct {
		method string
		header http.Header
		want   bool
	}{
		{"GET", nil, true},
		{"HEAD", nil, true},
		{"OPTIONS", nil, true},
		{"TRACE", nil, true},
		{"PUT", nil, true},
		{"DELETE", nil, true},
		{"POST", nil, false},
		{"PATCH", nil, false},
		{"POST", http.Header{"Idempotency-Key": {"f1-charge"}}, true},
		{"PATCH", http.Header{"Idempotency-Key": {"k"}}, true},
		{"POST", http.Header{"Idempotency-Key": {""}}, false},
		{"get", nil, false}, // methods are case-sensitive (RFC 9110 §9.1)
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %v", tt.method, tt.header), func(t *testing.T) {
			if got := isIdempotent(tt.method, tt.header); got != tt.want {
				t.Errorf("isIdempotent = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	d := func(v time.Duration) cellspec.Duration { return cellspec.Duration(v) }
	tests := []struct {
		name  string
		retry cellspec.Retry
		want  []time.Duration // after tries 1, 2, …
	}{
		{
			name:  "doubling up to the cap",
			retry: cellspec.Retry{Backoff: d(100 * ms), MaxBackoff: d(2 * time.Second)},
			want:  []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2000 * ms, 2000 * ms},
		},
		{
			name:  "cap not a power of two of the backoff",
			retry: cellspec.Retry{Backoff: d(300 * ms), MaxBackoff: d(1000 * ms)},
			want:  []time.Duration{300 * ms, 600 * ms, 1000 * ms, 1000 * ms},
		},
		{
			name:  "cap below the backoff",
			retry: cellspec.Retry{Backoff: d(time.Second), MaxBackoff: d(500 * ms)},
			want:  []time.Duration{500 * ms, 500 * ms},
		},
		{
			name:  "no cap",
			retry: cellspec.Retry{Backoff: d(time.Second)},
			want:  []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
		},
		{
			name:  "no backoff",
			retry: cellspec.Retry{MaxBackoff: d(time.Second)},
			want:  []time.Duration{0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := backoff(tt.retry, i+1); got != want {
					t.Errorf("backoff after try %d = %s, want %s", i+1, got, want)
				}
			}
		})
	}
	t.Run("no overflow", func(t *testing.T) {
		r := cellspec.Retry{Backoff: d(time.Hour)}
		if got := backoff(r, 200); got <= 0 {
			t.Errorf("backoff after try 200 = %s, want a positive wait", got)
		}
	})
}

func TestJitter(t *testing.T) {
	tests := []struct {
		d    time.Duration
		frac float64
		want time.Duration
	}{
		{d: 100 * time.Millisecond, frac: 0, want: 50 * time.Millisecond},
		{d: 100 * time.Millisecond, frac: 1, want: 100 * time.Millisecond},
		{d: 3, frac: 0, want: 1},
		{d: 3, frac: 1, want: 3},
		{d: 1, frac: 1, want: 1},
		{d: 0, frac: 1, want: 0},
	}
	for _, tt := range tests {
		if got := jitter(tt.d, fixedJitter(tt.frac)); got != tt.want {
			t.Errorf("jitter(%d, %v) = %d, want %d", tt.d, tt.frac, got, tt.want)
		}
	}
	// Whatever the draw, the wait is in [d/2, d].
	for _, d := range []time.Duration{2, 7, 100 * time.Millisecond, 2 * time.Second} {
		for range 100 {
			if got := jitter(d, rand.Int64N); got < d/2 || got > d {
				t.Fatalf("jitter(%s) = %s, outside [%s, %s]", d, got, d/2, d)
			}
		}
	}
}

func TestAttempts(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{-1, 1}, {0, 1}, {1, 1}, {5, 5}} {
		if got := attempts(cellspec.Retry{Attempts: tt.in}); got != tt.want {
			t.Errorf("attempts(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestMayHaveReached(t *testing.T) {
	stoppedDialing := fmt.Errorf("call a: %w: %w", ErrConnect, context.Canceled)
	tests := []struct {
		name  string
		fault fault
		err   error
		want  bool
	}{
		{name: "answer", fault: faultNone, want: true},
		{name: "no connection", fault: faultConnect, err: ErrConnect, want: false},
		{name: "broken connection", fault: faultSent, err: errors.New("reset"), want: true},
		{name: "timeout", fault: faultTimeout, want: true},
		{name: "answer too large", fault: faultTooLarge, want: true},
		{name: "stopped in flight", fault: faultStopped, err: context.Canceled, want: true},
		{name: "stopped while connecting", fault: faultStopped, err: stoppedDialing, want: false},
	}
	for _, tt := range tests {
		if got := mayHaveReached(tt.fault, tt.err); got != tt.want {
			t.Errorf("%s: mayHaveReached = %v, want %v", tt.name, got, tt.want)
		}
	}
}
