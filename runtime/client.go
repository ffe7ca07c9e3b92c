package runtime

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// Client is the command line's side of the runtime: it builds images,
// creates networks and gateway containers, and talks to the gateways'
// admin APIs. It never changes a replica directly, except that Down
// removes the replicas a stopped gateway drained, and what the gateways
// left behind.
type Client struct {
	eng engine.Engine
	hc  *http.Client
	now func() time.Time
	// gwAdmin reaches the gateways' admin APIs for Up; tests replace it,
	// since a fake engine publishes no ports to reach a gateway on.
	gwAdmin gatewayAdmin
	// listGateways finds the project's gateways for the calls that go to
	// one by cell (findGateway) and for the execution calls. It is
	// c.gateways; tests point it at admin servers of their own, for the
	// reason above.
	listGateways func(ctx context.Context, project string) ([]gateway, error)
	// tokens keeps the admin token of each gateway container seen, by
	// container ID (see gateways).
	tokens sync.Map
}

// NewClient connects to the Docker engine named by the environment. When no
// engine answers the error is one line naming the address tried.
func NewClient(ctx context.Context) (*Client, error) {
	eng, err := engine.NewDockerEngine(ctx)
	if err != nil {
		return nil, err
	}
	return NewClientWithEngine(eng), nil
}

// NewClientWithEngine returns a client over an existing engine (tests pass
// a fake).
func NewClientWithEngine(eng engine.Engine) *Client {
	c := &Client{eng: eng, hc: &http.Client{}, now: time.Now}
	c.gwAdmin = engineAdmin{c}
	c.listGateways = c.anyGateways
	return c
}

// anyGateways lists the project's gateways on the local engine or, when
// it has none there, its gateway tasks on the swarm.
func (c *Client) anyGateways(ctx context.Context, project string) ([]gateway, error) {
	gws, err := c.gateways(ctx, project)
	if err != nil || len(gws) > 0 {
		return gws, err
	}
	return c.swarmGateways(ctx, project), nil
}

// Engine returns the engine the client uses.
func (c *Client) Engine() engine.Engine { return c.eng }

// gateway is a gateway container of a project, as found by label.
type gateway struct {
	id       string
	cell     string
	state    string
	hash     string
	token    string
	adminURL string
	port     int
	// onMesh is set when the gateway is on the project's mesh.
	onMesh bool
}

// gateways lists the project's gateway containers with their admin
// endpoints. The addresses come from the listing (an admin port is
// published anew at every start). The token only the container's
// environment holds, which never changes: it is read once per container,
// by inspecting the new ones at once, and kept (see Client.tokens), so that
// the calls that poll (wait, dash) cost the engine one listing.
func (c *Client) gateways(ctx context.Context, project string) ([]gateway, error) {
	list, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("label", engine.LabelRole+"="+engine.RoleGateway),
	)})
	if err != nil {
		return nil, fmt.Errorf("list gateways of project %s: %w", project, err)
	}
	out := make([]gateway, len(list))
	found := make([]bool, len(list))
	var wg sync.WaitGroup
	for i, s := range list {
		g := gateway{id: s.ID, cell: s.Labels[engine.LabelCell], state: s.State, hash: s.Labels[engine.LabelConfigHash]}
		if s.NetworkSettings != nil {
			_, g.onMesh = s.NetworkSettings.Networks[engine.MeshNetworkName(project)]
		}
		for _, p := range s.Ports {
			if p.PublicPort == 0 {
				continue
			}
			if isAdminPort(s.Labels, p.PrivatePort) {
				// A port published on every address is bound on 0.0.0.0
				// and on ::, at host ports that may differ: the URL is on
				// 127.0.0.1, so the IPv4 binding's port is the one.
				if strings.Contains(p.IP, ":") {
					continue
				}
				g.adminURL = "http://127.0.0.1:" + strconv.Itoa(int(p.PublicPort))
			} else {
				g.port = int(p.PrivatePort)
			}
		}
		out[i] = g
		if token, ok := c.tokens.Load(s.ID); ok {
			out[i].token, found[i] = token.(string), true
			continue
		}
		wg.Go(func() {
			ins, err := c.eng.ContainerInspect(ctx, s.ID)
			if err != nil {
				// Removed since the listing.
				return
			}
			for _, e := range ins.Config.Env {
				if v, ok := strings.CutPrefix(e, api.EnvToken+"="); ok {
					out[i].token = v
				}
			}
			c.tokens.Store(s.ID, out[i].token)
			found[i] = true
		})
	}
	wg.Wait()
	kept := out[:0]
	for i, g := range out {
		if found[i] {
			kept = append(kept, g)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].cell < kept[j].cell })
	return kept, nil
}

// isAdminPort reports whether the container port p is the admin port of
// the gateway with labels.
func isAdminPort(labels map[string]string, p uint16) bool {
	return labels[engine.LabelAdminPort] == strconv.Itoa(int(p))
}

func (c *Client) admin(g gateway) *admin.Client {
	a := admin.NewClient(g.adminURL, g.token, c.hc)
	a.Cell = g.cell
	return a
}

// findGateway returns the running gateway of one cell.
func (c *Client) findGateway(ctx context.Context, project, cell string) (gateway, error) {
	gws, err := c.listGateways(ctx, project)
	if err != nil {
		return gateway{}, err
	}
	var cells []string
	for _, g := range gws {
		if g.cell == cell {
			if g.state != "running" || g.adminURL == "" {
				return gateway{}, fmt.Errorf("the gateway of cell %s is %s; run `orchestro up`", cell, g.state)
			}
			return g, nil
		}
		cells = append(cells, g.cell)
	}
	if len(gws) == 0 {
		return gateway{}, fmt.Errorf("%w: project %s has no gateway; run `orchestro up`", api.ErrNotRunning, project)
	}
	return gateway{}, fmt.Errorf("project %s has no cell %q (cells: %s)", project, cell, strings.Join(cells, ", "))
}

// gatewayAdmin is the part of the gateways' admin API that Up uses. A
// gateway is named by project and cell and looked up on each call, because
// a gateway that was just started has a new admin address.
type gatewayAdmin interface {
	// status asks the gateway of a cell for its status.
	status(ctx context.Context, project, cell string) (api.CellStatus, error)
	// updateSpec hands the gateway of a cell a new spec, as JSON.
	updateSpec(ctx context.Context, project, cell string, spec []byte) error
}

// engineAdmin finds a gateway's admin address through the engine.
type engineAdmin struct{ c *Client }

func (a engineAdmin) status(ctx context.Context, project, cell string) (api.CellStatus, error) {
	g, err := a.c.findGateway(ctx, project, cell)
	if err != nil {
		return api.CellStatus{}, err
	}
	return a.c.admin(g).Status(ctx)
}

func (a engineAdmin) updateSpec(ctx context.Context, project, cell string, spec []byte) error {
	g, err := a.c.findGateway(ctx, project, cell)
	if err != nil {
		return err
	}
	return a.c.admin(g).UpdateSpec(ctx, spec)
}

// Status asks every gateway of the project for its cell's status. A gateway
// that does not answer shows as down, with its replicas as the engine
// sees them.
func (c *Client) Status(ctx context.Context, project string) (*api.ProjectStatus, error) {
	gws, err := c.gateways(ctx, project)
	if err != nil {
		return nil, err
	}
	if len(gws) == 0 {
		if snap := c.onSwarm(ctx, project); snap != nil {
			return c.swarmStatus(ctx, project, snap), nil
		}
	}
	st := &api.ProjectStatus{Project: project, Target: api.TargetDocker, Cells: make([]api.CellStatus, len(gws))}
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.Cells[i] = c.cellStatus(ctx, project, g)
		}()
	}
	wg.Wait()
	pending, failed := waitVerdict(func(string, string) bool { return true }, st, c.now())
	st.Ready = len(st.Cells) > 0 && len(pending) == 0 && failed == nil
	return st, nil
}

func (c *Client) cellStatus(ctx context.Context, project string, g gateway) api.CellStatus {
	if g.state == "running" && g.adminURL != "" {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		cs, err := c.admin(g).Status(sctx)
		if err == nil {
			err = sameCell(cs, g.cell, g.adminURL)
		}
		if err == nil {
			return cs
		}
		return c.downStatus(ctx, project, g, err.Error())
	}
	return c.downStatus(ctx, project, g, "gateway container is "+g.state)
}

// sameCell refuses a status that another cell's gateway gave at url:
// an address that has changed hands since it was read must not pass one
// cell's state off as another's.
func sameCell(cs api.CellStatus, cell, url string) error {
	if cs.Cell != cell {
		return fmt.Errorf("the gateway at %s answered for cell %q, not %q", url, cs.Cell, cell)
	}
	return nil
}

// downStatus describes a cell whose gateway does not answer, from the
// engine's view of its replicas.
func (c *Client) downStatus(ctx context.Context, project string, g gateway, why string) api.CellStatus {
	cs := api.CellStatus{Cell: g.cell, Gateway: "down", Error: why, Services: []api.ServiceStatus{}}
	if g.port > 0 {
		cs.URL = fmt.Sprintf("http://127.0.0.1:%d", g.port)
	}
	list, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("label", engine.LabelCell+"="+g.cell),
		filters.Arg("label", engine.LabelRole+"="+engine.RoleReplica),
	)})
	if err != nil {
		return cs
	}
	bySvc := map[string]*api.ServiceStatus{}
	var names []string
	for _, s := range list {
		svc := s.Labels[engine.LabelService]
		ss := bySvc[svc]
		if ss == nil {
			ss = &api.ServiceStatus{Service: svc, Image: s.Image, Health: "unknown", Replicas: []api.ReplicaStatus{}}
			bySvc[svc] = ss
			names = append(names, svc)
		}
		ss.Replicas = append(ss.Replicas, api.ReplicaStatus{Name: engine.ContainerName(s.Names), ContainerID: s.ID, State: s.State, Health: "unknown", ConfigHash: s.Labels[engine.LabelConfigHash]})
	}
	sort.Strings(names)
	for _, n := range names {
		cs.Services = append(cs.Services, *bySvc[n])
	}
	return cs
}

// Scale sets the replica count of a service through its gateway.
func (c *Client) Scale(ctx context.Context, project, cell, service string, replicas int) error {
	if snap := c.onSwarm(ctx, project); snap != nil {
		return c.swarmScale(ctx, snap, cell, service, replicas)
	}
	g, err := c.findGateway(ctx, project, cell)
	if err != nil {
		return err
	}
	return c.admin(g).Scale(ctx, service, replicas)
}

// Restart asks a gateway for a rolling restart of a service, or of all.
func (c *Client) Restart(ctx context.Context, project, cell, service string) error {
	if snap := c.onSwarm(ctx, project); snap != nil {
		return c.swarmRestart(ctx, snap, cell, service)
	}
	g, err := c.findGateway(ctx, project, cell)
	if err != nil {
		return err
	}
	return c.admin(g).Restart(ctx, service)
}

// Events writes the events of every gateway of the project to sink. With
// follow it keeps streaming, reconnecting to gateways that restart, until
// ctx ends.
func (c *Client) Events(ctx context.Context, project string, follow bool, sink func(api.Event)) error {
	gws, err := c.listGateways(ctx, project)
	if err != nil {
		return err
	}
	if len(gws) == 0 {
		return fmt.Errorf("%w: project %s has no gateway", api.ErrNotRunning, project)
	}
	var mu sync.Mutex
	emit := func(e api.Event) {
		mu.Lock()
		defer mu.Unlock()
		sink(e)
	}
	if !follow {
		var all []api.Event
		for _, g := range gws {
			if g.adminURL == "" || g.state != "running" {
				continue
			}
			if err := c.admin(g).Events(ctx, false, func(e api.Event) { all = append(all, e) }); err != nil {
				return err
			}
		}
		if snap := c.onSwarm(ctx, project); snap != nil {
			all = append(all, swarmScaledEvents(snap)...)
		}
		sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
		for _, e := range all {
			sink(e)
		}
		return nil
	}
	var wg sync.WaitGroup
	for _, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.followEvents(ctx, project, g, emit)
		}()
	}
	if c.onSwarm(ctx, project) != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.followScaled(ctx, project, emit)
		}()
	}
	wg.Wait()
	return nil
}

// followEvents streams one gateway's events, reconnecting after a gateway
// restart. Events already seen (same time and message) are skipped when
// the backlog is replayed.
func (c *Client) followEvents(ctx context.Context, project string, g gateway, emit func(api.Event)) {
	var last time.Time
	for ctx.Err() == nil {
		if g.adminURL != "" {
			_ = c.admin(g).Events(ctx, true, func(e api.Event) {
				if !e.Time.After(last) {
					return
				}
				last = e.Time
				emit(e)
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if ng, err := c.findGateway(ctx, project, g.cell); err == nil {
			g = ng
		}
	}
}
