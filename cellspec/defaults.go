package cellspec

import (
	"fmt"
	"slices"
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

	// A 5xx answer ejects no replica unless the cell asks for it: it is
	// usually the application speaking, not a broken replica.
	DefaultConsecutive5xx     = 0
	DefaultBaseEjection       = Duration(30 * time.Second)
	DefaultMaxEjectionPercent = 50

	// The access log's bound: five files of 10 MiB.
	DefaultAccessLogMaxSize  = 10 << 20
	DefaultAccessLogMaxFiles = 5
)

// defaultOutlier is the passive health tuning of a cell that writes none.
var defaultOutlier = Outlier{
	Consecutive5xx:     DefaultConsecutive5xx,
	BaseEjection:       DefaultBaseEjection,
	MaxEjectionPercent: DefaultMaxEjectionPercent,
}

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
	// Absent routes mean the default routes; a written list, even an empty
	// one, is taken as written: routes: [] is a cell with no routes.
	if _, written := c.pos["gateway.routes"]; !written {
		c.Gateway.Routes = DefaultRoutes(c)
	} else {
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
	}
	// Outlier mappings are stored merged (see Cell.OutlierFor): the
	// gateway's over the defaults, a service's over the gateway's.
	gwOutlier := defaultOutlier
	if o := c.Gateway.Outlier; o != nil {
		gwOutlier = rc.mergeOutlier(gwOutlier, o, "gateway.outlier")
		c.Gateway.Outlier = &gwOutlier
	}
	for name, s := range c.Services {
		if o := s.Outlier; o != nil {
			merged := rc.mergeOutlier(gwOutlier, o, "services."+name+".outlier")
			s.Outlier = &merged
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
			s.Replicas = defaultReplicas(s)
		}
	}
	applyFlowDefaults(c)
}

// defaultRetry is the retry of a step when neither the step nor its
// flow's defaults write one.
func defaultRetry() Retry {
	return Retry{
		Attempts:   1,
		Backoff:    Duration(DefaultRetryBackoff),
		MaxBackoff: Duration(DefaultRetryMaxBackoff),
		Jitter:     true,
		RetryOn:    slices.Clone(DefaultRetryOn),
	}
}

// DefaultResponseStatus is the status of a flow's response that does not
// write one.
const DefaultResponseStatus = 200

// applyFlowDefaults stores in every flow the settings in force, since the
// gateway reads flows as JSON and applies no default:
//
//   - deadline, max_inflight and max_body: the flow's, else the defaults;
//   - a step's timeout: its own, else the flow's defaults.timeout, else
//     DefaultStepTimeout;
//   - a step's retry, field by field: its own, else defaults.retry's,
//     else defaultRetry's;
//   - a compensation's timeout: its own, else its step's in force;
//   - a compensation's retry, field by field: its own, else its step's in
//     force, except attempts: its own, else the larger of its step's and
//     DefaultCompensateAttempts, since a rollback is worth insisting on;
//   - a response's status: its own, else DefaultResponseStatus; an
//     on_status fail answer's: its own, else the status it answers.
//
// Which fields were written is read from c.pos: zero is a legal value of
// jitter, and an attempts of 0 is kept for validation to report.
func applyFlowDefaults(c *Cell) {
	written := c.pos.written
	for i, f := range c.Flows {
		p := fmt.Sprintf("flows[%d]", i)
		var defs flowDefaults
		if i < len(c.flowDefaults) {
			defs = c.flowDefaults[i]
		}
		if f.Deadline == 0 {
			f.Deadline = Duration(DefaultFlowDeadline)
		}
		if f.Mode == "" {
			f.Mode = FlowSync
		}
		if f.AsyncDeadline == 0 {
			f.AsyncDeadline = Duration(DefaultAsyncDeadline)
		}
		if !written(p + ".max_inflight") {
			f.MaxInflight = DefaultFlowMaxInflight
		}
		if f.MaxBody == 0 {
			f.MaxBody = DefaultFlowMaxBody
		}
		timeout := defs.Timeout
		if timeout == 0 {
			timeout = Duration(DefaultStepTimeout)
		}
		retry := mergeRetry(defaultRetry(), defs.Retry, p+".defaults.retry", written)
		f.eachStep(p, func(sp string, s *Step) {
			if s.Timeout == 0 {
				s.Timeout = timeout
			}
			s.Retry = mergeRetry(retry, s.Retry, sp+".retry", written)
			for code, o := range s.OnStatus {
				if o.Fail != nil && !written(fmt.Sprintf("%s.on_status.%d.fail.status", sp, code)) {
					o.Fail.Status = code
				}
			}
			if cp := s.Compensate; cp != nil {
				if cp.Timeout == 0 {
					cp.Timeout = s.Timeout
				}
				base := s.Retry
				base.Attempts = max(base.Attempts, DefaultCompensateAttempts)
				cp.Retry = mergeRetry(base, cp.Retry, sp+".compensate.retry", written)
			}
		})
		if r := f.Response; r != nil && !written(p+".response.status") {
			r.Status = DefaultResponseStatus
		}
	}
}

// mergeRetry returns base with the fields of r written at path (the
// retry mapping's field path) put over it.
func mergeRetry(base, r Retry, path string, written func(string) bool) Retry {
	if written(path + ".attempts") {
		base.Attempts = r.Attempts
	}
	if written(path + ".backoff") {
		base.Backoff = r.Backoff
	}
	if written(path + ".max_backoff") {
		base.MaxBackoff = r.MaxBackoff
	}
	if written(path + ".jitter") {
		base.Jitter = r.Jitter
	}
	if written(path + ".retry_on") {
		base.RetryOn = r.RetryOn
	}
	base.RetryOn = slices.Clone(base.RetryOn)
	return base
}

// defaultReplicas is the replica count of a service that does not set one,
// once its autoscale bounds are defaulted. applyDefaults and convert (which
// leaves a default count out) both ask it, so they cannot disagree.
func defaultReplicas(s *Service) int {
	if a := s.Autoscale; a != nil {
		r := max(a.Min, 1)
		if a.Max > 0 {
			r = min(r, a.Max)
		}
		return r
	}
	return DefaultReplicas
}

// DefaultRoutes returns the routes of a cell whose file leaves
// gateway.routes out: /<service> for every service that has a port, in
// service name order, with the default timeout and retries. It is the only
// home of that rule, so the loader, convert and anyone else who needs it
// agree. The result is never nil: a cell none of whose services has a port
// gets an empty list.
func DefaultRoutes(c *Cell) []Route {
	routes := []Route{}
	for _, name := range c.ServiceNames() {
		if s := c.Services[name]; s != nil && s.Port > 0 {
			routes = append(routes, Route{Path: "/" + name, Service: name, Timeout: DefaultRouteTimeout, Retries: DefaultRouteRetries})
		}
	}
	return routes
}

// mergeOutlier returns base with the fields of o written at path (the
// outlier mapping's field path) put over it.
func (rc *rawCell) mergeOutlier(base Outlier, o *Outlier, path string) Outlier {
	if rc.outlier[path+".consecutive_5xx"] {
		base.Consecutive5xx = o.Consecutive5xx
	}
	if rc.outlier[path+".base_ejection"] {
		base.BaseEjection = o.BaseEjection
	}
	if rc.outlier[path+".max_ejection_percent"] {
		base.MaxEjectionPercent = o.MaxEjectionPercent
	}
	return base
}
