package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// FlowsOptions are the inputs of `flows`.
type FlowsOptions struct {
	IO   *IOStreams
	Cell string // empty: every cell
	JSON bool

	global *globalOptions
	f      *Factory
}

func newFlowsCmd(f *Factory, g *globalOptions, runF func(context.Context, *FlowsOptions) error) *cobra.Command {
	opts := &FlowsOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "flows [CELL]",
		Short: "List the project's flows and how their executions fare",
		Long: `List the flows of the project, or of one cell: cell, flow, route, executions
in flight, executions per second and the percentage that succeeded over the
last 10 seconds, executions that ran compensations since the gateway
started, and the median and 99th percentile durations.

A project that is not running lists the flows of its spec, with "-" for
every figure. --json prints the flows shape documented in the README:

  {"project": "demo", "flows": [{"cell": "shop", "flow": "place-order", ...}]}

The subcommands read the executions each gateway journals: runs lists
them, show prints one as a timeline of its steps, retry runs one again.
A cell named runs, show or retry is listed with "orchestro flows -- NAME".`,
		Example: `  orchestro flows
  orchestro flows shop --json
  orchestro flows runs --failed
  orchestro flows show 3f2a9c1b2d4e`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 1:
				return usagef("flows takes at most one CELL argument, got %d", len(args))
			case len(args) == 1 && !cellspec.IsDNSLabel(args[0]):
				return usagef("flows %q: invalid cell name: write CELL", args[0])
			case len(args) == 1:
				opts.Cell = args[0]
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runFlows(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the flows as JSON")
	cmd.AddCommand(
		newFlowsRunsCmd(f, g, nil),
		newFlowsShowCmd(f, g, nil),
		newFlowsRetryCmd(f, g, nil),
	)
	return cmd
}

func runFlows(ctx context.Context, opts *FlowsOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	// Before the engine is asked, so a typo fails at once; a missing spec
	// leaves the check to the status below.
	if ref.Spec != nil && opts.Cell != "" && ref.Spec.Cell(opts.Cell) == nil {
		return unknownCell(opts.Cell, ref.Name, specCellNames(ref.Spec))
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	raw, err := be.Status(ctx, ref.Name)
	if err != nil && !errors.Is(err, api.ErrNotRunning) {
		return fmt.Errorf("status of %s: %w", ref.Name, err)
	}
	st := normalizeStatus(raw, ref.Name)
	if ref.Spec == nil && opts.Cell != "" && len(st.Cells) > 0 && !hasCell(st, opts.Cell) {
		names := make([]string, len(st.Cells))
		for i, c := range st.Cells {
			names[i] = c.Cell
		}
		return unknownCell(opts.Cell, ref.Name, names)
	}
	doc := flowsDocument{Project: st.Project, Flows: collectFlows(st, ref.Spec, opts.Cell)}
	if opts.JSON {
		return writeFlowsJSON(opts.IO.Out, doc)
	}

	errPal := opts.IO.Palette(opts.IO.ColorErr())
	if len(st.Cells) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "project %s is not running\n", st.Project)
	}
	for _, c := range st.Cells {
		if c.Gateway == gatewayDown && (opts.Cell == "" || c.Cell == opts.Cell) {
			fmt.Fprintf(opts.IO.ErrOut, "%s cell %s: gateway down%s\n", errPal.Yellow("warning:"), c.Cell, colonIf(c.Error))
		}
	}
	if len(doc.Flows) == 0 {
		if opts.Cell != "" {
			fmt.Fprintf(opts.IO.ErrOut, "cell %s has no flows\n", opts.Cell)
		} else {
			fmt.Fprintf(opts.IO.ErrOut, "project %s has no flows\n", st.Project)
		}
	}
	return writeFlows(opts.IO.Out, doc.Flows)
}

// unknownCell is the usage error for a CELL argument the project does not
// have. It names every cell, since a project rarely has many.
func unknownCell(cell, project string, known []string) error {
	return usagef("unknown cell %q in project %s (cells: %s)%s", cell, project, strings.Join(known, ", "), didYouMean(cell, known))
}

func specCellNames(p *cellspec.Project) []string {
	names := make([]string, len(p.Cells))
	for i, c := range p.Cells {
		names[i] = c.Name
	}
	return names
}

func hasCell(st *api.ProjectStatus, cell string) bool {
	for _, c := range st.Cells {
		if c.Cell == cell {
			return true
		}
	}
	return false
}
