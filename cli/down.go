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

// defaultStopTimeout is how long a replica gets to exit after SIGTERM before
// it is killed, for `down` and for the stop at the end of an attached `up`.
const defaultStopTimeout = 10 * time.Second

// DownOptions are the inputs of `down`.
type DownOptions struct {
	IO      *IOStreams
	Volumes bool
	Images  bool
	Timeout time.Duration
	global  *globalOptions
	f       *Factory
}

func newDownCmd(f *Factory, g *globalOptions, runF func(context.Context, *DownOptions) error) *cobra.Command {
	opts := &DownOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the project's containers and networks",
		Long: `Remove the project: each gateway drains its cell, then it and its replicas
go, every cell at once, then the networks and the gateways' access logs, and
with -v its named volumes too. Removing a project that is not running
succeeds. The project is named by -p or by the spec, which need not be
valid any more: down works after the spec has been broken.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Timeout < 0 {
				return usagef("--timeout %s must not be negative", opts.Timeout)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDown(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Volumes, "volumes", "v", false, "also remove the project's named volumes")
	cmd.Flags().BoolVar(&opts.Images, "rmi", false, "also remove the images orchestro built for the project's services")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", defaultStopTimeout, "time a replica has to stop before it is killed")
	return cmd
}

func runDown(ctx context.Context, opts *DownOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	pal := opts.IO.Palette(opts.IO.ColorErr())
	pp := newProgressPrinter(opts.IO, opts.f.Now)
	err = be.Down(ctx, ref.Name, api.DownOptions{Volumes: opts.Volumes, Images: opts.Images, Timeout: opts.Timeout, Progress: pp})
	pp.Close()
	switch {
	case errors.Is(err, api.ErrNotRunning):
		fmt.Fprintf(opts.IO.ErrOut, "project %s is not running: nothing to remove\n", ref.Name)
		return nil
	case err != nil:
		return fmt.Errorf("down %s: %w", ref.Name, err)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s project %s is down\n", pal.Green("✔"), ref.Name)
	return nil
}

// projectRef is what a runtime command knows of its project: the name, and
// the spec when it loads cleanly.
type projectRef struct {
	Name string
	// Spec is nil when the spec is missing or invalid; commands use it only
	// to check arguments and enrich output.
	Spec *cellspec.Project
}

// resolveProject finds the project a command that acts on a running
// project (down, ps, logs, …) talks to. Unlike loadProject it tolerates a
// broken spec: the project may have been started before the spec was
// edited, and it must still be possible to see and remove it. The name is
// -p, else the name of the spec even when the spec has problems (as long as
// the name itself is valid). Spec warnings are not printed: they concern
// what `up` would do.
func resolveProject(f *Factory, g *globalOptions) (projectRef, error) {
	if g.Project != "" && !cellspec.IsDNSLabel(g.Project) {
		return projectRef{}, usagef("invalid project name %q: lower-case letters, digits and '-', starting and ending with a letter or digit", g.Project)
	}
	wd, err := f.Getwd()
	if err != nil {
		return projectRef{}, err
	}
	p, err := cellspec.Load(cellspec.Options{Files: g.Files, ProjectName: g.Project, WorkDir: wd, Env: f.Env})
	var probs cellspec.Problems
	switch {
	case err == nil:
		return projectRef{Name: p.Name, Spec: p}, nil
	case g.Project != "":
		return projectRef{Name: g.Project}, nil
	case errors.As(err, &probs) && p != nil && cellspec.IsDNSLabel(p.Name):
		return projectRef{Name: p.Name}, nil
	case errors.Is(err, cellspec.ErrNoSpec):
		return projectRef{}, usageError{fmt.Errorf("%w (name the project with -p)", err)}
	}
	return projectRef{}, err
}
