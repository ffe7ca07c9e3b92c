package tui

import (
	"math"
	"strconv"

	tea "charm.land/bubbletea/v2"

	"github.com/orchestro/orchestro/runtime/api"
)

// flowsPane lists the flows of the selected service's cell with the
// figures its gateway reports. It takes no room until some cell of the
// project has reported a flow; from then on it stays, so a cell whose
// gateway goes away does not make the screen jump.
type flowsPane struct {
	// seen holds the cells that have reported flows.
	seen map[string]bool

	row   serviceRow // the selected service, whose cell is shown
	ok    bool       // a row is selected
	flows []api.FlowStatus

	listCursor
}

func newFlowsPane() flowsPane {
	return flowsPane{seen: map[string]bool{}}
}

// set shows the flows snap reports for r's cell, keeping the selection on
// the same flow while the cell stays the same.
func (p *flowsPane) set(snap *api.ProjectStatus, r serviceRow, ok bool) {
	var selName string
	same := ok && p.ok && r.cell == p.row.cell
	if f, has := p.selected(); has && same {
		selName = f.Flow
	}
	p.row, p.ok, p.flows = r, ok, nil
	if snap != nil {
		for _, c := range snap.Cells {
			if len(c.Flows) > 0 {
				p.seen[c.Cell] = true
			}
			if ok && c.Cell == r.cell && c.Gateway == "running" {
				p.flows = c.Flows
			}
		}
	}
	if !same {
		p.sel, p.offset = 0, 0
	}
	p.sel = min(p.sel, max(0, len(p.flows)-1))
	for i, f := range p.flows {
		if f.Flow == selName {
			p.sel = i
		}
	}
	p.clamp(len(p.flows))
}

// wanted is how many rows the pane would like: none while the project has
// no flows, else one per flow, or one for the line saying why there are
// none.
func (p *flowsPane) wanted() int {
	if len(p.seen) == 0 {
		return 0
	}
	return max(1, len(p.flows))
}

func (p *flowsPane) selected() (api.FlowStatus, bool) {
	if p.sel < 0 || p.sel >= len(p.flows) {
		return api.FlowStatus{}, false
	}
	return p.flows[p.sel], true
}

func (p *flowsPane) setSize(width, height int) {
	p.listCursor.setSize(width, height, len(p.flows))
}

func (p *flowsPane) move(delta int) { p.listCursor.move(delta, len(p.flows)) }

func (p *flowsPane) navigate(k keyMap, msg tea.KeyPressMsg) {
	p.listCursor.navigate(k, msg, len(p.flows))
}

func flowsColumns() []column {
	return []column{
		{title: "FLOW", flex: true, min: 6, max: 24, drop: 0},
		{title: "ROUTE", flex: true, min: 8, max: 36, drop: 1},
		{title: "INFL", right: true, drop: 3},
		{title: "RATE", right: true, drop: 2},
		{title: "SUCCESS", right: true, drop: 4},
		{title: "COMPENSATED", right: true, drop: 6},
		{title: "P50", right: true, drop: 7},
		{title: "P99", right: true, drop: 5},
	}
}

func (p *flowsPane) tableRows() [][]cell {
	rows := make([][]cell, len(p.flows))
	for i, f := range p.flows {
		// The gateway reports 0 for the 10-second figures when no
		// execution ended in the window: that is no answer, not 0%.
		success, p50, p99 := plain(none), none, none
		if f.Rate > 0 {
			success = plain(fmtSuccess(f.SuccessRate))
			if f.SuccessRate < 0.99 {
				success.tone = toneBad
			}
			p50, p99 = fmtMillis(f.P50Ms), fmtMillis(f.P99Ms)
		}
		comp := plain(strconv.FormatUint(f.Compensated, 10))
		if f.Compensated > 0 {
			comp.tone = toneWarn
		}
		rows[i] = []cell{
			plain(f.Flow), {orNone(f.Route), toneDim},
			plain(strconv.FormatInt(f.InFlight, 10)), plain(fmtRate(f.Rate)),
			success, comp, plain(p50), plain(p99),
		}
	}
	return rows
}

// fmtSuccess formats a success fraction as a percentage, rounded down so
// a failure is never rounded away into 100%.
func fmtSuccess(v float64) string {
	// The epsilon keeps 0.999 from losing a tenth to binary floating point.
	return fmtNumber(math.Floor(v*1000+1e-6)/10) + "%"
}

func (p *flowsPane) view(st styles, focused bool) []string {
	title, info := "Flows", ""
	if p.ok {
		title += " · " + p.row.cell
	}
	if len(p.flows) > 0 {
		info = st.dim.Render(strconv.Itoa(len(p.flows)))
		if r := rangeInfo(p.offset, p.height, len(p.flows)); r != "" {
			info = st.dim.Render(r)
		}
	}
	lines := []string{paneTitle(st, title, info, "", p.width, focused)}
	switch {
	case !p.ok:
		return append(lines, "", "  "+st.dim.Render("no service selected"))
	case p.row.down():
		msg := "cell " + p.row.cell + ": gateway " + orNone(p.row.gateway)
		return append(lines, "", "  "+st.health(p.row.gateway).Render(msg))
	case len(p.flows) == 0:
		return append(lines, "", "  "+st.dim.Render("no flows in cell "+p.row.cell))
	}
	return append(lines, renderTable(st, flowsColumns(), p.tableRows(), p.width, p.height, p.offset, p.sel, focused)...)
}
