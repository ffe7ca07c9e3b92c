package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// productReport is what a product run measured. Raw values are kept per
// round; the summaries (median and range over rounds, ratios paired
// within a round) are derived from them by summarize.
type productReport struct {
	Machine  productMachine  `json:"machine"`
	CLI      *cliReport      `json:"cli,omitempty"`
	Proxy    *proxyReport    `json:"proxy,omitempty"`
	Variants *variantsReport `json:"floor_variants,omitempty"`
}

// productMachine names the machine and what ran on it.
type productMachine struct {
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Docker    string `json:"docker_engine"`
	Orchestro string `json:"orchestro"`
	Compose   string `json:"compose"`
	Nginx     string `json:"nginx"`
	Wrk       string `json:"wrk"`
	LoadStart string `json:"load_average_start"`
	LoadEnd   string `json:"load_average_end"`
}

// stat is the median and range of a value over rounds.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// summarizeValues is the stat of v, or nil when there is no value.
func summarizeValues(v []float64) *stat {
	if len(v) == 0 {
		return nil
	}
	return &stat{Median: median(v), Min: slices.Min(v), Max: slices.Max(v)}
}

// ratios divides a[i] by b[i], skipping rounds where either is not
// positive (not measured).
func ratios(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if a[i] > 0 && b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// busyShares is, for each round, the share of cpus that cpu seconds of
// busy time kept busy over wall seconds.
func busyShares(cpu, wall []float64, cpus int) []float64 {
	var out []float64
	for i := range min(len(cpu), len(wall)) {
		if wall[i] > 0 {
			out = append(out, cpu[i]/(wall[i]*float64(cpus)))
		}
	}
	return out
}

// cliReport is the CLI part: wall times of each step, per CLI and round.
type cliReport struct {
	Rounds int `json:"rounds"`
	// CPUs is how many CPUs the machine's busy time is spread over; 0
	// when it could not be read (no /proc).
	CPUs               int             `json:"cpus,omitempty"`
	OrchestroFootprint cliFootprint    `json:"orchestro_footprint"`
	ComposeFootprint   cliFootprint    `json:"compose_footprint"`
	Steps              []cliStepReport `json:"steps"`
	Floor              *floorReport    `json:"engine_floor,omitempty"`
}

// cliFootprint is what a project runs once up.
type cliFootprint struct {
	Containers int `json:"containers"`
	Replicas   int `json:"replicas"`
	Networks   int `json:"networks"`
}

// cliStepReport is one step: its commands, the wall time of each round,
// and their summaries.
type cliStepReport struct {
	Step             string    `json:"step"`
	Orchestro        string    `json:"orchestro_command"`
	Compose          string    `json:"compose_command"`
	OrchestroSeconds []float64 `json:"orchestro_seconds"`
	ComposeSeconds   []float64 `json:"compose_seconds"`
	OrchestroStat    *stat     `json:"orchestro,omitempty"`
	ComposeStat      *stat     `json:"compose,omitempty"`
	// Ratio is orchestro's time over compose's, paired within each round.
	Ratio *stat `json:"ratio_orchestro_compose,omitempty"`
	// The CPU time the whole machine spent busy while each command ran
	// (the CLI, the engine, the containers, anything else), per round.
	OrchestroCPUSeconds []float64 `json:"orchestro_machine_cpu_seconds,omitempty"`
	ComposeCPUSeconds   []float64 `json:"compose_machine_cpu_seconds,omitempty"`
	OrchestroCPUStat    *stat     `json:"orchestro_machine_cpu,omitempty"`
	ComposeCPUStat      *stat     `json:"compose_machine_cpu,omitempty"`
	// CPURatio is orchestro's machine CPU over compose's, paired within
	// each round.
	CPURatio *stat `json:"ratio_machine_cpu_orchestro_compose,omitempty"`
	// Busy is the share of the machine's CPUs each command kept busy
	// (machine CPU over wall time times CPUs), per CLI.
	OrchestroBusy *stat `json:"orchestro_busy,omitempty"`
	ComposeBusy   *stat `json:"compose_busy,omitempty"`
}

// proxyReport is the data-path part.
type proxyReport struct {
	Rounds          int      `json:"rounds"`
	DurationSeconds int      `json:"duration_seconds"`
	Connections     int      `json:"connections"`
	Threads         int      `json:"threads"`
	Replicas        []string `json:"replicas"`
	// Network is the cell network the replicas and gateway-direct's
	// address are on.
	Network string `json:"network"`
	// UserlandProxy is whether a docker-proxy process carries the
	// gateway's published port (false: the engine forwards it in the
	// kernel).
	UserlandProxy bool `json:"userland_proxy"`
	// AccessLog is the gateway's access_log setting: file, stdout or off.
	AccessLog      string            `json:"access_log"`
	NginxKeepalive int               `json:"nginx_upstream_keepalive"`
	Processes      map[string]string `json:"processes"`
	// Targets are the measurements of each target, in proxyTargets'
	// order.
	Targets []proxyTarget `json:"targets"`
	Summary *proxySummary `json:"summary,omitempty"`
}

// target returns the target named name, or an empty one.
func (p *proxyReport) target(name string) proxyTarget {
	for _, t := range p.Targets {
		if t.Name == name {
			return t
		}
	}
	return proxyTarget{Name: name}
}

// proxyTarget is one target's measurements.
type proxyTarget struct {
	Name string `json:"name"`
	// URL is what wrk loads.
	URL string `json:"url"`
	// PathProcesses are the process groups every request to the target
	// goes through (besides wrk and the replicas).
	PathProcesses []string     `json:"path_processes"`
	Rounds        []proxyRound `json:"rounds"`
}

// proxyRound is one wrk measurement of one proxy.
type proxyRound struct {
	Round    int     `json:"round"`
	RPS      float64 `json:"rps"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	// CPUSeconds is the CPU time each process group (cpuGroups) used
	// during the measurement; a group that could not be read is absent.
	CPUSeconds map[string]float64 `json:"cpu_seconds"`
}

// cpuPerRequestUS is a group's CPU time per request in µs, or 0 when not
// measured.
func (r proxyRound) cpuPerRequestUS(groups ...string) float64 {
	if r.Requests <= 0 {
		return 0
	}
	var total float64
	for _, g := range groups {
		v, ok := r.CPUSeconds[g]
		if !ok {
			return 0
		}
		total += v
	}
	return total * 1e6 / float64(r.Requests)
}

// proxySummary is what the report prints about the data path.
type proxySummary struct {
	// Targets summarizes each target over the rounds, by name.
	Targets map[string]*proxyTargetSummary `json:"targets"`
}

// proxyTargetSummary summarizes one target over the rounds.
type proxyTargetSummary struct {
	RPS    *stat `json:"rps"`
	P50Ms  *stat `json:"p50_ms"`
	P99Ms  *stat `json:"p99_ms"`
	Errors int64 `json:"errors"`
	// CPUPerRequestUS is each process group's CPU time per request
	// during this target's measurements, in µs.
	CPUPerRequestUS map[string]*stat `json:"cpu_per_request_us"`
	// PathCPUPerRequestUS is the CPU per request of the processes every
	// request to this target goes through (pathGroups): nginx's, or the
	// gateway's with the engine's on its way.
	PathCPUPerRequestUS *stat `json:"path_cpu_per_request_us"`
	// For the gateway targets only: EngineSharePct is dockerd and the
	// shim's CPU during the target's measurements, in percent of the
	// gateway's own; DockerProxySharePct is docker-proxy's, apart.
	EngineSharePct      *stat `json:"engine_cpu_percent_of_gateway,omitempty"`
	DockerProxySharePct *stat `json:"docker_proxy_cpu_percent_of_gateway,omitempty"`
	// VsNginx compares a gateway target with nginx, paired within each
	// round.
	VsNginx *proxyRatios `json:"vs_nginx,omitempty"`
}

// proxyRatios are a gateway target's figures over nginx's, paired within
// each round.
type proxyRatios struct {
	RPS *stat `json:"ratio_rps"`
	P50 *stat `json:"ratio_p50"`
	P99 *stat `json:"ratio_p99"`
	// CPU compares the gateway process's CPU per request with nginx's;
	// PathCPU the target's path (pathGroups) with nginx's.
	CPU     *stat `json:"ratio_cpu_per_request"`
	PathCPU *stat `json:"ratio_path_cpu_per_request"`
}

// pathGroups are the processes every request to a target goes through
// (besides wrk and the replicas): the published port adds docker-proxy to
// the gateway's, the container address does not.
func pathGroups(target string) []string {
	switch target {
	case proxyNginx:
		return []string{cpuNginx}
	case proxyGatewayDirect:
		return []string{cpuGateway, cpuShim, cpuDockerd}
	}
	return []string{cpuGateway, cpuShim, cpuDockerProxy, cpuDockerd}
}

// engineGroups are the engine's processes on the gateway's path that the
// goal bounds (engineGoalPct; dockerd copies the gateway's access log
// from its stdout), without docker-proxy, which only the published port
// goes through.
var engineGroups = []string{cpuShim, cpuDockerd}

func roundValues(rs []proxyRound, v func(proxyRound) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = v(r)
	}
	return out
}

func positive(v []float64) []float64 {
	return slices.DeleteFunc(slices.Clone(v), func(x float64) bool { return x <= 0 })
}

func summarizeTarget(t proxyTarget) *proxyTargetSummary {
	s := &proxyTargetSummary{
		RPS:             summarizeValues(roundValues(t.Rounds, func(r proxyRound) float64 { return r.RPS })),
		P50Ms:           summarizeValues(roundValues(t.Rounds, func(r proxyRound) float64 { return r.P50Ms })),
		P99Ms:           summarizeValues(roundValues(t.Rounds, func(r proxyRound) float64 { return r.P99Ms })),
		CPUPerRequestUS: map[string]*stat{},
	}
	for _, r := range t.Rounds {
		s.Errors += r.Errors
	}
	for _, g := range cpuGroups {
		var v []float64
		for _, r := range t.Rounds {
			if _, ok := r.CPUSeconds[g]; ok && r.Requests > 0 {
				v = append(v, r.cpuPerRequestUS(g))
			}
		}
		if st := summarizeValues(v); st != nil {
			s.CPUPerRequestUS[g] = st
		}
	}
	s.PathCPUPerRequestUS = summarizeValues(positive(roundValues(t.Rounds, func(r proxyRound) float64 {
		return r.cpuPerRequestUS(pathGroups(t.Name)...)
	})))
	return s
}

// sharePct is the CPU of groups in percent of the gateway's own, for
// each round where the gateway's was measured.
func sharePct(rs []proxyRound, groups ...string) []float64 {
	var out []float64
	for _, r := range rs {
		if own := r.CPUSeconds[cpuGateway]; own > 0 {
			var v float64
			for _, g := range groups {
				v += r.CPUSeconds[g]
			}
			out = append(out, 100*v/own)
		}
	}
	return out
}

// summarize derives the summaries from the rounds.
func (r *productReport) summarize() {
	if c := r.CLI; c != nil {
		for i := range c.Steps {
			st := &c.Steps[i]
			st.OrchestroStat = summarizeValues(st.OrchestroSeconds)
			st.ComposeStat = summarizeValues(st.ComposeSeconds)
			st.Ratio = summarizeValues(ratios(st.OrchestroSeconds, st.ComposeSeconds))
			if c.CPUs > 0 && len(st.OrchestroCPUSeconds) > 0 && len(st.ComposeCPUSeconds) > 0 {
				st.OrchestroCPUStat = summarizeValues(st.OrchestroCPUSeconds)
				st.ComposeCPUStat = summarizeValues(st.ComposeCPUSeconds)
				st.CPURatio = summarizeValues(ratios(st.OrchestroCPUSeconds, st.ComposeCPUSeconds))
				st.OrchestroBusy = summarizeValues(busyShares(st.OrchestroCPUSeconds, st.OrchestroSeconds, c.CPUs))
				st.ComposeBusy = summarizeValues(busyShares(st.ComposeCPUSeconds, st.ComposeSeconds, c.CPUs))
			}
		}
		if c.Floor != nil {
			c.Floor.summarize(c.Steps)
		}
	}
	if r.Variants != nil {
		r.Variants.summarize()
	}
	p := r.Proxy
	if p == nil {
		return
	}
	p.Summary = &proxySummary{Targets: map[string]*proxyTargetSummary{}}
	for _, t := range p.Targets {
		p.Summary.Targets[t.Name] = summarizeTarget(t)
	}
	n := p.target(proxyNginx).Rounds
	val := roundValues
	rps := func(r proxyRound) float64 { return r.RPS }
	p50 := func(r proxyRound) float64 { return r.P50Ms }
	p99 := func(r proxyRound) float64 { return r.P99Ms }
	gwCPU := func(r proxyRound) float64 { return r.cpuPerRequestUS(cpuGateway) }
	ngxCPU := func(r proxyRound) float64 { return r.cpuPerRequestUS(cpuNginx) }
	for _, name := range gatewayTargets {
		s := p.Summary.Targets[name]
		if s == nil {
			continue
		}
		g := p.target(name).Rounds
		path := func(r proxyRound) float64 { return r.cpuPerRequestUS(pathGroups(name)...) }
		s.EngineSharePct = summarizeValues(sharePct(g, engineGroups...))
		s.DockerProxySharePct = summarizeValues(sharePct(g, cpuDockerProxy))
		s.VsNginx = &proxyRatios{
			RPS:     summarizeValues(ratios(val(g, rps), val(n, rps))),
			P50:     summarizeValues(ratios(val(g, p50), val(n, p50))),
			P99:     summarizeValues(ratios(val(g, p99), val(n, p99))),
			CPU:     summarizeValues(ratios(val(g, gwCPU), val(n, ngxCPU))),
			PathCPU: summarizeValues(ratios(val(g, path), val(n, ngxCPU))),
		}
	}
}

// write prints the report as tables; summarize first.
func (r *productReport) write(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "orchestro-bench product: orchestro as users run it, against docker compose and nginx, on this machine's Docker engine\n")
	fmt.Fprintf(w, "machine    %d CPUs, Linux %s, %s; Docker Engine %s; 1-minute load average %s at start, %s at end\n",
		m.CPUs, orNA(m.Kernel), m.Go, orNA(m.Docker), orNA(m.LoadStart), orNA(m.LoadEnd))
	fmt.Fprintf(w, "orchestro  %s\n", orNA(m.Orchestro))
	if r.CLI != nil || r.Variants != nil {
		fmt.Fprintf(w, "compose    %s\n", orNA(m.Compose))
	}
	if r.Proxy != nil {
		fmt.Fprintf(w, "nginx      %s\n", orNA(m.Nginx))
		fmt.Fprintf(w, "wrk        %s\n", orNA(m.Wrk))
	}
	if r.CLI != nil {
		r.CLI.write(w)
	}
	if r.Proxy != nil {
		r.Proxy.write(w)
	}
	if r.Variants != nil {
		r.Variants.write(w)
	}
}

func (c *cliReport) write(w io.Writer) {
	fmt.Fprintf(w, "\nCLI: the same %d replicas (images present, no health checks), %s, who goes first alternating\n", productReplicas, plural(c.Rounds, "round"))
	fp := c.OrchestroFootprint
	fmt.Fprintf(w, "  orchestro  project %s: %d replicas in %d cells; %s (the replicas, a gateway per cell, the keeper), %s\n",
		productProject, fp.Replicas, len(productServices), plural(fp.Containers, "container"), plural(fp.Networks, "network"))
	fp = c.ComposeFootprint
	fmt.Fprintf(w, "  compose    project %s: %d replicas of %d services; %s, %s\n",
		productComposeProject, fp.Replicas, len(productServices), plural(fp.Containers, "container"), plural(fp.Networks, "network"))
	fmt.Fprintf(w, "  wall time of each command, median [min – max]; the ratio is paired within each round\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  step\torchestro\tdocker compose\torchestro/compose")
	for _, st := range c.Steps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", st.Step,
			fmtStat(st.OrchestroStat, fmtSeconds), fmtStat(st.ComposeStat, fmtSeconds), fmtStat(st.Ratio, fmtRatio))
	}
	_ = tw.Flush()
	var cmds []string
	for _, st := range c.Steps {
		if st.Step == "down" {
			cmds = append(cmds, st.Orchestro, st.Compose)
		}
	}
	if len(cmds) > 0 {
		fmt.Fprintf(w, "  (down is `%s` and `%s`)\n", cmds[0], cmds[1])
	}
	c.writeCPU(w)
	if c.Floor != nil {
		c.Floor.write(w)
	}
}

// writeCPU prints the machine's CPU over each step, when it was read.
func (c *cliReport) writeCPU(w io.Writer) {
	if c.CPUs == 0 || len(c.Steps) == 0 || c.Steps[0].CPURatio == nil {
		return
	}
	fmt.Fprintf(w, "\n  CPU the whole machine spent while each command ran (the CLI, the engine, the containers), median [min – max],\n")
	fmt.Fprintf(w, "  and how busy that kept its %s (median)\n\n", plural(c.CPUs, "CPU"))
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  step\torchestro\tbusy\tdocker compose\tbusy\torchestro/compose")
	for _, st := range c.Steps {
		if st.CPURatio == nil {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", st.Step,
			fmtStat(st.OrchestroCPUStat, fmtSeconds), fmtMedianShare(st.OrchestroBusy),
			fmtStat(st.ComposeCPUStat, fmtSeconds), fmtMedianShare(st.ComposeBusy), fmtStat(st.CPURatio, fmtRatio))
	}
	_ = tw.Flush()
}

// engineGoalPct is the goal the engine's share is checked against:
// dockerd and the shim's CPU while the gateway serves, under this percent
// of the gateway's own.
const engineGoalPct = 10

func (p *proxyReport) write(w io.Writer) {
	s := p.Summary
	if s == nil {
		return
	}
	sum := func(name string) *proxyTargetSummary {
		if t := s.Targets[name]; t != nil {
			return t
		}
		return &proxyTargetSummary{}
	}
	published := "its published port, through docker-proxy into the container"
	if !p.UserlandProxy {
		published = "its published port, forwarded by the kernel (no docker-proxy runs for it)"
	}
	fmt.Fprintf(w, "\nData path: the gateway container, at its published port and at its own address, against nginx on the host, in front of the same %d replica containers\n", len(p.Replicas))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  replicas\t%s (%s/%s, on network %s)\n", strings.Join(p.Replicas, " "), productProxyCell, productServices[0].service, p.Network)
	fmt.Fprintf(tw, "  %s\t%s: %s\n", proxyGateway, p.target(proxyGateway).URL, published)
	fmt.Fprintf(tw, "  %s\t%s: the container's own address on network %s, no docker-proxy\n", proxyGatewayDirect, p.target(proxyGatewayDirect).URL, p.Network)
	fmt.Fprintf(tw, "  %s\t%s: on the host, worker_processes auto, round robin, upstream keepalive %d, access_log off\n", proxyNginx, p.target(proxyNginx).URL, p.NginxKeepalive)
	_ = tw.Flush()
	fmt.Fprintf(w, "  %s is what users get on this engine by default (userland proxy); %s what they get with \"userland-proxy\": false (kernel forwarding), on equal footing with nginx\n",
		proxyGateway, proxyGatewayDirect)
	if p.AccessLog != "" {
		fmt.Fprintf(w, "  the gateway writes its access log with access_log: %s\n", p.AccessLog)
	}
	fmt.Fprintf(w, "  wrk -t%d -c%d, %s × %ds, each target going first in turn; median [min – max]\n\n", p.Threads, p.Connections, plural(p.Rounds, "round"), p.DurationSeconds)

	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  target\treq/s\tp50\tp99\terrors")
	for _, name := range proxyTargets {
		t := sum(name)
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\n", name, fmtStat(t.RPS, fmtRPS), fmtStat(t.P50Ms, fmtMs), fmtStat(t.P99Ms, fmtMs), t.Errors)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	header := "  CPU per request, µs (median of rounds)"
	for _, name := range proxyTargets {
		header += "\tduring " + name + "'s"
	}
	fmt.Fprintln(tw, header+"\tprocesses")
	labels := map[string]string{
		cpuGateway:     "gateway process, all threads",
		cpuShim:        "its containerd-shim",
		cpuDockerProxy: "docker-proxy of its port",
		cpuDockerd:     "dockerd",
		cpuNginx:       "nginx, master and workers",
		cpuReplicas:    "the replicas",
	}
	for _, g := range cpuGroups {
		line := "  " + labels[g]
		for _, name := range proxyTargets {
			line += "\t" + fmtMedian(sum(name).CPUPerRequestUS[g])
		}
		fmt.Fprintln(tw, line+"\t"+p.Processes[g])
	}
	line := "  path: what every request goes through"
	var paths []string
	for _, name := range proxyTargets {
		line += "\t" + fmtMedian(sum(name).PathCPUPerRequestUS)
		paths = append(paths, name+" = "+fmtGroups(p.target(name).PathProcesses))
	}
	fmt.Fprintln(tw, line+"\t(paths below)")
	_ = tw.Flush()
	fmt.Fprintf(w, "  (paths: %s)\n\n", strings.Join(paths, "; "))

	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  over nginx, paired within each round\treq/s\tp50\tp99\tCPU/request, gateway process\tCPU/request, path")
	for _, name := range gatewayTargets {
		v := sum(name).VsNginx
		if v == nil {
			v = &proxyRatios{}
		}
		fmt.Fprintf(tw, "  %s/%s\t%s\t%s\t%s\t%s\t%s\n", name, proxyNginx, fmtStat(v.RPS, fmtRatio), fmtStat(v.P50, fmtRatio),
			fmtStat(v.P99, fmtRatio), fmtStat(v.CPU, fmtRatio), fmtStat(v.PathCPU, fmtRatio))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "  engine CPU while the gateway serves, %% of the gateway's own\tdockerd + shim (goal: under %d%%)\tdocker-proxy, apart\n", engineGoalPct)
	for _, name := range gatewayTargets {
		t := sum(name)
		fmt.Fprintf(tw, "  during %s's rounds\t%s\t%s\n", name, fmtStat(t.EngineSharePct, fmtPct), fmtStat(t.DockerProxySharePct, fmtPct))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "  (dockerd during nginx's rounds is the engine's other work on this machine: background, not nginx's)\n")
}

// fmtGroups prints process groups as the path they make: "gateway
// process + shim + dockerd".
func fmtGroups(groups []string) string {
	if len(groups) == 0 {
		return "-"
	}
	short := map[string]string{cpuGateway: "gateway process", cpuShim: "shim"}
	var out []string
	for _, g := range groups {
		if s, ok := short[g]; ok {
			g = s
		}
		out = append(out, g)
	}
	return strings.Join(out, " + ")
}

// fmtStat prints "median [min – max]", or "n/a".
func fmtStat(s *stat, f func(float64) string) string {
	if s == nil {
		return "n/a"
	}
	return fmt.Sprintf("%s [%s – %s]", f(s.Median), f(s.Min), f(s.Max))
}

// fmtMedian prints a stat's median in µs, or "-".
func fmtMedian(s *stat) string {
	if s == nil {
		return "-"
	}
	return fmtUS(s.Median)
}

// fmtSeconds prints a wall time with three significant digits at most.
func fmtSeconds(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.0fms", v*1000)
	case v < 10:
		return fmt.Sprintf("%.2fs", v)
	}
	return fmt.Sprintf("%.1fs", v)
}

// fmtMs prints a latency given in milliseconds as fmtDur does.
func fmtMs(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.0fµs", v*1000)
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 1000:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fs", v/1000)
}

func fmtRatio(v float64) string { return fmt.Sprintf("%.2f", v) }
func fmtRPS(v float64) string   { return fmt.Sprintf("%.0f", v) }
func fmtUS(v float64) string    { return fmt.Sprintf("%.1f", v) }
func fmtPct(v float64) string   { return fmt.Sprintf("%.1f%%", v) }

// fmtMedianShare prints the median of a share (0 to 1) as a percentage.
func fmtMedianShare(s *stat) string {
	if s == nil {
		return "n/a"
	}
	return fmtPct(100 * s.Median)
}

// plural prints a count and a noun that takes an s.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
