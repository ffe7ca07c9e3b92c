package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// Gateway states of api.CellStatus.
const (
	gatewayRunning = "running"
	gatewayDown    = "down"
)

// healthCrashloop is the health of a service whose replicas keep failing.
const healthCrashloop = "crashloop"

// normalizeStatus returns a copy of st with cells, services and replicas
// sorted and every list non-nil, so text and JSON output are stable and an
// empty list prints as [] rather than null. Flows keep the order of their
// cell file, which is the order users wrote them in; an empty list of them
// is left out of the JSON.
func normalizeStatus(st *api.ProjectStatus, project string) *api.ProjectStatus {
	out := &api.ProjectStatus{Project: project, Cells: []api.CellStatus{}}
	if st == nil {
		return out
	}
	out.Ready, out.Target = st.Ready, st.Target
	if st.Project != "" {
		out.Project = st.Project
	}
	for _, c := range st.Cells {
		services := make([]api.ServiceStatus, 0, len(c.Services))
		for _, s := range c.Services {
			s.Replicas = slices.Clone(s.Replicas)
			if s.Replicas == nil {
				s.Replicas = []api.ReplicaStatus{}
			}
			slices.SortStableFunc(s.Replicas, func(a, b api.ReplicaStatus) int {
				return cmp.Or(cmp.Compare(a.Replica, b.Replica), cmp.Compare(a.Name, b.Name))
			})
			services = append(services, s)
		}
		slices.SortStableFunc(services, func(a, b api.ServiceStatus) int { return cmp.Compare(a.Service, b.Service) })
		c.Services = services
		c.Flows = slices.Clone(c.Flows)
		out.Cells = append(out.Cells, c)
	}
	slices.SortStableFunc(out.Cells, func(a, b api.CellStatus) int { return cmp.Compare(a.Cell, b.Cell) })
	return out
}

// writeStatusJSON prints the status as indented JSON: the api.ProjectStatus
// shape, documented in the README and only ever extended.
func writeStatusJSON(w io.Writer, st *api.ProjectStatus) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Messages such as "inflight > target" stay readable.
	enc.SetEscapeHTML(false)
	return enc.Encode(st)
}

// statusTable renders `ps` tables. Its column of health words is coloured
// on a terminal; see healthCell for how alignment survives the colour codes.
type statusTable struct {
	pal  Palette
	spec *cellspec.Project // nil when the spec is missing or invalid
}

// writeServices prints one row per service.
func (t statusTable) writeServices(w io.Writer, st *api.ProjectStatus) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintf(tw, "CELL\tSERVICE\tIMAGE\tREADY\t%s\tAUTOSCALE\tURL\n", t.healthCell("HEALTH", ""))
	for _, c := range st.Cells {
		if len(c.Services) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\t-\t%s\n", c.Cell, t.healthCell(gatewayHealth(c), gatewayHealth(c)), dash(c.URL))
			continue
		}
		for _, s := range c.Services {
			// What a down gateway's cell shows is the engine's view, with
			// no health: say why rather than "unknown".
			health := s.Health
			if c.Gateway == gatewayDown {
				health = "gateway down"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", c.Cell, s.Service, dash(s.Image), s.Ready, s.Desired,
				t.healthCell(dash(serviceHealth(s, health)), health), autoscaleSummary(s.Autoscale), dash(t.serviceURL(c, s.Service)))
		}
	}
	return tw.Flush()
}

// writeReplicas prints one row per replica.
func (t statusTable) writeReplicas(w io.Writer, st *api.ProjectStatus) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	// On a swarm, a replica is a task on some node.
	node, nodeHeader := func(api.ReplicaStatus) string { return "" }, ""
	if st.Target == api.TargetSwarm {
		node = func(r api.ReplicaStatus) string { return "\t" + dash(r.Node) }
		nodeHeader = "\tNODE"
	}
	fmt.Fprintf(tw, "CELL\tSERVICE\tREPLICA\tSTATE\t%s\tADDRESS\tINFLIGHT\tREQ/S%s\n", t.healthCell("HEALTH", ""), nodeHeader)
	for _, c := range st.Cells {
		if len(c.Services) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\t-\t-\t-\n", c.Cell, t.healthCell(gatewayHealth(c), gatewayHealth(c)))
			continue
		}
		for _, s := range c.Services {
			if len(s.Replicas) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t%s\t-\t-\t-\n", c.Cell, s.Service, t.healthCell(dash(serviceHealth(s, s.Health)), s.Health))
				continue
			}
			for _, r := range s.Replicas {
				health := r.Health
				if c.Gateway == gatewayDown {
					health = "gateway down"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s%s\n", c.Cell, s.Service, replicaNumber(r), dash(r.State),
					t.healthCell(dash(health), health), dash(r.Address), r.InFlight, strconv.FormatFloat(r.RPS, 'f', 1, 64), node(r))
			}
		}
	}
	return tw.Flush()
}

// serviceHealth is the health column of a service: health, and for a
// crash loop how the latest failure went, "crashloop(exit=1)" or
// "crashloop(start-failed)", with no blank, which would shift the row for
// scripts that split on blanks. The whole reason is crashloopNote's.
func serviceHealth(s api.ServiceStatus, health string) string {
	if health != healthCrashloop {
		return health
	}
	switch {
	case s.LastError != "":
		return health + "(start-failed)"
	case s.LastExitCode != nil:
		return fmt.Sprintf("%s(exit=%d)", health, *s.LastExitCode)
	}
	return health
}

// crashloopNote says why a service of cell is in a crash loop: its recent
// failures, when the next try is, the latest failure in full, and where
// the output of its exited replicas is.
func crashloopNote(cell string, s api.ServiceStatus, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "crashloop, %d recent failures", s.Failures)
	if !s.NextTry.IsZero() && s.NextTry.After(now) {
		fmt.Fprintf(&b, ", next try in %s", s.NextTry.Sub(now).Round(time.Second))
	}
	switch {
	case s.LastError != "":
		fmt.Fprintf(&b, "; last start failed: %s", s.LastError)
	case s.LastExitCode != nil:
		fmt.Fprintf(&b, "; last exit code %d", *s.LastExitCode)
	}
	if len(s.Exited) > 0 {
		fmt.Fprintf(&b, "; see orchestro logs %s/%s", cell, s.Service)
	}
	return b.String()
}

// replicaNumber shows a replica's number, or "-" when it is unknown (the
// engine's view of a cell whose gateway is down carries no numbers).
func replicaNumber(r api.ReplicaStatus) string {
	if r.Replica <= 0 {
		return "-"
	}
	return strconv.Itoa(r.Replica)
}

// gatewayHealth is the health shown for a cell whose gateway reported no
// services: "gateway down" or "gateway starting".
func gatewayHealth(c api.CellStatus) string {
	return "gateway " + cmp.Or(c.Gateway, gatewayDown)
}

// healthCell colours a health word. tabwriter counts the bytes of colour
// codes as width, so every cell of the column, the header included, gets
// codes of the same length (a two-digit SGR code, 39 being the default
// colour): the column then lines up as if it had no colour at all.
func (t statusTable) healthCell(text, health string) string {
	if !t.pal.on {
		return text
	}
	code := "39"
	switch health {
	case "healthy":
		code = "32"
	case "starting", "draining", "gateway starting":
		code = "33"
	case "unhealthy", "crashloop", "ejected", "exited", "gateway down":
		code = "31"
	case "stopped", "none":
		code = "90"
	}
	return t.pal.wrap(code, text)
}

// serviceURL is where a service answers on the host: the cell's gateway URL
// plus the path of the service's first route when the spec is known, else
// the gateway URL alone.
func (t statusTable) serviceURL(c api.CellStatus, service string) string {
	if c.URL == "" || t.spec == nil {
		return c.URL
	}
	cell := t.spec.Cell(c.Cell)
	if cell == nil {
		return c.URL
	}
	for _, r := range cell.Gateway.Routes {
		if r.Service == service {
			return strings.TrimSuffix(c.URL, "/") + r.Path
		}
	}
	return c.URL
}

// dash stands in for an empty cell, which would otherwise shift a
// whitespace-separated row for scripts that split on blanks.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// autoscaleSummary shows an autoscaled service's bounds and the metric
// nearest to (or furthest past) its target, per replica: "1-4 inflight
// 3.3/2". The full picture is in ps --json and the dashboard.
func autoscaleSummary(a *api.AutoscaleStatus) string {
	if a == nil {
		return "-"
	}
	out := fmt.Sprintf("%d-%d", a.Min, a.Max)
	best, ratio := -1, -1.0
	for i, tg := range a.Targets {
		if tg.Target > 0 && tg.Value/tg.Target > ratio {
			best, ratio = i, tg.Value/tg.Target
		}
	}
	if best >= 0 {
		tg := a.Targets[best]
		out += fmt.Sprintf(" %s %s/%s", tg.Metric, shortFloat(tg.Value), shortFloat(tg.Target))
	}
	return out
}

// shortFloat writes v with at most one decimal: "3.3", "10".
func shortFloat(v float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
}
