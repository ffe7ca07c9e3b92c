package kube

import (
	"encoding/json"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// maxSpecBytes bounds the spec of a gateway: it reaches the gateway as an
// environment variable, and Linux refuses to start a process with a
// variable over 128 KiB (MAX_ARG_STRLEN).
const maxSpecBytes = 128 << 10

// gatewayDrainSeconds is how long a stopping gateway pod keeps serving
// before it is told to stop (see gatewayDeployment).
const gatewayDrainSeconds = 5

// stateDir is where a gateway keeps its events (gateway.EventsPath) and
// state: an emptyDir, so that they survive a restart of the container as
// they do in a container's own layer on the other targets.
const stateDir = "/var/lib/orchestro"

// cell returns the objects of one cell, in order.
func (x *exporter) cell(cell *cellspec.Cell) ([]Object, error) {
	p := x.p
	spec := &api.GatewaySpec{
		Project: p.Name, Cell: x.portableCell(cell), Images: map[string]api.ServiceImage{}, Peers: map[string]string{},
		AdminPort: x.admin, Target: api.TargetKubernetes, Discovery: map[string]string{},
	}
	for _, u := range cell.Uses {
		// The headless Service over the used cell's gateway pods: the
		// egress proxy resolves it every second and forwards to every pod.
		spec.Peers[u] = fmt.Sprintf("%s:%d", GatewayPodsName(p.Name, u), p.Cell(u).Gateway.Port)
	}
	for _, name := range cell.ServiceNames() {
		spec.Images[name] = api.ServiceImage{Ref: x.image(cell.Name, cell.Services[name])}
		// The short name: pods resolve a Service of their namespace by
		// its name alone, whatever the cluster's domain.
		spec.Discovery[name] = ServiceName(p.Name, cell.Name, name)
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cell %s: encode the gateway spec: %w", cell.Name, err)
	}
	if len(data) > maxSpecBytes {
		return nil, fmt.Errorf("cell %s: the gateway spec is %d bytes, more than the %d an environment variable may hold", cell.Name, len(data), maxSpecBytes)
	}

	objs := []Object{
		&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: x.meta(GatewayName(p.Name, cell.Name), gatewayLabels(p.Name, cell.Name)),
			Data:       map[string]string{SpecKey: string(data) + "\n"},
		},
		x.gatewayDeployment(cell, spec.Hash()),
		x.gatewayService(cell),
	}
	if len(x.usersOf(cell.Name)) > 0 {
		objs = append(objs, x.gatewayPodsService(cell))
	}
	if x.names.cells[cell.Name] {
		objs = append(objs, x.cellNameService(cell))
	}
	objs = append(objs, x.gatewayBudget(cell), x.gatewayPolicy(cell), x.replicasPolicy(cell))
	if len(cell.Flows) > 0 {
		x.warnf("cell %s: the journal of flow executions is an emptyDir of each gateway pod: it survives a restart of the gateway's container, not the pod's replacement, whose unfinished executions are not resumed", cell.Name)
	}
	for _, name := range cell.ServiceNames() {
		svc, err := x.service(cell, cell.Services[name])
		if err != nil {
			return nil, err
		}
		objs = append(objs, svc...)
	}
	return objs, nil
}

// portableCell is the cell as its gateway gets it: without the paths of
// the machine that exported (they are made relative to the project) and
// without the develop sections, which only `watch` reads.
func (x *exporter) portableCell(cell *cellspec.Cell) *cellspec.Cell {
	c := *cell
	c.File = x.relPath(cell.File)
	c.Services = make(map[string]*cellspec.Service, len(cell.Services))
	for name, s := range cell.Services {
		cp := *s
		if s.Build != nil {
			b := *s.Build
			b.Context, b.Go, b.Dockerfile = x.relPath(b.Context), x.relPath(b.Go), x.relPath(b.Dockerfile)
			cp.Build = &b
		}
		cp.Develop = nil
		c.Services[name] = &cp
	}
	return &c
}

// usersOf returns the cells that list cell under uses:, sorted.
func (x *exporter) usersOf(cell string) []string {
	var out []string
	for _, c := range x.p.Cells {
		for _, u := range c.Uses {
			if u == cell {
				out = append(out, c.Name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// gatewayPort is a port of a gateway container and Service.
type gatewayPort struct {
	name string
	port int32
}

// gatewayPorts returns a cell's gateway ports: the cell's own, its
// listeners, its egress ports (one per used cell: that cell's port) and
// the admin port. The container exposes them all: the cell's own port and
// its egress ports are also what the Services named after cells target
// (see cellNameService).
func (x *exporter) gatewayPorts(cell *cellspec.Cell) (own, listeners, egress []gatewayPort, admin gatewayPort) {
	own = []gatewayPort{{"http", int32(cell.Gateway.Port)}}
	for _, l := range cell.Gateway.Listeners {
		listeners = append(listeners, gatewayPort{fmt.Sprintf("listen-%d", l.Port), int32(l.Port)})
	}
	for _, u := range cell.Uses {
		port := x.p.Cell(u).Gateway.Port
		egress = append(egress, gatewayPort{fmt.Sprintf("egress-%d", port), int32(port)})
	}
	return own, listeners, egress, gatewayPort{"admin", int32(x.admin)}
}

// gatewayDeployment runs a cell's gateway: two pods, spread over nodes
// when the cluster has them, rolled one at a time with none down, reading
// their spec from the cell's ConfigMap and their token from the project's
// Secret. The gateway finds replicas and peers by DNS (the spec's target
// says so) and so needs no engine: no socket is mounted, and it gets no
// credentials to the Kubernetes API either.
func (x *exporter) gatewayDeployment(cell *cellspec.Cell, specHash string) Object {
	p := x.p
	name := GatewayName(p.Name, cell.Name)
	labels := gatewayLabels(p.Name, cell.Name)
	own, listeners, egress, admin := x.gatewayPorts(cell)
	var ports []corev1.ContainerPort
	for _, gp := range append(append(append(own, listeners...), egress...), admin) {
		ports = append(ports, corev1.ContainerPort{Name: gp.name, ContainerPort: gp.port, Protocol: corev1.ProtocolTCP})
	}
	// /healthz answers once the admin server runs, which gateway.Run
	// starts with its other listeners, one after the other, before
	// serving: a gateway that could not open one of them exits.
	probe := func(period, timeout, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: api.PathHealth, Port: intstr.FromString(admin.name)}},
			PeriodSeconds: period, TimeoutSeconds: timeout, FailureThreshold: failures,
		}
	}
	mounts := []corev1.VolumeMount{{Name: "state", MountPath: stateDir}}
	volumes := []corev1.Volume{{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	if len(cell.Flows) > 0 {
		// The gateway runs flows without a journal unless its directory
		// exists.
		mounts = append(mounts, corev1.VolumeMount{Name: "journal", MountPath: api.JournalDir})
		volumes = append(volumes, corev1.Volume{Name: "journal", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	container := corev1.Container{
		Name:  "gateway",
		Image: x.opts.GatewayImage,
		Env: []corev1.EnvVar{
			{Name: api.EnvProject, Value: p.Name},
			{Name: api.EnvSpec, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: SpecKey}}},
			{Name: api.EnvToken, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: TokenSecretName(p.Name)}, Key: TokenKey}}},
		},
		Ports:          ports,
		ReadinessProbe: probe(2, 1, 2),
		LivenessProbe:  probe(10, 5, 3),
		// A stopping gateway keeps serving while it leaves the Services:
		// the Service proxies and the peers' lookups (each second, through
		// DNS answers cached for a few) stop sending it requests before it
		// closes its ports.
		Lifecycle:       &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: gatewayDrainSeconds}}},
		VolumeMounts:    mounts,
		SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false)},
	}
	tmplLabels := gatewayLabels(p.Name, cell.Name)
	x.reachesLabels(cell, tmplLabels)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: x.meta(name, labels),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(gatewayReplicas)),
			Selector: &metav1.LabelSelector{MatchLabels: gatewaySelector(p.Name, cell.Name)},
			Strategy: rollingUpdate(),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: tmplLabels, Annotations: map[string]string{AnnotationSpecHash: specHash}},
				Spec: corev1.PodSpec{
					Containers:                   []corev1.Container{container},
					Volumes:                      volumes,
					AutomountServiceAccountToken: ptr(false),
					EnableServiceLinks:           ptr(false),
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector: &metav1.LabelSelector{MatchLabels: gatewaySelector(p.Name, cell.Name)},
					}},
				},
			},
		},
	}
}

// rollingUpdate replaces pods one at a time, the new one ready before an
// old one goes.
func rollingUpdate() appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr(intstr.FromInt32(0)),
			MaxSurge:       ptr(intstr.FromInt32(1)),
		},
	}
}

// gatewayService is a cell's entrance, for clients outside the namespace
// (an Ingress, a LoadBalancer Service of the user's, a port-forward), and
// its replicas' way out: it carries the cell's port, its listeners, the
// egress ports of the cells it uses and the admin port.
func (x *exporter) gatewayService(cell *cellspec.Cell) Object {
	p := x.p
	own, listeners, egress, admin := x.gatewayPorts(cell)
	var ports []corev1.ServicePort
	for _, gp := range append(append(append(own, listeners...), egress...), admin) {
		ports = append(ports, corev1.ServicePort{Name: gp.name, Port: gp.port, TargetPort: intstr.FromInt32(gp.port), Protocol: corev1.ProtocolTCP})
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: x.meta(GatewayName(p.Name, cell.Name), gatewayLabels(p.Name, cell.Name)),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: gatewaySelector(p.Name, cell.Name),
			Ports:    ports,
		},
	}
}

// gatewayPodsService resolves to every ready gateway pod of a cell, for
// the egress proxies of the cells that use it, which balance over the
// pods themselves: a ClusterIP would hide them behind one address.
func (x *exporter) gatewayPodsService(cell *cellspec.Cell) Object {
	p := x.p
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: x.meta(GatewayPodsName(p.Name, cell.Name), gatewayLabels(p.Name, cell.Name)),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  gatewaySelector(p.Name, cell.Name),
			Ports: []corev1.ServicePort{{Name: "http", Port: int32(cell.Gateway.Port),
				TargetPort: intstr.FromInt32(int32(cell.Gateway.Port)), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// gatewayBudget keeps one gateway pod of the cell up through voluntary
// disruptions (a node drained).
func (x *exporter) gatewayBudget(cell *cellspec.Cell) Object {
	p := x.p
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: x.meta(GatewayName(p.Name, cell.Name), gatewayLabels(p.Name, cell.Name)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr(intstr.FromInt32(1)),
			Selector:     &metav1.LabelSelector{MatchLabels: gatewaySelector(p.Name, cell.Name)},
		},
	}
}

// policyPorts are the TCP ports of a NetworkPolicy rule.
func policyPorts(gps ...gatewayPort) []networkingv1.NetworkPolicyPort {
	out := make([]networkingv1.NetworkPolicyPort, 0, len(gps))
	for _, gp := range gps {
		out = append(out, networkingv1.NetworkPolicyPort{Protocol: ptr(corev1.ProtocolTCP), Port: ptr(intstr.FromInt32(gp.port))})
	}
	return out
}

// gatewayPolicy says who reaches a cell's gateway pods (see the package
// documentation): its replicas on the ports they use, the gateways of the
// cells that use it on its port, the replicas of the cells that may call a
// cell by its name on the port it forwards to that cell on, and whatever
// is outside the namespace on its port, its listeners and the admin port.
func (x *exporter) gatewayPolicy(cell *cellspec.Cell) Object {
	p := x.p
	own, listeners, egress, admin := x.gatewayPorts(cell)
	rules := []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{LabelProject: p.Name, LabelCell: cell.Name, LabelRole: RoleReplica}}}},
		Ports: policyPorts(append(append(own, listeners...), egress...)...),
	}}
	if users := x.usersOf(cell.Name); len(users) > 0 {
		rules = append(rules, networkingv1.NetworkPolicyIngressRule{
			From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{
				MatchLabels:      map[string]string{LabelProject: p.Name, LabelRole: RoleGateway},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: LabelCell, Operator: metav1.LabelSelectorOpIn, Values: users}},
			}}},
			Ports: policyPorts(own...),
		})
	}
	// The Service named after a cell sends a call to any gateway that
	// forwards to the cell (see cellNameService), so each of them admits,
	// on the port it forwards to the cell on, the replicas of every cell
	// that may call it by that name: the cell itself and its users. Its
	// own replicas are admitted above.
	replicasOf := func(cells []string, port gatewayPort) networkingv1.NetworkPolicyIngressRule {
		return networkingv1.NetworkPolicyIngressRule{
			From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{
				MatchLabels:      map[string]string{LabelProject: p.Name, LabelRole: RoleReplica},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: LabelCell, Operator: metav1.LabelSelectorOpIn, Values: cells}},
			}}},
			Ports: policyPorts(port),
		}
	}
	if users := x.usersOf(cell.Name); x.names.cells[cell.Name] && len(users) > 0 {
		rules = append(rules, replicasOf(users, own[0]))
	}
	for i, u := range cell.Uses {
		if x.names.cells[u] {
			rules = append(rules, replicasOf(without(x.callersOf(u), cell.Name), egress[i]))
		}
	}
	rules = append(rules, networkingv1.NetworkPolicyIngressRule{
		From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: labelNamespaceName, Operator: metav1.LabelSelectorOpNotIn, Values: []string{x.ns}}},
		}}},
		Ports: policyPorts(append(append(own, listeners...), admin)...),
	})
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: x.meta(GatewayName(p.Name, cell.Name), gatewayLabels(p.Name, cell.Name)),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: gatewaySelector(p.Name, cell.Name)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     rules,
		},
	}
}

// ReplicasPolicyName names the NetworkPolicy of a cell's replicas.
func ReplicasPolicyName(project, cell string) string { return project + "-" + cell + "-replicas" }

// replicasPolicy lets only the pods of a cell, its gateway and its
// replicas, reach the cell's replicas.
func (x *exporter) replicasPolicy(cell *cellspec.Cell) Object {
	p := x.p
	labels := projectLabels(p.Name)
	labels[LabelComponent], labels[LabelCell] = cell.Name, cell.Name
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: x.meta(ReplicasPolicyName(p.Name, cell.Name), labels),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelProject: p.Name, LabelCell: cell.Name, LabelRole: RoleReplica}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{LabelProject: p.Name, LabelCell: cell.Name}}}},
			}},
		},
	}
}
