package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// ConfigOptions are the inputs of `config`.
type ConfigOptions struct {
	IO     *IOStreams
	JSON   bool
	global *globalOptions
	f      *Factory
}

func newConfigCmd(f *Factory, g *globalOptions, runF func(*ConfigOptions) error) *cobra.Command {
	opts := &ConfigOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the normalized project: defaults filled, paths absolute",
		Long: `Print the normalized project: every default filled in, every path
absolute, cells sorted by name. The --json shape is stable and documented in
the README.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runConfig(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON instead of YAML")
	return cmd
}

func runConfig(opts *ConfigOptions) error {
	p, err := loadProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if opts.JSON {
		_, err = fmt.Fprintf(opts.IO.Out, "%s\n", data)
		return err
	}
	// YAML is rendered from the JSON form so both show the same names.
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	enc := yaml.NewEncoder(opts.IO.Out)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return enc.Close()
}
