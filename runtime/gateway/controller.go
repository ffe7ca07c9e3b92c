package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"golang.org/x/sync/errgroup"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/autoscale"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/health"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// Timings of the controller.
const (
	resyncInterval = time.Second
	drainTimeout   = 30 * time.Second
	stopGrace      = 10 * time.Second
)

// publisher receives controller events.
type publisher interface{ Publish(api.Event) }

// replica is the controller's record of one replica container.
type replica struct {
	id      string
	name    string
	service string
	n       int
	hash    string
	state   ContainerState
	// exitCode is the code of the latest exit, -1 while unknown; exitKnown
	// is set once it was read from the engine, so a stopped container is
	// inspected once.
	exitCode  int
	exitKnown bool
	addr      string // ip:port on the cell network; empty until running
	created   time.Time
	started   time.Time
	health    health.State
	// listening is when the gateway first connected to the port of a
	// replica without a health check (see watchListening); zero until
	// then, and for a service without a port.
	listening time.Time
	removing  bool
	// drained is set once a replica being removed is out of rotation
	// and has no request in flight: it serves nothing any more.
	drained bool
	probed  bool
	up      *proxy.Upstream
	// rate estimation for status: served count at the last sample.
	lastServed uint64
	lastSample time.Time
	rps        float64
}

// hooks are what the gateway plugs into its source of replicas (see
// source), set before it runs.
type hooks struct {
	// traffic, when set, gives recent per-service request figures.
	traffic *trafficStats
	// onSpec, when set, sees every spec UpdateSpec installs, after the
	// proxy took its routes (the flows follow it).
	onSpec func(*cellspec.Cell)
	// flowStatus, when set, reports the cell's flows for Status.
	flowStatus func(now time.Time) []api.FlowStatus
	// onCheck, when set, sees every health check result (for metrics).
	onCheck func(service string, replica int, ok bool)
}

// setHooks replaces the hooks.
func (h *hooks) setHooks(x hooks) { *h = x }

// Controller reconciles the replicas of one cell: it observes them through
// the engine by label, plans with the pure plan function and executes the
// plan. It alone creates, replaces and removes the cell's replicas.
type Controller struct {
	eng       engine.Engine
	proxy     *proxy.Proxy
	prober    *health.Prober
	events    publisher
	now       func() time.Time
	statePath string
	// project and cell name the cell; UpdateSpec refuses a spec for any
	// other, so they never change and are read without the lock.
	project string
	cell    string

	kick chan struct{}
	wg   sync.WaitGroup // drain-and-remove goroutines
	hooks

	mu sync.Mutex
	// spec is replaced whole by UpdateSpec, never changed in place: read
	// it under mu, or take it once with Spec and use that snapshot for a
	// whole round, so one round never mixes two specs.
	spec      *api.GatewaySpec
	overrides map[string]int
	// restarting holds, per service, the container IDs of the replicas
	// a rolling restart still has to replace (see DesiredService).
	restarting map[string][]string
	stopping   bool
	// stopPlanned is set once a round planned with stopping set has run:
	// no creation is under way any more, and every replica it observed
	// is being drained (see Stop).
	stopPlanned bool
	// changed is closed, and forgotten, when a replica is drained or a
	// round has run, to wake Stop; see changedLocked.
	changed  chan struct{}
	replicas map[string]*replica
	crash    map[string]CrashState
	// exited keeps, per service, its latest replicas that exited and
	// were removed, with the end of their output (see keepExited).
	exited   map[string][]api.ExitedReplica
	waits    map[string]string
	lastWake map[string]time.Time
	scalers  map[string]*scaler
	// died holds the containers whose die event came in since the round
	// that last listed them (see exitCodes).
	died map[string]bool
	// observed is set once the replicas were listed: until then, a
	// request finding no replica is held rather than refused.
	observed bool
	started  time.Time
	sampler  *autoscale.CPUSampler
}

// NewController returns a controller for the cell in spec. statePath is
// where overrides are kept across restarts ("" keeps none).
func NewController(eng engine.Engine, spec *api.GatewaySpec, px *proxy.Proxy, events publisher, statePath string) *Controller {
	c := &Controller{
		eng:        eng,
		proxy:      px,
		events:     events,
		now:        time.Now,
		statePath:  statePath,
		project:    spec.Project,
		cell:       spec.Cell.Name,
		kick:       make(chan struct{}, 1),
		spec:       spec,
		overrides:  map[string]int{},
		restarting: map[string][]string{},
		replicas:   map[string]*replica{},
		crash:      map[string]CrashState{},
		exited:     map[string][]api.ExitedReplica{},
		waits:      map[string]string{},
		lastWake:   map[string]time.Time{},
		scalers:    map[string]*scaler{},
		died:       map[string]bool{},
		sampler:    autoscale.NewCPUSampler(eng),
	}
	c.started = c.now()
	c.prober = health.NewProber(c.onHealth)
	if err := c.loadState(); err != nil {
		c.emit(api.Event{Type: api.EventError, Message: err.Error()})
	}
	if c.spec != spec {
		// The state file held a newer spec than the container's own. One
		// the proxy refuses is dropped, so the proxy and the controller
		// never run two different specs.
		if err := px.SetRoutes(c.spec.Cell); err != nil {
			c.emit(api.Event{Type: api.EventError, Message: fmt.Sprintf("load state file %s: spec: %v; running the container's spec", statePath, err)})
			c.spec = spec
		}
	}
	return c
}

// Spec returns the spec the controller runs.
func (c *Controller) Spec() *api.GatewaySpec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spec
}

// emit publishes an event about the cell. It takes no lock, so it may be
// called with c.mu held.
func (c *Controller) emit(e api.Event) {
	if e.Time.IsZero() {
		e.Time = c.now()
	}
	e.Cell = c.cell
	c.events.Publish(e)
}

// Kick asks for a reconciliation soon.
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends: on every engine event about the cell's
// containers, on every health transition, and once a second.
func (c *Controller) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.prober.Run(ctx) })
	g.Go(func() error { return c.sampler.Run(ctx) })
	g.Go(func() error { return c.runAutoscaler(ctx) })
	g.Go(func() error { c.watchEngine(ctx); return nil })
	g.Go(func() error {
		t := time.NewTicker(resyncInterval)
		defer t.Stop()
		for {
			c.step(ctx)
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			case <-c.kick:
			}
		}
	})
	err := g.Wait()
	c.wg.Wait()
	return err
}

// step is one round of the reconcile loop. The failures of single
// operations are reported by the executor; what is left is a failure to
// observe, which ends the round.
func (c *Controller) step(ctx context.Context) {
	if err := c.reconcile(ctx); err != nil && ctx.Err() == nil {
		c.emit(api.Event{Type: api.EventError, Message: err.Error()})
	}
}

// watchEngine turns engine events about the cell's containers into kicks,
// reconnecting when the stream breaks.
func (c *Controller) watchEngine(ctx context.Context) {
	for ctx.Err() == nil {
		f := filters.NewArgs(
			filters.Arg("type", "container"),
			filters.Arg("label", engine.LabelProject+"="+c.project),
		)
		msgs, errs := c.eng.Events(ctx, events.ListOptions{Filters: f})
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-msgs:
				c.noteEvent(m)
			case <-errs:
				break stream
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// noteEvent takes one engine event about the project's containers: a
// change of state asks for a round, and a death is remembered for it,
// since the engine's listing may not show it yet (see exitCodes).
func (c *Controller) noteEvent(m events.Message) {
	switch m.Action {
	case events.ActionDie:
		if m.Actor.Attributes[engine.LabelCell] == c.cell {
			c.mu.Lock()
			c.died[m.Actor.ID] = true
			c.mu.Unlock()
		}
		c.Kick()
	case events.ActionStart, events.ActionDestroy, events.ActionStop, events.ActionKill,
		events.ActionPause, events.ActionUnPause, events.ActionOOM:
		c.Kick()
	}
}

// desired builds the desired services from the spec and runtime overrides;
// c.mu must be held.
func (c *Controller) desired() []DesiredService {
	var out []DesiredService
	cell := c.spec.Cell
	for _, name := range cell.ServiceNames() {
		s := cell.Services[name]
		n := s.Replicas
		if o, ok := c.overrides[name]; ok {
			n = o
		}
		if c.stopping {
			n = 0
		}
		out = append(out, DesiredService{
			Name:       name,
			Replicas:   n,
			Hash:       serviceHash(c.spec, name),
			Restart:    s.Restart,
			DependsOn:  s.DependsOn,
			Restarting: c.restartingSet(name),
		})
	}
	return out
}

// serviceHash is the config hash the replicas of a service in spec carry.
func serviceHash(spec *api.GatewaySpec, service string) string {
	return engine.ServiceConfigHash(spec.Project, spec.Cell.Name, spec.Cell.Services[service], spec.Images[service].ID)
}

// reconcile is one observe → plan → execute round. The spec is taken once,
// with the plan, and the plan is executed with that same spec, so a spec
// replaced meanwhile only shows in the next round.
func (c *Controller) reconcile(ctx context.Context) error {
	list, err := c.listReplicas(ctx)
	if err != nil {
		return err
	}
	exits := c.exitCodes(ctx, list)
	c.mu.Lock()
	spec := c.spec
	c.observe(spec, list, exits)
	c.observed = true
	c.pruneRestartingLocked()
	obs := c.observedLocked()
	stopping := c.stopping
	p := plan(c.cell, c.desired(), obs, c.crash, c.now())
	c.updateUpstreamsLocked(spec)
	c.notifyLocked()
	c.mu.Unlock()
	// Other gateways are revived after this one knows its own replicas,
	// so a restarted gateway serves as soon as it can.
	c.reviveGateways(ctx)
	c.execute(ctx, spec, p)
	if stopping {
		// This round created nothing and started the drain of every
		// replica there was; the rounds before it are over, with their
		// creations.
		c.mu.Lock()
		c.stopPlanned = true
		c.notifyLocked()
		c.mu.Unlock()
	}
	return nil
}

// listReplicas lists the cell's replica containers, stopped ones too.
func (c *Controller) listReplicas(ctx context.Context) ([]container.Summary, error) {
	list, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+c.project),
		filters.Arg("label", engine.LabelCell+"="+c.cell),
		filters.Arg("label", engine.LabelRole+"="+engine.RoleReplica),
	)})
	if err != nil {
		return nil, fmt.Errorf("list replicas of cell %s: %w", c.cell, err)
	}
	return list, nil
}

// reviveGateways starts the project's gateways and keeper that stopped
// without being removed (see revive).
func (c *Controller) reviveGateways(ctx context.Context) {
	c.mu.Lock()
	stopping := c.stopping
	c.mu.Unlock()
	if stopping {
		return
	}
	for _, what := range revive(ctx, c.eng, c.project, engine.GatewayName(c.project, c.cell)) {
		c.emit(api.Event{Type: api.EventStarted, Message: "restarted " + what})
	}
}
