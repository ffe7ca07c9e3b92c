package cli

import (
	"bytes"
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
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	enc := yaml.NewEncoder(opts.IO.Out)
	enc.SetIndent(2)
	if err := enc.Encode(plainNumbers(generic)); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return enc.Close()
}

// plainNumbers replaces the json.Number values of v with an int64 when
// the number is an integer, else a float64: decoded as float64 from the
// start, a byte count such as a memory limit or a flow's max_body would
// print as 1.048576e+06.
func plainNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainNumbers(e)
		}
	}
	return v
}
