package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	"golang.org/x/sync/errgroup"

	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// orphanStopTimeout bounds the drain of an orphan cell's replicas.
const orphanStopTimeout = 10 * time.Second

// adminWaitTimeout bounds the wait for a started gateway's admin API.
const adminWaitTimeout = 30 * time.Second

// errUpStopped ends the progress step of a gateway that was left
// unfinished because another operation failed.
var errUpStopped = errors.New("stopped, as another operation failed")

// executeUp carries out an Up plan, phase after phase and within a phase
// every chain at once, and stops at the first failure, returning its
// error: the chains under way are cancelled and no further phase starts.
// It decides nothing: planUp chose every operation, its object, its phase
// and its chain.
//
// Progress is reported per object rather than per call, as Up always has:
// the operations on one cell's gateway form one step, "gateway <name>",
// whose text follows what is being done; an orphan removal is a step of
// its own; a kept orphan is a warning note; networks, volumes and the
// keeper are not reported. A gateway's step left unfinished by a failure
// elsewhere ends with errUpStopped.
func (c *Client) executeUp(ctx context.Context, plan upPlan, progress api.Progress) error {
	steps := newUpSteps(plan, progress)
	for _, phase := range plan.phases() {
		g, gctx := errgroup.WithContext(ctx)
		for _, chain := range phase {
			g.Go(func() error {
				for _, op := range chain {
					if err := gctx.Err(); err != nil {
						return err
					}
					steps.begin(op)
					say := func(text string) { progress.Start("gateway "+op.Cell, text) }
					if err := c.runUpOp(gctx, plan, op, progress, say); err != nil {
						if ctx.Err() == nil && gctx.Err() != nil {
							// Another chain failed and cancelled this one.
							return err
						}
						steps.end(op.Cell, err)
						return err
					}
					steps.finished(op)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			steps.stopAll()
			return err
		}
	}
	return nil
}

// upSteps keeps the progress steps of the gateways while a plan runs: a
// cell's step starts with its first gateway operation and ends after its
// last one, or at a failure.
type upSteps struct {
	progress api.Progress
	// last is how many gateway operations each cell has.
	last map[string]int

	mu   sync.Mutex
	open map[string]string // cell → the step's text
	seen map[string]int    // cell → gateway operations done
}

func newUpSteps(plan upPlan, progress api.Progress) *upSteps {
	s := &upSteps{progress: progress, last: map[string]int{}, open: map[string]string{}, seen: map[string]int{}}
	for _, op := range plan.Ops {
		if op.Kind.gatewayStep() {
			s.last[op.Cell]++
		}
	}
	return s
}

// begin starts the step of a gateway operation's cell, when it is its
// first.
func (s *upSteps) begin(op upOp) {
	if !op.Kind.gatewayStep() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[op.Cell] > 0 {
		return
	}
	s.open[op.Cell] = "gateway " + op.Name
	s.progress.Start("gateway "+op.Cell, "gateway "+op.Name)
}

// finished counts a gateway operation done and ends its cell's step
// after the last one.
func (s *upSteps) finished(op upOp) {
	if !op.Kind.gatewayStep() {
		return
	}
	s.mu.Lock()
	s.seen[op.Cell]++
	done := s.seen[op.Cell] == s.last[op.Cell]
	s.mu.Unlock()
	if done {
		s.end(op.Cell, nil)
	}
}

// end ends the open step of a cell, if there is one.
func (s *upSteps) end(cell string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text, ok := s.open[cell]
	if !ok {
		return
	}
	delete(s.open, cell)
	s.progress.Done("gateway "+cell, text, err)
}

// stopAll ends every step still open, in the order of the cells' names.
func (s *upSteps) stopAll() {
	s.mu.Lock()
	cells := slices.Sorted(maps.Keys(s.open))
	s.mu.Unlock()
	for _, cell := range cells {
		s.end(cell, errUpStopped)
	}
}

// runUpOp carries out one operation; say updates the text of the gateway
// step it belongs to.
func (c *Client) runUpOp(ctx context.Context, plan upPlan, op upOp, progress api.Progress, say func(string)) error {
	switch op.Kind {
	case upWarnOrphan:
		progress.Note(fmt.Sprintf("warning: cell %s of project %s is not in the spec any more; run with --remove-orphans to remove it", op.Cell, plan.Project))
		return nil
	case upRemoveOrphan:
		id, text := "orphan "+op.Cell, "remove orphan cell "+op.Cell
		progress.Start(id, text)
		err := c.removeOrphan(ctx, plan.Project, op.Orphan)
		progress.Done(id, text, err)
		return err
	case upCreateNetwork:
		// A conflict is another `up` of the project that got there first.
		if _, err := c.eng.NetworkCreate(ctx, op.Name, network.CreateOptions{Driver: "bridge", Internal: op.Internal, Labels: op.Labels}); err != nil && !errdefs.IsConflict(err) {
			return fmt.Errorf("create network %s: %w", op.Name, err)
		}
		return nil
	case upCreateVolume:
		if _, err := c.eng.VolumeCreate(ctx, volume.CreateOptions{Name: op.Name, Labels: op.Labels}); err != nil {
			return fmt.Errorf("create volume %s: %w", op.Name, err)
		}
		return nil
	case upRemoveKeeper:
		if err := c.eng.ContainerRemove(ctx, op.ref(), container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove %s: %w", op.Name, err)
		}
		return nil
	case upCreateKeeper:
		cfg, host := keeperContainer(plan.Project, plan.Image, op.Hash, c.socketPath())
		if _, err := c.eng.ContainerCreate(ctx, cfg, host, nil, nil, op.Name); err != nil {
			return fmt.Errorf("create %s: %w", op.Name, err)
		}
		return nil
	case upStartKeeper:
		if err := c.eng.ContainerStart(ctx, op.ref(), container.StartOptions{}); err != nil {
			return fmt.Errorf("start %s: %w", op.Name, err)
		}
		return nil
	case upRemoveGateway:
		say("recreate gateway " + op.Name + " (" + op.Reason + ")")
		if err := c.eng.ContainerRemove(ctx, op.ref(), container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove gateway %s: %w", op.Name, err)
		}
		return nil
	case upCreateGateway:
		cfg, host, nets, err := gatewayContainer(op.Spec, plan.Image, plan.Token, op.Hash, c.socketPath())
		if err != nil {
			return err
		}
		if _, err := c.eng.ContainerCreate(ctx, cfg, host, nets, nil, op.Name); err != nil {
			if errdefs.IsConflict(err) {
				return fmt.Errorf("create gateway %s: a container of that name exists but is not this project's gateway: %w", op.Name, err)
			}
			return fmt.Errorf("create gateway %s: %w", op.Name, err)
		}
		return nil
	case upConnectGateway:
		if err := c.eng.NetworkConnect(ctx, op.Network, op.ref(), &network.EndpointSettings{}); err != nil {
			return fmt.Errorf("connect gateway %s to the mesh: %w", op.Name, err)
		}
		return nil
	case upStartGateway:
		if err := c.eng.ContainerStart(ctx, op.ref(), container.StartOptions{}); err != nil {
			return fmt.Errorf("start gateway %s: %w", op.Name, err)
		}
		return nil
	case upWaitGateway:
		if op.Port > 0 {
			say(fmt.Sprintf("start gateway %s on 127.0.0.1:%d", op.Name, op.Port))
		}
		return c.waitAdmin(ctx, plan.Project, op.Cell)
	case upUpdateGateway:
		return c.updateGateway(ctx, plan.Project, op, say)
	case upKeepGateway:
		return nil
	}
	return fmt.Errorf("up %s: unknown operation %q", plan.Project, op)
}

// updateGateway hands a gateway its spec. A conditional update asks the
// gateway first, which alone knows the spec it runs.
func (c *Client) updateGateway(ctx context.Context, project string, op upOp, say func(string)) error {
	if op.IfChanged {
		st, err := c.gwAdmin.status(ctx, project, op.Cell)
		if err != nil {
			return fmt.Errorf("gateway %s: %w", op.Name, err)
		}
		if st.SpecHash == op.Spec.Hash() {
			return nil
		}
	}
	say("update gateway " + op.Name)
	data, err := json.Marshal(op.Spec)
	if err != nil {
		return fmt.Errorf("encode spec of cell %s: %w", op.Cell, err)
	}
	if err := c.gwAdmin.updateSpec(ctx, project, op.Cell, data); err != nil {
		return fmt.Errorf("update gateway %s: %w", op.Name, err)
	}
	return nil
}

// gatewayContainer is the container of a cell's gateway: the gateway
// image with the spec and token in its environment, its data port
// published on 127.0.0.1 at the same number, its admin port on a free
// loopback port, attached to its cell's network under the cell's name and
// the names of the cells it uses (egress goes through it). The engine's
// socket, when local, is mounted so it can manage its replicas.
func gatewayContainer(spec *api.GatewaySpec, img, token, hash, socket string) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	cell := spec.Cell.Name
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encode spec of cell %s: %w", cell, err)
	}
	dataPort := nat.Port(strconv.Itoa(spec.Cell.Gateway.Port) + "/tcp")
	adminPort := nat.Port(strconv.Itoa(spec.AdminPort) + "/tcp")
	cfg := &container.Config{
		Image: img,
		Env:   []string{api.EnvSpec + "=" + string(data), api.EnvToken + "=" + token},
		Labels: map[string]string{
			engine.LabelProject:    spec.Project,
			engine.LabelCell:       cell,
			engine.LabelRole:       engine.RoleGateway,
			engine.LabelConfigHash: hash,
			engine.LabelAdminPort:  strconv.Itoa(spec.AdminPort),
		},
		ExposedPorts: nat.PortSet{dataPort: {}, adminPort: {}},
	}
	host := &container.HostConfig{
		PortBindings: nat.PortMap{
			dataPort:  {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(spec.Cell.Gateway.Port)}},
			adminPort: {{HostIP: "127.0.0.1", HostPort: ""}},
		},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	}
	// Each listener is published on the same host port as it listens on
	// in the container, as the data port is.
	for _, l := range spec.Cell.Gateway.Listeners {
		port := nat.Port(strconv.Itoa(l.Port) + "/tcp")
		cfg.ExposedPorts[port] = struct{}{}
		host.PortBindings[port] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: strconv.Itoa(l.Port)}}
	}
	if socket != "" {
		host.Binds = []string{socket + ":/var/run/docker.sock"}
	}
	if v := journalVolume(spec); v != "" {
		// The journal of flow executions outlives the container: a
		// recreated gateway recovers what the old one left unfinished.
		host.Binds = append(host.Binds, v+":"+api.JournalDir)
	}
	if v := accessLogVolume(spec); v != "" {
		// On a volume, the access log is kept off the container's
		// layer, and a recreated gateway goes on with the same files.
		host.Binds = append(host.Binds, v+":"+api.AccessLogDir)
	}
	// API 1.41 attaches one network at creation; the mesh is connected
	// next, by its own operation.
	nets := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		engine.NetworkName(spec.Project, cell): {Aliases: append([]string{cell}, spec.Cell.Uses...)},
	}}
	return cfg, host, nets, nil
}

// keeperContainer is the container of a project's keeper: the gateway
// image's keeper command, with the engine's socket and no networking at
// all. It only talks to the engine over the mounted socket, and with
// networking disabled the engine gives it no network sandbox: no
// namespace to set up and no prestart hook to run, which is most of what
// starting a container costs it.
func keeperContainer(project, img, hash, socket string) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:           img,
		Cmd:             []string{"keeper"},
		Env:             []string{api.EnvProject + "=" + project},
		Labels:          map[string]string{engine.LabelProject: project, engine.LabelRole: engine.RoleKeeper, engine.LabelConfigHash: hash},
		NetworkDisabled: true,
	}
	host := &container.HostConfig{
		NetworkMode:   "none",
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	}
	if socket != "" {
		host.Binds = []string{socket + ":/var/run/docker.sock"}
	}
	return cfg, host
}

// socketPath is the engine's unix socket on the host, mounted into every
// gateway so it can manage its replicas.
func (c *Client) socketPath() string {
	u, err := url.Parse(c.eng.DaemonHost())
	if err != nil || u.Scheme != "unix" {
		return ""
	}
	return u.Path
}

// adminPollInterval is how often waitAdmin asks a starting gateway
// whether it answers.
const adminPollInterval = 50 * time.Millisecond

// adminLookupInterval is how often, at most, waitAdmin looks a gateway up
// in the engine: its admin address changes only when its container
// starts again.
const adminLookupInterval = time.Second

// waitAdmin waits until a gateway's admin API answers.
func (c *Client) waitAdmin(ctx context.Context, project, cell string) error {
	status := c.adminStatus(project, cell)
	deadline := c.now().Add(adminWaitTimeout)
	var last error
	for c.now().Before(deadline) {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		err := status(sctx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(adminPollInterval):
		}
	}
	logs := c.tailLogs(ctx, engine.GatewayName(project, cell), 10)
	return fmt.Errorf("gateway of cell %s did not answer within %s: %v%s", cell, adminWaitTimeout, last, logs)
}

// adminStatus returns how waitAdmin asks a gateway for its status. The
// engine's admin looks the gateway up on every call, which would load the
// engine while it starts the project's containers; here the gateway found
// is asked directly, and looked up again at most once a second.
func (c *Client) adminStatus(project, cell string) func(context.Context) error {
	if _, ok := c.gwAdmin.(engineAdmin); !ok {
		return func(ctx context.Context) error {
			_, err := c.gwAdmin.status(ctx, project, cell)
			return err
		}
	}
	var g gateway
	var found time.Time
	return func(ctx context.Context) error {
		if g.adminURL == "" || c.now().Sub(found) >= adminLookupInterval {
			ng, err := c.findGateway(ctx, project, cell)
			if err != nil {
				return err
			}
			g, found = ng, c.now()
		}
		_, err := c.admin(g).Status(ctx)
		return err
	}
}

// tailLogs returns the last lines of a container's output, for errors.
func (c *Client) tailLogs(ctx context.Context, name string, n int) string {
	var lines []string
	_ = c.containerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)}, func(_ time.Time, _ bool, text string) {
		lines = append(lines, "  "+text)
	})
	if len(lines) == 0 {
		return ""
	}
	return "\nlast lines of its output:\n" + strings.Join(lines, "\n")
}
