//go:build unix

package main

// A bounded chaos suite against the real Docker engine: under steady load on
// shop's /catalog route, catalog replicas are SIGKILLed one after another,
// scaled up and down in quick succession, restarted, and paused (a hang,
// not a crash); then the shop gateway itself is restarted and killed. Every
// scenario reports how many requests were sent and how many failed, by
// class. Run it with
//
//	go test -race -v -run TestChaos -count=1 ./cmd/orchestro/
//
// One demo project serves every scenario, in order; each starts once the
// project has settled with catalog at its spec's three replicas. Only
// idempotent requests (GETs) are sent: none may fail while replicas come
// and go. While the gateway itself is down requests do fail; there the
// gap is measured and reported, and no replica may be recreated.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

const (
	// chaosPath is where the load goes: shop's /catalog route, which
	// strips its prefix, allows a per-try timeout of chaosTryTimeout and
	// two further tries on other replicas.
	chaosPath       = "/catalog/"
	chaosTryTimeout = 5 * time.Second
	// chaosCatalogReplicas is catalog's replica count in the demo spec.
	chaosCatalogReplicas = 3

	// The replica kills: one every chaosKillEvery, chaosKills in all.
	chaosKillEvery = 3 * time.Second
	chaosKills     = 4
	// chaosFlaps is how many times catalog is scaled 1 → 5 → 1.
	chaosFlaps = 3
	// chaosGatewayStopGrace is the stop timeout of the gateway restart:
	// SIGTERM, then SIGKILL after this.
	chaosGatewayStopGrace = 1

	// Bounds of the latency probe, whatever a scenario asks for.
	chaosProbeClients     = 2
	chaosProbePace        = 20 * time.Millisecond
	chaosProbeMaxDuration = 90 * time.Second
	chaosProbeMaxRequests = 20000
	// chaosProbeTimeout is above three per-try timeouts, so a request the
	// gateway retries after a hang shows its full latency.
	chaosProbeTimeout = 20 * time.Second
	// chaosHeld is how long a request must take to count as held by a hung
	// replica: answers otherwise take milliseconds.
	chaosHeld = time.Second
)

// TestChaos starts one demo project and runs the chaos scenarios on it in
// order.
func TestChaos(t *testing.T) {
	begin := time.Now()
	cli := requireDocker(t)
	p := newProject(t, "chaos", gwDemoDir(t), gwDemoPorts...)
	t.Logf("project %s, ports %v", p.name, p.ports)

	start := time.Now()
	if _, stderr, code := p.run(t, "up", "-d", "--wait"); code != 0 {
		t.Fatalf("up -d --wait exited %d, want 0:\n%s", code, stderr)
	}
	t.Logf("up -d --wait: %s", time.Since(start).Round(time.Millisecond))

	for _, sc := range []struct {
		name string
		fn   func(*testing.T, *client.Client, *project)
	}{
		{"kill-replicas", testChaosKillReplicas},
		{"scale-flap", testChaosScaleFlap},
		{"rolling-restart", testChaosRestart},
		{"pause-replica", testChaosPauseReplica},
		{"crashing-request", testChaosCrashingRequest},
		{"gateway-restart", testChaosGatewayRestart},
		{"gateway-kill", testChaosGatewayKill},
	} {
		t.Run(sc.name, func(t *testing.T) {
			chaosBaseline(t, p)
			start := time.Now()
			sc.fn(t, cli, p)
			t.Logf("%s took %s", sc.name, time.Since(start).Round(time.Millisecond))
		})
	}
	t.Logf("TestChaos: %s from start to the end of the last scenario (the project's removal follows)",
		time.Since(begin).Round(time.Millisecond))
}

// chaosBaseline waits until the project has settled with catalog at its
// spec's count, all healthy, scaling it back first when a scenario that
// failed half-way left it elsewhere.
func chaosBaseline(t *testing.T, p *project) {
	t.Helper()
	start := time.Now()
	if s := gwService(t, p, "shop", "catalog"); s.Desired != chaosCatalogReplicas {
		t.Logf("shop/catalog wants %d replicas; scaling it back to %d", s.Desired, chaosCatalogReplicas)
		if _, stderr, code := p.run(t, "scale", fmt.Sprintf("shop/catalog=%d", chaosCatalogReplicas)); code != 0 {
			t.Fatalf("scale shop/catalog=%d exited %d:\n%s", chaosCatalogReplicas, code, stderr)
		}
	}
	gwSettled(t, p, time.Minute)
	if _, ok, why := gwServiceAt(t, p, "shop", "catalog", chaosCatalogReplicas, nil, 30*time.Second); !ok {
		t.Fatalf("shop/catalog is not at %d healthy replicas: %s", chaosCatalogReplicas, why)
	}
	if took := time.Since(start); took > time.Second {
		t.Logf("waited %s for the project to settle", took.Round(time.Millisecond))
	}
}

// testChaosKillReplicas: a healthy catalog replica is SIGKILLed every 3
// seconds, 4 times; no request fails, and catalog heals back to 3.
func testChaosKillReplicas(t *testing.T, cli *client.Client, p *project) {
	ctx := context.Background()
	url := p.url("SHOP_PORT") + chaosPath
	retriesBefore := gwRetries(t, cli, p)
	load := gwStartLoad(t, url, gwClients, 60*time.Second)
	probe := chaosStartProbe(t, url, 60*time.Second)
	time.Sleep(time.Second)

	killed := map[string]bool{}
	first := time.Now()
	for i := range chaosKills {
		if d := time.Until(first.Add(time.Duration(i) * chaosKillEvery)); d > 0 {
			time.Sleep(d)
		}
		name, id, health := chaosPickVictim(t, p, killed)
		if id == "" {
			t.Errorf("kill %d: no running catalog replica left to kill", i+1)
			continue
		}
		at := time.Now()
		if err := cli.ContainerKill(ctx, id, "SIGKILL"); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("kill %d: kill %s: %v", i+1, name, err)
			continue
		}
		killed[id] = true
		t.Logf("kill %d at +%s of the load: %s (%.12s), %s", i+1, at.Sub(load.start).Round(time.Millisecond), name, id, health)
	}
	last := time.Now()
	healed, ok, why := gwServiceAt(t, p, "shop", "catalog", chaosCatalogReplicas, killed, 45*time.Second)
	if !ok {
		t.Errorf("shop/catalog not back at %d healthy replicas 45s after the last kill: %s", chaosCatalogReplicas, why)
	}
	time.Sleep(time.Second) // serve a while on the healed set
	res, pres := load.stop(), probe.stop()

	t.Logf("%d kills in %s; catalog back at %d healthy replicas, none of them killed, %s after the last kill",
		len(killed), last.Sub(first).Round(time.Millisecond), chaosCatalogReplicas, healed.Round(time.Millisecond))
	t.Logf("answers by replica: %s", gwHostsLine(res.byHost(time.Time{}, time.Time{})))
	for _, e := range gwEvents(t, p, "shop", "catalog", first) {
		t.Logf("  event %s", e)
	}
	t.Logf("tries retried on another replica by the shop gateway (/catalog): %.0f", gwRetries(t, cli, p)-retriesBefore)
	gwCheckNoFailures(t, "4 SIGKILLs of catalog replicas", res)
	chaosCheckProbe(t, "4 SIGKILLs of catalog replicas", pres)
}

// testChaosCrashingRequest: under load, one POST whose handling makes the
// catalog replica that gets it exit (the echo service's crash=1). The
// replica may have acted on it, so the gateway sends it to no other
// replica: exactly one replica exits, the client gets 502, no other
// request fails, and catalog heals back to 3.
func testChaosCrashingRequest(t *testing.T, cli *client.Client, p *project) {
	url := p.url("SHOP_PORT") + chaosPath
	load := gwStartLoad(t, url, gwClients, 60*time.Second)
	time.Sleep(time.Second)

	at := time.Now()
	resp, err := http.Post(url+"?crash=1", "application/json", strings.NewReader(`{"order":1}`))
	if err != nil {
		t.Fatalf("POST %s?crash=1: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("POST ?crash=1: %s %q, want 502", resp.Status, body)
	}
	t.Logf("POST ?crash=1 answered %s after %s", resp.Status, time.Since(at).Round(time.Millisecond))
	healed, ok, why := gwServiceAt(t, p, "shop", "catalog", chaosCatalogReplicas, nil, 45*time.Second)
	if !ok {
		t.Errorf("shop/catalog not back at %d healthy replicas 45s after the crash: %s", chaosCatalogReplicas, why)
	}
	time.Sleep(time.Second)
	res := load.stop()

	exited := 0
	for _, e := range gwEvents(t, p, "shop", "catalog", at) {
		t.Logf("  event %s", e)
		if strings.Contains(e, " exited: ") {
			exited++
		}
	}
	if exited != 1 {
		t.Errorf("%d catalog replicas exited, want 1: the crashing POST ran on each of them", exited)
	}
	t.Logf("catalog back at %d healthy replicas %s after the crash", chaosCatalogReplicas, healed.Round(time.Millisecond))
	gwCheckNoFailures(t, "a POST that crashes its catalog replica", res)
}

// chaosPickVictim picks, at random, a running catalog replica that ps shows
// healthy and that was not killed already; failing that, any running one.
func chaosPickVictim(t *testing.T, p *project, killed map[string]bool) (name, id, health string) {
	t.Helper()
	type cand struct{ name, id, health string }
	var healthy, running []cand
	for _, r := range gwService(t, p, "shop", "catalog").Replicas {
		if r.State != "running" || killed[r.ContainerID] {
			continue
		}
		c := cand{r.Name, r.ContainerID, r.Health}
		running = append(running, c)
		if r.Health == "healthy" {
			healthy = append(healthy, c)
		}
	}
	pool := healthy
	if len(pool) == 0 {
		pool = running
	}
	if len(pool) == 0 {
		return "", "", ""
	}
	c := pool[rand.IntN(len(pool))]
	return c.name, c.id, c.health
}

// testChaosScaleFlap: catalog is scaled 1 → 5 → 1 three times in a row,
// each step as soon as the previous `scale` returned plus a second, with
// no failed request.
func testChaosScaleFlap(t *testing.T, cli *client.Client, p *project) {
	url := p.url("SHOP_PORT") + chaosPath
	retriesBefore := gwRetries(t, cli, p)
	load := gwStartLoad(t, url, gwClients, 60*time.Second)
	probe := chaosStartProbe(t, url, 60*time.Second)
	time.Sleep(time.Second)

	begin := time.Now()
	var steps []string
	for _, n := range append([]int{1}, chaosFlapSteps()...) {
		start := time.Now()
		if _, stderr, code := p.run(t, "scale", fmt.Sprintf("shop/catalog=%d", n)); code != 0 {
			t.Fatalf("scale shop/catalog=%d exited %d:\n%s", n, code, stderr)
		}
		steps = append(steps, fmt.Sprintf("=%d (%s)", n, time.Since(start).Round(time.Millisecond)))
		time.Sleep(time.Second)
	}
	flapped := time.Since(begin)
	settled, ok, why := gwServiceAt(t, p, "shop", "catalog", 1, nil, 45*time.Second)
	if !ok {
		t.Errorf("shop/catalog did not settle at 1 within 45s of the last step: %s", why)
	}
	time.Sleep(time.Second)
	res, pres := load.stop(), probe.stop()

	t.Logf("scale steps (each returned after): %s; all steps in %s; settled at 1 replica %s after the last step",
		strings.Join(steps, " "), flapped.Round(time.Millisecond), settled.Round(time.Millisecond))
	t.Logf("answers by replica: %s", gwHostsLine(res.byHost(time.Time{}, time.Time{})))
	t.Logf("tries retried on another replica by the shop gateway (/catalog): %.0f", gwRetries(t, cli, p)-retriesBefore)
	gwCheckNoFailures(t, "scale shop/catalog 1 → 5 → 1 three times", res)
	chaosCheckProbe(t, "scale shop/catalog 1 → 5 → 1 three times", pres)

	// Back to the spec's count for the next scenarios.
	if _, stderr, code := p.run(t, "scale", fmt.Sprintf("shop/catalog=%d", chaosCatalogReplicas)); code != 0 {
		t.Fatalf("scale shop/catalog=%d exited %d:\n%s", chaosCatalogReplicas, code, stderr)
	}
}

// chaosFlapSteps is 5, 1 repeated chaosFlaps times.
func chaosFlapSteps() []int {
	var out []int
	for range chaosFlaps {
		out = append(out, 5, 1)
	}
	return out
}

// testChaosRestart: `restart shop/catalog` under load fails no request;
// reports how long until every replica is new and healthy.
func testChaosRestart(t *testing.T, cli *client.Client, p *project) {
	url := p.url("SHOP_PORT") + chaosPath
	old := map[string]bool{}
	for _, c := range gwRunning(gwReplicas(t, cli, p, "shop", "catalog")) {
		old[c.ID] = true
	}
	load := gwStartLoad(t, url, gwClients, 60*time.Second)
	probe := chaosStartProbe(t, url, 60*time.Second)
	time.Sleep(time.Second)

	start := time.Now()
	if _, stderr, code := p.run(t, "restart", "shop/catalog"); code != 0 {
		t.Fatalf("restart shop/catalog exited %d:\n%s", code, stderr)
	}
	returned := time.Since(start)
	_, ok, why := gwServiceAt(t, p, "shop", "catalog", len(old), old, 60*time.Second)
	renewed := time.Since(start)
	if !ok {
		t.Errorf("shop/catalog was not restarted within 60s: %s", why)
	}
	time.Sleep(time.Second)
	res, pres := load.stop(), probe.stop()

	t.Logf("restart shop/catalog (%d replicas) returned after %s; every replica new and healthy %s after the command started",
		len(old), returned.Round(time.Millisecond), renewed.Round(time.Millisecond))
	t.Logf("answers by replica during and after the restart: %s", gwHostsLine(res.byHost(start, time.Time{})))
	gwCheckNoFailures(t, "restart shop/catalog", res)
	chaosCheckProbe(t, "restart shop/catalog", pres)
}

// testChaosPauseReplica: a paused catalog replica hangs rather than
// crashes. Requests it holds time out at the route's per-try timeout and
// are retried on another replica; its health checks time out, so it leaves
// rotation and is replaced, and the controller removes it. No request
// fails; the slowest take about one per-try timeout (the sub-test
// held-requests-retried checks that they are retried, not answered late).
func testChaosPauseReplica(t *testing.T, cli *client.Client, p *project) {
	ctx := context.Background()
	url := p.url("SHOP_PORT") + chaosPath
	reps := gwRunning(gwReplicas(t, cli, p, "shop", "catalog"))
	if len(reps) < 2 {
		t.Fatalf("want at least 2 running catalog replicas, have %d", len(reps))
	}
	victim := reps[len(reps)/2]
	host := containerName(victim)
	retriesBefore := gwRetries(t, cli, p)
	load := gwStartLoad(t, url, gwClients, 60*time.Second)
	probe := chaosStartProbe(t, url, 60*time.Second)
	time.Sleep(time.Second)

	// Whatever happens below, leave no paused container behind: `down`
	// could not stop it.
	t.Cleanup(func() { chaosUnpause(t, cli, victim.ID, host) })
	paused := time.Now()
	if err := cli.ContainerPause(ctx, victim.ID); err != nil {
		t.Fatalf("pause %s: %v", host, err)
	}

	var left time.Duration
	leftAs := ""
	var removed time.Duration
	replaced, ok, why := eventually(45*time.Second, 100*time.Millisecond, func() (bool, string) {
		s := gwService(t, p, "shop", "catalog")
		listed := false
		for _, r := range s.Replicas {
			if r.ContainerID != victim.ID {
				continue
			}
			listed = true
			if left == 0 && r.Health != "healthy" {
				left, leftAs = time.Since(paused), r.Health
			}
		}
		if !listed && left == 0 {
			left, leftAs = time.Since(paused), "gone"
		}
		if removed == 0 {
			if _, err := cli.ContainerInspect(ctx, victim.ID); cerrdefs.IsNotFound(err) {
				removed = time.Since(paused)
			}
		}
		switch {
		case listed:
			return false, "the paused replica is still listed"
		case removed == 0:
			return false, "the paused replica's container still exists"
		case s.Ready != len(reps) || len(s.Replicas) != len(reps):
			return false, fmt.Sprintf("%d ready, %d replicas, want %d", s.Ready, len(s.Replicas), len(reps))
		}
		return true, ""
	})
	if !ok {
		t.Errorf("%s was not replaced and removed within 45s of its pause: %s", host, why)
	}
	time.Sleep(time.Second)
	res, pres := load.stop(), probe.stop()

	var lastAnswer time.Time
	for _, s := range res.Samples {
		if s.host == host && s.at.After(paused) {
			lastAnswer = s.at
		}
	}
	t.Logf("paused %s (%.12s) at +%s of the load", host, victim.ID, paused.Sub(load.start).Round(time.Millisecond))
	t.Logf("ps showed it %s after %s; its container was removed after %s; catalog back at %d ready replicas after %s",
		leftAs, left.Round(time.Millisecond), removed.Round(time.Millisecond), len(reps), replaced.Round(time.Millisecond))
	if !lastAnswer.IsZero() {
		late := lastAnswer.Sub(paused)
		note := "a request it was answering as it was paused"
		if late >= chaosHeld {
			note = "a request it held while paused, answered once stopping it unpaused it"
		}
		t.Logf("its last answer through the gateway arrived %s after the pause: %s", late.Round(time.Millisecond), note)
	}
	t.Logf("answers by replica after the pause: %s", gwHostsLine(res.byHost(paused, time.Time{})))
	for _, e := range gwEvents(t, p, "shop", "catalog", paused) {
		t.Logf("  event %s", e)
	}
	retries := gwRetries(t, cli, p) - retriesBefore
	t.Logf("tries retried on another replica by the shop gateway (/catalog): %.0f", retries)
	gwCheckNoFailures(t, "the pause of a catalog replica", res)
	chaosCheckProbe(t, "the pause of a catalog replica", pres)
	if len(pres.Held) == 0 {
		t.Logf("no probe request met the paused replica (none took %s or more)", chaosHeld)
	} else {
		t.Logf("probe requests held by the paused replica (%s or more): %d, taking %s; %d took the per-try timeout (%s) or more",
			chaosHeld, len(pres.Held), chaosDurations(pres.Held), pres.Slow, chaosTryTimeout)
	}
	if pres.Max >= 2*chaosTryTimeout {
		t.Errorf("a request took %s, want less than two per-try timeouts (%s): after one timeout on the paused replica it should be retried on another",
			pres.Max.Round(time.Millisecond), 2*chaosTryTimeout)
	}

	// What the route promises for a hung replica: a try it holds times out
	// after the per-try timeout and is retried on another replica. The
	// replica must not be stopped (which unpauses it) while it holds
	// requests: its drain waits for them.
	t.Run("held-requests-retried", func(t *testing.T) {
		if len(pres.Held) == 0 {
			t.Skip("no probe request met the paused replica")
		}
		for _, d := range pres.Held {
			if d < chaosTryTimeout {
				t.Errorf("a probe request held by the paused replica was answered after %s, before the per-try timeout (%s): "+
					"the replica was stopped (and unpaused) with requests in flight", d.Round(time.Millisecond), chaosTryTimeout)
			}
		}
		if retries == 0 {
			t.Errorf("the shop gateway retried no try on another replica, but %d probe requests were held by the paused one", len(pres.Held))
		}
	})
}

// chaosDurations renders durations as "1.2s 4.8s ...", at most ten.
func chaosDurations(ds []time.Duration) string {
	var parts []string
	for i, d := range ds {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("… (%d more)", len(ds)-i))
			break
		}
		parts = append(parts, d.Round(time.Millisecond).String())
	}
	return strings.Join(parts, " ")
}

// chaosUnpause unpauses a container that is still paused, so that `down`
// can stop it.
func chaosUnpause(t *testing.T, cli *client.Client, id, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ins, err := cli.ContainerInspect(ctx, id)
	if err != nil || ins.State == nil || !ins.State.Paused {
		return
	}
	t.Logf("cleanup: %s is still paused; unpausing it", name)
	if err := cli.ContainerUnpause(ctx, id); err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("cleanup: unpause %s: %v", name, err)
	}
}

// testChaosGatewayRestart: the shop gateway container is restarted through
// the engine (SIGTERM, SIGKILL after a second, start). Requests fail while
// it is down; the gap is reported, and it adopts every replica.
func testChaosGatewayRestart(t *testing.T, cli *client.Client, p *project) {
	chaosGatewayDown(t, cli, p, "restart", func(ctx context.Context, id string) error {
		grace := chaosGatewayStopGrace
		return cli.ContainerRestart(ctx, id, container.StopOptions{Timeout: &grace})
	})
}

// testChaosGatewayKill: the shop gateway container is SIGKILLed; the
// project's keeper (or another gateway) starts it again, and it adopts
// every replica.
func testChaosGatewayKill(t *testing.T, cli *client.Client, p *project) {
	chaosGatewayDown(t, cli, p, "SIGKILL", func(ctx context.Context, id string) error {
		return cli.ContainerKill(ctx, id, "SIGKILL")
	})
}

// chaosGatewayDown takes the shop gateway down with hit under load, waits
// until it serves again, and reports the failures and the gap. The gateway
// must come back as the same container, and no replica of the project may
// be recreated.
func chaosGatewayDown(t *testing.T, cli *client.Client, p *project, what string, hit func(context.Context, string) error) {
	ctx := context.Background()
	url := p.url("SHOP_PORT") + chaosPath
	gw := gwGateway(t, cli, p, "shop")
	gwName := strings.TrimPrefix(gw.Name, "/")
	replicasBefore := ids(t, cli, p.name, labelRole+"=replica")
	load := gwStartLoad(t, url, gwClients, 60*time.Second)
	probe := chaosStartProbe(t, url, 60*time.Second)
	time.Sleep(time.Second)

	at := time.Now()
	if err := hit(ctx, gw.ID); err != nil {
		t.Fatalf("%s %s: %v", what, gwName, err)
	}
	returned := time.Since(at)
	var runningAfter time.Duration
	_, ok, why := eventually(30*time.Second, 50*time.Millisecond, func() (bool, string) {
		ins, err := cli.ContainerInspect(ctx, gw.ID)
		if err != nil {
			return false, fmt.Sprintf("inspect %s: %v", gwName, err)
		}
		started, _ := time.Parse(time.RFC3339Nano, ins.State.StartedAt)
		if !ins.State.Running || !started.After(at) {
			return false, fmt.Sprintf("%s is %s, last started %s", gwName, ins.State.Status, ins.State.StartedAt)
		}
		if runningAfter == 0 {
			runningAfter = started.Sub(at)
		}
		status, _, _, err := gwSend(http.MethodGet, url, nil, nil)
		return err == nil && status == http.StatusOK, fmt.Sprintf("GET %s: %d, %v", chaosPath, status, err)
	})
	serving := time.Since(at)
	if !ok {
		t.Errorf("the shop gateway does not serve 30s after the %s: %s", what, why)
	}
	time.Sleep(2 * time.Second) // serve a while after the gateway came back
	res, pres := load.stop(), probe.stop()
	gapFrom, gap := chaosLongestGap(res.Samples, load.start, res.Duration)

	t.Logf("%s of %s: the call returned after %s; running again after %s; a fresh GET answered 200 %s after the %s",
		what, gwName, returned.Round(time.Millisecond), runningAfter.Round(time.Millisecond), serving.Round(time.Millisecond), what)
	t.Logf("load during the gateway %s: %s", what, res)
	if f := res.failures(); f != "" {
		t.Logf("  failures (first of each class):\n  %s", f)
	}
	t.Logf("load: longest time without a successful answer %s, from +%s of the load (the %s was at +%s)",
		gap.Round(time.Millisecond), gapFrom.Round(time.Millisecond), what, at.Sub(load.start).Round(time.Millisecond))
	t.Logf("probe: %s", pres)
	if pres.Failed() > 0 {
		t.Logf("  probe failures (first of each class):\n  %s", strings.Join(pres.Examples, "\n  "))
		if pres.Recovered.IsZero() {
			t.Errorf("probe: no success after the first failure (at +%s)", pres.FirstFail.Sub(at).Round(time.Millisecond))
		} else {
			t.Logf("probe: gap from the first failed request (+%s after the %s) to the first success again: %s; last failure +%s after the %s",
				pres.FirstFail.Sub(at).Round(time.Millisecond), what, pres.Recovered.Sub(pres.FirstFail).Round(time.Millisecond),
				pres.LastFail.Sub(at).Round(time.Millisecond), what)
		}
	}
	if res.OK == 0 {
		t.Errorf("no request succeeded during the gateway %s: the load proves nothing", what)
	}

	// While it is down, requests fail to connect; once it listens, a
	// gateway that has not adopted its replicas yet should hold requests
	// until one is ready, as it does while replicas start, not answer 5xx.
	t.Run("no-5xx-while-adopting", func(t *testing.T) {
		if n := res.Status5xx + pres.ByClass["5xx"]; n > 0 {
			t.Errorf("%d requests got a 5xx from the shop gateway after its %s (load %d, probe %d), want 0:\n  %s",
				n, what, res.Status5xx, pres.ByClass["5xx"], strings.Join(pres.Examples, "\n  "))
		}
	})

	// The gateway restarted in place and adopted its replicas.
	gwSettled(t, p, time.Minute)
	if now := ids(t, cli, p.name, labelRole+"=gateway", labelCell+"=shop"); now[gwName] != gw.ID {
		t.Errorf("the shop gateway was recreated (%v), want %s (%.12s) started again", now, gwName, gw.ID)
	}
	if same, diff := sameIDs(replicasBefore, ids(t, cli, p.name, labelRole+"=replica")); !same {
		t.Errorf("replicas were recreated across the gateway %s, want every one adopted: %s", what, diff)
	} else {
		t.Logf("all %d replicas of the project are the same containers as before the %s", len(replicasBefore), what)
	}
}

// chaosLongestGap returns the longest time without a successful answer in
// a load, from its start to its end, and when it began (relative to the
// load's start).
func chaosLongestGap(samples []gwSample, start time.Time, d time.Duration) (from, gap time.Duration) {
	times := make([]time.Time, 0, len(samples)+2)
	times = append(times, start)
	for _, s := range samples {
		times = append(times, s.at)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	times = append(times, start.Add(d))
	for i := 1; i < len(times); i++ {
		if g := times[i].Sub(times[i-1]); g > gap {
			from, gap = times[i-1].Sub(start), g
		}
	}
	return from, gap
}

// chaosTry is one request of the probe.
type chaosTry struct {
	sent, done time.Time
	// class is "" for an answer with the echo service's JSON, else the
	// failure class, as the load generator names them.
	class  string
	detail string
}

// chaosProbe is a small client beside the main load. It records every
// request it sends, with its latency, which the load generator does not
// keep: the slowest answers, and when failures began and ended. It opens
// a new connection per request, as a client that was just started would.
type chaosProbe struct {
	url    string
	start  time.Time
	ctx    context.Context
	cancel context.CancelFunc
	hc     *http.Client
	wg     sync.WaitGroup
	once   sync.Once

	mu    sync.Mutex
	sent  int
	tries []chaosTry
}

// chaosStartProbe starts chaosProbeClients clients sending GETs to url for
// at most d (and never more than chaosProbeMaxDuration or
// chaosProbeMaxRequests). The test's cleanup stops it if the test does not.
func chaosStartProbe(t *testing.T, url string, d time.Duration) *chaosProbe {
	t.Helper()
	d = min(d, chaosProbeMaxDuration)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	pr := &chaosProbe{
		url: url, start: time.Now(), ctx: ctx, cancel: cancel,
		hc: &http.Client{Timeout: chaosProbeTimeout, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	for range chaosProbeClients {
		pr.wg.Add(1)
		go func() {
			defer pr.wg.Done()
			pr.client()
		}()
	}
	t.Cleanup(func() { pr.stop() })
	return pr
}

func (pr *chaosProbe) client() {
	for pr.ctx.Err() == nil {
		pr.mu.Lock()
		if pr.sent >= chaosProbeMaxRequests {
			pr.mu.Unlock()
			return
		}
		pr.sent++
		pr.mu.Unlock()

		sent := time.Now()
		class, detail := pr.get()
		done := time.Now()
		if pr.ctx.Err() != nil && class != "" {
			return // cut off by the end of the probe: not an outcome
		}
		pr.mu.Lock()
		pr.tries = append(pr.tries, chaosTry{sent: sent, done: done, class: class, detail: detail})
		pr.mu.Unlock()

		select {
		case <-pr.ctx.Done():
			return
		case <-time.After(chaosProbePace):
		}
	}
}

// get sends one GET and classifies it like the load generator does.
func (pr *chaosProbe) get() (class, detail string) {
	req, err := http.NewRequestWithContext(pr.ctx, http.MethodGet, pr.url, nil)
	if err != nil {
		return "other", err.Error()
	}
	resp, err := pr.hc.Do(req)
	if err != nil {
		return "connection error", err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case err != nil:
		return "connection error", fmt.Sprintf("status %d, read body: %v", resp.StatusCode, err)
	case resp.StatusCode >= 500:
		return "5xx", fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	case resp.StatusCode/100 != 2:
		return "other", fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var r struct {
		Hostname string `json:"hostname"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Hostname == "" {
		return "other", fmt.Sprintf("status %d, not the service's JSON: %q", resp.StatusCode, body)
	}
	return "", ""
}

// stop ends the probe and returns what it saw.
func (pr *chaosProbe) stop() chaosProbeResult {
	pr.once.Do(func() {
		pr.cancel()
		pr.wg.Wait()
	})
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return chaosSummarize(pr.tries, pr.start)
}

// chaosProbeResult sums up a probe.
type chaosProbeResult struct {
	Requests, OK int
	ByClass      map[string]int
	// Latencies of every request that completed, answered or failed.
	P50, P99, Max time.Duration
	// Slow counts the requests that took at least one per-try timeout.
	Slow int
	// Held lists, in order, the latencies of at least chaosHeld.
	Held []time.Duration
	// FirstFail is when the first failed request ended, LastFail when the
	// last one did, and Recovered when the first success sent after
	// FirstFail arrived; zero when there was none.
	FirstFail, LastFail, Recovered time.Time
	// Examples are the first failures of each class.
	Examples []string
}

// Failed is the number of failed requests.
func (r chaosProbeResult) Failed() int { return r.Requests - r.OK }

func (r chaosProbeResult) String() string {
	var classes []string
	for _, c := range []string{"connection error", "5xx", "other"} {
		classes = append(classes, fmt.Sprintf("%s %d", c, r.ByClass[c]))
	}
	return fmt.Sprintf("%d clients: %d requests, %d ok, %d failed (%s); latency p50 %s, p99 %s, max %s; %d took %s or more",
		chaosProbeClients, r.Requests, r.OK, r.Failed(), strings.Join(classes, ", "),
		r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond), r.Slow, chaosTryTimeout)
}

func chaosSummarize(tries []chaosTry, start time.Time) chaosProbeResult {
	r := chaosProbeResult{Requests: len(tries), ByClass: map[string]int{}}
	lat := make([]time.Duration, 0, len(tries))
	for _, tr := range tries {
		d := tr.done.Sub(tr.sent)
		lat = append(lat, d)
		if d >= chaosTryTimeout {
			r.Slow++
		}
		if d >= chaosHeld {
			r.Held = append(r.Held, d)
		}
		if tr.class == "" {
			r.OK++
			continue
		}
		r.ByClass[tr.class]++
		if r.FirstFail.IsZero() || tr.done.Before(r.FirstFail) {
			r.FirstFail = tr.done
		}
		if tr.done.After(r.LastFail) {
			r.LastFail = tr.done
		}
		if r.ByClass[tr.class] <= gwMaxExamples {
			r.Examples = append(r.Examples, fmt.Sprintf("%s at +%s after %s: %s",
				tr.class, tr.sent.Sub(start).Round(time.Millisecond), d.Round(time.Millisecond), tr.detail))
		}
	}
	if !r.FirstFail.IsZero() {
		for _, tr := range tries {
			if tr.class == "" && !tr.sent.Before(r.FirstFail) && (r.Recovered.IsZero() || tr.done.Before(r.Recovered)) {
				r.Recovered = tr.done
			}
		}
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		r.P50 = lat[len(lat)/2]
		r.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
		r.Max = lat[len(lat)-1]
	}
	sort.Slice(r.Held, func(i, j int) bool { return r.Held[i] < r.Held[j] })
	return r
}

// chaosCheckProbe reports the probe and fails the test when any of its
// requests failed.
func chaosCheckProbe(t *testing.T, what string, r chaosProbeResult) {
	t.Helper()
	t.Logf("probe during %s: %s", what, r)
	if r.Failed() > 0 {
		t.Errorf("%d probe requests failed during %s, want 0:\n  %s", r.Failed(), what, strings.Join(r.Examples, "\n  "))
	}
	if r.OK == 0 {
		t.Errorf("no probe request succeeded during %s: the probe proves nothing", what)
	}
}
