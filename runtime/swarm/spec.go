package swarm

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// Labels only the swarm target sets, on Swarm services.
const (
	// LabelTarget marks every Swarm service and network of a project
	// deployed to a swarm.
	LabelTarget = "io.orchestro.target"
	// LabelReplicas is the replica count the spec asked for when the
	// service was last deployed: a redeploy keeps the running count (set
	// by `scale` or the autoscaler) unless the spec's own count changed.
	LabelReplicas = "io.orchestro.replicas"
)

// The least time and tries the engine's health check of a task gets.
const (
	minEngineCheckTimeout = 5 * time.Second
	minEngineCheckRetries = 3
)

// gatewayReplicas is how many gateway tasks a cell runs when the swarm has
// the nodes for them.
const gatewayReplicas = 2

// Image is what a service runs on a swarm: a reference the nodes can
// resolve (by digest when pushed to a registry) and the container health
// check made from the service's health (nil when it has none).
type Image struct {
	Ref    string
	ID     string
	Health []string
}

// Deployment is the whole of a project on a swarm, as Up wants it.
type Deployment struct {
	Project  string
	Networks []Network
	Services []Service
}

// Network is an overlay network of the project.
type Network struct {
	Name      string
	Encrypted bool
	Labels    map[string]string
}

// Service is one Swarm service of the project: a service's replicas, a
// cell's gateway or the project's scaler.
type Service struct {
	Name string
	Role string
	Cell string
	// Service is the orchestro service it runs; empty for a gateway and
	// the scaler.
	Service string
	// Hash identifies the spec without its replica count: a service whose
	// hash is unchanged is left alone.
	Hash string
	Spec swarm.ServiceSpec
}

// Input is what a deployment is made from.
type Input struct {
	Project *cellspec.Project
	// GatewayImage is the gateway image as the nodes find it.
	GatewayImage string
	// Images holds every service's image, by cell and service.
	Images map[string]map[string]Image
	// Token is the project's admin token.
	Token string
	// AdminPort is the gateways' admin port in their containers.
	AdminPort int
	// Nodes is how many nodes can run a gateway: at most one gateway
	// replica runs per node, for its host-mode ports.
	Nodes int
	// Encrypted encrypts the overlay networks' traffic (IPsec).
	Encrypted bool
}

// ServiceName is the Swarm service of an orchestro service.
func ServiceName(project, cell, service string) string {
	return project + "-" + cell + "-" + service
}

// TasksName is the DNS name whose addresses are the running tasks of a
// Swarm service, on the networks it is attached to.
func TasksName(service string) string { return "tasks." + service }

// Plan turns the project into its Swarm services and networks. It is a
// pure function of its input.
func Plan(in Input) (*Deployment, error) {
	p := in.Project
	d := &Deployment{Project: p.Name}
	labels := func(extra map[string]string) map[string]string {
		l := map[string]string{engine.LabelProject: p.Name, LabelTarget: api.TargetSwarm}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}
	d.Networks = append(d.Networks, Network{Name: engine.MeshNetworkName(p.Name), Encrypted: in.Encrypted, Labels: labels(nil)})
	autoscaled := false
	for _, cell := range p.Cells {
		d.Networks = append(d.Networks, Network{Name: engine.NetworkName(p.Name, cell.Name), Encrypted: in.Encrypted,
			Labels: labels(map[string]string{engine.LabelCell: cell.Name})})
		spec := &api.GatewaySpec{Project: p.Name, Cell: cell, Images: map[string]api.ServiceImage{}, Peers: map[string]string{},
			AdminPort: in.AdminPort, Target: api.TargetSwarm, Discovery: map[string]string{}}
		for _, u := range cell.Uses {
			spec.Peers[u] = fmt.Sprintf("%s:%d", TasksName(engine.GatewayName(p.Name, u)), p.Cell(u).Gateway.Port)
		}
		for _, name := range cell.ServiceNames() {
			s := cell.Services[name]
			img, ok := in.Images[cell.Name][name]
			if !ok {
				return nil, fmt.Errorf("service %s/%s: no image", cell.Name, name)
			}
			spec.Images[name] = api.ServiceImage{Ref: img.Ref, ID: img.ID}
			spec.Discovery[name] = TasksName(ServiceName(p.Name, cell.Name, name))
			svc, err := replicaService(p.Name, cell, s, img, labels)
			if err != nil {
				return nil, err
			}
			d.Services = append(d.Services, svc)
			autoscaled = autoscaled || s.Autoscale != nil
		}
		gw, err := gatewayService(spec, in, labels)
		if err != nil {
			return nil, err
		}
		d.Services = append(d.Services, gw)
	}
	if autoscaled {
		d.Services = append(d.Services, scalerService(p.Name, in.GatewayImage, labels))
	}
	return d, nil
}

// replicaService is the Swarm service running an orchestro service's
// replicas: on its cell's network only, found by DNS round robin (no
// virtual IP: that needs IPVS, and the gateway balances anyway), rolled
// start-first and rolled back when an update fails.
func replicaService(project string, cell *cellspec.Cell, s *cellspec.Service, img Image, labels func(map[string]string) map[string]string) (Service, error) {
	name := ServiceName(project, cell.Name, s.Name)
	env := []string{}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, k+"="+s.Env[k])
	}
	env = append(env, "ORCHESTRO_PROJECT="+project, "ORCHESTRO_CELL="+cell.Name, "ORCHESTRO_SERVICE="+s.Name)
	cs := &swarm.ContainerSpec{
		Image:    img.Ref,
		Env:      env,
		Args:     s.Command,
		Command:  s.Entrypoint,
		Hostname: "{{.Service.Name}}-{{.Task.Slot}}",
	}
	if len(img.Health) > 0 && s.Health != nil {
		// The gateways' own checks decide routing, at the spec's pace.
		// The engine's check decides replacing, and runs through an exec
		// that a busy node can slow by seconds: it gets more time and
		// more tries before a task is killed for it.
		h := s.Health
		cs.Healthcheck = &container.HealthConfig{
			Test:        img.Health,
			Interval:    h.Interval.D(),
			Timeout:     max(h.Timeout.D(), minEngineCheckTimeout),
			Retries:     max(h.Retries, minEngineCheckRetries),
			StartPeriod: h.StartPeriod.D(),
		}
	}
	for _, v := range s.Volumes {
		if v.Type == cellspec.VolumeBind {
			// A bind mount names a path on whichever node runs the task.
			cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.TypeBind, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
			continue
		}
		cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.TypeVolume, Source: engine.VolumeName(project, v.Source), Target: v.Target, ReadOnly: v.ReadOnly,
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{engine.LabelProject: project, LabelTarget: api.TargetSwarm}}})
	}
	task := swarm.TaskSpec{
		ContainerSpec: cs,
		RestartPolicy: restartPolicy(s.Restart),
		Networks:      []swarm.NetworkAttachmentConfig{{Target: engine.NetworkName(project, cell.Name), Aliases: []string{s.Name}}},
	}
	if s.Resources.CPUs > 0 || s.Resources.Memory > 0 {
		task.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: int64(s.Resources.CPUs * 1e9), MemoryBytes: s.Resources.Memory}}
	}
	extra := map[string]string{engine.LabelCell: cell.Name, engine.LabelService: s.Name, engine.LabelRole: engine.RoleReplica,
		LabelReplicas: strconv.Itoa(s.Replicas)}
	if s.Autoscale != nil {
		a, err := json.Marshal(s.Autoscale)
		if err != nil {
			return Service{}, fmt.Errorf("service %s/%s: autoscale: %w", cell.Name, s.Name, err)
		}
		extra[engine.AutoscaleLabel] = string(a)
	}
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: name},
		TaskTemplate: task,
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(s.Replicas))}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStartFirst, FailureAction: swarm.UpdateFailureActionRollback,
			Monitor: 5 * time.Second, Delay: 0},
		RollbackConfig: &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStartFirst, FailureAction: swarm.UpdateFailureActionPause,
			Monitor: 5 * time.Second},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	hash := hashOf(spec)
	extra[engine.LabelConfigHash] = hash
	spec.Labels = labels(extra)
	return Service{Name: name, Role: engine.RoleReplica, Cell: cell.Name, Service: s.Name, Hash: hash, Spec: spec}, nil
}

// gatewayService is the Swarm service of a cell's gateway: up to two
// replicas, at most one per node, each publishing the cell's ports on its
// node in host mode (the routing mesh needs IPVS). A node's ports are
// held by its task, so updates stop the old task before starting the new.
func gatewayService(spec *api.GatewaySpec, in Input, labels func(map[string]string) map[string]string) (Service, error) {
	cell := spec.Cell
	name := engine.GatewayName(spec.Project, cell.Name)
	data, err := json.Marshal(spec)
	if err != nil {
		return Service{}, fmt.Errorf("encode spec of cell %s: %w", cell.Name, err)
	}
	ports := []swarm.PortConfig{
		{Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(cell.Gateway.Port), PublishedPort: uint32(cell.Gateway.Port), PublishMode: swarm.PortConfigPublishModeHost},
		// The admin port is published on a port the node picks; the
		// command line reads it from the task.
		{Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(spec.AdminPort), PublishMode: swarm.PortConfigPublishModeHost},
	}
	for _, l := range cell.Gateway.Listeners {
		ports = append(ports, swarm.PortConfig{Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(l.Port), PublishedPort: uint32(l.Port), PublishMode: swarm.PortConfigPublishModeHost})
	}
	cs := &swarm.ContainerSpec{
		Image: in.GatewayImage,
		Env:   []string{api.EnvSpec + "=" + escapeTemplate(string(data)), api.EnvToken + "=" + in.Token, api.EnvProject + "=" + spec.Project},
	}
	if len(cell.Flows) > 0 {
		// The journal is a volume of the node: a gateway task that
		// moves to another node starts with an empty one.
		cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.TypeVolume, Source: engine.JournalVolumeName(spec.Project, cell.Name), Target: api.JournalDir,
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{engine.LabelProject: spec.Project, LabelTarget: api.TargetSwarm}}})
	}
	replicas := uint64(min(gatewayReplicas, max(in.Nodes, 1)))
	s := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(time.Second)},
			Placement:     &swarm.Placement{MaxReplicas: 1},
			Networks: []swarm.NetworkAttachmentConfig{
				// On its cell's network the gateway answers to the names
				// of the cells it uses: egress goes through it.
				{Target: engine.NetworkName(spec.Project, cell.Name), Aliases: append([]string{cell.Name}, cell.Uses...)},
				{Target: engine.MeshNetworkName(spec.Project)},
			},
		},
		Mode:           swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig:   &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStopFirst, FailureAction: swarm.UpdateFailureActionRollback, Monitor: 5 * time.Second},
		RollbackConfig: &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStopFirst, FailureAction: swarm.UpdateFailureActionPause, Monitor: 5 * time.Second},
		EndpointSpec:   &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: ports},
	}
	hash := hashOf(s)
	s.Labels = labels(map[string]string{engine.LabelCell: cell.Name, engine.LabelRole: engine.RoleGateway, engine.LabelConfigHash: hash,
		engine.LabelAdminPort: strconv.Itoa(spec.AdminPort), LabelReplicas: strconv.FormatUint(replicas, 10)})
	return Service{Name: name, Role: engine.RoleGateway, Cell: cell.Name, Hash: hash, Spec: s}, nil
}

// scalerService is the project's single autoscaler: one task, on a
// manager (it updates services through the Swarm API of the node it runs
// on), stopped before its replacement starts, so there is never a second.
func scalerService(project, img string, labels func(map[string]string) map[string]string) Service {
	name := engine.KeeperName(project)
	s := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:  img,
				Args:   []string{"swarm-scaler"},
				Env:    []string{api.EnvProject + "=" + project},
				Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}},
			},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(time.Second)},
			Placement:     &swarm.Placement{Constraints: []string{"node.role==manager"}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: engine.MeshNetworkName(project)}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(1))}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStopFirst},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	hash := hashOf(s)
	s.Labels = labels(map[string]string{engine.LabelRole: engine.RoleKeeper, engine.LabelConfigHash: hash, LabelReplicas: "1"})
	return Service{Name: name, Role: engine.RoleKeeper, Hash: hash, Spec: s}
}

// escapeTemplate protects a value from Swarm, which expands Go templates
// ({{.Node.Hostname}}) in a task's environment: the "${{ … }}" expressions
// of flows would otherwise be taken for templates. An action that prints
// "{{" stands for each one.
func escapeTemplate(s string) string {
	return strings.ReplaceAll(s, "{{", `{{"{{"}}`)
}

// restartPolicy maps a service's restart setting to Swarm's.
func restartPolicy(r string) *swarm.RestartPolicy {
	cond := swarm.RestartPolicyConditionAny
	switch r {
	case cellspec.RestartOnFailure:
		cond = swarm.RestartPolicyConditionOnFailure
	case cellspec.RestartNever:
		cond = swarm.RestartPolicyConditionNone
	}
	return &swarm.RestartPolicy{Condition: cond, Delay: ptr(time.Second)}
}

// hashOf is the config hash of a spec without its replica count.
func hashOf(s swarm.ServiceSpec) string {
	s.Mode = swarm.ServiceMode{}
	s.Labels = nil
	return engine.ConfigHash(s)
}

func ptr[T any](v T) *T { return &v }
