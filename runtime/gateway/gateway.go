package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/journal"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// StatePath is where a gateway keeps its overrides, inside its own
// container: the state survives a restart of the container and goes with
// it on `down`.
const StatePath = "/var/lib/orchestro/state.json"

// Main runs a gateway: the `orchestro gateway` command inside a gateway
// container. Its configuration comes from the environment the runtime set
// on the container (ORCHESTRO_SPEC, ORCHESTRO_TOKEN).
func Main(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "swarm-scaler" {
		return swarmScalerMain(ctx)
	}
	if len(args) > 0 && args[0] == "keeper" {
		project := os.Getenv(api.EnvProject)
		if project == "" {
			return fmt.Errorf("keeper: %s is not set", api.EnvProject)
		}
		eng, err := engine.NewDockerEngine(ctx)
		if err != nil {
			return fmt.Errorf("keeper: %w", err)
		}
		defer eng.Close()
		return RunKeeper(ctx, eng, project, slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	}
	tuneGC()
	raw := os.Getenv(api.EnvSpec)
	if raw == "" {
		return fmt.Errorf("gateway: %s is not set; this command runs inside a gateway container", api.EnvSpec)
	}
	var spec api.GatewaySpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fmt.Errorf("gateway: decode %s: %w", api.EnvSpec, err)
	}
	if spec.Cell == nil {
		return fmt.Errorf("gateway: %s holds no cell", api.EnvSpec)
	}
	tuneProcs(spec.Cell.Gateway.Procs)
	// On a swarm the gateway finds its replicas by DNS and needs no
	// engine (nor its socket).
	var eng engine.Engine
	if !spec.FindsByDNS() {
		var err error
		if eng, err = engine.NewDockerEngine(ctx); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		defer eng.Close()
	}
	// On a swarm (or Kubernetes) the access log goes to stdout, where the
	// orchestrator collects the logs of every node's tasks.
	accessLogDir := api.AccessLogDir
	if spec.FindsByDNS() {
		accessLogDir = ""
	}
	return Run(ctx, Config{
		Engine:       eng,
		Spec:         &spec,
		Token:        os.Getenv(api.EnvToken),
		StatePath:    StatePath,
		EventsPath:   EventsPath,
		JournalDir:   api.JournalDir,
		AccessLogDir: accessLogDir,
		AccessLog:    os.Stdout,
		Log:          slog.New(slog.NewJSONHandler(os.Stderr, nil)),
	})
}

// tuneProcs sets how many CPUs the gateway runs on at once to the cell's
// gateway.procs; 0 leaves Go's choice, as does GOMAXPROCS in the
// environment, which takes precedence.
func tuneProcs(procs int) {
	if procs <= 0 || os.Getenv("GOMAXPROCS") != "" {
		return
	}
	goruntime.GOMAXPROCS(procs)
}

// tuneGC sets a soft memory limit, so the heap stays bounded however the
// garbage collector is paced. GOGC keeps Go's default: the request path
// allocates about one object per request, so collecting less often (as
// GOGC=400 did when net/http allocated 46) buys no throughput and doubles
// the resident memory. GOMEMLIMIT in the environment takes precedence.
func tuneGC() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
}

// Config is what a gateway runs with.
type Config struct {
	Engine    engine.Engine
	Spec      *api.GatewaySpec
	Token     string
	StatePath string
	// EventsPath, when set, is where the cell's events are kept across
	// restarts of the gateway (see EventsPath).
	EventsPath string
	// AccessLog receives one JSON line per request when the cell writes
	// its access log to stdout, or to files but AccessLogDir is "".
	AccessLog io.Writer
	// AccessLogDir is where the access log files go (a volume the
	// runtime mounts; created when missing).
	AccessLogDir string
	Log          *slog.Logger
	// ListenHost is the address listeners bind ("" for all interfaces).
	ListenHost string
	// JournalDir is the directory of the journal of flow executions (a
	// volume the runtime mounts for a cell with flows); "" or a missing
	// directory runs flows without one.
	JournalDir string
}

// source is where a gateway's replicas come from: it serves the admin API
// about them and hands them to the proxy. The Controller creates and
// replaces them through the engine; on a target that runs them itself (a
// swarm), a dnsSource finds them by DNS.
type source interface {
	admin.Cell
	// Run feeds the proxy until ctx ends.
	Run(ctx context.Context) error
	// Wake reports whether a request that found no available replica of
	// service is worth holding (see proxy.Options.Wake).
	Wake(service string) bool
	// Spec returns the spec the source runs.
	Spec() *api.GatewaySpec
	// setHooks plugs the data plane in, before Run.
	setHooks(hooks)
}

// Run serves a cell until ctx ends: the data port, the egress ports of the
// cells it uses, the admin API, and the source of its replicas: the
// controller, or on a target that finds replicas by DNS (where cfg.Engine
// may be nil) a dnsSource. It never removes replicas on its way out: a
// restarted gateway adopts them.
func Run(ctx context.Context, cfg Config) error {
	spec := cfg.Spec
	bus := admin.NewEventBus(0)
	var keptEvents []api.Event
	if cfg.EventsPath != "" {
		var err error
		if keptEvents, err = loadEvents(cfg.EventsPath, admin.DefaultEventBacklog); err != nil {
			cfg.Log.Warn("the events of the previous run are lost", "err", err)
		}
		bus.Restore(keptEvents)
	}
	var src source
	accessLog, logFiles := openAccessLog(cfg)
	if logFiles != nil {
		defer logFiles.Close()
	}
	dp, err := NewDataPlane(spec.Cell, accessLog, proxy.Options{
		OnEject: func(up *proxy.Upstream, reason string, until time.Time) {
			bus.Publish(api.Event{Time: time.Now(), Cell: spec.Cell.Name, Service: up.Service,
				Replica: strconv.Itoa(up.Replica), Type: api.EventEjected,
				Message: fmt.Sprintf("until %s: %s", until.Format(time.TimeOnly), reason)})
		},
		OnPanic: func(service string, panicking bool, healthy, available int) {
			msg := fmt.Sprintf("%d of %d healthy replicas available; routing to ejected ones too", available, healthy)
			if !panicking {
				msg = fmt.Sprintf("ended: %d of %d healthy replicas available", available, healthy)
			}
			bus.Publish(api.Event{Time: time.Now(), Cell: spec.Cell.Name, Service: service, Type: api.EventPanic, Message: msg})
		},
		Wake: func(service string) bool { return src.Wake(service) },
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	px, m, record := dp.Proxy, dp.metrics, dp.record
	dp.flows.emit = bus.Publish
	dp.flows.ctx = ctx
	jr := openJournal(ctx, cfg, dp.metrics, bus)
	if jr != nil {
		// Closed once every server has stopped, unless asynchronous
		// executions still run: closing it under them would make them
		// fail, while leaving them is a crash the journal is made for,
		// and the next gateway resumes them.
		defer func() {
			if dp.flows.asyncRunning() == 0 {
				jr.Close()
			}
		}()
		dp.flows.journal = jr
	}
	if spec.FindsByDNS() {
		src = newDNSSource(spec, px, bus, net.DefaultResolver)
	} else {
		src = NewController(cfg.Engine, spec, px, bus, cfg.StatePath)
	}
	src.setHooks(hooks{traffic: dp.traffic, onSpec: dp.flows.configure, flowStatus: dp.flows.status, onCheck: m.healthResult})
	// The controller may run a newer spec than the container's, from its
	// state file; the flows follow the spec it runs, now and on updates.
	dp.flows.configure(src.Spec().Cell)
	adminCfg := admin.ServerConfig{Cell: src, CellName: spec.Cell.Name, Events: bus, Token: cfg.Token, Metrics: m.handler(src, px), Logger: cfg.Log}
	if len(spec.Cell.Flows) > 0 {
		adminCfg.Executions = dp.flows
	}
	if logFiles != nil {
		adminCfg.AccessLog = logFiles
	}
	srvAdmin, err := admin.NewServer(adminCfg)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}

	g, ctx := errgroup.WithContext(ctx)
	serve := func(name string, port int, srv server) error {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenHost, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("%s listener: %w", name, err)
		}
		g.Go(func() error {
			<-ctx.Done()
			bus.Close()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s server: %w", name, err)
			}
			return nil
		})
		return nil
	}
	if err := serve("admin", spec.AdminPort, &http.Server{Handler: srvAdmin, ReadHeaderTimeout: 10 * time.Second}); err != nil {
		return err
	}
	// fast_path: false serves every request through net/http, to rule the
	// fast path out when a difference is suspected.
	srvOpts := proxy.ServerOptions{DisableFastPath: !spec.Cell.Gateway.FastPathEnabled()}
	peers := map[string]*proxy.Proxy{}
	// On a target that finds peers by DNS, each peer's address names its
	// gateway's tasks: the egress proxy forwards to every one of them.
	var found *peerFinder
	if spec.FindsByDNS() {
		found = newPeerFinder(net.DefaultResolver, bus.Publish, spec.Cell.Name)
	}
	for _, peer := range spec.Cell.Uses {
		addr := spec.Peers[peer]
		if addr == "" {
			continue
		}
		host, portStr, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(portStr)
		opts := proxy.Options{OnRequest: record}
		ups := []*proxy.Upstream{{ID: peer, Service: peer, Addr: addr}}
		if found != nil {
			opts.Wake, ups = found.wake, nil
		}
		fwd := proxy.NewForward(peer, ups, opts)
		if found != nil {
			found.add(host, newAddrPool(fwd, peer, port))
		}
		peers[peer] = fwd
		g.Go(func() error { return fwd.Run(ctx) })
		if err := serve("egress "+peer, port, proxy.NewServer(fwd, srvOpts)); err != nil {
			return err
		}
	}
	// Flows call the cells in uses through the egress proxies: they are
	// in place before the first request.
	dp.SetPeers(peers)
	if err := serve("data", spec.Cell.Gateway.Port, proxy.NewServer(px, srvOpts)); err != nil {
		return err
	}
	// A listener's requests go through the same proxy, which routes them
	// by the port they arrived on.
	for _, l := range spec.Cell.Gateway.Listeners {
		if err := serve(fmt.Sprintf("listener %d (%s)", l.Port, l.Service), l.Port, proxy.NewServer(px, srvOpts)); err != nil {
			return err
		}
	}
	g.Go(func() error { return dp.Run(ctx) })
	g.Go(func() error { return src.Run(ctx) })
	if found != nil {
		g.Go(func() error { return found.Run(ctx) })
	}
	if cfg.EventsPath != "" {
		g.Go(func() error {
			if err := keepEvents(ctx, bus, cfg.EventsPath, admin.DefaultEventBacklog, keptEvents); err != nil {
				cfg.Log.Warn("events are no longer kept across restarts", "err", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		dp.flows.recover(ctx, func(ctx context.Context) { waitForReplicas(ctx, src.Status, recoveryWait) })
		return nil
	})
	cfg.Log.Info("gateway started", "project", spec.Project, "cell", spec.Cell.Name, "port", spec.Cell.Gateway.Port, "admin_port", spec.AdminPort)
	return g.Wait()
}

// openAccessLog returns where the cell's access log goes (nil: nowhere)
// and, when that is files, the files, which the admin API reads. Files
// that cannot be opened are a warning, and the log goes to cfg.AccessLog.
func openAccessLog(cfg Config) (io.Writer, *logFile) {
	set := cfg.Spec.Cell.Gateway.AccessLogSettings()
	switch {
	case set.To == cellspec.AccessLogOff:
		return nil, nil
	case set.To == cellspec.AccessLogStdout || cfg.AccessLogDir == "":
		return cfg.AccessLog, nil
	}
	f, err := openLogFile(cfg.AccessLogDir, set.MaxSize, set.MaxFiles)
	if err != nil {
		cfg.Log.Warn("the access log goes to standard output", "err", err)
		return cfg.AccessLog, nil
	}
	return f, f
}

// openJournal opens the journal of flow executions, for a cell with flows
// whose gateway has a journal directory. A journal that cannot be opened
// is an error event, and flows run without one rather than not at all.
// The previous gateway of the cell may still hold the file's lock while
// it stops, so a held lock is retried for a while.
func openJournal(ctx context.Context, cfg Config, m *metrics, bus *admin.EventBus) *journal.Store {
	if len(cfg.Spec.Cell.Flows) == 0 || cfg.JournalDir == "" {
		return nil
	}
	if st, err := os.Stat(cfg.JournalDir); err != nil || !st.IsDir() {
		cfg.Log.Warn("no journal directory: flow executions are not durable", "dir", cfg.JournalDir)
		return nil
	}
	path := cfg.JournalDir
	opts := journal.Options{
		OnCommit: m.journalCommitted,
		Logf:     func(format string, args ...any) { cfg.Log.Info(fmt.Sprintf(format, args...)) },
	}
	var lastErr error
	for end := time.Now().Add(journalLockWait); ; {
		j, err := journal.Open(path, opts)
		if err == nil {
			return j
		}
		lastErr = err
		if time.Now().After(end) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	bus.Publish(api.Event{Time: time.Now(), Cell: cfg.Spec.Cell.Name, Type: api.EventError,
		Message: fmt.Sprintf("journal %s: %v; flow executions are not durable", path, lastErr)})
	return nil
}

// journalLockWait bounds how long a starting gateway retries opening its
// journal, which the cell's previous gateway may still hold.
const journalLockWait = 15 * time.Second

// recoveryWait bounds how long the recovery of unfinished executions
// waits for the cell's services to have replicas in rotation.
const recoveryWait = 30 * time.Second

// waitForReplicas waits until every service the source wants running
// has a replica ready, or d passes. A service scaled to zero is not
// waited for: the recovery's calls to it wait (asynchronous executions)
// or fail as they would at any time.
func waitForReplicas(ctx context.Context, status func() api.CellStatus, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := true
		for _, s := range status().Services {
			ready = ready && (s.Desired == 0 || s.Ready > 0)
		}
		if ready {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// server is what http.Server and proxy.Server have in common.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// DataPlane is a cell's request path as a gateway runs it: the proxy, its
// access log and its request metrics. Run wires it to a controller;
// benchmarks run it alone in front of fixed replicas.
type DataPlane struct {
	Proxy   *proxy.Proxy
	metrics *metrics
	log     *accessLogger
	traffic *trafficStats
	flows   *flowPlane
}

// UseJournal makes the flows of cell, the cell the data plane serves,
// durable with j.
func (d *DataPlane) UseJournal(j *journal.Store, cell *cellspec.Cell) {
	d.flows.journal = j
	d.flows.configure(cell)
}

// SetPeers sets the egress proxies through which flow steps call the cells
// in uses, by cell name.
func (d *DataPlane) SetPeers(peers map[string]*proxy.Proxy) { d.flows.setPeers(peers) }

// NewDataPlane builds the data plane of a cell. opts.OnRequest is set here:
// every record feeds the metrics and, as the cell's access_log samples
// them, JSON access-log lines to accessLog (nil writes none).
func NewDataPlane(cell *cellspec.Cell, accessLog io.Writer, opts proxy.Options) (*DataPlane, error) {
	dp := &DataPlane{metrics: newMetrics(cell.Name), log: newAccessLogger(accessLog, cell.Gateway.AccessLogSettings().Sample), traffic: newTrafficStats()}
	opts.OnRequest = dp.record
	px, err := proxy.New(cell, opts)
	if err != nil {
		return nil, err
	}
	dp.Proxy = px
	dp.flows = newFlowPlane(cell.Name, px, dp.metrics, dp.traffic, dp.log)
	dp.flows.configure(cell)
	return dp, nil
}

// Run consumes request records until ctx ends, and writes out the access
// log's last lines.
func (d *DataPlane) Run(ctx context.Context) error {
	defer d.log.flush()
	return d.Proxy.Run(ctx)
}

// Metrics serves the data plane's metrics without controller state.
func (d *DataPlane) Metrics() http.Handler {
	return promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{Registry: d.metrics.reg})
}

func (d *DataPlane) record(r *proxy.RequestRecord) {
	d.metrics.observe(r)
	d.traffic.observe(r.Service, r.Time, r.Status, r.Duration)
	d.log.log(r)
}

// execEngine is the part of the Docker engine exec health checks use.
type execEngine interface {
	ContainerExecCreate(ctx context.Context, containerID string, options container.ExecOptions) (container.ExecCreateResponse, error)
	ContainerExecStart(ctx context.Context, execID string, options container.ExecStartOptions) error
	ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error)
}

// execer runs exec health checks through the engine.
type execer struct{ eng execEngine }

// Exec runs cmd in the container and returns its exit code and output.
func (e execer) Exec(ctx context.Context, containerID string, cmd []string) (int, string, error) {
	created, err := e.eng.ContainerExecCreate(ctx, containerID, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return 0, "", fmt.Errorf("exec create: %w", err)
	}
	if err := e.eng.ContainerExecStart(ctx, created.ID, container.ExecStartOptions{}); err != nil {
		return 0, "", fmt.Errorf("exec start: %w", err)
	}
	for {
		ins, err := e.eng.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return 0, "", fmt.Errorf("exec inspect: %w", err)
		}
		if !ins.Running {
			return ins.ExitCode, "", nil
		}
		select {
		case <-ctx.Done():
			return 0, "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
