package gateway

import (
	"context"
	"time"

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

// scaler is the autoscaler's memory of one service.
type scaler struct {
	rate        *autoscale.Window
	inflight    *autoscale.Window
	history     []autoscale.Recommendation
	lastRequest time.Time
	lastServed  uint64
	status      api.AutoscaleStatus
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
			sc = &scaler{
				rate:        autoscale.NewWindow(rateWindow),
				inflight:    autoscale.NewWindow(inflightWindow),
				history:     []autoscale.Recommendation{{At: now, Replicas: d.Replicas}},
				lastRequest: c.started,
			}
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
		if served != sc.lastServed || inflight > 0 {
			sc.lastRequest = now
		}
		sc.lastServed = served
		if w := c.lastWake[d.Name]; w.After(sc.lastRequest) {
			sc.lastRequest = w
		}
		sc.rate.Add(now, served, float64(inflight))
		sc.inflight.Add(now, served, float64(inflight))

		m := autoscale.Metrics{Ready: ready, NotReady: notReady, Routed: routed[d.Name], LastRequest: sc.lastRequest}
		if rps, ok := sc.rate.Rate(now); ok {
			m.RPS = autoscale.PerReplica(rps, ready)
		}
		if avg, ok := sc.inflight.Inflight(now); ok {
			m.Inflight = autoscale.PerReplica(avg, ready)
		}
		if c.sampler != nil {
			m.CPU = c.sampler.CPUMetric(ids)
		}
		dec, hist := autoscale.Decide(d.Replicas, m, s.Autoscale, sc.history, now)
		sc.history = hist
		sc.status.Min, sc.status.Max = s.Autoscale.Min, s.Autoscale.Max
		sc.status.Targets = dec.Targets
		if dec.Replicas == d.Replicas {
			continue
		}
		sc.status.LastDecision = dec.Reason
		sc.status.LastChange = now
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
		sc.history = append(sc.history, autoscale.Recommendation{At: c.now(), Replicas: n})
		sc.status.LastDecision = "set by hand"
		sc.status.LastChange = c.now()
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
