package gateway

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/health"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// exitCodes returns the exit codes of the replicas a listing shows stopped
// whose code the controller does not know yet. A listing carries only
// Docker's human-readable status ("Exited (137) 2 seconds ago"), so each is
// inspected, once, outside the lock. A replica whose inspection fails is
// left out and inspected again in the next round; one that is gone by now
// needs no code.
//
// It also corrects the listing for the replicas whose die event came in:
// the engine publishes the event before its listing shows the exit (Docker
// 20.10 lists the container running for a while after), and a round kicked
// by the event would see a dead replica running, keep it in rotation and
// count it ready until the next resync. Each of them the listing shows
// running is inspected, which waits for the engine's record of the exit,
// and its entry in list is set to the state found.
func (c *Controller) exitCodes(ctx context.Context, list []container.Summary) map[string]int {
	var inspect []int // indices in list
	c.mu.Lock()
	died := c.died
	c.died = map[string]bool{}
	for i, s := range list {
		stopped := ContainerState(s.State).Stopped()
		if !stopped && !died[s.ID] {
			continue
		}
		if r := c.replicas[s.ID]; !stopped || r == nil || !r.exitKnown {
			inspect = append(inspect, i)
		}
	}
	c.mu.Unlock()
	codes := map[string]int{}
	for _, i := range inspect {
		id := list[i].ID
		ins, err := c.eng.ContainerInspect(ctx, id)
		if err != nil || ins.ContainerJSONBase == nil || ins.State == nil {
			if died[id] && !errdefs.IsNotFound(err) {
				c.mu.Lock()
				c.died[id] = true
				c.mu.Unlock()
			}
			continue
		}
		list[i].State = ins.State.Status
		if ContainerState(ins.State.Status).Stopped() {
			codes[id] = ins.State.ExitCode
		}
	}
	return codes
}

// observe folds a container listing and the exit codes read for it into
// the controller's records; c.mu must be held.
func (c *Controller) observe(spec *api.GatewaySpec, list []container.Summary, exits map[string]int) {
	now := c.now()
	netName := engine.NetworkName(c.project, c.cell)
	seen := map[string]bool{}
	for _, s := range list {
		// Refuse to act on anything that is not ours, whatever the
		// engine's filter returned.
		if s.Labels[engine.LabelProject] != c.project || s.Labels[engine.LabelCell] != c.cell {
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
		r.state = ContainerState(s.State)
		switch code, ok := exits[s.ID]; {
		case !r.state.Stopped():
			r.exitKnown = false
		case ok:
			r.exitCode, r.exitKnown = code, true
		case !r.exitKnown:
			r.exitCode = -1
		}
		if prev == ContainerRunning && r.state != ContainerRunning && r.state != ContainerPaused {
			c.unprobe(r)
			if r.up != nil {
				// Its address is dead: dials to it under way end now
				// rather than at their timeout, and if it runs again it
				// gets a new upstream.
				r.up.Lose()
				r.up = nil
			}
		}
		if exitedUnasked(prev, r.state, !c.observed) && !r.removing {
			c.replicaExited(r, now)
		}
		if r.state == ContainerRunning && r.addr == "" {
			if ep := s.NetworkSettings; ep != nil {
				if n := ep.Networks[netName]; n != nil && n.IPAddress != "" {
					port := 0
					if svc := spec.Cell.Services[r.service]; svc != nil {
						port = svc.Port
					}
					r.addr = net.JoinHostPort(n.IPAddress, strconv.Itoa(port))
					r.started = now
				}
			}
		}
		if r.state == ContainerRunning && r.addr != "" && !r.probed && !r.removing {
			c.startProbing(spec, r)
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

// exitedUnasked reports whether a replica that was in state prev at the
// last observation and is in cur now has exited by itself since (the
// caller rules out replicas it is removing). A replica seen for the first
// time already stopped counts too, since it was created by this controller
// and crashed before it was ever seen running; except at adoption, when
// what happened while no gateway watched is not held against the service.
func exitedUnasked(prev, cur ContainerState, adopting bool) bool {
	return cur.Stopped() && !prev.Stopped() && (prev != "" || !adopting)
}

// replicaExited reports a replica that exited without being asked to and
// counts the exit towards its service's crash backoff; c.mu must be held.
func (c *Controller) replicaExited(r *replica, now time.Time) {
	c.emit(api.Event{Service: r.service, Replica: strconv.Itoa(r.n), Type: api.EventExited,
		Message: fmt.Sprintf("code %d", r.exitCode)})
	if !r.started.IsZero() && now.Sub(r.started) >= trustedRun {
		// It had been running a while: not a crash loop. The streak
		// ends, and its replacement comes at once.
		delete(c.crash, r.service)
		return
	}
	c.countFailure(r.service, failureCrash, r.exitCode, "", now)
}

// countFailure feeds one failure of a service's replicas to its crash
// backoff, with how it failed (the exit code of a crash, the error of a
// failed start), and reports a crash loop; c.mu must be held.
func (c *Controller) countFailure(service string, f failure, exitCode int, errText string, now time.Time) {
	cs, delay, looping := crashBackoff(c.crash[service], f, now)
	cs.ExitCode, cs.Error = exitCode, errText
	c.crash[service] = cs
	if !looping {
		return
	}
	msg := fmt.Sprintf("%d crashes, the last with exit code %d; next replacement in %s", cs.Crashes, exitCode, delay)
	if f == failureStart {
		msg = fmt.Sprintf("%d recent failures, the last a failed start (%s); next try in %s", cs.Crashes, errText, delay)
	}
	c.emit(api.Event{Service: service, Type: api.EventCrashloop, Message: msg})
}

func (c *Controller) startProbing(spec *api.GatewaySpec, r *replica) {
	svc := spec.Cell.Services[r.service]
	r.probed = true
	if svc == nil || svc.Health == nil || svc.Health.Kind() == "" {
		r.health = health.StateNone
		if svc != nil && svc.Port > 0 {
			c.watchListening(r)
		}
		return
	}
	r.health = health.StateStarting
	chk := health.NewChecker(svc.Health, r.addr, r.id, execer{c.eng})
	_ = c.prober.Add(health.Target{ID: r.id, Health: svc.Health, Checker: chk, Started: r.started})
}

func (c *Controller) unprobe(r *replica) {
	if r.probed {
		c.prober.Remove(r.id)
		c.prober.Remove(listenProbeID(r.id))
		r.probed = false
	}
}

// listenCheck is how watchListening tries a replica's port: often, since
// up --wait waits for it, and with a short timeout, since the replica is
// on the gateway's own bridge.
var listenCheck = &cellspec.Health{TCP: true, Interval: cellspec.Duration(100 * time.Millisecond), Timeout: cellspec.Duration(500 * time.Millisecond), Retries: 1}

// listenProbeID is the prober target of a replica's listening watch.
func listenProbeID(id string) string { return "listen/" + id }

// watchListening tries to connect to the port of a running replica without
// a health check until it once succeeds, and then records when (see
// onListening). It says nothing of the replica's health, which stays
// "none", and changes nothing in rotation: wait reads it as the sign that
// the replica has started (api.ReplicaStatus.Listening), where it would
// otherwise wait for it to have run a while, to tell a server that came up
// from a program that exits at once.
func (c *Controller) watchListening(r *replica) {
	if !r.listening.IsZero() {
		return
	}
	chk := health.NewChecker(listenCheck, r.addr, r.id, nil)
	_ = c.prober.Add(health.Target{ID: listenProbeID(r.id), Health: listenCheck, Checker: chk, Started: r.started})
}

// listenWatchFor bounds a listening watch: by then wait has counted the
// replica ready for having run a while (see runtime's settle), and a
// replica that does not listen on its port (a worker) is tried no more.
const listenWatchFor = 2 * time.Second

// onListening takes a result of a listening watch: the first connection
// ends the watch, and so does the replica running listenWatchFor without
// one.
func (c *Controller) onListening(res health.Result) {
	id := strings.TrimPrefix(res.ID, "listen/")
	c.mu.Lock()
	r := c.replicas[id]
	done := r == nil || !r.probed || !r.listening.IsZero()
	switch {
	case done:
	case res.OK:
		r.listening = c.now()
		done = true
	default:
		done = c.now().Sub(r.started) >= listenWatchFor
	}
	c.mu.Unlock()
	if done {
		c.prober.Remove(res.ID)
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
	if strings.HasPrefix(res.ID, "listen/") {
		c.onListening(res)
		return
	}
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
	if e, ok := healthEvent(r, tr); ok {
		c.emit(e)
	}
	c.Kick()
}

// healthEvent is the event that reports a replica's health transition,
// if it reports one.
func healthEvent(r *replica, tr *health.Transition) (api.Event, bool) {
	switch tr.To {
	case health.StateHealthy:
		return api.Event{Service: r.service, Replica: strconv.Itoa(r.n), Type: api.EventHealthy}, true
	case health.StateUnhealthy:
		return api.Event{Service: r.service, Replica: strconv.Itoa(r.n), Type: api.EventUnhealthy, Message: tr.Reason}, true
	}
	return api.Event{}, false
}

// observedLocked converts the records into planner input.
func (c *Controller) observedLocked() []ObservedReplica {
	out := make([]ObservedReplica, 0, len(c.replicas))
	for _, r := range c.replicas {
		h := r.health
		if r.state == ContainerRunning && !r.probed {
			h = health.StateStarting
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
func (c *Controller) updateUpstreamsLocked(spec *api.GatewaySpec) {
	bySvc := map[string][]*proxy.Upstream{}
	for _, r := range c.replicas {
		if r.state != ContainerRunning && r.state != ContainerPaused || r.addr == "" {
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
	for _, name := range spec.Cell.ServiceNames() {
		ups := bySvc[name]
		sort.Slice(ups, func(i, j int) bool { return ups[i].Replica < ups[j].Replica })
		c.proxy.SetUpstreams(name, ups)
	}
}
