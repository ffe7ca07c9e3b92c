package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The bar the gateway is held to at barConns connections, against nginx.
const (
	barConns  = 64
	barMinRPS = 0.60 // gateway req/s at least this fraction of nginx's
	barMaxP99 = 1.5  // gateway p99 at most this multiple of nginx's
	mib       = 1 << 20
)

// report collects a run's samples and prints them.
type report struct {
	opts    options
	info    machineInfo
	targets []string
	// samples holds, by target, then by index into opts.conns, one
	// sample per round.
	samples map[string][][]sample
	// rss holds each gateway's peak RSS after each round, in bytes.
	rss map[string][]int64
	// gomaxprocs is the gateway's GOMAXPROCS.
	gomaxprocs int
}

func newReport(o options, info machineInfo, targets []*target) *report {
	r := &report{opts: o, info: info, samples: map[string][][]sample{}, rss: map[string][]int64{}}
	for _, t := range targets {
		r.targets = append(r.targets, t.name)
		r.samples[t.name] = make([][]sample, len(o.conns))
		r.gomaxprocs = max(r.gomaxprocs, t.gomaxprocs)
	}
	return r
}

func (r *report) add(target string, connsIdx int, s sample) {
	r.samples[target][connsIdx] = append(r.samples[target][connsIdx], s)
}

func (r *report) addRSS(target string, rss int64) { r.rss[target] = append(r.rss[target], rss) }

func (r *report) has(target string) bool { return slices.Contains(r.targets, target) }

// ratioPairs are the paired comparisons printed when both targets ran.
var ratioPairs = [][2]string{
	{targetGateway, targetNginx},
	{targetGateway, targetDirect},
	{targetHAProxy, targetNginx},
	{targetGatewayNoLog, targetNginx},
	{targetGatewayNoLog, targetGateway},
	{targetGatewayNetHTTP, targetNginx},
	{targetGateway, targetGatewayNetHTTP},
}

func (r *report) write(w io.Writer) {
	o, in := r.opts, r.info
	fmt.Fprintf(w, "orchestro-bench: %d rounds × %s per measurement, wrk -t%d --latency, target order rotated each round\n",
		o.rounds, o.duration, o.threads)
	fmt.Fprintf(w, "machine   %d CPUs, Linux %s, %s; 1-minute load average %s at start, %s at end\n",
		in.cpus, orNA(in.kernel), in.goVersion, orNA(in.loadStart), orNA(in.loadEnd))
	if r.has(targetNginx) {
		fmt.Fprintf(w, "nginx     %s: worker_processes auto, round robin, upstream keepalive %d, HTTP/1.1 upstream, access_log off\n", in.nginx, nginxKeepalive)
	}
	if r.has(targetHAProxy) {
		fmt.Fprintf(w, "haproxy   %s: nbthread %d, balance roundrobin, http-reuse always, no logging\n", in.haproxy, haproxyThreads)
	}
	fmt.Fprintf(w, "wrk       %s\n", in.wrk)
	if r.has(targetGateway) {
		logDesc := "access log: JSON lines to a file"
		switch o.log {
		case logOff:
			logDesc = "access log discarded (-log=off)"
		case logBoth:
			logDesc = "access log: JSON lines to a file (gateway), discarded (gateway-nolog)"
		}
		fmt.Fprintf(w, "gateway   gateway.NewDataPlane on proxy.Server (gateway-nethttp: on a plain http.Server), round_robin over %d replicas, GOGC=%d, GOMAXPROCS=%d; %s\n",
			numBackends, o.gogc, r.gomaxprocs, logDesc)
	}
	fmt.Fprintf(w, "backends  %d net/http servers in one child process, %d-byte body; direct = wrk straight to replica 1\n",
		numBackends, bodySize)

	for ci, conns := range o.conns {
		fmt.Fprintf(w, "\n%d connections (median of %d rounds; req/s range in brackets)\n", conns, o.rounds)
		fmt.Fprintf(w, "  %-14s %8s  %-17s %8s %8s  %13s  %6s\n", "target", "req/s", "[min – max]", "p50", "p99", "proxy CPU/req", "errors")
		for _, name := range r.targets {
			ss := r.samples[name][ci]
			rps := collect(ss, func(s sample) float64 { return s.RPS })
			var errs int64
			for _, s := range ss {
				errs += s.errors()
			}
			fmt.Fprintf(w, "  %-14s %8.0f  %-17s %8s %8s  %13s  %6d\n", name, median(rps),
				fmt.Sprintf("[%.0f – %.0f]", slices.Min(rps), slices.Max(rps)),
				fmtDur(medianDur(ss, func(s sample) time.Duration { return s.P50 })),
				fmtDur(medianDur(ss, func(s sample) time.Duration { return s.P99 })),
				cpuPerRequest(ss), errs)
		}

		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		header := false
		for _, p := range ratioPairs {
			if !r.has(p[0]) || !r.has(p[1]) {
				continue
			}
			if !header {
				fmt.Fprintf(w, "\n  ratios, paired within each round: median [min – max]\n")
				header = true
			}
			a, b := r.samples[p[0]][ci], r.samples[p[1]][ci]
			rps := pairRatios(a, b, func(s sample) float64 { return s.RPS })
			p50 := pairRatios(a, b, func(s sample) float64 { return float64(s.P50) })
			p99 := pairRatios(a, b, func(s sample) float64 { return float64(s.P99) })
			line := fmt.Sprintf("  %s/%s\treq/s %s\tp50 %s\tp99 %s", p[0], p[1], fmtRange(rps), fmtRange(p50), fmtRange(p99))
			if cpu := pairRatios(a, b, cpuPerReq); len(cpu) > 0 {
				line += "\tCPU/req " + fmtRange(cpu)
			}
			fmt.Fprintln(tw, line)
		}
		_ = tw.Flush()

		if r.has(targetFlow) {
			r.writeFlow(w, ci)
		}
		if r.has(targetFlow) && r.has(targetFlowJournal) {
			r.writeJournal(w, ci)
		}
		for _, name := range []string{targetGateway, targetGatewayNoLog, targetGatewayNetHTTP, targetFlow} {
			if r.has(name) {
				r.writeGatewayCosts(w, name, r.samples[name][ci])
			}
		}
	}

	fmt.Fprintln(w)
	for _, name := range []string{targetGateway, targetGatewayNoLog, targetGatewayNetHTTP, targetFlow, targetFlowJournal} {
		if rss := r.rss[name]; len(rss) > 0 {
			parts := make([]string, len(rss))
			for i, v := range rss {
				parts[i] = fmt.Sprintf("%.1f", float64(v)/mib)
			}
			fmt.Fprintf(w, "%s peak RSS (VmHWM) after each round: %s MiB\n", name, strings.Join(parts, " / "))
		}
	}
	r.writeBar(w)
}

// writeGatewayCosts prints what one request cost the gateway process, from
// its own counters.
func (r *report) writeGatewayCosts(w io.Writer, name string, ss []sample) {
	var allocs, bytes, logBytes, perGC []float64
	var dropped uint64
	for _, s := range ss {
		if s.gw == nil || s.Requests == 0 {
			continue
		}
		n := float64(s.Requests)
		allocs = append(allocs, float64(s.gw.mallocs)/n)
		bytes = append(bytes, float64(s.gw.allocBytes)/n)
		logBytes = append(logBytes, float64(s.gw.logBytes)/n)
		if s.gw.gcs > 0 {
			perGC = append(perGC, n/float64(s.gw.gcs))
		}
		dropped += s.gw.dropped
	}
	if len(allocs) == 0 {
		return
	}
	gc := "no GC cycle"
	if len(perGC) > 0 {
		gc = fmt.Sprintf("one GC cycle per %.0f requests", median(perGC))
	}
	fmt.Fprintf(w, "\n  %s per request (median of rounds): %.1f allocations, %.0f bytes allocated, %s", name, median(allocs), median(bytes), gc)
	if lb := median(logBytes); lb > 0 {
		fmt.Fprintf(w, ", %.0f bytes of access log", lb)
	}
	fmt.Fprintf(w, "; access-log records dropped: %d\n", dropped)
}

// Goal of the flow target: the calls flows make per second, against the
// requests per second the plain gateway forwards.
const flowGoal = 0.8

// writeFlow prints the flow target's executions and the calls they make
// per second against the plain gateway's requests per second, paired
// within each round.
func (r *report) writeFlow(w io.Writer, ci int) {
	ss := r.samples[targetFlow][ci]
	exec := median(collect(ss, func(s sample) float64 { return s.RPS }))
	fmt.Fprintf(w, "\n  flow: %.0f executions/s (%d calls each: %.0f calls/s), p50 %s, p99 %s\n", exec, benchFlowCalls, exec*benchFlowCalls,
		fmtDur(medianDur(ss, func(s sample) time.Duration { return s.P50 })),
		fmtDur(medianDur(ss, func(s sample) time.Duration { return s.P99 })))
	if !r.has(targetGateway) {
		return
	}
	calls := pairRatios(ss, r.samples[targetGateway][ci], func(s sample) float64 { return s.RPS })
	for i := range calls {
		calls[i] *= benchFlowCalls
	}
	fmt.Fprintf(w, "  flow calls/s / gateway req/s: %s (goal ≥ %.1f: %s)\n", fmtRange(calls), flowGoal, met(median(calls) >= flowGoal))
}

// Goals of the journal: what it may cost the flow target. Each is judged
// where it measures what it names. The share of executions/s lost is the
// journal's cost in capacity: judged from journalRPSConns connections on,
// where wrk keeps the machine busy. Below that, each connection waits for
// its execution's commits before it sends the next one, so executions/s
// follow latency rather than capacity. What the journal adds to p50 is
// the time an execution waits for its commits: judged at one connection,
// where nothing queues; at many connections a busy machine's p50 is
// connections ÷ executions/s (Little's law), the capacity loss again.
const (
	journalMaxRPSLoss = 0.20
	journalRPSConns   = 64
	journalMaxP50     = time.Millisecond
	journalP50Conns   = 1
)

// writeJournal prints the flow with its executions journaled against the
// same flow without, paired within each round: the loss of executions/s
// and what the journal adds to p50 and p99, with the goal that holds at
// this connection count.
func (r *report) writeJournal(w io.Writer, ci int) {
	a, b := r.samples[targetFlowJournal][ci], r.samples[targetFlow][ci]
	exec := median(collect(a, func(s sample) float64 { return s.RPS }))
	fmt.Fprintf(w, "\n  flow-journal: %.0f executions/s, p50 %s, p99 %s\n", exec,
		fmtDur(medianDur(a, func(s sample) time.Duration { return s.P50 })),
		fmtDur(medianDur(a, func(s sample) time.Duration { return s.P99 })))
	loss := pairRatios(a, b, func(s sample) float64 { return s.RPS })
	for i := range loss {
		loss[i] = 1 - loss[i]
	}
	var addP50, addP99 []float64
	for i := range min(len(a), len(b)) {
		addP50 = append(addP50, float64(a[i].P50-b[i].P50)/float64(time.Millisecond))
		addP99 = append(addP99, float64(a[i].P99-b[i].P99)/float64(time.Millisecond))
	}
	p50 := time.Duration(median(addP50) * float64(time.Millisecond))
	conns := r.opts.conns[ci]
	lossGoal := fmt.Sprintf("not judged below %d connections", journalRPSConns)
	p50Goal := fmt.Sprintf("judged at %d connection", journalP50Conns)
	if conns >= journalRPSConns {
		lossGoal = fmt.Sprintf("goal ≤ %.2f: %s", journalMaxRPSLoss, met(median(loss) <= journalMaxRPSLoss))
	}
	if conns == journalP50Conns {
		p50Goal = fmt.Sprintf("goal ≤ %s: %s", journalMaxP50, met(p50 <= journalMaxP50))
	}
	fmt.Fprintf(w, "  journal cost: share of executions/s lost %s (%s), p50 +%s ms (%s), p99 +%s ms\n",
		fmtRange(loss), lossGoal, fmtRange(addP50), p50Goal, fmtRange(addP99))
	var perExec, perCommit []float64
	for _, s := range a {
		if s.gw != nil && s.gw.commits > 0 && s.Requests > 0 {
			perExec = append(perExec, float64(s.gw.commits)/float64(s.Requests))
			perCommit = append(perCommit, float64(s.gw.records)/float64(s.gw.commits))
		}
	}
	if len(perExec) > 0 {
		fmt.Fprintf(w, "  journal commits (median of rounds): %.2f a execution, %.1f records each\n", median(perExec), median(perCommit))
	}
}

// writeBar compares the gateway with nginx at barConns connections
// against the bar it is held to.
func (r *report) writeBar(w io.Writer) {
	ci := slices.Index(r.opts.conns, barConns)
	if ci < 0 || !r.has(targetGateway) || !r.has(targetNginx) {
		return
	}
	a, b := r.samples[targetGateway][ci], r.samples[targetNginx][ci]
	rps := median(pairRatios(a, b, func(s sample) float64 { return s.RPS }))
	p99 := median(pairRatios(a, b, func(s sample) float64 { return float64(s.P99) }))
	fmt.Fprintf(w, "bar at %d connections: gateway req/s ≥ %.2f× nginx: %.2f, %s; gateway p99 ≤ %.1f× nginx: %.2f, %s\n",
		barConns, barMinRPS, rps, met(rps >= barMinRPS), barMaxP99, p99, met(p99 <= barMaxP99))
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// pairRatios divides a's value by b's round by round, skipping rounds
// where either was not measured.
func pairRatios(a, b []sample, v func(sample) float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if d := v(b[i]); d > 0 && v(a[i]) > 0 {
			out = append(out, v(a[i])/d)
		}
	}
	return out
}

// cpuPerReq is a sample's proxy CPU time per request in nanoseconds, or 0
// when not measured (so pairRatios skips it as a divisor).
func cpuPerReq(s sample) float64 {
	if s.cpu < 0 || s.Requests == 0 {
		return 0
	}
	return float64(s.cpu) / float64(s.Requests)
}

// cpuPerRequest is the median over rounds of the proxy's CPU time per
// request, or "-" when not measured.
func cpuPerRequest(ss []sample) string {
	var v []float64
	for _, s := range ss {
		if c := cpuPerReq(s); c > 0 {
			v = append(v, c)
		}
	}
	if len(v) == 0 {
		return "-"
	}
	return fmtDur(time.Duration(median(v)))
}

func collect(ss []sample, v func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = v(s)
	}
	return out
}

func medianDur(ss []sample, v func(sample) time.Duration) time.Duration {
	return time.Duration(median(collect(ss, func(s sample) float64 { return float64(v(s)) })))
}

// median returns the middle value, or the mean of the two middle ones; 0
// for no values.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func fmtRange(v []float64) string {
	if len(v) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f [%.2f – %.2f]", median(v), slices.Min(v), slices.Max(v))
}

// fmtDur prints a latency with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// errNote flags a measurement with failed requests in the progress lines.
func errNote(s sample) string {
	if n := s.errors(); n > 0 {
		return fmt.Sprintf("  (%d errors)", n)
	}
	return ""
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}
