package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

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
