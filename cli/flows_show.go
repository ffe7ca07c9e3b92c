package cli

import (
	"context"

	"github.com/spf13/cobra"
)

// FlowsShowOptions are the inputs of `flows show`.
type FlowsShowOptions struct {
	IO   *IOStreams
	ID   string // an execution id or a unique prefix of one
	JSON bool

	global *globalOptions
	f      *Factory
}

func newFlowsShowCmd(f *Factory, g *globalOptions, runF func(context.Context, *FlowsShowOptions) error) *cobra.Command {
	opts := &FlowsShowOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one flow execution as a timeline of its steps",
		Long: `Show one flow execution: its id, cell and flow, state, the step that failed,
when it started, how long it took and whether a restarted gateway finished
it; then each step with its state, HTTP status, tries, duration and error;
then each compensation with its outcome; then the status it answered with.

ID is an execution id as flows runs lists it, or any unique prefix of one
(among the project's latest 1000 executions). --json prints the execution
shape documented in the README.`,
		Example: `  orchestro flows show 3f2a9c1b2d4e
  orchestro flows show 3f2a --json`,
		Args: executionArg("flows show", &opts.ID),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runFlowsShow(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the execution as JSON")
	return cmd
}

func runFlowsShow(ctx context.Context, opts *FlowsShowOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	e, err := findExecution(ctx, be, ref.Name, opts.ID, opts.f.Now())
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, e)
	}
	return timeline{pal: opts.IO.Palette(opts.IO.ColorOut()), now: opts.f.Now()}.write(opts.IO.Out, e)
}
