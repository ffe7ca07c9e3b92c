//go:build unix

package main

// End-to-end tests of DESIGN §5 ("what done means") against the real Docker
// engine: the demo project started, load-balanced, converged, scaled,
// logged, healed and removed by the orchestro binary, and checked through
// the Docker SDK. Run them with
//
//	go test -race -v -run E2E -count=1 ./cmd/orchestro/
//
// They are skipped with -short, and when no engine answers (a failure
// instead when CI is set).

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// demoPorts are the variables the demo cells read their gateway ports from.
var demoPorts = []string{"SHOP_PORT", "USERS_PORT", "EDGE_PORT", "CHECKOUT_PORT"}

func demoDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestE2EDemo runs one demo project through its life: up (cold and warm),
// load balancing, a no-op up, a changed service rolling, scale, logs, a
// killed gateway, and down. The subtests share the project and run in
// order; each one leaves it settled for the next.
func TestE2EDemo(t *testing.T) {
	cli := requireDocker(t)
	p := newProject(t, "demo", demoDir(t), demoPorts...)
	t.Logf("project %s, ports %v", p.name, p.ports)

	if !t.Run("up", func(t *testing.T) { testUp(t, p) }) {
		t.Fatal("the project did not start; the other scenarios need it")
	}
	t.Run("up-again-recreates-nothing", func(t *testing.T) { testUpUnchanged(t, p) })
	t.Run("changed-env-rolls-one-service", func(t *testing.T) { testRollingEnv(t, p) })
	t.Run("scale", func(t *testing.T) { testScale(t, p) })
	t.Run("logs", func(t *testing.T) { testLogs(t, p) })
	t.Run("exec", func(t *testing.T) { testExec(t, p) })
	t.Run("gateway-killed", func(t *testing.T) { testGatewayKilled(t, p) })
	t.Run("up-after-interrupted-down", func(t *testing.T) { testUpAfterInterruptedDown(t, p) })
	t.Run("up-killed-mid-create", func(t *testing.T) { testUpKilledMidCreate(t, p) })
	t.Run("uses-added-later", func(t *testing.T) { testUsesAddedLater(t, p) })
	t.Run("down", func(t *testing.T) {
		start := time.Now()
		_, stderr, code := p.run(t, "down", "-v")
		t.Logf("down -v took %s", time.Since(start).Round(time.Millisecond))
		if code != 0 {
			t.Fatalf("down -v exited %d, want 0:\n%s", code, stderr)
		}
		assertNothingLeft(t, cli, p.name)
		if _, stderr, code := p.run(t, "down", "-v"); code != 0 {
			t.Errorf("a second down -v exited %d, want 0 (down is idempotent):\n%s", code, stderr)
		}
	})
}

// testUp: `up -d --wait` returns 0, cold and warm; every gateway answers;
// 3×N requests reach each of the 3 catalog replicas exactly N times.
func testUp(t *testing.T, p *project) {
	cli := requireDocker(t)
	start := time.Now()
	_, stderr, code := p.run(t, "up", "-d", "--wait")
	cold := time.Since(start)
	if code != 0 {
		t.Fatalf("cold up -d --wait exited %d, want 0:\n%s", code, stderr)
	}
	t.Logf("cold up -d --wait: %s", cold.Round(time.Millisecond))

	before := ids(t, cli, p.name)
	start = time.Now()
	_, stderr, code = p.run(t, "up", "-d", "--wait")
	warm := time.Since(start)
	if code != 0 {
		t.Fatalf("warm up -d --wait exited %d, want 0:\n%s", code, stderr)
	}
	t.Logf("warm up -d --wait: %s", warm.Round(time.Millisecond))
	if same, diff := sameIDs(before, ids(t, cli, p.name)); !same {
		t.Errorf("the warm up changed containers: %s", diff)
	}

	for _, gw := range []struct{ port, path string }{
		{"SHOP_PORT", "/catalog/"}, {"SHOP_PORT", "/orders/"},
		{"USERS_PORT", "/accounts/"}, {"EDGE_PORT", "/"},
	} {
		url := p.url(gw.port) + gw.path
		r, status, err := get(url)
		if err != nil || status != 200 {
			t.Errorf("GET %s = %d, %v; want 200", url, status, err)
			continue
		}
		if r.Hostname == "" {
			t.Errorf("GET %s answered without a hostname", url)
		}
	}
	// One request at the edge walks through all three cells.
	if r, _, err := get(p.url("EDGE_PORT") + "/"); err == nil {
		if r.Upstream == nil || r.Upstream.Upstream == nil || r.Upstream.Upstream.Service != "accounts" {
			t.Errorf("edge → shop → users chain incomplete: %+v", r)
		}
	}

	const n = 10
	replicas := ids(t, cli, p.name, labelCell+"=shop", labelService+"=catalog")
	if len(replicas) != 3 {
		t.Fatalf("shop/catalog has %d containers, want 3: %v", len(replicas), replicas)
	}
	counts := map[string]int{}
	for range 3 * n {
		r, status, err := get(p.url("SHOP_PORT") + "/catalog/")
		if err != nil || status != 200 {
			t.Fatalf("GET /catalog/ = %d, %v", status, err)
		}
		counts[r.Hostname]++
	}
	t.Logf("%d requests through the shop gateway: %v", 3*n, counts)
	for name := range replicas {
		if counts[name] != n {
			t.Errorf("replica %s served %d requests, want exactly %d (round robin)", name, counts[name], n)
		}
	}
	if len(counts) != len(replicas) {
		t.Errorf("requests were served by %v, want only the replicas %v", counts, slices.Sorted(maps.Keys(replicas)))
	}
}

// testUpUnchanged: `up -d` again recreates nothing.
func testUpUnchanged(t *testing.T, p *project) {
	cli := requireDocker(t)
	before := ids(t, cli, p.name)
	start := time.Now()
	_, stderr, code := p.run(t, "up", "-d")
	if code != 0 {
		t.Fatalf("up -d exited %d:\n%s", code, stderr)
	}
	t.Logf("up -d with nothing changed: %s", time.Since(start).Round(time.Millisecond))
	// Give a gateway that would wrongly roll something the time to start.
	time.Sleep(2 * time.Second)
	after := ids(t, cli, p.name)
	if same, diff := sameIDs(before, after); !same {
		t.Errorf("up -d with an unchanged spec changed containers: %s", diff)
	}
	// The IDs compared are every replica and gateway there should be.
	st := p.ps(t)
	var gws, reps, desired int
	for _, c := range listContainers(t, cli, p.name) {
		switch c.Labels[labelRole] {
		case "gateway":
			gws++
		case "replica":
			reps++
		}
	}
	for _, c := range st.Cells {
		for _, s := range c.Services {
			desired += s.Desired
		}
	}
	if gws != len(st.Cells) || gws != 4 || reps != desired {
		t.Errorf("project has %d gateways and %d replicas, want 4 gateways and %d replicas", gws, reps, desired)
	}
}

// writeChangedDemo writes a copy of the demo spec whose build paths point
// at the repository's services and whose shop/catalog has one more
// environment variable, and returns its directory.
func writeChangedDemo(t *testing.T, revision string) string {
	t.Helper()
	src := demoDir(t)
	dst := t.TempDir()
	services := filepath.Join(src, "services") + "/"
	if err := os.MkdirAll(filepath.Join(dst, "cells"), 0o755); err != nil {
		t.Fatal(err)
	}
	project, err := os.ReadFile(filepath.Join(src, "orchestro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "orchestro.yaml"), project, 0o644); err != nil {
		t.Fatal(err)
	}
	cells, err := filepath.Glob(filepath.Join(src, "cells", "*.yaml"))
	if err != nil || len(cells) == 0 {
		t.Fatalf("demo cells: %v (%d files)", err, len(cells))
	}
	for _, f := range cells {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(data), "../services/", services)
		if filepath.Base(f) == "shop.yaml" {
			const anchor = "      SERVICE_NAME: catalog\n"
			if strings.Count(s, anchor) != 1 {
				t.Fatalf("shop.yaml no longer has exactly one %q line to anchor the change on", strings.TrimSpace(anchor))
			}
			s = strings.Replace(s, anchor, anchor+"      E2E_REVISION: \""+revision+"\"\n", 1)
		}
		if err := os.WriteFile(filepath.Join(dst, "cells", filepath.Base(f)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// testRollingEnv: a changed env rolls only that service's replicas, and
// the rolling update loses no request.
func testRollingEnv(t *testing.T, p *project) {
	cli := requireDocker(t)
	changed := writeChangedDemo(t, "2")
	catalog := ids(t, cli, p.name, labelCell+"=shop", labelService+"=catalog")
	all := ids(t, cli, p.name)
	others := map[string]string{}
	for name, id := range all {
		if _, ok := catalog[name]; !ok {
			others[name] = id
		}
	}

	// Traffic through the roll: one request after another.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, status, err := get(p.url("SHOP_PORT") + "/catalog/")
			if err == nil && status == 200 {
				ok.Add(1)
				continue
			}
			failed.Add(1)
			firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d, %v", status, err))
		}
	}()

	start := time.Now()
	_, stderr, code := run(t, p.env, "-f", changed, "-p", p.name, "up", "-d", "--wait")
	rolled := time.Since(start)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("up -d --wait with a changed env exited %d:\n%s", code, stderr)
	}
	t.Logf("rolling update of shop/catalog (3 replicas): %s; %d requests served, %d failed during it",
		rolled.Round(time.Millisecond), ok.Load(), failed.Load())
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed during the rolling update; first: %v", n, firstErr.Load())
	}

	after := ids(t, cli, p.name)
	newCatalog := ids(t, cli, p.name, labelCell+"=shop", labelService+"=catalog")
	if len(newCatalog) != 3 {
		t.Errorf("shop/catalog has %d containers after the roll, want 3: %v", len(newCatalog), newCatalog)
	}
	oldIDs := map[string]bool{}
	for _, id := range catalog {
		oldIDs[id] = true
	}
	for name, id := range newCatalog {
		if oldIDs[id] {
			t.Errorf("catalog replica %s (%.12s) was not recreated", name, id)
		}
		ins, err := cli.ContainerInspect(context.Background(), id)
		if err != nil {
			t.Errorf("inspect %s: %v", name, err)
			continue
		}
		if !slices.Contains(ins.Config.Env, "E2E_REVISION=2") {
			t.Errorf("recreated replica %s lacks the new variable E2E_REVISION=2: %v", name, ins.Config.Env)
		}
	}
	afterOthers := map[string]string{}
	for name, id := range after {
		if _, ok := newCatalog[name]; !ok {
			afterOthers[name] = id
		}
	}
	if same, diff := sameIDs(others, afterOthers); !same {
		t.Errorf("containers other than shop/catalog changed: %s", diff)
	}
}

// testScale: scale up to 5 and back to 1; the survivor is replica 1.
func testScale(t *testing.T, p *project) {
	cli := requireDocker(t)
	if _, stderr, code := p.run(t, "scale", "shop/orders=5"); code != 0 {
		t.Fatalf("scale shop/orders=5 exited %d:\n%s", code, stderr)
	}
	took, ok, why := eventually(30*time.Second, 250*time.Millisecond, func() (bool, string) {
		s, found := p.ps(t).service("shop", "orders")
		if !found {
			return false, "ps --json has no shop/orders"
		}
		return s.Desired == 5 && s.Ready == 5, fmt.Sprintf("desired %d, ready %d", s.Desired, s.Ready)
	})
	if !ok {
		t.Fatalf("shop/orders not 5/5 ready within 30s: %s", why)
	}
	t.Logf("scale shop/orders 1 → 5: ready 5 after %s", took.Round(time.Millisecond))

	if _, stderr, code := p.run(t, "scale", "shop/orders=1"); code != 0 {
		t.Fatalf("scale shop/orders=1 exited %d:\n%s", code, stderr)
	}
	var last psService
	took, ok, why = eventually(30*time.Second, 250*time.Millisecond, func() (bool, string) {
		s, _ := p.ps(t).service("shop", "orders")
		last = s
		return s.Desired == 1 && s.Ready == 1 && len(s.Replicas) == 1,
			fmt.Sprintf("desired %d, ready %d, %d replicas", s.Desired, s.Ready, len(s.Replicas))
	})
	if !ok {
		t.Fatalf("shop/orders not down to 1 within 30s: %s", why)
	}
	t.Logf("scale shop/orders 5 → 1: one replica left after %s", took.Round(time.Millisecond))
	if r := last.Replicas[0]; r.Replica != 1 {
		t.Errorf("the surviving replica is %s (number %d), want number 1: the highest numbers go first", r.Name, r.Replica)
	}
	left := listContainers(t, cli, p.name, labelCell+"=shop", labelService+"=orders")
	if len(left) != 1 || left[0].Labels[labelReplica] != "1" {
		var names []string
		for _, c := range left {
			names = append(names, containerName(c))
		}
		t.Errorf("the engine holds orders containers %v, want only replica 1", names)
	}
}

// logLine matches one line of `logs` output: the padded prefix, the bar,
// the text.
var logLine = regexp.MustCompile(`^(\S+)\s*│ (.*)$`)

// parseLogs maps each prefix in logs output to its lines, and returns the
// lines that do not match the format.
func parseLogs(out string) (map[string][]string, []string) {
	byPrefix := map[string][]string{}
	var bad []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		m := logLine.FindStringSubmatch(l)
		if m == nil {
			bad = append(bad, l)
			continue
		}
		byPrefix[m[1]] = append(byPrefix[m[1]], m[2])
	}
	return byPrefix, bad
}

// markRequests sends, through the gateways, requests whose path carries
// marker to every replica of the demo, twice round each service, and
// returns the number of failed requests.
func markRequests(p *project, marker string, replicas map[string]int) int {
	failed := 0
	send := func(url string, want, times int) {
		for range times {
			if _, status, err := get(url); err != nil || status != want {
				failed++
			}
		}
	}
	send(p.url("SHOP_PORT")+"/catalog/"+marker, 200, 2*replicas["catalog"])
	send(p.url("SHOP_PORT")+"/orders/"+marker, 200, 2*replicas["orders"])
	send(p.url("USERS_PORT")+"/accounts/"+marker, 200, 2*replicas["accounts"])
	send(p.url("EDGE_PORT")+"/"+marker, 200, 2*replicas["web"])
	// The store services log the path of every request; one they do not
	// serve is answered 404.
	for _, svc := range []string{"inventory", "payments", "notify"} {
		send(p.url("CHECKOUT_PORT")+"/"+svc+"/"+marker, 404, 2*replicas[svc])
	}
	return failed
}

// replicaPrefixes returns the log prefix of every replica of the project and
// the number of replicas per service.
func replicaPrefixes(t *testing.T, p *project) ([]string, map[string]int) {
	t.Helper()
	cli := requireDocker(t)
	var prefixes []string
	perService := map[string]int{}
	for _, c := range listContainers(t, cli, p.name, labelRole+"=replica") {
		prefixes = append(prefixes, logPrefix(c))
		perService[c.Labels[labelService]]++
	}
	sort.Strings(prefixes)
	return prefixes, perService
}

// testLogs: every replica's lines under its prefix; --tail 1; --since in the
// future; logs -f.
func testLogs(t *testing.T, p *project) {
	prefixes, perService := replicaPrefixes(t, p)
	marker := "e2e-logs-" + uniqueName("m")
	if n := markRequests(p, marker, perService); n > 0 {
		t.Errorf("%d marked requests failed", n)
	}

	t.Run("all", func(t *testing.T) {
		stdout, stderr, code := p.run(t, "logs")
		if code != 0 {
			t.Fatalf("logs exited %d:\n%s", code, stderr)
		}
		byPrefix, bad := parseLogs(stdout)
		if len(bad) > 0 {
			t.Errorf("lines without a `cell/service-n │` prefix:\n%s", strings.Join(bad, "\n"))
		}
		for _, px := range prefixes {
			if !anyContains(byPrefix[px], marker) {
				t.Errorf("no line of %s holds the marked request (%d lines)", px, len(byPrefix[px]))
			}
		}
		for px := range byPrefix {
			if !slices.Contains(prefixes, px) {
				t.Errorf("lines under %s, which is not a replica of the project", px)
			}
		}
		t.Logf("logs: %d lines from %d replicas", strings.Count(stdout, "\n"), len(byPrefix))
	})

	t.Run("tail-1", func(t *testing.T) {
		stdout, stderr, code := p.run(t, "logs", "--tail", "1")
		if code != 0 {
			t.Fatalf("logs --tail 1 exited %d:\n%s", code, stderr)
		}
		byPrefix, bad := parseLogs(stdout)
		if len(bad) > 0 {
			t.Errorf("lines without a prefix:\n%s", strings.Join(bad, "\n"))
		}
		for _, px := range prefixes {
			if len(byPrefix[px]) != 1 {
				t.Errorf("logs --tail 1 printed %d lines of %s, want 1", len(byPrefix[px]), px)
			}
		}
		if lines := strings.Count(stdout, "\n"); lines != len(prefixes) {
			t.Errorf("logs --tail 1 printed %d lines, want one per replica (%d):\n%s", lines, len(prefixes), stdout)
		}
	})

	t.Run("since-future", func(t *testing.T) {
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		stdout, stderr, code := p.run(t, "logs", "--since", future)
		if code != 0 {
			t.Fatalf("logs --since %s exited %d:\n%s", future, code, stderr)
		}
		if stdout != "" {
			t.Errorf("logs --since %s printed lines, want none:\n%s", future, stdout)
		}
	})

	t.Run("follow", func(t *testing.T) {
		pr := startProc(t, p.env, p.args("logs", "-f")...)
		// Wait for the backlog, so the stream is open before the new
		// requests.
		_, ok, _ := eventually(10*time.Second, 100*time.Millisecond, func() (bool, string) {
			return strings.Contains(pr.out.String(), marker), ""
		})
		if !ok {
			t.Errorf("logs -f printed nothing of the backlog within 10s:\n%s", pr.errb.String())
		}
		live := "e2e-follow-" + uniqueName("m")
		if n := markRequests(p, live, perService); n > 0 {
			t.Errorf("%d marked requests failed", n)
		}
		var missing []string
		_, ok, _ = eventually(10*time.Second, 200*time.Millisecond, func() (bool, string) {
			byPrefix, _ := parseLogs(pr.out.String())
			missing = missing[:0]
			for _, px := range prefixes {
				if !anyContains(byPrefix[px], live) {
					missing = append(missing, px)
				}
			}
			return len(missing) == 0, ""
		})
		if !ok {
			t.Errorf("logs -f did not show the new requests of %v within 10s", missing)
		}
		// Ctrl-C is how a follow ends, and it is not a failure.
		pr.signal(syscall.SIGINT)
		code, ended := pr.wait(5 * time.Second)
		switch {
		case !ended:
			t.Errorf("logs -f did not end within 5s of SIGINT")
		case code != 0:
			t.Errorf("logs -f ended by SIGINT exited %d, want 0:\n%s", code, pr.errb.String())
		}
		byPrefix, bad := parseLogs(pr.out.String())
		if len(bad) > 0 {
			t.Errorf("lines without a prefix:\n%s", strings.Join(bad, "\n"))
		}
		t.Logf("logs -f: %d lines from %d replicas", strings.Count(pr.out.String(), "\n"), len(byPrefix))
	})
}

func anyContains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// testGatewayKilled: a gateway killed through the engine is started again
// by another gateway of the project, adopts its replicas and serves.
func testGatewayKilled(t *testing.T, p *project) {
	cli := requireDocker(t)
	ctx := context.Background()
	gws := ids(t, cli, p.name, labelRole+"=gateway", labelCell+"=shop")
	if len(gws) != 1 {
		t.Fatalf("want one shop gateway, have %v", gws)
	}
	var gwName, gwID string
	for name, id := range gws {
		gwName, gwID = name, id
	}
	replicasBefore := ids(t, cli, p.name, labelRole+"=replica")
	// The shop cell's history so far, which the restarted gateway keeps.
	eventsBefore, _, _ := p.run(t, "events", "--json")
	shopBefore := 0
	for _, line := range strings.Split(eventsBefore, "\n") {
		if strings.Contains(line, `"cell":"shop"`) {
			shopBefore++
		}
	}
	if shopBefore == 0 {
		t.Fatalf("no shop event before the kill:\n%s", eventsBefore)
	}

	killed := time.Now()
	if err := cli.ContainerKill(ctx, gwID, "SIGKILL"); err != nil {
		t.Fatalf("kill the shop gateway: %v", err)
	}
	// The kill is asynchronous: make sure the gateway is seen down first.
	_, _, _ = eventually(5*time.Second, 20*time.Millisecond, func() (bool, string) {
		ins, err := cli.ContainerInspect(ctx, gwID)
		return err == nil && !ins.State.Running, ""
	})
	var runningAfter, serving time.Duration
	_, ok, why := eventually(20*time.Second, 50*time.Millisecond, func() (bool, string) {
		if runningAfter == 0 {
			if ins, err := cli.ContainerInspect(ctx, gwID); err == nil && ins.State.Running {
				runningAfter = time.Since(killed)
			}
		}
		_, status, err := get(p.url("SHOP_PORT") + "/catalog/")
		if err == nil && status == 200 {
			serving = time.Since(killed)
			return true, ""
		}
		return false, fmt.Sprintf("status %d, %v", status, err)
	})
	if !ok {
		ins, _ := cli.ContainerInspect(ctx, gwID)
		state := "unknown"
		if ins.State != nil {
			state = ins.State.Status
		}
		t.Fatalf("the shop gateway does not serve 20s after it was killed (container %s): %s", state, why)
	}
	t.Logf("shop gateway killed: running again after %s, serving after %s (kill-to-serving gap)",
		runningAfter.Round(time.Millisecond), serving.Round(time.Millisecond))
	if runningAfter > 15*time.Second {
		t.Errorf("the gateway took %s to run again, want within 15s", runningAfter)
	}
	if now := ids(t, cli, p.name, labelRole+"=gateway", labelCell+"=shop"); now[gwName] != gwID {
		t.Errorf("the shop gateway was recreated (%v), want the same container started again", now)
	}

	// Let the restarted gateway settle, then check it adopted its replicas.
	_, ok, why = eventually(30*time.Second, 250*time.Millisecond, func() (bool, string) {
		return p.ps(t).settled()
	})
	if !ok {
		t.Errorf("project not settled 30s after the gateway came back: %s", why)
	}
	time.Sleep(2 * time.Second)
	if same, diff := sameIDs(replicasBefore, ids(t, cli, p.name, labelRole+"=replica")); !same {
		t.Errorf("replicas changed after the gateway restart, want all adopted: %s", diff)
	}
	eventsAfter, _, _ := p.run(t, "events", "--json")
	shopAfter := 0
	for _, line := range strings.Split(eventsAfter, "\n") {
		if strings.Contains(line, `"cell":"shop"`) && strings.Contains(eventsBefore, line) {
			shopAfter++
		}
	}
	if shopAfter < shopBefore {
		t.Errorf("the restarted shop gateway shows %d of the %d events it had before the kill", shopAfter, shopBefore)
	}
	catalog := ids(t, cli, p.name, labelCell+"=shop", labelService+"=catalog")
	for range 2 * len(catalog) {
		r, status, err := get(p.url("SHOP_PORT") + "/catalog/")
		if err != nil || status != 200 {
			t.Errorf("GET /catalog/ after the restart = %d, %v", status, err)
			continue
		}
		if _, ok := catalog[r.Hostname]; !ok {
			t.Errorf("GET /catalog/ was served by %q, not a catalog replica", r.Hostname)
		}
	}
}

// testUpKilledMidCreate: `up -d --wait` of a fresh two-cell project with a
// named volume is SIGKILLed half-way, as soon as its first replica exists:
// one gateway is creating replicas, the CLI is busy with the next cell.
// `down -v` then leaves nothing. The project runs the images built for p,
// so it reaches the creation stage without building anything.
func testUpKilledMidCreate(t *testing.T, p *project) {
	cli := requireDocker(t)
	img := func(service string) string { return borrowImage(t, cli, p, service) }
	dir := t.TempDir()
	files := map[string]string{
		"orchestro.yaml": "project: killed\ncells: [front.yaml, back.yaml]\n",
		"front.yaml": `cell: front
gateway:
  port: ${FRONT_PORT}
uses: [back]
services:
  web:
    image: ` + img("catalog") + `
    port: 8080
    replicas: 2
    volumes: ["data:/data"]
    health: {http: /healthz, interval: 1s}
`,
		"back.yaml": `cell: back
gateway:
  port: ${BACK_PORT}
services:
  api:
    image: ` + img("accounts") + `
    port: 8080
    replicas: 2
    volumes: ["data:/data"]
    health: {http: /healthz, interval: 1s}
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k := newProject(t, "killed", dir, "FRONT_PORT", "BACK_PORT")
	pr := startProc(t, k.env, k.args("up", "-d", "--wait")...)
	took, ok, _ := eventually(60*time.Second, 20*time.Millisecond, func() (bool, string) {
		if _, ended := pr.wait(0); ended {
			return true, ""
		}
		return len(listContainers(t, cli, k.name, labelRole+"=replica")) > 0, ""
	})
	if _, ended := pr.wait(0); ended {
		t.Fatalf("up ended before a replica appeared:\n%s", pr.errb.String())
	}
	if !ok {
		t.Fatalf("no replica of %s appeared within 60s:\n%s", k.name, pr.errb.String())
	}
	pr.signal(syscall.SIGKILL)
	if _, ended := pr.wait(5 * time.Second); !ended {
		t.Fatal("up did not end after SIGKILL")
	}
	lines := strings.Split(strings.TrimSpace(pr.errb.String()), "\n")
	t.Logf("up SIGKILLed %s after it started, when the first replica appeared; its last progress line: %q",
		took.Round(time.Millisecond), lines[len(lines)-1])
	// The gateways that were started go on creating replicas without the CLI.
	time.Sleep(time.Second)
	left, err := leftovers(context.Background(), cli, k.name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s after the kill: %d objects: %s", k.name, len(left), strings.Join(left, ", "))
	if !anyContains(left, "volume ") {
		t.Errorf("no volume of %s exists after the kill; up creates volumes before gateways, so down -v is not tested", k.name)
	}

	start := time.Now()
	_, stderr, code := k.run(t, "down", "-v")
	t.Logf("down -v after the killed up: %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("down -v exited %d:\n%s", code, stderr)
	}
	assertNothingLeft(t, cli, k.name)
}

// borrowImage is the image a container of service in p runs, for a
// project of a test that needs no build of its own.
func borrowImage(t *testing.T, cli *client.Client, p *project, service string) string {
	t.Helper()
	cs := listContainers(t, cli, p.name, labelService+"="+service)
	if len(cs) == 0 {
		t.Fatalf("no %s container to borrow the image of", service)
	}
	return cs[0].Image
}

// testUpAfterInterruptedDown: a down interrupted once it has drained a
// cell, its gateway stopped but not yet removed, leaves a gateway that
// creates no replica and serves nothing. ps says so, and up starts the
// cell again with a new gateway rather than keep that one.
func testUpAfterInterruptedDown(t *testing.T, p *project) {
	cli := requireDocker(t)
	old := gwGateway(t, cli, p, "users")
	var token string
	for _, e := range old.Config.Env {
		if v, ok := strings.CutPrefix(e, "ORCHESTRO_TOKEN="); ok {
			token = v
		}
	}
	// What down asks of each gateway before it removes it.
	status, _, body, err := gwSend(http.MethodPost, gwAdminURL(t, cli, p, "users")+"/v1/stop", http.Header{"Authorization": {"Bearer " + token}}, nil)
	if err != nil || status/100 != 2 {
		t.Fatalf("POST /v1/stop to the users gateway = %d, %v: %s", status, err, body)
	}
	for _, c := range p.ps(t).Cells {
		if c.Cell == "users" && c.Gateway != "stopping" {
			t.Errorf("ps --json shows the stopped users gateway as %q, want \"stopping\"", c.Gateway)
		}
	}
	start := time.Now()
	_, stderr, code := p.run(t, "up", "-d", "--wait", "--wait-timeout", "30s")
	t.Logf("up -d --wait after the interrupted down: %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("up -d --wait after a down that stopped the users gateway exited %d:\n%s", code, stderr)
	}
	if now := gwGateway(t, cli, p, "users"); now.ID == old.ID {
		t.Errorf("up kept the stopped users gateway %s", old.ID[:12])
	}
	if r, status, err := get(p.url("USERS_PORT") + "/accounts/"); err != nil || status != http.StatusOK || r.Service != "accounts" {
		t.Errorf("GET users /accounts/ after up = %d, %v, %+v; want 200 from accounts", status, err, r)
	}
}

// testUsesAddedLater: a project whose cells use none has no mesh, and its
// cells cannot reach each other. Once front lists back under uses:, `up`
// creates the mesh and connects back's running gateway to it, the same
// container, and a request to front reaches back. The project runs the
// images built for p.
func testUsesAddedLater(t *testing.T, p *project) {
	cli := requireDocker(t)
	img := func(service string) string { return borrowImage(t, cli, p, service) }
	dir := t.TempDir()
	front := func(uses string) string {
		return `cell: front
gateway:
  port: ${FRONT_PORT}
` + uses + `services:
  web:
    image: ` + img("orders") + `
    port: 8080
    env:
      SERVICE_NAME: web
      UPSTREAM_URL: http://back:${BACK_PORT}
      UPSTREAM_PATH: /api/
`
	}
	files := map[string]string{
		"orchestro.yaml": "project: meshless\ncells: [front.yaml, back.yaml]\n",
		"front.yaml":     front(""),
		"back.yaml": `cell: back
gateway:
  port: ${BACK_PORT}
services:
  api:
    image: ` + img("accounts") + `
    port: 8080
    env:
      SERVICE_NAME: api
`,
	}
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data)
	}
	m := newProject(t, "meshless", dir, "FRONT_PORT", "BACK_PORT")
	if _, stderr, code := m.run(t, "up", "-d", "--wait"); code != 0 {
		t.Fatalf("up -d --wait exited %d:\n%s", code, stderr)
	}
	mesh := m.name + "_mesh"
	if _, err := cli.NetworkInspect(context.Background(), mesh, network.InspectOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("inspect network %s of a project whose cells use none = %v, want not found", mesh, err)
	}
	if _, status, err := get(m.url("FRONT_PORT") + "/web/"); err != nil || status != http.StatusBadGateway {
		t.Errorf("GET front before it uses back = %d, %v; want 502 (back cannot be reached)", status, err)
	}
	backGateway := ids(t, cli, m.name, labelCell+"=back", labelRole+"=gateway")

	writeFile(t, filepath.Join(dir, "front.yaml"), front("uses: [back]\n"))
	if _, stderr, code := m.run(t, "up", "-d", "--wait"); code != 0 {
		t.Fatalf("up -d --wait with front using back exited %d:\n%s", code, stderr)
	}
	if same, diff := sameIDs(backGateway, ids(t, cli, m.name, labelCell+"=back", labelRole+"=gateway")); !same {
		t.Errorf("back's gateway was recreated to join the mesh: %s", diff)
	}
	for _, g := range listContainers(t, cli, m.name, labelRole+"=gateway") {
		if _, ok := g.NetworkSettings.Networks[mesh]; !ok {
			t.Errorf("gateway %s is not on %s: %v", containerName(g), mesh, slices.Collect(maps.Keys(g.NetworkSettings.Networks)))
		}
	}
	r, status, err := get(m.url("FRONT_PORT") + "/web/")
	if err != nil || status != http.StatusOK || r.Upstream == nil || r.Upstream.Service != "api" {
		t.Errorf("GET front once it uses back = %d, %v, %+v; want 200 from web with api's answer", status, err, r)
	}
}

// TestE2EUpKilledMidBuild: `up -d --wait` of a fresh demo project killed
// after about 3 seconds, while it builds; `down -v` leaves nothing.
func TestE2EUpKilledMidBuild(t *testing.T) {
	cli := requireDocker(t)
	p := newProject(t, "build", demoDir(t), demoPorts...)
	// The killed build may still tag an image after the CLI is gone.
	p.lateImages = 3 * time.Second
	pr := startProc(t, p.env, p.args("up", "-d", "--wait")...)
	time.Sleep(3 * time.Second)
	pr.signal(syscall.SIGKILL)
	if _, ended := pr.wait(5 * time.Second); !ended {
		t.Fatal("up did not end after SIGKILL")
	}
	lines := strings.Split(strings.TrimSpace(pr.errb.String()), "\n")
	t.Logf("up killed after 3s; its last progress line: %q", lines[len(lines)-1])

	start := time.Now()
	_, stderr, code := p.run(t, "down", "-v")
	t.Logf("down -v after the killed up: %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("down -v exited %d:\n%s", code, stderr)
	}
	assertNothingLeft(t, cli, p.name)
	imgs, err := cli.ImageList(context.Background(), image.ListOptions{All: true, Filters: projectFilter(p.name)})
	if err == nil {
		t.Logf("%d images labelled with the project remain after down (down does not remove images; cleanup does)", len(imgs))
	}
}

// TestE2ENoEngine: without an engine a command fails at once with one line
// naming the endpoint, exit code 1.
func TestE2ENoEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	binary(t)
	const endpoint = "unix:///nonexistent.sock"
	start := time.Now()
	stdout, stderr, code := run(t, []string{"DOCKER_HOST=" + endpoint}, "-p", uniqueName("noengine"), "ps")
	took := time.Since(start)
	t.Logf("ps without an engine: exit %d after %s: %s", code, took.Round(time.Millisecond), strings.TrimSpace(stderr))
	if code != 1 {
		t.Errorf("ps exited %d, want 1", code)
	}
	if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); len(lines) != 1 || lines[0] == "" {
		t.Errorf("stderr has %d lines, want exactly one:\n%s", len(lines), stderr)
	}
	if !strings.Contains(stderr, "/nonexistent.sock") {
		t.Errorf("stderr does not name the endpoint %s:\n%s", endpoint, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
}

// TestE2EBadSpec: a bad spec lists every problem with file:line:column,
// exits 2 and creates nothing.
func TestE2EBadSpec(t *testing.T) {
	cli := requireDocker(t)
	spec, err := filepath.Abs(filepath.Join("..", "..", "testdata", "invalid", "many.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(strings.TrimSuffix(spec, ".yaml") + ".golden")
	if err != nil {
		t.Fatal(err)
	}
	p := newProject(t, "bad", spec)
	stdout, stderr, code := p.run(t, "up", "-d")
	if code != 2 {
		t.Errorf("up -d of an invalid spec exited %d, want 2:\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	for _, want := range strings.Split(strings.TrimSpace(string(golden)), "\n") {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks the problem %q", want)
		}
	}
	assertNothingLeft(t, cli, p.name)
	imgs, err := cli.ImageList(context.Background(), image.ListOptions{All: true, Filters: projectFilter(p.name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) > 0 {
		t.Errorf("an invalid spec built %d images", len(imgs))
	}
}
