package gateway

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/health"
)

// TestControllerRestartReplacesEachReplicaOnce restarts a service of three
// replicas and runs rounds until the restart is over, on a clock that moves
// less than a second per round (container creation times are whole
// seconds). Each old replica must be replaced by exactly one new one, and
// each old one must be drained only while three others serve.
func TestControllerRestartReplacesEachReplicaOnce(t *testing.T) {
	for _, tick := range []time.Duration{0, 300 * time.Millisecond, 2 * time.Second} {
		t.Run(fmt.Sprintf("clock moves %s per round", tick), func(t *testing.T) {
			spec := withHealth(testSpec())
			spec.Cell.Services["orders"].Replicas = 3
			h := newHarness(t, spec, "")
			h.step()
			h.step()
			h.reportStarting()
			h.step()
			old := h.containerIDs()
			if len(old) != 3 {
				t.Fatalf("replicas before the restart: %v", h.replicas())
			}
			h.events.take()
			h.eng.ResetCalls()

			// At every stop of an old replica, count the replicas in
			// rotation.
			var mu sync.Mutex
			var inRotation []int
			h.eng.SetCallHook(func(method, target string) error {
				if method == "ContainerStop" {
					n := 0
					for _, s := range h.rotation("orders") {
						if strings.HasSuffix(s, " available") {
							n++
						}
					}
					mu.Lock()
					inRotation = append(inRotation, n)
					mu.Unlock()
				}
				return nil
			})

			if err := h.c.Restart(t.Context(), "orders"); err != nil {
				t.Fatal(err)
			}
			for range 30 {
				h.step()
				h.reportStarting()
				h.clock.Advance(tick)
				if ids := h.containerIDs(); !slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(old, id) }) && len(ids) == 3 {
					break
				}
			}
			// A few more rounds: a converged cell changes nothing.
			for range 5 {
				h.step()
				h.reportStarting()
				h.clock.Advance(tick)
			}

			created, removed := 0, 0
			for _, c := range h.changes() {
				switch {
				case strings.HasPrefix(c, "ContainerCreate "):
					created++
				case strings.HasPrefix(c, "ContainerRemove "):
					removed++
				}
			}
			h.check("containers created, removed", []int{3, 3}, []int{created, removed})
			h.check("replicas in rotation as each old one stopped", []int{3, 3, 3}, inRotation)
			ids := h.containerIDs()
			for _, id := range ids {
				if slices.Contains(old, id) {
					t.Errorf("replica %s was not restarted", id)
				}
			}
			// Numbers are reused as old replicas go: which ones serve in
			// the end does not matter, only that three do.
			var rotation []string
			for _, s := range h.rotation("orders") {
				rotation = append(rotation, strings.Fields(s)[1])
			}
			h.check("rotation after the restart", []string{"available", "available", "available"}, rotation)
		})
	}
}

// TestControllerRestartSurvivesGatewayRestart restarts a service, then the
// gateway process in the middle of the rolling restart: the new gateway
// finishes it from its state file and replaces no new replica.
func TestControllerRestartSurvivesGatewayRestart(t *testing.T) {
	spec := withHealth(testSpec())
	statePath := filepath.Join(t.TempDir(), "state.json")
	h := newHarness(t, spec, statePath)
	h.step()
	h.step()
	h.reportStarting()
	h.step()
	old := h.containerIDs()
	h.eng.ResetCalls()
	if err := h.c.Restart(t.Context(), "orders"); err != nil {
		t.Fatal(err)
	}
	h.step() // creates the first new replica
	h.step()
	h.reportStarting()

	h.start()
	for range 20 {
		h.step()
		h.reportStarting()
	}
	created := 0
	for _, c := range h.changes() {
		if strings.HasPrefix(c, "ContainerCreate ") {
			created++
		}
	}
	h.check("containers created", 2, created)
	for _, id := range h.containerIDs() {
		if slices.Contains(old, id) {
			t.Errorf("replica %s was not restarted", id)
		}
	}
	// Once done, the restart is forgotten.
	raw, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	var st controllerState
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	h.check("replicas left to restart in the state file", map[string][]string(nil), st.Restarting)
}

// reportStarting reports a passing check for every running replica whose
// health is starting.
func (h *harness) reportStarting() {
	h.t.Helper()
	for _, svc := range h.c.Status().Services {
		for _, r := range svc.Replicas {
			if r.State == string(ContainerRunning) && r.Health == string(health.StateStarting) {
				h.report(svc.Service, r.Replica, health.StateHealthy)
			}
		}
	}
}

// containerIDs lists the IDs of the cell's replica containers, sorted.
func (h *harness) containerIDs() []string {
	h.t.Helper()
	var ids []string
	for _, r := range h.replicas() {
		name := strings.Fields(r)[0]
		ins, err := h.eng.ContainerInspect(h.t.Context(), name)
		if err != nil {
			h.t.Fatal(err)
		}
		ids = append(ids, ins.ID)
	}
	slices.Sort(ids)
	return ids
}
