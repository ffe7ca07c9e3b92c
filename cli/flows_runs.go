package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// defaultRunsLimit is how many executions `flows runs` lists unless told:
// a screenful, as `gh run list` shows.
const defaultRunsLimit = 20

// FlowsRunsOptions are the inputs of `flows runs`.
type FlowsRunsOptions struct {
	IO      *IOStreams
	Target  flowRef // zero: every cell
	Failed  bool
	Since   time.Time
	Limit   int
	NoTrunc bool
	JSON    bool

	global *globalOptions
	f      *Factory
}

// flowRef is a CELL or CELL/FLOW argument.
type flowRef struct {
	Cell string
	Flow string // empty: every flow of the cell
}

func (r flowRef) String() string {
	if r.Flow == "" {
		return r.Cell
	}
	return r.Cell + "/" + r.Flow
}

// parseFlowRef reads CELL or CELL/FLOW.
func parseFlowRef(s string) (flowRef, error) {
	cell, flow, hasSlash := strings.Cut(s, "/")
	switch {
	case cell == "":
		return flowRef{}, errors.New("the cell name is empty")
	case hasSlash && flow == "":
		return flowRef{}, errors.New("the flow name is empty")
	case strings.Contains(flow, "/"):
		return flowRef{}, errors.New("too many '/'")
	case !cellspec.IsDNSLabel(cell):
		return flowRef{}, fmt.Errorf("invalid cell name %q", cell)
	case flow != "" && !cellspec.IsDNSLabel(flow):
		return flowRef{}, fmt.Errorf("invalid flow name %q", flow)
	}
	return flowRef{Cell: cell, Flow: flow}, nil
}

// check reports, as a usage error, a cell or flow the spec does not have,
// and whether the spec gives the cell no flows at all. A nil spec checks
// nothing: the gateways have the last word.
func (r flowRef) check(spec *cellspec.Project) (noFlows bool, err error) {
	if spec == nil || r.Cell == "" {
		return false, nil
	}
	c := spec.Cell(r.Cell)
	if c == nil {
		return false, unknownCell(r.Cell, spec.Name, specCellNames(spec))
	}
	if r.Flow == "" || len(c.Flows) == 0 {
		return len(c.Flows) == 0, nil
	}
	names := make([]string, len(c.Flows))
	for i, f := range c.Flows {
		if f.Name == r.Flow {
			return false, nil
		}
		names[i] = f.Name
	}
	return false, usagef("cell %s has no flow %q (flows: %s)%s", r.Cell, r.Flow, strings.Join(names, ", "), didYouMean(r.Flow, names))
}

func newFlowsRunsCmd(f *Factory, g *globalOptions, runF func(context.Context, *FlowsRunsOptions) error) *cobra.Command {
	opts := &FlowsRunsOptions{IO: f.IO, global: g, f: f}
	var since string
	cmd := &cobra.Command{
		Use:   "runs [CELL[/FLOW]]",
		Short: "List the latest executions of the project's flows",
		Long: `List the latest executions of the project's flows, or of one cell's or
one flow's, newest first, as the gateways journal them: id, cell, flow,
state, when it started, how long it took, the step that failed, and
whether a restarted gateway finished it (RECOVERED).

The ID column shows the first 12 characters of each id (--no-trunc shows
them whole); flows show and flows retry take any unique prefix of one.
STATE is running, compensating, succeeded, failed, compensated or
partially_compensated. --json prints the list documented in the README:

  [{"id": "…", "cell": "shop", "flow": "place-order", "state": "compensated", ...}]`,
		Example: `  orchestro flows runs
  orchestro flows runs shop/place-order --failed --since 1h
  orchestro flows runs --limit 100 --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 1:
				return usagef("flows runs takes at most one CELL or CELL/FLOW argument, got %d", len(args))
			case len(args) == 1:
				ref, err := parseFlowRef(args[0])
				if err != nil {
					return usagef("flows runs %q: %v: write CELL or CELL/FLOW", args[0], err)
				}
				opts.Target = ref
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Since, err = parseSince(since, f.Now()); err != nil {
				return usageError{err}
			}
			if opts.Limit < 1 {
				return usagef("--limit %d: list at least one execution", opts.Limit)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runFlowsRuns(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Failed, "failed", false, "only the executions that ended without succeeding")
	fl.StringVar(&since, "since", "", "only the executions started since a time (RFC 3339) or for a duration back from now (10m)")
	fl.IntVar(&opts.Limit, "limit", defaultRunsLimit, "list at most this many executions")
	fl.BoolVar(&opts.NoTrunc, "no-trunc", false, "show whole execution ids")
	fl.BoolVar(&opts.JSON, "json", false, "print the executions as JSON")
	return cmd
}

func runFlowsRuns(ctx context.Context, opts *FlowsRunsOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	// Before the engine is asked, so a typo fails at once.
	noFlows, err := opts.Target.check(ref.Spec)
	if err != nil {
		return err
	}
	if noFlows {
		// Nothing to ask a gateway about, as `flows CELL` says.
		if opts.JSON {
			return writeJSON(opts.IO.Out, []api.ExecutionSummary{})
		}
		fmt.Fprintf(opts.IO.ErrOut, "cell %s has no flows\n", opts.Target.Cell)
		return runsTable{}.write(opts.IO.Out, nil)
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	filter := api.ExecutionFilter{Flow: opts.Target.Flow, Failed: opts.Failed, Since: opts.Since, Limit: opts.Limit}
	list, err := be.Executions(ctx, ref.Name, opts.Target.Cell, filter)
	notRunning := errors.Is(err, api.ErrNotRunning)
	if err != nil && !notRunning {
		what := ref.Name
		if opts.Target.Cell != "" {
			what = opts.Target.String()
		}
		return fmt.Errorf("executions of %s: %w", what, err)
	}
	list = normalizeExecutions(list, opts.Limit)
	if opts.JSON {
		return writeJSON(opts.IO.Out, list)
	}
	if notRunning {
		fmt.Fprintf(opts.IO.ErrOut, "project %s is not running\n", ref.Name)
	}
	t := runsTable{pal: opts.IO.Palette(opts.IO.ColorOut()), now: opts.f.Now(), noTrunc: opts.NoTrunc}
	return t.write(opts.IO.Out, list)
}
