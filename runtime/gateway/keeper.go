package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/orchestro/orchestro/runtime/engine"
)

// KeeperEngine is the part of the Docker engine the keeper uses: it lists
// the project's stopped containers and starts them again. engine.Engine is
// one.
type KeeperEngine interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerStart(ctx context.Context, containerID string, options container.StartOptions) error
}

// revive starts the project's gateways and keeper that stopped without
// being removed, except self, and describes what it started.
//
// Docker disables a container's restart policy when it is killed through
// the API (`docker kill`), so a killed gateway would stay down. The
// project's gateways and its keeper therefore watch over each other: a
// killed one is back within seconds and adopts its replicas. Only starting
// is done here; creating and removing them stays with the command line.
func revive(ctx context.Context, eng KeeperEngine, project, self string) []string {
	list, err := eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("status", "exited"),
	)})
	if err != nil {
		return nil
	}
	var started []string
	for _, s := range list {
		role := s.Labels[engine.LabelRole]
		name := engine.ContainerName(s.Names)
		if s.Labels[engine.LabelProject] != project || name == self || (role != engine.RoleGateway && role != engine.RoleKeeper) {
			continue
		}
		if err := eng.ContainerStart(ctx, s.ID, container.StartOptions{}); err == nil {
			started = append(started, fmt.Sprintf("%s (it had %s)", name, s.Status))
		}
	}
	return started
}

// RunKeeper is the project keeper: a container that only restarts the
// project's gateways when they stop without being removed, so that a
// project with a single cell (no other gateway to watch it) heals too.
func RunKeeper(ctx context.Context, eng KeeperEngine, project string, log *slog.Logger) error {
	self := engine.KeeperName(project)
	log.Info("keeper started", "project", project)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, what := range revive(ctx, eng, project, self) {
			log.Info("restarted", "container", what)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
