package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchestro/orchestro/runtime/engine"
)

func TestFloorFromInspect(t *testing.T) {
	inspect := func(name string, mode container.NetworkMode, ports nat.PortMap, mounts []container.MountPoint, nets ...string) container.InspectResponse {
		labels := map[string]string{}
		switch {
		case strings.HasSuffix(name, "-keeper"):
			labels[engine.LabelRole] = engine.RoleKeeper
		case strings.HasSuffix(name, "-gateway"):
			labels[engine.LabelRole] = engine.RoleGateway
			labels[engine.LabelAdminPort] = "7700"
		}
		c := container.InspectResponse{
			Config: &container.Config{Labels: labels},
			ContainerJSONBase: &container.ContainerJSONBase{
				Name:       "/" + name,
				HostConfig: &container.HostConfig{NetworkMode: mode, PortBindings: ports, RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}},
			},
			Mounts:          mounts,
			NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}},
		}
		for _, n := range nets {
			c.NetworkSettings.Networks[n] = &network.EndpointSettings{}
		}
		return c
	}
	socket := container.MountPoint{Type: mount.TypeBind, Source: "/var/run/docker.sock", Destination: "/var/run/docker.sock", RW: true}
	cs := []container.InspectResponse{
		// Out of the order of names: the floor sorts them.
		inspect("p-web-frontend-1", "default", nil, nil, "p_web"),
		inspect("p-keeper", "none", nil, []container.MountPoint{socket}),
		inspect("p-web-gateway", "default",
			nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "8080"}}, "7700/tcp": {{HostIP: "127.0.0.1"}}},
			[]container.MountPoint{socket,
				{Type: mount.TypeVolume, Name: "p-web-access-log", Destination: "/var/log/orchestro", RW: true},
				{Type: mount.TypeTmpfs, Destination: "/tmp"}},
			"p_web", "p_mesh"),
		inspect("p-web-frontend-2", "default", nil,
			[]container.MountPoint{{Type: mount.TypeVolume, Name: "p-web-access-log", Destination: "/logs"}}, "p_web"),
	}
	nets := []network.Inspect{{Name: "p_web"}, {Name: "p_unused"}, {Name: "p_mesh", Internal: true}}

	got := floorFromInspect("orchestro", "sha256:abc", cs, nets)
	published := nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}, "7700/tcp": {{HostIP: "127.0.0.1"}}}
	want := floorSpec{
		Shape: "orchestro",
		Image: "sha256:abc",
		Networks: []floorNetwork{
			{Name: "orchestro-bench-floor-orchestro-net1", Internal: true},
			{Name: "orchestro-bench-floor-orchestro-net2"},
		},
		Volumes: []string{"orchestro-bench-floor-orchestro-vol1"},
		Containers: []floorContainer{
			{Name: "orchestro-bench-floor-orchestro-c1", NoNetwork: true, Restart: container.RestartPolicyUnlessStopped,
				Mounts: []floorMount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}, Role: engine.RoleKeeper},
			{Name: "orchestro-bench-floor-orchestro-c2", Restart: container.RestartPolicyUnlessStopped,
				Networks: []string{"orchestro-bench-floor-orchestro-net2"}},
			{Name: "orchestro-bench-floor-orchestro-c3", Restart: container.RestartPolicyUnlessStopped,
				Networks: []string{"orchestro-bench-floor-orchestro-net2"},
				Mounts:   []floorMount{{Volume: "orchestro-bench-floor-orchestro-vol1", Target: "/logs", ReadOnly: true}}},
			{Name: "orchestro-bench-floor-orchestro-c4", Restart: container.RestartPolicyUnlessStopped, Published: published,
				Role: engine.RoleGateway, AdminPort: "7700/tcp",
				Networks: []string{"orchestro-bench-floor-orchestro-net1", "orchestro-bench-floor-orchestro-net2"},
				Mounts: []floorMount{
					{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"},
					{Volume: "orchestro-bench-floor-orchestro-vol1", Target: "/var/log/orchestro"},
				}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("floorFromInspect mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(floorFootprint{Containers: 4, Networks: 2, Published: 2, Volumes: 1}, got.footprint()); diff != "" {
		t.Errorf("footprint mismatch (-want +got):\n%s", diff)
	}
}

func TestFloorReport(t *testing.T) {
	r := &floorReport{
		Orchestro: floorFootprint{Containers: 11, Networks: 3, Published: 6, Volumes: 3},
		Compose:   floorFootprint{Containers: 7, Networks: 1},
		Steps: []floorStepReport{
			{Step: "up", CLIStep: "up -d --wait (cold)", OrchestroSeconds: []float64{3, 4}, ComposeSeconds: []float64{2, 2}},
			{Step: "down", CLIStep: "down", OrchestroSeconds: []float64{2, 1.5}, ComposeSeconds: []float64{1, 1}},
		},
	}
	cli := []cliStepReport{
		{Step: "up -d --wait (cold)", OrchestroSeconds: []float64{3.3, 4.4}, ComposeSeconds: []float64{3, 4}},
		{Step: "ps", OrchestroSeconds: []float64{1, 1}, ComposeSeconds: []float64{1, 1}},
		{Step: "down", OrchestroSeconds: []float64{2, 1.5}, ComposeSeconds: []float64{0.5, 1.5}},
	}
	r.summarize(cli)
	var b bytes.Buffer
	r.write(&b)
	want := `
  Engine floor: the objects each project has once up (orchestro's: 11 containers, 3 networks, 6 published ports, 3 volumes; compose's: 7 containers, 1 network),
  created and started, then stopped (1s to exit) and removed, straight through the Engine API, all at once,
  every container running the replica image: what the engine alone takes for them; median [min – max]

  step   orchestro's objects     compose's objects       ratio                orchestro over its floor   compose over its floor
  up     3.50s [3.00s – 4.00s]   2.00s [2.00s – 2.00s]   1.75 [1.50 – 2.00]   1.10 [1.10 – 1.10]         1.75 [1.50 – 2.00]
  down   1.75s [1.50s – 2.00s]   1.00s [1.00s – 1.00s]   1.75 [1.50 – 2.00]   1.00 [1.00 – 1.00]         1.00 [0.50 – 1.50]
  (over its floor: the CLI's "up -d --wait (cold)" and "down" over the floor's up and down, paired within each round)
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("floor report mismatch (-want +got):\n%s", diff)
	}
}

func TestFloorVariants(t *testing.T) {
	spec := floorSpec{
		Shape:    "orchestro",
		Networks: []floorNetwork{{Name: "n1"}, {Name: "n2"}},
		Volumes:  []string{"v1"},
		Containers: []floorContainer{
			{Name: "keeper", NoNetwork: true, Role: engine.RoleKeeper},
			{Name: "gw1", Networks: []string{"n1"}, Role: engine.RoleGateway, AdminPort: "7700/tcp",
				Published: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}, "7700/tcp": {{HostIP: "127.0.0.1"}}}},
			{Name: "gw2", Networks: []string{"n2"}, Role: engine.RoleGateway, AdminPort: "7700/tcp",
				Published: nat.PortMap{"7700/tcp": {{HostIP: "127.0.0.1"}}}},
			{Name: "r1", Networks: []string{"n2"}, Role: engine.RoleReplica},
		},
	}
	before := cmp.Diff(floorSpec{}, spec)
	got := map[string]floorFootprint{}
	var oneNet floorSpec
	for _, v := range floorVariants {
		s := v.of(spec)
		got[v.name] = s.footprint()
		if v.name == "with every cell on one network" {
			oneNet = s
		}
	}
	want := map[string]floorFootprint{
		"orchestro's objects as they are":             {Containers: 4, Networks: 2, Published: 3, Volumes: 1},
		"without the keeper":                          {Containers: 3, Networks: 2, Published: 3, Volumes: 1},
		"without the gateways' published admin ports": {Containers: 4, Networks: 2, Published: 1, Volumes: 1},
		"without either":                              {Containers: 3, Networks: 2, Published: 1, Volumes: 1},
		"with every cell on one network":              {Containers: 4, Networks: 1, Published: 3, Volumes: 1},
		"one network, without either":                 {Containers: 3, Networks: 1, Published: 1, Volumes: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variants' objects (-want +got):\n%s", diff)
	}
	var nets [][]string
	for _, c := range oneNet.Containers {
		nets = append(nets, c.Networks)
	}
	if diff := cmp.Diff([][]string{nil, {"n1"}, {"n1"}, {"n1"}}, nets); diff != "" {
		t.Errorf("networks on one network (-want +got):\n%s", diff)
	}
	// No variant changes the objects it was given.
	if after := cmp.Diff(floorSpec{}, spec); after != before {
		t.Errorf("a variant changed its input:\n%s", cmp.Diff(before, after))
	}
}

func TestVariantsReport(t *testing.T) {
	r := &variantsReport{Rounds: 2, Variants: []variantReport{
		{Name: "orchestro's objects as they are", Objects: floorFootprint{Containers: 11, Networks: 3, Published: 6},
			UpSeconds: []float64{3, 4}, DownSeconds: []float64{1.5, 1.7}},
		{Name: composeVariant, Objects: floorFootprint{Containers: 7, Networks: 1},
			UpSeconds: []float64{2, 2.2}, DownSeconds: []float64{0.9, 0.8}},
	}}
	r.summarize()
	var b bytes.Buffer
	r.write(&b)
	want := `
Engine floor of variants of orchestro's objects: what each part of its topology costs the engine
  each set of objects created and started, then stopped (1s to exit) and removed, straight through the Engine API,
  all at once, every container running the replica image; 2 rounds, each set going first in turn; median [min – max]

  objects                           containers   networks   published ports   up                      down
  orchestro's objects as they are   11           3          6                 3.50s [3.00s – 4.00s]   1.60s [1.50s – 1.70s]
  compose's objects                 7            1          0                 2.10s [2.00s – 2.20s]   850ms [800ms – 900ms]
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("variants report mismatch (-want +got):\n%s", diff)
	}
}

// fakeFloorEngine records the calls a floor makes, in order, and refuses
// a network's removal while a container is on it, as the engine does (and
// once more, at first, as the engine does just after a removal).
type fakeFloorEngine struct {
	mu       sync.Mutex
	calls    []string
	on       map[string]map[string]bool // network → containers on it
	refusals int
}

func (f *fakeFloorEngine) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeFloorEngine) ContainerCreate(_ context.Context, cfg *container.Config, host *container.HostConfig, net *network.NetworkingConfig, _ *ocispec.Platform, name string) (container.CreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if net != nil {
		for n := range net.EndpointsConfig {
			f.on[n][name] = true
		}
	}
	var ports []string
	for p := range cfg.ExposedPorts {
		ports = append(ports, string(p)+"="+host.PortBindings[p][0].HostIP)
	}
	slices.Sort(ports)
	f.calls = append(f.calls, fmt.Sprintf("create %s mode=%s ports=%v mounts=%d labels=%v", name, host.NetworkMode, ports, len(host.Mounts), cfg.Labels))
	return container.CreateResponse{}, nil
}

func (f *fakeFloorEngine) ContainerStart(_ context.Context, id string, _ container.StartOptions) error {
	f.record("start " + id)
	return nil
}

func (f *fakeFloorEngine) ContainerStop(_ context.Context, id string, o container.StopOptions) error {
	f.record(fmt.Sprintf("stop %s %ds", id, *o.Timeout))
	return nil
}

func (f *fakeFloorEngine) ContainerRemove(_ context.Context, id string, _ container.RemoveOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cs := range f.on {
		delete(cs, id)
	}
	f.calls = append(f.calls, "remove "+id)
	return nil
}

func (f *fakeFloorEngine) ContainerList(context.Context, container.ListOptions) ([]container.Summary, error) {
	return nil, nil
}

func (f *fakeFloorEngine) NetworkCreate(_ context.Context, name string, o network.CreateOptions) (network.CreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on[name] = map[string]bool{}
	f.calls = append(f.calls, fmt.Sprintf("network create %s internal=%v", name, o.Internal))
	return network.CreateResponse{}, nil
}

func (f *fakeFloorEngine) NetworkConnect(_ context.Context, n, id string, _ *network.EndpointSettings) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on[n][id] = true
	f.calls = append(f.calls, "connect "+id+" "+n)
	return nil
}

func (f *fakeFloorEngine) NetworkRemove(_ context.Context, n string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.on[n]) > 0 || f.refusals == 0 {
		f.refusals++
		return fmt.Errorf("error while removing network: network %s has active endpoints", n)
	}
	delete(f.on, n)
	f.calls = append(f.calls, "network remove "+n)
	return nil
}

func (f *fakeFloorEngine) NetworkList(context.Context, network.ListOptions) ([]network.Summary, error) {
	return nil, nil
}

func (f *fakeFloorEngine) VolumeCreate(_ context.Context, o volume.CreateOptions) (volume.Volume, error) {
	f.record("volume create " + o.Name)
	return volume.Volume{}, nil
}

func (f *fakeFloorEngine) VolumeRemove(_ context.Context, v string, _ bool) error {
	f.record("volume remove " + v)
	return nil
}

func (f *fakeFloorEngine) VolumeList(context.Context, volume.ListOptions) (volume.ListResponse, error) {
	return volume.ListResponse{}, nil
}

// TestFloorUpAndDown: a floor creates its networks and volumes before any
// container, connects a container to its other networks before starting
// it, stops every container (as a down gives it time) before removing it,
// and removes the networks, retrying one the engine does not let go of
// yet, only once every container is gone.
func TestFloorUpAndDown(t *testing.T) {
	s := floorSpec{
		Shape:    "o",
		Image:    "img",
		Networks: []floorNetwork{{Name: "n1", Internal: true}, {Name: "n2"}},
		Volumes:  []string{"v1"},
		Containers: []floorContainer{
			{Name: "k", NoNetwork: true, Mounts: []floorMount{{Source: "/s", Target: "/s"}}},
			{Name: "g", Networks: []string{"n2", "n1"}, Published: nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1"}}},
				Mounts: []floorMount{{Volume: "v1", Target: "/v"}}},
			{Name: "r", Networks: []string{"n2"}},
		},
	}
	f := &fakeFloorEngine{on: map[string]map[string]bool{}}
	if _, err := floorUp(context.Background(), f, s); err != nil {
		t.Fatal(err)
	}
	up := slices.Clone(f.calls)
	f.calls = nil
	if _, err := floorDown(context.Background(), f, s); err != nil {
		t.Fatal(err)
	}
	down := f.calls

	// Within a stage the calls run at once, in any order: compare each
	// stage sorted, and each container's own calls in order.
	stage := func(calls []string, from, to int) []string {
		out := slices.Clone(calls[from:to])
		slices.Sort(out)
		return out
	}
	labels := "map[" + floorLabel + ":o]"
	if diff := cmp.Diff([]string{"network create n1 internal=true", "network create n2 internal=false", "volume create v1"}, stage(up, 0, 3)); diff != "" {
		t.Errorf("up's first stage (-want +got):\n%s", diff)
	}
	wantUp := map[string][]string{
		"k": {"create k mode=none ports=[] mounts=1 labels=" + labels, "start k"},
		"g": {"create g mode=n2 ports=[80/tcp=127.0.0.1] mounts=1 labels=" + labels, "connect g n1", "start g"},
		"r": {"create r mode=n2 ports=[] mounts=0 labels=" + labels, "start r"},
	}
	if diff := cmp.Diff(wantUp, byContainer(up[3:])); diff != "" {
		t.Errorf("up's containers (-want +got):\n%s", diff)
	}
	wantDown := map[string][]string{"k": {"stop k 1s", "remove k"}, "g": {"stop g 1s", "remove g"}, "r": {"stop r 1s", "remove r"}}
	if diff := cmp.Diff(wantDown, byContainer(down[:6])); diff != "" {
		t.Errorf("down's containers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"network remove n1", "network remove n2", "volume remove v1"}, stage(down, 6, len(down))); diff != "" {
		t.Errorf("down's last stage (-want +got):\n%s", diff)
	}
}

// byContainer groups calls by the container they name, in order.
func byContainer(calls []string) map[string][]string {
	out := map[string][]string{}
	for _, c := range calls {
		f := strings.Fields(c)
		name := f[1]
		if f[0] == "network" || f[0] == "volume" {
			name = f[0]
		}
		out[name] = append(out[name], c)
	}
	return out
}
