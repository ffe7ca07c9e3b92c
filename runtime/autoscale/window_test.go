package autoscale

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sec is t0 plus n seconds.
func sec(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }

type readingIn struct {
	at       float64 // seconds after t0
	requests uint64
	inflight float64
}

// value is a window query's answer.
type value struct {
	V  float64
	OK bool
}

func TestWindow(t *testing.T) {
	// steady: 10 requests a second, 3 in flight, for 20 seconds.
	var steady []readingIn
	for i := range 21 {
		steady = append(steady, readingIn{float64(i), uint64(10 * i), 3})
	}
	tests := []struct {
		name     string
		span     time.Duration
		readings []readingIn
		now      float64
		rate     value
		inflight value
	}{
		{
			name:     "empty",
			now:      0,
			rate:     value{0, false},
			inflight: value{0, false},
		},
		{
			name:     "one reading has no rate yet",
			readings: []readingIn{{0, 100, 2}},
			now:      0,
			rate:     value{0, false},
			inflight: value{2, true},
		},
		{
			name:     "two readings",
			readings: []readingIn{{0, 100, 2}, {1, 104, 4}},
			now:      1,
			rate:     value{4, true},
			inflight: value{3, true},
		},
		{
			name:     "steady load over a full window",
			readings: steady,
			now:      20,
			rate:     value{10, true},
			inflight: value{3, true},
		},
		{
			name:     "the window ends at the query time",
			readings: steady,
			now:      15,
			rate:     value{10, true},
			inflight: value{3, true},
		},
		{
			name: "a load step is averaged over the window",
			span: 10 * time.Second,
			readings: []readingIn{
				{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {3, 0, 0}, {4, 0, 0}, {5, 0, 0},
				{6, 100, 10}, {7, 200, 10}, {8, 300, 10}, {9, 400, 10}, {10, 500, 10},
			},
			now:      10,
			rate:     value{50, true},
			inflight: value{50.0 / 11, true},
		},
		{
			name: "old readings leave the window",
			span: 5 * time.Second,
			readings: []readingIn{
				{0, 0, 9}, {1, 1000, 9}, {2, 2000, 9},
				{6, 2000, 1}, {7, 2010, 1}, {8, 2020, 1},
			},
			now:      8,
			rate:     value{10, true},
			inflight: value{1, true},
		},
		{
			name: "a counter that goes down adds nothing for that interval",
			readings: []readingIn{
				{0, 100, 1}, {1, 110, 1}, {2, 5, 1}, {3, 15, 1},
			},
			now:      3,
			rate:     value{20.0 / 3, true},
			inflight: value{1, true},
		},
		{
			name:     "a source that stopped reporting is missing",
			span:     10 * time.Second,
			readings: []readingIn{{0, 0, 5}, {1, 10, 5}},
			now:      12,
			rate:     value{0, false},
			inflight: value{0, false},
		},
		{
			name:     "readings after the query time do not count",
			readings: []readingIn{{0, 0, 1}, {1, 10, 1}, {2, 1000, 50}},
			now:      1,
			rate:     value{10, true},
			inflight: value{1, true},
		},
		{
			name:     "an older reading is ignored",
			readings: []readingIn{{0, 0, 1}, {2, 20, 1}, {1, 500, 50}},
			now:      2,
			rate:     value{10, true},
			inflight: value{1, true},
		},
		{
			name:     "a reading at the same time replaces the last",
			readings: []readingIn{{0, 0, 1}, {1, 500, 50}, {1, 10, 3}},
			now:      1,
			rate:     value{10, true},
			inflight: value{2, true},
		},
		{
			name:     "readings at one instant have no rate",
			readings: []readingIn{{5, 10, 1}},
			now:      5,
			rate:     value{0, false},
			inflight: value{1, true},
		},
	}
	approx := cmpopts.EquateApprox(0, 1e-9)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWindow(tt.span)
			for _, r := range tt.readings {
				w.Add(sec(r.at), r.requests, r.inflight)
			}
			var got value
			got.V, got.OK = w.Rate(sec(tt.now))
			if diff := cmp.Diff(tt.rate, got, approx); diff != "" {
				t.Errorf("Rate mismatch (-want +got):\n%s", diff)
			}
			got.V, got.OK = w.Inflight(sec(tt.now))
			if diff := cmp.Diff(tt.inflight, got, approx); diff != "" {
				t.Errorf("Inflight mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWindowBounded(t *testing.T) {
	w := NewWindow(0)
	if w.Span() != DefaultWindowSpan {
		t.Errorf("span = %s, want %s", w.Span(), DefaultWindowSpan)
	}
	for i := range 1000 {
		w.Add(sec(float64(i)), uint64(i), 0)
	}
	// One reading a second over 10s, both ends included.
	if n := len(w.readings); n != 11 {
		t.Errorf("the window holds %d readings, want 11", n)
	}
}
