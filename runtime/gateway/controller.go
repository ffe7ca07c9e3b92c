package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
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
	crashWindow    = time.Minute
	maxCrashDelay  = 5 * time.Minute
)

// publisher receives controller events.
type publisher interface{ Publish(api.Event) }

// replica is the controller's record of one replica container.
type replica struct {
	id       string
	name     string
	service  string
	n        int
	hash     string
	state    string
	exitCode int
	addr     string // ip:port on the cell network; empty until running
	created  time.Time
	started  time.Time
	health   health.State
	removing bool
	probed   bool
	up       *proxy.Upstream
	// rate estimation for status: served count at the last sample.
	lastServed uint64
	lastSample time.Time
	rps        float64
}

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

	kick chan struct{}
	wg   sync.WaitGroup // drain-and-remove goroutines
	// traffic, when set, gives recent per-service request figures.
	traffic *trafficStats
	// onCheck, when set, sees every health check result (for metrics).
	onCheck func(service string, replica int, ok bool)

	mu            sync.Mutex
	spec          *api.GatewaySpec
	overrides     map[string]int
	restartBefore map[string]time.Time
	stopping      bool
	replicas      map[string]*replica
	crash         map[string]CrashState
	waits         map[string]string
	lastWake      map[string]time.Time
	scalers       map[string]*scaler
	// observed is set once the replicas were listed: until then, a
	// request finding no replica is held rather than refused.
	observed bool
	started  time.Time
	sampler  *autoscale.CPUSampler
}

// controllerState is what survives a gateway restart: runtime overrides and
// the latest spec pushed through the admin API. It lives in the gateway
// container's own filesystem, so it goes with the container.
type controllerState struct {
	Spec          *api.GatewaySpec     `json:"spec,omitempty"`
	Overrides     map[string]int       `json:"overrides,omitempty"`
	RestartBefore map[string]time.Time `json:"restart_before,omitempty"`
}

// NewController returns a controller for the cell in spec. statePath is
// where overrides are kept across restarts ("" keeps none).
func NewController(eng engine.Engine, spec *api.GatewaySpec, px *proxy.Proxy, events publisher, statePath string) *Controller {
	c := &Controller{
		eng:           eng,
		proxy:         px,
		events:        events,
		now:           time.Now,
		statePath:     statePath,
		kick:          make(chan struct{}, 1),
		spec:          spec,
		overrides:     map[string]int{},
		restartBefore: map[string]time.Time{},
		replicas:      map[string]*replica{},
		crash:         map[string]CrashState{},
		waits:         map[string]string{},
		lastWake:      map[string]time.Time{},
		scalers:       map[string]*scaler{},
		sampler:       autoscale.NewCPUSampler(eng),
	}
	c.started = c.now()
	c.prober = health.NewProber(c.onHealth)
	c.loadState()
	if c.spec != spec {
		// The state file held a newer spec than the container's own.
		_ = px.SetRoutes(c.spec.Cell)
	}
	return c
}

// Spec returns the spec the controller runs.
func (c *Controller) Spec() *api.GatewaySpec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spec
}

func (c *Controller) loadState() {
	if c.statePath == "" {
		return
	}
	data, err := os.ReadFile(c.statePath)
	if err != nil {
		return
	}
	var st controllerState
	if json.Unmarshal(data, &st) != nil {
		return
	}
	if st.Spec != nil && st.Spec.Cell != nil && st.Spec.Cell.Name == c.spec.Cell.Name {
		c.spec = st.Spec
	}
	for k, v := range st.Overrides {
		c.overrides[k] = v
	}
	for k, v := range st.RestartBefore {
		c.restartBefore[k] = v
	}
}

// saveState writes the state file; c.mu must be held.
func (c *Controller) saveState() {
	if c.statePath == "" {
		return
	}
	data, err := json.Marshal(controllerState{Spec: c.spec, Overrides: c.overrides, RestartBefore: c.restartBefore})
	if err != nil {
		return
	}
	_ = os.MkdirAll(filepath.Dir(c.statePath), 0o755)
	tmp := c.statePath + ".tmp"
	if os.WriteFile(tmp, data, 0o600) == nil {
		_ = os.Rename(tmp, c.statePath)
	}
}

func (c *Controller) emit(e api.Event) {
	if e.Time.IsZero() {
		e.Time = c.now()
	}
	e.Cell = c.spec.Cell.Name
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
			if err := c.reconcile(ctx); err != nil && ctx.Err() == nil {
				c.emit(api.Event{Type: api.EventError, Message: err.Error()})
			}
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

// watchEngine turns engine events about the cell's containers into kicks,
// reconnecting when the stream breaks.
func (c *Controller) watchEngine(ctx context.Context) {
	for ctx.Err() == nil {
		f := filters.NewArgs(
			filters.Arg("type", "container"),
			filters.Arg("label", engine.LabelProject+"="+c.spec.Project),
		)
		msgs, errs := c.eng.Events(ctx, events.ListOptions{Filters: f})
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-msgs:
				switch m.Action {
				case "die", "start", "destroy", "stop", "kill", "pause", "unpause", "oom":
					c.Kick()
				}
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
			Name:          name,
			Replicas:      n,
			Hash:          engine.ServiceConfigHash(c.spec.Project, cell.Name, s, c.spec.Images[name].ID),
			Restart:       s.Restart,
			DependsOn:     s.DependsOn,
			RestartBefore: c.restartBefore[name],
		})
	}
	return out
}

// reconcile is one observe → plan → execute round.
func (c *Controller) reconcile(ctx context.Context) error {
	list, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+c.spec.Project),
		filters.Arg("label", engine.LabelCell+"="+c.spec.Cell.Name),
		filters.Arg("label", engine.LabelRole+"="+engine.RoleReplica),
	)})
	if err != nil {
		return fmt.Errorf("list replicas of cell %s: %w", c.spec.Cell.Name, err)
	}
	c.mu.Lock()
	c.observe(list)
	c.observed = true
	obs := c.observedLocked()
	p := plan(c.spec.Cell.Name, c.desired(), obs, c.crash, c.now())
	c.updateUpstreamsLocked()
	c.mu.Unlock()
	// Other gateways are revived after this one knows its own replicas,
	// so a restarted gateway serves as soon as it can.
	c.reviveGateways(ctx)
	return c.execute(ctx, p)
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
	for _, what := range revive(ctx, c.eng, c.spec.Project, engine.GatewayName(c.spec.Project, c.spec.Cell.Name)) {
		c.emit(api.Event{Type: api.EventStarted, Message: "restarted " + what})
	}
}

// observe folds a container listing into the controller's records; c.mu
// must be held.
func (c *Controller) observe(list []container.Summary) {
	now := c.now()
	netName := engine.NetworkName(c.spec.Project, c.spec.Cell.Name)
	seen := map[string]bool{}
	for _, s := range list {
		// Refuse to act on anything that is not ours, whatever the
		// engine's filter returned.
		if s.Labels[engine.LabelProject] != c.spec.Project || s.Labels[engine.LabelCell] != c.spec.Cell.Name {
			continue
		}
		seen[s.ID] = true
		r := c.replicas[s.ID]
		if r == nil {
			n, _ := strconv.Atoi(s.Labels[engine.LabelReplica])
			r = &replica{
				id:      s.ID,
				name:    engine.ContainerName(s.Names),
				service: s.Labels[engine.LabelService],
				n:       n,
				hash:    s.Labels[engine.LabelConfigHash],
				created: time.Unix(s.Created, 0),
				health:  health.StateStarting,
			}
			c.replicas[s.ID] = r
		}
		prev := r.state
		r.state = s.State
		if r.state == "exited" || r.state == "dead" {
			r.exitCode = exitCodeOf(s.Status)
		}
		if prev == "running" && r.state != "running" && r.state != "paused" {
			c.replicaStopped(r, now)
		}
		if r.state == "running" && r.addr == "" {
			if ep := s.NetworkSettings; ep != nil {
				if n := ep.Networks[netName]; n != nil && n.IPAddress != "" {
					svc := c.spec.Cell.Services[r.service]
					port := 0
					if svc != nil {
						port = svc.Port
					}
					r.addr = net.JoinHostPort(n.IPAddress, strconv.Itoa(port))
					r.started = now
				}
			}
		}
		if r.state == "running" && r.addr != "" && !r.probed && !r.removing {
			c.startProbing(r)
			_ = c.sampler.Add(r.id)
		}
	}
	for id, r := range c.replicas {
		if !seen[id] {
			c.forget(r)
			delete(c.replicas, id)
		}
	}
}

// replicaStopped handles a replica that stopped without being asked to.
func (c *Controller) replicaStopped(r *replica, now time.Time) {
	c.unprobe(r)
	if r.up != nil {
		r.up.SetHealthy(false)
	}
	if r.removing {
		return
	}
	c.emit(api.Event{Service: r.service, Replica: strconv.Itoa(r.n), Type: api.EventExited,
		Message: fmt.Sprintf("code %d", r.exitCode)})
	cs := c.crash[r.service]
	if now.Sub(cs.NotBefore) > crashWindow {
		cs.Crashes = 0
	}
	cs.Crashes++
	delay := time.Duration(0)
	if cs.Crashes > 1 {
		delay = min(time.Second<<(cs.Crashes-2), maxCrashDelay)
	}
	cs.NotBefore = now.Add(delay)
	c.crash[r.service] = cs
	if cs.Crashes >= 3 {
		c.emit(api.Event{Service: r.service, Type: api.EventCrashloop,
			Message: fmt.Sprintf("%d crashes; next replacement in %s", cs.Crashes, delay)})
	}
}

func (c *Controller) startProbing(r *replica) {
	svc := c.spec.Cell.Services[r.service]
	r.probed = true
	if svc == nil || svc.Health == nil || svc.Health.Kind() == "" {
		r.health = health.StateNone
		return
	}
	r.health = health.StateStarting
	chk := health.NewChecker(svc.Health, r.addr, r.id, execer{c.eng})
	_ = c.prober.Add(health.Target{ID: r.id, Health: svc.Health, Checker: chk, Started: r.started})
}

func (c *Controller) unprobe(r *replica) {
	if r.probed {
		c.prober.Remove(r.id)
		r.probed = false
	}
}

func (c *Controller) forget(r *replica) {
	c.unprobe(r)
	c.sampler.Remove(r.id)
	if r.up != nil {
		r.up.SetHealthy(false)
	}
}

// onHealth receives every health check result from the prober.
func (c *Controller) onHealth(res health.Result) {
	c.mu.Lock()
	r := c.replicas[res.ID]
	if r == nil || !r.probed {
		c.mu.Unlock()
		return
	}
	r.health = res.State
	if c.onCheck != nil {
		c.onCheck(r.service, r.n, res.OK)
	}
	if r.up != nil {
		r.up.SetHealthy(res.State.Ready())
	}
	tr := res.Transition
	c.mu.Unlock()
	if tr == nil {
		return
	}
	switch tr.To {
	case health.StateHealthy:
		c.emit(api.Event{Service: r.service, Replica: strconv.Itoa(r.n), Type: api.EventHealthy})
	case health.StateUnhealthy:
		c.emit(api.Event{Service: r.service, Replica: strconv.Itoa(r.n), Type: api.EventUnhealthy, Message: tr.Reason})
	}
	c.Kick()
}

// observedLocked converts the records into planner input.
func (c *Controller) observedLocked() []ObservedReplica {
	out := make([]ObservedReplica, 0, len(c.replicas))
	for _, r := range c.replicas {
		h := string(r.health)
		if r.state == "running" && !r.probed {
			h = string(health.StateStarting)
		}
		out = append(out, ObservedReplica{
			ID: r.id, Name: r.name, Service: r.service, N: r.n, Hash: r.hash,
			State: r.state, ExitCode: r.exitCode, Health: h, Created: r.created, Removing: r.removing,
		})
	}
	return out
}

// updateUpstreamsLocked hands the proxy every running replica per service;
// availability (health, ejection, draining) is the upstream's own state.
func (c *Controller) updateUpstreamsLocked() {
	bySvc := map[string][]*proxy.Upstream{}
	for _, r := range c.replicas {
		if r.state != "running" && r.state != "paused" || r.addr == "" {
			continue
		}
		if r.up == nil {
			r.up = &proxy.Upstream{ID: r.id, Service: r.service, Replica: r.n, Name: r.service + "-" + strconv.Itoa(r.n), Addr: r.addr}
			r.up.SetHealthy(r.health.Ready())
		}
		// A replica being drained stays in the pool, marked draining (no
		// new request picks it), so the drain can wait for the requests
		// it still serves; it leaves when its container is gone.
		bySvc[r.service] = append(bySvc[r.service], r.up)
	}
	for _, name := range c.spec.Cell.ServiceNames() {
		ups := bySvc[name]
		sort.Slice(ups, func(i, j int) bool { return ups[i].Replica < ups[j].Replica })
		c.proxy.SetUpstreams(name, ups)
	}
}

// execute carries out a plan. Removals of exited replicas and creations
// run now; drains run in the background, since they wait for requests.
func (c *Controller) execute(ctx context.Context, p Plan) error {
	var errs []error
	c.reportWaits(p)
	for _, op := range p.Ops {
		if op.Kind != OpRemove {
			continue
		}
		if err := c.eng.ContainerRemove(ctx, op.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove replica %s/%s-%d: %w", p.Cell, op.Service, op.N, err))
			continue
		}
		c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: api.EventRemoved, Message: op.Reason})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var mu sync.Mutex
	for _, op := range p.Ops {
		if op.Kind != OpCreate {
			continue
		}
		g.Go(func() error {
			if err := c.create(gctx, op); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	for _, op := range p.Ops {
		if op.Kind == OpDrain {
			c.drain(ctx, op)
		}
	}
	if len(p.Ops) > 0 {
		c.Kick()
	}
	return errors.Join(errs...)
}

func (c *Controller) reportWaits(p Plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := map[string]string{}
	for _, op := range p.Ops {
		if op.Kind == OpWait {
			now[op.Service] = op.Reason
		}
	}
	for svc, reason := range now {
		if c.waits[svc] == "" {
			c.emit(api.Event{Service: svc, Type: api.EventWaiting, Message: reason})
		}
	}
	c.waits = now
}

func (c *Controller) replicaName(service string, n int) string {
	return engine.ReplicaName(c.spec.Project, c.spec.Cell.Name, service, n)
}

// create creates and starts one replica.
func (c *Controller) create(ctx context.Context, op Op) error {
	c.mu.Lock()
	spec := c.spec
	c.mu.Unlock()
	svc := spec.Cell.Services[op.Service]
	img := spec.Images[op.Service]
	name := c.replicaName(op.Service, op.N)
	hash := engine.ServiceConfigHash(spec.Project, spec.Cell.Name, svc, img.ID)
	cfg, hostCfg, netCfg := replicaConfig(spec, svc, img, op.N, name, hash)
	resp, err := c.eng.ContainerCreate(ctx, cfg, hostCfg, netCfg, nil, name)
	if err != nil {
		return fmt.Errorf("create replica %s: %w", name, err)
	}
	if err := c.eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("start replica %s: %w", name, err)
	}
	c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: api.EventStarted, Message: op.Reason})
	return nil
}

// replicaConfig is the container configuration of replica n of a service.
func replicaConfig(spec *api.GatewaySpec, svc *cellspec.Service, img api.ServiceImage, n int, name, hash string) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	env := make([]string, 0, len(svc.Env)+4)
	keys := make([]string, 0, len(svc.Env))
	for k := range svc.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+svc.Env[k])
	}
	env = append(env,
		"ORCHESTRO_PROJECT="+spec.Project,
		"ORCHESTRO_CELL="+spec.Cell.Name,
		"ORCHESTRO_SERVICE="+svc.Name,
		"ORCHESTRO_REPLICA="+strconv.Itoa(n),
	)
	ref := img.Ref
	if ref == "" {
		ref = svc.Image
	}
	cfg := &container.Config{
		Image:    ref,
		Hostname: name,
		Env:      env,
		Labels:   engine.ReplicaLabels(spec.Project, spec.Cell.Name, svc.Name, n, hash),
	}
	if len(svc.Command) > 0 {
		cfg.Cmd = svc.Command
	}
	if len(svc.Entrypoint) > 0 {
		cfg.Entrypoint = svc.Entrypoint
	}
	hostCfg := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Init:          nil,
	}
	hostCfg.Resources.NanoCPUs = int64(svc.Resources.CPUs * 1e9)
	hostCfg.Resources.Memory = svc.Resources.Memory
	for _, v := range svc.Volumes {
		m := mount.Mount{Target: v.Target, ReadOnly: v.ReadOnly}
		if v.Type == cellspec.VolumeBind {
			m.Type = mount.TypeBind
			m.Source = v.Source
		} else {
			m.Type = mount.TypeVolume
			m.Source = engine.VolumeName(spec.Project, v.Source)
		}
		hostCfg.Mounts = append(hostCfg.Mounts, m)
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		engine.NetworkName(spec.Project, spec.Cell.Name): {Aliases: []string{svc.Name}},
	}}
	return cfg, hostCfg, netCfg
}

// drain takes a replica out of rotation and, in the background, waits for
// its in-flight requests, stops it with its grace period and removes it.
func (c *Controller) drain(ctx context.Context, op Op) {
	c.mu.Lock()
	r := c.replicas[op.ID]
	if r == nil || r.removing {
		c.mu.Unlock()
		return
	}
	r.removing = true
	c.unprobe(r)
	up := r.up
	c.mu.Unlock()
	if up != nil {
		c.proxy.SetDraining(up.ID)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		start := c.now()
		if up != nil {
			dctx, cancel := context.WithTimeout(ctx, drainTimeout)
			if err := c.proxy.Drain(dctx, up.ID); err != nil && ctx.Err() == nil {
				c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: api.EventError,
					Message: fmt.Sprintf("drain: %v; %d requests still in flight are cut", err, up.Inflight())})
			}
			cancel()
		}
		c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: api.EventDrained,
			Message: fmt.Sprintf("in %s (%s)", c.now().Sub(start).Round(time.Millisecond), op.Reason)})
		// The removal must finish even when the gateway is shutting down.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace+10*time.Second)
		defer cancel()
		grace := int(stopGrace / time.Second)
		if err := c.eng.ContainerStop(rctx, op.ID, container.StopOptions{Timeout: &grace}); err != nil && !errdefs.IsNotFound(err) {
			c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: api.EventError, Message: fmt.Sprintf("stop %s: %v", r.name, err)})
		}
		if err := c.eng.ContainerRemove(rctx, op.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: api.EventError, Message: fmt.Sprintf("remove %s: %v", r.name, err)})
		} else {
			typ := api.EventRemoved
			if op.Reason == "unhealthy, replaced" {
				typ = api.EventReplaced
			}
			c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: typ, Message: op.Reason})
		}
		c.Kick()
	}()
}

// exitCodeOf reads the exit code from a status such as "Exited (137) 3
// seconds ago".
func exitCodeOf(status string) int {
	var code int
	if _, err := fmt.Sscanf(status, "Exited (%d)", &code); err == nil {
		return code
	}
	return -1
}
