package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/orchestro/orchestro/cellspec"
)

// ServiceConfigHash identifies what a replica of a service runs, from the
// ID of its image (a rebuilt image with the same tag has a new ID). A
// replica whose config-hash label differs is out of date and is replaced.
// Fields that the gateway applies without touching containers (replicas,
// autoscale, health, routes) are left out on purpose.
func ServiceConfigHash(project, cell string, s *cellspec.Service, imageID string) string {
	vols := append([]cellspec.Volume(nil), s.Volumes...)
	sort.Slice(vols, func(i, j int) bool { return vols[i].Target < vols[j].Target })
	return ConfigHash(struct {
		Project    string
		Cell       string
		Image      string
		Port       int
		Command    []string
		Entrypoint []string
		Env        map[string]string
		Resources  cellspec.Resources
		Volumes    []cellspec.Volume
	}{project, cell, imageID, s.Port, s.Command, s.Entrypoint, s.Env, s.Resources, vols})
}

// ConfigHash is the value of a config-hash label: the first 16 hex digits
// of the SHA-256 of v's JSON encoding, so equal configurations have equal
// hashes. v must be plain data.
func ConfigHash(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		// Every hashed type is plain data; failing to encode it is a bug.
		panic(fmt.Sprintf("hash: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16]
}
