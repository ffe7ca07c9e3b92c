package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"golang.org/x/sync/errgroup"

	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// Down removes the project. Everything is found by label, so Down also
// cleans up after an `up` that was killed half-way. It is idempotent.
//
// It does at once what the order below leaves independent. The keeper
// goes first, so that it restarts no gateway being removed; meanwhile
// every gateway drains its cell (see removeCell). Once the keeper is gone
// and a gateway has drained, the gateway and its replicas are removed
// together, the replicas each given opts.Timeout to exit, and then the
// cell's network, while other cells may still be going. Then whatever is
// left goes, which no gateway can recreate any more, then the other
// networks, and with opts.Volumes the volumes.
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
	ofProject := filters.Arg("label", engine.LabelProject+"="+project)
	var keeperErr error
	var keepers int
	keeperDone := make(chan struct{})
	go func() {
		defer close(keeperDone)
		keepers, keeperErr = c.removeContainers(ctx, filters.NewArgs(ofProject, filters.Arg("label", engine.LabelRole+"="+engine.RoleKeeper)), 0)
	}()
	keeperGone := func() { <-keeperDone }
	gws, err := c.gateways(ctx, project)
	if err != nil {
		keeperGone()
		return errors.Join(keeperErr, err)
	}
	var netsGone atomic.Int64
	gone := func(nw network.Summary) {
		netsGone.Add(1)
		progress.Done("network "+nw.Name, "remove network "+nw.Name, nil)
	}
	cellErrs := make([]error, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Go(func() {
			id := "cell " + g.cell
			progress.Start(id, "drain and remove cell "+g.cell)
			err := c.removeCell(ctx, project, g, timeout, keeperGone)
			progress.Done(id, "remove cell "+g.cell, err)
			cellErrs[i] = err
			if err != nil {
				return
			}
			// The engine removes networks one at a time, so the cell's
			// goes as soon as it can. Should it be refused (a replica
			// created as the gateway went is still on it, or the engine
			// has not let go of it yet), it goes below, with the rest.
			nets, err := c.eng.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(ofProject, filters.Arg("label", engine.LabelCell+"="+g.cell))})
			if err == nil {
				_ = forEach(nets, func(nw network.Summary) error {
					if err := c.eng.NetworkRemove(ctx, nw.ID); err == nil {
						gone(nw)
					}
					return nil
				})
			}
		})
	}
	wg.Wait()
	keeperGone()
	errs := append([]error{keeperErr}, cellErrs...)
	// With every gateway gone, nothing creates a container of the project
	// any more: what is left (a replica whose creation was under way as
	// its gateway went, the replicas of a cell with no gateway) goes now.
	n, err := c.removeContainers(ctx, filters.NewArgs(ofProject), timeout)
	errs = append(errs, err)
	removed := keepers + len(gws) + n
	nets, err := c.eng.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(ofProject)})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks: %w", err))
	}
	errs = append(errs, forEach(nets, func(nw network.Summary) error {
		if err := c.removeNetwork(ctx, project, nw, timeout); err != nil {
			return err
		}
		gone(nw)
		return nil
	}))
	removed += int(netsGone.Load())
	// The gateways' access logs go with them, as a container's logs do;
	// the other volumes (data, journals) only with --volumes.
	vols, err := c.eng.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(ofProject)})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes: %w", err))
	}
	vols.Volumes = slices.DeleteFunc(vols.Volumes, func(v *volume.Volume) bool {
		return !opts.Volumes && !isAccessLogVolume(project, v.Name)
	})
	errs = append(errs, forEach(vols.Volumes, func(v *volume.Volume) error {
		if err := c.eng.VolumeRemove(ctx, v.Name, true); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove volume %s: %w", v.Name, err)
		}
		if opts.Volumes {
			progress.Done("volume "+v.Name, "remove volume "+v.Name, nil)
		}
		return nil
	}))
	if opts.Images {
		imgs, err := c.eng.ImageList(ctx, dockerimage.ListOptions{Filters: filters.NewArgs(
			ofProject,
			filters.Arg("label", engine.LabelManaged+"=true"),
		)})
		if err != nil {
			errs = append(errs, fmt.Errorf("list images: %w", err))
		}
		// One after the other: images of one project share layers.
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
	if removed == 0 {
		progress.Note(fmt.Sprintf("project %s has nothing to remove", project))
		return nil
	}
	progress.Note(fmt.Sprintf("project %s removed in %s", project, c.now().Sub(start).Round(time.Millisecond)))
	return nil
}

// removeCell removes a cell's gateway and its replicas; before returns
// when the gateway may be removed (Down waits for the keeper).
//
// A running gateway is asked to stop first: it then creates nothing any
// more and drains every replica, and answers once none serves a request.
// The gateway and the replicas are then removed at once, each replica
// given timeout to exit. A gateway that did not answer in time (or is not
// running) is removed first, so that nothing recreates the replicas
// behind it, and the replicas after it. Either way a replica created as
// the gateway went may be left: the caller removes what is left of the
// cell once the gateway is gone.
func (c *Client) removeCell(ctx context.Context, project string, g gateway, timeout time.Duration, before func()) error {
	drained := false
	if g.state == "running" {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		// A gateway that cannot drain in time is no reason to keep the
		// project: removing it first takes over.
		drained = c.stopGateway(sctx, g) == nil
		cancel()
	}
	before()
	replicas := filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("label", engine.LabelCell+"="+g.cell),
		filters.Arg("label", engine.LabelRole+"="+engine.RoleReplica),
	)
	removeGateway := func() error {
		if err := c.eng.ContainerRemove(ctx, g.id, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove gateway %s: %w", engine.GatewayName(project, g.cell), err)
		}
		return nil
	}
	if !drained {
		if err := removeGateway(); err != nil {
			return err
		}
		_, err := c.removeContainers(ctx, replicas, timeout)
		return err
	}
	gwErr := make(chan error, 1)
	go func() { gwErr <- removeGateway() }()
	_, err := c.removeContainers(ctx, replicas, timeout)
	return errors.Join(<-gwErr, err)
}

// networkRelease bounds how long Down waits for the engine to let go of
// a network whose containers it has removed.
const networkRelease = 10 * time.Second

// removeNetwork removes a network of project, which Down has emptied.
// Under load the engine was seen refusing ("has active endpoints") just
// after the last container on the network was removed, and finding nothing
// on it a moment later: it releases endpoints after the removal returns. So
// that refusal is tried again, for up to networkRelease; and should a
// container of the project still be on the network (one created as its
// gateway went), it is removed first, given grace to exit.
func (c *Client) removeNetwork(ctx context.Context, project string, nw network.Summary, grace time.Duration) error {
	deadline := c.now().Add(networkRelease)
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		err := c.eng.NetworkRemove(ctx, nw.ID)
		switch {
		case err == nil, errdefs.IsNotFound(err):
			return nil
		case !strings.Contains(err.Error(), "active endpoints") || !c.now().Before(deadline):
			return fmt.Errorf("remove network %s: %w", nw.Name, err)
		}
		if _, err := c.removeContainers(ctx, filters.NewArgs(
			filters.Arg("label", engine.LabelProject+"="+project),
			filters.Arg("network", nw.ID),
		), grace); err != nil {
			return fmt.Errorf("remove network %s: %w", nw.Name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove network %s: %w", nw.Name, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// removeOrphan removes a cell that left the project: its gateway and
// replicas, and then whatever is left of it.
func (c *Client) removeOrphan(ctx context.Context, project string, g gateway) error {
	if err := c.removeCell(ctx, project, g, orphanStopTimeout, func() {}); err != nil {
		return err
	}
	_, err := c.removeContainers(ctx, filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("label", engine.LabelCell+"="+g.cell),
	), orphanStopTimeout)
	return err
}

// gatewayStopper is a gatewayAdmin that can also stop a cell: its gateway
// drains every replica and creates none any more (see Down).
type gatewayStopper interface {
	stop(ctx context.Context, g gateway) error
}

func (a engineAdmin) stop(ctx context.Context, g gateway) error {
	if g.adminURL == "" || g.token == "" {
		return fmt.Errorf("stop cell %s: its gateway has no admin address or token", g.cell)
	}
	return a.c.admin(g).Stop(ctx)
}

// stopGateway asks the gateway g to stop its cell and returns once it has
// drained every replica.
func (c *Client) stopGateway(ctx context.Context, g gateway) error {
	s, ok := c.gwAdmin.(gatewayStopper)
	if !ok {
		return fmt.Errorf("stop cell %s: its gateway cannot be reached", g.cell)
	}
	return s.stop(ctx, g)
}

// removeLimit bounds how many containers, networks or volumes Down
// removes at once.
const removeLimit = 16

// removeContainers removes every container matching f, at once, and
// returns how many it removed. With a grace period a running container is
// first stopped, given grace to exit after SIGTERM, as `docker stop`
// does; with none it is killed.
func (c *Client) removeContainers(ctx context.Context, f filters.Args, grace time.Duration) (int, error) {
	list, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	var n atomic.Int64
	err = forEach(list, func(s container.Summary) error {
		gone, err := c.removeContainer(ctx, s, grace)
		if gone {
			n.Add(1)
		}
		return err
	})
	return int(n.Load()), err
}

// removeContainer stops (see removeContainers) and removes one container
// and reports whether it is gone; one that was gone already, or that
// someone else was removing, counts.
func (c *Client) removeContainer(ctx context.Context, s container.Summary, grace time.Duration) (bool, error) {
	name := engine.ContainerName(s.Names)
	if grace > 0 && s.State == "running" {
		secs := int((grace + time.Second - 1) / time.Second)
		// Should the stop fail, the forced removal below kills it.
		if err := c.eng.ContainerStop(ctx, s.ID, container.StopOptions{Timeout: &secs}); errdefs.IsNotFound(err) {
			return true, nil
		}
	}
	err := c.eng.ContainerRemove(ctx, s.ID, container.RemoveOptions{Force: true})
	switch {
	case err == nil, errdefs.IsNotFound(err):
		return true, nil
	case errdefs.IsConflict(err):
		// Its gateway is removing it (the engine allows one removal at
		// a time): wait until it is gone, so the networks can go next.
		if c.waitRemoved(ctx, s.ID) {
			return true, nil
		}
	}
	return false, fmt.Errorf("remove container %s: %w", name, err)
}

// removalWait bounds the wait for a container someone else is removing.
const removalWait = 30 * time.Second

// waitRemoved waits until the container id no longer exists and reports
// whether it went within removalWait.
func (c *Client) waitRemoved(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, removalWait)
	defer cancel()
	waitc, errc := c.eng.ContainerWait(ctx, id, container.WaitConditionRemoved)
	select {
	case <-waitc:
		return true
	case err := <-errc:
		return errdefs.IsNotFound(err)
	}
}

// forEach calls f on every item, at most removeLimit at once, and returns
// their errors joined.
func forEach[T any](items []T, f func(T) error) error {
	errs := make([]error, len(items))
	var g errgroup.Group
	g.SetLimit(removeLimit)
	for i, it := range items {
		g.Go(func() error {
			errs[i] = f(it)
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// isAccessLogVolume reports whether name is the access log volume of a
// cell of project (see engine.AccessLogVolumeName).
func isAccessLogVolume(project, name string) bool {
	cell, ok := strings.CutPrefix(name, project+"-")
	if !ok {
		return false
	}
	cell, ok = strings.CutSuffix(cell, "-access-log")
	return ok && name == engine.AccessLogVolumeName(project, cell)
}
