package gateway

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"golang.org/x/sync/errgroup"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// execute carries out a plan made from spec. Removals of exited replicas
// and creations run now; drains run in the background, since they wait for
// requests. A failed operation is reported as an error event about its
// replica; a failed creation also counts towards its service's crash
// backoff, so a service that cannot start is retried less and less often.
func (c *Controller) execute(ctx context.Context, spec *api.GatewaySpec, p Plan) {
	c.reportWaits(p)
	for _, op := range p.Ops {
		if op.Kind != OpRemove {
			continue
		}
		if op.Cause == CauseExited || op.Cause == CauseNeverStarted {
			c.keepExited(ctx, op)
		}
		if err := c.eng.ContainerRemove(ctx, op.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			c.opFailed(op, fmt.Errorf("remove replica %s/%s-%d: %w", p.Cell, op.Service, op.N, err))
			continue
		}
		c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: op.Event(), Message: op.Reason})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var mu sync.Mutex
	failed := map[string]error{}
	for _, op := range p.Ops {
		if op.Kind != OpCreate {
			continue
		}
		g.Go(func() error {
			if err := c.create(gctx, spec, op); err != nil {
				c.opFailed(op, err)
				mu.Lock()
				if failed[op.Service] == nil {
					failed[op.Service] = err
				}
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	if len(failed) > 0 && ctx.Err() == nil {
		// One round counts once per service: its creations failed
		// together, most likely for one cause (a missing image fails
		// every one of them alike).
		c.mu.Lock()
		now := c.now()
		for _, svc := range slices.Sorted(maps.Keys(failed)) {
			c.countFailure(svc, failureStart, 0, failed[svc].Error(), now)
		}
		c.mu.Unlock()
	}
	for _, op := range p.Ops {
		if op.Kind == OpDrain {
			c.drain(ctx, op)
		}
	}
	// A plan that only waits changes nothing: what it waits for (a
	// health transition, the end of a backoff) kicks or comes with the
	// next resync. Kicking here would spin on the engine meanwhile.
	if !p.Empty() {
		c.Kick()
	}
}

// opFailed reports an operation that failed.
func (c *Controller) opFailed(op Op, err error) {
	c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: api.EventError, Message: err.Error()})
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

// create creates and starts one replica as spec describes it.
func (c *Controller) create(ctx context.Context, spec *api.GatewaySpec, op Op) error {
	svc := spec.Cell.Services[op.Service]
	img := spec.Images[op.Service]
	name := engine.ReplicaName(c.project, c.cell, op.Service, op.N)
	hash := serviceHash(spec, op.Service)
	cfg, hostCfg, netCfg := replicaConfig(spec, svc, img, op.N, name, hash)
	resp, err := c.eng.ContainerCreate(ctx, cfg, hostCfg, netCfg, nil, name)
	if err != nil {
		return fmt.Errorf("create replica %s: %w", name, err)
	}
	if err := c.eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("start replica %s: %w", name, err)
	}
	c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: op.Event(), Message: op.Reason})
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
		c.mu.Lock()
		r.drained = true
		handOver := c.stopping
		c.notifyLocked()
		c.mu.Unlock()
		c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: api.EventDrained,
			Message: fmt.Sprintf("in %s (%s)", c.now().Sub(start).Round(time.Millisecond), op.Reason)})
		if handOver {
			// A stopped cell's replicas are removed by whoever stopped
			// it (down, with the gateway): the gateway stops writing
			// them, so that one client at a time stops and removes a
			// container.
			return
		}
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
			c.emit(api.Event{Service: op.Service, Replica: strconv.Itoa(op.N), Type: op.Event(), Message: op.Reason})
		}
		c.Kick()
	}()
}
