package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"

	"github.com/orchestro/orchestro/runtime/engine"
)

// API is the part of the Docker Engine API the swarm target uses. The SDK
// client implements it; the engine it talks to must be a swarm manager.
type API interface {
	Info(ctx context.Context) (system.Info, error)
	NodeList(ctx context.Context, options swarm.NodeListOptions) ([]swarm.Node, error)
	ServiceCreate(ctx context.Context, service swarm.ServiceSpec, options swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error)
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, service swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	ServiceInspectWithRaw(ctx context.Context, serviceID string, options swarm.ServiceInspectOptions) (swarm.Service, []byte, error)
	ServiceRemove(ctx context.Context, serviceID string) error
	ServiceLogs(ctx context.Context, serviceID string, options container.LogsOptions) (io.ReadCloser, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error)
	NetworkRemove(ctx context.Context, networkID string) error
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
	VolumeRemove(ctx context.Context, volumeID string, force bool) error
}

// ErrNotManager is returned when the engine is not a manager of an active
// swarm.
var ErrNotManager = errors.New("the Docker engine is not a swarm manager")

// Manager checks that the engine manages a swarm and returns its nodes
// that are ready and active.
func Manager(ctx context.Context, a API) ([]swarm.Node, error) {
	info, err := a.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine info: %w", err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive {
		return nil, fmt.Errorf("%w: it is in no swarm (state %q); run `docker swarm init`, or point DOCKER_HOST or DOCKER_CONTEXT at a manager", ErrNotManager, info.Swarm.LocalNodeState)
	}
	if !info.Swarm.ControlAvailable {
		return nil, fmt.Errorf("%w: this node is a worker; point DOCKER_HOST or DOCKER_CONTEXT at a manager", ErrNotManager)
	}
	nodes, err := a.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list swarm nodes: %w", err)
	}
	var ready []swarm.Node
	for _, n := range nodes {
		if n.Status.State == swarm.NodeStateReady && n.Spec.Availability == swarm.NodeAvailabilityActive {
			ready = append(ready, n)
		}
	}
	return ready, nil
}

// Deployed lists the project's Swarm services, sorted by name. An engine
// that manages no swarm has none.
//
// Every command asks, to tell where the project runs. An engine that is
// not a manager refuses the list and writes two errors to its own log for
// each refusal, so when its ping says it is no manager it is not asked.
func Deployed(ctx context.Context, a API, project string) ([]swarm.Service, error) {
	if pingSaysNoManager(ctx, a) {
		return nil, nil
	}
	list, err := a.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+project))})
	if err != nil {
		if errdefs.IsUnavailable(err) || errdefs.IsFailedPrecondition(err) || strings.Contains(err.Error(), "not a swarm manager") {
			return nil, nil
		}
		return nil, fmt.Errorf("list swarm services of project %s: %w", project, err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Spec.Name < list[j].Spec.Name })
	return list, nil
}

// pinger is an engine connection that can ping the engine. Since API 1.42
// (Docker 23) the answer tells whether the engine manages a swarm; older
// engines do not say.
type pinger interface {
	Ping(ctx context.Context) (types.Ping, error)
}

// pingSaysNoManager reports whether the engine's ping says that it manages
// no swarm. It reports false whenever it cannot tell: the connection
// cannot ping, the ping failed, or the engine's answer does not say.
func pingSaysNoManager(ctx context.Context, a API) bool {
	p, ok := a.(pinger)
	if !ok {
		return false
	}
	ping, err := p.Ping(ctx)
	return err == nil && ping.SwarmStatus != nil && !ping.SwarmStatus.ControlAvailable
}

// Step reports the progress of Apply and Remove.
type Step interface {
	Start(id, text string)
	Done(id, text string, err error)
}

// Apply converges the swarm to d: it creates the networks that are
// missing, creates the services that are missing, updates those whose
// spec changed (Swarm rolls them), and with removeOrphans removes the
// project's services d does not hold. A service's running replica count
// is kept unless the spec's own count changed, so `scale` and the
// autoscaler's decisions survive a redeploy.
func Apply(ctx context.Context, a API, d *Deployment, removeOrphans bool, step Step) error {
	if err := ensureNetworks(ctx, a, d, step); err != nil {
		return err
	}
	existing, err := Deployed(ctx, a, d.Project)
	if err != nil {
		return err
	}
	byName := map[string]swarm.Service{}
	for _, s := range existing {
		byName[s.Spec.Name] = s
	}
	wanted := map[string]bool{}
	for _, s := range d.Services {
		wanted[s.Name] = true
		id := "service " + s.Name
		cur, ok := byName[s.Name]
		switch {
		case !ok:
			step.Start(id, "create service "+s.Name)
			_, err := a.ServiceCreate(ctx, s.Spec, swarm.ServiceCreateOptions{})
			step.Done(id, "create service "+s.Name, err)
			if err != nil {
				return fmt.Errorf("create service %s: %w", s.Name, err)
			}
		case cur.Spec.Labels[engine.LabelConfigHash] != s.Hash || cur.Spec.Labels[LabelReplicas] != s.Spec.Labels[LabelReplicas]:
			spec := s.Spec
			if cur.Spec.Labels[LabelReplicas] == s.Spec.Labels[LabelReplicas] && cur.Spec.Mode.Replicated != nil {
				spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: cur.Spec.Mode.Replicated.Replicas}}
			}
			if v, ok := cur.Spec.Labels[engine.ScaledLabel]; ok {
				spec.Labels = maps.Clone(spec.Labels)
				spec.Labels[engine.ScaledLabel] = v
			}
			step.Start(id, "update service "+s.Name)
			_, err := a.ServiceUpdate(ctx, cur.ID, cur.Version, spec, swarm.ServiceUpdateOptions{})
			step.Done(id, "update service "+s.Name, err)
			if err != nil {
				return fmt.Errorf("update service %s: %w", s.Name, err)
			}
		default:
			step.Done(id, "service "+s.Name+" is up to date", nil)
		}
	}
	if removeOrphans {
		for _, s := range existing {
			if wanted[s.Spec.Name] {
				continue
			}
			id := "service " + s.Spec.Name
			step.Start(id, "remove orphan service "+s.Spec.Name)
			err := a.ServiceRemove(ctx, s.ID)
			if errdefs.IsNotFound(err) {
				err = nil
			}
			step.Done(id, "remove orphan service "+s.Spec.Name, err)
			if err != nil {
				return fmt.Errorf("remove service %s: %w", s.Spec.Name, err)
			}
		}
	}
	return nil
}

// ensureNetworks creates the overlay networks of d that are missing. They
// are attachable, so a container started by hand (a debugging shell) can
// join a cell.
func ensureNetworks(ctx context.Context, a API, d *Deployment, step Step) error {
	list, err := a.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+d.Project))})
	if err != nil {
		return fmt.Errorf("list networks of project %s: %w", d.Project, err)
	}
	have := map[string]network.Summary{}
	for _, n := range list {
		have[n.Name] = n
	}
	for _, n := range d.Networks {
		if cur, ok := have[n.Name]; ok {
			if cur.Driver != "overlay" {
				return fmt.Errorf("network %s exists with driver %s: project %s runs on the local engine; run `orchestro down` first", n.Name, cur.Driver, d.Project)
			}
			continue
		}
		opts := map[string]string{}
		if n.Encrypted {
			opts["encrypted"] = ""
		}
		id := "network " + n.Name
		step.Start(id, "create network "+n.Name)
		_, err := a.NetworkCreate(ctx, n.Name, network.CreateOptions{Driver: "overlay", Scope: "swarm", Attachable: true, Labels: n.Labels, Options: opts})
		step.Done(id, "create network "+n.Name, err)
		if err != nil {
			return fmt.Errorf("create network %s: %w", n.Name, err)
		}
	}
	return nil
}

// Remove removes the project from the swarm: the scaler first (so it
// scales nothing being removed), then the gateways (so no request reaches
// a replica being removed), then the services, waiting for their
// containers on this node to go; then the networks and, with volumes, the
// volumes of this node.
func Remove(ctx context.Context, a API, project string, volumes bool, timeout time.Duration, step Step) (int, error) {
	services, err := Deployed(ctx, a, project)
	if err != nil {
		return 0, err
	}
	order := map[string]int{engine.RoleKeeper: 0, engine.RoleGateway: 1, engine.RoleReplica: 2}
	sort.SliceStable(services, func(i, j int) bool {
		return order[services[i].Spec.Labels[engine.LabelRole]] < order[services[j].Spec.Labels[engine.LabelRole]]
	})
	var errs []error
	for _, s := range services {
		id := "service " + s.Spec.Name
		step.Start(id, "remove service "+s.Spec.Name)
		err := a.ServiceRemove(ctx, s.ID)
		if errdefs.IsNotFound(err) {
			err = nil
		}
		step.Done(id, "remove service "+s.Spec.Name, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("remove service %s: %w", s.Spec.Name, err))
		}
	}
	// Swarm stops the tasks' containers after the services are gone; a
	// network or a volume can only go once they have. Those of this node
	// are waited for (those of other nodes go on their own).
	deadline := time.Now().Add(timeout + 30*time.Second)
	for _, s := range services {
		if err := waitContainersGone(ctx, a, s.ID, deadline); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.Spec.Name, err))
		}
	}
	nets, err := a.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+project))})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks: %w", err))
	}
	for _, n := range nets {
		if n.Scope != "swarm" {
			continue
		}
		// The manager removes a network at once; this node lets go of
		// it a moment later.
		err := poll(ctx, deadline, func() (bool, error) { return removed(a.NetworkRemove(ctx, n.ID)) })
		if err == nil {
			err = poll(ctx, deadline, func() (bool, error) {
				list, err := a.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("id", n.ID))})
				return err == nil && len(list) == 0, fmt.Errorf("the node still lists it")
			})
		}
		step.Done("network "+n.Name, "remove network "+n.Name, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
		}
	}
	if volumes {
		vols, err := a.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+project))})
		if err != nil {
			errs = append(errs, fmt.Errorf("list volumes: %w", err))
		}
		for _, v := range vols.Volumes {
			err := poll(ctx, deadline, func() (bool, error) { return removed(a.VolumeRemove(ctx, v.Name, false)) })
			step.Done("volume "+v.Name, "remove volume "+v.Name, err)
			if err != nil {
				errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			}
		}
	}
	return len(services), errors.Join(errs...)
}

// removed reads the answer to a removal for poll: done when the object is
// gone, whether by this call or before it.
func removed(err error) (bool, error) {
	if err == nil || errdefs.IsNotFound(err) {
		return true, nil
	}
	return false, err
}

// waitContainersGone waits until this node runs no container of a
// removed service's tasks.
func waitContainersGone(ctx context.Context, a API, service string, deadline time.Time) error {
	return poll(ctx, deadline, func() (bool, error) {
		list, err := a.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.id="+service))})
		return err == nil && len(list) == 0, fmt.Errorf("%d task containers are still on this node", len(list))
	})
}

// poll calls try every pollInterval until it is done, and fails with its
// last error once deadline passes or ctx ends.
func poll(ctx context.Context, deadline time.Time, try func() (bool, error)) error {
	for {
		done, err := try()
		if done {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollInterval):
		}
	}
}

// pollInterval is how often Remove looks again at what Swarm removes.
const pollInterval = 100 * time.Millisecond

// Scale sets the replica count of a Swarm service.
func Scale(ctx context.Context, a API, name string, replicas int) error {
	return update(ctx, a, name, "scale", func(spec *swarm.ServiceSpec) error {
		if spec.Mode.Replicated == nil {
			return fmt.Errorf("service %s is not replicated", name)
		}
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: ptr(uint64(replicas))}
		return nil
	})
}

// Restart rolls every task of a Swarm service through its update policy
// (start-first for replicas, stop-first for gateways).
// It returns once Swarm has started the update, so a wait that follows
// sees it under way rather than the end of an earlier one.
func Restart(ctx context.Context, a API, name string) error {
	asked := time.Now()
	err := update(ctx, a, name, "restart", func(spec *swarm.ServiceSpec) error {
		spec.TaskTemplate.ForceUpdate++
		return nil
	})
	if err != nil {
		return err
	}
	return poll(ctx, time.Now().Add(10*time.Second), func() (bool, error) {
		s, _, err := a.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
		if err != nil {
			return false, fmt.Errorf("inspect service %s: %w", name, err)
		}
		u := s.UpdateStatus
		// Swarm's clock and ours may differ a little.
		return u != nil && u.StartedAt != nil && u.StartedAt.After(asked.Add(-2*time.Second)), fmt.Errorf("swarm has not started the rolling update of %s", name)
	})
}

// update changes a Swarm service's spec with the version it read: Swarm
// refuses a write based on a stale read, so a concurrent change (the
// scaler's) is never overwritten blindly; the change is made again on a
// fresh read.
func update(ctx context.Context, a API, name, what string, change func(*swarm.ServiceSpec) error) error {
	for attempt := 0; ; attempt++ {
		s, _, err := a.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect service %s: %w", name, err)
		}
		spec := s.Spec
		if err := change(&spec); err != nil {
			return err
		}
		_, err = a.ServiceUpdate(ctx, s.ID, s.Version, spec, swarm.ServiceUpdateOptions{})
		if err == nil {
			return nil
		}
		if !IsOutOfSequence(err) || attempt >= 5 {
			return fmt.Errorf("%s service %s: %w", what, name, err)
		}
	}
}

// IsOutOfSequence reports whether Swarm refused an update made from a
// stale version of the service.
func IsOutOfSequence(err error) bool {
	return err != nil && strings.Contains(err.Error(), "update out of sequence")
}

// Replicas returns the replica count a Swarm service asks for.
func Replicas(s swarm.Service) int {
	if s.Spec.Mode.Replicated == nil || s.Spec.Mode.Replicated.Replicas == nil {
		return 0
	}
	return int(*s.Spec.Mode.Replicated.Replicas)
}

// Slot is the name a task of an orchestro service shows under: the
// service and the task's slot ("catalog-2").
func Slot(service string, t swarm.Task) string { return service + "-" + strconv.Itoa(t.Slot) }
