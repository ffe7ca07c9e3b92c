//go:build unix

package main

import (
	"context"
	"testing"
	"time"
)

// keeperSpec is a one-cell project: its gateway has no other gateway to
// watch over it, only the keeper.
const keeperSpec = `cell: solo
gateway:
  port: ${SOLO_PORT}
services:
  web:
    build: {go: ECHO_DIR}
    port: 8080
    env: {SERVICE_NAME: web}
`

// TestE2EKeeperRevivesTheOnlyGateway: in a one-cell project only the
// keeper can start a killed gateway again (Docker disables the restart
// policy of a killed container). The keeper runs with networking
// disabled, so that starting it costs the engine no network sandbox, and
// it still does its work over the engine's socket.
func TestE2EKeeperRevivesTheOnlyGateway(t *testing.T) {
	cli := requireDocker(t)
	ctx := context.Background()
	p := newProject(t, "keeper", echoCellFile(t, keeperSpec), "SOLO_PORT")
	if _, stderr, code := p.run(t, "up", "-d", "--wait"); code != 0 {
		t.Fatalf("up -d --wait exited %d:\n%s", code, stderr)
	}

	keepers := ids(t, cli, p.name, labelRole+"=keeper")
	if len(keepers) != 1 {
		t.Fatalf("want one keeper, have %v", keepers)
	}
	for name, id := range keepers {
		ins, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatalf("inspect %s: %v", name, err)
		}
		if !ins.Config.NetworkDisabled || ins.NetworkSettings.SandboxKey != "" || len(ins.NetworkSettings.Networks) != 0 {
			t.Errorf("keeper %s: networking disabled %t, sandbox %q, networks %v; want no network sandbox at all",
				name, ins.Config.NetworkDisabled, ins.NetworkSettings.SandboxKey, ins.NetworkSettings.Networks)
		}
	}

	gw := gwGateway(t, cli, p, "solo")
	killed := time.Now()
	if err := cli.ContainerKill(ctx, gw.ID, "SIGKILL"); err != nil {
		t.Fatalf("kill the gateway: %v", err)
	}
	_, ok, why := eventually(20*time.Second, 100*time.Millisecond, func() (bool, string) {
		ins, err := cli.ContainerInspect(ctx, gw.ID)
		if err != nil {
			return false, err.Error()
		}
		started, _ := time.Parse(time.RFC3339Nano, ins.State.StartedAt)
		if !ins.State.Running || !started.After(killed) {
			return false, "the gateway is " + ins.State.Status + ", last started " + ins.State.StartedAt
		}
		_, status, err := get(p.url("SOLO_PORT") + "/web")
		if err != nil || status != 200 {
			return false, "the gateway runs but does not serve yet"
		}
		return true, ""
	})
	if !ok {
		t.Fatalf("the keeper did not bring the only gateway back within 20s: %s", why)
	}
	t.Logf("the killed gateway serves again %s after the kill", time.Since(killed).Round(time.Millisecond))
}
