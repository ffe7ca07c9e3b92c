package cellspec

import (
	"time"
)

// Defaults of the cell file. They are applied in one place, applyDefaults,
// after decoding and before validation.
const (
	DefaultBalance        = BalanceRoundRobin
	DefaultRouteTimeout   = Duration(30 * time.Second)
	DefaultRouteRetries   = 2
	DefaultReplicas       = 1
	DefaultRestart        = RestartAlways
	DefaultHealthInterval = Duration(2 * time.Second)
	DefaultHealthTimeout  = Duration(1 * time.Second)
	DefaultHealthRetries  = 3
	DefaultScaleDownAfter = Duration(30 * time.Second)
)

// applyDefaults fills every value the author left out. rc says which
// optional integers were written, since zero is a legal written value for
// them.
func applyDefaults(rc *rawCell) {
	c := rc.cell
	if c.Gateway.Balance == "" {
		c.Gateway.Balance = DefaultBalance
	}
	if c.Uses == nil {
		c.Uses = []string{}
	}
	if len(c.Gateway.Routes) == 0 && c.pos != nil {
		if _, written := c.pos["gateway.routes"]; !written {
			for _, name := range c.ServiceNames() {
				if c.Services[name].Port > 0 {
					c.Gateway.Routes = append(c.Gateway.Routes, Route{Path: "/" + name, Service: name})
				}
			}
			for i := range c.Gateway.Routes {
				rc.retries[i] = false
			}
		}
	}
	if c.Gateway.Routes == nil {
		c.Gateway.Routes = []Route{}
	}
	for i := range c.Gateway.Routes {
		r := &c.Gateway.Routes[i]
		if r.Timeout == 0 {
			r.Timeout = DefaultRouteTimeout
		}
		if !rc.retries[i] {
			r.Retries = DefaultRouteRetries
		}
	}
	for name, s := range c.Services {
		if s.Restart == "" {
			s.Restart = DefaultRestart
		}
		if h := s.Health; h != nil {
			if h.Interval == 0 {
				h.Interval = DefaultHealthInterval
			}
			if h.Timeout == 0 {
				h.Timeout = DefaultHealthTimeout
			}
			if !rc.hsRetry[name] {
				h.Retries = DefaultHealthRetries
			}
		}
		if a := s.Autoscale; a != nil {
			if !rc.asMin[name] {
				a.Min = 1
			}
			if a.ScaleDownAfter == 0 {
				a.ScaleDownAfter = DefaultScaleDownAfter
			}
		}
		if !rc.replicas[name] {
			s.Replicas = DefaultReplicas
			if a := s.Autoscale; a != nil {
				s.Replicas = max(a.Min, 1)
				if a.Max > 0 {
					s.Replicas = min(s.Replicas, a.Max)
				}
			}
		}
	}
}
