package gateway

import (
	"context"
	"time"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/autoscale"
)

// Autoscaling windows: request rates are averaged over ten seconds, the
// in-flight count over three, so a load step shows within a second or two
// while the rate stays steady.
const (
	autoscaleInterval = time.Second
	rateWindow        = 10 * time.Second
	inflightWindow    = 3 * time.Second
)

// scaler is the autoscaler's memory of one service: its traffic windows,
// the history Decide carries from one call to the next, and what the
// dashboard shows. The local controller keeps one per autoscaled service,
// and so does the swarm scaler (swarmscale.go); neither is safe for
// concurrent use, each belongs to one loop.
type scaler struct {
	rate        *autoscale.Window
	inflight    *autoscale.Window
	history     []autoscale.Recommendation
	lastRequest time.Time
	lastServed  uint64
	status      api.AutoscaleStatus
}

// newScaler returns the memory of a service that runs replicas now. The
// history starts with that count, so the service is not scaled down before
// a stabilization window has passed; idleSince is the last request the
// caller knows of (the time it started when it knows none).
func newScaler(now time.Time, replicas int, idleSince time.Time) *scaler {
	return &scaler{
		rate:        autoscale.NewWindow(rateWindow),
		inflight:    autoscale.NewWindow(inflightWindow),
		history:     []autoscale.Recommendation{{At: now, Replicas: replicas}},
		lastRequest: idleSince,
	}
}

// sample records one reading of the service's traffic: served is the
// cumulative count of requests sent to it, inflight the requests in flight
// now. A request served or in flight moves lastRequest to now.
func (sc *scaler) sample(now time.Time, served uint64, inflight float64) {
	if served != sc.lastServed || inflight > 0 {
		sc.lastRequest = now
	}
	sc.lastServed = served
	sc.rate.Add(now, served, inflight)
	sc.inflight.Add(now, served, inflight)
}

// traffic returns the request rate and the in-flight average over their
// windows, per ready replica; a metric is missing while its window holds
// too few readings.
func (sc *scaler) traffic(now time.Time, ready int) (rps, inflight autoscale.Metric) {
	if r, ok := sc.rate.Rate(now); ok {
		rps = autoscale.PerReplica(r, ready)
	}
	if avg, ok := sc.inflight.Inflight(now); ok {
		inflight = autoscale.PerReplica(avg, ready)
	}
	return rps, inflight
}

// decide runs autoscale.Decide for a service at current replicas, keeps
// the history it returns and shows the policy's targets. It does not mark
// the decision as taken: the caller calls applied once the count changed.
func (sc *scaler) decide(current int, m autoscale.Metrics, p *cellspec.Autoscale, now time.Time) autoscale.Decision {
	dec, hist := autoscale.Decide(current, m, p, sc.history, now)
	sc.history = hist
	if p != nil {
		sc.status.Min, sc.status.Max = p.Min, p.Max
	}
	sc.status.Targets = dec.Targets
	return dec
}

// applied records that a decision changed the replica count.
func (sc *scaler) applied(dec autoscale.Decision, now time.Time) {
	sc.status.LastDecision = dec.Reason
	sc.status.LastChange = now
}

// override makes a count someone else set (a manual scale) the starting
// point: the autoscaler carries on from there, and does not scale down
// below it within the stabilization window. Appending the count to the
// history works as a reset of it: the older recommendations leave the
// window before this one does, and until then they cannot hold the count
// above what this one and the later ones would.
func (sc *scaler) override(now time.Time, n int, why string) {
	sc.history = append(sc.history, autoscale.Recommendation{At: now, Replicas: n})
	sc.status.LastDecision = why
	sc.status.LastChange = now
}

// runAutoscaler evaluates every autoscaled service once a second until ctx
// ends.
func (c *Controller) runAutoscaler(ctx context.Context) error {
	t := time.NewTicker(autoscaleInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.autoscale(c.now())
		}
	}
}

// autoscale takes one sample per autoscaled service and applies the
// decision: observe → decide (a pure function) → set the desired count.
func (c *Controller) autoscale(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return
	}
	routed := map[string]bool{}
	for _, r := range c.spec.Cell.Gateway.Routes {
		routed[r.Service] = true
	}
	for _, d := range c.desired() {
		s := c.spec.Cell.Services[d.Name]
		if s.Autoscale == nil {
			continue
		}
		sc := c.scalers[d.Name]
		if sc == nil {
			sc = newScaler(now, d.Replicas, c.started)
			c.scalers[d.Name] = sc
		}
		var ready, notReady int
		var inflight int64
		var ids []string
		for _, r := range c.replicas {
			if r.service != d.Name || r.state != ContainerRunning || r.removing {
				continue
			}
			if r.health.Ready() && r.probed {
				ready++
				ids = append(ids, r.id)
			} else {
				notReady++
			}
			if r.up != nil {
				inflight += r.up.Inflight()
			}
		}
		var served uint64
		if c.traffic != nil {
			served = c.traffic.total(d.Name)
		}
		sc.sample(now, served, float64(inflight))
		if w := c.lastWake[d.Name]; w.After(sc.lastRequest) {
			sc.lastRequest = w
		}

		m := autoscale.Metrics{Ready: ready, NotReady: notReady, Routed: routed[d.Name], LastRequest: sc.lastRequest}
		m.RPS, m.Inflight = sc.traffic(now, ready)
		if c.sampler != nil {
			m.CPU = c.sampler.CPUMetric(ids)
		}
		dec := sc.decide(d.Replicas, m, s.Autoscale, now)
		if dec.Replicas == d.Replicas {
			continue
		}
		sc.applied(dec, now)
		c.overrides[d.Name] = dec.Replicas
		c.saveState()
		c.emit(api.Event{Service: d.Name, Type: api.EventScaled, From: d.Replicas, To: dec.Replicas, Message: dec.Reason})
		c.Kick()
	}
}

// noteManualScale makes a manual count the autoscaler's starting point: it
// carries on from there, and does not scale down below it within the
// stabilization window. c.mu must be held.
func (c *Controller) noteManualScale(service string, n int) {
	if sc := c.scalers[service]; sc != nil {
		sc.override(c.now(), n, "set by hand")
	}
}

// autoscaleStatus returns what the dashboard shows of a service's
// autoscaler; c.mu must be held.
func (c *Controller) autoscaleStatus(service string, min, max int) *api.AutoscaleStatus {
	st := api.AutoscaleStatus{Min: min, Max: max, Targets: []api.Target{}}
	if sc := c.scalers[service]; sc != nil {
		st = sc.status
		if st.Targets == nil {
			st.Targets = []api.Target{}
		}
	}
	return &st
}
