package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/runtime/api"
)

// runDashCmd runs `dash` with args on its own, with the global flags
// given, as the root command would.
func runDashCmd(t *testing.T, h *harness, g *globalOptions, runF func(context.Context, *DashOptions) error, args ...string) error {
	t.Helper()
	cmd := newDashCmd(h.f, g, runF)
	cmd.SetArgs(args)
	cmd.SetOut(h.out)
	cmd.SetErr(h.errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	return cmd.ExecuteContext(t.Context())
}

func TestDashFlags(t *testing.T) {
	tests := []struct {
		args        []string
		wantRefresh time.Duration
		wantCode    int
	}{
		{args: nil, wantRefresh: time.Second},
		{args: []string{"--refresh", "250ms"}, wantRefresh: 250 * time.Millisecond},
		{args: []string{"--refresh", "10ms"}, wantCode: ExitUsage},
		{args: []string{"--refresh", "soon"}, wantCode: ExitUsage},
		{args: []string{"shop"}, wantCode: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h := newHarness(t, nil)
			var got *DashOptions
			err := runDashCmd(t, h, &globalOptions{}, func(_ context.Context, o *DashOptions) error {
				got = o
				return nil
			}, tt.args...)
			if code := ExitCode(err); code != tt.wantCode {
				t.Fatalf("exit code %d (%v), want %d", code, err, tt.wantCode)
			}
			if tt.wantCode == ExitOK && got.Refresh != tt.wantRefresh {
				t.Errorf("refresh %s, want %s", got.Refresh, tt.wantRefresh)
			}
		})
	}
}

func TestDashRefusals(t *testing.T) {
	tests := []struct {
		name      string
		tty       bool
		status    *api.ProjectStatus
		statusErr error
		wantErr   string
		wantCalls []string
	}{
		{
			name: "not a terminal", tty: false, status: &api.ProjectStatus{Project: "demo"},
			wantErr: "dash needs a terminal; in scripts use `orchestro ps`, `orchestro events -f` or `orchestro logs -f`",
		},
		{
			name: "no cell", tty: true, status: &api.ProjectStatus{Project: "demo", Cells: []api.CellStatus{}},
			wantErr:   "project is not running: demo (start it with `orchestro up -d`)",
			wantCalls: []string{"connect", "Status demo"},
		},
		{
			name: "no gateway", tty: true, statusErr: api.ErrNotRunning,
			wantErr:   "project is not running: demo (start it with `orchestro up -d`)",
			wantCalls: []string{"connect", "Status demo"},
		},
		{
			name: "no engine", tty: true, statusErr: errors.New("Cannot connect to the Docker daemon"),
			wantErr:   "status of demo: Cannot connect to the Docker daemon",
			wantCalls: []string{"connect", "Status demo"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.ios.SetStdoutTTY(tt.tty)
			h.be.status, h.be.statusErr = tt.status, tt.statusErr
			err := runDashCmd(t, h, &globalOptions{}, nil)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if code := ExitCode(err); code != ExitFailure {
				t.Errorf("exit code %d, want %d", code, ExitFailure)
			}
			h.wantCalls(tt.wantCalls...)
		})
	}
}

func TestDashSourceBindsTheProject(t *testing.T) {
	be := &fakeBackend{
		status: &api.ProjectStatus{Project: "shopfront"},
		logs:   []api.LogLine{{Cell: "shop", Service: "orders", Replica: 1, Text: "hello"}},
		events: []api.Event{{Cell: "shop", Type: api.EventStarted}},
	}
	src := dashSource{be: be, project: "shopfront"}
	ctx := t.Context()
	if st, err := src.Status(ctx); err != nil || st.Project != "shopfront" {
		t.Errorf("Status = %v, %v", st, err)
	}
	var lines []api.LogLine
	if err := src.Logs(ctx, api.LogOptions{Cell: "shop", Service: "orders", Follow: true, Tail: 200}, func(l api.LogLine) { lines = append(lines, l) }); err != nil || len(lines) != 1 {
		t.Errorf("Logs = %v, %v", lines, err)
	}
	var events []api.Event
	if err := src.Events(ctx, true, func(e api.Event) { events = append(events, e) }); err != nil || len(events) != 1 {
		t.Errorf("Events = %v, %v", events, err)
	}
	if err := src.Scale(ctx, "shop", "orders", 4); err != nil {
		t.Error(err)
	}
	if err := src.Restart(ctx, "shop", "orders"); err != nil {
		t.Error(err)
	}
	want := []string{
		"Status shopfront",
		`Logs shopfront cell="shop" service="orders" follow=true tail=200 since=-`,
		"Events shopfront follow=true",
		"Scale shopfront shop/orders 4",
		`Restart shopfront cell="shop" service="orders"`,
	}
	if diff := cmp.Diff(want, be.Calls()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
}
