package cli

import (
	"github.com/spf13/cobra"

	"github.com/orchestro/orchestro/runtime/health"
)

// newProbeCmd is the hidden command a service container's HEALTHCHECK
// runs from the orchestro binary copied into its image:
//
//	orchestro probe http PORT PATH [TIMEOUT]
//	orchestro probe tcp PORT [TIMEOUT]
//
// It exits 0 when the service answers and 1, after one line on stderr,
// when it does not; it needs no engine and no spec.
func newProbeCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:                "probe",
		Short:              "Check a service from inside its container (a HEALTHCHECK)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := health.ProbeMain(args, f.IO.ErrOut); code != ExitOK {
				return exitStatus{code}
			}
			return nil
		},
	}
}
