package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/image"
)

// defaultAdminPort is the container port of a gateway's admin API, moved
// down when a cell of the project uses it as a data port.
const defaultAdminPort = 7700

// Up builds the images, creates the networks, volumes and gateways, and
// hands every gateway its cell spec. With opts.Wait it returns once every
// service has its desired replicas ready.
func (c *Client) Up(ctx context.Context, p *cellspec.Project, opts api.UpOptions) error {
	progress := opts.Progress
	if progress == nil {
		progress = api.Discard{}
	}
	start := c.now()
	progress.Start("gateway-image", "gateway image")
	gwImage, err := image.Gateway(ctx, c.eng, opts.GatewayImage, io.Discard)
	progress.Done("gateway-image", "gateway image "+gwImage, err)
	if err != nil {
		return err
	}
	images := map[string]map[string]api.ServiceImage{}
	gocache := &image.GoBuildCache{}
	for _, cell := range p.Cells {
		images[cell.Name] = map[string]api.ServiceImage{}
		for _, name := range cell.ServiceNames() {
			img, err := c.serviceImage(ctx, p.Name, cell, cell.Services[name], opts.Build, progress, gocache)
			if err != nil {
				return err
			}
			images[cell.Name][name] = img
		}
	}

	existing, err := c.gateways(ctx, p.Name)
	if err != nil {
		return err
	}
	token := ""
	for _, g := range existing {
		if g.token != "" {
			token = g.token
			break
		}
	}
	if token == "" {
		token = newToken()
	}
	if err := c.orphans(ctx, p, existing, opts, progress); err != nil {
		return err
	}
	if err := c.ensureNetwork(ctx, engine.MeshNetworkName(p.Name), map[string]string{engine.LabelProject: p.Name}); err != nil {
		return err
	}
	if err := c.ensureVolumes(ctx, p); err != nil {
		return err
	}
	if err := c.ensureKeeper(ctx, p.Name, gwImage); err != nil {
		return err
	}
	adminPort := pickAdminPort(p)
	byCell := map[string]gateway{}
	for _, g := range existing {
		byCell[g.cell] = g
	}
	for _, cell := range p.Cells {
		spec := &api.GatewaySpec{Project: p.Name, Cell: cell, Images: images[cell.Name], Peers: map[string]string{}, AdminPort: adminPort}
		for _, u := range cell.Uses {
			spec.Peers[u] = fmt.Sprintf("%s:%d", engine.GatewayName(p.Name, u), p.Cell(u).Gateway.Port)
		}
		if err := c.ensureNetwork(ctx, engine.NetworkName(p.Name, cell.Name), map[string]string{engine.LabelProject: p.Name, engine.LabelCell: cell.Name}); err != nil {
			return err
		}
		if err := c.ensureGateway(ctx, spec, gwImage, token, byCell[cell.Name], progress); err != nil {
			return err
		}
	}
	progress.Note(fmt.Sprintf("project %s started in %s", p.Name, c.now().Sub(start).Round(time.Millisecond)))
	if !opts.Wait {
		return nil
	}
	return c.wait(ctx, p, opts.WaitTimeout, progress)
}

// serviceImage builds or finds the image of one service.
func (c *Client) serviceImage(ctx context.Context, project string, cell *cellspec.Cell, s *cellspec.Service, policy api.BuildPolicy, progress api.Progress, gocache *image.GoBuildCache) (api.ServiceImage, error) {
	what := cell.Name + "/" + s.Name
	labels := map[string]string{engine.LabelManaged: "true", engine.LabelProject: project, engine.LabelCell: cell.Name, engine.LabelService: s.Name}
	repo := project + "-" + cell.Name + "-" + s.Name
	var ref string
	switch {
	case s.Image != "":
		ref = s.Image
		progress.Start("image "+what, "image "+ref+" for "+what)
		err := image.Ensure(ctx, c.eng, ref, io.Discard)
		progress.Done("image "+what, "image "+ref+" for "+what, err)
		if err != nil {
			return api.ServiceImage{}, fmt.Errorf("service %s: %w", what, err)
		}
	case policy == api.BuildNever:
		r, err := c.latestImage(ctx, labels)
		if err != nil {
			return api.ServiceImage{}, fmt.Errorf("service %s: %w", what, err)
		}
		ref = r
	case s.Build.Go != "":
		progress.Start("build "+what, "build "+what+" (go)")
		r, err := gocache.BuildGo(ctx, c.eng, s.Build, repo, labels, io.Discard)
		progress.Done("build "+what, "build "+what+" → "+r, err)
		if err != nil {
			return api.ServiceImage{}, fmt.Errorf("build %s: %w", what, err)
		}
		ref = r
	default:
		ref = repo + ":latest"
		exists, err := image.Exists(ctx, c.eng, ref)
		if err != nil {
			return api.ServiceImage{}, err
		}
		if !exists || policy == api.BuildAlways {
			progress.Start("build "+what, "build "+what+" (Dockerfile)")
			err := image.BuildDockerfile(ctx, c.eng, s.Build, ref, labels, io.Discard)
			progress.Done("build "+what, "build "+what+" → "+ref, err)
			if err != nil {
				return api.ServiceImage{}, fmt.Errorf("build %s: %w", what, err)
			}
		}
	}
	ins, err := c.eng.ImageInspect(ctx, ref)
	if err != nil {
		return api.ServiceImage{}, fmt.Errorf("service %s: inspect image %s: %w", what, ref, err)
	}
	return api.ServiceImage{Ref: ref, ID: ins.ID}, nil
}

// latestImage finds the newest image built for a service (--no-build).
func (c *Client) latestImage(ctx context.Context, labels map[string]string) (string, error) {
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	list, err := c.eng.ImageList(ctx, dockerimage.ListOptions{Filters: args})
	if err != nil {
		return "", fmt.Errorf("list images: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created > list[j].Created })
	for _, img := range list {
		if len(img.RepoTags) > 0 {
			return img.RepoTags[0], nil
		}
	}
	return "", errors.New("no image was built yet and --no-build forbids building one")
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pickAdminPort returns a container port for the admin API that no cell of
// the project uses as its data or egress port.
func pickAdminPort(p *cellspec.Project) int {
	used := map[int]bool{}
	for _, c := range p.Cells {
		used[c.Gateway.Port] = true
	}
	port := defaultAdminPort
	for used[port] {
		port--
	}
	return port
}

func (c *Client) ensureNetwork(ctx context.Context, name string, labels map[string]string) error {
	list, err := c.eng.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	for _, n := range list {
		if n.Name == name {
			if n.Labels[engine.LabelProject] != labels[engine.LabelProject] {
				return fmt.Errorf("network %s exists but does not belong to project %s; remove it or choose another project name (-p)", name, labels[engine.LabelProject])
			}
			return nil
		}
	}
	if _, err := c.eng.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels}); err != nil && !errdefs.IsConflict(err) {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	return nil
}

// ensureVolumes creates the project's named volumes with its labels, so
// replicas do not create them unlabelled.
func (c *Client) ensureVolumes(ctx context.Context, p *cellspec.Project) error {
	seen := map[string]bool{}
	for _, cell := range p.Cells {
		for _, name := range cell.ServiceNames() {
			for _, v := range cell.Services[name].Volumes {
				if v.Type != cellspec.VolumeNamed || seen[v.Source] {
					continue
				}
				seen[v.Source] = true
				vn := engine.VolumeName(p.Name, v.Source)
				if _, err := c.eng.VolumeCreate(ctx, volume.CreateOptions{Name: vn, Labels: map[string]string{engine.LabelProject: p.Name}}); err != nil {
					return fmt.Errorf("create volume %s: %w", vn, err)
				}
			}
		}
	}
	return nil
}

// gatewayHash identifies the parts of a gateway container that cannot
// change without recreating it. The cell spec is not among them: a new
// spec goes to the running gateway through its admin API.
func gatewayHash(spec *api.GatewaySpec, img string) string {
	return engine.ConfigHash(struct {
		Image     string
		Port      int
		AdminPort int
		Uses      []string
		Peers     map[string]string
	}{img, spec.Cell.Gateway.Port, spec.AdminPort, spec.Cell.Uses, spec.Peers})
}

// ensureGateway creates, starts or updates the gateway of one cell.
func (c *Client) ensureGateway(ctx context.Context, spec *api.GatewaySpec, img, token string, cur gateway, progress api.Progress) error {
	cell := spec.Cell.Name
	name := engine.GatewayName(spec.Project, cell)
	id := "gateway " + cell
	progress.Start(id, "gateway "+name)
	err := c.convergeGateway(ctx, spec, img, token, cur, func(text string) { progress.Start(id, text) })
	progress.Done(id, "gateway "+name, err)
	return err
}

// convergeGateway creates, starts or updates one gateway; say reports what
// it is doing.
func (c *Client) convergeGateway(ctx context.Context, spec *api.GatewaySpec, img, token string, cur gateway, say func(string)) error {
	cell := spec.Cell.Name
	name := engine.GatewayName(spec.Project, cell)
	hash := gatewayHash(spec, img)
	if cur.id != "" && cur.hash != hash {
		say("recreate gateway " + name + " (gateway image or ports changed)")
		if err := c.eng.ContainerRemove(ctx, cur.id, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove gateway %s: %w", name, err)
		}
		cur = gateway{}
	}
	if cur.id == "" {
		if err := c.createGateway(ctx, spec, img, token, hash); err != nil {
			return err
		}
		say(fmt.Sprintf("start gateway %s on 127.0.0.1:%d", name, spec.Cell.Gateway.Port))
		return c.waitAdmin(ctx, spec.Project, cell)
	}
	if cur.state != "running" {
		if err := c.eng.ContainerStart(ctx, cur.id, container.StartOptions{}); err != nil {
			return fmt.Errorf("start gateway %s: %w", name, err)
		}
	}
	if err := c.waitAdmin(ctx, spec.Project, cell); err != nil {
		return err
	}
	g, err := c.findGateway(ctx, spec.Project, cell)
	if err != nil {
		return err
	}
	st, err := c.admin(g).Status(ctx)
	if err != nil {
		return fmt.Errorf("gateway %s: %w", name, err)
	}
	if st.SpecHash == spec.Hash() {
		return nil
	}
	say("update gateway " + name)
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode spec of cell %s: %w", cell, err)
	}
	if err := c.admin(g).UpdateSpec(ctx, data); err != nil {
		return fmt.Errorf("update gateway %s: %w", name, err)
	}
	return nil
}

func (c *Client) createGateway(ctx context.Context, spec *api.GatewaySpec, img, token, hash string) error {
	cell := spec.Cell.Name
	name := engine.GatewayName(spec.Project, cell)
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode spec of cell %s: %w", cell, err)
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
	if sock := c.socketPath(); sock != "" {
		host.Binds = []string{sock + ":/var/run/docker.sock"}
	}
	aliases := append([]string{cell}, spec.Cell.Uses...)
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		engine.NetworkName(spec.Project, cell): {Aliases: aliases},
	}}
	resp, err := c.eng.ContainerCreate(ctx, cfg, host, netCfg, nil, name)
	if err != nil {
		if errdefs.IsConflict(err) {
			return fmt.Errorf("create gateway %s: a container of that name exists but is not this project's gateway: %w", name, err)
		}
		return fmt.Errorf("create gateway %s: %w", name, err)
	}
	// API 1.41 attaches one network at creation; the mesh comes second.
	if err := c.eng.NetworkConnect(ctx, engine.MeshNetworkName(spec.Project), resp.ID, &network.EndpointSettings{}); err != nil {
		return fmt.Errorf("connect gateway %s to the mesh: %w", name, err)
	}
	if err := c.eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("start gateway %s: %w", name, err)
	}
	return nil
}

// ensureKeeper creates or starts the project's keeper, which restarts
// gateways that were killed (Docker does not, after `docker kill`).
func (c *Client) ensureKeeper(ctx context.Context, project, img string) error {
	name := engine.KeeperName(project)
	list, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("label", engine.LabelRole+"="+engine.RoleKeeper),
	)})
	if err != nil {
		return fmt.Errorf("list keeper of project %s: %w", project, err)
	}
	hash := engine.ConfigHash(img)
	for _, k := range list {
		if k.Labels[engine.LabelConfigHash] == hash {
			if k.State != "running" {
				if err := c.eng.ContainerStart(ctx, k.ID, container.StartOptions{}); err != nil {
					return fmt.Errorf("start %s: %w", name, err)
				}
			}
			return nil
		}
		if err := c.eng.ContainerRemove(ctx, k.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
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
	if sock := c.socketPath(); sock != "" {
		host.Binds = []string{sock + ":/var/run/docker.sock"}
	}
	resp, err := c.eng.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if err := c.eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	return nil
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
	deadline := c.now().Add(30 * time.Second)
	var last error
	for c.now().Before(deadline) {
		g, err := c.findGateway(ctx, project, cell)
		if err == nil {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = c.admin(g).Status(sctx)
			cancel()
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	logs := c.tailLogs(ctx, engine.GatewayName(project, cell), 10)
	return fmt.Errorf("gateway of cell %s did not answer within 30s: %v%s", cell, last, logs)
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

// orphans handles gateways of cells no longer in the project.
func (c *Client) orphans(ctx context.Context, p *cellspec.Project, existing []gateway, opts api.UpOptions, progress api.Progress) error {
	for _, g := range existing {
		if p.Cell(g.cell) != nil {
			continue
		}
		if !opts.RemoveOrphans {
			progress.Note(fmt.Sprintf("warning: cell %s of project %s is not in the spec any more; run with --remove-orphans to remove it", g.cell, p.Name))
			continue
		}
		progress.Start("orphan "+g.cell, "remove orphan cell "+g.cell)
		err := c.removeCell(ctx, p.Name, g, 10*time.Second)
		progress.Done("orphan "+g.cell, "remove orphan cell "+g.cell, err)
		if err != nil {
			return err
		}
	}
	return nil
}

// wait polls the gateways until every service has its desired replicas
// ready, or the timeout passes.
func (c *Client) wait(ctx context.Context, p *cellspec.Project, timeout time.Duration, progress api.Progress) error {
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	deadline := c.now().Add(timeout)
	var pending []string
	for {
		st, err := c.Status(ctx, p.Name)
		if err != nil {
			return err
		}
		pending = pending[:0]
		for _, cs := range st.Cells {
			if p.Cell(cs.Cell) == nil {
				continue
			}
			if cs.Gateway != "running" || cs.SpecHash == "" {
				pending = append(pending, cs.Cell+" (gateway "+cs.Gateway+")")
				continue
			}
			for _, s := range cs.Services {
				if s.Ready < s.Desired || s.Health == "starting" || s.Health == "unhealthy" || s.Health == "crashloop" || !allCurrent(s) {
					pending = append(pending, fmt.Sprintf("%s/%s (%d/%d ready, %s)", cs.Cell, s.Service, s.Ready, s.Desired, s.Health))
				}
			}
		}
		if len(pending) == 0 {
			progress.Done("wait", fmt.Sprintf("project %s is healthy", p.Name), nil)
			return nil
		}
		progress.Start("wait", "wait for "+strings.Join(pending, ", "))
		if c.now().After(deadline) {
			err := fmt.Errorf("%w after %s: %s", api.ErrWaitTimeout, timeout, strings.Join(pending, ", "))
			progress.Done("wait", "wait for the project to be healthy", err)
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// allCurrent reports whether a service has no replica left over from a
// previous config (a rolling update still under way).
func allCurrent(s api.ServiceStatus) bool {
	if len(s.Replicas) == 0 {
		return true
	}
	hash := ""
	for _, r := range s.Replicas {
		if r.Health == "draining" {
			return false
		}
		if hash == "" {
			hash = r.ConfigHash
		} else if r.ConfigHash != hash {
			return false
		}
	}
	return len(s.Replicas) == s.Desired
}
