package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// EventsOptions are the inputs of `events`.
type EventsOptions struct {
	IO     *IOStreams
	Follow bool
	JSON   bool
	global *globalOptions
	f      *Factory
}

func newEventsCmd(f *Factory, g *globalOptions, runF func(context.Context, *EventsOptions) error) *cobra.Command {
	opts := &EventsOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the controller events of every cell",
		Long: `Print the controller events of every cell: replicas started, healthy,
unhealthy, ejected, replaced, drained and removed, and scaling decisions
with their reason, one per line:

  2026-11-22T10:00:00Z shop/orders scaled 1 → 3: inflight 23.5/replica > target 10

With --json each line is one JSON object of the documented event shape
(NDJSON). Here -f means --follow; name a spec file with --file.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runEvents(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new events (until Ctrl-C)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object per line")
	shadowFileFlag(cmd, g)
	return cmd
}

func runEvents(ctx context.Context, opts *EventsOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	ep := &eventPrinter{w: opts.IO.Out, pal: opts.IO.Palette(opts.IO.ColorOut() && !opts.JSON), json: opts.JSON}
	err = be.Events(ctx, ref.Name, opts.Follow, ep.Print)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("events of %s: %w", ref.Name, err)
	}
	if err := ep.Err(); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	// Ctrl-C is how a follow ends; it is not a failure.
	return nil
}
