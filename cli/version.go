package cli

import (
	"encoding/json"
	"fmt"
	goruntime "runtime"

	"github.com/spf13/cobra"
)

func newVersionCmd(f *Factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of orchestro",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := f.Build
			v := struct {
				Version   string `json:"version"`
				Commit    string `json:"commit"`
				Date      string `json:"date"`
				GoVersion string `json:"go_version"`
				Platform  string `json:"platform"`
			}{orDefault(b.Version, "dev"), orDefault(b.Commit, "none"), orDefault(b.Date, "unknown"), goruntime.Version(), goruntime.GOOS + "/" + goruntime.GOARCH}
			if asJSON {
				data, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(f.IO.Out, "%s\n", data)
				return err
			}
			_, err := fmt.Fprintf(f.IO.Out, "orchestro %s (commit %s, built %s, %s, %s)\n", v.Version, v.Commit, v.Date, v.GoVersion, v.Platform)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
