package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// Down removes the project: each gateway first drains and removes its
// replicas, then the gateways go (so nothing recreates replicas), then any
// replica left behind, then the networks, and with opts.Volumes the
// volumes. Everything is found by label, so Down also cleans up after an
// `up` that was killed half-way. It is idempotent.
func (c *Client) Down(ctx context.Context, project string, opts api.DownOptions) error {
	progress := opts.Progress
	if progress == nil {
		progress = api.Discard{}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	start := c.now()
	if c.onSwarm(ctx, project) != nil {
		n, err := c.swarmDown(ctx, project, opts, progress)
		if err != nil {
			return err
		}
		progress.Note(fmt.Sprintf("project %s removed from the swarm (%d services) in %s", project, n, c.now().Sub(start).Round(time.Millisecond)))
		return nil
	}
	// The keeper goes first, so it does not restart gateways being removed.
	if _, err := c.removeContainers(ctx, filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("label", engine.LabelRole+"="+engine.RoleKeeper),
	)); err != nil {
		return err
	}
	gws, err := c.gateways(ctx, project)
	if err != nil {
		return err
	}
	var errs []error
	done := make(chan error, len(gws))
	for _, g := range gws {
		go func() {
			id := "cell " + g.cell
			progress.Start(id, "drain and remove cell "+g.cell)
			err := c.removeCell(ctx, project, g, timeout)
			progress.Done(id, "remove cell "+g.cell, err)
			done <- err
		}()
	}
	for range gws {
		if err := <-done; err != nil {
			errs = append(errs, err)
		}
	}
	n, err := c.removeContainers(ctx, filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+project)))
	if err != nil {
		errs = append(errs, err)
	}
	removed := len(gws) + n
	nets, err := c.eng.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+project))})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks: %w", err))
	}
	for _, nw := range nets {
		if err := c.eng.NetworkRemove(ctx, nw.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", nw.Name, err))
			continue
		}
		progress.Done("network "+nw.Name, "remove network "+nw.Name, nil)
	}
	if opts.Volumes {
		vols, err := c.eng.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+project))})
		if err != nil {
			errs = append(errs, fmt.Errorf("list volumes: %w", err))
		}
		for _, v := range vols.Volumes {
			if err := c.eng.VolumeRemove(ctx, v.Name, true); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
				continue
			}
			progress.Done("volume "+v.Name, "remove volume "+v.Name, nil)
		}
	}
	if opts.Images {
		imgs, err := c.eng.ImageList(ctx, dockerimage.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", engine.LabelProject+"="+project),
			filters.Arg("label", engine.LabelManaged+"=true"),
		)})
		if err != nil {
			errs = append(errs, fmt.Errorf("list images: %w", err))
		}
		for _, img := range imgs {
			name := img.ID
			if len(img.RepoTags) > 0 {
				name = img.RepoTags[0]
			}
			// By ID, with force: an image tagged twice goes in one call.
			if _, err := c.eng.ImageRemove(ctx, img.ID, dockerimage.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove image %s: %w", name, err))
				continue
			}
			removed++
			progress.Done("image "+name, "remove image "+name, nil)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if removed == 0 && len(nets) == 0 {
		progress.Note(fmt.Sprintf("project %s has nothing to remove", project))
		return nil
	}
	progress.Note(fmt.Sprintf("project %s removed in %s", project, c.now().Sub(start).Round(time.Millisecond)))
	return nil
}

// removeCell asks a gateway to drain and remove its replicas, then removes
// the gateway and whatever replicas are left.
func (c *Client) removeCell(ctx context.Context, project string, g gateway, timeout time.Duration) error {
	if g.state == "running" && g.adminURL != "" && g.token != "" {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		// A gateway that cannot drain in time is no reason to keep the
		// project: the forced removal below takes over.
		_ = c.admin(g).Stop(sctx)
		cancel()
	}
	if err := c.eng.ContainerRemove(ctx, g.id, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove gateway %s: %w", engine.GatewayName(project, g.cell), err)
	}
	_, err := c.removeContainers(ctx, filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("label", engine.LabelCell+"="+g.cell),
	))
	return err
}

// removeContainers force-removes every container matching f and returns
// how many it removed.
func (c *Client) removeContainers(ctx context.Context, f filters.Args) (int, error) {
	list, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	n := 0
	for _, s := range list {
		if err := c.eng.ContainerRemove(ctx, s.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", engine.ContainerName(s.Names), err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
