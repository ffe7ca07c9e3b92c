package kube

import (
	"fmt"
	"regexp"
	"strings"
)

// Labels of every object. The app.kubernetes.io ones follow Kubernetes'
// recommended labels; the io.orchestro ones are those the other targets
// put on containers and Swarm services, and the selectors use only them.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"

	// The same keys as engine.LabelProject and its siblings, written out
	// so that this package stays free of the engine and Docker.
	LabelProject = "io.orchestro.project"
	LabelCell    = "io.orchestro.cell"
	LabelService = "io.orchestro.service"
	LabelRole    = "io.orchestro.role"

	// AnnotationSpecHash, on a gateway's pod template, is the hash of the
	// spec in the cell's ConfigMap: a changed spec changes the template,
	// and so rolls the gateways (an environment variable read from a
	// ConfigMap is only read when a container starts).
	AnnotationSpecHash = "io.orchestro.spec-hash"

	// The label Kubernetes sets on every namespace to its name.
	labelNamespaceName = "kubernetes.io/metadata.name"
)

// Values of LabelRole, as on the other targets.
const (
	RoleGateway = "gateway"
	RoleReplica = "replica"
)

// ManagedBy is the value of LabelManagedBy.
const ManagedBy = "orchestro"

// gatewayAppName is the LabelName of gateway objects.
const gatewayAppName = "orchestro-gateway"

// TokenKey is the key of the admin token in the Secret TokenSecretName
// names.
const TokenKey = "token"

// SpecKey is the key of the gateway spec (JSON) in a cell's ConfigMap.
const SpecKey = "spec.json"

// GatewayName names a cell's gateway Deployment, its ClusterIP Service,
// ConfigMap and PodDisruptionBudget: engine.GatewayName, the name of the
// gateway container and Swarm service on the other targets.
func GatewayName(project, cell string) string { return project + "-" + cell + "-gateway" }

// GatewayPodsName names the headless Service over a cell's gateway pods,
// which the gateways of the cells using it resolve to reach every one of
// them.
func GatewayPodsName(project, cell string) string { return GatewayName(project, cell) + "-pods" }

// ServiceName names a service's Deployment, headless Service and
// HorizontalPodAutoscaler; it is also the DNS name of its replicas in the
// namespace.
func ServiceName(project, cell, service string) string {
	return project + "-" + cell + "-" + service
}

// TokenSecretName names the Secret holding the project's admin token.
func TokenSecretName(project string) string { return project + "-admin-token" }

// ImageRepository is the repository, under a registry, of the image built
// for a service: REG/<project>-<cell>-<service>, to be tagged with its
// content hash.
func ImageRepository(registry, project, cell, service string) string {
	return strings.TrimRight(registry, "/") + "/" + ServiceName(project, cell, service)
}

// claimName names the PersistentVolumeClaim of a project's named volume.
// A compose volume name may hold characters an object name may not
// ("db_data"): they become dashes.
func claimName(project, volume string) string {
	return project + "-" + strings.Trim(nonLabel.ReplaceAllString(strings.ToLower(volume), "-"), "-")
}

// nonLabel matches what may not appear in a DNS label.
var nonLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// dns1035 is a DNS-1035 label, the form of a Service name.
var dns1035 = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// dns1123 is a DNS-1123 label.
var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// checkServiceName reports a name that Kubernetes would refuse for a
// Service (the strictest of the objects named after cells and services).
func checkServiceName(name, what string) error {
	switch {
	case len(name) > 63:
		return fmt.Errorf("%s: the name %q is %d characters long, and Kubernetes allows 63 for a Service: shorten the project (-p), cell or service name", what, name, len(name))
	case !dns1035.MatchString(name):
		return fmt.Errorf("%s: %q is not a valid Kubernetes Service name (a DNS-1035 label: a letter, then lower-case letters, digits and '-')", what, name)
	}
	return nil
}

// checkLabelName reports a name Kubernetes would refuse for a ConfigMap,
// a PersistentVolumeClaim or a namespace.
func checkLabelName(name, what string) error {
	if len(name) > 63 || !dns1123.MatchString(name) {
		return fmt.Errorf("%s: %q is not a valid Kubernetes name (a DNS label: at most 63 lower-case letters, digits and '-')", what, name)
	}
	return nil
}

// gatewayLabels are the labels of a cell's gateway objects; the pods have
// them too.
func gatewayLabels(project, cell string) map[string]string {
	return map[string]string{
		LabelName: gatewayAppName, LabelInstance: project, LabelComponent: cell, LabelPartOf: project, LabelManagedBy: ManagedBy,
		LabelProject: project, LabelCell: cell, LabelRole: RoleGateway,
	}
}

// gatewaySelector selects a cell's gateway pods.
func gatewaySelector(project, cell string) map[string]string {
	return map[string]string{LabelProject: project, LabelCell: cell, LabelRole: RoleGateway}
}

// serviceLabels are the labels of a service's objects and pods.
func serviceLabels(project, cell, service string) map[string]string {
	return map[string]string{
		LabelName: service, LabelInstance: project, LabelComponent: cell, LabelPartOf: project, LabelManagedBy: ManagedBy,
		LabelProject: project, LabelCell: cell, LabelService: service, LabelRole: RoleReplica,
	}
}

// serviceSelector selects a service's pods.
func serviceSelector(project, cell, service string) map[string]string {
	return map[string]string{LabelProject: project, LabelCell: cell, LabelService: service, LabelRole: RoleReplica}
}

// projectLabels are the labels of the objects of the whole project: the
// namespace, the token Secret, the volume claims.
func projectLabels(project string) map[string]string {
	return map[string]string{LabelInstance: project, LabelPartOf: project, LabelManagedBy: ManagedBy, LabelProject: project}
}
