package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// defaultWaitTimeout bounds `up --wait`.
const defaultWaitTimeout = 2 * time.Minute

// UpOptions are the inputs of `up`.
type UpOptions struct {
	IO            *IOStreams
	Detach        bool
	Wait          bool
	WaitTimeout   time.Duration
	Build         bool
	NoBuild       bool
	RemoveOrphans bool
	GatewayImage  string
	// Target is --target: docker, swarm, or "" (see api.UpOptions).
	Target string
	// Registry is --registry, where images go for a swarm's nodes.
	Registry string
	// Watch rebuilds and rolls services when their files change, once
	// the project is up (watch.go).
	Watch bool
	// InterruptContext returns the context the stop at the end of an
	// attached up runs under: a second interrupt cancels it, so a stuck
	// stop can be abandoned. It is meant to become a Factory field.
	InterruptContext func(parent context.Context) (context.Context, context.CancelFunc)
	global           *globalOptions
	f                *Factory
}

func newUpCmd(f *Factory, g *globalOptions, runF func(context.Context, *UpOptions) error) *cobra.Command {
	opts := &UpOptions{IO: f.IO, InterruptContext: interruptContext, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build, create and start the project, or converge it to the spec",
		Long: `Build the images, create the networks and one gateway per cell, and
start every service's replicas. Re-running up converges: unchanged services
are left alone, changed ones roll one replica at a time.

Attached (the default), up streams every replica's logs until Ctrl-C, then
stops the project (volumes are kept); a second Ctrl-C abandons the stop.
With -d it returns once the project is started, and with --wait once every
replica is healthy and routable (exit code 3 if that takes longer than
--wait-timeout or a service fails). The gateway URL of each cell is printed
on stderr.`,
		Example: `  orchestro up
  orchestro up -d --wait && make test && orchestro down`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Build && opts.NoBuild {
				return usagef("--build and --no-build cannot be used together")
			}
			if opts.Watch && opts.NoBuild {
				return usagef("--watch builds images; it cannot be used with --no-build")
			}
			if opts.WaitTimeout <= 0 {
				return usagef("--wait-timeout %s must be positive", opts.WaitTimeout)
			}
			if opts.Target != "" && opts.Target != api.TargetDocker && opts.Target != api.TargetSwarm {
				return usagef("--target %q: use docker (the local engine) or swarm", opts.Target)
			}
			if err := checkRegistry(opts.Registry); err != nil {
				return err
			}
			if opts.Watch && opts.Target == api.TargetSwarm {
				return usagef("--watch runs on the local engine; it cannot be used with --target swarm")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runUp(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&opts.Detach, "detach", "d", false, "start in the background and return")
	fl.BoolVar(&opts.Wait, "wait", false, "wait until every replica is healthy and routable")
	fl.DurationVar(&opts.WaitTimeout, "wait-timeout", defaultWaitTimeout, "give up --wait after this long (exit code 3)")
	fl.BoolVar(&opts.Build, "build", false, "rebuild every image, even when unchanged")
	fl.BoolVar(&opts.NoBuild, "no-build", false, "build nothing; fail if an image is missing")
	fl.BoolVar(&opts.RemoveOrphans, "remove-orphans", false, "remove cells of the project that are no longer in the spec")
	fl.StringVar(&opts.GatewayImage, "gateway-image", "", "run gateways from this published image instead of one built from this binary")
	fl.StringVar(&opts.Target, "target", "", "deploy to `docker` (the local engine) or `swarm` (the swarm this engine manages); default: the project file's target, else where the project runs, else docker")
	fl.StringVar(&opts.Registry, "registry", "", "on a swarm, push built images to this registry (`HOST[:PORT][/PREFIX]`) and deploy them by digest")
	fl.BoolVar(&opts.Watch, "watch", false, "then rebuild services when their files change and roll them through the gateway (see watch)")
	return cmd
}

func (opts *UpOptions) buildPolicy() api.BuildPolicy {
	switch {
	case opts.Build:
		return api.BuildAlways
	case opts.NoBuild:
		return api.BuildNever
	}
	return api.BuildMissing
}

func runUp(ctx context.Context, opts *UpOptions) error {
	p, err := loadProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	start := opts.f.Now()
	pp := newProgressPrinter(opts.IO, opts.f.Now)
	err = be.Up(ctx, p, api.UpOptions{
		Wait:          opts.Wait,
		WaitTimeout:   opts.WaitTimeout,
		Build:         opts.buildPolicy(),
		RemoveOrphans: opts.RemoveOrphans,
		GatewayImage:  opts.GatewayImage,
		Target:        opts.Target,
		Registry:      opts.Registry,
		Progress:      pp,
	})
	pp.Close()
	if err != nil {
		if !opts.Detach && ctx.Err() != nil {
			// Attached, Ctrl-C means "stop": whatever was already started
			// goes too, as it would have after the logs.
			return errors.Join(fmt.Errorf("up %s: interrupted", p.Name), stopProject(ctx, opts, be, p.Name))
		}
		return fmt.Errorf("up %s: %w", p.Name, err)
	}
	printUpSummary(ctx, opts.IO, be, p, !opts.Detach)
	if opts.Watch {
		return watchAfterUp(ctx, opts, be, p, start)
	}
	if opts.Detach {
		return nil
	}
	return attach(ctx, opts, be, p, start)
}

// attach streams every replica's logs until ctx ends (Ctrl-C) or the
// stream does, then stops the project.
func attach(ctx context.Context, opts *UpOptions, be Backend, p *cellspec.Project, since time.Time) error {
	lp := newLogPrinter(opts.IO.Out, opts.IO.ColorOut(), false, knownPrefixes(p, "", ""))
	// Since keeps a re-run from replaying old history; Tail -1 keeps every
	// line written since up began, before the stream was open.
	lo := api.LogOptions{Follow: true, Tail: -1, Since: since}
	logErr := be.Logs(ctx, p.Name, lo, func(l api.LogLine) {
		if l.Service != gatewayService {
			lp.Print(l)
		}
	})
	// Removed from elsewhere, while the logs were followed or before they
	// were opened (no container left of a project up just started):
	// there is nothing left to stop.
	if (errors.Is(logErr, api.ErrProjectGone) || errors.Is(logErr, api.ErrNotRunning)) && ctx.Err() == nil {
		return fmt.Errorf("project %s was removed (by a down from elsewhere?); up stops following it", p.Name)
	}
	if logErr != nil && ctx.Err() == nil {
		logErr = fmt.Errorf("logs of %s: %w", p.Name, logErr)
	} else {
		logErr = nil
	}
	return errors.Join(logErr, stopProject(ctx, opts, be, p.Name))
}

// stopProject removes the project's containers and networks (never its
// volumes) under a context that outlives ctx, which has usually just been
// cancelled by Ctrl-C, and that a second interrupt cancels.
func stopProject(ctx context.Context, opts *UpOptions, be Backend, project string) error {
	errOut := opts.IO.ErrOut
	fmt.Fprintln(errOut, "Stopping… (press Ctrl-C again to abandon)")
	stopCtx, cancel := opts.InterruptContext(ctx)
	defer cancel()
	pp := newProgressPrinter(opts.IO, opts.f.Now)
	err := be.Down(stopCtx, project, api.DownOptions{Timeout: defaultStopTimeout, Progress: pp})
	pp.Close()
	switch {
	case err == nil, errors.Is(err, api.ErrNotRunning):
		pal := opts.IO.Palette(opts.IO.ColorErr())
		fmt.Fprintf(errOut, "%s project %s stopped\n", pal.Green("✔"), project)
		return nil
	case stopCtx.Err() != nil:
		return fmt.Errorf("stop %s: abandoned; run 'orchestro down' to remove what is left", project)
	}
	return fmt.Errorf("stop %s: %w", project, err)
}

// interruptContext returns a context that is cancelled by the next
// interrupt or SIGTERM. It carries parent's values but not its
// cancellation, because the parent is the context the first interrupt
// ended. The process's signal-aware root context is still listening then,
// and signal.Notify delivers a signal to every registered channel, so the
// second Ctrl-C reaches this one too.
//
// It is the default of UpOptions.InterruptContext and the proposed
// Factory.InterruptContext field, which would let every command share it.
func interruptContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.WithoutCancel(parent), os.Interrupt, syscall.SIGTERM)
}

// checkRegistry checks the form of --registry before anything starts:
// HOST[:PORT][/PREFIX], with no scheme.
func checkRegistry(r string) error {
	if r == "" {
		return nil
	}
	if strings.Contains(r, "://") {
		return usagef("--registry %q: give HOST[:PORT][/PREFIX], without a scheme", r)
	}
	host, _, _ := strings.Cut(r, "/")
	if host == "" || strings.ContainsAny(r, " \t@") || strings.HasSuffix(r, "/") {
		return usagef("--registry %q: give HOST[:PORT][/PREFIX], such as localhost:5000 or registry.example.com/team", r)
	}
	return nil
}
