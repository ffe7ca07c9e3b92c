package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/tui"
)

// minRefresh keeps --refresh from turning the dashboard into a load test
// of the gateways.
const minRefresh = 100 * time.Millisecond

// DashOptions are the inputs of `dash`.
type DashOptions struct {
	IO      *IOStreams
	Refresh time.Duration
	global  *globalOptions
	f       *Factory
}

func newDashCmd(f *Factory, g *globalOptions, runF func(context.Context, *DashOptions) error) *cobra.Command {
	opts := &DashOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "dash",
		Short: "Show a live dashboard of the running project",
		Long: `Show a live dashboard of the running project: its cells and services with
their health and traffic, the replicas and request rate of the selected
service, the flows of its cell (when the project has flows; F goes there
and back), the controller events, and the logs of the selected service or
replica. Services can be scaled and restarted from it; press ? for the keys.

The dashboard needs a terminal. In scripts, use ps, events and logs.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Refresh < minRefresh {
				return usagef("--refresh %s is too short: the least is %s", opts.Refresh, minRefresh)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDash(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Refresh, "refresh", tui.DefaultRefresh, "how often to ask the gateways for the project's status")
	return cmd
}

func runDash(ctx context.Context, opts *DashOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	if !opts.IO.IsStdoutTTY() {
		return errors.New("dash needs a terminal; in scripts use `orchestro ps`, `orchestro events -f` or `orchestro logs -f`")
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	src := dashSource{be: be, project: ref.Name}
	st, err := src.Status(ctx)
	switch {
	case errors.Is(err, api.ErrNotRunning), err == nil && (st == nil || len(st.Cells) == 0):
		return fmt.Errorf("%w: %s (start it with `orchestro up -d`)", api.ErrNotRunning, ref.Name)
	case err != nil:
		return fmt.Errorf("status of %s: %w", ref.Name, err)
	}
	return tui.Run(ctx, src, tui.Options{
		Project: ref.Name,
		Refresh: opts.Refresh,
		Initial: st,
		Now:     opts.f.Now,
		NoColor: !opts.IO.ColorOut(),
	})
}

// dashSource adapts the Backend to what the dashboard consumes, with the
// project bound.
type dashSource struct {
	be      Backend
	project string
}

var _ tui.Source = dashSource{}

func (s dashSource) Status(ctx context.Context) (*api.ProjectStatus, error) {
	return s.be.Status(ctx, s.project)
}

func (s dashSource) Events(ctx context.Context, follow bool, sink func(api.Event)) error {
	return s.be.Events(ctx, s.project, follow, sink)
}

func (s dashSource) Logs(ctx context.Context, opts api.LogOptions, sink func(api.LogLine)) error {
	return s.be.Logs(ctx, s.project, opts, sink)
}

func (s dashSource) Scale(ctx context.Context, cell, service string, replicas int) error {
	return s.be.Scale(ctx, s.project, cell, service, replicas)
}

func (s dashSource) Restart(ctx context.Context, cell, service string) error {
	return s.be.Restart(ctx, s.project, cell, service)
}

func (s dashSource) Executions(ctx context.Context, cell string, f api.ExecutionFilter) ([]api.ExecutionSummary, error) {
	return s.be.Executions(ctx, s.project, cell, f)
}

func (s dashSource) Execution(ctx context.Context, cell, id string) (*api.Execution, error) {
	return s.be.Execution(ctx, s.project, cell, id)
}
