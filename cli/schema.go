package cli

import (
	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/cellspec"
)

func newSchemaCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the cell file",
		Long: `Print the JSON Schema (draft 2020-12) of the cell file, for editor
completion. With yaml-language-server, put this line at the top of a cell file:

  # yaml-language-server: $schema=./orchestro.schema.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := f.IO.Out.Write(cellspec.Schema())
			return err
		},
	}
}
