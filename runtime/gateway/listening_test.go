package gateway

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/health"
)

// TestControllerWatchesListening: a running replica of a service with a
// port and no health check is tried on its port until it once accepts a
// connection, and its status then says since when it listens; a replica
// that never listens is tried for listenWatchFor, and one of a service
// with a health check is not watched at all.
func TestControllerWatchesListening(t *testing.T) {
	spec := testSpec()
	spec.Cell.Services["orders"].Replicas = 2
	spec.Cell.Services["probed"] = &cellspec.Service{Name: "probed", Image: "orders:1", Port: 8080, Replicas: 1,
		Health: &cellspec.Health{TCP: true, Interval: cellspec.Duration(time.Second), Timeout: cellspec.Duration(time.Second), Retries: 1}}
	spec.Images["probed"] = spec.Images["orders"]
	h := newHarness(t, spec, "")
	h.step()
	h.step()
	one, two := h.id("orders", 1), h.id("orders", 2)
	watched := func() []string {
		var out []string
		for _, id := range h.c.prober.Targets() {
			if id, ok := strings.CutPrefix(id, "listen/"); ok {
				out = append(out, id)
			}
		}
		slices.Sort(out)
		return out
	}
	want := []string{one, two}
	slices.Sort(want)
	h.check("watched replicas", want, watched())

	h.clock.Advance(300 * time.Millisecond)
	h.c.onHealth(health.Result{ID: listenProbeID(one), OK: true})
	h.c.onHealth(health.Result{ID: listenProbeID(two), OK: false})
	h.check("watched after the first connection", []string{two}, watched())
	listening := map[string]time.Time{}
	for _, s := range h.c.Status().Services {
		for _, r := range s.Replicas {
			listening[r.Name] = r.Listening
		}
	}
	h.check("listening since", map[string]time.Time{
		"demo-shop-orders-1": h.clock.Now(), "demo-shop-orders-2": {}, "demo-shop-probed-1": {},
	}, listening)

	h.clock.Advance(listenWatchFor)
	h.c.onHealth(health.Result{ID: listenProbeID(two), OK: false})
	h.check("watched after listenWatchFor", []string(nil), watched())
}
