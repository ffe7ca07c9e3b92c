package runtime

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// testProject is a project of two cells, shop using users, whose services
// share the named volume data.
func testProject() *cellspec.Project {
	data := []cellspec.Volume{{Type: cellspec.VolumeNamed, Source: "data", Target: "/data"}}
	return &cellspec.Project{Name: "demo", Cells: []*cellspec.Cell{
		{Name: "shop", Gateway: cellspec.Gateway{Port: 8081}, Uses: []string{"users"}, Services: map[string]*cellspec.Service{
			"orders": {Name: "orders", Image: "orders:1", Port: 8080, Replicas: 2, Restart: cellspec.RestartAlways, Volumes: data},
		}},
		{Name: "users", Gateway: cellspec.Gateway{Port: 8082}, Services: map[string]*cellspec.Service{
			"accounts": {Name: "accounts", Image: "accounts:1", Port: 8080, Replicas: 1, Restart: cellspec.RestartAlways, Volumes: data},
		}},
	}}
}

// testImages are the service images of testProject.
func testImages() map[string]map[string]api.ServiceImage {
	return map[string]map[string]api.ServiceImage{
		"shop":  {"orders": {Ref: "orders:1", ID: "sha256:0rders"}},
		"users": {"accounts": {Ref: "accounts:1", ID: "sha256:acc0unts"}},
	}
}

// convergedObserved is what the engine shows once d has been carried out:
// every object exists, runs and reports the wanted spec.
func convergedObserved(d upDesired) upObserved {
	o := upObserved{
		Networks: map[string]string{},
		Volumes:  map[string]bool{},
		Keepers:  []observedKeeper{{ID: "keeper-id", State: "running", Hash: keeperHash(d.Image)}},
	}
	if len(d.Mesh) > 0 {
		o.Networks[engine.MeshNetworkName(d.Project)] = d.Project
	}
	for _, v := range d.Volumes {
		o.Volumes[v] = true
	}
	for _, spec := range d.Gateways {
		cell := spec.Cell.Name
		o.Networks[engine.NetworkName(d.Project, cell)] = d.Project
		o.Gateways = append(o.Gateways, observedGateway{
			gateway:  gateway{id: cell + "-gw-id", cell: cell, state: "running", hash: gatewayHash(spec, d.Image), token: d.Token, onMesh: d.Mesh[cell]},
			SpecHash: spec.Hash(),
		})
	}
	return o
}

func TestPlanUp(t *testing.T) {
	const img = "orchestro-gateway:1"
	shop, users := 0, 1 // indexes of the gateways in convergedObserved
	orphan := observedGateway{gateway: gateway{id: "legacy-gw-id", cell: "legacy", state: "running", hash: "h"}, SpecHash: "s"}
	tests := []struct {
		name string
		// desired and observed change the converged project.
		desired  func(d *upDesired)
		observed func(o *upObserved)
		want     string
	}{
		{
			name:     "fresh project",
			observed: func(o *upObserved) { *o = upObserved{} },
			want: "create network demo_mesh\n" +
				"create volume demo-shop-access-log\n" +
				"create volume demo_data\n" +
				"create volume demo-users-access-log\n" +
				"then\n" +
				"shop: create network demo_shop\n" +
				"shop: create gateway demo-shop-gateway\n" +
				"shop: connect gateway demo-shop-gateway to network demo_mesh\n" +
				"shop: start gateway demo-shop-gateway\n" +
				"shop: wait for gateway demo-shop-gateway to start on 127.0.0.1:8081\n" +
				"users: create network demo_users\n" +
				"users: create gateway demo-users-gateway\n" +
				"users: connect gateway demo-users-gateway to network demo_mesh\n" +
				"users: start gateway demo-users-gateway\n" +
				"users: wait for gateway demo-users-gateway to start on 127.0.0.1:8082\n" +
				"then\n" +
				"keeper: create keeper demo-keeper\n" +
				"keeper: start keeper demo-keeper\n",
		},
		{
			name: "nothing changed",
			want: "shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: keep gateway demo-users-gateway: up to date\n",
		},
		{
			name:     "a gateway runs another spec",
			observed: func(o *upObserved) { o.Gateways[shop].SpecHash = "0ld" },
			want: "shop: update gateway demo-shop-gateway: spec changed\n" +
				"users: keep gateway demo-users-gateway: up to date\n",
		},
		{
			name:     "a gateway container whose ports or peers changed",
			observed: func(o *upObserved) { o.Gateways[users].hash = "0ld" },
			want: "remove gateway demo-users-gateway: gateway image or ports changed\n" +
				"then\n" +
				"shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: create gateway demo-users-gateway\n" +
				"users: connect gateway demo-users-gateway to network demo_mesh\n" +
				"users: start gateway demo-users-gateway\n" +
				"users: wait for gateway demo-users-gateway to start on 127.0.0.1:8082\n",
		},
		{
			// Every old gateway goes before any new one is created: two
			// cells may have swapped ports.
			name:    "a new gateway image replaces the keeper and every gateway",
			desired: func(d *upDesired) { d.Image = "orchestro-gateway:2" },
			want: "remove gateway demo-shop-gateway: gateway image or ports changed\n" +
				"remove gateway demo-users-gateway: gateway image or ports changed\n" +
				"then\n" +
				"shop: create gateway demo-shop-gateway\n" +
				"shop: connect gateway demo-shop-gateway to network demo_mesh\n" +
				"shop: start gateway demo-shop-gateway\n" +
				"shop: wait for gateway demo-shop-gateway to start on 127.0.0.1:8081\n" +
				"users: create gateway demo-users-gateway\n" +
				"users: connect gateway demo-users-gateway to network demo_mesh\n" +
				"users: start gateway demo-users-gateway\n" +
				"users: wait for gateway demo-users-gateway to start on 127.0.0.1:8082\n" +
				"then\n" +
				"keeper: remove keeper demo-keeper: gateway image changed\n" +
				"keeper: create keeper demo-keeper\n" +
				"keeper: start keeper demo-keeper\n",
		},
		{
			name: "a stopped gateway is started, then asked for its spec",
			observed: func(o *upObserved) {
				o.Gateways[shop].state, o.Gateways[shop].SpecHash = "exited", ""
			},
			want: "shop: start gateway demo-shop-gateway: exited\n" +
				"shop: wait for gateway demo-shop-gateway\n" +
				"shop: update gateway demo-shop-gateway if its spec changed: its spec is unknown while it is exited\n" +
				"users: keep gateway demo-users-gateway: up to date\n",
		},
		{
			name:     "a running gateway that did not answer is waited for",
			observed: func(o *upObserved) { o.Gateways[users].SpecHash = "" },
			want: "shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: wait for gateway demo-users-gateway\n" +
				"users: update gateway demo-users-gateway if its spec changed: it did not answer\n",
		},
		{
			name:     "a missing cell network",
			observed: func(o *upObserved) { delete(o.Networks, "demo_users") },
			want: "shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: create network demo_users\n" +
				"users: keep gateway demo-users-gateway: up to date\n",
		},
		{
			name:     "a missing mesh and volume",
			observed: func(o *upObserved) { delete(o.Networks, "demo_mesh"); o.Volumes = nil },
			want: "create network demo_mesh\n" +
				"create volume demo-shop-access-log\n" +
				"create volume demo_data\n" +
				"create volume demo-users-access-log\n" +
				"then\n" +
				"shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: keep gateway demo-users-gateway: up to date\n",
		},
		{
			// Its gateway was created when no cell used it: it joins the
			// mesh where it stands, and keeps serving.
			name:     "a cell another has begun to use",
			observed: func(o *upObserved) { o.Gateways[users].onMesh = false },
			want: "shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: connect gateway demo-users-gateway to network demo_mesh: a cell uses it or it uses one\n" +
				"users: keep gateway demo-users-gateway: up to date\n",
		},
		{
			name: "a stopped gateway joins the mesh before it starts",
			observed: func(o *upObserved) {
				o.Gateways[users].onMesh = false
				o.Gateways[users].state, o.Gateways[users].SpecHash = "exited", ""
			},
			want: "shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: connect gateway demo-users-gateway to network demo_mesh: a cell uses it or it uses one\n" +
				"users: start gateway demo-users-gateway: exited\n" +
				"users: wait for gateway demo-users-gateway\n" +
				"users: update gateway demo-users-gateway if its spec changed: its spec is unknown while it is exited\n",
		},
		{
			// A down stopped it and was interrupted before removing it:
			// the gateway creates no replica again, whatever its spec.
			name:     "a gateway a down stopped and left is recreated",
			observed: func(o *upObserved) { o.Gateways[users].Stopping = true },
			want: "remove gateway demo-users-gateway: stopped by a down that did not finish\n" +
				"then\n" +
				"shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: create gateway demo-users-gateway\n" +
				"users: connect gateway demo-users-gateway to network demo_mesh\n" +
				"users: start gateway demo-users-gateway\n" +
				"users: wait for gateway demo-users-gateway to start on 127.0.0.1:8082\n",
		},
		{
			name:     "the keeper is missing",
			observed: func(o *upObserved) { o.Keepers = nil },
			want: "shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: keep gateway demo-users-gateway: up to date\n" +
				"then\n" +
				"keeper: create keeper demo-keeper\n" +
				"keeper: start keeper demo-keeper\n",
		},
		{
			name:     "the keeper is stopped",
			observed: func(o *upObserved) { o.Keepers[0].State = "exited" },
			want: "shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: keep gateway demo-users-gateway: up to date\n" +
				"then\n" +
				"keeper: start keeper demo-keeper: exited\n",
		},
		{
			name: "an old keeper listed before the current one goes",
			observed: func(o *upObserved) {
				o.Keepers = append([]observedKeeper{{ID: "old-keeper-id", State: "running", Hash: "0ld"}}, o.Keepers...)
			},
			want: "shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: keep gateway demo-users-gateway: up to date\n" +
				"then\n" +
				"keeper: remove keeper demo-keeper: gateway image changed\n",
		},
		{
			name:     "an orphan cell is kept without --remove-orphans",
			observed: func(o *upObserved) { o.Gateways = append([]observedGateway{orphan}, o.Gateways...) },
			want: "keep orphan cell legacy: not in the spec, and --remove-orphans not given\n" +
				"then\n" +
				"shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: keep gateway demo-users-gateway: up to date\n",
		},
		{
			name:     "an orphan cell is removed first with --remove-orphans",
			desired:  func(d *upDesired) { d.RemoveOrphans = true },
			observed: func(o *upObserved) { o.Gateways = append([]observedGateway{orphan}, o.Gateways...) },
			want: "remove orphan cell legacy: not in the spec\n" +
				"then\n" +
				"shop: keep gateway demo-shop-gateway: up to date\n" +
				"users: keep gateway demo-users-gateway: up to date\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := desiredUp(testProject(), img, testImages(), "tok", false)
			o := convergedObserved(d)
			if tt.desired != nil {
				tt.desired(&d)
			}
			if tt.observed != nil {
				tt.observed(&o)
			}
			p, err := planUp(d, o)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if diff := cmp.Diff(tt.want, p.String()); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanUpMesh: only the gateways of cells that use another or are used
// by one join the mesh, and a project whose cells use none has no mesh.
func TestPlanUpMesh(t *testing.T) {
	lone := func(name string, port int) *cellspec.Cell {
		return &cellspec.Cell{Name: name, Gateway: cellspec.Gateway{Port: port}, Services: map[string]*cellspec.Service{
			"app": {Name: "app", Image: "app:1", Port: 8080, Replicas: 1},
		}}
	}
	tests := []struct {
		name string
		uses map[string][]string
		want string
	}{
		{
			name: "no cell uses another",
			want: "web: create network demo_web\n" +
				"web: create gateway demo-web-gateway\n" +
				"web: start gateway demo-web-gateway\n" +
				"web: wait for gateway demo-web-gateway to start on 127.0.0.1:8080\n" +
				"shop: create network demo_shop\n" +
				"shop: create gateway demo-shop-gateway\n" +
				"shop: start gateway demo-shop-gateway\n" +
				"shop: wait for gateway demo-shop-gateway to start on 127.0.0.1:8081\n" +
				"users: create network demo_users\n" +
				"users: create gateway demo-users-gateway\n" +
				"users: start gateway demo-users-gateway\n" +
				"users: wait for gateway demo-users-gateway to start on 127.0.0.1:8082\n",
		},
		{
			name: "shop uses users, web neither",
			uses: map[string][]string{"shop": {"users"}},
			want: "create network demo_mesh\n" +
				"then\n" +
				"web: create network demo_web\n" +
				"web: create gateway demo-web-gateway\n" +
				"web: start gateway demo-web-gateway\n" +
				"web: wait for gateway demo-web-gateway to start on 127.0.0.1:8080\n" +
				"shop: create network demo_shop\n" +
				"shop: create gateway demo-shop-gateway\n" +
				"shop: connect gateway demo-shop-gateway to network demo_mesh\n" +
				"shop: start gateway demo-shop-gateway\n" +
				"shop: wait for gateway demo-shop-gateway to start on 127.0.0.1:8081\n" +
				"users: create network demo_users\n" +
				"users: create gateway demo-users-gateway\n" +
				"users: connect gateway demo-users-gateway to network demo_mesh\n" +
				"users: start gateway demo-users-gateway\n" +
				"users: wait for gateway demo-users-gateway to start on 127.0.0.1:8082\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &cellspec.Project{Name: "demo", Cells: []*cellspec.Cell{lone("web", 8080), lone("shop", 8081), lone("users", 8082)}}
			for _, c := range p.Cells {
				c.Uses = tt.uses[c.Name]
			}
			d := desiredUp(p, "orchestro-gateway:1", nil, "tok", false)
			o := upObserved{Volumes: map[string]bool{}, Keepers: []observedKeeper{{ID: "keeper-id", State: "running", Hash: keeperHash(d.Image)}}}
			for _, v := range d.Volumes {
				o.Volumes[v] = true
			}
			plan, err := planUp(d, o)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if diff := cmp.Diff(tt.want, plan.String()); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanUpRefusesAnotherOwnersNetwork: a network of a wanted name that
// is not the project's stops Up before anything is changed, even the
// removal of orphans.
func TestPlanUpRefusesAnotherOwnersNetwork(t *testing.T) {
	d := desiredUp(testProject(), "orchestro-gateway:1", testImages(), "tok", true)
	o := upObserved{
		Networks: map[string]string{"demo_users": "other"},
		Gateways: []observedGateway{{gateway: gateway{id: "legacy-gw-id", cell: "legacy", state: "running"}}},
	}
	p, err := planUp(d, o)
	const want = "network demo_users exists but does not belong to project demo; remove it or choose another project name (-p)"
	if err == nil || err.Error() != want {
		t.Fatalf("plan error = %v, want %q", err, want)
	}
	if len(p.Ops) != 0 {
		t.Errorf("a refused plan holds operations:\n%s", p)
	}
}

// TestDesiredUp checks what the planner is given: peers by container name
// on the mesh, an admin port no cell serves on, each volume once, and the
// gateway hash that ignores what a spec update can change.
func TestDesiredUp(t *testing.T) {
	p := testProject()
	p.Cells[1].Gateway.Port = defaultAdminPort
	d := desiredUp(p, "gw:1", testImages(), "tok", false)
	if diff := cmp.Diff([]string{"demo-shop-access-log", "demo_data", "demo-users-access-log"}, d.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	shop := d.Gateways[0]
	if diff := cmp.Diff(map[string]string{"users": "demo-users-gateway:7700"}, shop.Peers); diff != "" {
		t.Errorf("peers of shop (-want +got):\n%s", diff)
	}
	for _, g := range d.Gateways {
		if g.AdminPort != defaultAdminPort-1 {
			t.Errorf("admin port of %s = %d, want %d", g.Cell.Name, g.AdminPort, defaultAdminPort-1)
		}
	}
	before := gatewayHash(shop, d.Image)
	shop.Cell.Services["orders"].Replicas = 5
	if gatewayHash(shop, d.Image) != before {
		t.Error("a replica count changes the gateway hash; it must go through a spec update")
	}
	shop.Cell.Gateway.Port = 9000
	if gatewayHash(shop, d.Image) == before {
		t.Error("a new data port leaves the gateway hash alone; the container must be recreated")
	}
}

// TestDesiredUpJournal: a cell with flows gets a journal volume, which its
// gateway mounts; gaining flows recreates the gateway.
func TestDesiredUpJournal(t *testing.T) {
	p := testProject()
	d := desiredUp(p, "gw:1", testImages(), "tok", false)
	before := gatewayHash(d.Gateways[0], d.Image)

	p.Cells[0].Flows = []*cellspec.Flow{{Name: "checkout"}}
	d = desiredUp(p, "gw:1", testImages(), "tok", false)
	if diff := cmp.Diff([]string{"demo-shop-journal", "demo-shop-access-log", "demo_data", "demo-users-access-log"}, d.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if gatewayHash(d.Gateways[0], d.Image) == before {
		t.Error("gaining flows leaves the gateway hash alone; the container must be recreated to mount its journal")
	}
	_, host, _, err := gatewayContainer(d.Gateways[0], d.Image, "tok", "h", "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"demo-shop-journal:" + api.JournalDir, "demo-shop-access-log:" + api.AccessLogDir}, host.Binds); diff != "" {
		t.Errorf("binds (-want +got):\n%s", diff)
	}
}

// TestDesiredUpAccessLog: a cell whose access log goes to files gets a
// volume for them, which its gateway mounts; one whose log goes to
// stdout or nowhere gets none; changing where it goes recreates the
// gateway, which sets its log up when it starts.
func TestDesiredUpAccessLog(t *testing.T) {
	p := testProject()
	d := desiredUp(p, "gw:1", testImages(), "tok", false)
	before := gatewayHash(d.Gateways[0], d.Image)
	_, host, _, err := gatewayContainer(d.Gateways[0], d.Image, "tok", "h", "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"demo-shop-access-log:" + api.AccessLogDir}, host.Binds); diff != "" {
		t.Errorf("binds (-want +got):\n%s", diff)
	}

	p.Cells[0].Gateway.AccessLog = &cellspec.AccessLog{To: cellspec.AccessLogStdout}
	d = desiredUp(p, "gw:1", testImages(), "tok", false)
	if diff := cmp.Diff([]string{"demo_data", "demo-users-access-log"}, d.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if _, host, _, _ = gatewayContainer(d.Gateways[0], d.Image, "tok", "h", ""); len(host.Binds) != 0 {
		t.Errorf("a gateway logging to stdout mounts %v", host.Binds)
	}
	stdout := gatewayHash(d.Gateways[0], d.Image)
	if stdout == before {
		t.Error("sending the access log to stdout leaves the gateway hash alone")
	}
	p.Cells[0].Gateway.AccessLog = &cellspec.AccessLog{To: cellspec.AccessLogStdout, Sample: 0.5}
	d = desiredUp(p, "gw:1", testImages(), "tok", false)
	if gatewayHash(d.Gateways[0], d.Image) == stdout {
		t.Error("sampling the access log leaves the gateway hash alone")
	}
	// Written as the default, it is the default.
	p.Cells[0].Gateway.AccessLog = &cellspec.AccessLog{To: cellspec.AccessLogFile}
	d = desiredUp(p, "gw:1", testImages(), "tok", false)
	if gatewayHash(d.Gateways[0], d.Image) != before {
		t.Error("access_log: file changes the hash of a gateway that writes files by default")
	}
}

// TestDesiredUpProcs: the gateway sets its procs when it starts, so a
// change recreates it.
func TestDesiredUpProcs(t *testing.T) {
	p := testProject()
	d := desiredUp(p, "gw:1", testImages(), "tok", false)
	before := gatewayHash(d.Gateways[0], d.Image)
	p.Cells[0].Gateway.Procs = 2
	d = desiredUp(p, "gw:1", testImages(), "tok", false)
	if gatewayHash(d.Gateways[0], d.Image) == before {
		t.Error("a change of procs leaves the gateway hash alone; the gateway sets them when it starts")
	}
}
