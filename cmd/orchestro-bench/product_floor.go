package main

// The engine floor of the CLI part. Each CLI's project, once up, is a set
// of engine objects: containers (with their published ports, mounts and
// networks), networks and volumes. The floor is what the engine alone
// takes for that set: the same objects are created and started, then
// stopped and removed, straight through the Engine API, every one at
// once, with no orchestration around them. Every floor container runs the
// replica image, so what a container runs (a gateway's start, say) counts
// for the CLI and not for the floor.
//
// Two floors are measured in each round, one per project, so the report
// can tell how much of a CLI's time is the engine's price of its objects
// and how much is the CLI's own.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/orchestro/orchestro/runtime/engine"
)

// floorLabel marks what a floor creates, with the shape as its value.
const floorLabel = "io.orchestro-bench.floor"

// floorPrefix starts the name of everything a floor creates.
const floorPrefix = "orchestro-bench-floor-"

// floorStopSeconds is how long a floor container is given to exit on
// SIGTERM, as the CLIs' down gives a replica.
const floorStopSeconds = 1

// floorNetwork is a network of a floor: a bridge, as the CLIs create.
type floorNetwork struct {
	Name     string
	Internal bool
}

// floorMount is a mount of a floor container: a named volume of the
// floor, or a bind of a host path.
type floorMount struct {
	Volume   string
	Source   string
	Target   string
	ReadOnly bool
}

// floorContainer is a container of a floor.
type floorContainer struct {
	Name string
	// Published are the container ports published on the host, each on
	// the host address it had and an ephemeral host port (the engine's
	// work is the same, and a fixed port may still be taken).
	Published nat.PortMap
	Mounts    []floorMount
	// NoNetwork is network mode none; else the container joins Networks,
	// the first at its creation, the others before its start.
	NoNetwork bool
	Networks  []string
	Restart   container.RestartPolicyMode
	// Role is the orchestro role of the original (gateway, replica,
	// keeper; none for compose's), and AdminPort a gateway's admin port:
	// the variants of the floor (product_variants.go) leave them out.
	Role      string
	AdminPort nat.Port
}

// floorSpec is the objects of one floor.
type floorSpec struct {
	Shape      string
	Image      string
	Networks   []floorNetwork
	Volumes    []string
	Containers []floorContainer
}

// floorFootprint counts a floor's objects for the report.
type floorFootprint struct {
	Containers int `json:"containers"`
	Networks   int `json:"networks"`
	Published  int `json:"published_ports"`
	Volumes    int `json:"volumes"`
}

func (s floorSpec) footprint() floorFootprint {
	fp := floorFootprint{Containers: len(s.Containers), Networks: len(s.Networks), Volumes: len(s.Volumes)}
	for _, c := range s.Containers {
		for _, b := range c.Published {
			fp.Published += len(b)
		}
	}
	return fp
}

// floorFromInspect is the floor of a project whose containers and
// networks are cs and nets: the same objects under floor names (in the
// order of the originals' names), running image. Networks no container
// joins, and the engine's own (bridge, host, none), are left out.
func floorFromInspect(shape, image string, cs []container.InspectResponse, nets []network.Inspect) floorSpec {
	s := floorSpec{Shape: shape, Image: image}
	name := func(kind string, i int) string { return fmt.Sprintf("%s%s-%s%d", floorPrefix, shape, kind, i+1) }

	joined := map[string]bool{}
	for _, c := range cs {
		if c.NetworkSettings != nil {
			for n := range c.NetworkSettings.Networks {
				joined[n] = true
			}
		}
	}
	nets = slices.Clone(nets)
	slices.SortFunc(nets, func(a, b network.Inspect) int { return strings.Compare(a.Name, b.Name) })
	netName := map[string]string{}
	for _, n := range nets {
		if !joined[n.Name] || netName[n.Name] != "" {
			continue
		}
		netName[n.Name] = name("net", len(s.Networks))
		s.Networks = append(s.Networks, floorNetwork{Name: netName[n.Name], Internal: n.Internal})
	}

	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b container.InspectResponse) int { return strings.Compare(a.Name, b.Name) })
	volName := map[string]string{}
	for i, c := range cs {
		fc := floorContainer{Name: name("c", i)}
		if c.Config != nil {
			fc.Role = c.Config.Labels[engine.LabelRole]
			if p := c.Config.Labels[engine.LabelAdminPort]; p != "" {
				fc.AdminPort = nat.Port(p + "/tcp")
			}
		}
		if c.HostConfig != nil {
			fc.Restart = c.HostConfig.RestartPolicy.Name
			fc.NoNetwork = c.HostConfig.NetworkMode.IsNone()
			for port, bindings := range c.HostConfig.PortBindings {
				for _, b := range bindings {
					if fc.Published == nil {
						fc.Published = nat.PortMap{}
					}
					fc.Published[port] = append(fc.Published[port], nat.PortBinding{HostIP: b.HostIP})
				}
			}
		}
		for _, m := range c.Mounts {
			fm := floorMount{Target: m.Destination, ReadOnly: !m.RW}
			switch m.Type {
			case mount.TypeVolume:
				if volName[m.Name] == "" {
					volName[m.Name] = name("vol", len(s.Volumes))
					s.Volumes = append(s.Volumes, volName[m.Name])
				}
				fm.Volume = volName[m.Name]
			case mount.TypeBind:
				fm.Source = m.Source
			default:
				continue
			}
			fc.Mounts = append(fc.Mounts, fm)
		}
		if !fc.NoNetwork && c.NetworkSettings != nil {
			for _, n := range slices.Sorted(maps.Keys(c.NetworkSettings.Networks)) {
				if fn := netName[n]; fn != "" {
					fc.Networks = append(fc.Networks, fn)
				}
			}
		}
		s.Containers = append(s.Containers, fc)
	}
	return s
}

// floorEngine is the part of the Engine API a floor uses.
type floorEngine interface {
	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, containerID string, options container.StartOptions) error
	ContainerStop(ctx context.Context, containerID string, options container.StopOptions) error
	ContainerRemove(ctx context.Context, containerID string, options container.RemoveOptions) error
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error)
	NetworkConnect(ctx context.Context, networkID, containerID string, config *network.EndpointSettings) error
	NetworkRemove(ctx context.Context, networkID string) error
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	VolumeCreate(ctx context.Context, options volume.CreateOptions) (volume.Volume, error)
	VolumeRemove(ctx context.Context, volumeID string, force bool) error
	VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
}

// floorUp creates the volumes and networks of s, then creates, connects
// and starts every container, each at once, and returns how long it took.
func floorUp(ctx context.Context, eng floorEngine, s floorSpec) (time.Duration, error) {
	labels := map[string]string{floorLabel: s.Shape}
	start := time.Now()
	var g errgroup.Group
	for _, v := range s.Volumes {
		g.Go(func() error {
			if _, err := eng.VolumeCreate(ctx, volume.CreateOptions{Name: v, Labels: labels}); err != nil {
				return fmt.Errorf("floor: create volume %s: %w", v, err)
			}
			return nil
		})
	}
	for _, n := range s.Networks {
		g.Go(func() error {
			if _, err := eng.NetworkCreate(ctx, n.Name, network.CreateOptions{Driver: "bridge", Internal: n.Internal, Labels: labels}); err != nil {
				return fmt.Errorf("floor: create network %s: %w", n.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	for _, c := range s.Containers {
		g.Go(func() error { return floorStart(ctx, eng, s.Image, labels, c) })
	}
	err := g.Wait()
	return time.Since(start), err
}

// floorStart creates, connects and starts one floor container.
func floorStart(ctx context.Context, eng floorEngine, image string, labels map[string]string, c floorContainer) error {
	cfg := &container.Config{Image: image, Labels: labels}
	host := &container.HostConfig{PortBindings: c.Published, RestartPolicy: container.RestartPolicy{Name: c.Restart}}
	for port := range c.Published {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
		}
		cfg.ExposedPorts[port] = struct{}{}
	}
	for _, m := range c.Mounts {
		if m.Volume != "" {
			host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Volume, Target: m.Target, ReadOnly: m.ReadOnly})
		} else {
			host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		}
	}
	var netCfg *network.NetworkingConfig
	switch {
	case c.NoNetwork:
		host.NetworkMode = network.NetworkNone
	case len(c.Networks) > 0:
		host.NetworkMode = container.NetworkMode(c.Networks[0])
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{c.Networks[0]: {}}}
	}
	if _, err := eng.ContainerCreate(ctx, cfg, host, netCfg, nil, c.Name); err != nil {
		return fmt.Errorf("floor: create container %s: %w", c.Name, err)
	}
	for _, n := range c.Networks[min(1, len(c.Networks)):] {
		if err := eng.NetworkConnect(ctx, n, c.Name, nil); err != nil {
			return fmt.Errorf("floor: connect %s to %s: %w", c.Name, n, err)
		}
	}
	if err := eng.ContainerStart(ctx, c.Name, container.StartOptions{}); err != nil {
		return fmt.Errorf("floor: start container %s: %w", c.Name, err)
	}
	return nil
}

// floorRelease bounds the retries of a network the engine has not let
// go of yet just after its last container went (orchestro's down retries
// the same way).
const floorRelease = 10 * time.Second

// floorDown stops and removes every container of s at once, each given
// floorStopSeconds to exit as a down gives it, then removes the networks
// and the volumes, and returns how long it took.
func floorDown(ctx context.Context, eng floorEngine, s floorSpec) (time.Duration, error) {
	start := time.Now()
	var g errgroup.Group
	for _, c := range s.Containers {
		g.Go(func() error {
			secs := floorStopSeconds
			if err := eng.ContainerStop(ctx, c.Name, container.StopOptions{Timeout: &secs}); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("floor: stop container %s: %w", c.Name, err)
			}
			if err := eng.ContainerRemove(ctx, c.Name, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("floor: remove container %s: %w", c.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	for _, n := range s.Networks {
		g.Go(func() error { return floorRemoveNetwork(ctx, eng, n.Name) })
	}
	for _, v := range s.Volumes {
		g.Go(func() error {
			if err := eng.VolumeRemove(ctx, v, true); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("floor: remove volume %s: %w", v, err)
			}
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

func floorRemoveNetwork(ctx context.Context, eng floorEngine, name string) error {
	deadline := time.Now().Add(floorRelease)
	for {
		err := eng.NetworkRemove(ctx, name)
		switch {
		case err == nil, errdefs.IsNotFound(err):
			return nil
		case !strings.Contains(err.Error(), "active endpoints") || time.Now().After(deadline):
			return fmt.Errorf("floor: remove network %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("floor: remove network %s: %w", name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// removeFloors removes whatever any floor left: its containers, then its
// networks and volumes.
func removeFloors(ctx context.Context, eng floorEngine) error {
	f := filters.NewArgs(filters.Arg("label", floorLabel))
	cs, err := eng.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list floor containers: %w", err)
	}
	var errs []error
	for _, c := range cs {
		if err := eng.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove floor container %s: %w", c.ID, err))
		}
	}
	ns, err := eng.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list floor networks: %w", err))...)
	}
	for _, n := range ns {
		if err := floorRemoveNetwork(ctx, eng, n.ID); err != nil {
			errs = append(errs, err)
		}
	}
	vs, err := eng.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list floor volumes: %w", err))...)
	}
	for _, v := range vs.Volumes {
		if err := eng.VolumeRemove(ctx, v.Name, true); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove floor volume %s: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
}

// floorReport is the engine floor of each project, per round.
type floorReport struct {
	Orchestro floorFootprint    `json:"orchestro_objects"`
	Compose   floorFootprint    `json:"compose_objects"`
	Steps     []floorStepReport `json:"steps"`
}

// floorStepReport is one step of the floors: the wall time of each
// project's floor per round, and how the CLIs' own steps compare.
type floorStepReport struct {
	Step string `json:"step"`
	// CLIStep is the CLI step it is compared with (cliSteps' name).
	CLIStep          string    `json:"cli_step"`
	OrchestroSeconds []float64 `json:"orchestro_objects_seconds"`
	ComposeSeconds   []float64 `json:"compose_objects_seconds"`
	OrchestroStat    *stat     `json:"orchestro_objects,omitempty"`
	ComposeStat      *stat     `json:"compose_objects,omitempty"`
	// Ratio is the floor of orchestro's objects over compose's: the
	// engine's price of the one set over the other.
	Ratio *stat `json:"ratio_orchestro_compose,omitempty"`
	// OrchestroOver and ComposeOver are each CLI's step over the floor
	// of its own objects, paired within each round.
	OrchestroOver *stat `json:"orchestro_over_its_floor,omitempty"`
	ComposeOver   *stat `json:"compose_over_its_floor,omitempty"`
}

// floorSteps are the two steps of a floor, each with the CLI step it
// is compared with.
var floorSteps = []struct{ name, cli string }{
	{"up", cliSteps[0].name},
	{"down", cliSteps[len(cliSteps)-1].name},
}

// newFloorReport is an empty report for the floors of o and c.
func newFloorReport(o, c floorSpec) *floorReport {
	r := &floorReport{Orchestro: o.footprint(), Compose: c.footprint()}
	for _, s := range floorSteps {
		r.Steps = append(r.Steps, floorStepReport{Step: s.name, CLIStep: s.cli})
	}
	return r
}

// runFloor runs one round of a floor, up then down, and records it.
func (r *floorReport) runFloor(ctx context.Context, eng floorEngine, s floorSpec, cli string) error {
	up, err := floorUp(ctx, eng, s)
	if err != nil {
		return err
	}
	down, err := floorDown(ctx, eng, s)
	if err != nil {
		return err
	}
	for i, d := range []time.Duration{up, down} {
		st := &r.Steps[i]
		if cli == cliCompose {
			st.ComposeSeconds = append(st.ComposeSeconds, d.Seconds())
		} else {
			st.OrchestroSeconds = append(st.OrchestroSeconds, d.Seconds())
		}
	}
	return nil
}

// summarize derives the floors' summaries; steps are the CLI's steps.
func (r *floorReport) summarize(steps []cliStepReport) {
	for i := range r.Steps {
		st := &r.Steps[i]
		st.OrchestroStat = summarizeValues(st.OrchestroSeconds)
		st.ComposeStat = summarizeValues(st.ComposeSeconds)
		st.Ratio = summarizeValues(ratios(st.OrchestroSeconds, st.ComposeSeconds))
		for _, cs := range steps {
			if cs.Step == st.CLIStep {
				st.OrchestroOver = summarizeValues(ratios(cs.OrchestroSeconds, st.OrchestroSeconds))
				st.ComposeOver = summarizeValues(ratios(cs.ComposeSeconds, st.ComposeSeconds))
			}
		}
	}
}

func (r *floorReport) write(w io.Writer) {
	objects := func(fp floorFootprint) string {
		s := plural(fp.Containers, "container") + ", " + plural(fp.Networks, "network")
		if fp.Published > 0 {
			s += ", " + plural(fp.Published, "published port")
		}
		if fp.Volumes > 0 {
			s += ", " + plural(fp.Volumes, "volume")
		}
		return s
	}
	fmt.Fprintf(w, "\n  Engine floor: the objects each project has once up (orchestro's: %s; compose's: %s),\n", objects(r.Orchestro), objects(r.Compose))
	fmt.Fprintf(w, "  created and started, then stopped (%ds to exit) and removed, straight through the Engine API, all at once,\n", floorStopSeconds)
	fmt.Fprintf(w, "  every container running the replica image: what the engine alone takes for them; median [min – max]\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  step\torchestro's objects\tcompose's objects\tratio\torchestro over its floor\tcompose over its floor")
	for _, st := range r.Steps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", st.Step,
			fmtStat(st.OrchestroStat, fmtSeconds), fmtStat(st.ComposeStat, fmtSeconds), fmtStat(st.Ratio, fmtRatio),
			fmtStat(st.OrchestroOver, fmtRatio), fmtStat(st.ComposeOver, fmtRatio))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "  (over its floor: the CLI's %q and %q over the floor's up and down, paired within each round)\n", floorSteps[0].cli, floorSteps[1].cli)
}
