package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-cmp/cmp"

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
