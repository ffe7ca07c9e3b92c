package autoscale

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// policy returns an autoscale policy with a 30s scale-down window.
func policy(lo, hi int, inflight, rps, cpu float64) *cellspec.Autoscale {
	return &cellspec.Autoscale{
		Min: lo, Max: hi,
		Inflight: inflight, RPS: rps, CPU: cpu,
		ScaleDownAfter: cellspec.Duration(30 * time.Second),
	}
}

// all builds a Metric reported by every one of n ready replicas.
func all(value float64, n int) Metric { return Metric{Value: value, Samples: n} }

// busy is a routed service that had a request just now.
func busy(ready int) Metrics {
	return Metrics{Ready: ready, Routed: true, LastRequest: t0}
}

func with(m Metrics, f func(*Metrics)) Metrics {
	f(&m)
	return m
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		current int
		m       Metrics
		p       *cellspec.Autoscale
		history []Recommendation
		want    Decision
	}{
		// Each metric alone.
		{
			name:    "inflight up",
			current: 3,
			m:       with(busy(3), func(m *Metrics) { m.Inflight = all(20, 3) }),
			p:       policy(1, 10, 10, 0, 0),
			want: Decision{Replicas: 6, Reason: "inflight 20/replica > target 10: 3 → 6",
				Targets: []api.Target{{Metric: "inflight", Value: 20, Target: 10}}},
		},
		{
			name:    "inflight up, fractional",
			current: 4,
			m:       with(busy(4), func(m *Metrics) { m.Inflight = all(13.5, 4) }),
			p:       policy(1, 10, 10, 0, 0),
			want: Decision{Replicas: 6, Reason: "inflight 13.5/replica > target 10: 4 → 6",
				Targets: []api.Target{{Metric: "inflight", Value: 13.5, Target: 10}}},
		},
		{
			name:    "rps up",
			current: 2,
			m:       with(busy(2), func(m *Metrics) { m.RPS = all(300, 2) }),
			p:       policy(1, 10, 0, 200, 0),
			want: Decision{Replicas: 3, Reason: "rps 300/replica > target 200: 2 → 3",
				Targets: []api.Target{{Metric: "rps", Value: 300, Target: 200}}},
		},
		{
			name:    "cpu up",
			current: 4,
			m:       with(busy(4), func(m *Metrics) { m.CPU = all(90, 4) }),
			p:       policy(1, 10, 0, 0, 60),
			want: Decision{Replicas: 6, Reason: "cpu 90%/replica > target 60%: 4 → 6",
				Targets: []api.Target{{Metric: "cpu", Value: 90, Target: 60}}},
		},
		{
			name:    "cpu down, nothing else in the window",
			current: 4,
			m:       with(busy(4), func(m *Metrics) { m.CPU = all(20, 4) }),
			p:       policy(1, 10, 0, 0, 60),
			want: Decision{Replicas: 2, Reason: "cpu 20%/replica < target 60%: 4 → 2",
				Targets: []api.Target{{Metric: "cpu", Value: 20, Target: 60}}},
		},
		{
			name:    "ceil does not round floating-point dust up",
			current: 3,
			m:       with(busy(3), func(m *Metrics) { m.RPS = all(2.0/3*30, 3) }),
			p:       policy(1, 10, 0, 30, 0),
			want: Decision{Replicas: 2, Reason: "rps 20/replica < target 30: 3 → 2",
				Targets: []api.Target{{Metric: "rps", Value: 2.0 / 3 * 30, Target: 30}}},
		},

		// Several at once: the largest demand wins.
		{
			name:    "cpu demands most",
			current: 3,
			m: with(busy(3), func(m *Metrics) {
				m.Inflight, m.RPS, m.CPU = all(15, 3), all(100, 3), all(140, 3)
			}),
			p: policy(1, 10, 10, 200, 70),
			want: Decision{Replicas: 6, Reason: "cpu 140%/replica > target 70%: 3 → 6", Targets: []api.Target{
				{Metric: "inflight", Value: 15, Target: 10},
				{Metric: "rps", Value: 100, Target: 200},
				{Metric: "cpu", Value: 140, Target: 70},
			}},
		},
		{
			name:    "one metric up beats another down",
			current: 4,
			m: with(busy(4), func(m *Metrics) {
				m.Inflight, m.RPS = all(1, 4), all(250, 4)
			}),
			p: policy(1, 10, 10, 200, 0),
			want: Decision{Replicas: 5, Reason: "rps 250/replica > target 200: 4 → 5", Targets: []api.Target{
				{Metric: "inflight", Value: 1, Target: 10},
				{Metric: "rps", Value: 250, Target: 200},
			}},
		},
		{
			name:    "a metric inside tolerance holds off another's scale-down",
			current: 4,
			m: with(busy(4), func(m *Metrics) {
				m.Inflight, m.CPU = all(1, 4), all(75, 4)
			}),
			p: policy(1, 10, 10, 0, 70),
			want: Decision{Replicas: 4, Reason: "cpu 75%/replica ≈ target 70%: stay at 4", Targets: []api.Target{
				{Metric: "inflight", Value: 1, Target: 10},
				{Metric: "cpu", Value: 75, Target: 70},
			}},
		},
		{
			name:    "equal demands name the first metric",
			current: 2,
			m: with(busy(2), func(m *Metrics) {
				m.Inflight, m.RPS = all(20, 2), all(400, 2)
			}),
			p: policy(1, 10, 10, 200, 0),
			want: Decision{Replicas: 4, Reason: "inflight 20/replica > target 10: 2 → 4", Targets: []api.Target{
				{Metric: "inflight", Value: 20, Target: 10},
				{Metric: "rps", Value: 400, Target: 200},
			}},
		},

		// Tolerance band.
		{
			name:    "just above target is inside tolerance",
			current: 3,
			m:       with(busy(3), func(m *Metrics) { m.Inflight = all(10.9, 3) }),
			p:       policy(1, 10, 10, 0, 0),
			want: Decision{Replicas: 3, Reason: "inflight 10.9/replica ≈ target 10: stay at 3",
				Targets: []api.Target{{Metric: "inflight", Value: 10.9, Target: 10}}},
		},
		{
			name:    "exactly 10% above target is inside tolerance",
			current: 3,
			m:       with(busy(3), func(m *Metrics) { m.Inflight = all(11, 3) }),
			p:       policy(1, 10, 10, 0, 0),
			want: Decision{Replicas: 3, Reason: "inflight 11/replica ≈ target 10: stay at 3",
				Targets: []api.Target{{Metric: "inflight", Value: 11, Target: 10}}},
		},
		{
			name:    "beyond tolerance above",
			current: 3,
			m:       with(busy(3), func(m *Metrics) { m.Inflight = all(11.2, 3) }),
			p:       policy(1, 10, 10, 0, 0),
			want: Decision{Replicas: 4, Reason: "inflight 11.2/replica > target 10: 3 → 4",
				Targets: []api.Target{{Metric: "inflight", Value: 11.2, Target: 10}}},
		},
		{
			name:    "just below target is inside tolerance",
			current: 3,
			m:       with(busy(3), func(m *Metrics) { m.RPS = all(181, 3) }),
			p:       policy(1, 10, 0, 200, 0),
			want: Decision{Replicas: 3, Reason: "rps 181/replica ≈ target 200: stay at 3",
				Targets: []api.Target{{Metric: "rps", Value: 181, Target: 200}}},
		},
		{
			name:    "below tolerance but ceil keeps the count",
			current: 3,
			m:       with(busy(3), func(m *Metrics) { m.RPS = all(170, 3) }),
			p:       policy(1, 10, 0, 200, 0),
			want: Decision{Replicas: 3, Reason: "rps 170/replica < target 200: stay at 3",
				Targets: []api.Target{{Metric: "rps", Value: 170, Target: 200}}},
		},

		// Step limit.
		{
			name:    "doubling is the larger step",
			current: 6,
			m:       with(busy(6), func(m *Metrics) { m.Inflight = all(100, 6) }),
			p:       policy(1, 100, 10, 0, 0),
			want: Decision{Replicas: 12, Reason: "inflight 100/replica > target 10: 6 → 12 (step limit; wants 60)",
				Targets: []api.Target{{Metric: "inflight", Value: 100, Target: 10}}},
		},
		{
			name:    "+4 is the larger step",
			current: 1,
			m:       with(busy(1), func(m *Metrics) { m.Inflight = all(100, 1) }),
			p:       policy(1, 100, 10, 0, 0),
			want: Decision{Replicas: 5, Reason: "inflight 100/replica > target 10: 1 → 5 (step limit; wants 10)",
				Targets: []api.Target{{Metric: "inflight", Value: 100, Target: 10}}},
		},
		{
			name:    "a step within the limit is taken whole",
			current: 4,
			m:       with(busy(4), func(m *Metrics) { m.Inflight = all(20, 4) }),
			p:       policy(1, 100, 10, 0, 0),
			want: Decision{Replicas: 8, Reason: "inflight 20/replica > target 10: 4 → 8",
				Targets: []api.Target{{Metric: "inflight", Value: 20, Target: 10}}},
		},

		// Clamp.
		{
			name:    "max",
			current: 6,
			m:       with(busy(6), func(m *Metrics) { m.Inflight = all(20, 6) }),
			p:       policy(1, 8, 10, 0, 0),
			want: Decision{Replicas: 8, Reason: "inflight 20/replica > target 10: 6 → 8 (max 8; wants 12)",
				Targets: []api.Target{{Metric: "inflight", Value: 20, Target: 10}}},
		},
		{
			name:    "already at max",
			current: 8,
			m:       with(busy(8), func(m *Metrics) { m.Inflight = all(20, 8) }),
			p:       policy(1, 8, 10, 0, 0),
			want: Decision{Replicas: 8, Reason: "inflight 20/replica > target 10: stay at 8 (max 8; wants 16)",
				Targets: []api.Target{{Metric: "inflight", Value: 20, Target: 10}}},
		},
		{
			name:    "min",
			current: 4,
			m:       with(busy(4), func(m *Metrics) { m.Inflight = all(0, 4) }),
			p:       policy(2, 8, 10, 0, 0),
			want: Decision{Replicas: 2, Reason: "inflight 0/replica < target 10: 4 → 2 (min 2; wants 0)",
				Targets: []api.Target{{Metric: "inflight", Value: 0, Target: 10}}},
		},
		{
			name:    "above a lowered max",
			current: 10,
			m:       with(busy(10), func(m *Metrics) { m.Inflight = all(10, 10) }),
			p:       policy(1, 8, 10, 0, 0),
			want: Decision{Replicas: 8, Reason: "inflight 10/replica ≈ target 10: 10 → 8 (max 8)",
				Targets: []api.Target{{Metric: "inflight", Value: 10, Target: 10}}},
		},
		{
			name:    "below a raised min",
			current: 1,
			m:       with(busy(1), func(m *Metrics) { m.Inflight = all(10, 1) }),
			p:       policy(3, 8, 10, 0, 0),
			want: Decision{Replicas: 3, Reason: "inflight 10/replica ≈ target 10: 1 → 3 (min 3)",
				Targets: []api.Target{{Metric: "inflight", Value: 10, Target: 10}}},
		},

		// Replicas that are not ready, and ready ones without a sample.
		{
			name:    "not-ready replicas count as idle when scaling up",
			current: 4,
			m:       Metrics{Ready: 2, NotReady: 2, Routed: true, LastRequest: t0, Inflight: all(30, 2)},
			p:       policy(1, 20, 10, 0, 0),
			// 2 × 30 in flight over 4 replicas is 15 each: 4 × 1.5 = 6,
			// not the 12 that 4 × 30/10 would give.
			want: Decision{Replicas: 6, Reason: "inflight 30/replica > target 10: 4 → 6",
				Targets: []api.Target{{Metric: "inflight", Value: 30, Target: 10}}},
		},
		{
			name:    "not-ready replicas can cancel a scale-up",
			current: 4,
			m:       Metrics{Ready: 2, NotReady: 2, Routed: true, LastRequest: t0, Inflight: all(15, 2)},
			p:       policy(1, 20, 10, 0, 0),
			want: Decision{Replicas: 4, Reason: "inflight 15/replica > target 10: stay at 4",
				Targets: []api.Target{{Metric: "inflight", Value: 15, Target: 10}}},
		},
		{
			name:    "not-ready replicas count as at target when scaling down",
			current: 4,
			m:       Metrics{Ready: 2, NotReady: 2, Routed: true, LastRequest: t0, Inflight: all(2, 2)},
			p:       policy(1, 20, 10, 0, 0),
			// (2×2 + 2×10) / (4×10) = 0.6, and 4 × 0.6 rounds up to 3.
			want: Decision{Replicas: 3, Reason: "inflight 2/replica < target 10: 4 → 3",
				Targets: []api.Target{{Metric: "inflight", Value: 2, Target: 10}}},
		},
		{
			name:    "ready replicas without a cpu sample count as at target when scaling down",
			current: 4,
			m:       with(busy(4), func(m *Metrics) { m.CPU = Metric{Value: 10, Samples: 2} }),
			p:       policy(1, 20, 0, 0, 50),
			// (2×10 + 2×50) / (4×50) = 0.6 → 3.
			want: Decision{Replicas: 3, Reason: "cpu 10%/replica < target 50%: 4 → 3",
				Targets: []api.Target{{Metric: "cpu", Value: 10, Target: 50}}},
		},
		{
			name:    "filling in missing samples brings the metric within tolerance",
			current: 4,
			m:       with(busy(4), func(m *Metrics) { m.CPU = Metric{Value: 40, Samples: 2} }),
			p:       policy(1, 20, 0, 0, 50),
			want: Decision{Replicas: 4, Reason: "cpu 40%/replica < target 50%: stay at 4",
				Targets: []api.Target{{Metric: "cpu", Value: 40, Target: 50}}},
		},
		{
			name:    "ready replicas without a cpu sample count as idle when scaling up",
			current: 4,
			m:       with(busy(4), func(m *Metrics) { m.CPU = Metric{Value: 150, Samples: 2} }),
			p:       policy(1, 20, 0, 0, 50),
			// 2 × 150 over 4 replicas at target 50: 6.
			want: Decision{Replicas: 6, Reason: "cpu 150%/replica > target 50%: 4 → 6",
				Targets: []api.Target{{Metric: "cpu", Value: 150, Target: 50}}},
		},
		{
			name:    "no ready replica: the traffic metrics are missing",
			current: 3,
			m:       Metrics{NotReady: 3, Routed: true, LastRequest: t0, Inflight: all(50, 3)},
			p:       policy(1, 20, 10, 0, 0),
			want:    Decision{Replicas: 3, Reason: "no metrics: stay at 3"},
		},

		// Missing metrics.
		{
			name:    "a missing metric is skipped",
			current: 4,
			m:       with(busy(4), func(m *Metrics) { m.CPU = all(30, 4) }),
			p:       policy(1, 20, 10, 0, 60),
			want: Decision{Replicas: 2, Reason: "cpu 30%/replica < target 60%: 4 → 2",
				Targets: []api.Target{{Metric: "cpu", Value: 30, Target: 60}}},
		},
		{
			name:    "a NaN value is missing",
			current: 4,
			m: with(busy(4), func(m *Metrics) {
				m.Inflight, m.CPU = all(math.NaN(), 4), all(90, 4)
			}),
			p: policy(1, 20, 10, 0, 60),
			want: Decision{Replicas: 6, Reason: "cpu 90%/replica > target 60%: 4 → 6",
				Targets: []api.Target{{Metric: "cpu", Value: 90, Target: 60}}},
		},
		{
			name:    "a metric without a target is ignored",
			current: 2,
			m: with(busy(2), func(m *Metrics) {
				m.Inflight, m.RPS = all(10, 2), all(5000, 2)
			}),
			p: policy(1, 20, 10, 0, 0),
			want: Decision{Replicas: 2, Reason: "inflight 10/replica ≈ target 10: stay at 2",
				Targets: []api.Target{{Metric: "inflight", Value: 10, Target: 10}}},
		},
		{
			name:    "every metric missing",
			current: 3,
			m:       busy(3),
			p:       policy(1, 20, 10, 200, 70),
			want:    Decision{Replicas: 3, Reason: "no metrics: stay at 3"},
		},
		{
			name:    "every metric missing, above max",
			current: 9,
			m:       busy(9),
			p:       policy(1, 8, 10, 0, 0),
			want:    Decision{Replicas: 8, Reason: "no metrics: 9 → 8 (max 8)"},
		},

		// Scale to zero, and back.
		{
			name:    "idle for the window goes to zero",
			current: 2,
			m:       Metrics{Ready: 2, Routed: true, LastRequest: t0.Add(-30 * time.Second), Inflight: all(0, 2)},
			p:       policy(0, 8, 10, 0, 0),
			want: Decision{Replicas: 0, Reason: "no request for 30s: 2 → 0",
				Targets: []api.Target{{Metric: "inflight", Value: 0, Target: 10}}},
		},
		{
			name:    "zero time of last request is idle for ever",
			current: 1,
			m:       Metrics{Ready: 1, Routed: true},
			p:       policy(0, 8, 10, 0, 0),
			want:    Decision{Replicas: 0, Reason: "no request for 30s: 1 → 0"},
		},
		{
			name:    "idle for less than the window keeps one replica",
			current: 2,
			m:       Metrics{Ready: 2, Routed: true, LastRequest: t0.Add(-29 * time.Second), Inflight: all(0, 2)},
			p:       policy(0, 8, 10, 0, 0),
			want: Decision{Replicas: 1, Reason: "inflight 0/replica < target 10: 2 → 1 (zero after 30s without requests; wants 0)",
				Targets: []api.Target{{Metric: "inflight", Value: 0, Target: 10}}},
		},
		{
			name:    "a pending request prevents scaling to zero",
			current: 1,
			m:       Metrics{Ready: 1, Routed: true, Pending: 1, LastRequest: t0.Add(-time.Hour), Inflight: all(0, 1)},
			p:       policy(0, 8, 10, 0, 0),
			want: Decision{Replicas: 1, Reason: "inflight 0/replica < target 10: stay at 1 (zero after 30s without requests; wants 0)",
				Targets: []api.Target{{Metric: "inflight", Value: 0, Target: 10}}},
		},
		{
			name:    "a service the gateway does not route never goes to zero",
			current: 2,
			m:       Metrics{Ready: 2, CPU: all(0, 2)},
			p:       policy(0, 8, 0, 0, 50),
			want: Decision{Replicas: 1, Reason: "cpu 0%/replica < target 50%: 2 → 1 (min 1; wants 0)",
				Targets: []api.Target{{Metric: "cpu", Value: 0, Target: 50}}},
		},
		{
			name:    "min 1 never goes to zero",
			current: 1,
			m:       Metrics{Ready: 1, Routed: true, Inflight: all(0, 1)},
			p:       policy(1, 8, 10, 0, 0),
			want: Decision{Replicas: 1, Reason: "inflight 0/replica < target 10: stay at 1 (min 1; wants 0)",
				Targets: []api.Target{{Metric: "inflight", Value: 0, Target: 10}}},
		},
		{
			name:    "a pending request wakes a service at zero",
			current: 0,
			m:       Metrics{Routed: true, Pending: 3, LastRequest: t0},
			p:       policy(0, 8, 10, 0, 0),
			want:    Decision{Replicas: 1, Reason: "3 pending requests: 0 → 1"},
		},
		{
			name:    "one pending request",
			current: 0,
			m:       Metrics{Routed: true, Pending: 1, LastRequest: t0},
			p:       policy(0, 8, 10, 0, 0),
			want:    Decision{Replicas: 1, Reason: "1 pending request: 0 → 1"},
		},
		{
			name:    "zero stays zero without a request",
			current: 0,
			m:       Metrics{Routed: true, LastRequest: t0.Add(-time.Minute)},
			p:       policy(0, 8, 10, 0, 0),
			want:    Decision{Replicas: 0, Reason: "no request: stay at 0"},
		},
		{
			name:    "zero below a raised min",
			current: 0,
			m:       Metrics{Routed: true},
			p:       policy(2, 8, 10, 0, 0),
			want:    Decision{Replicas: 2, Reason: "below min 2: 0 → 2"},
		},

		// No policy.
		{
			name:    "nil policy",
			current: 3,
			m:       with(busy(3), func(m *Metrics) { m.Inflight = all(100, 3) }),
			want:    Decision{Replicas: 3, Reason: "autoscaling is off: stay at 3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := Decide(tt.current, tt.m, tt.p, tt.history, t0)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// step is one call of Decide in a sequence; the count carries over from the
// previous step's decision, and so does the history.
type step struct {
	after  time.Duration // since t0
	m      Metrics
	want   int
	reason string
}

// outcome is what a step checks.
type outcome struct {
	Replicas int
	Reason   string
}

func runSteps(t *testing.T, p *cellspec.Autoscale, current int, steps []step) {
	t.Helper()
	var history []Recommendation
	for _, s := range steps {
		m := s.m
		if m.Ready == 0 && m.NotReady == 0 {
			m.Ready = current
		}
		for _, met := range []*Metric{&m.Inflight, &m.RPS, &m.CPU} {
			if met.Samples < 0 {
				met.Samples = m.Ready // "every ready replica" in the tables
			}
		}
		d, h := Decide(current, m, p, history, t0.Add(s.after))
		if diff := cmp.Diff(outcome{s.want, s.reason}, outcome{d.Replicas, d.Reason}); diff != "" {
			t.Errorf("at t0+%s from %d (-want +got):\n%s", s.after, current, diff)
		}
		current, history = d.Replicas, h
	}
}

// load is a traffic sample with the inflight metric reported by every
// ready replica.
func load(inflight float64, lastRequest time.Duration) Metrics {
	return Metrics{Routed: true, LastRequest: t0.Add(lastRequest), Inflight: Metric{Value: inflight, Samples: -1}}
}

func TestDecideStabilization(t *testing.T) {
	p := policy(1, 20, 10, 0, 0)
	t.Run("scale-down waits for the window", func(t *testing.T) {
		runSteps(t, p, 6, []step{
			{0, load(10, 0), 6, "inflight 10/replica ≈ target 10: stay at 6"},
			{10 * time.Second, load(3, 10*time.Second), 6, "inflight 3/replica < target 10: stay at 6 (highest recommendation within 30s; wants 2)"},
			{20 * time.Second, load(3, 20*time.Second), 6, "inflight 3/replica < target 10: stay at 6 (highest recommendation within 30s; wants 2)"},
			{29 * time.Second, load(3, 29*time.Second), 6, "inflight 3/replica < target 10: stay at 6 (highest recommendation within 30s; wants 2)"},
			// The recommendation of t0 is now a full window old.
			{30 * time.Second, load(3, 30*time.Second), 2, "inflight 3/replica < target 10: 6 → 2"},
		})
	})
	t.Run("scale-down goes to the highest recommendation in the window", func(t *testing.T) {
		runSteps(t, p, 6, []step{
			{0, load(10, 0), 6, "inflight 10/replica ≈ target 10: stay at 6"},
			// 6 × 0.6 = 3.6 → 4.
			{10 * time.Second, load(6, 10*time.Second), 6, "inflight 6/replica < target 10: stay at 6 (highest recommendation within 30s; wants 4)"},
			// 6 × 0.2 = 1.2 → 2.
			{20 * time.Second, load(2, 20*time.Second), 6, "inflight 2/replica < target 10: stay at 6 (highest recommendation within 30s; wants 2)"},
			// 6 has left the window, 4 has not.
			{31 * time.Second, load(2, 31*time.Second), 4, "inflight 2/replica < target 10: 6 → 4 (highest recommendation within 30s; wants 2)"},
			// 4 × 0.2 = 0.8 → 1, but 2 (from t0+20s and t0+31s) is still
			// in the window.
			{40 * time.Second, load(2, 40*time.Second), 2, "inflight 2/replica < target 10: 4 → 2 (highest recommendation within 30s; wants 1)"},
			{71 * time.Second, load(2, 71*time.Second), 1, "inflight 2/replica < target 10: 2 → 1"},
		})
	})
	t.Run("scale-up is not delayed", func(t *testing.T) {
		runSteps(t, p, 2, []step{
			{0, load(2, 0), 1, "inflight 2/replica < target 10: 2 → 1"},
			{time.Second, load(40, time.Second), 4, "inflight 40/replica > target 10: 1 → 4"},
			{2 * time.Second, load(30, 2*time.Second), 8, "inflight 30/replica > target 10: 4 → 8 (step limit; wants 12)"},
		})
	})
	t.Run("stabilization never scales up", func(t *testing.T) {
		// A manual scale-down to 2 while 6 is still in the window.
		var history []Recommendation
		_, history = Decide(6, Metrics{Ready: 6, Routed: true, LastRequest: t0, Inflight: all(10, 6)}, p, history, t0)
		d, _ := Decide(2, Metrics{Ready: 2, Routed: true, LastRequest: t0, Inflight: all(4, 2)}, p, history, t0.Add(5*time.Second))
		if d.Replicas != 2 {
			t.Errorf("after a manual scale-down: %d replicas (%s), want 2", d.Replicas, d.Reason)
		}
	})
}

func TestDecideScaleToZero(t *testing.T) {
	p := policy(0, 8, 10, 0, 0)
	t.Run("idle at once", func(t *testing.T) {
		runSteps(t, p, 2, []step{
			{0, load(10, 0), 2, "inflight 10/replica ≈ target 10: stay at 2"},
			{5 * time.Second, load(0, 0), 2, "inflight 0/replica < target 10: stay at 2 (highest recommendation within 30s; wants 0)"},
			{29 * time.Second, load(0, 0), 2, "inflight 0/replica < target 10: stay at 2 (highest recommendation within 30s; wants 0)"},
			// Idleness is its own window: no stabilization on top.
			{30 * time.Second, load(0, 0), 0, "no request for 30s: 2 → 0"},
		})
	})
	t.Run("down to one while requests trickle, then to zero and back", func(t *testing.T) {
		runSteps(t, p, 2, []step{
			{0, load(10, 0), 2, "inflight 10/replica ≈ target 10: stay at 2"},
			{10 * time.Second, load(0, 10*time.Second), 2, "inflight 0/replica < target 10: stay at 2 (highest recommendation within 30s; wants 0)"},
			{31 * time.Second, load(0, 10*time.Second), 1, "inflight 0/replica < target 10: 2 → 1 (zero after 30s without requests; wants 0)"},
			{39 * time.Second, load(0, 10*time.Second), 1, "inflight 0/replica < target 10: stay at 1 (zero after 30s without requests; wants 0)"},
			{40 * time.Second, load(0, 10*time.Second), 0, "no request for 30s: 1 → 0"},
			{45 * time.Second, Metrics{Routed: true, LastRequest: t0.Add(10 * time.Second)}, 0, "no request: stay at 0"},
			{50 * time.Second, Metrics{Routed: true, Pending: 1, LastRequest: t0.Add(50 * time.Second)}, 1, "1 pending request: 0 → 1"},
			// The woken replica is starting; the request waits for it.
			{51 * time.Second, Metrics{NotReady: 1, Routed: true, Pending: 1, LastRequest: t0.Add(51 * time.Second)}, 1, "no metrics: stay at 1"},
			{52 * time.Second, load(1, 52*time.Second), 1, "inflight 1/replica < target 10: stay at 1"},
		})
	})
}

func TestDecideHistory(t *testing.T) {
	p := policy(1, 20, 10, 0, 0)
	history := []Recommendation{
		{At: t0.Add(-40 * time.Second), Replicas: 9},
		{At: t0.Add(-30 * time.Second), Replicas: 8},
		{At: t0.Add(-29 * time.Second), Replicas: 7},
	}
	before := slices.Clone(history)
	d, got := Decide(4, Metrics{Ready: 4, Routed: true, LastRequest: t0, Inflight: all(5, 4)}, p, history, t0)
	want := []Recommendation{
		{At: t0.Add(-29 * time.Second), Replicas: 7},
		{At: t0, Replicas: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, history); diff != "" {
		t.Errorf("Decide modified its input history (-before +after):\n%s", diff)
	}
	// Stabilization never raises the count: 7 in the window keeps 4.
	if d.Replicas != 4 {
		t.Errorf("Decide = %d (%s), want 4", d.Replicas, d.Reason)
	}

	// The window is the policy's; zero means the default of 30s.
	for _, tt := range []struct {
		window cellspec.Duration
		kept   int
	}{
		{cellspec.Duration(10 * time.Second), 1},
		{0, 2},
		{cellspec.Duration(time.Minute), 4},
	} {
		q := *p
		q.ScaleDownAfter = tt.window
		_, got = Decide(4, Metrics{Ready: 4, Routed: true, LastRequest: t0, Inflight: all(5, 4)}, &q, history, t0)
		if len(got) != tt.kept {
			t.Errorf("window %s: the history keeps %d recommendations, want %d: %v", tt.window, len(got), tt.kept, got)
		}
	}
}

func TestMetricHelpers(t *testing.T) {
	tests := []struct {
		name string
		got  Metric
		want Metric
	}{
		{"per replica", PerReplica(30, 3), Metric{Value: 10, Samples: 3}},
		{"per replica without replicas", PerReplica(30, 0), Metric{}},
		{"average", Average(10, math.NaN(), 30), Metric{Value: 20, Samples: 2}},
		{"average of nothing", Average(math.NaN()), Metric{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 0.004: "0", 0.125: "0.13", 1: "1", 23.46: "23.5", 99.99: "100", 123.4: "123", 1500: "1500",
	} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}
