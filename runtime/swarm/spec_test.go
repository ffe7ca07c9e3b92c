package swarm

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

func testProject() *cellspec.Project {
	health := &cellspec.Health{HTTP: "/healthz", Interval: cellspec.Duration(time.Second), Timeout: cellspec.Duration(time.Second), Retries: 2}
	shop := &cellspec.Cell{Name: "shop", Gateway: cellspec.Gateway{Port: 8081, Listeners: []cellspec.Listener{{Port: 9000, Service: "catalog"}}}, Uses: []string{"users"},
		Services: map[string]*cellspec.Service{
			"catalog": {Name: "catalog", Port: 8080, Replicas: 2, Restart: cellspec.RestartAlways, Health: health,
				Env: map[string]string{"B": "2", "A": "1"}, Volumes: []cellspec.Volume{{Type: cellspec.VolumeNamed, Source: "data", Target: "/data"}}},
			"orders": {Name: "orders", Port: 8080, Replicas: 1, Restart: cellspec.RestartOnFailure,
				Autoscale: &cellspec.Autoscale{Min: 1, Max: 4, Inflight: 10}},
		},
		Flows: []*cellspec.Flow{{Name: "f", Route: cellspec.FlowRoute{Method: "POST", Path: "/f"}}},
	}
	users := &cellspec.Cell{Name: "users", Gateway: cellspec.Gateway{Port: 8082},
		Services: map[string]*cellspec.Service{"accounts": {Name: "accounts", Port: 8080, Replicas: 1, Restart: cellspec.RestartNever}}}
	return &cellspec.Project{Name: "demo", Cells: []*cellspec.Cell{shop, users}}
}

func testInput(nodes int) Input {
	img := func(ref string, h []string) Image { return Image{Ref: ref, ID: "sha256:" + ref, Health: h} }
	return Input{
		Project: testProject(), GatewayImage: "gw@sha256:1", Token: "tok", AdminPort: 7700, Nodes: nodes,
		Images: map[string]map[string]Image{
			"shop":  {"catalog": img("reg/catalog@sha256:2", []string{"CMD", "/.orchestro/orchestro", "probe", "http", "8080", "/healthz", "1s"}), "orders": img("reg/orders@sha256:3", nil)},
			"users": {"accounts": img("reg/accounts@sha256:4", nil)},
		},
	}
}

func byName(t *testing.T, d *Deployment, name string) Service {
	t.Helper()
	for _, s := range d.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %s", name)
	return Service{}
}

func TestPlan(t *testing.T) {
	d, err := Plan(testInput(1))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range d.Services {
		names = append(names, s.Name)
		if s.Spec.EndpointSpec == nil || s.Spec.EndpointSpec.Mode != swarm.ResolutionModeDNSRR {
			t.Errorf("%s: endpoint mode is not dnsrr: routing through a VIP needs IPVS", s.Name)
		}
		if s.Spec.Labels[engine.LabelProject] != "demo" || s.Spec.Labels[LabelTarget] != api.TargetSwarm {
			t.Errorf("%s: labels %v", s.Name, s.Spec.Labels)
		}
	}
	want := []string{"demo-shop-catalog", "demo-shop-orders", "demo-shop-gateway", "demo-users-accounts", "demo-users-gateway", "demo-keeper"}
	if !slices.Equal(names, want) {
		t.Errorf("services %v, want %v", names, want)
	}
	var nets []string
	for _, n := range d.Networks {
		nets = append(nets, n.Name)
	}
	if !slices.Equal(nets, []string{"demo_mesh", "demo_shop", "demo_users"}) {
		t.Errorf("networks %v", nets)
	}

	catalog := byName(t, d, "demo-shop-catalog")
	cs := catalog.Spec.TaskTemplate.ContainerSpec
	if cs.Image != "reg/catalog@sha256:2" || !slices.Equal(cs.Env[:2], []string{"A=1", "B=2"}) {
		t.Errorf("catalog container: image %s env %v", cs.Image, cs.Env)
	}
	if cs.Healthcheck == nil || cs.Healthcheck.Test[1] != "/.orchestro/orchestro" || cs.Healthcheck.Timeout < minEngineCheckTimeout || cs.Healthcheck.Retries < minEngineCheckRetries {
		t.Errorf("catalog health check %+v", cs.Healthcheck)
	}
	if len(cs.Mounts) != 1 || cs.Mounts[0].Source != "demo_data" {
		t.Errorf("catalog mounts %+v", cs.Mounts)
	}
	nw := catalog.Spec.TaskTemplate.Networks
	if len(nw) != 1 || nw[0].Target != "demo_shop" || !slices.Equal(nw[0].Aliases, []string{"catalog"}) {
		t.Errorf("catalog is on %+v, want only its cell's network under its name", nw)
	}
	if u := catalog.Spec.UpdateConfig; u.Order != swarm.UpdateOrderStartFirst || u.FailureAction != swarm.UpdateFailureActionRollback {
		t.Errorf("catalog update config %+v", u)
	}
	if r := *catalog.Spec.Mode.Replicated.Replicas; r != 2 {
		t.Errorf("catalog replicas %d", r)
	}
	if c := byName(t, d, "demo-users-accounts").Spec.TaskTemplate.RestartPolicy.Condition; c != swarm.RestartPolicyConditionNone {
		t.Errorf("restart: never became %s", c)
	}
	var a cellspec.Autoscale
	if err := json.Unmarshal([]byte(byName(t, d, "demo-shop-orders").Spec.Labels[engine.AutoscaleLabel]), &a); err != nil || a.Max != 4 {
		t.Errorf("orders autoscale label: %v %+v", err, a)
	}

	gw := byName(t, d, "demo-shop-gateway")
	if r := *gw.Spec.Mode.Replicated.Replicas; r != 1 {
		t.Errorf("one node: %d gateway replicas, want 1", r)
	}
	if gw.Spec.TaskTemplate.Placement.MaxReplicas != 1 || gw.Spec.UpdateConfig.Order != swarm.UpdateOrderStopFirst {
		t.Errorf("gateway placement %+v, update %+v", gw.Spec.TaskTemplate.Placement, gw.Spec.UpdateConfig)
	}
	ports := map[uint32]swarm.PortConfig{}
	for _, p := range gw.Spec.EndpointSpec.Ports {
		ports[p.TargetPort] = p
		if p.PublishMode != swarm.PortConfigPublishModeHost {
			t.Errorf("gateway port %d published in %s mode; the routing mesh needs IPVS", p.TargetPort, p.PublishMode)
		}
	}
	if ports[8081].PublishedPort != 8081 || ports[9000].PublishedPort != 9000 || ports[7700].PublishedPort != 0 {
		t.Errorf("gateway ports %+v", gw.Spec.EndpointSpec.Ports)
	}
	gnw := gw.Spec.TaskTemplate.Networks
	if len(gnw) != 2 || !slices.Equal(gnw[0].Aliases, []string{"shop", "users"}) || gnw[1].Target != "demo_mesh" {
		t.Errorf("gateway networks %+v", gnw)
	}
	var spec api.GatewaySpec
	for _, e := range gw.Spec.TaskTemplate.ContainerSpec.Env {
		if v, ok := strings.CutPrefix(e, api.EnvSpec+"="); ok {
			if strings.Contains(strings.ReplaceAll(v, `{{"{{"}}`, ""), "{{") {
				t.Errorf("the spec holds an unescaped {{, which Swarm expands")
			}
			if err := json.Unmarshal([]byte(strings.ReplaceAll(v, `{{"{{"}}`, "{{")), &spec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !spec.FindsByDNS() || spec.Discovery["catalog"] != "tasks.demo-shop-catalog" || spec.Peers["users"] != "tasks.demo-users-gateway:8082" {
		t.Errorf("gateway spec: target %q discovery %v peers %v", spec.Target, spec.Discovery, spec.Peers)
	}
	if len(gw.Spec.TaskTemplate.ContainerSpec.Mounts) != 1 {
		t.Errorf("a cell with flows mounts its journal: %+v", gw.Spec.TaskTemplate.ContainerSpec.Mounts)
	}

	keeper := byName(t, d, "demo-keeper")
	if c := keeper.Spec.TaskTemplate.Placement.Constraints; !slices.Equal(c, []string{"node.role==manager"}) || *keeper.Spec.Mode.Replicated.Replicas != 1 ||
		keeper.Spec.UpdateConfig.Order != swarm.UpdateOrderStopFirst {
		t.Errorf("the scaler must be one task on a manager, replaced stop-first: %+v", keeper.Spec)
	}

	two, err := Plan(testInput(3))
	if err != nil {
		t.Fatal(err)
	}
	if r := *byName(t, two, "demo-shop-gateway").Spec.Mode.Replicated.Replicas; r != 2 {
		t.Errorf("three nodes: %d gateway replicas, want 2", r)
	}
	// The hash leaves the replica count out: a scaled service is not
	// rolled by a redeploy.
	if byName(t, two, "demo-shop-catalog").Hash != catalog.Hash {
		t.Error("the catalog's hash depends on something other than its spec")
	}
}

func TestEscapeTemplate(t *testing.T) {
	got := escapeTemplate(`a ${{ path.order }} {{.Node.Hostname}}`)
	want := `a ${{"{{"}} path.order }} {{"{{"}}.Node.Hostname}}`
	if got != want {
		t.Errorf("escapeTemplate = %q, want %q", got, want)
	}
}
