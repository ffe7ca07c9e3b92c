package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// Exit codes of DESIGN §4.
const (
	ExitOK        = 0
	ExitFailure   = 1
	ExitUsage     = 2
	ExitUnhealthy = 3
)

// usageError marks a bad flag or argument (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitStatus is the exit status of a command orchestro ran for the user
// (exec), passed through as its own; it prints nothing.
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	var probs cellspec.Problems
	var usage usageError
	var status exitStatus
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &status):
		return status.code
	case errors.As(err, &probs), errors.As(err, &usage):
		return ExitUsage
	case errors.Is(err, api.ErrWaitTimeout), errors.Is(err, api.ErrUnhealthy):
		return ExitUnhealthy
	}
	return ExitFailure
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	Files   []string
	Project string
	NoColor bool
}

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "orchestro",
		Short: "Run microservice cells on your machine",
		Long: `orchestro runs a microservice system described as cells on the local
Docker engine: every service's replicas behind one gateway per cell, with
load balancing, health checks, retries, self-healing and autoscaling.`,
		SilenceUsage: true,
		// Global flags before the verb are parsed by the root, so `-f FILE`
		// there and `logs -f` (follow) after it can coexist, as in docker
		// compose.
		TraverseChildren: true,
		SilenceErrors:    true,
		// A word that is no command is a usage error (exit 2), not help.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			var names []string
			for _, c := range cmd.Commands() {
				if !c.Hidden {
					names = append(names, c.Name())
				}
			}
			hint := cellspec.Suggest(args[0], names)
			if hint != "" {
				hint = "; " + hint
			}
			return usagef("unknown command %q for orchestro%s", args[0], hint)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			if g.NoColor {
				f.IO.SetNoColor(true)
			}
		},
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringArrayVarP(&g.Files, "file", "f", nil, "cell, project or compose file, or a directory holding one (repeatable)")
	pf.StringVarP(&g.Project, "project", "p", "", "project name (default: project: in orchestro.yaml, else the directory name)")
	pf.BoolVar(&g.NoColor, "no-color", false, "never colour the output (NO_COLOR is honoured too)")

	root.AddCommand(
		newValidateCmd(f, g, nil),
		newConfigCmd(f, g, nil),
		newConvertCmd(f, nil),
		newExportCmd(f, g),
		newSchemaCmd(f),
		newVersionCmd(f),
		newCompletionCmd(),
		newProbeCmd(f),
	)
	for _, c := range runtimeCommands(f, g) {
		root.AddCommand(c)
	}
	if f.Gateway != nil {
		root.AddCommand(newGatewayCmd(f))
	}
	return root
}

// Run executes the command line and returns the exit code, printing any
// error to stderr.
func Run(ctx context.Context, f *Factory, args []string) int {
	root := NewRootCmd(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var status exitStatus
	if err != nil && !errors.As(err, &status) {
		printError(f, err)
	}
	return ExitCode(err)
}

func printError(f *Factory, err error) {
	p := f.IO.Palette(f.IO.ColorErr())
	var probs cellspec.Problems
	if errors.As(err, &probs) {
		wd, _ := f.Getwd()
		for _, pr := range probs {
			pr.Pos.File = displayPath(wd, pr.Pos.File)
			fmt.Fprintln(f.IO.ErrOut, pr.String())
		}
		n := len(probs)
		fmt.Fprintf(f.IO.ErrOut, "%s: %d %s\n", p.Red("invalid spec"), n, plural(n, "problem", "problems"))
		return
	}
	var usage usageError
	if errors.As(err, &usage) {
		fmt.Fprintf(f.IO.ErrOut, "%s %v\nRun 'orchestro --help' for usage.\n", p.Red("error:"), err)
		return
	}
	fmt.Fprintf(f.IO.ErrOut, "%s %v\n", p.Red("error:"), err)
}

// displayPath shows a path relative to the working directory when it lies
// beneath it, as users typed it.
func displayPath(wd, path string) string {
	if wd == "" || path == "" || !filepath.IsAbs(path) {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	return rel
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// loadProject loads the project named by the global flags and prints its
// warnings to stderr.
func loadProject(f *Factory, g *globalOptions) (*cellspec.Project, error) {
	wd, err := f.Getwd()
	if err != nil {
		return nil, err
	}
	p, err := cellspec.Load(cellspec.Options{Files: g.Files, ProjectName: g.Project, WorkDir: wd, Env: f.Env})
	if p != nil {
		printWarnings(f, wd, p.Warnings)
	}
	if errors.Is(err, cellspec.ErrNoSpec) {
		return nil, usageError{err}
	}
	return p, err
}

func printWarnings(f *Factory, wd string, ws []cellspec.Warning) {
	p := f.IO.Palette(f.IO.ColorErr())
	for _, w := range ws {
		w.Pos.File = displayPath(wd, w.Pos.File)
		fmt.Fprintf(f.IO.ErrOut, "%s %s\n", p.Yellow("warning:"), w.String())
	}
}
