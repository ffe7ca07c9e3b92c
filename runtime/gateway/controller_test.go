package gateway

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
	"github.com/orchestro/orchestro/runtime/health"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// The controller tests drive observe → plan → execute against the fake
// engine, one round at a time (harness.step), on a clock moved by hand.
// Health checks do not run: results are fed through the prober's callback
// (harness.report), as a check would deliver them.

// manualClock is a clock the test moves by hand.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// eventLog is a publisher that keeps every event.
type eventLog struct {
	mu     sync.Mutex
	events []api.Event
}

func (l *eventLog) Publish(e api.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// take returns the events published since the last take, one line each
// ("type service-n: message"), sorted: a round creates replicas
// concurrently, so the order of their events is not defined.
func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		subject := e.Service
		if e.Replica != "" {
			subject += "-" + e.Replica
		}
		msg := e.Message
		if e.Type == api.EventScaled {
			msg = fmt.Sprintf("%d → %d, %s", e.From, e.To, msg)
		}
		out = append(out, fmt.Sprintf("%s %s: %s", e.Type, subject, msg))
	}
	l.events = nil
	slices.Sort(out)
	return out
}

// sorted returns lines and more, sorted as eventLog.take sorts.
func sorted(lines []string, more ...string) []string {
	out := append(slices.Clone(lines), more...)
	slices.Sort(out)
	return out
}

// harness is a gateway's controller on the fake engine. start builds a new
// controller and proxy, as a gateway process does when it (re)starts; the
// engine, the clock and the state file stay.
type harness struct {
	t         *testing.T
	eng       *enginetest.Fake
	clock     *manualClock
	events    *eventLog
	spec      *api.GatewaySpec
	statePath string
	px        *proxy.Proxy
	c         *Controller
}

func newHarness(t *testing.T, spec *api.GatewaySpec, statePath string) *harness {
	t.Helper()
	clock := &manualClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	eng := enginetest.NewFake()
	eng.SetClock(clock.Now)
	for _, img := range spec.Images {
		eng.AddImage(img.Ref, nil)
	}
	if _, err := eng.NetworkCreate(t.Context(), engine.NetworkName(spec.Project, spec.Cell.Name), network.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, eng: eng, clock: clock, events: &eventLog{}, spec: spec, statePath: statePath}
	h.start()
	return h
}

func (h *harness) start() {
	h.t.Helper()
	px, err := proxy.New(h.spec.Cell, proxy.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.px = px
	h.c = NewController(h.eng, h.spec, px, h.events, h.statePath)
	h.c.now = h.clock.Now
	h.c.started = h.clock.Now()
}

// step runs one round of the reconcile loop and waits for the drains it
// started.
func (h *harness) step() {
	h.t.Helper()
	h.c.step(h.t.Context())
	h.c.wg.Wait()
}

// kicked reports whether the controller asked for another round at once,
// and takes the request.
func (h *harness) kicked() bool {
	select {
	case <-h.c.kick:
		return true
	default:
		return false
	}
}

// replicas lists the cell's replica containers in the engine: "name state
// hash", by name.
func (h *harness) replicas() []string {
	h.t.Helper()
	list, err := h.eng.ContainerList(h.t.Context(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelRole+"="+engine.RoleReplica))})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, s := range list {
		out = append(out, engine.ContainerName(s.Names)+" "+s.State+" "+s.Labels[engine.LabelConfigHash])
	}
	slices.Sort(out)
	return out
}

// id returns the container ID of replica n of a service.
func (h *harness) id(service string, n int) string {
	h.t.Helper()
	ins, err := h.eng.ContainerInspect(h.t.Context(), engine.ReplicaName(h.spec.Project, h.spec.Cell.Name, service, n))
	if err != nil {
		h.t.Fatal(err)
	}
	return ins.ID
}

// report feeds a health check result for replica n of a service, with the
// transition from starting or healthy that a Tracker would return.
func (h *harness) report(service string, n int, to health.State) {
	h.t.Helper()
	from := health.StateStarting
	if to == health.StateUnhealthy {
		from = health.StateHealthy
	}
	h.c.onHealth(health.Result{ID: h.id(service, n), At: h.clock.Now(), OK: to == health.StateHealthy, State: to,
		Transition: &health.Transition{From: from, To: to, At: h.clock.Now(), Reason: "test"}})
}

// rotation describes the proxy's replicas of a service: "name available"
// or "name draining" or "name out".
func (h *harness) rotation(service string) []string {
	var out []string
	for _, u := range h.px.Upstreams(service) {
		state := "out"
		switch {
		case u.Draining():
			state = "draining"
		case u.Available(h.clock.Now()):
			state = "available"
		}
		out = append(out, u.Name+" "+state)
	}
	return out
}

// changes returns the calls that change containers since the last
// ResetCalls.
func (h *harness) changes() []string {
	var out []string
	for _, c := range h.eng.Calls() {
		for _, m := range []string{"ContainerCreate", "ContainerStart", "ContainerStop", "ContainerKill", "ContainerRemove"} {
			if strings.HasPrefix(c, m+" ") {
				out = append(out, c)
			}
		}
	}
	return out
}

// watchDrain records, at every stop and removal of a container, the state
// the proxy's upstream for that container is in.
func (h *harness) watchDrain(service string) *[]string {
	var mu sync.Mutex
	seen := &[]string{}
	h.eng.SetCallHook(func(method, target string) error {
		if method != "ContainerStop" && method != "ContainerRemove" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		line := method + " " + target + ": not in the proxy"
		for _, u := range h.px.Upstreams(service) {
			if engine.ReplicaName(h.spec.Project, h.spec.Cell.Name, u.Service, u.Replica) == target {
				line = fmt.Sprintf("%s %s: draining %v, available %v", method, target, u.Draining(), u.Available(h.clock.Now()))
			}
		}
		*seen = append(*seen, line)
		return nil
	})
	return seen
}

func (h *harness) check(what string, want, got any) {
	h.t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		h.t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// withHealth gives the orders service of spec an HTTP health check.
func withHealth(spec *api.GatewaySpec) *api.GatewaySpec {
	spec.Cell.Services["orders"].Health = &cellspec.Health{HTTP: "/healthz"}
	return spec
}

func specJSON(t *testing.T, spec *api.GatewaySpec) []byte {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestControllerAdoptsReplicasAfterRestart(t *testing.T) {
	tests := []struct {
		name string
		spec *api.GatewaySpec
		// wantAdopted is the rotation right after the restart: replicas
		// with a health check wait for a passing check again.
		wantAdopted []string
	}{
		{name: "without health check", spec: testSpec(), wantAdopted: []string{"orders-1 available", "orders-2 available"}},
		{name: "with health check", spec: withHealth(testSpec()), wantAdopted: []string{"orders-1 out", "orders-2 out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.spec, "")
			h.step()
			h.step()
			h.report("orders", 1, health.StateHealthy)
			h.report("orders", 2, health.StateHealthy)
			h.check("rotation before the restart", []string{"orders-1 available", "orders-2 available"}, h.rotation("orders"))
			before := h.replicas()
			h.events.take()

			h.start()
			h.eng.ResetCalls()
			h.step()
			h.check("containers changed by the restarted gateway", []string(nil), h.changes())
			h.check("replicas after the restart", before, h.replicas())
			h.check("rotation after the restart", tt.wantAdopted, h.rotation("orders"))
			h.report("orders", 1, health.StateHealthy)
			h.report("orders", 2, health.StateHealthy)
			h.step()
			h.check("rotation once checked", []string{"orders-1 available", "orders-2 available"}, h.rotation("orders"))
			h.check("containers changed by the restarted gateway", []string(nil), h.changes())
			for _, e := range h.events.take() {
				if !strings.HasPrefix(e, "healthy ") {
					t.Errorf("unexpected event after the restart: %s", e)
				}
			}
		})
	}
}

func TestControllerDrainsBeforeRemoving(t *testing.T) {
	h := newHarness(t, testSpec(), "")
	h.step()
	h.step()
	h.check("rotation", []string{"orders-1 available", "orders-2 available"}, h.rotation("orders"))
	h.events.take()

	seen := h.watchDrain("orders")
	if err := h.c.Scale(t.Context(), "orders", 1); err != nil {
		t.Fatal(err)
	}
	h.step()
	h.check("proxy state of the replica as it was stopped and removed", []string{
		"ContainerStop demo-shop-orders-2: draining true, available false",
		"ContainerRemove demo-shop-orders-2: draining true, available false",
	}, *seen)
	// The drained replica stays in the pool, out of rotation, until the
	// next round sees its container gone.
	h.check("rotation after the drain", []string{"orders-1 available", "orders-2 draining"}, h.rotation("orders"))
	h.check("events", []string{
		"drained orders-2: in 0s (surplus 2 > 1)",
		"removed orders-2: surplus 2 > 1",
		"scaled orders: 2 → 1, requested",
	}, h.events.take())
	h.step()
	h.check("rotation once the container is gone", []string{"orders-1 available"}, h.rotation("orders"))
	h.check("replicas", []string{"demo-shop-orders-1 running " + serviceHash(h.spec, "orders")}, h.replicas())
}

func TestControllerRollingUpdate(t *testing.T) {
	h := newHarness(t, withHealth(testSpec()), "")
	h.step()
	h.step()
	h.report("orders", 1, health.StateHealthy)
	h.report("orders", 2, health.StateHealthy)
	h.step()
	h.events.take()
	seen := h.watchDrain("orders")

	next := withHealth(testSpec())
	next.Cell.Services["orders"].Env = map[string]string{"LOG_LEVEL": "debug"}
	oldHash, newHash := serviceHash(h.spec, "orders"), serviceHash(next, "orders")
	if err := h.c.UpdateSpec(t.Context(), specJSON(t, next)); err != nil {
		t.Fatal(err)
	}
	h.step()
	h.check("events of the first round", []string{"started orders-3: rolling update", "updated : cell spec replaced"}, h.events.take())
	h.step()
	// Nothing goes while the new replica has not passed a check.
	h.step()
	h.check("rotation while the new replica starts", []string{"orders-1 available", "orders-2 available", "orders-3 out"}, h.rotation("orders"))
	h.check("events while the new replica starts", []string(nil), h.events.take())

	h.report("orders", 3, health.StateHealthy)
	h.step()
	h.check("events once the new replica is healthy", []string{
		"drained orders-2: in 0s (out of date)",
		"healthy orders-3: ",
		"removed orders-2: out of date",
		"started orders-4: rolling update",
	}, h.events.take())
	h.step()
	h.report("orders", 4, health.StateHealthy)
	h.step()
	h.check("events once the second new replica is healthy", []string{
		"drained orders-1: in 0s (out of date)",
		"healthy orders-4: ",
		"removed orders-1: out of date",
	}, h.events.take())
	h.step()
	h.check("stops and removals, and the proxy state then", []string{
		"ContainerStop demo-shop-orders-2: draining true, available false",
		"ContainerRemove demo-shop-orders-2: draining true, available false",
		"ContainerStop demo-shop-orders-1: draining true, available false",
		"ContainerRemove demo-shop-orders-1: draining true, available false",
	}, *seen)
	h.check("replicas", []string{"demo-shop-orders-3 running " + newHash, "demo-shop-orders-4 running " + newHash}, h.replicas())
	h.check("rotation", []string{"orders-3 available", "orders-4 available"}, h.rotation("orders"))
	if oldHash == newHash {
		t.Errorf("the changed service kept its config hash %s", oldHash)
	}
}

func TestControllerReplacesUnhealthyReplica(t *testing.T) {
	h := newHarness(t, withHealth(testSpec()), "")
	h.step()
	h.step()
	h.report("orders", 1, health.StateHealthy)
	h.report("orders", 2, health.StateHealthy)
	h.step()
	h.events.take()

	h.report("orders", 2, health.StateUnhealthy)
	h.check("rotation once unhealthy", []string{"orders-1 available", "orders-2 out"}, h.rotation("orders"))
	h.step()
	h.step()
	h.report("orders", 3, health.StateHealthy)
	h.step()
	h.step()
	h.check("events", []string{
		"drained orders-2: in 0s (unhealthy, replaced)",
		"healthy orders-3: ",
		"replaced orders-2: unhealthy, replaced",
		"started orders-3: replace unhealthy replica",
		"unhealthy orders-2: test",
	}, h.events.take())
	h.check("rotation", []string{"orders-1 available", "orders-3 available"}, h.rotation("orders"))
}

func TestControllerCrashLoop(t *testing.T) {
	for _, seenRunning := range []bool{true, false} {
		name := "crashes after it was seen running"
		if !seenRunning {
			// The replica dies between its start and the next listing:
			// it is never seen running and counts all the same.
			name = "crashes before it was seen running"
		}
		t.Run(name, func(t *testing.T) {
			spec := testSpec()
			spec.Cell.Services["orders"].Replicas = 1
			h := newHarness(t, spec, "")
			crash := func() {
				t.Helper()
				if seenRunning {
					h.step()
				}
				if err := h.eng.Exit(h.id("orders", 1), 1); err != nil {
					t.Fatal(err)
				}
				h.eng.ResetCalls()
				h.step()
			}
			h.step()
			h.events.take()

			crash()
			h.check("first crash", []string{
				"exited orders-1: code 1",
				"removed orders-1: exited with code 1",
				"waiting orders: backing off (1 recent crash), next try in 1s",
			}, h.events.take())

			h.clock.Advance(time.Second)
			h.step()
			crash()
			h.check("second crash", []string{
				"exited orders-1: code 1",
				"removed orders-1: exited with code 1",
				"started orders-1: scale 0 → 1",
				"waiting orders: backing off (2 recent crashes), next try in 2s",
			}, h.events.take())
			// No attempt, no event and no kick until the backoff ends.
			h.kicked()
			h.eng.ResetCalls()
			for range 5 {
				h.step()
			}
			h.check("changes during the backoff", []string(nil), h.changes())
			h.check("events during the backoff", []string(nil), h.events.take())
			if h.kicked() {
				t.Errorf("a round that only waits asked for another round at once")
			}

			h.clock.Advance(2 * time.Second)
			h.step()
			crash()
			h.check("third crash", []string{
				"crashloop orders: 3 crashes, the last with exit code 1; next replacement in 4s",
				"exited orders-1: code 1",
				"removed orders-1: exited with code 1",
				"started orders-1: scale 0 → 1",
				"waiting orders: crashloop (3 recent crashes), next try in 4s",
			}, h.events.take())
			if got := h.c.Status().Services[0].Health; got != "crashloop" {
				t.Errorf("service health = %q, want crashloop", got)
			}

			h.clock.Advance(4 * time.Second)
			h.step()
			crash()
			h.check("fourth crash", []string{
				"crashloop orders: 4 crashes, the last with exit code 1; next replacement in 8s",
				"exited orders-1: code 1",
				"removed orders-1: exited with code 1",
				"started orders-1: scale 0 → 1",
				"waiting orders: crashloop (4 recent crashes), next try in 8s",
			}, h.events.take())

			// A replacement that stays up ends the streak: its exit does
			// not count, and it is replaced at once.
			h.clock.Advance(8 * time.Second)
			h.step()
			h.step()
			h.events.take()
			h.clock.Advance(trustedRun)
			crash()
			h.check("crash after a long run", []string{
				"exited orders-1: code 1",
				"removed orders-1: exited with code 1",
				"started orders-1: replace exited replica",
			}, h.events.take())
			if got := h.c.Status().Services[0].Health; got == "crashloop" {
				t.Errorf("after a long run, the service is still %s", got)
			}
		})
	}
}

// A replica that ran for a while before it died is not part of a crash
// loop: its exit ends the streak and it is replaced at once, as Docker's
// restart policy resets its delay after ten seconds of running. Replicas
// killed one after the other (a chaos test, an OOM killer) are each
// replaced at once, instead of leaving the service with none for longer
// and longer.
func TestControllerLongRunExitStartsNewStreak(t *testing.T) {
	spec := testSpec()
	spec.Cell.Services["orders"].Replicas = 1
	h := newHarness(t, spec, "")
	exit := func() {
		t.Helper()
		if err := h.eng.Exit(h.id("orders", 1), 137); err != nil {
			t.Fatal(err)
		}
		h.step()
	}
	h.step()
	h.step()
	h.events.take()
	exit()
	h.events.take()
	h.clock.Advance(time.Second)
	h.step()
	h.step()
	exit()
	h.check("a replacement that dies at once", []string{
		"exited orders-1: code 137",
		"removed orders-1: exited with code 137",
		"started orders-1: scale 0 → 1",
		"waiting orders: backing off (2 recent crashes), next try in 2s",
	}, h.events.take())

	h.clock.Advance(2 * time.Second)
	h.step()
	h.step()
	h.clock.Advance(10 * time.Second)
	h.step()
	h.events.take()
	exit()
	h.check("a replica killed after a long run", []string{
		"exited orders-1: code 137",
		"removed orders-1: exited with code 137",
		"started orders-1: replace exited replica",
	}, h.events.take())
	if cs := h.c.crash["orders"]; cs.Crashes != 0 {
		t.Errorf("after a long run's exit the streak is %+v, want none", cs)
	}
}

func TestControllerUpdateSpec(t *testing.T) {
	t.Run("a changed service starts without the backoff of its old config", func(t *testing.T) {
		spec := testSpec()
		spec.Cell.Services["orders"].Replicas = 1
		h := newHarness(t, spec, "")
		h.step()
		for range 3 {
			h.step()
			if err := h.eng.Exit(h.id("orders", 1), 1); err != nil {
				t.Fatal(err)
			}
			h.step()
			// Past the backoffs of the first two crashes (1s, 2s), not
			// the third's (4s), which is still under way.
			h.clock.Advance(2 * time.Second)
		}
		if got := h.c.Status().Services[0].Health; got != "crashloop" {
			t.Fatalf("service health = %q, want crashloop", got)
		}
		h.events.take()

		fixed := testSpec()
		fixed.Cell.Services["orders"].Replicas = 1
		fixed.Images["orders"] = api.ServiceImage{Ref: "orders:1", ID: "sha256:fixed"}
		if err := h.c.UpdateSpec(t.Context(), specJSON(t, fixed)); err != nil {
			t.Fatal(err)
		}
		h.step()
		h.check("events", []string{"started orders-1: scale 0 → 1", "updated : cell spec replaced"}, h.events.take())
		if got := h.c.Status().Services[0].Health; got == "crashloop" {
			t.Errorf("service health = %q after the update", got)
		}
	})
	t.Run("a spec the proxy refuses changes nothing", func(t *testing.T) {
		h := newHarness(t, testSpec(), "")
		if err := h.c.Scale(t.Context(), "orders", 3); err != nil {
			t.Fatal(err)
		}
		bad := testSpec()
		bad.Cell.Services["orders"].Env = map[string]string{"V": "2"}
		bad.Cell.Gateway.Balance = "random"
		if err := h.c.UpdateSpec(t.Context(), specJSON(t, bad)); err == nil {
			t.Fatal("UpdateSpec accepted an unknown balance policy")
		}
		if got := h.c.Status().Services[0].Desired; got != 3 {
			t.Errorf("desired replicas after a refused update = %d, want the override 3", got)
		}
		if h.c.Spec() != h.spec {
			t.Errorf("a refused update replaced the spec")
		}
	})
}

func TestControllerStartFailure(t *testing.T) {
	tests := []struct {
		method string
		// left is what a failed attempt leaves in the engine, removed by
		// the next round.
		left []string
		// started is the reason of the creation that succeeds.
		started string
	}{
		{method: "ContainerCreate", started: "scale 0 → 1"},
		{method: "ContainerStart", left: []string{"removed orders-1: never started"}, started: "replace replica that never started"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			spec := testSpec()
			spec.Cell.Services["orders"].Replicas = 1
			h := newHarness(t, spec, "")
			h.eng.SetError(tt.method, fmt.Errorf("no space left on device"))
			verb := map[string]string{"ContainerCreate": "create", "ContainerStart": "start"}[tt.method]
			failed := "error orders-1: " + verb + " replica demo-shop-orders-1: no space left on device"

			h.step()
			h.check("first attempt", []string{failed}, h.events.take())
			if !h.kicked() {
				t.Errorf("the first failure did not ask for another round")
			}
			h.step()
			h.check("round after the first attempt", sorted(tt.left,
				"waiting orders: start failed (1 recent failure), next try in 1s"), h.events.take())

			// No attempt, no event and no kick until the backoff ends.
			h.kicked()
			h.eng.ResetCalls()
			for range 5 {
				h.step()
			}
			h.check("changes during the backoff", []string(nil), h.changes())
			h.check("events during the backoff", []string(nil), h.events.take())
			if h.kicked() {
				t.Errorf("a round that only waits asked for another round at once")
			}

			h.clock.Advance(time.Second)
			h.step()
			h.check("second attempt", []string{failed}, h.events.take())
			h.step()
			h.check("round after the second attempt", sorted(tt.left,
				"waiting orders: start failed (2 recent failures), next try in 2s"), h.events.take())

			h.clock.Advance(2 * time.Second)
			h.step()
			h.check("third attempt", []string{
				"crashloop orders: 3 recent failures, the last a failed start (" + verb + " replica demo-shop-orders-1: no space left on device); next try in 4s",
				failed,
			}, h.events.take())

			h.eng.SetError(tt.method, nil)
			h.clock.Advance(4 * time.Second)
			h.step()
			h.step()
			h.check("attempt once the engine works", sorted(tt.left, "started orders-1: "+tt.started), h.events.take())
			h.check("replicas", []string{"demo-shop-orders-1 running " + serviceHash(spec, "orders")}, h.replicas())
		})
	}
}

func TestControllerScaleSurvivesRestart(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "state", "state.json")
	h := newHarness(t, testSpec(), statePath)
	h.step()
	h.step()
	if err := h.c.Scale(t.Context(), "orders", 3); err != nil {
		t.Fatal(err)
	}
	h.step()
	h.step()
	want := []string{
		"demo-shop-orders-1 running " + serviceHash(h.spec, "orders"),
		"demo-shop-orders-2 running " + serviceHash(h.spec, "orders"),
		"demo-shop-orders-3 running " + serviceHash(h.spec, "orders"),
	}
	h.check("replicas once scaled", want, h.replicas())
	h.events.take()

	// The restarted gateway has its container's spec (2 replicas) and the
	// state file.
	h.start()
	h.eng.ResetCalls()
	h.step()
	h.step()
	h.check("containers changed by the restarted gateway", []string(nil), h.changes())
	h.check("replicas after the restart", want, h.replicas())
	if got := h.c.Status().Services[0].Desired; got != 3 {
		t.Errorf("desired replicas after the restart = %d, want 3", got)
	}
	h.check("events after the restart", []string(nil), h.events.take())
}

func TestControllerStateFileErrors(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares the directory and returns the state file's path.
		setup func(t *testing.T, dir string) string
		// act is what the gateway does with the file.
		act func(t *testing.T, h *harness)
		// want lists the error events, given the state file's path.
		want func(t *testing.T, path string) []string
	}{
		{
			name: "a state file that does not parse",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "state.json")
				if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			},
			act: func(t *testing.T, h *harness) {},
			want: func(t *testing.T, path string) []string {
				return []string{"error : load state file " + path + ": invalid character 'n' looking for beginning of object key string"}
			},
		},
		{
			name: "a saved spec the proxy refuses",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "state.json")
				saved := testSpec()
				saved.Cell.Gateway.Balance = "random"
				raw, err := json.Marshal(controllerState{Spec: saved})
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, raw, 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			},
			act: func(t *testing.T, h *harness) {
				if h.c.Spec() != h.spec {
					t.Errorf("the controller runs the refused spec")
				}
			},
			want: func(t *testing.T, path string) []string {
				// The refusal's own words are the proxy's.
				px, err := proxy.New(testSpec().Cell, proxy.Options{})
				if err != nil {
					t.Fatal(err)
				}
				bad := testSpec().Cell
				bad.Gateway.Balance = "random"
				refused := px.SetRoutes(bad)
				if refused == nil {
					t.Fatal("the proxy takes an unknown balance policy")
				}
				return []string{"error : load state file " + path + ": spec: " + refused.Error() + "; running the container's spec"}
			},
		},
		{
			name: "a state file that cannot be written",
			setup: func(t *testing.T, dir string) string {
				file := filepath.Join(dir, "file")
				if err := os.WriteFile(file, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(file, "state.json")
			},
			act: func(t *testing.T, h *harness) {
				if err := h.c.Scale(t.Context(), "orders", 3); err != nil {
					t.Fatal(err)
				}
			},
			want: func(t *testing.T, path string) []string {
				return []string{
					"error : load state file " + path + ": open " + path + ": not a directory",
					"error : save state file " + path + ": mkdir " + filepath.Dir(path) + ": not a directory",
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			h := newHarness(t, testSpec(), path)
			tt.act(t, h)
			var errs []string
			for _, e := range h.events.take() {
				if strings.HasPrefix(e, "error ") {
					errs = append(errs, e)
				}
			}
			h.check("error events", tt.want(t, path), errs)
		})
	}
}

// TestUpdateSpecDuringReconcile replaces the spec for as long as rounds
// run, and reads status and autoscales meanwhile; under -race it fails if
// any of them reads the spec outside the lock.
func TestUpdateSpecDuringReconcile(t *testing.T) {
	h := newHarness(t, withHealth(testSpec()), "")
	ctx := t.Context()
	specs := make([][]byte, 2)
	for i := range specs {
		next := withHealth(testSpec())
		next.Cell.Services["orders"].Env = map[string]string{"V": strconv.Itoa(i)}
		specs[i] = specJSON(t, next)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for range 100 {
			h.c.step(ctx)
		}
	})
	busy := func(f func(i int)) {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
					f(i)
				}
			}
		})
	}
	busy(func(i int) {
		if err := h.c.UpdateSpec(ctx, specs[i%2]); err != nil {
			t.Error(err)
		}
	})
	busy(func(int) {
		h.c.Status()
		h.c.autoscale(h.clock.Now())
	})
	wg.Wait()
	h.c.wg.Wait()
}
