package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/autoscale"
	"github.com/orchestro/orchestro/runtime/engine"
)

// The swarm scaler autoscales a project's services on a Docker Swarm. There
// Swarm owns the replicas and the gateways only find them by DNS, so the
// decision moves out of the gateways (there are one or two per cell, each
// seeing part of the traffic) into a single writer: the project's keeper
// service, `orchestro gateway swarm-scaler`.
//
// There is never a second writer of a service's count, by three layers:
//
//   - The keeper is a Swarm service of one replica, placed on managers and
//     updated stop-first, so Swarm itself runs at most one task of it.
//   - On a partition the old task may live on in the minority while Swarm
//     starts a new one in the majority. The old one's writes go through
//     its node's manager, which has no leader to commit them: they fail
//     and change nothing.
//   - Every write is a compare-and-swap on the version of the service it
//     read. Whatever slips through the first two (and the command line's
//     `orchestro scale`, which writes the same way) cannot overwrite a
//     count it has not seen: Swarm refuses the stale write with "update
//     out of sequence", and the scaler reads again and decides from the
//     count that won.

// Swarm scaler timing.
const (
	// swarmScaleInterval is the period of a round, as for the local
	// autoscaler.
	swarmScaleInterval = time.Second
	// swarmStatusTimeout bounds one gateway's status call.
	swarmStatusTimeout = time.Second
	// swarmRoundTimeout bounds the Swarm API calls of one round, so a hung
	// engine delays rounds instead of stopping them for ever.
	swarmRoundTimeout = 10 * time.Second
	// swarmHoldWarning is how long a cell's traffic may be unreadable
	// before the scaler says, once, that it holds the cell's counts.
	swarmHoldWarning = 30 * time.Second
)

// swarmTaskServiceLabel is the label Swarm sets on every task container,
// naming the container's Swarm service.
const swarmTaskServiceLabel = "com.docker.swarm.service.name"

// errOutOfSequence is Swarm's answer to an update whose version is not the
// service's current one. It reaches the client as text only (moby's own
// tests match it the same way).
const errOutOfSequence = "update out of sequence"

// SwarmEngine is the part of the Docker API the swarm scaler uses: it lists
// and updates the project's Swarm services, and reads the stats of the task
// containers on its own node. The SDK's *client.Client is one.
//
// A service's listing carries its whole spec and its version, which is all
// an update needs: inspecting the service again before writing would add a
// round trip without closing any race, since the version check does.
type SwarmEngine interface {
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, service swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerStats(ctx context.Context, containerID string, stream bool) (container.StatsResponseReader, error)
}

// HostResolver resolves a name to addresses; net.DefaultResolver is one.
type HostResolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// SwarmScalerConfig is what a SwarmScaler is built from.
type SwarmScalerConfig struct {
	// Engine is the Docker API of the manager node the scaler runs on.
	// Required.
	Engine SwarmEngine
	// Project names the project whose services are scaled. Required.
	Project string
	// Resolver finds the gateway tasks of a cell (tasks.<gateway
	// service>); nil means net.DefaultResolver.
	Resolver HostResolver
	// HTTP calls the gateways' admin APIs; nil means a plain client. Each
	// call is bounded by its own timeout.
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives decisions and failures; nil discards them.
	Log *slog.Logger
}

// SwarmScaler autoscales the services of one project on a swarm. Once a
// round it lists the project's Swarm services, reads the traffic of every
// cell with an autoscaled service from all of that cell's gateway tasks,
// runs the same decision as the local autoscaler (autoscale.Decide, through
// the same per-service scaler) and writes a changed replica count with the
// version it read, together with an api.Event of the decision in the
// engine.ScaledLabel label.
//
// Its state belongs to Run's loop; it is not safe for concurrent use.
type SwarmScaler struct {
	eng      SwarmEngine
	project  string
	resolver HostResolver
	hc       *http.Client
	now      func() time.Time
	log      *slog.Logger

	// cpu follows the stats of the autoscaled task containers on this
	// node; followed holds their IDs.
	cpu      *autoscale.CPUSampler
	followed map[string]bool

	// services is the memory of each autoscaled service, by Swarm service
	// ID: a service removed and created again starts afresh.
	services map[string]*swarmScaled
	// cells remembers, per cell, since when its traffic is unreadable.
	cells map[string]*swarmCell
	// warned holds the last warning logged per subject, so a failure that
	// repeats every round is logged once.
	warned map[string]string
}

// swarmScaled is the scaler's memory of one autoscaled Swarm service.
type swarmScaled struct {
	sc *scaler
	// seen is the replica count the scaler last read or wrote: a listing
	// with another count means someone else changed it.
	seen int
	// wrote is the event of the scaler's last write, to recognize its own
	// count when the answer to a write that succeeded was lost.
	wrote api.Event
}

// swarmCell is the scaler's memory of one cell.
type swarmCell struct {
	// unreadSince is the first round of the current run of rounds in
	// which the cell's traffic could not be read; zero while it can.
	unreadSince time.Time
	warned      bool
}

// NewSwarmScaler returns a scaler for cfg.
func NewSwarmScaler(cfg SwarmScalerConfig) (*SwarmScaler, error) {
	switch {
	case cfg.Engine == nil:
		return nil, errors.New("swarm scaler: no engine")
	case cfg.Project == "":
		return nil, errors.New("swarm scaler: no project")
	}
	s := &SwarmScaler{
		eng:      cfg.Engine,
		project:  cfg.Project,
		resolver: cfg.Resolver,
		hc:       cfg.HTTP,
		now:      cfg.Now,
		log:      cfg.Log,
		followed: map[string]bool{},
		services: map[string]*swarmScaled{},
		cells:    map[string]*swarmCell{},
		warned:   map[string]string{},
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	if s.hc == nil {
		s.hc = &http.Client{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.cpu = autoscale.NewCPUSampler(cfg.Engine, autoscale.WithErrorHandler(func(id string, err error) {
		s.log.Debug("container stats", "container", id, "error", err)
	}))
	return s, nil
}

// Run scales the project's services once a second until ctx ends, and
// returns nil then.
func (s *SwarmScaler) Run(ctx context.Context) error {
	s.log.Info("swarm scaler started", "project", s.project)
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.cpu.Run(sctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	t := time.NewTicker(swarmScaleInterval)
	defer t.Stop()
	for {
		s.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// swarmScalerMain runs `orchestro gateway swarm-scaler`, the keeper task of
// a project on a swarm: the Docker socket of its manager node is mounted
// into it, and ORCHESTRO_PROJECT names the project.
func swarmScalerMain(ctx context.Context) error {
	project := os.Getenv(api.EnvProject)
	if project == "" {
		return fmt.Errorf("swarm scaler: %s is not set", api.EnvProject)
	}
	eng, err := engine.NewDockerEngine(ctx)
	if err != nil {
		return fmt.Errorf("swarm scaler: %w", err)
	}
	defer eng.Close()
	se, ok := eng.(SwarmEngine)
	if !ok {
		return fmt.Errorf("swarm scaler: the engine client (%T) has no Swarm API", eng)
	}
	s, err := NewSwarmScaler(SwarmScalerConfig{
		Engine:  se,
		Project: project,
		Log:     slog.New(slog.NewJSONHandler(os.Stderr, nil)),
	})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// swarmTarget is an autoscaled service of one round.
type swarmTarget struct {
	svc     swarm.Service
	cell    string
	service string
	policy  *cellspec.Autoscale
	current int
}

// round is one pass: list, read the traffic, decide, write.
func (s *SwarmScaler) round(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, swarmRoundTimeout)
	defer cancel()
	now := s.now()
	list, err := s.eng.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+s.project),
	)})
	if err != nil {
		if ctx.Err() == nil {
			s.warn("list", "list the project's services; holding every count", "error", err)
		}
		for _, st := range s.services {
			st.sc.hold(now, st.seen)
		}
		return
	}
	s.recovered("list", "listing the project's services again")

	gateways := map[string]swarm.Service{}
	var targets []swarmTarget
	for _, svc := range list {
		l := svc.Spec.Labels
		if l[engine.LabelProject] != s.project {
			continue
		}
		switch l[engine.LabelRole] {
		case engine.RoleGateway:
			gateways[l[engine.LabelCell]] = svc
		case engine.RoleReplica:
			if t, ok := s.target(svc); ok {
				targets = append(targets, t)
			}
		}
	}
	slices.SortFunc(targets, func(a, b swarmTarget) int { return strings.Compare(a.svc.Spec.Name, b.svc.Spec.Name) })
	s.forget(targets)

	cells := map[string]bool{}
	for _, t := range targets {
		cells[t.cell] = true
	}
	reports := s.readCells(ctx, cells, gateways)
	cpu := s.readCPU(ctx, targets)

	for _, t := range targets {
		s.scale(ctx, t, reports[t.cell], cpu[t.svc.Spec.Name], now)
	}
}

// target makes an autoscaled service of a listing, and reports false for
// a service that is not autoscaled or cannot be.
func (s *SwarmScaler) target(svc swarm.Service) (swarmTarget, bool) {
	l := svc.Spec.Labels
	raw, ok := l[engine.AutoscaleLabel]
	if !ok {
		return swarmTarget{}, false
	}
	subject := "service " + svc.Spec.Name
	p, err := DecodeAutoscaleLabel(raw)
	if err != nil {
		s.warn(subject, "not autoscaled", "error", err)
		return swarmTarget{}, false
	}
	if svc.Spec.Mode.Replicated == nil || svc.Spec.Mode.Replicated.Replicas == nil {
		s.warn(subject, "not autoscaled: not a replicated service")
		return swarmTarget{}, false
	}
	delete(s.warned, subject)
	return swarmTarget{
		svc:     svc,
		cell:    l[engine.LabelCell],
		service: l[engine.LabelService],
		policy:  p,
		current: int(*svc.Spec.Mode.Replicated.Replicas),
	}, true
}

// forget drops the memory of services no longer autoscaled, and of cells
// without any.
func (s *SwarmScaler) forget(targets []swarmTarget) {
	ids, cells := map[string]bool{}, map[string]bool{}
	for _, t := range targets {
		ids[t.svc.ID] = true
		cells[t.cell] = true
	}
	maps.DeleteFunc(s.services, func(id string, _ *swarmScaled) bool { return !ids[id] })
	maps.DeleteFunc(s.cells, func(cell string, _ *swarmCell) bool { return !cells[cell] })
}

// swarmTraffic is a service's traffic summed over its cell's gateways.
type swarmTraffic struct {
	// InFlight and RPS are sums: each gateway counts only the requests
	// it served.
	inflight int64
	rps      float64
	// ready is the most ready replicas any gateway reports.
	ready int
}

// cellReport is what one round learnt of a cell's traffic: every gateway
// task's status, or why not.
type cellReport struct {
	statuses []api.CellStatus
	err      error
}

// traffic sums a service's figures over the statuses.
//
// Every gateway resolves the same tasks.<service> name and probes the same
// tasks, so they agree on the ready replicas but for a moment: a gateway
// that has just started, or that has ejected a replica for failing its own
// requests, sees fewer. The largest count is the replicas actually serving
// someone, so the per-replica figures divide by it. (Swarm's own count of
// running tasks is no better: it knows nothing of the gateways' rotation.)
func (r *cellReport) traffic(service string) swarmTraffic {
	var t swarmTraffic
	for _, st := range r.statuses {
		for _, ss := range st.Services {
			if ss.Service != service {
				continue
			}
			t.inflight += ss.InFlight
			t.rps += ss.RPS
			t.ready = max(t.ready, ss.Ready)
		}
	}
	return t
}

// readCells asks every gateway task of each cell for its status, all at
// once.
func (s *SwarmScaler) readCells(ctx context.Context, cells map[string]bool, gateways map[string]swarm.Service) map[string]*cellReport {
	reports := map[string]*cellReport{}
	var wg sync.WaitGroup
	for cell := range cells {
		r := &cellReport{}
		reports[cell] = r
		gw, ok := gateways[cell]
		if !ok {
			r.err = fmt.Errorf("cell %s has no gateway service", cell)
			continue
		}
		wg.Go(func() { s.readCell(ctx, gw, r) })
	}
	wg.Wait()
	return reports
}

// readCell fills r with the status of every task of a cell's gateway
// service, or with the first failure.
func (s *SwarmScaler) readCell(ctx context.Context, gw swarm.Service, r *cellReport) {
	port, err := strconv.Atoi(gw.Spec.Labels[engine.LabelAdminPort])
	if err != nil || port <= 0 || port > 65535 {
		r.err = fmt.Errorf("gateway service %s: label %s is %q, not a port", gw.Spec.Name, engine.LabelAdminPort, gw.Spec.Labels[engine.LabelAdminPort])
		return
	}
	name := "tasks." + gw.Spec.Name
	addrs, err := s.resolver.LookupHost(ctx, name)
	if err == nil && len(addrs) == 0 {
		err = errors.New("no address")
	}
	if err != nil {
		r.err = fmt.Errorf("resolve %s: %w", name, err)
		return
	}
	slices.Sort(addrs)
	statuses := make([]api.CellStatus, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, swarmStatusTimeout)
			defer cancel()
			// Reading the status needs no token: only the calls that
			// change a cell do.
			c := admin.NewClient("http://"+net.JoinHostPort(addr, strconv.Itoa(port)), "", s.hc)
			statuses[i], errs[i] = c.Status(cctx)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		r.err = err
		return
	}
	r.statuses = statuses
}

// readCPU returns, per Swarm service name, the CPU of the targets that
// have a CPU target.
//
// A task's CPU can only be read from the node running it: the Swarm API
// has no stats, and the scaler talks to its own node's engine. So the
// metric covers the service's tasks on this node (running and not failing
// their health check), and its Samples say how many. autoscale.Decide
// counts the ready replicas without a sample conservatively (as idle when
// the sampled ones ask for more, as at target when they ask for less), and
// skips the metric when no replica runs here: on a swarm a CPU target acts
// on the tasks that share the scaler's node, and a service none of whose
// tasks do is scaled on its other targets only.
func (s *SwarmScaler) readCPU(ctx context.Context, targets []swarmTarget) map[string]autoscale.Metric {
	names := map[string]bool{}
	for _, t := range targets {
		if t.policy.CPU > 0 {
			names[t.svc.Spec.Name] = true
		}
	}
	out := map[string]autoscale.Metric{}
	var list []container.Summary
	if len(names) > 0 {
		var err error
		list, err = s.eng.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", swarmTaskServiceLabel),
			filters.Arg("status", "running"),
		)})
		if err != nil {
			s.warn("containers", "list this node's task containers; CPU is unavailable", "error", err)
			return out
		}
		s.recovered("containers", "listing this node's task containers again")
	}
	ids := map[string][]string{}
	keep := map[string]bool{}
	for _, c := range list {
		name := c.Labels[swarmTaskServiceLabel]
		if !names[name] {
			continue
		}
		keep[c.ID] = true
		if !s.followed[c.ID] {
			if err := s.cpu.Add(c.ID); err == nil {
				s.followed[c.ID] = true
			}
		}
		// A starting task is busier than it will be, and an unhealthy one
		// is on its way out: neither speaks for the service.
		if strings.Contains(c.Status, "(health: starting)") || strings.Contains(c.Status, "(unhealthy)") {
			continue
		}
		ids[name] = append(ids[name], c.ID)
	}
	for id := range s.followed {
		if !keep[id] {
			s.cpu.Remove(id)
			delete(s.followed, id)
		}
	}
	for name, list := range ids {
		out[name] = s.cpu.CPUMetric(list)
	}
	return out
}

// scale decides the count of one service and writes it when it changes.
func (s *SwarmScaler) scale(ctx context.Context, t swarmTarget, report *cellReport, cpu autoscale.Metric, now time.Time) {
	st := s.services[t.svc.ID]
	if st == nil {
		st = &swarmScaled{sc: newScaler(now, t.current, now), seen: t.current}
		s.services[t.svc.ID] = st
	} else if t.current != st.seen {
		// Changed under the scaler: `orchestro scale`, a deploy that set
		// a new count, or the scaler's own write whose answer was lost.
		if ev, ok := DecodeScaledLabel(t.svc.Spec.Labels[engine.ScaledLabel]); ok && ev.To == t.current && ev.Time.Equal(st.wrote.Time) {
			st.sc.applied(autoscale.Decision{Reason: ev.Message}, ev.Time)
		} else {
			st.sc.override(now, t.current, "set by hand")
			s.log.Info("count changed outside the scaler; carrying on from it",
				"cell", t.cell, "service", t.service, "from", st.seen, "to", t.current)
		}
		st.seen = t.current
	}

	cell := s.cells[t.cell]
	if cell == nil {
		cell = &swarmCell{}
		s.cells[t.cell] = cell
	}
	if report == nil || report.err != nil {
		// A gateway that does not answer leaves the cell's traffic
		// unknown: the others saw only their share of it, and deciding
		// on that share would take replicas away from a loaded service.
		// So the counts hold, whether one gateway is silent or all are,
		// for a round or for long; holding also keeps a scale-down a
		// whole window away once the traffic can be read again.
		st.sc.hold(now, t.current)
		if cell.unreadSince.IsZero() {
			cell.unreadSince = now
		}
		if !cell.warned && now.Sub(cell.unreadSince) >= swarmHoldWarning {
			cell.warned = true
			var err error
			if report != nil {
				err = report.err
			}
			s.log.Warn("cannot read the cell's traffic; holding its counts", "cell", t.cell, "since", cell.unreadSince, "error", err)
		}
		return
	}
	if cell.warned {
		s.log.Info("reading the cell's traffic again", "cell", t.cell)
	}
	cell.unreadSince, cell.warned = time.Time{}, false

	if u := t.svc.UpdateStatus; u != nil && (u.State == swarm.UpdateStatePaused || u.State == swarm.UpdateStateRollbackPaused) {
		// Any update of the spec clears Swarm's update status, which
		// would resume a rollout Swarm paused because it failed. The
		// count holds until someone settles the rollout.
		st.sc.hold(now, t.current)
		s.warn("paused "+t.svc.Spec.Name, "rollout paused; holding the count", "cell", t.cell, "service", t.service, "state", u.State)
		return
	}
	delete(s.warned, "paused "+t.svc.Spec.Name)

	tr := report.traffic(t.service)
	st.sc.inflight.Add(now, 0, float64(tr.inflight))
	if tr.inflight > 0 || tr.rps > 0 {
		st.sc.lastRequest = now
	}
	m := autoscale.Metrics{
		Ready: tr.ready,
		// Tasks Swarm runs that no gateway has in rotation yet are
		// starting (or not scheduled yet): they count as not ready, so a
		// scale-up in progress is not repeated.
		NotReady: max(t.current-tr.ready, 0),
		// Each gateway's RPS is already an average over its last ten
		// seconds, the local autoscaler's rateWindow: averaging the sum
		// again would only add lag. The in-flight gauges go through the
		// scaler's in-flight window, as the local ones do.
		RPS: autoscale.PerReplica(tr.rps, tr.ready),
		CPU: cpu,
		// Not routed: a swarm gateway does not hold a request while its
		// service wakes, so taking a service to zero would fail the
		// requests that wake it. A service keeps one replica at least;
		// at zero (set by hand), traffic arriving wakes it.
		Routed:      false,
		LastRequest: st.sc.lastRequest,
	}
	if avg, ok := st.sc.inflight.Inflight(now); ok {
		m.Inflight = autoscale.PerReplica(avg, tr.ready)
	}
	if t.current == 0 && (tr.inflight > 0 || tr.rps > 0) {
		m.Pending = max(int(tr.inflight), 1)
	}
	dec := st.sc.decide(t.current, m, t.policy, now)
	if dec.Replicas == t.current {
		return
	}
	ev := api.Event{
		Time: now, Cell: t.cell, Service: t.service, Type: api.EventScaled,
		From: t.current, To: dec.Replicas, Message: dec.Reason,
	}
	if err := s.write(ctx, t.svc, dec.Replicas, ev); err != nil {
		// Nothing was written: the next round reads the service again
		// and decides from what it finds.
		if strings.Contains(err.Error(), errOutOfSequence) {
			s.log.Info("service changed since it was read; deciding again", "cell", t.cell, "service", t.service, "wanted", dec.Replicas)
		} else {
			s.log.Error("scale", "cell", t.cell, "service", t.service, "to", dec.Replicas, "error", err)
		}
		st.wrote = ev // a write whose answer was lost is recognized
		return
	}
	st.seen, st.wrote = dec.Replicas, ev
	st.sc.applied(dec, now)
	s.log.Info("scaled", "cell", t.cell, "service", t.service, "from", ev.From, "to", ev.To, "reason", dec.Reason)
}

// write sets a service's replica count and its scaled label, with the
// version it was read at. The listed service is not modified.
func (s *SwarmScaler) write(ctx context.Context, svc swarm.Service, replicas int, ev api.Event) error {
	label, err := EncodeScaledLabel(ev)
	if err != nil {
		return err
	}
	spec := svc.Spec
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[engine.ScaledLabel] = label
	n := uint64(replicas)
	spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}}
	// No registry query: the image stays the digest the service runs.
	resp, err := s.eng.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{})
	if err != nil {
		return fmt.Errorf("update service %s: %w", svc.Spec.Name, err)
	}
	for _, w := range resp.Warnings {
		s.log.Warn("update service", "service", svc.Spec.Name, "warning", w)
	}
	return nil
}

// warn logs a failure once for as long as it repeats unchanged.
func (s *SwarmScaler) warn(subject, msg string, args ...any) {
	key := msg + fmt.Sprint(args...)
	if s.warned[subject] == key {
		return
	}
	s.warned[subject] = key
	s.log.Warn(msg, append([]any{"subject", subject}, args...)...)
}

// recovered ends a warning, logging msg when there was one.
func (s *SwarmScaler) recovered(subject, msg string) {
	if _, ok := s.warned[subject]; ok {
		delete(s.warned, subject)
		s.log.Info(msg)
	}
}

// hold records that the count of n was kept without a decision, since the
// traffic could not be read, as a recommendation to stay at n: a
// scale-down then waits a stabilization window after the traffic can be
// read again, instead of following the first reading after a gap. A run of
// holds at one count keeps a single entry, moved to now.
func (sc *scaler) hold(now time.Time, n int) {
	if k := len(sc.history); k > 0 && sc.history[k-1].Replicas == n {
		sc.history[k-1].At = now
		return
	}
	sc.history = append(sc.history, autoscale.Recommendation{At: now, Replicas: n})
}

// EncodeAutoscaleLabel returns the value of a replica service's
// engine.AutoscaleLabel: the JSON of its policy.
func EncodeAutoscaleLabel(p *cellspec.Autoscale) (string, error) {
	if p == nil {
		return "", errors.New("encode autoscale label: no policy")
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode autoscale label: %w", err)
	}
	return string(b), nil
}

// DecodeAutoscaleLabel reads the value of an engine.AutoscaleLabel.
func DecodeAutoscaleLabel(v string) (*cellspec.Autoscale, error) {
	var p cellspec.Autoscale
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return nil, fmt.Errorf("decode label %s: %w", engine.AutoscaleLabel, err)
	}
	if p.Max < p.Min || p.Min < 0 {
		return nil, fmt.Errorf("decode label %s: bounds %d-%d", engine.AutoscaleLabel, p.Min, p.Max)
	}
	return &p, nil
}

// EncodeScaledLabel returns the value of an engine.ScaledLabel: the JSON of
// the event of a scaling decision.
func EncodeScaledLabel(e api.Event) (string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("encode scaled label: %w", err)
	}
	return string(b), nil
}

// DecodeScaledLabel reads the value of an engine.ScaledLabel, and reports
// false when there is none or it is not an event.
func DecodeScaledLabel(v string) (api.Event, bool) {
	if v == "" {
		return api.Event{}, false
	}
	var e api.Event
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return api.Event{}, false
	}
	return e, true
}
