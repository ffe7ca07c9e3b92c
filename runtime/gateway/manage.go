package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/health"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// Status reports the cell: services, desired and ready replicas, and per
// replica its state, health, address and traffic.
func (c *Controller) Status() api.CellStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	cell := c.spec.Cell
	st := api.CellStatus{
		Cell:     cell.Name,
		Gateway:  "running",
		URL:      fmt.Sprintf("http://127.0.0.1:%d", cell.Gateway.Port),
		SpecHash: c.spec.Hash(),
	}
	if c.stopping {
		st.Gateway = api.GatewayStopping
	}
	desired := map[string]DesiredService{}
	for _, d := range c.desired() {
		desired[d.Name] = d
	}
	bySvc := map[string][]*replica{}
	for _, r := range c.replicas {
		bySvc[r.service] = append(bySvc[r.service], r)
	}
	for _, name := range cell.ServiceNames() {
		s := cell.Services[name]
		d := desired[name]
		ss := api.ServiceStatus{Service: name, Image: c.spec.Images[name].Ref, Desired: d.Replicas, Replicas: []api.ReplicaStatus{},
			Restarting: len(c.restarting[name])}
		if ss.Image == "" {
			ss.Image = s.Image
		}
		reps := bySvc[name]
		sort.Slice(reps, func(i, j int) bool { return reps[i].n < reps[j].n })
		var tally serviceTally
		for _, r := range reps {
			rs := replicaStatus(r, now)
			rs.ContainerID = r.id
			if u, ok := c.sampler.Usage(r.id); ok {
				rs.CPU, rs.Memory = u.CPU, u.Memory
				ss.CPU += u.CPU
				ss.Memory += u.Memory
			}
			if r.state == ContainerRunning && r.hash == d.Hash && r.health.Ready() && !r.removing {
				ss.Ready++
			}
			tally.add(&ss, rs, c.traffic == nil)
		}
		cs := c.crash[name]
		ss.Health = tally.health(d.Replicas, ss.Ready, len(reps), cs.Looping(now))
		if c.stopping {
			// Its replicas, drained, wait for down to remove them.
			ss.Health = "stopped"
		}
		if cs.Current(now) {
			ss.Failures = cs.Crashes
			if cs.StartFailed {
				ss.LastError = cs.Error
			} else {
				code := cs.ExitCode
				ss.LastExitCode = &code
			}
			if cs.NotBefore.After(now) {
				ss.NextTry = cs.NotBefore
			}
		}
		ss.Exited = slices.Clone(c.exited[name])
		c.serviceTraffic(&ss, now)
		if a := s.Autoscale; a != nil {
			ss.Autoscale = c.autoscaleStatus(name, a.Min, a.Max)
		}
		st.Services = append(st.Services, ss)
	}
	if c.flowStatus != nil {
		st.Flows = c.flowStatus(now)
	}
	return st
}

// replicaStatus reports one replica, its request rate sampled at now
// (see sampleRate), without a container ID or resource use: the caller
// knows whether the replica has them.
func replicaStatus(r *replica, now time.Time) api.ReplicaStatus {
	r.sampleRate(now)
	rs := api.ReplicaStatus{
		Name: r.name, Replica: r.n, State: string(r.state),
		Health: replicaHealth(r, now), Address: r.addr, Started: r.started, Listening: r.listening,
		ConfigHash: r.hash, RPS: r.rps,
	}
	if r.up != nil {
		rs.InFlight = r.up.Inflight()
		rs.Requests = r.up.Served()
	}
	return rs
}

// serviceTally sums up the replicas of one service for its status.
type serviceTally struct{ starting, unhealthy int }

// add appends rs to the service's replicas and counts it into the
// service's totals. sumRPS adds its rate to the service's, for a gateway
// with no traffic figures to take the service's rate from.
func (t *serviceTally) add(ss *api.ServiceStatus, rs api.ReplicaStatus, sumRPS bool) {
	switch rs.Health {
	case "starting":
		t.starting++
	case "unhealthy", "ejected":
		t.unhealthy++
	}
	ss.InFlight += rs.InFlight
	ss.Requests += rs.Requests
	if sumRPS {
		ss.RPS += rs.RPS
	}
	ss.Replicas = append(ss.Replicas, rs)
}

// health sums the service up (see api.ServiceStatus.Health) from its
// desired and ready counts, how many replicas it has at all, and whether
// it is crash-looping.
func (t serviceTally) health(desired, ready, replicas int, crashloop bool) string {
	switch {
	case desired == 0 && replicas == 0:
		return "stopped"
	case crashloop && ready < desired:
		// Between two failures a replacement starts: the service is
		// crash-looping still, not starting, until one runs.
		return "crashloop"
	case t.unhealthy > 0 && ready < desired:
		return "unhealthy"
	case ready < desired || t.starting > 0:
		return "starting"
	}
	return "healthy"
}

// serviceTraffic sets the recent traffic figures of a service, when the
// gateway keeps them.
func (h *hooks) serviceTraffic(ss *api.ServiceStatus, now time.Time) {
	if h.traffic == nil {
		return
	}
	tr := h.traffic.read(ss.Service, now)
	ss.RPS = tr.RPS
	ss.ErrorRate = tr.ErrorRate
	ss.P50Ms = float64(tr.P50) / float64(time.Millisecond)
	ss.P99Ms = float64(tr.P99) / float64(time.Millisecond)
}

// sampleRate updates the replica's request rate from its served counter;
// whoever holds the replica's record must hold its lock.
func (r *replica) sampleRate(now time.Time) {
	if r.up == nil {
		return
	}
	served := r.up.Served()
	if r.lastSample.IsZero() {
		r.lastServed, r.lastSample = served, now
		return
	}
	dt := now.Sub(r.lastSample).Seconds()
	if dt < 0.5 {
		return
	}
	inst := float64(served-r.lastServed) / dt
	r.rps = 0.5*r.rps + 0.5*inst
	r.lastServed, r.lastSample = served, now
}

func replicaHealth(r *replica, now time.Time) string {
	switch {
	case r.removing:
		return "draining"
	case r.state != ContainerRunning:
		return string(r.state)
	case r.up != nil && r.up.EjectedUntil().After(now):
		return "ejected"
	case !r.probed:
		return string(health.StateStarting)
	}
	return string(r.health)
}

// Scale sets the replica count of a service. Within autoscale bounds the
// autoscaler carries on from the new count.
func (c *Controller) Scale(ctx context.Context, service string, replicas int) error {
	c.mu.Lock()
	s := c.spec.Cell.Services[service]
	if s == nil {
		c.mu.Unlock()
		return admin.NotFound(fmt.Errorf("cell %s has no service %q", c.spec.Cell.Name, service))
	}
	if replicas < 0 {
		c.mu.Unlock()
		return admin.BadRequest(fmt.Errorf("replicas must be 0 or more, not %d", replicas))
	}
	if a := s.Autoscale; a != nil && (replicas < a.Min || replicas > a.Max) {
		c.mu.Unlock()
		return admin.BadRequest(fmt.Errorf("replicas %d is outside the autoscale bounds %d-%d of %s/%s", replicas, a.Min, a.Max, c.spec.Cell.Name, service))
	}
	from := s.Replicas
	if o, ok := c.overrides[service]; ok {
		from = o
	}
	c.overrides[service] = replicas
	c.noteManualScale(service, replicas)
	c.saveState()
	c.mu.Unlock()
	if from != replicas {
		c.emit(api.Event{Service: service, Type: api.EventScaled, From: from, To: replicas,
			Message: "requested"})
	}
	c.Kick()
	return nil
}

// UpdateSpec replaces the cell spec. Services whose config changed roll
// and start with no crash backoff, since their streak was their old
// config's; manual scale overrides are dropped (the file is the truth
// again), except for autoscaled services, whose count is kept within the
// new bounds. A spec the proxy refuses changes nothing.
func (c *Controller) UpdateSpec(ctx context.Context, raw []byte) error {
	var spec api.GatewaySpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return admin.BadRequest(fmt.Errorf("decode spec: %w", err))
	}
	c.mu.Lock()
	if spec.Cell == nil || spec.Cell.Name != c.spec.Cell.Name || spec.Project != c.spec.Project {
		c.mu.Unlock()
		return admin.BadRequest(fmt.Errorf("spec is for another cell"))
	}
	if spec.Hash() == c.spec.Hash() {
		c.mu.Unlock()
		return nil
	}
	if err := c.proxy.SetRoutes(spec.Cell); err != nil {
		c.mu.Unlock()
		return admin.BadRequest(err)
	}
	for name, n := range c.overrides {
		s := spec.Cell.Services[name]
		if s == nil || s.Autoscale == nil {
			delete(c.overrides, name)
			continue
		}
		c.overrides[name] = max(s.Autoscale.Min, min(n, s.Autoscale.Max))
	}
	for name := range c.crash {
		if spec.Cell.Services[name] == nil || serviceHash(&spec, name) != serviceHash(c.spec, name) {
			delete(c.crash, name)
		}
	}
	c.spec = &spec
	c.saveState()
	c.mu.Unlock()
	if c.onSpec != nil {
		c.onSpec(spec.Cell)
	}
	c.emit(api.Event{Type: api.EventUpdated, Message: "cell spec replaced"})
	c.Kick()
	return nil
}

// Stop stops the cell for good: the controller creates no replica any
// more and drains every one, then stops and removes it in the background.
// It returns once every replica is drained, out of rotation with no
// request in flight, so that whoever stops the cell (down) may remove the
// replicas and the gateway itself at once without cutting a request; or
// with an error when ctx ends first.
func (c *Controller) Stop(ctx context.Context) error {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.Kick()
	for {
		c.mu.Lock()
		left := c.undrainedLocked()
		changed := c.changedLocked()
		c.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if left < 0 {
				return fmt.Errorf("stop cell %s: no round ran since the stop was asked: %w", c.cell, ctx.Err())
			}
			return fmt.Errorf("stop cell %s: %d replicas not drained: %w", c.cell, left, ctx.Err())
		case <-changed:
		}
	}
}

// undrainedLocked counts the replicas of a stopping cell that may still
// serve a request: running (or paused) and not drained yet. It is -1
// until a round planned with the stop has run, since until then a
// creation may be under way and the replicas it makes are not known yet.
// c.mu must be held.
func (c *Controller) undrainedLocked() int {
	if !c.stopPlanned {
		return -1
	}
	n := 0
	for _, r := range c.replicas {
		if !r.drained && (r.state == ContainerRunning || r.state == ContainerPaused || r.state == ContainerRestarting) {
			n++
		}
	}
	return n
}

// changedLocked returns a channel that is closed when a replica is
// drained or a round has run (see notifyLocked). c.mu must be held.
func (c *Controller) changedLocked() <-chan struct{} {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// notifyLocked wakes whoever waits on changedLocked. c.mu must be held.
func (c *Controller) notifyLocked() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// Wake is called by the proxy when a request finds no available replica of
// a service. It reports whether a replica is on its way, so the request is
// worth holding: the service is scaled to zero and may wake (autoscale min
// 0), or it has replicas that are starting.
func (c *Controller) Wake(service string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.spec.Cell.Services[service]
	if s == nil || c.stopping {
		return false
	}
	if !c.observed {
		// A gateway that just (re)started has not adopted its replicas
		// yet; they are there, so the request waits for them.
		return true
	}
	c.lastWake[service] = c.now()
	desired := s.Replicas
	if o, ok := c.overrides[service]; ok {
		desired = o
	}
	if desired == 0 {
		if s.Autoscale == nil || s.Autoscale.Max == 0 {
			return false
		}
		c.overrides[service] = 1
		c.saveState()
		c.emit(api.Event{Service: service, Type: api.EventScaled, From: 0, To: 1, Message: "request arrived while scaled to zero"})
		c.Kick()
		return true
	}
	alive := 0
	for _, r := range c.replicas {
		if r.service != service || r.removing || r.state.Stopped() {
			continue
		}
		if r.state == ContainerRunning && !r.health.Ready() {
			return true
		}
		alive++
	}
	// A replica that exited is replaced soon, unless the service backs
	// off for longer than a request is held.
	return alive < desired && c.crash[service].NotBefore.Before(c.now().Add(proxy.DefaultHoldTimeout/2))
}
