package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// fakeAdmin answers for the gateways of a fake engine as a gateway does:
// while its container runs, with the hash of the spec it was created with
// or was last given (a given spec survives a restart of the container, as
// the gateway keeps it in its state file).
type fakeAdmin struct {
	eng *enginetest.Fake

	mu     sync.Mutex
	given  map[string][]byte // by container ID
	silent map[string]bool   // cells whose gateway does not answer
	pushes []string
}

func newFakeAdmin(eng *enginetest.Fake) *fakeAdmin {
	return &fakeAdmin{eng: eng, given: map[string][]byte{}, silent: map[string]bool{}}
}

func (a *fakeAdmin) status(ctx context.Context, project, cell string) (api.CellStatus, error) {
	ins, err := a.eng.ContainerInspect(ctx, engine.GatewayName(project, cell))
	if err != nil {
		return api.CellStatus{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !ins.State.Running || a.silent[cell] {
		return api.CellStatus{}, fmt.Errorf("get status of cell %s: %w", cell, admin.ErrUnreachable)
	}
	raw := a.given[ins.ID]
	if raw == nil {
		for _, e := range ins.Config.Env {
			if v, ok := strings.CutPrefix(e, api.EnvSpec+"="); ok {
				raw = []byte(v)
			}
		}
	}
	var spec api.GatewaySpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return api.CellStatus{}, fmt.Errorf("decode spec of cell %s: %w", cell, err)
	}
	return api.CellStatus{Cell: cell, Gateway: "running", SpecHash: spec.Hash()}, nil
}

func (a *fakeAdmin) updateSpec(ctx context.Context, project, cell string, spec []byte) error {
	ins, err := a.eng.ContainerInspect(ctx, engine.GatewayName(project, cell))
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.given[ins.ID] = spec
	a.pushes = append(a.pushes, cell)
	return nil
}

// newFakeClient returns a client over a fake engine holding the images of
// testProject, with fake gateways behind it.
func newFakeClient(t *testing.T) (*Client, *enginetest.Fake, *fakeAdmin) {
	t.Helper()
	eng := enginetest.NewFake()
	eng.AddImage("orchestro-gateway:1", nil)
	eng.AddImage("orders:1", nil)
	eng.AddImage("accounts:1", nil)
	c := NewClientWithEngine(eng)
	fa := newFakeAdmin(eng)
	c.gwAdmin = fa
	return c, eng, fa
}

// changes returns the calls that change the engine, leaving out lists,
// inspections and logs.
func changes(calls []string) []string {
	var out []string
	for _, call := range calls {
		method, _, _ := strings.Cut(call, " ")
		if strings.HasSuffix(method, "List") || strings.HasSuffix(method, "Inspect") || strings.HasSuffix(method, "Logs") {
			continue
		}
		out = append(out, call)
	}
	return out
}

// planFor observes the fake engine and plans testProject with the given
// changes to what is desired.
func planFor(t *testing.T, c *Client, change func(d *upDesired)) upPlan {
	t.Helper()
	p := testProject()
	o, err := c.observeUp(t.Context(), p)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	d := desiredUp(p, "orchestro-gateway:1", testImages(), "tok", false)
	if change != nil {
		change(&d)
	}
	plan, err := planUp(d, o)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return plan
}

// TestExecuteUp carries out the plan of a fresh project on the fake
// engine, then checks that Up's cycle closes on itself: what was created
// is observed as converged; a changed spec is pushed to the running
// gateway only; a stopped gateway is started and, already holding that
// spec, is not given it again.
func TestExecuteUp(t *testing.T) {
	ctx := t.Context()
	c, eng, fa := newFakeClient(t)

	var progress progressLog
	if err := c.executeUp(ctx, planFor(t, c, nil), &progress); err != nil {
		t.Fatalf("execute fresh plan: %v", err)
	}
	wantCalls := []string{
		"NetworkCreate demo_mesh",
		"VolumeCreate demo_data",
		"ContainerCreate demo-keeper",
		"ContainerStart demo-keeper",
		"NetworkCreate demo_shop",
		"ContainerCreate demo-shop-gateway",
		"NetworkConnect demo_mesh demo-shop-gateway",
		"ContainerStart demo-shop-gateway",
		"NetworkCreate demo_users",
		"ContainerCreate demo-users-gateway",
		"NetworkConnect demo_mesh demo-users-gateway",
		"ContainerStart demo-users-gateway",
	}
	if diff := cmp.Diff(wantCalls, changes(eng.Calls())); diff != "" {
		t.Errorf("engine calls (-want +got):\n%s", diff)
	}
	wantProgress := []string{
		"start gateway demo-shop-gateway",
		"start start gateway demo-shop-gateway on 127.0.0.1:8081",
		"done gateway demo-shop-gateway <nil>",
		"start gateway demo-users-gateway",
		"start start gateway demo-users-gateway on 127.0.0.1:8082",
		"done gateway demo-users-gateway <nil>",
	}
	if diff := cmp.Diff(wantProgress, progress.lines); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	ins, err := eng.ContainerInspect(ctx, "demo-shop-gateway")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"demo_mesh", "demo_shop"}, slices.Sorted(maps.Keys(ins.NetworkSettings.Networks))); diff != "" {
		t.Errorf("networks of the shop gateway (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"shop", "users"}, ins.NetworkSettings.Networks["demo_shop"].Aliases); diff != "" {
		t.Errorf("aliases of the shop gateway on its cell network (-want +got):\n%s", diff)
	}

	// What was created is what is wanted.
	if got := planFor(t, c, nil).String(); got != "keep gateway demo-shop-gateway: up to date\nkeep gateway demo-users-gateway: up to date\n" {
		t.Errorf("plan after the fresh plan ran:\n%s", got)
	}

	// A changed spec goes to the running gateway; nothing is recreated.
	eng.ResetCalls()
	progress = progressLog{}
	more := func(d *upDesired) { d.Gateways[0].Cell.Services["orders"].Replicas = 3 }
	plan := planFor(t, c, more)
	if err := c.executeUp(ctx, plan, &progress); err != nil {
		t.Fatalf("execute spec update: %v", err)
	}
	if got := changes(eng.Calls()); len(got) != 0 {
		t.Errorf("a spec update changed containers: %q", got)
	}
	if diff := cmp.Diff([]string{"shop"}, fa.pushes); diff != "" {
		t.Errorf("specs pushed (-want +got):\n%s", diff)
	}
	if !strings.Contains(strings.Join(progress.lines, "\n"), "start update gateway demo-shop-gateway") {
		t.Errorf("the update was not reported: %q", progress.lines)
	}

	// A stopped gateway is started; it kept its spec, so it gets none.
	if err := eng.ContainerStop(ctx, "demo-shop-gateway", container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	eng.ResetCalls()
	progress = progressLog{}
	plan = planFor(t, c, more)
	if !strings.Contains(plan.String(), "update gateway demo-shop-gateway if its spec changed") {
		t.Fatalf("plan for a stopped gateway:\n%s", plan)
	}
	if err := c.executeUp(ctx, plan, &progress); err != nil {
		t.Fatalf("execute restart: %v", err)
	}
	if diff := cmp.Diff([]string{"ContainerStart demo-shop-gateway"}, changes(eng.Calls())); diff != "" {
		t.Errorf("engine calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"shop"}, fa.pushes); diff != "" {
		t.Errorf("specs pushed after the restart (-want +got):\n%s", diff)
	}
	wantProgress = []string{
		"start gateway demo-shop-gateway", "done gateway demo-shop-gateway <nil>",
		"start gateway demo-users-gateway", "done gateway demo-users-gateway <nil>",
	}
	if diff := cmp.Diff(wantProgress, progress.lines); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
}

// TestExecuteUpStopsAtTheFailure: a failing call ends the plan there, with
// an error naming the operation and its object, reported on the gateway's
// step; nothing after it runs; and what was created is all labelled, so
// Down removes every bit of it.
func TestExecuteUpStopsAtTheFailure(t *testing.T) {
	ctx := t.Context()
	c, eng, _ := newFakeClient(t)
	boom := errors.New("boom")
	eng.SetError("NetworkConnect", boom)

	var progress progressLog
	err := c.executeUp(ctx, planFor(t, c, nil), &progress)
	if !errors.Is(err, boom) || err.Error() != "connect gateway demo-shop-gateway to the mesh: boom" {
		t.Fatalf("execute = %v, want the failed connection of the shop gateway", err)
	}
	wantCalls := []string{
		"NetworkCreate demo_mesh",
		"VolumeCreate demo_data",
		"ContainerCreate demo-keeper",
		"ContainerStart demo-keeper",
		"NetworkCreate demo_shop",
		"ContainerCreate demo-shop-gateway",
		"NetworkConnect demo_mesh demo-shop-gateway",
	}
	if diff := cmp.Diff(wantCalls, changes(eng.Calls())); diff != "" {
		t.Errorf("engine calls (-want +got):\n%s", diff)
	}
	wantProgress := []string{
		"start gateway demo-shop-gateway",
		"done gateway demo-shop-gateway connect gateway demo-shop-gateway to the mesh: boom",
	}
	if diff := cmp.Diff(wantProgress, progress.lines); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}

	eng.SetError("NetworkConnect", nil)
	if err := c.Down(ctx, "demo", api.DownOptions{Volumes: true}); err != nil {
		t.Fatalf("down: %v", err)
	}
	containers, err := eng.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	nets, err := eng.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vols, err := eng.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, ct := range containers {
		left = append(left, "container "+engine.ContainerName(ct.Names))
	}
	for _, n := range nets {
		if n.Name != "bridge" && n.Name != "host" && n.Name != "none" {
			left = append(left, "network "+n.Name)
		}
	}
	for _, v := range vols.Volumes {
		left = append(left, "volume "+v.Name)
	}
	if len(left) != 0 {
		t.Errorf("down after a failed up left %s", strings.Join(left, ", "))
	}
}

// TestExecuteUpRemovesOrphans: a kept orphan is a warning; a removed one
// is a step of its own, and its gateway and replicas go.
func TestExecuteUpRemovesOrphans(t *testing.T) {
	ctx := t.Context()
	c, eng, _ := newFakeClient(t)
	if err := c.executeUp(ctx, planFor(t, c, nil), api.Discard{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"demo-legacy-gateway", "demo-legacy-web-1"} {
		labels := engine.ReplicaLabels("demo", "legacy", "web", 1, "h")
		if strings.HasSuffix(name, "gateway") {
			labels = map[string]string{engine.LabelProject: "demo", engine.LabelCell: "legacy", engine.LabelRole: engine.RoleGateway}
		}
		if _, err := eng.ContainerCreate(ctx, &container.Config{Image: "orders:1", Labels: labels}, nil, nil, nil, name); err != nil {
			t.Fatal(err)
		}
	}

	var progress progressLog
	if err := c.executeUp(ctx, planFor(t, c, nil), &progress); err != nil {
		t.Fatal(err)
	}
	if got := progress.lines[0]; got != "warning: cell legacy of project demo is not in the spec any more; run with --remove-orphans to remove it" {
		t.Errorf("first progress line = %q, want the orphan warning", got)
	}

	progress = progressLog{}
	eng.ResetCalls()
	plan := planFor(t, c, func(d *upDesired) { d.RemoveOrphans = true })
	if err := c.executeUp(ctx, plan, &progress); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ContainerRemove demo-legacy-gateway", "ContainerRemove demo-legacy-web-1"}, changes(eng.Calls())); diff != "" {
		t.Errorf("engine calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"start remove orphan cell legacy", "done remove orphan cell legacy <nil>"}, progress.lines[:2]); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
}

// TestObserveUp checks the snapshot: gateways with the spec the running
// ones report, networks of the wanted names only (whoever owns them),
// the project's volumes, and its keepers in the engine's order.
func TestObserveUp(t *testing.T) {
	ctx := t.Context()
	c, eng, fa := newFakeClient(t)
	d := desiredUp(testProject(), "orchestro-gateway:1", testImages(), "tok", false)
	plan, err := planUp(d, upObserved{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.executeUp(ctx, plan, api.Discard{}); err != nil {
		t.Fatal(err)
	}
	// users does not answer; a stale keeper, another owner's network and
	// volumes that are not the project's are around.
	fa.silent["users"] = true
	if _, err := eng.ContainerCreate(ctx, &container.Config{Image: "orchestro-gateway:1", Labels: map[string]string{
		engine.LabelProject: "demo", engine.LabelRole: engine.RoleKeeper, engine.LabelConfigHash: "0ld",
	}}, nil, nil, nil, "demo-keeper-old"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ name, project string }{{"demo_shopping", "demo"}, {"demo_mesh2", "other"}} {
		if _, err := eng.NetworkCreate(ctx, n.name, network.CreateOptions{Labels: map[string]string{engine.LabelProject: n.project}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []volume.CreateOptions{{Name: "demo_cache"}, {Name: "other_data", Labels: map[string]string{engine.LabelProject: "other"}}} {
		if _, err := eng.VolumeCreate(ctx, v); err != nil {
			t.Fatal(err)
		}
	}

	o, err := c.observeUp(ctx, testProject())
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	type gw struct{ Cell, State, Hash, Token, SpecHash string }
	var gws []gw
	for _, g := range o.Gateways {
		gws = append(gws, gw{g.cell, g.state, g.hash, g.token, g.SpecHash})
	}
	wantGws := []gw{
		{"shop", "running", gatewayHash(d.Gateways[0], d.Image), "tok", d.Gateways[0].Hash()},
		{"users", "running", gatewayHash(d.Gateways[1], d.Image), "tok", ""},
	}
	if diff := cmp.Diff(wantGws, gws); diff != "" {
		t.Errorf("gateways (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"demo_mesh": "demo", "demo_shop": "demo", "demo_users": "demo"}, o.Networks); diff != "" {
		t.Errorf("networks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]bool{"demo_data": true}, o.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	var keepers []string
	for _, k := range o.Keepers {
		keepers = append(keepers, k.State+" "+k.Hash)
	}
	if diff := cmp.Diff([]string{"created 0ld", "running " + keeperHash(d.Image)}, keepers); diff != "" {
		t.Errorf("keepers, newest first (-want +got):\n%s", diff)
	}
	if o.token() != "tok" {
		t.Errorf("token = %q, want the gateways' own", o.token())
	}
}

// TestUpOnFakeEngine runs Up itself twice: the first creates the project
// and reports it as Up always has; the second changes nothing.
func TestUpOnFakeEngine(t *testing.T) {
	ctx := t.Context()
	c, eng, _ := newFakeClient(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c.now = func() time.Time { return now }
	opts := api.UpOptions{GatewayImage: "orchestro-gateway:1"}

	var progress progressLog
	opts.Progress = &progress
	if err := c.Up(ctx, testProject(), opts); err != nil {
		t.Fatalf("up: %v", err)
	}
	want := []string{
		"start gateway image",
		"done gateway image orchestro-gateway:1 <nil>",
		"start image orders:1 for shop/orders",
		"done image orders:1 for shop/orders <nil>",
		"start image accounts:1 for users/accounts",
		"done image accounts:1 for users/accounts <nil>",
		"start gateway demo-shop-gateway",
		"start start gateway demo-shop-gateway on 127.0.0.1:8081",
		"done gateway demo-shop-gateway <nil>",
		"start gateway demo-users-gateway",
		"start start gateway demo-users-gateway on 127.0.0.1:8082",
		"done gateway demo-users-gateway <nil>",
		"project demo started in 0s",
	}
	if diff := cmp.Diff(want, progress.lines); diff != "" {
		t.Errorf("progress of the first up (-want +got):\n%s", diff)
	}
	ins, err := eng.ContainerInspect(ctx, "demo-users-gateway")
	if err != nil {
		t.Fatal(err)
	}
	token := ""
	for _, e := range ins.Config.Env {
		if v, ok := strings.CutPrefix(e, api.EnvToken+"="); ok {
			token = v
		}
	}
	if len(token) != 48 {
		t.Errorf("the gateway's token is %q, want 48 hex digits", token)
	}

	eng.ResetCalls()
	progress = progressLog{}
	if err := c.Up(ctx, testProject(), opts); err != nil {
		t.Fatalf("second up: %v", err)
	}
	if got := changes(eng.Calls()); len(got) != 0 {
		t.Errorf("the second up changed the engine: %q", got)
	}
	ins, err = eng.ContainerInspect(ctx, "demo-users-gateway")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ins.Config.Env, api.EnvToken+"="+token) {
		t.Error("the second up changed the token")
	}
	left, err := eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"=demo"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 3 {
		t.Errorf("project has %d containers, want 2 gateways and the keeper", len(left))
	}
}
