package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// Environment variables a gateway container reads. The command line's
// backend sets them when it creates the container.
const (
	EnvSpec    = "ORCHESTRO_SPEC"
	EnvToken   = "ORCHESTRO_TOKEN"
	EnvProject = "ORCHESTRO_PROJECT"
)

// JournalDir is where a gateway of a cell with flows finds the volume
// holding its journal of executions.
const JournalDir = "/var/lib/orchestro/journal"

// AccessLogDir is where a gateway writes its access log files (with
// access_log: file), on a volume of its cell.
const AccessLogDir = "/var/log/orchestro"

// AccessLogQuery selects lines of a gateway's access log.
type AccessLogQuery struct {
	// Tail is how many of the last lines to send; negative sends all.
	Tail int
	// Since, when set, leaves out lines of requests that started before.
	Since time.Time
	// Follow goes on sending lines as they are written.
	Follow bool
}

// GatewaySpec is everything a gateway needs to run its cell: the normalized
// cell, the images its services run, and how to reach the cells it uses.
// The CLI sets it on the gateway container at creation and may replace it
// later through the admin API.
type GatewaySpec struct {
	Project string         `json:"project"`
	Cell    *cellspec.Cell `json:"cell"`
	// Images maps a service to the image it runs.
	Images map[string]ServiceImage `json:"images"`
	// Peers maps each cell in uses: to its gateway's address on the mesh
	// ("demo-users-gateway:8082"): a name that exists only on the mesh.
	Peers map[string]string `json:"peers"`
	// AdminPort is the container port of the admin API.
	AdminPort int `json:"admin_port"`
	// Target is where the cell runs: TargetDocker (also when empty), where
	// the gateway's controller creates and replaces the replicas itself,
	// or TargetSwarm or TargetKubernetes, where the orchestrator does and
	// the gateway finds them by DNS.
	Target string `json:"target,omitempty"`
	// Discovery maps each service to the DNS name whose addresses are its
	// replicas ("tasks.demo-shop-catalog"), on a target whose gateway
	// finds replicas by DNS. On such a target the host part of each Peers
	// address is such a name too ("tasks.demo-users-gateway:8082").
	Discovery map[string]string `json:"discovery,omitempty"`
}

// Deployment targets.
const (
	// TargetDocker runs replicas as containers on one Docker engine, each
	// cell's gateway creating and replacing its own.
	TargetDocker = "docker"
	// TargetSwarm runs every service as a Docker Swarm service: Swarm
	// schedules, restarts and rolls the replicas, the gateways find them
	// by DNS.
	TargetSwarm = "swarm"
	// TargetKubernetes runs every service as a Kubernetes Deployment
	// behind a headless Service: Kubernetes schedules, restarts and rolls
	// the pods, a HorizontalPodAutoscaler scales them, the gateways find
	// them by DNS.
	TargetKubernetes = "kubernetes"
)

// FindsByDNS reports whether the gateway finds its replicas and peers by
// DNS instead of managing them.
func (s *GatewaySpec) FindsByDNS() bool {
	return s.Target == TargetSwarm || s.Target == TargetKubernetes
}

// ServiceImage names a service image by reference (for people) and by ID
// (for identity: a rebuilt image with the same tag has a new ID).
type ServiceImage struct {
	Ref string `json:"ref"`
	ID  string `json:"id"`
}

// Hash identifies the spec: equal specs have equal hashes.
func (s *GatewaySpec) Hash() string { return hashJSON(s) }

// hashJSON returns the first 16 hex digits of the SHA-256 of v's JSON
// encoding. It is the same function as engine.ConfigHash, copied so that
// this package, which the command line's front end imports, stays free of
// the engine and its Docker dependencies.
func hashJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		// Every hashed type is plain data; failing to encode it is a bug.
		panic(fmt.Sprintf("hash: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16]
}

// AccessLineTime reads the time of an access log line, the first member
// of every line the gateway writes.
func AccessLineTime(line []byte) (time.Time, bool) {
	const prefix = `{"time":"`
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return time.Time{}, false
	}
	rest := line[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:end]))
	return t, err == nil
}
