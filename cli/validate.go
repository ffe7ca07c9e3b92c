package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// ValidateOptions are the inputs of `validate`.
type ValidateOptions struct {
	IO     *IOStreams
	global *globalOptions
	f      *Factory
}

func newValidateCmd(f *Factory, g *globalOptions, runF func(*ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{IO: f.IO, global: g, f: f}
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the project's cell files and report every problem",
		Long: `Check the project's cell files and report every problem with its
file:line:column. Nothing is started. Exit code 2 means the spec is invalid.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runValidate(opts)
		},
	}
}

func runValidate(opts *ValidateOptions) error {
	p, err := loadProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	services := 0
	for _, c := range p.Cells {
		services += len(c.Services)
	}
	pal := opts.IO.Palette(opts.IO.ColorErr())
	fmt.Fprintf(opts.IO.ErrOut, "%s project %s: %d %s, %d %s\n", pal.Green("✔"), p.Name,
		len(p.Cells), plural(len(p.Cells), "cell", "cells"), services, plural(services, "service", "services"))
	return nil
}

// noArgs refuses positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args[0])
	}
	return nil
}
