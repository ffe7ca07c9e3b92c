package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"

	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// orphanStopTimeout bounds the drain of an orphan cell's replicas.
const orphanStopTimeout = 10 * time.Second

// adminWaitTimeout bounds the wait for a started gateway's admin API.
const adminWaitTimeout = 30 * time.Second

// executeUp carries out an Up plan in order and stops at the first
// failure, returning its error. It decides nothing: planUp chose every
// operation and its object.
//
// Progress is reported per object rather than per call, as Up always has:
// the operations on one cell's gateway form one step, "gateway <name>",
// whose text follows what is being done; an orphan removal is a step of
// its own; a kept orphan is a warning note; networks, volumes and the
// keeper are not reported.
func (c *Client) executeUp(ctx context.Context, plan upPlan, progress api.Progress) error {
	var step upOp // the first operation of the gateway step under way
	end := func(err error) {
		if step.Kind != 0 {
			progress.Done("gateway "+step.Cell, "gateway "+step.Name, err)
			step = upOp{}
		}
	}
	for _, op := range plan.Ops {
		if step.Kind != 0 && (!op.Kind.gatewayStep() || op.Cell != step.Cell) {
			end(nil)
		}
		if op.Kind.gatewayStep() && step.Kind == 0 {
			step = op
			progress.Start("gateway "+op.Cell, "gateway "+op.Name)
		}
		say := func(text string) { progress.Start("gateway "+op.Cell, text) }
		if err := c.runUpOp(ctx, plan, op, progress, say); err != nil {
			end(err)
			return err
		}
	}
	end(nil)
	return nil
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
		err := c.removeCell(ctx, plan.Project, op.Orphan, orphanStopTimeout)
		progress.Done(id, text, err)
		return err
	case upCreateNetwork:
		// A conflict is another `up` of the project that got there first.
		if _, err := c.eng.NetworkCreate(ctx, op.Name, network.CreateOptions{Driver: "bridge", Labels: op.Labels}); err != nil && !errdefs.IsConflict(err) {
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
	// API 1.41 attaches one network at creation; the mesh is connected
	// next, by its own operation.
	nets := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		engine.NetworkName(spec.Project, cell): {Aliases: append([]string{cell}, spec.Cell.Uses...)},
	}}
	return cfg, host, nets, nil
}

// keeperContainer is the container of a project's keeper: the gateway
// image's keeper command, on no network, with the engine's socket.
func keeperContainer(project, img, hash, socket string) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:  img,
		Cmd:    []string{"keeper"},
		Env:    []string{api.EnvProject + "=" + project},
		Labels: map[string]string{engine.LabelProject: project, engine.LabelRole: engine.RoleKeeper, engine.LabelConfigHash: hash},
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

// waitAdmin waits until a gateway's admin API answers.
func (c *Client) waitAdmin(ctx context.Context, project, cell string) error {
	deadline := c.now().Add(adminWaitTimeout)
	var last error
	for c.now().Before(deadline) {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.gwAdmin.status(sctx, project, cell)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	logs := c.tailLogs(ctx, engine.GatewayName(project, cell), 10)
	return fmt.Errorf("gateway of cell %s did not answer within %s: %v%s", cell, adminWaitTimeout, last, logs)
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
