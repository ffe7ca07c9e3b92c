package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/gateway"
	"github.com/orchestro/orchestro/runtime/journal"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// The cell the gateway serves: one service behind route "/".
const (
	benchCell    = "bench"
	benchService = "web"
)

// newBenchCell returns a cell with one round-robin service of n replicas
// on route "/", with the cell file's defaults for the route (30s timeout,
// 2 retries) as the spec loader would fill them.
func newBenchCell(n int) *cellspec.Cell {
	return &cellspec.Cell{
		Name:   benchCell,
		Source: "cell",
		Gateway: cellspec.Gateway{
			Balance: cellspec.BalanceRoundRobin,
			Routes: []cellspec.Route{{
				Path:    "/",
				Service: benchService,
				Timeout: cellspec.Duration(proxy.DefaultTimeout),
				Retries: proxy.DefaultRetries,
			}},
		},
		Services: map[string]*cellspec.Service{
			benchService: {Name: benchService, Port: 8080, Replicas: n, Restart: cellspec.RestartAlways},
		},
	}
}

// benchFlowPath is the route of the benchmark flow.
const benchFlowPath = "/flow"

// benchFlowYAML is the flow the flow target measures: two sequential
// calls, the second templated from the first, then a parallel pair, all
// to the service the plain gateway target balances over. Its answer is
// the last call's body, so the target checks like the others.
const benchFlowYAML = `cell: bench
gateway: {port: 8080}
services:
  web: {image: web, port: 8080}
flows:
  - name: bench
    route: GET ` + benchFlowPath + `
    steps:
      - id: a
        call: GET web /a
        # Never runs in the benchmark (no step fails); with a journal it
        # makes step a and the end of every execution waited for.
        compensate:
          call: DELETE web /a
      - id: b
        call: GET web /b?after=${{ a.status }}
      - parallel:
          - id: c
            call: GET web /c
          - id: d
            call: GET web /d
    response:
      body: ${{ d.body }}
`

// benchFlowCalls is how many calls one execution of the benchmark flow
// makes.
const benchFlowCalls = 4

// benchFlows loads the benchmark flow as the cell file loader does.
func benchFlows() ([]*cellspec.Flow, error) {
	c, _, err := cellspec.LoadCell("bench-flow.yaml", []byte(benchFlowYAML), cellspec.MapEnv(nil))
	if err != nil {
		return nil, fmt.Errorf("benchmark flow: %w", err)
	}
	return c.Flows, nil
}

// gatewayStats is what the gateway child reports about itself between
// measurements, so the tool can work out costs per request.
type gatewayStats struct {
	Mallocs        uint64 `json:"mallocs"`
	TotalAlloc     uint64 `json:"total_alloc"`
	NumGC          uint32 `json:"num_gc"`
	DroppedRecords uint64 `json:"dropped_records"`
	GOMAXPROCS     int    `json:"gomaxprocs"`
	GOGC           int    `json:"gogc"`
	// JournalCommits and JournalRecords count the journal's group
	// commits and the records they held; zero without a journal.
	JournalCommits uint64 `json:"journal_commits"`
	JournalRecords uint64 `json:"journal_records"`
}

// commitCounter counts a journal's group commits for gatewayStats.
type commitCounter struct{ commits, records atomic.Uint64 }

func (c *commitCounter) onCommit(n int, _ time.Duration) {
	c.commits.Add(1)
	c.records.Add(uint64(n))
}

// gatewayMain is the hidden gateway subcommand: the product's data plane
// (gateway.NewDataPlane, its proxy and record goroutine, access log and
// metrics) in front of fixed upstreams, served by proxy.Server as the
// gateway serves its data port (by a plain http.Server with -nethttp). It prints "ready DATA-ADDR STATS-ADDR" and serves
// until ctx ends. The stats address answers /stats on a listener of its
// own, off the measured path.
func gatewayMain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(cmdGateway, flag.ContinueOnError)
	upstreams := fs.String("upstreams", "", "comma-separated replica addresses")
	gogc := fs.Int("gogc", 100, "GOGC for this process")
	logPath := fs.String("log", "", "append the access log to this file; empty discards it")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process's whole life to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile to this file on exit")
	netHTTP := fs.Bool("nethttp", false, "serve the proxy with a plain http.Server instead of proxy.Server")
	withFlow := fs.Bool("flow", false, "add the benchmark flow (GET "+benchFlowPath+") to the cell")
	journalDir := fs.String("journal", "", "journal the flow's executions in this directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addrs := strings.Split(*upstreams, ",")
	if *upstreams == "" {
		return errors.New("-upstreams is required")
	}
	debug.SetGCPercent(*gogc)

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		defer writeAllocProfile(*memProfile)
	}

	var accessLog io.Writer
	if *logPath != "" {
		// Append mode lets the tool truncate the file between
		// measurements to bound its size.
		f, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		defer f.Close()
		accessLog = f
	}
	cell := newBenchCell(len(addrs))
	if *withFlow {
		flows, err := benchFlows()
		if err != nil {
			return err
		}
		cell.Flows = flows
	}
	dp, err := gateway.NewDataPlane(cell, accessLog, proxy.Options{})
	if err != nil {
		return err
	}
	var commits commitCounter
	if *journalDir != "" {
		j, err := journal.Open(*journalDir, journal.Options{OnCommit: commits.onCommit})
		if err != nil {
			return err
		}
		defer j.Close()
		dp.UseJournal(j, cell)
	}
	ups := make([]*proxy.Upstream, len(addrs))
	for i, a := range addrs {
		n := i + 1
		ups[i] = &proxy.Upstream{
			ID:      fmt.Sprintf("%s-%d", benchService, n),
			Service: benchService,
			Replica: n,
			Name:    fmt.Sprintf("%s-%s-%s-%d", "orchestro-bench", benchCell, benchService, n),
			Addr:    a,
		}
	}
	dp.Proxy.SetUpstreams(benchService, ups)

	dataLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("data listener: %w", err)
	}
	statsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		dataLn.Close()
		return fmt.Errorf("stats listener: %w", err)
	}
	// As the gateway serves its data port (gateway.Run), or, with
	// -nethttp, as it did before proxy.Server.
	var data server = proxy.NewServer(dp.Proxy, proxy.ServerOptions{})
	if *netHTTP {
		data = &http.Server{Handler: dp.Proxy, ReadHeaderTimeout: 10 * time.Second}
	}
	stats := &http.Server{Handler: statsHandler(dp.Proxy, *gogc, &commits), ReadHeaderTimeout: 10 * time.Second}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Go(func() {
		if err := dp.Run(runCtx); err != nil {
			errc <- err
		}
	})
	for _, s := range []struct {
		srv server
		ln  net.Listener
	}{{data, dataLn}, {stats, statsLn}} {
		wg.Go(func() {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	fmt.Fprintf(stdout, "ready %s %s\n", dataLn.Addr(), statsLn.Addr())

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = data.Shutdown(sctx)
	_ = stats.Shutdown(sctx)
	cancel()
	wg.Wait()
	return err
}

// server is what http.Server and proxy.Server have in common.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// statsHandler serves gatewayStats as JSON.
func statsHandler(px *proxy.Proxy, gogc int, commits *commitCounter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(gatewayStats{
			Mallocs:        ms.Mallocs,
			TotalAlloc:     ms.TotalAlloc,
			NumGC:          ms.NumGC,
			DroppedRecords: px.DroppedRecords(),
			GOMAXPROCS:     goruntime.GOMAXPROCS(0),
			GOGC:           gogc,
			JournalCommits: commits.commits.Load(),
			JournalRecords: commits.records.Load(),
		})
	})
}

// writeAllocProfile writes the allocation profile (sampled, cumulative
// since the start) to path; errors go to stderr, which the tool keeps.
func writeAllocProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "memory profile: %v\n", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintf(os.Stderr, "memory profile: %v\n", err)
	}
}

// gatewayTarget describes a gateway child to start.
type gatewayTarget struct {
	name       string
	logToFile  bool
	netHTTP    bool
	flow       bool
	journal    bool
	cpuProfile string
	memProfile string
}

// startGateway starts a gateway child in front of the backends.
func startGateway(self, dir string, gt gatewayTarget, backends []string, gogc int) (*target, error) {
	args := []string{cmdGateway, "-upstreams", strings.Join(backends, ","), "-gogc", strconv.Itoa(gogc)}
	var logPath string
	if gt.logToFile {
		logPath = filepath.Join(dir, gt.name+"-access.log")
		args = append(args, "-log", logPath)
	}
	if gt.netHTTP {
		args = append(args, "-nethttp")
	}
	if gt.flow {
		args = append(args, "-flow")
	}
	if gt.journal {
		args = append(args, "-journal", filepath.Join(dir, gt.name+"-journal"))
	}
	if gt.cpuProfile != "" {
		args = append(args, "-cpuprofile", gt.cpuProfile)
	}
	if gt.memProfile != "" {
		args = append(args, "-memprofile", gt.memProfile)
	}
	c, err := startChild(dir, gt.name, true, self, args...)
	if err != nil {
		return nil, err
	}
	f, err := c.readyLine(10 * time.Second)
	if err == nil && len(f) != 2 {
		err = fmt.Errorf("start %s: unexpected ready line %q", gt.name, f)
	}
	if err != nil {
		c.stop()
		return nil, err
	}
	t := &target{name: gt.name, addr: f[0], proc: c, statsAddr: f[1], accessLog: logPath}
	if gt.flow {
		t.path = benchFlowPath
	}
	st, err := readGatewayStats(context.Background(), t.statsAddr)
	if err != nil {
		c.stop()
		return nil, err
	}
	t.gomaxprocs = st.GOMAXPROCS
	return t, nil
}

// readGatewayStats asks a gateway child for its counters.
func readGatewayStats(ctx context.Context, addr string) (gatewayStats, error) {
	var st gatewayStats
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("read gateway stats: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("read gateway stats: %w", err)
	}
	return st, nil
}
