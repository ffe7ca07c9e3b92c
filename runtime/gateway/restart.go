package gateway

import (
	"context"
	"fmt"
	"slices"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// Restart asks for a rolling restart of one service, or of all of them.
// The replicas to replace are the containers the service has now, by ID;
// the plan replaces each by one new replica and drains it once its
// replacement is ready. The set is kept in the state file, so a gateway
// that restarts meanwhile finishes the restart and replaces nothing twice.
func (c *Controller) Restart(ctx context.Context, service string) error {
	c.mu.Lock()
	names := c.spec.Cell.ServiceNames()
	if service != "" {
		if c.spec.Cell.Services[service] == nil {
			c.mu.Unlock()
			return admin.NotFound(fmt.Errorf("cell %s has no service %q", c.spec.Cell.Name, service))
		}
		names = []string{service}
	}
	c.mu.Unlock()
	// The engine's listing, not the records of the last round: a gateway
	// that has not observed its replicas yet restarts them all the same.
	list, err := c.listReplicas(ctx)
	if err != nil {
		return fmt.Errorf("restart cell %s: %w", c.cell, err)
	}
	c.mu.Lock()
	added := map[string]int{}
	for _, s := range list {
		svc := s.Labels[engine.LabelService]
		if !slices.Contains(names, svc) || s.Labels[engine.LabelProject] != c.project || s.Labels[engine.LabelCell] != c.cell {
			continue
		}
		// A replica that is not running is replaced or kept by its
		// restart policy already, and one being drained is going anyway.
		switch ContainerState(s.State) {
		case ContainerRunning, ContainerPaused, ContainerRestarting:
		default:
			continue
		}
		if r := c.replicas[s.ID]; r != nil && r.removing {
			continue
		}
		if !slices.Contains(c.restarting[svc], s.ID) {
			c.restarting[svc] = append(c.restarting[svc], s.ID)
			added[svc]++
		}
	}
	c.saveState()
	c.mu.Unlock()
	for _, n := range names {
		c.emit(api.Event{Service: n, Type: api.EventUpdated, Message: fmt.Sprintf("rolling restart of %d replicas requested", added[n])})
	}
	c.Kick()
	return nil
}

// restartingSet returns the IDs of the replicas of a service that a
// rolling restart still has to replace; c.mu must be held.
func (c *Controller) restartingSet(service string) map[string]bool {
	ids := c.restarting[service]
	if len(ids) == 0 {
		return nil
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// pruneRestartingLocked forgets the replicas a rolling restart replaced
// whose containers are gone, and saves the state when that changed
// anything; c.mu must be held, and the replicas just observed.
func (c *Controller) pruneRestartingLocked() {
	changed := false
	for svc, ids := range c.restarting {
		left := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return c.replicas[id] == nil })
		switch {
		case len(left) == 0:
			delete(c.restarting, svc)
		case len(left) == len(ids):
			continue
		default:
			c.restarting[svc] = left
		}
		changed = true
	}
	if changed {
		c.saveState()
	}
}
