package runtime

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

func TestWaitVerdict(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	exit1 := 1
	status := func(services ...api.ServiceStatus) *api.ProjectStatus {
		return &api.ProjectStatus{Cells: []api.CellStatus{{Cell: "shop", Gateway: "running", SpecHash: "h", Services: services}}}
	}
	lines := func(texts ...string) []api.ExitedLine {
		var out []api.ExitedLine
		for _, t := range texts {
			out = append(out, api.ExitedLine{Text: t})
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		st          *api.ProjectStatus
		wantPending []string
		wantFailed  string // "" for none
		// wantErr is what a failure wraps: api.ErrUnhealthy when nil.
		wantErr error
	}{
		{
			name: "healthy",
			st:   status(api.ServiceStatus{Service: "api", Desired: 1, Ready: 1, Health: "healthy"}),
		},
		{
			name:        "starting",
			st:          status(api.ServiceStatus{Service: "api", Desired: 2, Ready: 1, Health: "starting"}),
			wantPending: []string{"shop/api (1/2 ready, starting)"},
		},
		{
			name: "cannot start: fails at once, with the engine's reason",
			st: status(api.ServiceStatus{Service: "api", Desired: 1, Health: "starting", Failures: 1,
				LastError: `exec: "/nope": stat /nope: no such file or directory`}),
			wantFailed: "shop/api cannot start: exec: \"/nope\": stat /nope: no such file or directory",
		},
		{
			name: "crash-looping, with its last lines",
			st: status(api.ServiceStatus{Service: "api", Desired: 1, Health: "crashloop", Failures: 3, LastExitCode: &exit1,
				Exited: []api.ExitedReplica{
					{Name: "p-shop-api-1", Lines: lines("old")},
					{Name: "p-shop-api-2", Lines: lines("starting", "cannot connect to database")},
				}}),
			wantFailed: "shop/api is crash-looping: 3 failures, the last exited 1; the last lines of p-shop-api-2:\n    starting\n    cannot connect to database",
		},
		{
			name:        "crashed once, not looping yet: still pending",
			st:          status(api.ServiceStatus{Service: "api", Desired: 1, Health: "starting", Failures: 1, LastExitCode: &exit1}),
			wantPending: []string{"shop/api (0/1 ready, starting)"},
		},
		{
			// One that exits at once is running for a moment.
			name: "a replica without a health check that just started is not ready yet",
			st: status(api.ServiceStatus{Service: "api", Desired: 1, Ready: 1, Health: "healthy",
				Replicas: []api.ReplicaStatus{{Health: "none", Started: now.Add(-300 * time.Millisecond)}}}),
			wantPending: []string{"shop/api (1/1 ready, running for less than 1s)"},
		},
		{
			name: "one that just started and listens on its port is",
			st: status(api.ServiceStatus{Service: "api", Desired: 1, Ready: 1, Health: "healthy",
				Replicas: []api.ReplicaStatus{{Health: "none", Started: now.Add(-100 * time.Millisecond), Listening: now.Add(-50 * time.Millisecond)}}}),
		},
		{
			name: "one that has run for a second is",
			st: status(api.ServiceStatus{Service: "api", Desired: 1, Ready: 1, Health: "healthy",
				Replicas: []api.ReplicaStatus{{Health: "none", Started: now.Add(-time.Second)}}}),
		},
		{
			// A down from elsewhere is removing it (or one that did not
			// finish left it so): waiting will not bring its replicas
			// back, and it is no service's failure.
			name: "a cell whose gateway a down stopped: the project is being removed",
			st: &api.ProjectStatus{Cells: []api.CellStatus{{Cell: "shop", Gateway: api.GatewayStopping, SpecHash: "h",
				Services: []api.ServiceStatus{{Service: "api", Health: "stopped"}}}}},
			wantFailed: "a down stopped the gateway of cell shop (after a down that did not finish, up starts it again)",
			wantErr:    api.ErrProjectGone,
		},
		{
			name: "being removed wins over a failing service",
			st: &api.ProjectStatus{Cells: []api.CellStatus{
				{Cell: "shop", Gateway: api.GatewayStopping, SpecHash: "h"},
				{Cell: "users", Gateway: api.GatewayStopping, SpecHash: "h"},
				{Cell: "web", Gateway: "running", SpecHash: "h", Services: []api.ServiceStatus{{Service: "api", Desired: 1, Health: "starting", LastError: "boom"}}},
			}},
			wantFailed: "a down stopped the gateway of cells shop and users (after a down that did not finish, up starts it again)",
			wantErr:    api.ErrProjectGone,
		},
		{
			name: "a failure while every replica is ready is not the wait's business",
			st:   status(api.ServiceStatus{Service: "api", Desired: 1, Ready: 1, Health: "healthy", Failures: 1, LastError: "boom"}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pending, failed := waitVerdict(func(string, string) bool { return true }, tc.st, now)
			if diff := cmp.Diff(tc.wantPending, pending); diff != "" {
				t.Errorf("pending (-want +got):\n%s", diff)
			}
			switch {
			case tc.wantFailed == "" && failed != nil:
				t.Errorf("failed: %v", failed)
			case tc.wantFailed != "" && failed == nil:
				t.Errorf("not failed, want %q", tc.wantFailed)
			case failed != nil:
				wantErr := tc.wantErr
				if wantErr == nil {
					wantErr = api.ErrUnhealthy
				}
				if !errors.Is(failed, wantErr) {
					t.Errorf("%v does not wrap %v", failed, wantErr)
				}
				if got := strings.TrimPrefix(failed.Error(), wantErr.Error()+": "); got != tc.wantFailed {
					t.Errorf("failed:\n%s\nwant:\n%s", got, tc.wantFailed)
				}
			}
		})
	}
}

// TestWaitNoticesTheProjectRemoved: a down from another terminal while
// up --wait waits removes every gateway. The wait must say the project
// is gone, not that it is healthy because no cell is pending.
func TestWaitNoticesTheProjectRemoved(t *testing.T) {
	c, _, _ := newFakeClient(t)
	err := c.wait(t.Context(), testProject(), time.Second, api.Discard{})
	if !errors.Is(err, api.ErrProjectGone) {
		t.Fatalf("wait on a project with no gateways: %v, want ErrProjectGone", err)
	}
	if err := c.Wait(t.Context(), "demo", nil, time.Second, nil); !errors.Is(err, api.ErrProjectGone) {
		t.Fatalf("Wait on a project with no gateways: %v, want ErrProjectGone", err)
	}
}
