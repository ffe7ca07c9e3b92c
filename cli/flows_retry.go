package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// FlowsRetryOptions are the inputs of `flows retry`.
type FlowsRetryOptions struct {
	IO *IOStreams
	ID string // an execution id or a unique prefix of one

	global *globalOptions
	f      *Factory
}

func newFlowsRetryCmd(f *Factory, g *globalOptions, runF func(context.Context, *FlowsRetryOptions) error) *cobra.Command {
	opts := &FlowsRetryOptions{IO: f.IO, global: g, f: f}
	return &cobra.Command{
		Use:   "retry ID",
		Short: "Run a flow execution again with the same input",
		Long: `Start a new execution of a flow with the input of an earlier one (its
method, path, headers and body), on the gateway that ran it, and print the
new execution's id. The gateway refuses while the execution is still
running or compensating; that is a runtime failure (exit code 1).

ID is an execution id as flows runs lists it, or any unique prefix of one.`,
		Example: `  orchestro flows runs --failed
  orchestro flows retry 3f2a9c1b2d4e`,
		Args: executionArg("flows retry", &opts.ID),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runFlowsRetry(cmd.Context(), opts)
		},
	}
}

func runFlowsRetry(ctx context.Context, opts *FlowsRetryOptions) error {
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
	res, err := be.RetryExecution(ctx, ref.Name, e.Cell, e.ID)
	if err != nil {
		return fmt.Errorf("retry %s/%s %s: %w", e.Cell, e.Flow, shortID(e.ID), err)
	}
	fmt.Fprintf(opts.IO.ErrOut, "retrying %s/%s %s as a new execution\n", e.Cell, e.Flow, shortID(e.ID))
	// The id alone on stdout, for scripts: id=$(orchestro flows retry …).
	_, err = fmt.Fprintln(opts.IO.Out, res.ID)
	return err
}
