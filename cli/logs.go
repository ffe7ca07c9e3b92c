package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/runtime/api"
)

// LogsOptions are the inputs of `logs`.
type LogsOptions struct {
	IO         *IOStreams
	Target     serviceRef // zero: every replica of the project
	Follow     bool
	Tail       int // -1: all
	Since      time.Time
	Timestamps bool
	global     *globalOptions
	f          *Factory
}

func newLogsCmd(f *Factory, g *globalOptions, runF func(context.Context, *LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{IO: f.IO, global: g, f: f}
	var tail, since string
	cmd := &cobra.Command{
		Use:   "logs [CELL[/SERVICE[-N]]]",
		Short: "Print the logs of the project's replicas",
		Long: `Print the logs of the project's replicas, merged, each line behind a
cell/service-n prefix. CELL selects one cell, CELL/SERVICE one service and
CELL/SERVICE-N one replica; CELL/gateway selects the access log of the
cell's gateway.

A replica that exited is removed and replaced by its gateway, which keeps
the last 50 lines of its output first (for the latest 3 of each service):
they are printed too, marked with how it ended, as in
"shop/catalog-2 (exited 1) │ panic: ...".

Here -f means --follow; name a spec file with --file.`,
		Example: `  orchestro logs -f shop/orders
  orchestro logs shop/orders-2
  orchestro logs --since 10m --tail 100 shop
  orchestro logs shop/gateway`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("logs takes at most one CELL or CELL/SERVICE argument, got %d", len(args))
			}
			if len(args) == 1 {
				ref, err := parseServiceRef(args[0])
				if err != nil {
					return usagef("logs %q: %v: write CELL or CELL/SERVICE", args[0], err)
				}
				opts.Target = ref
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Tail, err = parseTail(tail); err != nil {
				return usageError{err}
			}
			if opts.Since, err = parseSince(since, f.Now()); err != nil {
				return usageError{err}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLogs(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines (until Ctrl-C)")
	fl.StringVar(&tail, "tail", "all", `number of lines to show from the end of each log, or "all"`)
	fl.StringVar(&since, "since", "", "show lines since a time (RFC 3339) or for a duration back from now (10m)")
	fl.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "show each line's timestamp")
	shadowFileFlag(cmd, g)
	return cmd
}

// shadowFileFlag gives a command whose -f means --follow its own --file
// flag without the shorthand. The root's persistent --file flag owns -f; a
// local flag of the same name keeps cobra from merging it in, which would
// otherwise panic on the clash of shorthands.
func shadowFileFlag(cmd *cobra.Command, g *globalOptions) {
	cmd.Flags().StringArrayVar(&g.Files, "file", nil, "cell, project or compose file, or a directory holding orchestro.yaml (repeatable)")
}

func runLogs(ctx context.Context, opts *LogsOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	t, replica := opts.Target, 0
	if t.Service != "" {
		// CELL/SERVICE-N names one replica, as for exec.
		r, err := parseReplicaRef(t.String())
		if err != nil {
			return usagef("logs %s: %v", t, err)
		}
		if r, err = r.resolve(ref.Spec); err != nil {
			return err
		}
		t, replica = r.serviceRef, r.Replica
	} else if err := t.check(ref.Spec, true); err != nil {
		return err
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	lp := newLogPrinter(opts.IO.Out, opts.IO.ColorOut(), opts.Timestamps, knownPrefixes(ref.Spec, t.Cell, t.Service))
	lo := api.LogOptions{Cell: t.Cell, Service: t.Service, Replica: replica, Follow: opts.Follow, Tail: opts.Tail, Since: opts.Since}
	err = be.Logs(ctx, ref.Name, lo, func(l api.LogLine) {
		if selectsLine(t, replica, l) {
			lp.Print(l)
		}
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of %s: %w", ref.Name, err)
	}
	// Ctrl-C is how a follow ends; it is not a failure.
	return nil
}

// selectsLine reports whether a line belongs to the selection: gateway
// access logs only when CELL/gateway is asked for, replicas otherwise, and
// only replica n when n is not 0. The Backend filters too; this keeps the
// output right whatever it sends.
func selectsLine(t serviceRef, n int, l api.LogLine) bool {
	if t.Cell != "" && l.Cell != t.Cell {
		return false
	}
	if t.Service == gatewayService {
		return l.Service == gatewayService
	}
	if l.Service == gatewayService {
		return false
	}
	return (t.Service == "" || l.Service == t.Service) && (n == 0 || l.Replica == n)
}
