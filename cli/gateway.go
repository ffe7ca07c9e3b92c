package cli

import (
	"github.com/spf13/cobra"
)

// newGatewayCmd is the hidden command a gateway container runs. Its
// configuration comes from the environment the runtime set on the
// container, not from flags.
func newGatewayCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:                "gateway",
		Short:              "Run a cell gateway (inside its container)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.Gateway(cmd.Context(), args)
		},
	}
}
