package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPairRatios(t *testing.T) {
	rps := func(v ...float64) []sample {
		out := make([]sample, len(v))
		for i, x := range v {
			out[i].RPS = x
		}
		return out
	}
	got := pairRatios(rps(50, 60, 30, 0), rps(100, 100, 0, 100), func(s sample) float64 { return s.RPS })
	// A round where either side measured nothing has no ratio.
	if diff := cmp.Diff([]float64{0.5, 0.6}, got); diff != "" {
		t.Errorf("pairRatios mismatch (-want +got):\n%s", diff)
	}
}

func TestRotate(t *testing.T) {
	ts := []*target{{name: "a"}, {name: "b"}, {name: "c"}}
	names := func(ts []*target) string {
		var s []string
		for _, t := range ts {
			s = append(s, t.name)
		}
		return strings.Join(s, ",")
	}
	for round, want := range []string{"a,b,c", "b,c,a", "c,a,b", "a,b,c"} {
		if got := names(rotate(ts, round)); got != want {
			t.Errorf("rotate(round %d) = %s, want %s", round, got, want)
		}
	}
}

func TestFmtDur(t *testing.T) {
	tests := map[time.Duration]string{
		635 * time.Microsecond:   "635µs",
		1060 * time.Microsecond:  "1.06ms",
		24100 * time.Microsecond: "24.1ms",
		1200 * time.Millisecond:  "1.20s",
	}
	for in, want := range tests {
		if got := fmtDur(in); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestReportBar(t *testing.T) {
	o := options{rounds: 2, duration: time.Second, threads: 2, conns: []int{64}, log: logOn, gogc: 400}
	r := newReport(o, machineInfo{cpus: 2}, []*target{{name: targetNginx}, {name: targetGateway}})
	for _, v := range []struct {
		target   string
		rps      float64
		p99      time.Duration
		requests int64
	}{
		{targetNginx, 1000, 10 * time.Millisecond, 1000},
		{targetNginx, 1000, 10 * time.Millisecond, 1000},
		{targetGateway, 800, 12 * time.Millisecond, 800},
		{targetGateway, 500, 20 * time.Millisecond, 500},
	} {
		r.add(v.target, 0, sample{wrkResult: wrkResult{RPS: v.rps, P99: v.p99, Requests: v.requests}, cpu: -1})
	}
	var b strings.Builder
	r.write(&b)
	out := b.String()
	for _, want := range []string{
		"gateway/nginx  req/s 0.65 [0.50 – 0.80]",
		"p99 1.60 [1.20 – 2.00]",
		"bar at 64 connections: gateway req/s ≥ 0.60× nginx: 0.65, met; gateway p99 ≤ 1.5× nginx: 1.60, NOT met",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q; got:\n%s", want, out)
		}
	}
}
