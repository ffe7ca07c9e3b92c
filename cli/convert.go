package cli

import (
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/cellspec"
)

// ConvertOptions are the inputs of `convert`.
type ConvertOptions struct {
	IO   *IOStreams
	File string
	f    *Factory
}

func newConvertCmd(f *Factory, runF func(*ConvertOptions) error) *cobra.Command {
	opts := &ConvertOptions{IO: f.IO, f: f}
	return &cobra.Command{
		Use:   "convert FILE",
		Short: "Print a compose file as an orchestro cell file",
		Long: `Print a compose file as an orchestro cell file. Every compose key that
orchestro does not honour is reported on stderr as a warning.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("convert takes exactly one compose file, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runConvert(opts)
		},
	}
}

func runConvert(opts *ConvertOptions) error {
	wd, err := opts.f.Getwd()
	if err != nil {
		return err
	}
	path := opts.File
	if !filepath.IsAbs(path) {
		path = filepath.Join(wd, path)
	}
	out, warnings, err := cellspec.ConvertCompose(path, opts.f.Env)
	printWarnings(opts.f, wd, warnings)
	if err != nil {
		return err
	}
	_, err = opts.IO.Out.Write(out)
	return err
}
