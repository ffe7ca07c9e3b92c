package cli

import (
	"cmp"
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/orchestro/orchestro/cellspec"
)

// printUpSummary tells, on stderr, where each cell answers. The URL comes
// from the running gateway when it can say, else from the spec's port on
// the loopback address gateways publish on by default.
func printUpSummary(ctx context.Context, ios *IOStreams, be Backend, p *cellspec.Project, attached bool) {
	urls := map[string]string{}
	if st, err := be.Status(ctx, p.Name); err == nil && st != nil {
		for _, c := range st.Cells {
			urls[c.Cell] = c.URL
		}
	}
	w := ios.ErrOut
	pal := ios.Palette(ios.ColorErr())
	fmt.Fprintf(w, "%s project %s is up\n", pal.Green("✔"), p.Name)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range p.Cells {
		url := cmp.Or(urls[c.Name], fmt.Sprintf("http://127.0.0.1:%d", c.Gateway.Port))
		fmt.Fprintf(tw, "  %s\t%s\n", c.Name, url)
	}
	_ = tw.Flush()
	if attached {
		fmt.Fprintln(w, "Attaching to the logs; press Ctrl-C to stop the project.")
	}
}
