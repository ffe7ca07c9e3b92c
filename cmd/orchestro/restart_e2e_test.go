//go:build unix

package main

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// restartSpec is a one-cell project of one service, web, with three
// replicas of the demo's echo service and a health check.
const restartSpec = `cell: rs
gateway:
  port: ${RS_PORT}
services:
  web:
    build: {go: ECHO_DIR}
    port: 8080
    env: {SERVICE_NAME: web}
    replicas: 3
    health: {http: /healthz, interval: 1s, timeout: 1s, retries: 2}
`

// TestE2ERestartCreatesOneReplicaPerReplica: `restart rs/web` of three
// replicas creates exactly three containers and removes exactly the three
// old ones, counted from the engine's own events. Container creation times
// are whole seconds: a restart that picked its victims by creation time
// replaced its own new replicas too.
func TestE2ERestartCreatesOneReplicaPerReplica(t *testing.T) {
	cli := requireDocker(t)
	p := newProject(t, "restart", echoCellFile(t, restartSpec), "RS_PORT")
	if _, stderr, code := p.run(t, "up", "-d", "--wait"); code != 0 {
		t.Fatalf("up -d --wait exited %d:\n%s", code, stderr)
	}
	old := map[string]bool{}
	for _, c := range gwRunning(gwReplicas(t, cli, p, "rs", "web")) {
		old[c.ID] = true
	}
	if len(old) != 3 {
		t.Fatalf("want 3 running web replicas before the restart, have %d", len(old))
	}

	// Every replica container created or destroyed from here on.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", "container"),
		filters.Arg("label", labelProject+"="+p.name),
		filters.Arg("label", labelRole+"=replica"),
		filters.Arg("event", "create"),
		filters.Arg("event", "destroy"),
	)})
	var mu sync.Mutex
	var created, destroyed []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case m := <-msgs:
				mu.Lock()
				switch m.Action {
				case events.ActionCreate:
					created = append(created, m.Actor.ID)
				case events.ActionDestroy:
					destroyed = append(destroyed, m.Actor.ID)
				}
				mu.Unlock()
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	// The engine delivers events from the subscription on; give it a
	// moment to be in place.
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	if _, stderr, code := p.run(t, "restart", "rs/web"); code != 0 {
		t.Fatalf("restart rs/web exited %d:\n%s", code, stderr)
	}
	took, ok, why := gwServiceAt(t, p, "rs", "web", 3, old, 60*time.Second)
	if !ok {
		t.Fatalf("rs/web was not restarted within 60s: %s", why)
	}
	// Churn would show after the restart looks done: wait a few health
	// intervals more.
	time.Sleep(4 * time.Second)
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	t.Logf("restart rs/web: every replica new and healthy after %s; %d containers created, %d removed",
		took.Round(time.Millisecond), len(created), len(destroyed))
	t.Logf("events: %s", strings.Join(gwEvents(t, p, "rs", "web", start), "\n  "))
	if len(created) != 3 {
		t.Errorf("restart of 3 replicas created %d containers, want 3", len(created))
	}
	var notOld []string
	for _, id := range destroyed {
		if !old[id] {
			notOld = append(notOld, id[:12])
		}
	}
	if len(notOld) > 0 {
		t.Errorf("restart removed containers it had created: %v", notOld)
	}
	gone := slices.Clone(destroyed)
	sort.Strings(gone)
	var want []string
	for id := range old {
		want = append(want, id)
	}
	sort.Strings(want)
	if !slices.Equal(want, gone) {
		t.Errorf("containers removed by the restart = %d (%v), want the 3 old ones", len(gone), gone)
	}
	now := map[string]bool{}
	for _, c := range gwRunning(gwReplicas(t, cli, p, "rs", "web")) {
		now[c.ID] = true
	}
	for _, id := range created {
		if !now[id] {
			t.Errorf("container %.12s created by the restart is not running", id)
		}
	}
}
