package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// ScaleOptions are the inputs of `scale`.
type ScaleOptions struct {
	IO          *IOStreams
	Targets     []scaleTarget
	Wait        bool
	WaitTimeout time.Duration
	global      *globalOptions
	f           *Factory
}

// scaleTarget is one CELL/SERVICE=N argument.
type scaleTarget struct {
	Ref      serviceRef
	Replicas int
}

func newScaleCmd(f *Factory, g *globalOptions, runF func(context.Context, *ScaleOptions) error) *cobra.Command {
	opts := &ScaleOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "scale CELL/SERVICE=N ...",
		Short: "Set the replica count of services",
		Long: `Set the replica count of one or more services now. A service with
autoscale bounds carries on autoscaling from the new count.`,
		Example: `  orchestro scale shop/orders=5
  orchestro scale shop/orders=3 users/accounts=0`,
		Args: func(cmd *cobra.Command, args []string) error {
			targets, err := parseScaleArgs(args)
			opts.Targets = targets
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.WaitTimeout <= 0 {
				return usagef("--wait-timeout %s must be positive", opts.WaitTimeout)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runScale(cmd.Context(), opts)
		},
	}
	addWaitFlags(cmd, &opts.Wait, &opts.WaitTimeout, "the services have their new replica counts ready and routable")
	return cmd
}

// addWaitFlags adds --wait and --wait-timeout to a command that asks a
// gateway for a change: without --wait it returns once the change is
// requested.
func addWaitFlags(cmd *cobra.Command, wait *bool, timeout *time.Duration, until string) {
	fl := cmd.Flags()
	fl.BoolVar(wait, "wait", false, "wait until "+until)
	fl.DurationVar(timeout, "wait-timeout", defaultWaitTimeout, "give up --wait after this long (exit code 3)")
}

// parseScaleArgs reads every CELL/SERVICE=N argument before anything is
// changed, so one typo never leaves half the services scaled.
func parseScaleArgs(args []string) ([]scaleTarget, error) {
	if len(args) == 0 {
		return nil, usagef("scale needs at least one CELL/SERVICE=N argument")
	}
	seen := map[serviceRef]bool{}
	targets := make([]scaleTarget, 0, len(args))
	for _, arg := range args {
		name, count, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, usagef("scale %q: missing '=': write CELL/SERVICE=N", arg)
		}
		if !strings.Contains(name, "/") {
			return nil, usagef("scale %q: missing '/': write CELL/SERVICE=N", arg)
		}
		ref, err := parseServiceRef(name)
		if err != nil {
			return nil, usagef("scale %q: %v: write CELL/SERVICE=N", arg, err)
		}
		n, err := strconv.Atoi(count)
		if err != nil || !isDigits(count) {
			return nil, usagef("scale %q: replicas %q is not a non-negative integer", arg, count)
		}
		if seen[ref] {
			return nil, usagef("scale %q: %s is given twice", arg, ref)
		}
		seen[ref] = true
		targets = append(targets, scaleTarget{Ref: ref, Replicas: n})
	}
	return targets, nil
}

func runScale(ctx context.Context, opts *ScaleOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	for _, t := range opts.Targets {
		if err := t.Ref.check(ref.Spec, false); err != nil {
			return err
		}
		if err := t.checkBounds(ref.Spec); err != nil {
			return err
		}
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	only := make([]api.ServiceRef, 0, len(opts.Targets))
	for _, t := range opts.Targets {
		if err := be.Scale(ctx, ref.Name, t.Ref.Cell, t.Ref.Service, t.Replicas); err != nil {
			return fmt.Errorf("scale %s: %w", t.Ref, err)
		}
		fmt.Fprintf(opts.IO.ErrOut, "requested %s: %d %s\n", t.Ref, t.Replicas, plural(t.Replicas, "replica", "replicas"))
		only = append(only, api.ServiceRef{Cell: t.Ref.Cell, Service: t.Ref.Service})
	}
	if !opts.Wait {
		return nil
	}
	if err := waitFor(ctx, opts.f, be, ref.Name, only, opts.WaitTimeout); err != nil {
		return err
	}
	for _, t := range opts.Targets {
		fmt.Fprintf(opts.IO.ErrOut, "scaled %s to %d\n", t.Ref, t.Replicas)
	}
	return nil
}

// waitFor waits for the services only names with the progress printer,
// for --wait of scale and restart.
func waitFor(ctx context.Context, f *Factory, be Backend, project string, only []api.ServiceRef, timeout time.Duration) error {
	pp := newProgressPrinter(f.IO, f.Now)
	defer pp.Close()
	return be.Wait(ctx, project, only, timeout, pp)
}

// checkBounds reports, as a usage error, a count outside the service's
// autoscale bounds, which its gateway would refuse. A nil spec checks
// nothing: the gateway has the last word.
func (t scaleTarget) checkBounds(spec *cellspec.Project) error {
	if spec == nil {
		return nil
	}
	c := spec.Cell(t.Ref.Cell)
	if c == nil || c.Services[t.Ref.Service] == nil {
		return nil
	}
	a := c.Services[t.Ref.Service].Autoscale
	if a == nil || (t.Replicas >= a.Min && t.Replicas <= a.Max) {
		return nil
	}
	return usagef("scale %s=%d: outside the autoscale bounds of %s, %d to %d (autoscale.min and autoscale.max in its cell file)",
		t.Ref, t.Replicas, t.Ref, a.Min, a.Max)
}

// serviceRef is a CELL or CELL/SERVICE argument.
type serviceRef struct {
	Cell    string
	Service string // empty: the whole cell
}

func (r serviceRef) String() string {
	if r.Service == "" {
		return r.Cell
	}
	return r.Cell + "/" + r.Service
}

// parseServiceRef reads CELL or CELL/SERVICE.
func parseServiceRef(s string) (serviceRef, error) {
	cell, service, hasSlash := strings.Cut(s, "/")
	switch {
	case cell == "":
		return serviceRef{}, fmt.Errorf("the cell name is empty")
	case hasSlash && service == "":
		return serviceRef{}, fmt.Errorf("the service name is empty")
	case strings.Contains(service, "/"):
		return serviceRef{}, fmt.Errorf("too many '/'")
	case !cellspec.IsDNSLabel(cell):
		return serviceRef{}, fmt.Errorf("invalid cell name %q", cell)
	case service != "" && !cellspec.IsDNSLabel(service):
		return serviceRef{}, fmt.Errorf("invalid service name %q", service)
	}
	return serviceRef{Cell: cell, Service: service}, nil
}

// check reports, as a usage error, a cell or service the spec does not
// have, with a "did you mean" when a known name is close. A nil spec (a
// missing or broken one) checks nothing: the gateway has the last word, as
// does the zero serviceRef, which selects the whole project. allowGateway
// accepts CELL/gateway, which names the gateway's access log.
func (r serviceRef) check(spec *cellspec.Project, allowGateway bool) error {
	if spec == nil || r.Cell == "" {
		return nil
	}
	c := spec.Cell(r.Cell)
	if c == nil {
		names := make([]string, len(spec.Cells))
		for i, c := range spec.Cells {
			names[i] = c.Name
		}
		return usagef("unknown cell %q in project %s%s", r.Cell, spec.Name, didYouMean(r.Cell, names))
	}
	if r.Service == "" || (allowGateway && r.Service == gatewayService) || c.Services[r.Service] != nil {
		return nil
	}
	return usagef("cell %s has no service %q%s", r.Cell, r.Service, didYouMean(r.Service, c.ServiceNames()))
}

// didYouMean returns "; did you mean "x"?" naming the known word closest to
// word, or "" when none is close enough to be a likely typo.
func didYouMean(word string, known []string) string {
	if hint := cellspec.Suggest(word, known); hint != "" {
		return "; " + hint
	}
	return ""
}
