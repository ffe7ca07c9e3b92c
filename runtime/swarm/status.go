package swarm

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// Snapshot is the project as the swarm sees it: its services, the tasks
// Swarm wants running, and the nodes.
type Snapshot struct {
	Project  string
	Services []swarm.Service
	// Tasks holds, by service ID, the tasks whose desired state is
	// running, by slot.
	Tasks map[string][]swarm.Task
	Nodes map[string]swarm.Node
	// Local is the ID of the node the engine runs on.
	Local string
}

// Observe takes a snapshot of the project on the swarm.
func Observe(ctx context.Context, a API, project string) (*Snapshot, error) {
	services, err := Deployed(ctx, a, project)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Project: project, Services: services, Tasks: map[string][]swarm.Task{}, Nodes: map[string]swarm.Node{}}
	if len(services) == 0 {
		return snap, nil
	}
	tasks, err := a.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+project), filters.Arg("desired-state", "running"))})
	if err != nil {
		return nil, fmt.Errorf("list swarm tasks of project %s: %w", project, err)
	}
	// Task labels are the container spec's; the project's tasks are found
	// by service instead when they carry none.
	if len(tasks) == 0 {
		for _, s := range services {
			ts, err := a.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", s.ID), filters.Arg("desired-state", "running"))})
			if err != nil {
				return nil, fmt.Errorf("list tasks of service %s: %w", s.Spec.Name, err)
			}
			tasks = append(tasks, ts...)
		}
	}
	for _, t := range tasks {
		snap.Tasks[t.ServiceID] = append(snap.Tasks[t.ServiceID], t)
	}
	for id := range snap.Tasks {
		ts := snap.Tasks[id]
		sort.Slice(ts, func(i, j int) bool { return ts[i].Slot < ts[j].Slot })
	}
	nodes, err := a.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list swarm nodes: %w", err)
	}
	for _, n := range nodes {
		snap.Nodes[n.ID] = n
	}
	if info, err := a.Info(ctx); err == nil {
		snap.Local = info.Swarm.NodeID
	}
	return snap, nil
}

// Gateway is a running gateway task, with the address of its admin API on
// the node that runs it.
type Gateway struct {
	Cell     string
	Task     string
	Node     string
	AdminURL string
	Token    string
	// Port is the cell's data port, published on the node.
	Port int
	// Host is the node's address, to reach the published ports.
	Host string
}

// Gateways lists the running gateway tasks of every cell, by cell and
// slot.
func (s *Snapshot) Gateways() []Gateway {
	var out []Gateway
	for _, svc := range s.Services {
		if svc.Spec.Labels[engine.LabelRole] != engine.RoleGateway {
			continue
		}
		adminPort, _ := strconv.Atoi(svc.Spec.Labels[engine.LabelAdminPort])
		token := serviceToken(svc)
		for _, t := range s.Tasks[svc.ID] {
			if t.Status.State != swarm.TaskStateRunning {
				continue
			}
			g := Gateway{Cell: svc.Spec.Labels[engine.LabelCell], Task: t.ID, Node: s.NodeName(t.NodeID), Token: token, Host: s.nodeAddr(t.NodeID)}
			var admin []uint32
			for _, p := range t.Status.PortStatus.Ports {
				switch int(p.TargetPort) {
				case adminPort:
					admin = append(admin, p.PublishedPort)
				default:
					if g.Port == 0 {
						g.Port = int(p.PublishedPort)
					}
				}
			}
			if len(admin) == 0 {
				continue
			}
			// A port published on the node's every address is listed
			// once per binding, the IPv4 one first, and the engine may
			// give the IPv6 one another host port: the binding of the
			// node address's family is the gateway's, where the other
			// port may be another gateway's.
			port := admin[0]
			if strings.Contains(g.Host, ":") {
				port = admin[len(admin)-1]
			}
			g.AdminURL = "http://" + net.JoinHostPort(g.Host, strconv.Itoa(int(port)))
			out = append(out, g)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Cell < out[j].Cell })
	return out
}

// Token is the admin token the project's gateway services carry, so a
// redeploy keeps it; "" when none does.
func (s *Snapshot) Token() string {
	for _, svc := range s.Services {
		if svc.Spec.Labels[engine.LabelRole] == engine.RoleGateway {
			if t := serviceToken(svc); t != "" {
				return t
			}
		}
	}
	return ""
}

// serviceToken is the admin token in a service's environment.
func serviceToken(svc swarm.Service) string {
	if svc.Spec.TaskTemplate.ContainerSpec == nil {
		return ""
	}
	for _, e := range svc.Spec.TaskTemplate.ContainerSpec.Env {
		if v, ok := strings.CutPrefix(e, api.EnvToken+"="); ok {
			return v
		}
	}
	return ""
}

// NodeName is a node's host name, or its ID when it is unknown.
func (s *Snapshot) NodeName(id string) string {
	if n, ok := s.Nodes[id]; ok && n.Description.Hostname != "" {
		return n.Description.Hostname
	}
	return id
}

// nodeAddr is the address the command line reaches a node's published
// ports on: loopback for the node the engine runs on.
func (s *Snapshot) nodeAddr(id string) string {
	if id == s.Local || s.Local == "" {
		return "127.0.0.1"
	}
	if n, ok := s.Nodes[id]; ok && n.Status.Addr != "" {
		return n.Status.Addr
	}
	return "127.0.0.1"
}

// Cells returns the names of the project's cells, sorted.
func (s *Snapshot) Cells() []string {
	seen := map[string]bool{}
	var out []string
	for _, svc := range s.Services {
		c := svc.Spec.Labels[engine.LabelCell]
		if c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// CellStatus is the status of one cell: the swarm's services and tasks,
// with what the cell's gateways see of them (health, traffic) when they
// answered. views holds one status per gateway task that answered.
func (s *Snapshot) CellStatus(cell string, views []api.CellStatus, gwErr string) api.CellStatus {
	cs := api.CellStatus{Cell: cell, Gateway: "down", Services: []api.ServiceStatus{}, Error: gwErr}
	if len(views) > 0 {
		v := views[0]
		cs.Gateway, cs.SpecHash, cs.Flows, cs.Error = v.Gateway, v.SpecHash, v.Flows, ""
	}
	for _, svc := range s.Services {
		l := svc.Spec.Labels
		if l[engine.LabelCell] != cell {
			continue
		}
		switch l[engine.LabelRole] {
		case engine.RoleGateway:
			for _, g := range s.Gateways() {
				if g.Cell == cell && cs.URL == "" && g.Port > 0 {
					cs.URL = "http://" + net.JoinHostPort(g.Host, strconv.Itoa(g.Port))
				}
			}
		case engine.RoleReplica:
			cs.Services = append(cs.Services, s.serviceStatus(svc, views))
		}
	}
	sort.Slice(cs.Services, func(i, j int) bool { return cs.Services[i].Service < cs.Services[j].Service })
	return cs
}

// serviceStatus merges Swarm's view of a service (desired count, tasks,
// nodes) with its gateways' (health, traffic, autoscaling).
func (s *Snapshot) serviceStatus(svc swarm.Service, views []api.CellStatus) api.ServiceStatus {
	name := svc.Spec.Labels[engine.LabelService]
	ss := api.ServiceStatus{Service: name, Desired: Replicas(svc), Replicas: []api.ReplicaStatus{}}
	if cs := svc.Spec.TaskTemplate.ContainerSpec; cs != nil {
		ss.Image = cs.Image
	}
	// What the gateways see, by replica address. Traffic adds up over
	// gateways (each sees its own requests); health is the first's.
	seen := map[string]api.ReplicaStatus{}
	for i, v := range views {
		for _, vs := range v.Services {
			if vs.Service != name {
				continue
			}
			if i == 0 {
				ss.Autoscale, ss.P50Ms, ss.P99Ms, ss.ErrorRate = vs.Autoscale, vs.P50Ms, vs.P99Ms, vs.ErrorRate
			}
			ss.InFlight += vs.InFlight
			ss.RPS += vs.RPS
			ss.Requests += vs.Requests
			for _, r := range vs.Replicas {
				host, _, _ := net.SplitHostPort(r.Address)
				cur, ok := seen[host]
				if !ok {
					cur = r
				} else {
					cur.InFlight += r.InFlight
					cur.RPS += r.RPS
					cur.Requests += r.Requests
				}
				seen[host] = cur
			}
		}
	}
	if raw, ok := svc.Spec.Labels[engine.AutoscaleLabel]; ok && ss.Autoscale == nil {
		// The gateways do not scale on a swarm; the bounds are the
		// service's own.
		var a cellspec.Autoscale
		if json.Unmarshal([]byte(raw), &a) == nil {
			ss.Autoscale = &api.AutoscaleStatus{Min: a.Min, Max: a.Max}
		}
	}
	if ss.Autoscale != nil {
		if e, ok := ScaledEvent(svc); ok {
			ss.Autoscale.LastDecision, ss.Autoscale.LastChange = e.Message, e.Time
		}
	}
	updating := svc.UpdateStatus != nil && (svc.UpdateStatus.State == swarm.UpdateStateUpdating || svc.UpdateStatus.State == swarm.UpdateStateRollbackStarted)
	for _, t := range s.Tasks[svc.ID] {
		r := api.ReplicaStatus{Name: Slot(name, t), Replica: t.Slot, State: string(t.Status.State), Health: "starting", Node: s.NodeName(t.NodeID)}
		if t.Status.ContainerStatus != nil {
			r.ContainerID = t.Status.ContainerStatus.ContainerID
		}
		if t.Status.State == swarm.TaskStateRunning {
			r.Started = t.Status.Timestamp
		}
		// The task's current spec is the service's unless an update is
		// still rolling it.
		r.ConfigHash = svc.Spec.Labels[engine.LabelConfigHash]
		if updating && t.Spec.ContainerSpec != nil && svc.Spec.TaskTemplate.ContainerSpec != nil && t.Spec.ContainerSpec.Image != svc.Spec.TaskTemplate.ContainerSpec.Image {
			r.ConfigHash = "previous"
		}
		if ip := taskIP(t); ip != "" {
			if v, ok := seen[ip]; ok {
				r.Address, r.Health, r.InFlight, r.RPS, r.Requests = v.Address, v.Health, v.InFlight, v.RPS, v.Requests
			} else {
				r.Address = ip
			}
		}
		if t.Status.State != swarm.TaskStateRunning {
			r.Health = "starting"
			if t.Status.Err != "" {
				ss.LastError = t.Status.Err
			}
		}
		if t.Status.State == swarm.TaskStateRunning && (r.Health == "healthy" || r.Health == "none") {
			ss.Ready++
		}
		ss.Replicas = append(ss.Replicas, r)
	}
	ss.Health = summarize(ss)
	if updating {
		ss.Restarting = max(1, ss.Desired-countHash(ss.Replicas, svc.Spec.Labels[engine.LabelConfigHash]))
	}
	return ss
}

func countHash(rs []api.ReplicaStatus, hash string) int {
	n := 0
	for _, r := range rs {
		if r.ConfigHash == hash {
			n++
		}
	}
	return n
}

// summarize sums up a service's replicas as the local target does.
func summarize(ss api.ServiceStatus) string {
	switch {
	case ss.Desired == 0:
		return "stopped"
	case ss.Ready >= ss.Desired:
		return "healthy"
	}
	for _, r := range ss.Replicas {
		if r.Health == "unhealthy" {
			return "unhealthy"
		}
	}
	return "starting"
}

// taskIP is a task's address on the first network it is attached to that
// has one (a service task is on its cell's network only).
func taskIP(t swarm.Task) string {
	for _, na := range t.NetworksAttachments {
		if na.Network.Spec.Name == "ingress" {
			continue
		}
		for _, a := range na.Addresses {
			if ip, _, err := net.ParseCIDR(a); err == nil {
				return ip.String()
			}
		}
	}
	return ""
}

// ScaledEvent returns the scaler's latest decision about a service, from the
// label the scaler sets with the new count.
func ScaledEvent(svc swarm.Service) (api.Event, bool) {
	raw, ok := svc.Spec.Labels[engine.ScaledLabel]
	if !ok {
		return api.Event{}, false
	}
	var e api.Event
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return api.Event{}, false
	}
	return e, true
}
