package enginetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/engine"
)

// createReplica creates (and optionally starts) replica n of demo/shop/orders.
func createReplica(t *testing.T, f *Fake, n int, start bool) string {
	t.Helper()
	ctx := t.Context()
	name := engine.ReplicaName("demo", "shop", "orders", n)
	resp, err := f.ContainerCreate(ctx,
		&container.Config{Image: "orders:1", Labels: engine.ReplicaLabels("demo", "shop", "orders", n, "h1")},
		&container.HostConfig{NetworkMode: container.NetworkMode(engine.NetworkName("demo", "shop"))},
		nil, nil, name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if start {
		if err := f.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
	}
	return resp.ID
}

func newDemoFake(t *testing.T) *Fake {
	t.Helper()
	f := NewFake()
	f.AddImage("orders:1", nil)
	if _, err := f.NetworkCreate(t.Context(), engine.NetworkName("demo", "shop"), network.CreateOptions{Labels: engine.ProjectLabels("demo")}); err != nil {
		t.Fatal(err)
	}
	return f
}

func names(list []container.Summary) []string {
	var out []string
	for _, c := range list {
		out = append(out, c.Names[0])
	}
	return out
}

func TestFakeContainerLifecycle(t *testing.T) {
	ctx := t.Context()
	f := newDemoFake(t)
	id1 := createReplica(t, f, 1, true)
	createReplica(t, f, 2, false)
	id3 := createReplica(t, f, 3, true)

	list := func(opts container.ListOptions) []string {
		t.Helper()
		got, err := f.ContainerList(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		return names(got)
	}
	label := func(kv ...string) filters.Args {
		a := filters.NewArgs()
		for i := 0; i+1 < len(kv); i += 2 {
			a.Add(kv[i], kv[i+1])
		}
		return a
	}
	tests := []struct {
		name string
		opts container.ListOptions
		want []string
	}{
		{"running only, newest first", container.ListOptions{}, []string{"/demo-shop-orders-3", "/demo-shop-orders-1"}},
		{"all", container.ListOptions{All: true}, []string{"/demo-shop-orders-3", "/demo-shop-orders-2", "/demo-shop-orders-1"}},
		{"label key=value", container.ListOptions{All: true, Filters: label("label", engine.LabelReplica+"=2")}, []string{"/demo-shop-orders-2"}},
		{"label key", container.ListOptions{All: true, Filters: label("label", engine.LabelProject, "label", engine.LabelRole+"="+engine.RoleReplica)}, []string{"/demo-shop-orders-3", "/demo-shop-orders-2", "/demo-shop-orders-1"}},
		{"other project", container.ListOptions{All: true, Filters: label("label", engine.LabelProject+"=other")}, nil},
		{"name", container.ListOptions{All: true, Filters: label("name", "orders-1")}, []string{"/demo-shop-orders-1"}},
		{"status implies all", container.ListOptions{Filters: label("status", "created")}, []string{"/demo-shop-orders-2"}},
		{"network", container.ListOptions{Filters: label("network", "demo_shop")}, []string{"/demo-shop-orders-3", "/demo-shop-orders-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, list(tt.opts)); diff != "" {
				t.Errorf("list mismatch (-want +got):\n%s", diff)
			}
		})
	}

	ins, err := f.ContainerInspect(ctx, "demo-shop-orders-1")
	if err != nil {
		t.Fatal(err)
	}
	if ins.ID != id1 || !ins.State.Running || ins.NetworkSettings.Networks["demo_shop"].IPAddress == "" {
		t.Errorf("inspect of a running replica: %+v, networks %+v", ins.State, ins.NetworkSettings.Networks)
	}

	if err := f.ContainerKill(ctx, id1, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.Exit("demo-shop-orders-3", 2); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"demo-shop-orders-1": 137, "demo-shop-orders-3": 2} {
		ins, err := f.ContainerInspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ins.State.Status != container.StateExited || ins.State.ExitCode != want {
			t.Errorf("%s state = %s (%d), want exited (%d)", name, ins.State.Status, ins.State.ExitCode, want)
		}
	}
	if err := f.ContainerKill(ctx, id1, ""); !cerrdefs.IsConflict(err) {
		t.Errorf("kill of a stopped container: %v, want a conflict", err)
	}

	if err := f.ContainerStart(ctx, id3, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.ContainerRemove(ctx, id3, container.RemoveOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("remove of a running container without force: %v, want a conflict", err)
	}
	if err := f.ContainerRemove(ctx, id3, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ContainerInspect(ctx, id3); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of a removed container: %v, want not found", err)
	}
	if _, err := f.ContainerCreate(ctx, &container.Config{Image: "orders:1"}, nil, nil, nil, "demo-shop-orders-1"); !cerrdefs.IsConflict(err) {
		t.Errorf("create with a used name: %v, want a conflict", err)
	}
	if _, err := f.ContainerCreate(ctx, &container.Config{Image: "missing:1"}, nil, nil, nil, "x"); !cerrdefs.IsNotFound(err) {
		t.Errorf("create from a missing image: %v, want not found", err)
	}
}

func TestFakeCallsAndErrors(t *testing.T) {
	ctx := t.Context()
	f := newDemoFake(t)
	f.ResetCalls()
	id := createReplica(t, f, 1, true)
	boom := fmt.Errorf("boom")
	f.SetError("ContainerStop", boom)
	if err := f.ContainerStop(ctx, id, container.StopOptions{}); err != boom {
		t.Errorf("ContainerStop = %v, want the injected error", err)
	}
	f.SetError("ContainerStop", nil)
	if err := f.ContainerStop(ctx, id, container.StopOptions{}); err != nil {
		t.Errorf("ContainerStop after clearing the error: %v", err)
	}
	_, _ = f.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"=demo"))})
	want := []string{
		"ContainerCreate demo-shop-orders-1",
		"ContainerStart demo-shop-orders-1",
		"ContainerStop demo-shop-orders-1",
		"ContainerStop demo-shop-orders-1",
		"ContainerList label=io.orchestro.project=demo",
	}
	if diff := cmp.Diff(want, f.Calls()); diff != "" {
		t.Errorf("calls mismatch (-want +got):\n%s", diff)
	}
}

func TestFakeCallHook(t *testing.T) {
	ctx := t.Context()
	f := newDemoFake(t)
	id := createReplica(t, f, 1, false)
	f.ResetCalls()
	boom := fmt.Errorf("boom")
	var seen []string
	// The hook fails the first start only, and sees the container's state
	// at the moment of each call: it may call the fake.
	f.SetCallHook(func(method, target string) error {
		if method != "ContainerStart" {
			return nil
		}
		ins, err := f.ContainerInspect(ctx, id)
		if err != nil {
			t.Errorf("inspect from the hook: %v", err)
			return nil
		}
		seen = append(seen, target+" "+ins.State.Status)
		if len(seen) == 1 {
			return boom
		}
		return nil
	})
	if err := f.ContainerStart(ctx, id, container.StartOptions{}); err != boom {
		t.Errorf("first ContainerStart = %v, want the hook's error", err)
	}
	if err := f.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Errorf("second ContainerStart: %v", err)
	}
	if diff := cmp.Diff([]string{"demo-shop-orders-1 created", "demo-shop-orders-1 created"}, seen); diff != "" {
		t.Errorf("hook saw (-want +got):\n%s", diff)
	}
	f.SetCallHook(nil)
	f.SetError("ContainerStop", boom)
	if err := f.ContainerStop(ctx, id, container.StopOptions{}); err != boom {
		t.Errorf("ContainerStop without a hook = %v, want the SetError error", err)
	}
	want := []string{
		"ContainerStart demo-shop-orders-1",
		"ContainerInspect demo-shop-orders-1",
		"ContainerStart demo-shop-orders-1",
		"ContainerInspect demo-shop-orders-1",
		"ContainerStop demo-shop-orders-1",
	}
	if diff := cmp.Diff(want, f.Calls()); diff != "" {
		t.Errorf("calls mismatch (-want +got):\n%s", diff)
	}
}

func TestFakeWait(t *testing.T) {
	ctx := t.Context()
	f := newDemoFake(t)
	created := createReplica(t, f, 1, false)
	running := createReplica(t, f, 2, true)

	res, errs := f.ContainerWait(ctx, created, container.WaitConditionNotRunning)
	select {
	case r := <-res:
		if r.StatusCode != 0 {
			t.Errorf("status = %d, want 0", r.StatusCode)
		}
	case err := <-errs:
		t.Fatal(err)
	}

	res, errs = f.ContainerWait(ctx, running, container.WaitConditionNextExit)
	removed, removedErrs := f.ContainerWait(ctx, running, container.WaitConditionRemoved)
	if err := f.Exit(running, 42); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res:
		if r.StatusCode != 42 {
			t.Errorf("status = %d, want 42", r.StatusCode)
		}
	case err := <-errs:
		t.Fatal(err)
	}
	select {
	case r := <-removed:
		t.Fatalf("removed-wait ended before the removal: %+v", r)
	default:
	}
	if err := f.ContainerRemove(ctx, running, container.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-removed:
	case err := <-removedErrs:
		t.Fatal(err)
	}

	again := createReplica(t, f, 3, true)
	cctx, cancel := context.WithCancel(ctx)
	_, errs = f.ContainerWait(cctx, again, "")
	cancel()
	if err := <-errs; err != context.Canceled {
		t.Errorf("wait after cancel: %v, want context.Canceled", err)
	}
}

func TestFakeEvents(t *testing.T) {
	f := newDemoFake(t)
	ctx, cancel := context.WithCancel(t.Context())
	msgs, errs := f.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", engine.LabelProject+"=demo"),
	)})
	id := createReplica(t, f, 1, true)
	if err := f.Exit(id, 1); err != nil {
		t.Fatal(err)
	}
	_, _ = f.NetworkCreate(ctx, "unrelated", network.CreateOptions{})
	var got []string
	for len(got) < 3 {
		select {
		case m := <-msgs:
			got = append(got, fmt.Sprintf("%s %s %s", m.Action, m.Actor.Attributes["name"], m.Actor.Attributes["exitCode"]))
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out; got %q", got)
		}
	}
	want := []string{"create demo-shop-orders-1 ", "start demo-shop-orders-1 ", "die demo-shop-orders-1 1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
	cancel()
	if err := <-errs; err != context.Canceled {
		t.Errorf("events after cancel: %v, want context.Canceled", err)
	}
}

func TestFakeExecLogsStats(t *testing.T) {
	ctx := t.Context()
	f := newDemoFake(t)
	id := createReplica(t, f, 1, true)
	f.SetExecFunc(func(_ string, cmd []string) int {
		if cmd[0] == "healthy" {
			return 0
		}
		return 1
	})
	for cmd, want := range map[string]int{"healthy": 0, "sick": 1} {
		ex, err := f.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: []string{cmd}})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.ContainerExecStart(ctx, ex.ID, container.ExecStartOptions{Detach: true}); err != nil {
			t.Fatal(err)
		}
		ins, err := f.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ins.Running || ins.ExitCode != want {
			t.Errorf("exec %s: running=%v exit=%d, want done with %d", cmd, ins.Running, ins.ExitCode, want)
		}
	}

	if err := f.SetLogs(id, "out 1\nout 2\n", "err 1\n"); err != nil {
		t.Fatal(err)
	}
	rc, err := f.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, rc); err != nil {
		t.Fatalf("demultiplex logs: %v", err)
	}
	if stdout.String() != "out 1\nout 2\n" || stderr.String() != "err 1\n" {
		t.Errorf("logs = %q / %q", stdout.String(), stderr.String())
	}

	s1 := container.StatsResponse{ID: id, CPUStats: container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 100}}}
	s2 := container.StatsResponse{ID: id, CPUStats: container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 300}}}
	if err := f.SetStats(id, s1, s2); err != nil {
		t.Fatal(err)
	}
	sr, err := f.ContainerStats(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(sr.Body)
	var totals []uint64
	for dec.More() {
		var s container.StatsResponse
		if err := dec.Decode(&s); err != nil {
			t.Fatal(err)
		}
		totals = append(totals, s.CPUStats.CPUUsage.TotalUsage)
	}
	if diff := cmp.Diff([]uint64{100, 300}, totals); diff != "" {
		t.Errorf("streamed stats mismatch (-want +got):\n%s", diff)
	}

	if err := f.ContainerStop(ctx, id, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: []string{"healthy"}}); !cerrdefs.IsConflict(err) {
		t.Errorf("exec in a stopped container: %v, want a conflict", err)
	}
}

func TestFakeNetworksVolumesImages(t *testing.T) {
	ctx := t.Context()
	f := newDemoFake(t)
	if _, err := f.NetworkCreate(ctx, "demo_shop", network.CreateOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("duplicate network: %v, want a conflict", err)
	}
	if _, err := f.NetworkCreate(ctx, "demo_mesh", network.CreateOptions{Labels: engine.ProjectLabels("demo")}); err != nil {
		t.Fatal(err)
	}
	nets, err := f.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"=demo"))})
	if err != nil {
		t.Fatal(err)
	}
	var netNames []string
	for _, n := range nets {
		netNames = append(netNames, n.Name)
	}
	if diff := cmp.Diff([]string{"demo_mesh", "demo_shop"}, netNames); diff != "" {
		t.Errorf("networks mismatch (-want +got):\n%s", diff)
	}

	resp, err := f.ContainerCreate(ctx, &container.Config{Image: "orders:1", Labels: engine.ProjectLabels("demo")},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "demo_data", Target: "/data"}}},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"demo_shop": {Aliases: []string{"shop"}}}},
		nil, "demo-shop-gateway")
	if err != nil {
		t.Fatal(err)
	}
	gw := resp.ID
	if err := f.NetworkConnect(ctx, "demo_mesh", gw, &network.EndpointSettings{Aliases: []string{"shop"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.ContainerStart(ctx, gw, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	mesh, err := f.NetworkInspect(ctx, "demo_mesh", network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ep, ok := mesh.Containers[gw]; !ok || ep.Name != "demo-shop-gateway" || ep.IPv4Address == "" {
		t.Errorf("mesh endpoints = %+v, want the gateway with an address", mesh.Containers)
	}
	if err := f.NetworkRemove(ctx, "demo_mesh"); err == nil {
		t.Error("removed a network with an active endpoint")
	}
	if err := f.VolumeRemove(ctx, "demo_data", false); !cerrdefs.IsConflict(err) {
		t.Errorf("remove of a volume in use: %v, want a conflict", err)
	}
	if _, err := f.ImageRemove(ctx, "orders:1", image.RemoveOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("remove of an image in use: %v, want a conflict", err)
	}

	if err := f.ContainerRemove(ctx, gw, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.NetworkRemove(ctx, "demo_mesh"); err != nil {
		t.Errorf("remove of an unused network: %v", err)
	}
	if err := f.NetworkRemove(ctx, "bridge"); err == nil {
		t.Error("removed the predefined bridge network")
	}
	vols, err := f.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("dangling", "true"))})
	if err != nil || len(vols.Volumes) != 1 || vols.Volumes[0].Name != "demo_data" {
		t.Errorf("dangling volumes = %+v, %v; want demo_data", vols.Volumes, err)
	}
	if err := f.VolumeRemove(ctx, "demo_data", false); err != nil {
		t.Errorf("remove of an unused volume: %v", err)
	}

	f.AddImage("orders:2", map[string]string{engine.LabelManaged: "true"})
	imgs, err := f.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelManaged+"=true"))})
	if err != nil || len(imgs) != 1 || imgs[0].RepoTags[0] != "orders:2" {
		t.Errorf("managed images = %+v, %v; want orders:2", imgs, err)
	}
	if _, err := f.ImageRemove(ctx, "orders:2", image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ImageInspect(ctx, "orders:2"); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of a removed image: %v, want not found", err)
	}
}

func TestFakeConcurrentUse(t *testing.T) {
	ctx := t.Context()
	f := newDemoFake(t)
	msgs, _ := f.Events(ctx, events.ListOptions{})
	go func() {
		for {
			select {
			case <-msgs:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for n := 1; n <= 20; n++ {
		wg.Go(func() {
			// t.Fatal must not be called here, off the test goroutine.
			resp, err := f.ContainerCreate(ctx, &container.Config{Image: "orders:1", Labels: engine.ReplicaLabels("demo", "shop", "orders", n, "h")},
				nil, nil, nil, engine.ReplicaName("demo", "shop", "orders", n))
			if err != nil {
				t.Error(err)
				return
			}
			id := resp.ID
			if err := f.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
				t.Error(err)
			}
			if _, err := f.ContainerList(ctx, container.ListOptions{All: true}); err != nil {
				t.Error(err)
			}
			if _, err := f.ContainerInspect(ctx, id); err != nil {
				t.Error(err)
			}
			if err := f.ContainerStop(ctx, id, container.StopOptions{}); err != nil {
				t.Error(err)
			}
			if err := f.ContainerRemove(ctx, id, container.RemoveOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	left, err := f.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil || len(left) != 0 {
		t.Errorf("containers left: %v, %v", names(left), err)
	}
}
