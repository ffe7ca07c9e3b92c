package kube

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// Environment variables every replica gets, as on the swarm target.
const (
	envCell    = "ORCHESTRO_CELL"
	envService = "ORCHESTRO_SERVICE"
)

// The least time and tries a liveness probe gets: the same floor the swarm
// target gives the engine's check, which also kills.
const (
	minLivenessTimeout = 5 * time.Second
	minLivenessRetries = 3
)

// maxStabilization is the longest scale-down stabilization window an HPA
// accepts.
const maxStabilization = time.Hour

// External metrics an HPA scales on for the inflight and rps targets.
// They are the gateways' Prometheus series (runtime/gateway/metrics.go),
// labelled cell and service, summed over the cell's gateway pods by a
// metrics adapter: MetricInflight as it is, MetricRPS the per-second rate
// of orchestro_http_requests_total (prometheus-adapter's default name for
// the rate of a counter).
const (
	MetricInflight = "orchestro_http_requests_in_flight"
	MetricRPS      = "orchestro_http_requests_per_second"
)

// service returns a service's objects: the claims of the volumes it is the
// first to mount, its Deployment, its headless Service (two when its name
// is unique in the project) and, when it is autoscaled, its HPA.
func (x *exporter) service(cell *cellspec.Cell, s *cellspec.Service) ([]Object, error) {
	p := x.p
	name := ServiceName(p.Name, cell.Name, s.Name)
	labels := serviceLabels(p.Name, cell.Name, s.Name)
	what := fmt.Sprintf("cell %s, service %s", cell.Name, s.Name)
	var objs []Object

	var mounts []corev1.VolumeMount
	var volumes []corev1.Volume
	for i, v := range s.Volumes {
		if v.Type != cellspec.VolumeNamed {
			continue // bind mounts were refused by check
		}
		claim := claimName(p.Name, v.Source)
		if !x.claimed[v.Source] {
			x.claimed[v.Source] = true
			objs = append(objs, x.claim(claim))
		}
		vol := "vol-" + strings.TrimPrefix(claim, p.Name+"-")
		if len(vol) > 63 {
			vol = fmt.Sprintf("vol-%d", i) // a pod's volume name is a DNS label
		}
		if !hasVolume(volumes, vol) {
			volumes = append(volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
		}
		mounts = append(mounts, corev1.VolumeMount{Name: vol, MountPath: v.Target, ReadOnly: v.ReadOnly})
	}

	// The service's environment and orchestro's, which wins as it does
	// on the other targets (where it comes last), in one sorted list.
	vars := map[string]string{envCell: cell.Name, api.EnvProject: p.Name, envService: s.Name}
	for k, v := range s.Env {
		if _, ours := vars[k]; !ours {
			vars[k] = v
		}
	}
	env := make([]corev1.EnvVar, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, corev1.EnvVar{Name: k, Value: literal(vars[k])})
	}
	x.warnNames(cell, s)

	container := corev1.Container{
		Name:         s.Name,
		Image:        x.image(cell.Name, s),
		Command:      literals(s.Entrypoint),
		Args:         literals(s.Command),
		Env:          env,
		Resources:    resources(s.Resources),
		VolumeMounts: mounts,
	}
	if s.Port > 0 {
		container.Ports = []corev1.ContainerPort{{ContainerPort: int32(s.Port), Protocol: corev1.ProtocolTCP}}
	}
	if s.Health != nil {
		container.ReadinessProbe, container.LivenessProbe = probes(s)
	}
	switch s.Restart {
	case cellspec.RestartOnFailure, cellspec.RestartNever:
		x.warnf("%s: restart: %s cannot be said by a Deployment, whose pods are always restarted: it runs as restart: always", what, s.Restart)
	}
	if len(s.DependsOn) > 0 {
		x.warnf("%s: depends_on (%s) is not honoured on Kubernetes: pods start in any order, so the service must wait for what it needs itself", what, strings.Join(s.DependsOn, ", "))
	}

	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: x.meta(name, labels),
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: serviceSelector(p.Name, cell.Name, s.Name)},
			Strategy: rollingUpdate(),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: serviceLabels(p.Name, cell.Name, s.Name)},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{container},
					Volumes:    volumes,
					// A replica never had the namespace's Services in its
					// environment on the other targets.
					EnableServiceLinks: ptr(false),
				},
			},
		},
	}
	// An autoscaled service's count belongs to its HPA: a Deployment that
	// said one would set it back on every apply. Kubernetes starts it at
	// one pod, and the HPA brings it within its bounds.
	if s.Autoscale == nil {
		dep.Spec.Replicas = ptr(int32(s.Replicas))
	}
	objs = append(objs, dep, x.headless(cell, s, ServiceName(p.Name, cell.Name, s.Name)))
	if x.names.bare[s.Name] == cell.Name {
		objs = append(objs, x.headless(cell, s, s.Name))
	}
	if s.Autoscale != nil {
		objs = append(objs, x.autoscaler(cell, s))
	}
	return objs, nil
}

// literal protects a value from Kubernetes, which expands $(VAR) in a
// container's environment, command and arguments (and reads $$ as $):
// the other targets pass them as they are.
func literal(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func literals(list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = literal(s)
	}
	return out
}

func hasVolume(vs []corev1.Volume, name string) bool {
	for _, v := range vs {
		if v.Name == name {
			return true
		}
	}
	return false
}

// claim is the PersistentVolumeClaim of a named volume.
func (x *exporter) claim(name string) Object {
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: x.meta(name, projectLabels(x.p.Name)),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: x.size}},
		},
	}
	if x.opts.StorageClass != "" {
		pvc.Spec.StorageClassName = ptr(x.opts.StorageClass)
	}
	return pvc
}

// resources makes a replica's limits both its requests and its limits: the
// scheduler places a pod by its requests, and a replica gets what it would
// get on the other targets, no more.
func resources(r cellspec.Resources) corev1.ResourceRequirements {
	list := corev1.ResourceList{}
	if r.CPUs > 0 {
		list[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Ceil(r.CPUs*1000)), resource.DecimalSI)
	}
	if r.Memory > 0 {
		list[corev1.ResourceMemory] = *resource.NewQuantity(r.Memory, resource.BinarySI)
	}
	if len(list) == 0 {
		return corev1.ResourceRequirements{}
	}
	return corev1.ResourceRequirements{Requests: list, Limits: list.DeepCopy()}
}

// seconds rounds a duration up to whole seconds, at least one.
func seconds(d time.Duration) int32 {
	return int32(max(1, math.Ceil(d.Seconds())))
}

// probes makes a service's health check its pods' readiness and liveness
// probes. Readiness is the check as written: like the gateways' own checks
// it decides whether a replica takes traffic (a pod that is not ready is
// not in its headless Service's DNS answer). Liveness kills, so it gets
// the floor of time and tries the swarm target gives the engine's check,
// and waits out start_period before its first try; readiness needs no
// such wait, since failing it early costs nothing.
func probes(s *cellspec.Service) (readiness, liveness *corev1.Probe) {
	h := s.Health
	var handler corev1.ProbeHandler
	switch h.Kind() {
	case "http":
		handler.HTTPGet = &corev1.HTTPGetAction{Path: h.HTTP, Port: intstr.FromInt32(int32(s.Port))}
	case "tcp":
		handler.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(s.Port))}
	case "exec":
		handler.Exec = &corev1.ExecAction{Command: h.Exec}
	default:
		return nil, nil
	}
	readiness = &corev1.Probe{
		ProbeHandler:     handler,
		PeriodSeconds:    seconds(h.Interval.D()),
		TimeoutSeconds:   seconds(h.Timeout.D()),
		FailureThreshold: int32(max(h.Retries, 1)),
	}
	liveness = &corev1.Probe{
		ProbeHandler:     *handler.DeepCopy(),
		PeriodSeconds:    seconds(h.Interval.D()),
		TimeoutSeconds:   seconds(max(h.Timeout.D(), minLivenessTimeout)),
		FailureThreshold: int32(max(h.Retries, minLivenessRetries)),
	}
	if h.StartPeriod > 0 {
		liveness.InitialDelaySeconds = seconds(h.StartPeriod.D())
	}
	return readiness, liveness
}

// headless is a Service through which the cell's gateway, and the cell's
// other replicas, find a service's ready pods by DNS. Every service has
// one named <project>-<cell>-<service>, which the gateway resolves; a
// service whose name is unique in the project has a second one named
// after it (see planLocalNames), so that the cell's replicas reach it by
// the name they use locally ("db:5432").
func (x *exporter) headless(cell *cellspec.Cell, s *cellspec.Service, name string) Object {
	p := x.p
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: x.meta(name, serviceLabels(p.Name, cell.Name, s.Name)),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  serviceSelector(p.Name, cell.Name, s.Name),
		},
	}
	if s.Port > 0 {
		svc.Spec.Ports = []corev1.ServicePort{{Name: "main", Port: int32(s.Port), TargetPort: intstr.FromInt32(int32(s.Port)), Protocol: corev1.ProtocolTCP}}
	}
	return svc
}

// autoscaler is a service's HPA: the spec's bounds, its scale_down_after as
// the scale-down stabilization window, and one metric per target.
//
// cpu, in percent of one core per replica, is a Resource metric with an
// AverageValue target in cores (70 is 700m): the same meaning, and it
// needs no CPU request, which a Utilization target is relative to.
//
// inflight and rps are External metrics, the gateways' series for the
// service (MetricInflight, MetricRPS, selected by cell and service) with
// an AverageValue target: the HPA divides the service's total by its
// replica count, which is how the local autoscaler reads them. They are not
// Pods metrics: those must be series of the scaled pods themselves, and
// the gateway counts a service's requests without knowing its pods' names.
// Either way the cluster needs a metrics adapter that serves the gateways'
// Prometheus series, and a warning says so.
func (x *exporter) autoscaler(cell *cellspec.Cell, s *cellspec.Service) Object {
	p := x.p
	a := s.Autoscale
	name := ServiceName(p.Name, cell.Name, s.Name)
	what := fmt.Sprintf("cell %s, service %s", cell.Name, s.Name)
	minReplicas := int32(a.Min)
	if minReplicas < 1 {
		minReplicas = 1
		x.warnf("%s: autoscale min 0 becomes minReplicas 1: an HPA scales no Deployment to zero (and the gateway cannot wake one)", what)
	}
	window := a.ScaleDownAfter.D()
	if window > maxStabilization {
		x.warnf("%s: scale_down_after %s is longer than the hour an HPA's stabilization window may be: it is an hour", what, window)
		window = maxStabilization
	}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"cell": cell.Name, "service": s.Name}}
	var metrics []autoscalingv2.MetricSpec
	var external []string
	if a.Inflight > 0 {
		metrics = append(metrics, externalMetric(MetricInflight, selector, a.Inflight))
		external = append(external, fmt.Sprintf("inflight as %s", MetricInflight))
	}
	if a.RPS > 0 {
		metrics = append(metrics, externalMetric(MetricRPS, selector, a.RPS))
		external = append(external, fmt.Sprintf("rps as %s (the rate of orchestro_http_requests_total)", MetricRPS))
	}
	if a.CPU > 0 {
		metrics = append(metrics, autoscalingv2.MetricSpec{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{
				Type: autoscalingv2.AverageValueMetricType, AverageValue: quantity(a.CPU / 100),
			}},
		})
	}
	if len(external) > 0 {
		x.warnf("%s: the HPA scales on %s: External metrics that need a metrics adapter (such as prometheus-adapter) serving the gateways' Prometheus series, scraped from their admin port (%d, %s), summed over the cell's gateway pods and selected by the labels cell and service; without one the HPA cannot read them",
			what, strings.Join(external, " and "), x.admin, api.PathMetrics)
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: x.meta(name, serviceLabels(p.Name, cell.Name, s.Name)),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    ptr(minReplicas),
			MaxReplicas:    int32(a.Max),
			Metrics:        metrics,
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(math.Ceil(window.Seconds())))},
			},
		},
	}
}

// externalMetric is an External metric with a per-replica target.
func externalMetric(name string, selector *metav1.LabelSelector, target float64) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: name, Selector: selector.DeepCopy()},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: quantity(target)},
		},
	}
}

// quantity writes v to the thousandth ("10", "700m", "2500m").
func quantity(v float64) *resource.Quantity {
	return resource.NewMilliQuantity(int64(math.Round(v*1000)), resource.DecimalSI)
}
