package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orchestro/orchestro/runtime/flow"
	"github.com/orchestro/orchestro/runtime/health"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// metrics is a gateway's Prometheus registry. Request metrics are fed from
// the proxy's request records, on the record goroutine, so they cost the
// request path nothing; gauges are read from live state at scrape time.
type metrics struct {
	reg      *prometheus.Registry
	cell     string
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	checks   *prometheus.CounterVec

	flowExecutions    *prometheus.CounterVec
	flowDuration      *prometheus.HistogramVec
	flowStepDuration  *prometheus.HistogramVec
	flowCompensations *prometheus.CounterVec
	flowRecovered     *prometheus.CounterVec
	flowWaiting       prometheus.Gauge
	journalCommit     prometheus.Histogram
	journalBatch      prometheus.Histogram
}

func newMetrics(cell string) *metrics {
	m := &metrics{
		reg:  prometheus.NewRegistry(),
		cell: cell,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestro_http_requests_total",
			Help: "Requests the gateway answered, by route, method and status class.",
		}, []string{"cell", "service", "route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orchestro_http_request_duration_seconds",
			Help:    "Time from receiving a request to the end of its answer, retries included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"cell", "service", "route", "method", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestro_http_retries_total",
			Help: "Tries beyond the first, made on another replica.",
		}, []string{"cell", "service", "route"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestro_health_checks_total",
			Help: "Active health check results by replica.",
		}, []string{"cell", "service", "replica", "result"}),
		flowExecutions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestro_flow_executions_total",
			Help: "Flow executions by outcome: succeeded, failed, compensated, partially_compensated, or rejected (over max_inflight).",
		}, []string{"cell", "flow", "outcome"}),
		flowDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orchestro_flow_duration_seconds",
			Help:    "Time from receiving a flow's request to its answer, compensations included.",
			Buckets: flowBuckets,
		}, []string{"cell", "flow"}),
		flowStepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orchestro_flow_step_duration_seconds",
			Help:    "Time a flow step took, its retries included.",
			Buckets: flowBuckets,
		}, []string{"cell", "flow", "step"}),
		flowCompensations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestro_flow_compensations_total",
			Help: "Compensations of flow steps by outcome: done, failed or not_compensated.",
		}, []string{"cell", "flow", "step", "outcome"}),
		flowRecovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestro_flow_executions_recovered_total",
			Help: "Flow executions a restarted gateway found unfinished in its journal and finished.",
		}, []string{"cell", "flow"}),
		flowWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "orchestro_flow_async_waiting",
			Help:        "Asynchronous flow executions waiting for a replica of a call's target (scaled to zero or down).",
			ConstLabels: prometheus.Labels{"cell": cell},
		}),
		journalCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "orchestro_journal_commit_seconds",
			Help:        "Time of each group commit of the journal of flow executions, its fsync included.",
			ConstLabels: prometheus.Labels{"cell": cell},
			Buckets:     []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		journalBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "orchestro_journal_commit_records",
			Help:        "Records written by each group commit of the journal of flow executions.",
			ConstLabels: prometheus.Labels{"cell": cell},
			Buckets:     []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.retries, m.checks,
		m.flowExecutions, m.flowDuration, m.flowStepDuration, m.flowCompensations,
		m.flowRecovered, m.flowWaiting, m.journalCommit, m.journalBatch,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	return m
}

// handler serves the registry, with the live-state collector added.
func (m *metrics) handler(src source, px *proxy.Proxy) http.Handler {
	m.reg.MustRegister(&stateCollector{src: src, px: px})
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// observe records one finished request.
func (m *metrics) observe(r *proxy.RequestRecord) {
	code := statusClass(r.Status)
	method := methodLabel(r.Method)
	route := r.Route
	if route == "" {
		route = "none"
	}
	m.requests.WithLabelValues(m.cell, r.Service, route, method, code).Inc()
	m.duration.WithLabelValues(m.cell, r.Service, route, method, code).Observe(r.Duration.Seconds())
	if r.Tries > 1 {
		m.retries.WithLabelValues(m.cell, r.Service, route).Add(float64(r.Tries - 1))
	}
}

// flowBuckets are the bounds of the flow histograms: flows make several
// calls, so they reach further than single requests.
var flowBuckets = []float64{.0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// observeFlow records one finished flow execution.
func (m *metrics) observeFlow(name string, res *flow.Result) {
	m.flowExecutions.WithLabelValues(m.cell, name, string(res.Outcome)).Inc()
	m.flowDuration.WithLabelValues(m.cell, name).Observe(res.Duration.Seconds())
	for _, s := range res.Steps {
		if s.Tries > 0 {
			m.flowStepDuration.WithLabelValues(m.cell, name, s.ID).Observe(s.Duration.Seconds())
		}
	}
	for _, c := range res.Compensations {
		m.flowCompensations.WithLabelValues(m.cell, name, c.Step, c.Outcome).Inc()
	}
}

// recovered counts one execution recovered from the journal.
func (m *metrics) recovered(name string) { m.flowRecovered.WithLabelValues(m.cell, name).Inc() }

// asyncWaiting counts asynchronous executions starting (+1) and stopping
// (-1) a wait for a replica.
func (m *metrics) asyncWaiting(delta int) { m.flowWaiting.Add(float64(delta)) }

// journalCommitted records one group commit of the journal.
func (m *metrics) journalCommitted(records int, d time.Duration) {
	m.journalCommit.Observe(d.Seconds())
	m.journalBatch.Observe(float64(records))
}

// healthResult counts one active health check.
func (m *metrics) healthResult(service string, replica int, ok bool) {
	result := "success"
	if !ok {
		result = "failure"
	}
	m.checks.WithLabelValues(m.cell, service, strconv.Itoa(replica), result).Inc()
}

func statusClass(code int) string {
	switch {
	case code >= 500:
		return "5xx"
	case code >= 400:
		return "4xx"
	case code >= 300:
		return "3xx"
	case code >= 200:
		return "2xx"
	}
	return "1xx"
}

// methodLabel bounds the method label's values: unknown methods would let
// any client grow the metric without limit.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// stateCollector reports replica counts and per-replica traffic from the
// gateway's source of replicas and proxy at scrape time.
type stateCollector struct {
	src source
	px  *proxy.Proxy
}

var (
	descDesired    = prometheus.NewDesc("orchestro_service_replicas_desired", "Replicas the controller converges to.", []string{"cell", "service"}, nil)
	descReady      = prometheus.NewDesc("orchestro_service_replicas_ready", "Replicas running, healthy and in rotation.", []string{"cell", "service"}, nil)
	descUnhealthy  = prometheus.NewDesc("orchestro_service_replicas_unhealthy", "Replicas failing their health check or ejected.", []string{"cell", "service"}, nil)
	descInflight   = prometheus.NewDesc("orchestro_http_requests_in_flight", "Requests in flight to a service's replicas.", []string{"cell", "service"}, nil)
	descTries      = prometheus.NewDesc("orchestro_replica_tries_total", "Tries sent to a replica.", []string{"cell", "service", "replica"}, nil)
	descFails      = prometheus.NewDesc("orchestro_replica_failures_total", "Tries to a replica that failed: no connection, a broken connection, a timeout or a 5xx answer.", []string{"cell", "service", "replica"}, nil)
	descEjections  = prometheus.NewDesc("orchestro_replica_ejections_total", "Times passive health checking ejected a replica.", []string{"cell", "service", "replica"}, nil)
	descLogDropped = prometheus.NewDesc("orchestro_access_log_dropped_total", "Request records dropped because the log writer fell behind.", []string{"cell"}, nil)
	descPanic      = prometheus.NewDesc("orchestro_gateway_panic", "1 while a service is in panic mode: too few replicas available, so ejected ones take requests too.", []string{"cell", "service"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDesired, descReady, descUnhealthy, descInflight, descTries, descFails, descEjections, descLogDropped, descPanic} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	for _, s := range st.Services {
		ch <- prometheus.MustNewConstMetric(descDesired, prometheus.GaugeValue, float64(s.Desired), st.Cell, s.Service)
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, float64(s.Ready), st.Cell, s.Service)
		unhealthy := 0
		for _, r := range s.Replicas {
			if r.Health == string(health.StateUnhealthy) || r.Health == "ejected" {
				unhealthy++
			}
		}
		ch <- prometheus.MustNewConstMetric(descUnhealthy, prometheus.GaugeValue, float64(unhealthy), st.Cell, s.Service)
		ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(s.InFlight), st.Cell, s.Service)
		panicking := 0.0
		if c.px.Panicking(s.Service) {
			panicking = 1
		}
		ch <- prometheus.MustNewConstMetric(descPanic, prometheus.GaugeValue, panicking, st.Cell, s.Service)
		for _, up := range c.px.Upstreams(s.Service) {
			n := strconv.Itoa(up.Replica)
			ch <- prometheus.MustNewConstMetric(descTries, prometheus.CounterValue, float64(up.Served()), st.Cell, s.Service, n)
			ch <- prometheus.MustNewConstMetric(descFails, prometheus.CounterValue, float64(up.Fails()), st.Cell, s.Service, n)
			ch <- prometheus.MustNewConstMetric(descEjections, prometheus.CounterValue, float64(up.Ejections()), st.Cell, s.Service, n)
		}
	}
	ch <- prometheus.MustNewConstMetric(descLogDropped, prometheus.CounterValue, float64(c.px.DroppedRecords()), st.Cell)
}
