package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orchestro/orchestro/runtime/proxy"
)

// newMetricsHandler serves the gateway's Prometheus metrics from a registry
// of its own (no global state).
func newMetricsHandler(ctrl *Controller, px *proxy.Proxy) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		&replicaCollector{ctrl: ctrl},
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// replicaCollector reports replica counts from the controller's status at
// scrape time.
type replicaCollector struct{ ctrl *Controller }

var (
	descDesired = prometheus.NewDesc("orchestro_service_replicas_desired", "Replicas the controller converges to.", []string{"cell", "service"}, nil)
	descReady   = prometheus.NewDesc("orchestro_service_replicas_ready", "Replicas running, healthy and in rotation.", []string{"cell", "service"}, nil)
	descUnready = prometheus.NewDesc("orchestro_service_replicas_unhealthy", "Replicas failing their health check or ejected.", []string{"cell", "service"}, nil)
	descServed  = prometheus.NewDesc("orchestro_replica_requests_total", "Requests a replica served.", []string{"cell", "service", "replica"}, nil)
	descInfl    = prometheus.NewDesc("orchestro_replica_inflight_requests", "Requests in flight to a replica.", []string{"cell", "service", "replica"}, nil)
)

func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDesired
	ch <- descReady
	ch <- descUnready
	ch <- descServed
	ch <- descInfl
}

func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.ctrl.Status()
	for _, s := range st.Services {
		ch <- prometheus.MustNewConstMetric(descDesired, prometheus.GaugeValue, float64(s.Desired), st.Cell, s.Service)
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, float64(s.Ready), st.Cell, s.Service)
		unhealthy := 0
		for _, r := range s.Replicas {
			if r.Health == "unhealthy" || r.Health == "ejected" {
				unhealthy++
			}
			ch <- prometheus.MustNewConstMetric(descServed, prometheus.CounterValue, float64(r.Requests), st.Cell, s.Service, r.Name)
			ch <- prometheus.MustNewConstMetric(descInfl, prometheus.GaugeValue, float64(r.InFlight), st.Cell, s.Service, r.Name)
		}
		ch <- prometheus.MustNewConstMetric(descUnready, prometheus.GaugeValue, float64(unhealthy), st.Cell, s.Service)
	}
}
