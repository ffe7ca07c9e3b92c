package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/orchestro/orchestro/cellspec"
)

// Environment variables a gateway container reads.
const (
	EnvSpec    = "ORCHESTRO_SPEC"
	EnvToken   = "ORCHESTRO_TOKEN"
	EnvProject = "ORCHESTRO_PROJECT"
)

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
}

// ServiceImage names a service image by reference (for people) and by ID
// (for identity: a rebuilt image with the same tag has a new ID).
type ServiceImage struct {
	Ref string `json:"ref"`
	ID  string `json:"id"`
}

// Hash identifies the spec: equal specs have equal hashes.
func (s *GatewaySpec) Hash() string { return hashJSON(s) }

// ServiceConfigHash identifies what a replica of a service runs. A replica
// whose config-hash label differs is out of date and is replaced. Fields
// that the gateway applies without touching containers (replicas,
// autoscale, health, routes) are left out on purpose.
func ServiceConfigHash(project, cell string, s *cellspec.Service, img ServiceImage) string {
	vols := append([]cellspec.Volume(nil), s.Volumes...)
	sort.Slice(vols, func(i, j int) bool { return vols[i].Target < vols[j].Target })
	return hashJSON(struct {
		Project    string
		Cell       string
		Image      string
		Port       int
		Command    []string
		Entrypoint []string
		Env        map[string]string
		Resources  cellspec.Resources
		Volumes    []cellspec.Volume
	}{project, cell, img.ID, s.Port, s.Command, s.Entrypoint, s.Env, s.Resources, vols})
}

func hashJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		// Every hashed type is plain data; failing to encode it is a bug.
		panic(fmt.Sprintf("hash: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16]
}
