package cli

import (
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// testStatus is a project with a running cell, deliberately unsorted, and
// a cell whose gateway is down (users is not in the test spec, so its URL
// cannot be enriched with route paths). The running cell has two flows.
func testStatus() *api.ProjectStatus {
	started := testNow.Add(-5 * time.Minute)
	return &api.ProjectStatus{
		Project: "demo",
		Cells: []api.CellStatus{
			{Cell: "billing", Gateway: "starting", Services: []api.ServiceStatus{}},
			// As the runtime reports a cell whose gateway does not answer:
			// the engine's view of its replicas, health unknown.
			{
				Cell: "users", Gateway: gatewayDown, URL: "http://127.0.0.1:8082", Error: "dial tcp 127.0.0.1:9082: connection refused",
				Services: []api.ServiceStatus{{
					Service: "accounts", Image: "example/accounts:1", Health: "unknown",
					Replicas: []api.ReplicaStatus{{Name: "demo-users-accounts-1", ContainerID: "u1", State: "running", Health: "unknown"}},
				}},
			},
			{
				Cell: "shop", Gateway: gatewayRunning, URL: "http://127.0.0.1:8081", SpecHash: "3f2a",
				// In file order, which is not the alphabetical one.
				Flows: []api.FlowStatus{
					{Flow: "place-order", Route: "POST /checkout/{order}", InFlight: 3, Executions: 1520, Failed: 12, Compensated: 7,
						Rate: 12.5, SuccessRate: 0.9996, P50Ms: 42, P99Ms: 180.46},
					// Idle: nothing ended in the last 10 seconds.
					{Flow: "cancel-order", Route: "DELETE /orders/{order}", Executions: 4, Failed: 1, Compensated: 1},
				},
				Services: []api.ServiceStatus{
					{
						Service: "orders", Image: "example/orders:1.4", Desired: 3, Ready: 2, Health: "starting",
						Autoscale: &api.AutoscaleStatus{Min: 1, Max: 4, Targets: []api.Target{{Metric: "inflight", Value: 23.5, Target: 10}},
							LastDecision: "scaled 1 → 3: inflight 23.5/replica > target 10", LastChange: testNow.Add(-time.Minute)},
						InFlight: 12, RPS: 41.5, Requests: 5120,
						Replicas: []api.ReplicaStatus{
							{Name: "demo-shop-orders-3", ContainerID: "c3", Replica: 3, State: "running", Health: "starting", Address: "172.20.0.5:8080", ConfigHash: "aa"},
							{Name: "demo-shop-orders-1", ContainerID: "c1", Replica: 1, State: "running", Health: "healthy", Address: "172.20.0.3:8080",
								InFlight: 7, RPS: 20.4, Requests: 3000, Started: started, ConfigHash: "aa"},
							{Name: "demo-shop-orders-2", ContainerID: "c2", Replica: 2, State: "running", Health: "draining", Address: "172.20.0.4:8080",
								InFlight: 5, RPS: 21.1, Requests: 2120, Restarts: 1, Started: started, ConfigHash: "aa"},
						},
					},
					{Service: "db", Image: "postgres:16", Desired: 0, Ready: 0, Health: "stopped"},
					{
						Service: "catalog", Image: "example/catalog:2", Desired: 1, Ready: 0, Health: "unhealthy",
						Replicas: []api.ReplicaStatus{
							{Name: "demo-shop-catalog-1", ContainerID: "k1", Replica: 1, State: "running", Health: "unhealthy", Address: "172.20.0.6:8080", Restarts: 4, ConfigHash: "bb"},
						},
					},
				},
			},
		},
	}
}

func TestPs(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		status     *api.ProjectStatus
		statusErr  error
		golden     string // stdout
		wantStderr string
	}{
		{
			name: "services", args: []string{"ps"}, status: testStatus(), golden: "ps.stdout",
			wantStderr: "warning: cell users: gateway down: dial tcp 127.0.0.1:9082: connection refused\n",
		},
		{
			name: "replicas", args: []string{"ps", "--replicas"}, status: testStatus(), golden: "ps_replicas.stdout",
			wantStderr: "warning: cell users: gateway down: dial tcp 127.0.0.1:9082: connection refused\n",
		},
		{name: "json", args: []string{"ps", "--json"}, status: testStatus(), golden: "ps.json"},
		{
			name: "a cell down is removing", args: []string{"ps"}, golden: "ps_stopping.stdout",
			status: &api.ProjectStatus{Project: "demo", Cells: []api.CellStatus{{
				Cell: "shop", Gateway: api.GatewayStopping, URL: "http://127.0.0.1:8081", SpecHash: "3f2a",
				Services: []api.ServiceStatus{{Service: "db", Image: "postgres:16", Health: "stopped",
					Replicas: []api.ReplicaStatus{{Name: "demo-shop-db-1", ContainerID: "d1", Replica: 1, State: "running", Health: "draining"}}}},
			}}},
			wantStderr: "warning: cell shop: gateway stopping: down drained the cell and is removing it (if that down did not finish, up starts the cell again)\n",
		},
		{
			name: "no flows", args: []string{"ps"}, status: withoutFlows(testStatus()), golden: "ps_no_flows.stdout",
			wantStderr: "warning: cell users: gateway down: dial tcp 127.0.0.1:9082: connection refused\n",
		},
		{
			name: "not running", args: []string{"ps"}, statusErr: fmt.Errorf("find gateways: %w", api.ErrNotRunning),
			golden: "ps_not_running.stdout", wantStderr: "project demo is not running\n",
		},
		{
			name: "not running, replicas", args: []string{"ps", "--replicas"}, status: &api.ProjectStatus{Project: "demo"},
			golden: "ps_not_running_replicas.stdout", wantStderr: "project demo is not running\n",
		},
		{name: "not running, json", args: []string{"ps", "--json"}, statusErr: api.ErrNotRunning, golden: "ps_not_running.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.be.status, h.be.statusErr = tt.status, tt.statusErr
			if code := h.run(t.Context(), tt.args...); code != ExitOK {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
			}
			h.wantCalls("connect", "Status demo")
			golden(t, tt.golden, h.out.String())
			if diff := cmp.Diff(tt.wantStderr, h.errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// withoutFlows removes the flows of every cell of st.
func withoutFlows(st *api.ProjectStatus) *api.ProjectStatus {
	for i := range st.Cells {
		st.Cells[i].Flows = nil
	}
	return st
}

func TestPsFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.be.statusErr = errors.New("list gateways: permission denied")
	if code := h.run(t.Context(), "ps", "--json"); code != ExitFailure {
		t.Errorf("exit code = %d, want %d", code, ExitFailure)
	}
	if want := "error: status of demo: list gateways: permission denied\n"; h.errOut.String() != want {
		t.Errorf("stderr = %q, want %q", h.errOut, want)
	}
	if h.out.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", h.out)
	}
}

// TestPsColor checks that colouring the health column on a terminal keeps
// the table aligned: without its escape codes it is the plain table.
func TestPsColor(t *testing.T) {
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	for _, args := range [][]string{{"ps"}, {"ps", "--replicas"}} {
		plain := newHarness(t, nil)
		plain.be.status = testStatus()
		plain.run(t.Context(), args...)

		tty := newHarness(t, nil)
		tty.be.status = testStatus()
		tty.ios.SetStdoutTTY(true)
		tty.run(t.Context(), args...)

		if !ansi.MatchString(tty.out.String()) {
			t.Errorf("%v on a terminal: no colour:\n%s", args, tty.out)
		}
		if diff := cmp.Diff(plain.out.String(), ansi.ReplaceAllString(tty.out.String(), "")); diff != "" {
			t.Errorf("%v: coloured table without colour differs from the plain one (-plain +coloured):\n%s", args, diff)
		}

		noColor := newHarness(t, nil)
		noColor.be.status = testStatus()
		noColor.ios.SetStdoutTTY(true)
		noColor.run(t.Context(), append([]string{"--no-color"}, args...)...)
		if ansi.MatchString(noColor.out.String()) {
			t.Errorf("%v --no-color on a terminal: coloured:\n%s", args, noColor.out)
		}
	}
}

// TestNormalizeStatusKeepsReady: ps --json says ready as the runtime
// reports it.
func TestNormalizeStatusKeepsReady(t *testing.T) {
	for _, ready := range []bool{true, false} {
		if got := normalizeStatus(&api.ProjectStatus{Project: "demo", Ready: ready}, "demo").Ready; got != ready {
			t.Errorf("ready %v became %v", ready, got)
		}
	}
}
