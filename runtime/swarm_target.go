package runtime

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerswarm "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"
	"golang.org/x/sync/errgroup"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/image"
	"github.com/orchestro/orchestro/runtime/swarm"
)

// The swarm target: where the command line's calls go when a project runs
// as Swarm services (see package swarm). Commands other than up find the
// target from what is deployed.

// swarmAPI returns the engine as the swarm target uses it.
func (c *Client) swarmAPI() (swarm.API, error) {
	a, ok := c.eng.(swarm.API)
	if !ok {
		return nil, fmt.Errorf("%w: this engine connection cannot manage a swarm", swarm.ErrNotManager)
	}
	return a, nil
}

// onSwarm returns the project's snapshot when it runs on a swarm the
// engine manages, and nil when it does not.
func (c *Client) onSwarm(ctx context.Context, project string) *swarm.Snapshot {
	a, ok := c.eng.(swarm.API)
	if !ok {
		return nil
	}
	snap, err := swarm.Observe(ctx, a, project)
	if err != nil || len(snap.Services) == 0 {
		return nil
	}
	return snap
}

// upTarget decides where Up deploys: the target asked for (the flag, else
// the project file), else where the project runs, else the local engine.
// A project runs on one target at a time.
func (c *Client) upTarget(ctx context.Context, p *cellspec.Project, opts api.UpOptions) (string, error) {
	asked := opts.Target
	if asked == "" {
		asked = p.Target
	}
	switch asked {
	case "", api.TargetDocker, api.TargetSwarm:
	default:
		return "", fmt.Errorf("unknown target %q: use docker or swarm", asked)
	}
	onSwarm := c.onSwarm(ctx, p.Name) != nil
	switch {
	case asked == api.TargetSwarm:
		gws, err := c.gateways(ctx, p.Name)
		if err != nil {
			return "", err
		}
		if len(gws) > 0 {
			return "", fmt.Errorf("project %s runs on the local engine: run `orchestro down` before `up --target swarm`", p.Name)
		}
		return api.TargetSwarm, nil
	case asked == api.TargetDocker && onSwarm:
		return "", fmt.Errorf("project %s runs on a swarm: run `orchestro down` before `up --target docker`", p.Name)
	case onSwarm:
		return api.TargetSwarm, nil
	}
	return api.TargetDocker, nil
}

// upSwarm deploys the project to the swarm the engine manages: it builds
// the images, adds the health probe to those that need it, pushes them to
// the registry when there is one, and converges the project's networks
// and services.
func (c *Client) upSwarm(ctx context.Context, p *cellspec.Project, opts api.UpOptions, progress api.Progress) error {
	a, err := c.swarmAPI()
	if err != nil {
		return err
	}
	start := c.now()
	if opts.Registry != "" {
		if _, err := image.ParseRegistry(opts.Registry); err != nil {
			return err
		}
	}
	nodes, err := swarm.Manager(ctx, a)
	if err != nil {
		return err
	}
	if len(nodes) > 1 && opts.Registry == "" {
		return fmt.Errorf("the swarm has %d nodes and images built here exist on this node only: pass --registry HOST[:PORT][/PREFIX] so every node can pull them", len(nodes))
	}
	gwImage, images, err := c.buildImages(ctx, p, opts, progress)
	if err != nil {
		return err
	}
	pusher, _ := c.eng.(image.Pusher)
	publish := func(ref string) (string, error) {
		if opts.Registry == "" {
			return ref, nil
		}
		if pusher == nil {
			return "", fmt.Errorf("push %s: this engine connection cannot push images", ref)
		}
		progress.Start("push "+ref, "push "+ref)
		out, err := image.Push(ctx, pusher, ref, opts.Registry, io.Discard)
		progress.Done("push "+ref, "push "+ref+" as "+out, err)
		return out, err
	}
	gwRef, err := publish(gwImage)
	if err != nil {
		return err
	}
	// Each service's image gains the health probe and goes to the
	// registry, a few at a time: the engine builds and pushes in parallel.
	simages := map[string]map[string]swarm.Image{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	for _, cell := range p.Cells {
		simages[cell.Name] = map[string]swarm.Image{}
		for _, name := range cell.ServiceNames() {
			s := cell.Services[name]
			img := images[cell.Name][name]
			g.Go(func() error {
				what := cell.Name + "/" + name
				ref := img.Ref
				if ref == "" {
					ref = s.Image
				}
				if s.Health != nil && image.NeedsProbe(s.Health) {
					progress.Start("probe "+what, "health probe for "+what)
					var err error
					ref, err = image.WithProbe(gctx, c.eng, ref, gwImage, io.Discard)
					progress.Done("probe "+what, "health probe for "+what, err)
					if err != nil {
						return fmt.Errorf("service %s: %w", what, err)
					}
				}
				ref, err := publish(ref)
				if err != nil {
					return fmt.Errorf("service %s: %w", what, err)
				}
				mu.Lock()
				defer mu.Unlock()
				simages[cell.Name][name] = swarm.Image{Ref: ref, ID: img.ID, Health: image.ProbeTest(s.Health, s.Port)}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// A redeploy keeps the project's token.
	token := ""
	if snap, err := swarm.Observe(ctx, a, p.Name); err == nil {
		token = snap.Token()
	}
	if token == "" {
		token = newToken()
	}
	d, err := swarm.Plan(swarm.Input{Project: p, GatewayImage: gwRef, Images: simages, Token: token, AdminPort: pickAdminPort(p),
		Nodes: len(nodes), Encrypted: p.Swarm.Encrypted})
	if err != nil {
		return err
	}
	if err := swarm.Apply(ctx, a, d, opts.RemoveOrphans, progress); err != nil {
		return err
	}
	progress.Note(fmt.Sprintf("project %s deployed to the swarm in %s", p.Name, c.now().Sub(start).Round(time.Millisecond)))
	if !opts.Wait {
		return nil
	}
	return c.wait(ctx, p, opts.WaitTimeout, progress)
}

// swarmGateways lists the running gateway tasks of a project on a swarm
// as the calls that go to a gateway by cell see them.
func (c *Client) swarmGateways(ctx context.Context, project string) []gateway {
	snap := c.onSwarm(ctx, project)
	if snap == nil {
		return nil
	}
	var out []gateway
	for _, g := range snap.Gateways() {
		out = append(out, gateway{id: g.Task, cell: g.Cell, state: "running", token: g.Token, adminURL: g.AdminURL, port: g.Port})
	}
	return out
}

// swarmStatus is Status on a swarm: Swarm's services and tasks, with what
// every gateway task sees of them.
func (c *Client) swarmStatus(ctx context.Context, project string, snap *swarm.Snapshot) *api.ProjectStatus {
	gws := snap.Gateways()
	views := make([]api.CellStatus, len(gws))
	errs := make([]error, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			a := admin.NewClient(g.AdminURL, g.Token, c.hc)
			a.Cell = g.Cell
			views[i], errs[i] = a.Status(sctx)
			if errs[i] == nil {
				errs[i] = sameCell(views[i], g.Cell, g.AdminURL)
			}
		}()
	}
	wg.Wait()
	byCell := map[string][]api.CellStatus{}
	why := map[string]string{}
	for i, g := range gws {
		if errs[i] != nil {
			why[g.Cell] = fmt.Sprintf("gateway on %s: %v", g.Node, errs[i])
			continue
		}
		byCell[g.Cell] = append(byCell[g.Cell], views[i])
	}
	st := &api.ProjectStatus{Project: project, Target: api.TargetSwarm}
	for _, cell := range snap.Cells() {
		if _, ok := why[cell]; !ok && len(byCell[cell]) == 0 {
			why[cell] = "no gateway task is running"
		}
		cs := snap.CellStatus(cell, byCell[cell], why[cell])
		// Every gateway task routes: until each one the service wants
		// answers, the cell is starting.
		if want := gatewayReplicas(snap, cell); cs.Gateway == "running" && len(byCell[cell]) < want {
			cs.Gateway = "starting"
		}
		st.Cells = append(st.Cells, cs)
	}
	pending, failed := waitVerdict(func(string, string) bool { return true }, st, c.now())
	st.Ready = len(st.Cells) > 0 && len(pending) == 0 && failed == nil
	return st
}

// gatewayReplicas is how many gateway tasks a cell's gateway service wants.
func gatewayReplicas(snap *swarm.Snapshot, cell string) int {
	for _, s := range snap.Services {
		if s.Spec.Labels[engine.LabelRole] == engine.RoleGateway && s.Spec.Labels[engine.LabelCell] == cell {
			return swarm.Replicas(s)
		}
	}
	return 0
}

// swarmService finds the Swarm service of cell/service in a snapshot.
func swarmService(snap *swarm.Snapshot, cell, service string) (dockerswarm.Service, error) {
	var names []string
	for _, s := range snap.Services {
		l := s.Spec.Labels
		if l[engine.LabelCell] != cell || l[engine.LabelRole] != engine.RoleReplica {
			continue
		}
		if l[engine.LabelService] == service {
			return s, nil
		}
		names = append(names, l[engine.LabelService])
	}
	if len(names) == 0 {
		return dockerswarm.Service{}, fmt.Errorf("project %s has no cell %q", snap.Project, cell)
	}
	return dockerswarm.Service{}, fmt.Errorf("cell %s has no service %q (services: %s)", cell, service, strings.Join(names, ", "))
}

// swarmScale sets a service's replica count on a swarm.
func (c *Client) swarmScale(ctx context.Context, snap *swarm.Snapshot, cell, service string, replicas int) error {
	a, err := c.swarmAPI()
	if err != nil {
		return err
	}
	s, err := swarmService(snap, cell, service)
	if err != nil {
		return err
	}
	return swarm.Scale(ctx, a, s.ID, replicas)
}

// swarmRestart rolls a service, or every service of a cell, through
// Swarm's update.
func (c *Client) swarmRestart(ctx context.Context, snap *swarm.Snapshot, cell, service string) error {
	a, err := c.swarmAPI()
	if err != nil {
		return err
	}
	if service != "" {
		s, err := swarmService(snap, cell, service)
		if err != nil {
			return err
		}
		return swarm.Restart(ctx, a, s.ID)
	}
	n := 0
	for _, s := range snap.Services {
		if s.Spec.Labels[engine.LabelCell] == cell && s.Spec.Labels[engine.LabelRole] == engine.RoleReplica {
			if err := swarm.Restart(ctx, a, s.ID); err != nil {
				return err
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("project %s has no cell %q", snap.Project, cell)
	}
	return nil
}

// swarmDown removes the project from the swarm.
func (c *Client) swarmDown(ctx context.Context, project string, opts api.DownOptions, progress api.Progress) (int, error) {
	a, err := c.swarmAPI()
	if err != nil {
		return 0, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return swarm.Remove(ctx, a, project, opts.Volumes, timeout, progress)
}

// swarmLogs writes the log lines of the project's services on a swarm:
// Swarm gathers them from every node. A task's lines name its slot.
func (c *Client) swarmLogs(ctx context.Context, snap *swarm.Snapshot, opts api.LogOptions, sink func(api.LogLine)) error {
	a, err := c.swarmAPI()
	if err != nil {
		return err
	}
	var picked []dockerswarm.Service
	for _, s := range snap.Services {
		l := s.Spec.Labels
		role := l[engine.LabelRole]
		if role == engine.RoleKeeper || opts.Cell != "" && l[engine.LabelCell] != opts.Cell {
			continue
		}
		switch opts.Service {
		case "":
		case engine.RoleGateway:
			if role != engine.RoleGateway {
				continue
			}
		default:
			if role != engine.RoleReplica || l[engine.LabelService] != opts.Service {
				continue
			}
		}
		picked = append(picked, s)
	}
	if len(picked) == 0 {
		return fmt.Errorf("project %s has no service to show the logs of", snap.Project)
	}
	lo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: opts.Follow, Tail: "all", Details: true}
	if opts.Tail >= 0 {
		lo.Tail = fmt.Sprint(opts.Tail)
	}
	if !opts.Since.IsZero() {
		lo.Since = fmt.Sprint(opts.Since.Unix())
	}
	var mu sync.Mutex
	var lines []api.LogLine
	emit := func(l api.LogLine) {
		mu.Lock()
		defer mu.Unlock()
		if opts.Follow {
			sink(l)
		} else {
			lines = append(lines, l)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(picked))
	for i, s := range picked {
		slots := taskSlots(ctx, a, s.ID)
		meta := api.LogLine{Cell: s.Spec.Labels[engine.LabelCell], Service: s.Spec.Labels[engine.LabelService]}
		if s.Spec.Labels[engine.LabelRole] == engine.RoleGateway {
			meta.Service = engine.RoleGateway
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = serviceLogs(ctx, a, s.ID, lo, func(t time.Time, stderr bool, task, text string) {
				l := meta
				l.Time, l.Stderr, l.Text = t, stderr, text
				if meta.Service != engine.RoleGateway {
					l.Replica = slots[task]
				}
				if opts.Replica > 0 && l.Replica != opts.Replica {
					return
				}
				emit(l)
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
	for _, l := range lines {
		sink(l)
	}
	return nil
}

// taskSlots maps the IDs of a service's tasks, past ones too, to their
// slots.
func taskSlots(ctx context.Context, a swarm.API, service string) map[string]int {
	out := map[string]int{}
	tasks, err := a.TaskList(ctx, dockerswarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
	if err != nil {
		return out
	}
	for _, t := range tasks {
		out[t.ID] = t.Slot
	}
	return out
}

// serviceLogs streams a Swarm service's log lines to fn. With details on,
// each line carries "k=v,…" attributes before its text, among them the
// task's ID.
func serviceLogs(ctx context.Context, a swarm.API, id string, o container.LogsOptions, fn func(t time.Time, stderr bool, task, text string)) error {
	rc, err := a.ServiceLogs(ctx, id, o)
	if err != nil {
		return fmt.Errorf("logs of service %s: %w", shortID(id), err)
	}
	defer rc.Close()
	split := func(stderr bool) func(string) {
		return func(l string) {
			t, rest := splitTimestamp(l)
			task := ""
			if attrs, text, ok := strings.Cut(rest, " "); ok && strings.Contains(attrs, "com.docker.swarm.") {
				rest = text
				for _, kv := range strings.Split(attrs, ",") {
					if v, ok := strings.CutPrefix(kv, "com.docker.swarm.task.id="); ok {
						task = v
					}
				}
			}
			fn(t, stderr, task, rest)
		}
	}
	out, errw := &lineWriter{fn: split(false)}, &lineWriter{fn: split(true)}
	_, err = stdcopy.StdCopy(out, errw, rc)
	out.flush()
	errw.flush()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of service %s: %w", shortID(id), err)
	}
	return nil
}

// swarmScaledEvents returns the scaler's latest decision of every
// service, as events.
func swarmScaledEvents(snap *swarm.Snapshot) []api.Event {
	var out []api.Event
	for _, s := range snap.Services {
		if e, ok := swarm.ScaledEvent(s); ok {
			out = append(out, e)
		}
	}
	return out
}

// followScaled emits the scaler's decisions on a swarm as they are made,
// reading the label it sets with each new replica count.
func (c *Client) followScaled(ctx context.Context, project string, emit func(api.Event)) {
	last := map[string]time.Time{}
	if snap := c.onSwarm(ctx, project); snap != nil {
		for _, e := range swarmScaledEvents(snap) {
			last[e.Cell+"/"+e.Service] = e.Time
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		snap := c.onSwarm(ctx, project)
		if snap == nil {
			continue
		}
		for _, e := range swarmScaledEvents(snap) {
			if k := e.Cell + "/" + e.Service; e.Time.After(last[k]) {
				last[k] = e.Time
				emit(e)
			}
		}
	}
}

// swarmExecTarget finds, on a swarm, the container of the task Exec runs
// in: it must run on the node of the engine the command line talks to.
func (c *Client) swarmExecTarget(ctx context.Context, snap *swarm.Snapshot, opts api.ExecOptions) (container.Summary, error) {
	what := opts.Cell + "/" + opts.Service
	var svc dockerswarm.Service
	if opts.Service == engine.RoleGateway {
		for _, s := range snap.Services {
			if s.Spec.Labels[engine.LabelRole] == engine.RoleGateway && s.Spec.Labels[engine.LabelCell] == opts.Cell {
				svc = s
			}
		}
		if svc.ID == "" {
			return container.Summary{}, fmt.Errorf("project %s has no cell %q", snap.Project, opts.Cell)
		}
	} else {
		s, err := swarmService(snap, opts.Cell, opts.Service)
		if err != nil {
			return container.Summary{}, err
		}
		svc = s
	}
	var nodes []string
	for _, t := range snap.Tasks[svc.ID] {
		if opts.Replica > 0 && t.Slot != opts.Replica || t.Status.State != dockerswarm.TaskStateRunning || t.Status.ContainerStatus == nil {
			continue
		}
		if t.NodeID != snap.Local {
			nodes = append(nodes, snap.NodeName(t.NodeID))
			continue
		}
		list, err := c.eng.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("id", t.Status.ContainerStatus.ContainerID))})
		if err == nil && len(list) == 1 {
			return list[0], nil
		}
	}
	if opts.Replica > 0 {
		what += fmt.Sprint("-", opts.Replica)
	}
	if len(nodes) > 0 {
		return container.Summary{}, fmt.Errorf("%s runs on node %s, not on this engine's node: point DOCKER_HOST at it to exec there", what, strings.Join(nodes, ", "))
	}
	return container.Summary{}, fmt.Errorf("%s of project %s has no running task", what, snap.Project)
}
