package cli

import "github.com/spf13/cobra"

// runtimeCommands returns the commands that need the Docker engine.
func runtimeCommands(f *Factory, g *globalOptions) []*cobra.Command {
	return []*cobra.Command{
		newUpCmd(f, g, nil),
		newDownCmd(f, g, nil),
		newPsCmd(f, g, nil),
		newFlowsCmd(f, g, nil),
		newScaleCmd(f, g, nil),
		newRestartCmd(f, g, nil),
		newLogsCmd(f, g, nil),
		newExecCmd(f, g, nil),
		newEventsCmd(f, g, nil),
		newDashCmd(f, g, nil),
		newWatchCmd(f, g, nil),
	}
}
