package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// flowsDocument is what `flows --json` prints: documented in the README
// and only ever extended.
type flowsDocument struct {
	Project string    `json:"project"`
	Flows   []flowRow `json:"flows"`
}

// flowRow is one flow of the project: what its cell's gateway reports, or,
// when no gateway of the cell is running, what the spec declares, with
// every figure zero.
type flowRow struct {
	Cell string `json:"cell"`
	api.FlowStatus
	// Gateway is the state of the cell's gateway: "running" (the figures
	// are its report), "starting" or "down" (the flow is the spec's and
	// nothing is measured).
	Gateway string `json:"gateway"`
}

// live reports whether the row's figures were measured by a gateway.
func (r flowRow) live() bool { return r.Gateway == gatewayRunning }

// collectFlows lists the flows of the project, or of one cell, sorted by
// cell and then in the order the cell file declares them. A running
// gateway's report is the truth about its cell, even when the spec on disk
// has moved on; a cell without a running gateway shows its spec's flows,
// so the list is useful before `up`. spec may be nil.
func collectFlows(st *api.ProjectStatus, spec *cellspec.Project, cell string) []flowRow {
	status := map[string]api.CellStatus{}
	var names []string
	for _, c := range st.Cells {
		status[c.Cell] = c
		names = append(names, c.Cell)
	}
	if spec != nil {
		for _, c := range spec.Cells {
			if _, ok := status[c.Name]; !ok {
				names = append(names, c.Name)
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)

	rows := []flowRow{}
	for _, name := range names {
		if cell != "" && name != cell {
			continue
		}
		c, reported := status[name]
		if reported && c.Gateway == gatewayRunning {
			for _, f := range c.Flows {
				rows = append(rows, flowRow{Cell: name, FlowStatus: f, Gateway: gatewayRunning})
			}
			continue
		}
		if spec == nil || spec.Cell(name) == nil {
			continue
		}
		gateway := gatewayDown
		if reported {
			gateway = cmp.Or(c.Gateway, gatewayDown)
		}
		for _, f := range spec.Cell(name).Flows {
			rows = append(rows, flowRow{
				Cell:       name,
				FlowStatus: api.FlowStatus{Flow: f.Name, Route: f.Route.String()},
				Gateway:    gateway,
			})
		}
	}
	return rows
}

// writeFlowsJSON prints the flows as indented JSON.
func writeFlowsJSON(w io.Writer, doc flowsDocument) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Routes such as "GET /a?b&c" stay readable.
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// writeFlows prints the `flows` table: one row per flow.
func writeFlows(w io.Writer, rows []flowRow) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CELL\tFLOW\tROUTE\tINFLIGHT\tRATE\tSUCCESS\tCOMPENSATED\tP50\tP99")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Cell, r.Flow, dash(r.Route),
			r.inflight(), r.rate(), r.success(), r.compensated(), r.latency(r.P50Ms), r.latency(r.P99Ms))
	}
	return tw.Flush()
}

// writePsFlows prints the compact flows table `ps` shows below the
// services: the figures that say whether a flow is healthy right now.
func writePsFlows(w io.Writer, rows []flowRow) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CELL\tFLOW\tROUTE\tINFLIGHT\tRATE\tSUCCESS\tP99")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Cell, r.Flow, dash(r.Route),
			r.inflight(), r.rate(), r.success(), r.latency(r.P99Ms))
	}
	return tw.Flush()
}

func (r flowRow) inflight() string {
	if !r.live() {
		return "-"
	}
	return strconv.FormatInt(r.InFlight, 10)
}

// rate is executions per second over the last 10 seconds.
func (r flowRow) rate() string {
	if !r.live() {
		return "-"
	}
	return strconv.FormatFloat(r.Rate, 'f', 1, 64)
}

func (r flowRow) compensated() string {
	if !r.live() {
		return "-"
	}
	return strconv.FormatUint(r.Compensated, 10)
}

// windowed reports whether the 10-second figures mean anything: the
// gateway reports 0 for them when no execution ended in the window.
func (r flowRow) windowed() bool { return r.live() && r.Rate > 0 }

// success is the percentage of executions that succeeded in the window.
// It is rounded down, so a flow that failed even once in thousands never
// shows 100%.
func (r flowRow) success() string {
	if !r.windowed() {
		return "-"
	}
	// The epsilon keeps 0.999 (999.0000000000001 or 998.9999999999999
	// once scaled) from losing a tenth to binary floating point.
	pct := math.Floor(r.SuccessRate*1000+1e-6) / 10
	return strings.TrimSuffix(strconv.FormatFloat(pct, 'f', 1, 64), ".0") + "%"
}

// latency shows a duration of the window: "4.2ms", "180ms", and from a
// second on in seconds, "13.1s".
func (r flowRow) latency(ms float64) string {
	if !r.windowed() {
		return "-"
	}
	if ms >= 1000 {
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
	}
	return shortFloat(ms) + "ms"
}
