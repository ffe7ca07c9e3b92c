package autoscale

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// Tolerance is the relative band around a target inside which a metric
// asks for no change, so that noise does not make the replica count flap.
// It is the Kubernetes HPA's default.
const Tolerance = 0.1

// Metric names, as reported in api.Target and in decision reasons.
const (
	MetricInflight = "inflight"
	MetricRPS      = "rps"
	MetricCPU      = "cpu"
)

// Metric is one measurement of a service, averaged per replica over the
// ready replicas that reported it.
type Metric struct {
	// Value is the average per reporting replica: requests in flight,
	// requests per second, or CPU percent of one core.
	Value float64
	// Samples is how many ready replicas reported the metric. Zero means
	// the metric is missing, and Decide skips it. Ready replicas that did
	// not report (a container whose stats have not arrived yet) count
	// conservatively, as described on Decide.
	Samples int
}

// valid reports whether the metric has a usable value.
func (m Metric) valid() bool {
	return m.Samples > 0 && !math.IsNaN(m.Value) && !math.IsInf(m.Value, 0) && m.Value >= 0
}

// PerReplica spreads a service-wide total, such as the requests per second
// the gateway counted for a service, over its ready replicas. With no ready
// replica the metric is missing.
func PerReplica(total float64, ready int) Metric {
	if ready <= 0 || math.IsNaN(total) {
		return Metric{}
	}
	return Metric{Value: total / float64(ready), Samples: ready}
}

// Average is the Metric of per-replica values, such as each ready
// container's CPU percent. NaN values are replicas without a sample; they
// are left out of the average and of Samples.
func Average(values ...float64) Metric {
	var sum float64
	var n int
	for _, v := range values {
		if math.IsNaN(v) {
			continue
		}
		sum += v
		n++
	}
	if n == 0 {
		return Metric{}
	}
	return Metric{Value: sum / float64(n), Samples: n}
}

// Metrics is what Decide knows about one service at one moment.
type Metrics struct {
	// Ready counts the replicas in rotation: running, healthy and
	// receiving traffic. The metrics below are averages over them.
	Ready int
	// NotReady counts the replicas that exist but are not in rotation
	// yet, typically still starting. Their samples, if any, must not be
	// part of the metrics: a starting process is busier than it will be.
	NotReady int

	Inflight Metric
	RPS      Metric
	CPU      Metric

	// Routed reports that the gateway routes requests to the service, so
	// it sees every request and can wake the service from zero. Scaling
	// to zero needs it: without it a service at zero could never come
	// back.
	Routed bool
	// Pending counts requests waiting at the gateway for a replica, the
	// wake signal of a service at zero.
	Pending int
	// LastRequest is the last time a request arrived for the service or
	// was still in flight. A gateway that has seen none should pass the
	// time it started, so that a service is not taken to zero before it
	// had a window's chance to be used; the zero time means the service
	// has been idle for ever.
	LastRequest time.Time
}

// Recommendation is one raw decision, before stabilization and bounds,
// kept so that later decisions can look back over the scale-down window.
type Recommendation struct {
	At       time.Time
	Replicas int
}

// Decision is the outcome of Decide.
type Decision struct {
	// Replicas is the count the service should run.
	Replicas int
	// Reason explains the decision in one line, for events and the
	// dashboard, for example "inflight 23.5/replica > target 10: 3 → 6".
	Reason string
	// Targets lists every metric the policy targets that had a value,
	// against its target, in the order inflight, rps, cpu.
	Targets []api.Target
}

// Decide computes the replica count of a service from its current count,
// its metrics, its autoscale policy and the recommendations of earlier
// calls. It is a pure function: the caller passes the time and keeps the
// returned history, which holds the recommendations still inside the
// scale-down window plus the new one, for the next call. history is not
// modified. A nil policy keeps the current count.
//
// An empty history lets a scale-down happen at once, so a controller that
// starts (or restarts) seeds it with {now, current}; a manual scale that
// should hold for a window is recorded the same way.
//
// The rules follow the Kubernetes Horizontal Pod Autoscaler:
//
//   - Per metric with a target and a value, the desired count is
//     ceil(replicas × value / target), and the largest desired count
//     wins. A metric with no samples is skipped; with none at all the
//     count stays.
//   - A metric within Tolerance of its target (|value/target − 1| ≤ 0.1)
//     asks for the current count.
//   - Replicas that are not ready, and ready replicas that did not
//     report the metric, count conservatively: as using nothing when the
//     ready ones ask for more (so a starting replica is not counted as
//     loaded), and as exactly at target when the ready ones ask for less
//     (so they do not cause a scale-down). If filling them in brings the
//     metric within tolerance, or turns it to the other side of its
//     target, the count stays.
//   - Scale-up happens at once but by at most max(double, +4) per call,
//     HPA's default scale-up policy.
//   - Scale-down only goes as low as the highest recommendation made
//     within the policy's scale_down_after (a zero value means
//     cellspec.DefaultScaleDownAfter), so a short dip does not remove
//     replicas that are needed again a moment later.
//   - The result is kept within [min, max].
//
// Scale to zero: with min 0, a routed service that has had no request
// (and none pending) for scale_down_after goes to 0 at once; until then,
// and always for a service that is not routed, it keeps at least one
// replica. At zero, any pending request wakes it to one replica (or min,
// if that is higher); the metrics take over from there.
func Decide(current int, m Metrics, p *cellspec.Autoscale, history []Recommendation, now time.Time) (Decision, []Recommendation) {
	current = max(current, 0)
	if p == nil {
		return Decision{Replicas: current, Reason: fmt.Sprintf("autoscaling is off: stay at %d", current)}, nil
	}
	window := p.ScaleDownAfter.D()
	if window <= 0 {
		window = cellspec.DefaultScaleDownAfter.D()
	}
	lo := max(p.Min, 0)
	hi := max(p.Max, lo)
	targets := targetsOf(m, p)

	hist := make([]Recommendation, 0, len(history)+1)
	cutoff := now.Add(-window)
	for _, r := range history {
		if r.At.After(cutoff) {
			hist = append(hist, r)
		}
	}
	record := func(n int) []Recommendation { return append(hist, Recommendation{At: now, Replicas: n}) }
	decide := func(n int, reason string) (Decision, []Recommendation) {
		return Decision{Replicas: n, Reason: reason, Targets: targets}, record(n)
	}

	if current == 0 {
		switch {
		case m.Pending > 0 && hi > 0:
			n := max(lo, 1)
			return decide(n, fmt.Sprintf("%s: 0 → %d", pendingText(m.Pending), n))
		case lo > 0:
			return decide(lo, fmt.Sprintf("below min %d: 0 → %d", lo, lo))
		}
		return decide(0, "no request: stay at 0")
	}
	if lo == 0 && m.Routed && m.Pending == 0 && now.Sub(m.LastRequest) >= window {
		return decide(0, fmt.Sprintf("no request for %s: %d → 0", window, current))
	}

	// Raw recommendation: the largest demand of any metric.
	var best *proposal
	for _, c := range candidates(m, p) {
		pr, ok := propose(current, m.Ready, m.NotReady, c.name, c.metric, c.target)
		if ok && (best == nil || pr.replicas > best.replicas) {
			best = &pr
		}
	}
	raw := current
	if best != nil {
		raw = best.replicas
	}
	hist = record(raw)

	// Stabilization: up at once, down no lower than the highest
	// recommendation inside the window (which includes raw).
	var notes []string
	want := max(current, raw)
	highest := raw
	for _, r := range hist {
		highest = max(highest, r.Replicas)
	}
	want = min(want, highest)
	if raw < current && want > raw {
		notes = append(notes, "highest recommendation within "+window.String())
	}
	// Step limit on the way up.
	if want > current {
		if limit := max(2*current, current+4); want > limit {
			want = limit
			notes = append(notes, "step limit")
		}
	}
	// Bounds. While running, a service keeps one replica even with min 0:
	// only idleness, handled above, takes it to zero.
	floor := max(lo, 1)
	switch {
	case want > hi:
		want = hi
		notes = append(notes, fmt.Sprintf("max %d", hi))
	case want < floor:
		want = floor
		if lo == 0 && m.Routed {
			notes = append(notes, fmt.Sprintf("zero after %s without requests", window))
		} else {
			notes = append(notes, fmt.Sprintf("min %d", floor))
		}
	}
	if want != raw && raw != current {
		notes = append(notes, fmt.Sprintf("wants %d", raw))
	}

	var b strings.Builder
	if best != nil {
		b.WriteString(best.String())
	} else {
		b.WriteString("no metrics")
	}
	if want == current {
		fmt.Fprintf(&b, ": stay at %d", current)
	} else {
		fmt.Fprintf(&b, ": %d → %d", current, want)
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, "; "))
	}
	return Decision{Replicas: want, Reason: b.String(), Targets: targets}, hist
}

// proposal is one metric's desired replica count.
type proposal struct {
	metric        string
	value, target float64
	replicas      int
}

// propose applies the HPA formula to one metric. It reports false when the
// metric has no target or no usable value.
func propose(current, ready, notReady int, name string, met Metric, target float64) (proposal, bool) {
	n := min(met.Samples, ready)
	if target <= 0 || n <= 0 || !met.valid() {
		return proposal{}, false
	}
	pr := proposal{metric: name, value: met.Value, target: target, replicas: current}
	ratio := met.Value / target
	others := ready - n + max(notReady, 0)
	if others == 0 {
		if !within(ratio) {
			pr.replicas = ceil(ratio * float64(n))
		}
		return pr, true
	}
	// Fill in the replicas without a sample on the side that slows the
	// change down: nothing when scaling up, the target when scaling down.
	fill := 0.0
	if ratio < 1 {
		fill = target
	}
	all := float64(n + others)
	filled := (met.Value*float64(n) + fill*float64(others)) / (target * all)
	if within(filled) || (ratio < 1) != (filled < 1) {
		return pr, true
	}
	pr.replicas = ceil(filled * all)
	return pr, true
}

// String describes the metric against its target, for example
// "cpu 85%/replica > target 70%".
func (p proposal) String() string {
	op := "≈"
	if r := p.value / p.target; !within(r) {
		op = "<"
		if r > 1 {
			op = ">"
		}
	}
	unit := ""
	if p.metric == MetricCPU {
		unit = "%"
	}
	return fmt.Sprintf("%s %s%s/replica %s target %s%s", p.metric, num(p.value), unit, op, num(p.target), unit)
}

// within reports whether a usage ratio is inside the tolerance band. The
// small slack keeps ratios such as 11/10, which floating point makes a hair
// larger than 1.1, on the side a reader expects.
func within(ratio float64) bool { return math.Abs(ratio-1) <= Tolerance+1e-9 }

// ceil rounds up, ignoring floating-point dust, so that 3 × (2/3) asks for
// 2 replicas and not 3.
func ceil(x float64) int { return int(math.Ceil(x - 1e-9)) }

// num formats a metric value for a reason: whole numbers from 100, one
// decimal from 1, two below.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		v = math.Round(v)
	case a >= 1:
		v = math.Round(v*10) / 10
	default:
		v = math.Round(v*100) / 100
	}
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func pendingText(n int) string {
	if n == 1 {
		return "1 pending request"
	}
	return fmt.Sprintf("%d pending requests", n)
}

// targetsOf lists the targeted metrics that have a value.
func targetsOf(m Metrics, p *cellspec.Autoscale) []api.Target {
	var out []api.Target
	for _, c := range candidates(m, p) {
		if c.target > 0 && c.metric.valid() && m.Ready > 0 {
			out = append(out, api.Target{Metric: c.name, Value: c.metric.Value, Target: c.target})
		}
	}
	return out
}

// candidate pairs a metric with its target.
type candidate struct {
	name   string
	metric Metric
	target float64
}

// candidates lists the metrics in the fixed order inflight, rps, cpu, which
// also breaks ties between equal demands.
func candidates(m Metrics, p *cellspec.Autoscale) []candidate {
	return []candidate{
		{MetricInflight, m.Inflight, p.Inflight},
		{MetricRPS, m.RPS, p.RPS},
		{MetricCPU, m.CPU, p.CPU},
	}
}
