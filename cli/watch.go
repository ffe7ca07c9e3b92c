package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// WatchOptions are the inputs of `watch`.
type WatchOptions struct {
	IO           *IOStreams
	Build        bool
	GatewayImage string
	global       *globalOptions
	f            *Factory
}

func newWatchCmd(f *Factory, g *globalOptions, runF func(context.Context, *WatchOptions) error) *cobra.Command {
	opts := &WatchOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Rebuild services when their files change and roll them through the gateway",
		Long: `Bring the project up to date, as up -d does, then watch the build inputs
of every service until Ctrl-C: a Dockerfile service's build context (less
what .dockerignore excludes), a Go service's packages in its own module
and in local modules, with go.mod and go.sum. Once the files have been
still for 300ms, what changed is rebuilt and rolled through the gateway: a
new replica is ready and in rotation before an old one is drained, so no
request fails. One line is printed per rebuild, with its duration, or its
build error; watching carries on after a failed build.

A compose service with develop.watch follows its rules instead: rebuild,
sync (copy the changed files into every running replica), sync+restart
(carried out as rebuild) and restart (a rolling restart), honouring path,
target, ignore and include.

Ctrl-C stops watching and leaves the project running.`,
		Example: `  orchestro watch
  orchestro up --watch`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runWatch(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Build, "build", false, "build Dockerfile images even when their content hash is unchanged")
	fl.StringVar(&opts.GatewayImage, "gateway-image", "", "run gateways from this published image instead of one built from this binary")
	return cmd
}

func runWatch(ctx context.Context, opts *WatchOptions) error {
	p, err := loadProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	policy := api.BuildMissing
	if opts.Build {
		policy = api.BuildAlways
	}
	pp := newProgressPrinter(opts.IO, opts.f.Now)
	defer pp.Close()
	return watchUntilInterrupted(ctx, opts.IO, be, p, api.UpOptions{Build: policy, GatewayImage: opts.GatewayImage, Progress: pp})
}

// watchUntilInterrupted watches until Ctrl-C, which leaves the project
// running.
func watchUntilInterrupted(ctx context.Context, ios *IOStreams, be Backend, p *cellspec.Project, opts api.UpOptions) error {
	err := be.Watch(ctx, p, opts)
	if ctx.Err() != nil {
		fmt.Fprintf(ios.ErrOut, "stopped watching; project %s keeps running ('orchestro down' stops it)\n", p.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("watch %s: %w", p.Name, err)
	}
	return nil
}

// watchAfterUp is the end of `up --watch`: with -d it watches in the
// foreground until Ctrl-C, which leaves the project running; attached it
// watches while the logs stream, and Ctrl-C stops both and the project,
// as attached up does.
func watchAfterUp(ctx context.Context, opts *UpOptions, be Backend, p *cellspec.Project, since time.Time) error {
	pp := newProgressPrinter(opts.IO, opts.f.Now)
	defer pp.Close()
	wopts := api.UpOptions{Build: opts.buildPolicy(), RemoveOrphans: opts.RemoveOrphans, GatewayImage: opts.GatewayImage,
		// up has just reported the builds; watch's own first pass, which
		// finds nothing to do, would repeat them.
		Progress: notesOnly{pp}}
	if opts.Detach {
		return watchUntilInterrupted(ctx, opts.IO, be, p, wopts)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchErr := make(chan error, 1)
	go func() {
		// A watch that cannot start ends the logs, and so stops the
		// project, rather than leave the user believing it watches.
		defer cancel()
		watchErr <- be.Watch(wctx, p, wopts)
	}()
	err := attach(wctx, opts, be, p, since)
	cancel()
	if werr := <-watchErr; werr != nil && ctx.Err() == nil {
		err = errors.Join(fmt.Errorf("watch %s: %w", p.Name, werr), err)
	}
	return err
}

// notesOnly passes on a Progress's notes (watch's lines, warnings) and
// drops its steps.
type notesOnly struct{ api.Progress }

// Start implements api.Progress.
func (notesOnly) Start(id, text string) {}

// Done implements api.Progress.
func (notesOnly) Done(id, text string, err error) {}
