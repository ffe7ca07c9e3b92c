package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Hidden subcommands: the tool re-executes itself to run the backends and
// the gateway, each on a Go runtime of its own.
const (
	cmdBackends = "internal-backends"
	cmdGateway  = "internal-gateway"
)

// Target names, in their order in a round before rotation.
const (
	targetDirect       = "direct"
	targetNginx        = "nginx"
	targetHAProxy      = "haproxy"
	targetGateway      = "gateway"
	targetGatewayNoLog = "gateway-nolog"
	// targetGatewayNetHTTP is the gateway's proxy served by a plain
	// http.Server, without the Server's fast path: the comparison shows
	// what the fast path is worth.
	targetGatewayNetHTTP = "gateway-nethttp"
	// targetFlow is the gateway answering one route with a flow of four
	// calls to the same replicas (see benchFlowYAML).
	targetFlow = "flow"
	// targetFlowJournal is the flow target with its executions journaled
	// (runtime/journal, on the temporary directory's file system).
	targetFlowJournal = "flow-journal"
)

// defaultTargets are measured unless -targets says otherwise;
// knownTargets can be asked for.
var (
	defaultTargets = []string{targetDirect, targetNginx, targetHAProxy, targetGateway, targetFlow}
	knownTargets   = append(slices.Clone(defaultTargets), targetGatewayNetHTTP, targetFlowJournal)
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case cmdBackends:
			os.Exit(childMain(cmdBackends, os.Args[2:], backendsMain))
		case cmdGateway:
			os.Exit(childMain(cmdGateway, os.Args[2:], gatewayMain))
		case cmdProduct:
			os.Exit(productMain(os.Args[2:]))
		}
	}
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "orchestro-bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, opts, os.Stdout, os.Stderr)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case err != nil && interrupted:
		fmt.Fprintln(os.Stderr, "orchestro-bench: interrupted; every child process was stopped")
		os.Exit(130)
	case err != nil:
		fmt.Fprintf(os.Stderr, "orchestro-bench: %v\n", err)
		os.Exit(1)
	}
}

// childMain runs a hidden subcommand until SIGTERM or SIGINT, or until its
// standard input closes: the tool holds the other end, so a child never
// outlives it, however it ends.
func childMain(name string, args []string, fn func(context.Context, []string, io.Writer) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Lives as long as the process: it ends when stdin closes.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := fn(ctx, args, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "orchestro-bench %s: %v\n", name, err)
		return 1
	}
	return 0
}

// options are the command line of a run.
type options struct {
	duration   time.Duration
	warmup     time.Duration
	rounds     int
	conns      []int
	threads    int
	gogc       int
	log        string // on, off or both
	targets    []string
	cpuProfile string
	memProfile string
	keep       bool
}

// Values of -log.
const (
	logOn   = "on"
	logOff  = "off"
	logBoth = "both"
)

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("orchestro-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: orchestro-bench [flags]

Measures requests/s and latency through the orchestro gateway, nginx and
HAProxy in front of the same three local replicas, and straight to one
replica, with wrk on 127.0.0.1, in interleaved rounds. Needs wrk, nginx and
HAProxy: %s

orchestro-bench product [flags] measures the product instead: orchestro's
CLI against docker compose, and its gateway container against nginx, on the
Docker engine (see orchestro-bench product -h).

Flags:
`, installHint)
		fs.PrintDefaults()
	}
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measurement, in whole seconds")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "untimed load on each target before the first round (0 skips it)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each measures every target at every connection count")
	conns := fs.String("conns", "", "comma-separated wrk connection counts (default 64,256, and 1 first when flow-journal is measured: the journal's latency goal is judged at 1)")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads")
	fs.IntVar(&o.gogc, "gogc", 100, "GOGC of the gateway process (the product's is Go's default, 100)")
	fs.StringVar(&o.log, "log", logOn, "gateway access log: on (JSON lines to a file, as the product writes them), off (discarded), both (measure the two as separate targets)")
	targets := fs.String("targets", strings.Join(defaultTargets, ","), "comma-separated targets to measure (also known: "+targetGatewayNetHTTP+")")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the gateway process (or, when it is not measured, of flow's, else of flow-journal's; its whole life, so all its measurements) to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the gateway process (or, when it is not measured, of flow's, else of flow-journal's) to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configurations, logs, access log) and print its path")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.duration < time.Second || o.duration%time.Second != 0 {
		return o, fmt.Errorf("-duration %s: want whole seconds, at least 1s (wrk's unit)", o.duration)
	}
	if o.warmup < 0 || o.warmup%time.Second != 0 {
		return o, fmt.Errorf("-warmup %s: want whole seconds", o.warmup)
	}
	if o.rounds < 1 {
		return o, fmt.Errorf("-rounds %d: want at least 1", o.rounds)
	}
	if o.threads < 1 {
		return o, fmt.Errorf("-threads %d: want at least 1", o.threads)
	}
	if *conns == "" {
		*conns = "64,256"
		if strings.Contains(*targets, targetFlowJournal) {
			*conns = "1,64,256"
		}
	}
	for _, s := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-conns %q: want positive integers separated by commas", *conns)
		}
		if !slices.Contains(o.conns, n) {
			o.conns = append(o.conns, n)
		}
	}
	switch o.log {
	case logOn, logOff, logBoth:
	default:
		return o, fmt.Errorf("-log %q: want on, off or both", o.log)
	}
	for _, s := range strings.Split(*targets, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(knownTargets, s) {
			return o, fmt.Errorf("-targets: unknown target %q (known: %s)", s, strings.Join(knownTargets, ", "))
		}
		if !slices.Contains(o.targets, s) {
			o.targets = append(o.targets, s)
		}
	}
	if o.log == logBoth && slices.Contains(o.targets, targetGateway) {
		o.targets = append(o.targets, targetGatewayNoLog)
	}
	for _, p := range []*string{&o.cpuProfile, &o.memProfile} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return o, err
		}
		*p = abs
	}
	return o, nil
}

// target is one thing wrk loads.
type target struct {
	name string
	addr string
	// proc is the proxy's process, for CPU time and peak RSS; nil for
	// direct.
	proc *child
	// statsAddr answers a gateway's counters; "" for the others.
	statsAddr string
	// accessLog is a gateway's access log file; "" when discarded.
	accessLog string
	// gomaxprocs is a gateway's GOMAXPROCS.
	gomaxprocs int
	// path is what wrk asks for; "" means "/".
	path string
}

func (t *target) url() string {
	if t.path != "" {
		return "http://" + t.addr + t.path
	}
	return "http://" + t.addr + "/"
}

// sample is one measurement of one target.
type sample struct {
	wrkResult
	// cpu is the CPU time the proxy's processes used during the
	// measurement; -1 when unknown or for direct.
	cpu time.Duration
	// gw holds the gateway's own counters for the measurement.
	gw *gatewaySample
}

// gatewaySample is what the gateway's counters moved by in a measurement.
type gatewaySample struct {
	mallocs, allocBytes uint64
	gcs                 uint32
	dropped             uint64
	logBytes            int64
	commits, records    uint64
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	tl, err := findTools(o.targets)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "orchestro-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Fprintf(stderr, "kept %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	info := collectInfo(ctx, tl)
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	backends, addrs, err := startBackends(self, dir)
	if err != nil {
		return err
	}
	defer backends.stop()

	var targets []*target
	defer func() {
		for _, t := range slices.Backward(targets) {
			if t.proc != nil {
				t.proc.stop()
			}
		}
	}()
	for _, name := range o.targets {
		var t *target
		switch name {
		case targetDirect:
			t = &target{name: name, addr: addrs[0]}
		case targetNginx:
			c, addr, err := startNginx(ctx, tl.nginx, dir, addrs)
			if err != nil {
				return err
			}
			t = &target{name: name, addr: addr, proc: c}
		case targetHAProxy:
			c, addr, err := startHAProxy(ctx, tl.haproxy, dir, addrs)
			if err != nil {
				return err
			}
			t = &target{name: name, addr: addr, proc: c}
		case targetGateway, targetGatewayNoLog, targetGatewayNetHTTP, targetFlow, targetFlowJournal:
			gt := gatewayTarget{
				name:      name,
				logToFile: o.log != logOff && name != targetGatewayNoLog,
				netHTTP:   name == targetGatewayNetHTTP,
				flow:      name == targetFlow || name == targetFlowJournal,
				journal:   name == targetFlowJournal,
			}
			if name == profiledTarget(o.targets) {
				gt.cpuProfile, gt.memProfile = o.cpuProfile, o.memProfile
			}
			if t, err = startGateway(self, dir, gt, addrs, o.gogc); err != nil {
				return err
			}
		}
		targets = append(targets, t)
		if err := checkTarget(ctx, t); err != nil {
			return err
		}
	}
	progress("orchestro-bench: %d targets up (%s); backends %s", len(targets), strings.Join(o.targets, ", "), strings.Join(addrs, " "))

	maxConns := slices.Max(o.conns)
	if o.warmup > 0 {
		for _, t := range targets {
			progress("warm-up %-14s %d connections, %s", t.name, maxConns, o.warmup)
			if _, err := runWrk(ctx, tl.wrk, t.url(), maxConns, o.threads, o.warmup); err != nil {
				return err
			}
			truncateLog(t)
		}
	}

	rep := newReport(o, info, targets)
	for round := range o.rounds {
		order := rotate(targets, round)
		for ci, conns := range o.conns {
			for _, t := range order {
				s, err := measure(ctx, tl.wrk, t, conns, o.threads, o.duration)
				if err != nil {
					return fmt.Errorf("round %d, %s at %d connections: %w", round+1, t.name, conns, err)
				}
				rep.add(t.name, ci, s)
				progress("round %d/%d  %4d conns  %-14s %9.0f req/s  p50 %-8s p99 %-8s%s",
					round+1, o.rounds, conns, t.name, s.RPS, fmtDur(s.P50), fmtDur(s.P99), errNote(s))
			}
		}
		for _, t := range targets {
			if t.statsAddr == "" {
				continue
			}
			if rss, err := peakRSS(t.proc.pid()); err == nil {
				rep.addRSS(t.name, rss)
			}
		}
	}
	rep.info.loadEnd = loadAverage()
	rep.write(stdout)
	return nil
}

// profiledTarget is the target -cpuprofile and -memprofile profile: the
// first of gateway, flow and flow-journal that is measured.
func profiledTarget(targets []string) string {
	for _, name := range []string{targetGateway, targetFlow, targetFlowJournal} {
		if slices.Contains(targets, name) {
			return name
		}
	}
	return ""
}

// rotate returns targets rotated left by round, so each target takes each
// position in turn and drift on the machine hits all of them alike.
func rotate(targets []*target, round int) []*target {
	n := len(targets)
	out := make([]*target, n)
	for i := range targets {
		out[i] = targets[(i+round)%n]
	}
	return out
}

// measure runs wrk against one target and collects the proxy's CPU time
// and, for a gateway, its allocation and GC counters over the run.
func measure(ctx context.Context, wrkBin string, t *target, conns, threads int, d time.Duration) (sample, error) {
	s := sample{cpu: -1}
	var cpu0 time.Duration
	cpuOK := false
	if t.proc != nil {
		var err error
		cpu0, err = processCPU(t.proc.pid())
		cpuOK = err == nil
	}
	var st0 gatewayStats
	if t.statsAddr != "" {
		var err error
		if st0, err = readGatewayStats(ctx, t.statsAddr); err != nil {
			return s, err
		}
	}
	res, err := runWrk(ctx, wrkBin, t.url(), conns, threads, d)
	if err != nil {
		return s, err
	}
	if t.proc != nil && t.proc.exited() {
		return s, t.proc.exitError()
	}
	s.wrkResult = res
	if cpuOK {
		if cpu1, err := processCPU(t.proc.pid()); err == nil {
			s.cpu = cpu1 - cpu0
		}
	}
	if t.statsAddr != "" {
		st1, err := readGatewayStats(ctx, t.statsAddr)
		if err != nil {
			return s, err
		}
		s.gw = &gatewaySample{
			mallocs:    st1.Mallocs - st0.Mallocs,
			allocBytes: st1.TotalAlloc - st0.TotalAlloc,
			gcs:        st1.NumGC - st0.NumGC,
			dropped:    st1.DroppedRecords - st0.DroppedRecords,
			logBytes:   truncateLog(t),
			commits:    st1.JournalCommits - st0.JournalCommits,
			records:    st1.JournalRecords - st0.JournalRecords,
		}
	}
	return s, nil
}

// truncateLog empties a gateway's access log, which the gateway appends
// to, so a long run does not fill the disk, and returns the size it had.
func truncateLog(t *target) int64 {
	if t.accessLog == "" {
		return 0
	}
	fi, err := os.Stat(t.accessLog)
	if err != nil {
		return 0
	}
	_ = os.Truncate(t.accessLog, 0)
	return fi.Size()
}

// checkTarget sends a few requests over one connection and checks that a
// backend answers them, so a misconfigured target fails the run before it
// is measured.
func checkTarget(ctx context.Context, t *target) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for range numBackends {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url(), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("check %s: %w", t.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("check %s: %w", t.name, err)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "hello from backend ") {
			return fmt.Errorf("check %s: got %s %q, want 200 from a backend", t.name, resp.Status, body)
		}
	}
	return nil
}

// machineInfo describes what the run ran on.
type machineInfo struct {
	cpus      int
	kernel    string
	goVersion string
	nginx     string
	haproxy   string
	wrk       string
	loadStart string
	loadEnd   string
}

func collectInfo(ctx context.Context, tl tools) machineInfo {
	return machineInfo{
		cpus:      goruntime.NumCPU(),
		kernel:    kernelRelease(),
		goVersion: goruntime.Version(),
		nginx:     toolVersion(ctx, tl.nginx, "-v"),
		haproxy:   toolVersion(ctx, tl.haproxy, "-v"),
		wrk:       toolVersion(ctx, tl.wrk, "-v"),
		loadStart: loadAverage(),
	}
}
