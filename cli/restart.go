package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/runtime/api"
)

// RestartOptions are the inputs of `restart`.
type RestartOptions struct {
	IO          *IOStreams
	Target      serviceRef
	Wait        bool
	WaitTimeout time.Duration
	global      *globalOptions
	f           *Factory
}

func newRestartCmd(f *Factory, g *globalOptions, runF func(context.Context, *RestartOptions) error) *cobra.Command {
	opts := &RestartOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "restart CELL[/SERVICE]",
		Short: "Restart a service, or every service of a cell, one replica at a time",
		Long: `Restart a service, or every service of a cell, one replica at a time: a
new replica becomes healthy and joins the rotation before an old one is
drained and removed, so no request fails.`,
		Example: `  orchestro restart shop/orders
  orchestro restart shop`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("restart takes one CELL or CELL/SERVICE argument, got %d", len(args))
			}
			ref, err := parseServiceRef(args[0])
			if err != nil {
				return usagef("restart %q: %v: write CELL or CELL/SERVICE", args[0], err)
			}
			opts.Target = ref
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.WaitTimeout <= 0 {
				return usagef("--wait-timeout %s must be positive", opts.WaitTimeout)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRestart(cmd.Context(), opts)
		},
	}
	addWaitFlags(cmd, &opts.Wait, &opts.WaitTimeout, "every replica is replaced, and the new ones are ready and routable")
	return cmd
}

func runRestart(ctx context.Context, opts *RestartOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	if err := opts.Target.check(ref.Spec, false); err != nil {
		return err
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	t := opts.Target
	if err := be.Restart(ctx, ref.Name, t.Cell, t.Service); err != nil {
		return fmt.Errorf("restart %s: %w", t, err)
	}
	what := t.String()
	if t.Service == "" {
		what = "every service of " + t.Cell
	}
	fmt.Fprintf(opts.IO.ErrOut, "requested a rolling restart of %s\n", what)
	if !opts.Wait {
		return nil
	}
	if err := waitFor(ctx, opts.f, be, ref.Name, []api.ServiceRef{{Cell: t.Cell, Service: t.Service}}, opts.WaitTimeout); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "restarted %s\n", what)
	return nil
}
