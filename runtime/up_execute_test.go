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
	"testing/synctest"
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
	// stopped holds the cells whose gateway was stopped (Down); onStop,
	// when set, runs first and its error is the stop's.
	stopped map[string]bool
	onStop  func(ctx context.Context, cell string) error
}

func newFakeAdmin(eng *enginetest.Fake) *fakeAdmin {
	return &fakeAdmin{eng: eng, given: map[string][]byte{}, silent: map[string]bool{}, stopped: map[string]bool{}}
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

// stop stops a cell as its gateway does (see gatewayStopper): from then
// on, it counts as drained.
func (a *fakeAdmin) stop(ctx context.Context, g gateway) error {
	a.mu.Lock()
	silent, onStop := a.silent[g.cell], a.onStop
	a.mu.Unlock()
	if onStop != nil {
		if err := onStop(ctx, g.cell); err != nil {
			return err
		}
	}
	if silent {
		return fmt.Errorf("stop cell %s: %w", g.cell, admin.ErrUnreachable)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped[g.cell] = true
	return nil
}

// isStopped reports whether the gateway of cell was stopped.
func (a *fakeAdmin) isStopped(cell string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stopped[cell]
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
	// The mesh and the volumes first, then each cell, its network and its
	// gateway, in a chain of its own, then the keeper.
	checkPhases(t, changes(eng.Calls()),
		[][]string{{"NetworkCreate demo_mesh"}, {"VolumeCreate demo-shop-access-log"}, {"VolumeCreate demo_data"}, {"VolumeCreate demo-users-access-log"}},
		[][]string{
			{"NetworkCreate demo_shop", "ContainerCreate demo-shop-gateway", "NetworkConnect demo_mesh demo-shop-gateway", "ContainerStart demo-shop-gateway"},
			{"NetworkCreate demo_users", "ContainerCreate demo-users-gateway", "NetworkConnect demo_mesh demo-users-gateway", "ContainerStart demo-users-gateway"},
		},
		[][]string{{"ContainerCreate demo-keeper", "ContainerStart demo-keeper"}})
	checkSteps(t, progress.lines, freshGatewaySteps)
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
	if got := planFor(t, c, nil).String(); got != "shop: keep gateway demo-shop-gateway: up to date\nusers: keep gateway demo-users-gateway: up to date\n" {
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
	checkSteps(t, progress.lines, map[string][]string{
		"shop":  {"start gateway demo-shop-gateway", "done gateway demo-shop-gateway <nil>"},
		"users": {"start gateway demo-users-gateway", "done gateway demo-users-gateway <nil>"},
	})
}

// TestExecuteUpRunsCellsAtOnce: the cells of a fresh project, which use
// one another but need nothing of each other to start, are created at
// once, their networks and their gateways.
func TestExecuteUpRunsCellsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, eng, _ := newFakeClient(t)
		var mu sync.Mutex
		var alone []string
		// barrier returns a hook action that waits until n calls of a
		// group have begun.
		barrier := func(n int) func(call string) {
			all := make(chan struct{})
			return func(call string) {
				mu.Lock()
				if n--; n == 0 {
					close(all)
				}
				mu.Unlock()
				select {
				case <-all:
				case <-time.After(time.Minute):
					mu.Lock()
					alone = append(alone, call)
					mu.Unlock()
				}
			}
		}
		creates, networks := barrier(2), barrier(2)
		eng.SetCallHook(func(method, target string) error {
			switch {
			case method == "ContainerCreate" && target != "demo-keeper":
				creates(method + " " + target)
			case method == "NetworkCreate" && target != "demo_mesh":
				networks(method + " " + target)
			}
			return nil
		})
		if err := c.executeUp(t.Context(), planFor(t, c, nil), api.Discard{}); err != nil {
			t.Fatal(err)
		}
		if len(alone) > 0 {
			t.Errorf("made one after the other: %q", alone)
		}
	})
}

// checkPhases checks engine calls against phases of chains: every call
// of a phase comes before any call of the next, the calls of a chain
// come in its order, and there is no other call.
func checkPhases(t *testing.T, got []string, phases ...[][]string) {
	t.Helper()
	var want []string
	pos := map[string]int{}
	for i, call := range got {
		pos[call] = i
	}
	lastOfPhase := -1
	for _, phase := range phases {
		first, last := len(got), -1
		for _, chain := range phase {
			prev := -1
			for _, call := range chain {
				want = append(want, call)
				i, ok := pos[call]
				if !ok {
					continue
				}
				if i < prev {
					t.Errorf("%s came before the call it follows in its chain %q", call, chain)
				}
				prev = i
				first, last = min(first, i), max(last, i)
			}
		}
		if first < lastOfPhase {
			t.Errorf("phase %q began before the phase before it ended: %q", phase, got)
		}
		lastOfPhase = max(lastOfPhase, last)
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(got))); diff != "" {
		t.Errorf("engine calls (-want +got):\n%s", diff)
	}
}

// checkSteps checks progress lines by cell: the lines naming each cell's
// gateway are the wanted ones, in order, and no other line is there.
func checkSteps(t *testing.T, lines []string, want map[string][]string) {
	t.Helper()
	n := 0
	for cell, wantLines := range want {
		var got []string
		for _, l := range lines {
			if strings.Contains(l, "demo-"+cell+"-gateway") {
				got = append(got, l)
			}
		}
		n += len(got)
		if diff := cmp.Diff(wantLines, got); diff != "" {
			t.Errorf("progress of cell %s (-want +got):\n%s", cell, diff)
		}
	}
	if n != len(lines) {
		t.Errorf("progress has lines about no gateway expected: %q", lines)
	}
}

// TestExecuteUpStopsAtTheFailure: a failing call ends the plan there,
// with an error naming the operation and its object, reported on the
// gateway's step; the other chains of its phase stop, no later phase
// starts, every step begun is ended; and what was created is all
// labelled, so Down removes every bit of it.
func TestExecuteUpStopsAtTheFailure(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		// fail is the call that fails, as the fake records it.
		fail    string
		wantErr string
		// wantSteps are the progress lines of the cells whose steps are
		// known; those of a cell not listed may have any ending.
		wantSteps map[string][]string
		// noCalls are calls that must not have been made.
		noCalls []string
	}{
		{
			name:    "a gateway's call",
			fail:    "NetworkConnect demo_mesh demo-shop-gateway",
			wantErr: "connect gateway demo-shop-gateway to the mesh: boom",
			wantSteps: map[string][]string{"shop": {
				"start gateway demo-shop-gateway",
				"done gateway demo-shop-gateway connect gateway demo-shop-gateway to the mesh: boom",
			}},
			noCalls: []string{"ContainerStart demo-shop-gateway", "ContainerCreate demo-keeper"},
		},
		{
			name:      "the mesh, before any gateway",
			fail:      "NetworkCreate demo_mesh",
			wantErr:   "create network demo_mesh: boom",
			wantSteps: map[string][]string{"shop": nil, "users": nil},
			noCalls:   []string{"NetworkCreate demo_shop", "ContainerCreate demo-shop-gateway", "ContainerCreate demo-users-gateway", "ContainerCreate demo-keeper"},
		},
		{
			name:      "a cell's network, before its gateway",
			fail:      "NetworkCreate demo_users",
			wantErr:   "create network demo_users: boom",
			wantSteps: map[string][]string{"users": nil},
			noCalls:   []string{"ContainerCreate demo-users-gateway", "ContainerCreate demo-keeper"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			c, eng, _ := newFakeClient(t)
			eng.SetCallHook(func(method, target string) error {
				if method+" "+target == tt.fail {
					return boom
				}
				return nil
			})

			var progress progressLog
			err := c.executeUp(ctx, planFor(t, c, nil), &progress)
			if !errors.Is(err, boom) || err.Error() != tt.wantErr {
				t.Fatalf("execute = %v, want %q", err, tt.wantErr)
			}
			calls := changes(eng.Calls())
			for _, call := range tt.noCalls {
				if slices.Contains(calls, call) {
					t.Errorf("%s was called after the failure: %q", call, calls)
				}
			}
			for cell, want := range tt.wantSteps {
				var got []string
				for _, l := range progress.lines {
					if strings.Contains(l, "demo-"+cell+"-gateway") {
						got = append(got, l)
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("progress of cell %s (-want +got):\n%s", cell, diff)
				}
			}
			// Every step begun was ended.
			open := map[string]bool{}
			for _, l := range progress.lines {
				if rest, ok := strings.CutPrefix(l, "start gateway "); ok {
					open[rest] = true
				}
				for gw := range open {
					if strings.HasPrefix(l, "done gateway "+gw+" ") {
						delete(open, gw)
					}
				}
			}
			if len(open) != 0 {
				t.Errorf("steps left open: %v in %q", open, progress.lines)
			}

			eng.SetCallHook(nil)
			if err := c.Down(ctx, "demo", api.DownOptions{Volumes: true}); err != nil {
				t.Fatalf("down: %v", err)
			}
			if left := leftovers(t, eng); len(left) != 0 {
				t.Errorf("down after a failed up left %s", strings.Join(left, ", "))
			}
		})
	}
}

// leftovers lists the containers, networks (but the predefined ones) and
// volumes the fake engine holds.
func leftovers(t *testing.T, eng *enginetest.Fake) []string {
	t.Helper()
	ctx := t.Context()
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
	return left
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
	if diff := cmp.Diff(map[string]bool{"demo_data": true, "demo-shop-access-log": true, "demo-users-access-log": true}, o.Volumes); diff != "" {
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
	// The images come first, found at once, each step begun before it
	// ends; then the gateways' steps, which run at once; then the summary.
	images := [][2]string{
		{"start gateway image", "done gateway image orchestro-gateway:1 <nil>"},
		{"start image orders:1 for shop/orders", "done image orders:1 for shop/orders <nil>"},
		{"start image accounts:1 for users/accounts", "done image accounts:1 for users/accounts <nil>"},
	}
	lines := progress.lines
	if len(lines) != 2*len(images)+7 {
		t.Fatalf("progress of the first up: %q", lines)
	}
	imageLines := lines[:2*len(images)]
	for _, step := range images {
		start, done := slices.Index(imageLines, step[0]), slices.Index(imageLines, step[1])
		if start < 0 || done < start {
			t.Errorf("progress of the first up: want %q, then %q, among %q", step[0], step[1], imageLines)
		}
	}
	if got, want := lines[len(lines)-1], "project demo started in 0s"; got != want {
		t.Errorf("progress of the first up ends with %q, want %q", got, want)
	}
	checkSteps(t, lines[2*len(images):len(lines)-1], freshGatewaySteps)
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

// freshGatewaySteps are the progress steps of each cell of the test
// project when its gateway is created and started.
var freshGatewaySteps = map[string][]string{
	"shop": {
		"start gateway demo-shop-gateway",
		"start start gateway demo-shop-gateway on 127.0.0.1:8081",
		"done gateway demo-shop-gateway <nil>",
	},
	"users": {
		"start gateway demo-users-gateway",
		"start start gateway demo-users-gateway on 127.0.0.1:8082",
		"done gateway demo-users-gateway <nil>",
	},
}

// waitProgress is a progress log that says when the wait for the project
// to be healthy began.
type waitProgress struct {
	progressLog
	once    sync.Once
	waiting chan struct{}
}

func (p *waitProgress) Start(id, text string) {
	if id == "wait" {
		p.once.Do(func() { close(p.waiting) })
	}
	p.progressLog.Start(id, text)
}

func (p *waitProgress) Done(id, text string, err error) {
	if id == "wait" {
		p.once.Do(func() { close(p.waiting) })
	}
	p.progressLog.Done(id, text, err)
}

// TestUpWaitsWhileTheKeeperStarts: the keeper is no part of the cells, so
// up --wait waits for their replicas while the engine starts it, and
// returns once both are done. (The keeper's start used to come first: on
// a busy engine it took as long as a replica's.)
func TestUpWaitsWhileTheKeeperStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, eng, _ := newFakeClient(t)
		progress := &waitProgress{waiting: make(chan struct{})}
		eng.SetCallHook(func(method, target string) error {
			if method == "ContainerStart" && target == engine.KeeperName("demo") {
				<-progress.waiting
			}
			return nil
		})
		// The fake's gateways serve no status, so the wait runs out; the
		// keeper must have started all the same.
		opts := api.UpOptions{GatewayImage: "orchestro-gateway:1", Wait: true, WaitTimeout: time.Second, Progress: progress}
		if err := c.Up(t.Context(), testProject(), opts); !errors.Is(err, api.ErrWaitTimeout) {
			t.Fatalf("up: %v, want the wait to run out", err)
		}
		ins, err := eng.ContainerInspect(t.Context(), engine.KeeperName("demo"))
		if err != nil {
			t.Fatal(err)
		}
		if !ins.State.Running {
			t.Errorf("up returned with the keeper %s", ins.State.Status)
		}
	})
}

// TestUpStopsAtAnImageItCannotHave: the images are found at once; one
// that can be neither found nor pulled fails Up with its service named,
// before any container is created, and the networks made meanwhile are
// removed.
func TestUpStopsAtAnImageItCannotHave(t *testing.T) {
	eng := enginetest.NewFake()
	eng.AddImage("orchestro-gateway:1", nil)
	eng.AddImage("orders:1", nil)
	c := NewClientWithEngine(eng)
	c.gwAdmin = newFakeAdmin(eng)
	err := c.Up(t.Context(), testProject(), api.UpOptions{GatewayImage: "orchestro-gateway:1"})
	if err == nil || !strings.Contains(err.Error(), "users/accounts") || !strings.Contains(err.Error(), "accounts:1") {
		t.Fatalf("up: %v, want the error of users/accounts's image", err)
	}
	for _, call := range eng.Calls() {
		if strings.HasPrefix(call, "Container") && !strings.HasPrefix(call, "ContainerList") || strings.HasPrefix(call, "VolumeCreate") {
			t.Errorf("up failed at an image and still called %s", call)
		}
	}
	nets, err := eng.NetworkList(t.Context(), network.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		if n.Labels[engine.LabelProject] == "demo" {
			t.Errorf("up failed at an image and left network %s", n.Name)
		}
	}
}

// TestUpCreatesNetworksWhileImagesBuild: the networks need no image, so
// Up creates them while it finds the images (the engine creates networks
// one at a time, and a cold up waits for them).
func TestUpCreatesNetworksWhileImagesBuild(t *testing.T) {
	c, eng, _ := newFakeClient(t)
	created := make(chan struct{})
	var once sync.Once
	eng.SetCallHook(func(method, target string) error {
		switch {
		case method == "NetworkCreate":
			once.Do(func() { close(created) })
		case method == "ImageInspect" && target == "orchestro-gateway:1":
			select {
			case <-created:
			case <-time.After(5 * time.Second):
				return errors.New("no network was created while the gateway image was looked up")
			}
		}
		return nil
	})
	if err := c.Up(t.Context(), testProject(), api.UpOptions{GatewayImage: "orchestro-gateway:1"}); err != nil {
		t.Fatalf("up: %v", err)
	}
}
