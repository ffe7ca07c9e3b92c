package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// Labels carried by every object orchestro creates. State lives in Docker:
// any process rebuilds the whole picture from label-filtered queries.
const (
	LabelProject    = "io.orchestro.project"
	LabelCell       = "io.orchestro.cell"
	LabelService    = "io.orchestro.service"
	LabelReplica    = "io.orchestro.replica"
	LabelRole       = "io.orchestro.role"
	LabelConfigHash = "io.orchestro.config-hash"
	// LabelManaged marks images orchestro built, so tests and `down
	// --rmi` can find them.
	LabelManaged = "io.orchestro.managed"
	// LabelAdminPort marks, on a gateway container, the container port of
	// its admin API.
	LabelAdminPort = "io.orchestro.admin-port"
)

// Labels of a replica's Swarm service on a swarm, where the project's
// keeper autoscales (gateway.RunSwarmScaler).
const (
	// AutoscaleLabel holds the JSON of the service's cellspec.Autoscale;
	// the deploying side sets it, and a service without it is not
	// autoscaled.
	AutoscaleLabel = "io.orchestro.autoscale"
	// ScaledLabel holds the JSON of the api.Event of the latest scaling
	// decision, written with the replica count it describes.
	ScaledLabel = "io.orchestro.scaled"
)

// Roles of the containers orchestro runs.
const (
	RoleGateway = "gateway"
	RoleReplica = "replica"
	// RoleKeeper is the project's keeper, which restarts killed gateways.
	RoleKeeper = "keeper"
)

// NetworkName is the network of one cell: its gateway and its replicas.
func NetworkName(project, cell string) string { return project + "_" + cell }

// MeshNetworkName is the network every gateway of a project joins.
func MeshNetworkName(project string) string { return project + "_mesh" }

// GatewayName is the container name of a cell's gateway.
func GatewayName(project, cell string) string { return project + "-" + cell + "-gateway" }

// ContainerName returns a container's name as the engine lists it
// (["/demo-shop-gateway"]) without the leading slash.
func ContainerName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.TrimPrefix(names[0], "/")
}

// KeeperName is the container name of a project's keeper.
func KeeperName(project string) string { return project + "-keeper" }

// ReplicaName is the container name of replica n of a service.
func ReplicaName(project, cell, service string, n int) string {
	return fmt.Sprintf("%s-%s-%s-%d", project, cell, service, n)
}

// VolumeName is the project-scoped name of a named volume.
func VolumeName(project, volume string) string { return project + "_" + volume }

// JournalVolumeName is the volume holding the journal of a cell's flow
// executions, which its gateway mounts. It is joined with hyphens, as
// container names are, so it never meets a volume of the spec (always
// project_name).
func JournalVolumeName(project, cell string) string { return project + "-" + cell + "-journal" }

// AccessLogVolumeName is the volume holding the access log files of a
// cell's gateway. Unlike the journal it goes with `down`, as a
// container's logs do.
func AccessLogVolumeName(project, cell string) string { return project + "-" + cell + "-access-log" }

// ProjectLabels returns the labels shared by every object of a project.
func ProjectLabels(project string) map[string]string {
	return map[string]string{LabelProject: project}
}

// ReplicaLabels returns the labels of replica n of a service.
func ReplicaLabels(project, cell, service string, n int, hash string) map[string]string {
	return map[string]string{
		LabelProject:    project,
		LabelCell:       cell,
		LabelService:    service,
		LabelReplica:    strconv.Itoa(n),
		LabelRole:       RoleReplica,
		LabelConfigHash: hash,
	}
}
