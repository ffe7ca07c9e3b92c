//go:build unix

package main

// The swarm target, end to end, on a single-node swarm the test makes
// itself (and leaves again, unless the engine was already in one): the
// demo project deployed with `up --target swarm` from images pushed to a
// registry the test runs, reached through every gateway, healed under
// load, scaled by hand and by the autoscaler, isolated by `uses:`, and
// removed by `down`.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// requireSwarm makes the engine a single-node swarm manager on loopback
// for the test, unless it is one already, and leaves the swarm at the end
// when it made it. An engine that cannot make one skips the test, and
// fails it under CI.
func requireSwarm(t *testing.T, cli *client.Client) {
	t.Helper()
	ctx := context.Background()
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatalf("engine info: %v", err)
	}
	switch {
	case info.Swarm.LocalNodeState == swarm.LocalNodeStateActive && info.Swarm.ControlAvailable:
		return
	case info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive:
		skipOrFail(t, fmt.Sprintf("the engine is in a swarm as a %s node, not a manager", info.Swarm.LocalNodeState))
	}
	// The engine creates docker_gwbridge for a swarm's ingress; one it
	// made for the test's swarm goes with it.
	_, err = cli.NetworkInspect(ctx, gwBridge, network.InspectOptions{})
	hadBridge := err == nil
	if _, err := cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		skipOrFail(t, fmt.Sprintf("the engine cannot make a swarm: %v", err))
	}
	t.Cleanup(func() {
		ctx := context.Background()
		// Leaving was seen to leave docker_gwbridge with a count of
		// endpoints the engine never lets go of: it then refuses to
		// remove the network, with no endpoint on it, until dockerd
		// restarts. So the node leaves once nothing of the swarm is on
		// the bridge: the tasks of the removed services gone, then the
		// ingress network removed while the swarm still runs, so that its
		// sandbox's endpoint goes as any other rather than as the node
		// leaves (waiting for the tasks alone was not enough).
		waitSwarmQuiet(t, cli, swarmQuietWait)
		if err := cli.NetworkRemove(ctx, "ingress"); err != nil && !errdefs.IsNotFound(err) {
			t.Logf("remove the swarm's ingress network: %v", err)
		}
		waitGWBridgeEmpty(t, cli, swarmQuietWait)
		if err := cli.SwarmLeave(ctx, true); err != nil {
			t.Errorf("leave the swarm the test made: %v", err)
			return
		}
		if !hadBridge {
			removeGWBridge(t, cli, swarmQuietWait)
		}
	})
}

// gwBridge is the network the engine creates for a swarm's ingress.
const gwBridge = "docker_gwbridge"

// swarmQuietWait bounds the waits of requireSwarm's cleanup.
const swarmQuietWait = 30 * time.Second

// waitSwarmQuiet waits, up to limit, until no container of a swarm task
// is left and docker_gwbridge holds no endpoint but the ingress sandbox's.
func waitSwarmQuiet(t *testing.T, cli *client.Client, limit time.Duration) {
	t.Helper()
	if _, ok, why := eventually(limit, 200*time.Millisecond, func() (bool, string) {
		var left []string
		tasks, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.task.id"))})
		if err == nil {
			for _, c := range tasks {
				left = append(left, containerName(c))
			}
		}
		for _, ep := range gwBridgeEndpoints(cli) {
			if ep != "gateway_ingress-sbox" {
				left = append(left, gwBridge+" endpoint "+ep)
			}
		}
		return len(left) == 0, strings.Join(left, ", ")
	}); !ok {
		t.Logf("leaving the swarm with %s still there", why)
	}
}

// waitGWBridgeEmpty waits, up to limit, until docker_gwbridge holds no
// endpoint.
func waitGWBridgeEmpty(t *testing.T, cli *client.Client, limit time.Duration) {
	t.Helper()
	if _, ok, why := eventually(limit, 200*time.Millisecond, func() (bool, string) {
		eps := gwBridgeEndpoints(cli)
		return len(eps) == 0, strings.Join(eps, ", ")
	}); !ok {
		t.Logf("leaving the swarm with %s on %s", why, gwBridge)
	}
}

// gwBridgeEndpoints names the endpoints on docker_gwbridge; none when it
// is not there.
func gwBridgeEndpoints(cli *client.Client) []string {
	nw, err := cli.NetworkInspect(context.Background(), gwBridge, network.InspectOptions{})
	if err != nil {
		return nil
	}
	var names []string
	for _, ep := range nw.Containers {
		names = append(names, ep.Name)
	}
	return names
}

// removeGWBridge removes the docker_gwbridge a test's swarm made, trying
// again, up to limit, while the engine has not let go of its endpoints
// after the swarm was left. An engine that never does (its count of the
// network's endpoints went wrong: no endpoint is on it) leaves the network
// behind; that is the engine's fault, said in the log rather than failed
// on, and the network is harmless: the next swarm reuses it.
func removeGWBridge(t *testing.T, cli *client.Client, limit time.Duration) {
	t.Helper()
	var err error
	eventually(limit, 250*time.Millisecond, func() (bool, string) {
		err = cli.NetworkRemove(context.Background(), gwBridge)
		return err == nil || errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "active endpoints"), ""
	})
	switch {
	case err == nil, errdefs.IsNotFound(err):
	case strings.Contains(err.Error(), "active endpoints") && len(gwBridgeEndpoints(cli)) == 0:
		t.Logf("the engine keeps %s: it refuses to remove it (%v) with no endpoint on it", gwBridge, err)
	default:
		t.Errorf("remove the %s the test's swarm made: %v", gwBridge, err)
	}
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// removeSwarmServices removes the Swarm services labelled with the
// project, whatever `down` did.
func removeSwarmServices(t *testing.T, cli *client.Client, name string) {
	ctx := context.Background()
	list, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: projectFilter(name)})
	if err != nil {
		return
	}
	for _, s := range list {
		if err := cli.ServiceRemove(ctx, s.ID); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("remove service %s: %v", s.Spec.Name, err)
		}
	}
}

// newSwarmProject is newProject for the swarm target: after its cleanup
// (`down -v` and the sweep), any Swarm service of the project that is
// left is removed through the SDK.
func newSwarmProject(t *testing.T, cli *client.Client, prefix, spec string, portVars ...string) *project {
	t.Helper()
	var name string
	t.Cleanup(func() {
		if name != "" {
			removeSwarmServices(t, cli, name)
		}
	})
	p := newProject(t, prefix, spec, portVars...)
	name = p.name
	return p
}

// swarmServices lists the project's Swarm services by name.
func swarmServices(t *testing.T, cli *client.Client, name string) map[string]swarm.Service {
	t.Helper()
	list, err := cli.ServiceList(context.Background(), swarm.ServiceListOptions{Filters: projectFilter(name)})
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	out := map[string]swarm.Service{}
	for _, s := range list {
		out[s.Spec.Name] = s
	}
	return out
}

func serviceReplicas(s swarm.Service) int {
	if s.Spec.Mode.Replicated == nil || s.Spec.Mode.Replicated.Replicas == nil {
		return -1
	}
	return int(*s.Spec.Mode.Replicated.Replicas)
}

// taskContainers lists the running containers of a Swarm service's tasks
// on this node.
func taskContainers(t *testing.T, cli *client.Client, service string) []container.Summary {
	t.Helper()
	list, err := cli.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmServiceLabel+"="+service))})
	if err != nil {
		t.Fatalf("list tasks of %s: %v", service, err)
	}
	return list
}

func TestE2ESwarm(t *testing.T) {
	cli := requireDocker(t)
	requireSwarm(t, cli)
	reg := enginetest.StartRegistry(t)

	t.Run("demo", func(t *testing.T) { testSwarmDemo(t, cli, reg) })
	t.Run("autoscale", func(t *testing.T) { testSwarmAutoscale(t, cli) })
}

func testSwarmDemo(t *testing.T, cli *client.Client, reg string) {
	p := newSwarmProject(t, cli, "swarm", gwDemoDir(t), "EDGE_PORT", "SHOP_PORT", "USERS_PORT", "CHECKOUT_PORT")

	start := time.Now()
	if _, stderr, code := p.run(t, "up", "--target", "swarm", "--registry", reg, "-d", "--wait", "--wait-timeout", "4m"); code != 0 {
		t.Fatalf("up --target swarm -d --wait exited %d:\n%s", code, stderr)
	}
	t.Logf("up --target swarm -d --wait (cold, with pushes): %.1fs", time.Since(start).Seconds())

	// Every service runs an image pushed to the registry, by digest.
	services := swarmServices(t, cli, p.name)
	for name, s := range services {
		img := s.Spec.TaskTemplate.ContainerSpec.Image
		if !strings.HasPrefix(img, reg+"/") || !strings.Contains(img, "@sha256:") {
			t.Errorf("service %s runs %s, want an image of %s by digest", name, img, reg)
		}
		if s.Spec.EndpointSpec == nil || s.Spec.EndpointSpec.Mode != swarm.ResolutionModeDNSRR {
			t.Errorf("service %s does not use DNS round robin", name)
		}
	}
	if _, ok := services[p.name+"-shop-catalog"]; !ok {
		t.Fatalf("no service %s-shop-catalog among %d services", p.name, len(services))
	}

	stdout, _, code := p.run(t, "ps", "--json")
	if code != 0 || !strings.Contains(stdout, `"target": "swarm"`) || !strings.Contains(stdout, `"node": "`) {
		t.Errorf("ps --json (exit %d) does not show the swarm target and the tasks' nodes:\n%s", code, stdout)
	}

	// Requests through the shop gateway reach every catalog task.
	catalog := gwService(t, p, "shop", "catalog")
	hosts := map[string]int{}
	for range 6 * catalog.Desired {
		r, status, err := get(p.url("SHOP_PORT") + "/catalog/item")
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET /catalog/item through the shop gateway: %d %v", status, err)
		}
		hosts[r.Hostname]++
	}
	if len(hosts) != catalog.Desired {
		t.Errorf("the shop gateway reached %v, want each of the %d catalog tasks", hosts, catalog.Desired)
	}
	t.Logf("catalog tasks reached: %v", hosts)

	// The chain edge → shop → users goes through the gateways over the
	// mesh; from the edge cell, users (not in its uses) is not even a name.
	r, status, err := get(p.url("EDGE_PORT") + "/")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET / through the edge gateway: %d %v", status, err)
	}
	if r.Upstream == nil || r.Upstream.Upstream == nil || r.Upstream.Upstream.Service != "accounts" {
		t.Errorf("edge → shop → users did not reach accounts: %+v", r)
	}
	webImage := services[p.name+"-edge-web"].Spec.TaskTemplate.ContainerSpec.Image
	status, body := swarmProbe(t, cli, p, "edge", webImage, fmt.Sprintf("http://shop:%d", p.ports["SHOP_PORT"]), "/catalog/probe")
	if status != http.StatusOK {
		t.Errorf("from the edge cell, shop = %d, want 200 (edge uses shop):\n%s", status, body)
	}
	status, body = swarmProbe(t, cli, p, "edge", webImage, fmt.Sprintf("http://users:%d", p.ports["USERS_PORT"]), "/accounts/probe")
	if status == http.StatusOK {
		t.Errorf("from the edge cell, users answered %d, want a failure (edge does not use users):\n%s", status, body)
	} else {
		t.Logf("from the edge cell, users: %d %s", status, strings.TrimSpace(body))
	}

	// A killed task under load: the gateway retries on another, Swarm
	// replaces it.
	before := taskContainers(t, cli, p.name+"-shop-catalog")
	if len(before) == 0 {
		t.Fatal("no catalog task container on this node")
	}
	load := gwStartLoad(t, p.url("SHOP_PORT")+"/catalog/", 4, 8*time.Second)
	time.Sleep(2 * time.Second)
	if err := cli.ContainerKill(context.Background(), before[0].ID, "KILL"); err != nil {
		t.Fatalf("kill a catalog task: %v", err)
	}
	res := load.wait()
	gwCheckNoFailures(t, "a killed catalog task", res)
	took, ok, why := eventually(60*time.Second, 250*time.Millisecond, func() (bool, string) {
		s := gwService(t, p, "shop", "catalog")
		for _, r := range s.Replicas {
			if r.ContainerID == before[0].ID {
				return false, "the killed task is still listed"
			}
		}
		return s.Ready == s.Desired && len(s.Replicas) == s.Desired, formatCount(s)
	})
	if !ok {
		t.Fatalf("the killed catalog task was not replaced: %s", why)
	}
	t.Logf("killed catalog task replaced and ready in %.1fs", took.Seconds())

	// scale goes to the Swarm service.
	if _, stderr, code := p.run(t, "scale", "shop/catalog=3", "--wait"); code != 0 {
		t.Fatalf("scale shop/catalog=3 --wait exited %d:\n%s", code, stderr)
	}
	if n := serviceReplicas(swarmServices(t, cli, p.name)[p.name+"-shop-catalog"]); n != 3 {
		t.Errorf("after scale, the Swarm service asks for %d replicas, want 3", n)
	}
	if s := gwService(t, p, "shop", "catalog"); s.Ready != 3 {
		t.Errorf("after scale --wait: %s", formatCount(s))
	}

	// restart rolls every task through Swarm's update, start-first, with
	// no failed request.
	old := map[string]bool{}
	for _, c := range taskContainers(t, cli, p.name+"-shop-catalog") {
		old[c.ID] = true
	}
	load = gwStartLoad(t, p.url("SHOP_PORT")+"/catalog/", 4, 5*time.Second)
	start = time.Now()
	if _, stderr, code := p.run(t, "restart", "shop/catalog", "--wait"); code != 0 {
		t.Fatalf("restart shop/catalog --wait exited %d:\n%s", code, stderr)
	}
	t.Logf("restart shop/catalog --wait: %.1fs", time.Since(start).Seconds())
	gwCheckNoFailures(t, "a rolling restart", load.wait())
	if s := gwService(t, p, "shop", "catalog"); s.Ready != 3 || len(s.Replicas) != 3 {
		t.Errorf("after restart --wait: %s", formatCount(s))
	} else {
		for _, r := range s.Replicas {
			if old[r.ContainerID] {
				t.Errorf("after restart --wait, catalog-%d still runs its old container", r.Replica)
			}
		}
	}

	// logs come from Swarm, named by task slot.
	stdout, stderr, code := p.run(t, "logs", "shop/catalog", "--tail", "5")
	if code != 0 || !strings.Contains(stdout, "shop/catalog-") {
		t.Errorf("logs shop/catalog exited %d:\n%s\n%s", code, stdout, stderr)
	}

	start = time.Now()
	if _, stderr, code := p.run(t, "down", "-v"); code != 0 {
		t.Fatalf("down -v exited %d:\n%s", code, stderr)
	}
	t.Logf("down -v on the swarm: %.1fs", time.Since(start).Seconds())
	if left := swarmServices(t, cli, p.name); len(left) > 0 {
		t.Errorf("down left %d services", len(left))
	}
	if tasks := taskContainers(t, cli, p.name+"-shop-catalog"); len(tasks) > 0 {
		t.Errorf("down left %d catalog task containers", len(tasks))
	}
	assertNothingLeft(t, cli, p.name)
}

func testSwarmAutoscale(t *testing.T, cli *client.Client) {
	spec, err := filepath.Abs(filepath.Join("..", "..", "testdata", "autoscale", "cell.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := newSwarmProject(t, cli, "swarmscale", spec, "SCALING_PORT")
	if _, stderr, code := p.run(t, "up", "--target", "swarm", "-d", "--wait", "--wait-timeout", "3m"); code != 0 {
		t.Fatalf("up --target swarm -d --wait exited %d:\n%s", code, stderr)
	}
	name := p.name + "-scaling-slow"
	// 10 clients on requests that take a second against an in-flight
	// target of 2: the scaler raises the Swarm service's replicas.
	load := gwStartLoad(t, p.url("SCALING_PORT")+"/slow/?sleep=1s", 10, 15*time.Second)
	took, ok, why := eventually(30*time.Second, 250*time.Millisecond, func() (bool, string) {
		n := serviceReplicas(swarmServices(t, cli, p.name)[name])
		return n >= 3, fmt.Sprintf("%d replicas", n)
	})
	res := load.wait()
	if !ok {
		t.Fatalf("the scaler did not raise %s to 3 replicas: %s", name, why)
	}
	t.Logf("%s raised to ≥3 replicas %.1fs after the load started", name, took.Seconds())
	gwCheckNoFailures(t, "scale out on the swarm", res)
	stdout, _, _ := p.run(t, "events")
	if !strings.Contains(stdout, "scaled") {
		t.Errorf("events show no scaling decision:\n%s", stdout)
	}
}

// swarmProbe runs a throwaway container of the caller image on a cell's
// overlay network and has it call upstream+path, as gwProbe does on the
// local target; the host has no route into an overlay network, so the
// probe is reached through a port it publishes on loopback.
func swarmProbe(t *testing.T, cli *client.Client, p *project, cell, img, upstream, path string) (int, string) {
	t.Helper()
	ctx := context.Background()
	port := nat.Port("8080/tcp")
	cfg := &container.Config{
		Image:        img,
		Env:          []string{"SERVICE_NAME=probe", "UPSTREAM_URL=" + upstream, "UPSTREAM_PATH=" + path},
		Labels:       map[string]string{labelProject: p.name},
		ExposedPorts: nat.PortSet{port: {}},
	}
	host := &container.HostConfig{PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1"}}}}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{p.name + "_" + cell: {}}}
	created, err := cli.ContainerCreate(ctx, cfg, host, netCfg, nil, p.name+"-probe-"+gwRandHex(4))
	if err != nil {
		t.Fatalf("create probe container: %v", err)
	}
	defer func() {
		if err := cli.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("remove probe container: %v", err)
		}
	}()
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start probe container: %v", err)
	}
	ins, err := cli.ContainerInspect(ctx, created.ID)
	if err != nil {
		t.Fatalf("inspect probe container: %v", err)
	}
	bindings := ins.NetworkSettings.Ports[port]
	if len(bindings) == 0 {
		t.Fatal("the probe container publishes no port")
	}
	return gwProbeAsk(t, "http://127.0.0.1:"+bindings[0].HostPort)
}
