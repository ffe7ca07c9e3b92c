package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// TestDownRemovesEverythingByLabel builds the leftovers of an `up` killed
// half-way (a keeper, a gateway that never answered, replicas, networks and
// a volume) and checks that Down removes all of them, the keeper first,
// and leaves other projects alone.
func TestDownRemovesEverythingByLabel(t *testing.T) {
	ctx := context.Background()
	eng := enginetest.NewFake()
	eng.AddImage("img:1", nil)
	eng.AddImage("demo-shop-orders:abc", map[string]string{engine.LabelProject: "demo", engine.LabelManaged: "true"})
	eng.AddImage("other-shop-orders:abc", map[string]string{engine.LabelProject: "other", engine.LabelManaged: "true"})
	mk := func(name string, labels map[string]string) {
		t.Helper()
		resp, err := eng.ContainerCreate(ctx, &container.Config{Image: "img:1", Labels: labels}, &container.HostConfig{}, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("demo-keeper", map[string]string{engine.LabelProject: "demo", engine.LabelRole: engine.RoleKeeper})
	mk("demo-shop-gateway", map[string]string{engine.LabelProject: "demo", engine.LabelCell: "shop", engine.LabelRole: engine.RoleGateway})
	mk("demo-shop-orders-1", engine.ReplicaLabels("demo", "shop", "orders", 1, "h"))
	mk("demo-users-accounts-1", engine.ReplicaLabels("demo", "users", "accounts", 1, "h"))
	mk("other-shop-orders-1", engine.ReplicaLabels("other", "shop", "orders", 1, "h"))
	for _, n := range []string{"demo_mesh", "demo_shop"} {
		if _, err := eng.NetworkCreate(ctx, n, network.CreateOptions{Labels: map[string]string{engine.LabelProject: "demo"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eng.VolumeCreate(ctx, volume.CreateOptions{Name: "demo_data", Labels: map[string]string{engine.LabelProject: "demo"}}); err != nil {
		t.Fatal(err)
	}
	eng.ResetCalls()

	c := NewClientWithEngine(eng)
	var progress progressLog
	if err := c.Down(ctx, "demo", api.DownOptions{Volumes: true, Images: true, Progress: &progress}); err != nil {
		t.Fatalf("down: %v", err)
	}
	for ref, want := range map[string]bool{"demo-shop-orders:abc": false, "other-shop-orders:abc": true, "img:1": true} {
		if _, err := eng.ImageInspect(ctx, ref); (err == nil) != want {
			t.Errorf("image %s present = %v, want %v", ref, err == nil, want)
		}
	}
	left, err := eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"=demo"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d containers left", len(left))
	}
	nets, _ := eng.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"=demo"))})
	vols, _ := eng.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"=demo"))})
	if len(nets) != 0 || len(vols.Volumes) != 0 {
		t.Errorf("left %d networks and %d volumes", len(nets), len(vols.Volumes))
	}
	other, _ := eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"=other"))})
	if len(other) != 1 {
		t.Errorf("another project's container was touched")
	}
	var removes []string
	for _, call := range eng.Calls() {
		if strings.HasPrefix(call, "ContainerRemove") {
			removes = append(removes, call)
		}
	}
	if len(removes) == 0 || !strings.Contains(removes[0], "keeper") {
		t.Errorf("the keeper must go first; removals: %q", removes)
	}
	// Down is idempotent.
	progress = progressLog{}
	if err := c.Down(ctx, "demo", api.DownOptions{Volumes: true, Progress: &progress}); err != nil {
		t.Fatalf("second down: %v", err)
	}
	if !strings.Contains(strings.Join(progress.lines, "\n"), "nothing to remove") {
		t.Errorf("second down said %q", progress.lines)
	}
}

// TestDownRemovesAccessLogs: the volumes of the gateways' access logs go
// with the gateways, as a container's logs do; the project's other
// volumes, and another project's, stay unless --volumes says otherwise.
func TestDownRemovesAccessLogs(t *testing.T) {
	ctx := context.Background()
	eng := enginetest.NewFake()
	for name, project := range map[string]string{
		"demo-shop-access-log":     "demo",
		"demo-big-cell-access-log": "demo",
		"demo_data":                "demo",
		"demo-shop-journal":        "demo",
		"other-shop-access-log":    "other",
	} {
		if _, err := eng.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: map[string]string{engine.LabelProject: project}}); err != nil {
			t.Fatal(err)
		}
	}
	c := NewClientWithEngine(eng)
	if err := c.Down(ctx, "demo", api.DownOptions{}); err != nil {
		t.Fatalf("down: %v", err)
	}
	vols, err := eng.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, v := range vols.Volumes {
		left = append(left, v.Name)
	}
	slices.Sort(left)
	if diff := cmp.Diff([]string{"demo-shop-journal", "demo_data", "other-shop-access-log"}, left); diff != "" {
		t.Errorf("volumes left (-want +got):\n%s", diff)
	}
}

// TestDownOrder checks the order that makes Down safe while it does what
// it can at once: the keeper is gone before any gateway is removed; every
// gateway is asked to stop at once; the replicas of a cell whose gateway
// drained are stopped (with a grace period) and removed only once it
// did, and those of a cell whose gateway did not answer only once that
// gateway is gone; a replica created as its gateway went is removed too;
// nothing is left, and a second Down finds nothing.
func TestDownOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		c, eng, fa := newFakeClient(t)
		if err := c.executeUp(ctx, planFor(t, c, nil), api.Discard{}); err != nil {
			t.Fatal(err)
		}
		run := func(name string, labels map[string]string, net string) {
			t.Helper()
			var nets *network.NetworkingConfig
			if net != "" {
				nets = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{net: {}}}
			}
			resp, err := eng.ContainerCreate(ctx, &container.Config{Image: "orders:1", Labels: labels}, &container.HostConfig{}, nets, nil, name)
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		// A third cell, legacy, with a gateway of its own; users' gateway
		// does not answer.
		if _, err := eng.NetworkCreate(ctx, "demo_legacy", network.CreateOptions{Labels: map[string]string{engine.LabelProject: "demo", engine.LabelCell: "legacy"}}); err != nil {
			t.Fatal(err)
		}
		run("demo-legacy-gateway", map[string]string{engine.LabelProject: "demo", engine.LabelCell: "legacy", engine.LabelRole: engine.RoleGateway}, "demo_legacy")
		for _, r := range []struct{ cell, service string }{{"shop", "orders"}, {"shop", "orders"}, {"users", "accounts"}, {"legacy", "web"}} {
			n := 1
			for ; ; n++ {
				if _, err := eng.ContainerInspect(ctx, engine.ReplicaName("demo", r.cell, r.service, n)); err != nil {
					break
				}
			}
			run(engine.ReplicaName("demo", r.cell, r.service, n), engine.ReplicaLabels("demo", r.cell, r.service, n, "h"), engine.NetworkName("demo", r.cell))
		}
		fa.silent["users"] = true

		var mu sync.Mutex
		var wrong []string
		// Every gateway is asked before any answers.
		var asked sync.WaitGroup
		asked.Add(3)
		allAsked := make(chan struct{})
		go func() { asked.Wait(); close(allAsked) }()
		fa.onStop = func(ctx context.Context, cell string) error {
			asked.Done()
			select {
			case <-allAsked:
				return nil
			case <-time.After(time.Minute):
				mu.Lock()
				defer mu.Unlock()
				wrong = append(wrong, "cell "+cell+" was asked to stop alone")
				return errors.New("asked alone")
			}
		}
		gone := func(name string) bool {
			_, err := eng.ContainerInspect(context.Background(), name)
			return errdefs.IsNotFound(err)
		}
		late := false
		eng.SetCallHook(func(method, target string) error {
			if method != "ContainerStop" && method != "ContainerRemove" {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			name := target
			switch {
			case name == "demo-keeper":
				// The keeper takes its time to go; the gateways wait.
				if method == "ContainerRemove" {
					mu.Unlock()
					time.Sleep(time.Second)
					mu.Lock()
				}
			case strings.HasSuffix(name, "-gateway"):
				if !gone("demo-keeper") {
					wrong = append(wrong, method+" "+name+" before the keeper was gone")
				}
				if name == "demo-shop-gateway" && !late {
					// A creation under way as the gateway goes.
					late = true
					run("demo-shop-orders-9", engine.ReplicaLabels("demo", "shop", "orders", 9, "h"), "demo_shop")
				}
			default:
				cell := strings.Split(name, "-")[1]
				if cell == "users" {
					if !gone("demo-users-gateway") {
						wrong = append(wrong, method+" "+name+" while the gateway that did not answer was there")
					}
				} else if !fa.isStopped(cell) && !gone(engine.GatewayName("demo", cell)) {
					wrong = append(wrong, method+" "+name+" before its gateway drained")
				}
			}
			return nil
		})

		var progress progressLog
		if err := c.Down(ctx, "demo", api.DownOptions{Volumes: true, Progress: &progress}); err != nil {
			t.Fatalf("down: %v", err)
		}
		eng.SetCallHook(nil)
		if len(wrong) > 0 {
			t.Errorf("out of order:\n%s", strings.Join(wrong, "\n"))
		}
		if left := leftovers(t, eng); len(left) != 0 {
			t.Errorf("down left %s", strings.Join(left, ", "))
		}
		// The replicas of a drained cell are stopped, with their grace
		// period, before they are removed.
		calls := eng.Calls()
		for _, name := range []string{"demo-shop-orders-1", "demo-shop-orders-2", "demo-legacy-web-1"} {
			stop, remove := slices.Index(calls, "ContainerStop "+name), slices.Index(calls, "ContainerRemove "+name)
			if stop < 0 || remove < stop {
				t.Errorf("%s was not stopped before it was removed: %q", name, calls)
			}
		}

		progress = progressLog{}
		if err := c.Down(ctx, "demo", api.DownOptions{Volumes: true, Progress: &progress}); err != nil {
			t.Fatalf("second down: %v", err)
		}
		if diff := cmp.Diff([]string{"project demo has nothing to remove"}, progress.lines); diff != "" {
			t.Errorf("second down (-want +got):\n%s", diff)
		}
	})
}

// TestDownWaitsForARemovalUnderWay: a replica its gateway is removing
// (the engine refuses a second removal) is waited for, so that its
// network can go after it.
func TestDownWaitsForARemovalUnderWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		c, eng, _ := newFakeClient(t)
		if err := c.executeUp(ctx, planFor(t, c, nil), api.Discard{}); err != nil {
			t.Fatal(err)
		}
		name := engine.ReplicaName("demo", "shop", "orders", 1)
		resp, err := eng.ContainerCreate(ctx, &container.Config{Image: "orders:1", Labels: engine.ReplicaLabels("demo", "shop", "orders", 1, "h")}, &container.HostConfig{},
			&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"demo_shop": {}}}, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		eng.SetCallHook(func(method, target string) error {
			if method != "ContainerRemove" || target != name {
				return nil
			}
			busy := false
			once.Do(func() {
				busy = true
				go func() {
					time.Sleep(time.Second)
					_ = eng.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
				}()
			})
			if busy {
				return fmt.Errorf("removal of container %s is already in progress: %w", name, errdefs.ErrConflict)
			}
			return nil
		})
		if err := c.Down(ctx, "demo", api.DownOptions{Volumes: true}); err != nil {
			t.Fatalf("down: %v", err)
		}
		if left := leftovers(t, eng); len(left) != 0 {
			t.Errorf("down left %s", strings.Join(left, ", "))
		}
	})
}

// progressLog records progress as lines.
type progressLog struct {
	mu    sync.Mutex
	lines []string
}

func (p *progressLog) Start(id, text string) { p.add("start " + text) }
func (p *progressLog) Done(id, text string, err error) {
	p.add(fmt.Sprintf("done %s %v", text, err))
}
func (p *progressLog) Note(text string) { p.add(text) }
func (p *progressLog) add(l string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, l)
}

// TestDownWaitsForTheEngineToReleaseANetwork: right after the last
// container on a network is removed, a busy engine may still refuse to
// remove the network ("has active endpoints"); down tries again until it
// goes, and gives up after networkRelease naming the network.
func TestDownWaitsForTheEngineToReleaseANetwork(t *testing.T) {
	for _, tc := range []struct {
		name     string
		refusals int
		wantErr  string
	}{
		{name: "released a moment later", refusals: 3},
		{name: "never released", refusals: 1 << 30, wantErr: "remove network demo_shop: error while removing network: network demo_shop has active endpoints"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				c, eng, _ := newFakeClient(t)
				if err := c.executeUp(ctx, planFor(t, c, nil), api.Discard{}); err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				refused := 0
				eng.SetCallHook(func(method, target string) error {
					mu.Lock()
					defer mu.Unlock()
					if method != "NetworkRemove" || target != "demo_shop" || refused >= tc.refusals {
						return nil
					}
					refused++
					return fmt.Errorf("error while removing network: network demo_shop has active endpoints: %w", errdefs.ErrPermissionDenied)
				})
				start := time.Now()
				err := c.Down(ctx, "demo", api.DownOptions{Volumes: true})
				if tc.wantErr == "" {
					if err != nil {
						t.Fatalf("down: %v", err)
					}
					if left := leftovers(t, eng); len(left) != 0 {
						t.Errorf("down left %s", strings.Join(left, ", "))
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("down = %v, want an error saying %q", err, tc.wantErr)
				}
				if took := time.Since(start); took < networkRelease || took > networkRelease+2*time.Second {
					t.Errorf("down gave up after %s, want about %s", took, networkRelease)
				}
			})
		})
	}
}
