package tui

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/orchestro/orchestro/runtime/api"
)

const (
	// executionsRefresh is how often the flows pane asks for the latest
	// failed executions of its cell: a journal read on the gateway, which
	// failures do not call for every second.
	executionsRefresh = 5 * time.Second
	// executionsShown is how many failed executions the pane lists.
	executionsShown = 5
)

// executionsMsg carries the latest failed executions of cell, asked for
// at the clock time at.
type executionsMsg struct {
	cell string
	at   time.Time
	list []api.ExecutionSummary
	err  error
}

// flowsPane lists the flows of the selected service's cell with the
// figures its gateway reports and, under them, the cell's latest failed
// executions; enter on one opens its timeline. It takes no room until
// some cell of the project has reported a flow; from then on it stays, so
// a cell whose gateway goes away does not make the screen jump.
//
// One cursor runs over the flows and then the executions. The column
// header of the flows stays on top; the rest (the flows, the executions'
// column header and the executions) scrolls as one list of lines.
type flowsPane struct {
	d *deps
	// seen holds the cells that have reported flows.
	seen map[string]bool

	row   serviceRow // the selected service, whose cell is shown
	ok    bool       // a row is selected
	flows []api.FlowStatus

	// execs are the latest failed executions of execCell, asked for at
	// execAt; execErr is why the last poll failed. fetching is set while
	// a poll is on its way.
	execs    []api.ExecutionSummary
	execCell string
	execAt   time.Time
	execErr  error
	fetching bool

	listCursor
}

func newFlowsPane(d *deps) flowsPane {
	return flowsPane{d: d, seen: map[string]bool{}}
}

// set shows the flows snap reports for r's cell, keeping the selection on
// the same flow or execution while the cell stays the same.
func (p *flowsPane) set(snap *api.ProjectStatus, r serviceRow, ok bool) {
	same := ok && p.ok && r.cell == p.row.cell
	selFlow, selExec := "", ""
	if same {
		selFlow, selExec = p.selectedNames()
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
	if !same || len(p.flows) == 0 {
		// Another cell's executions, or a cell that cannot be asked.
		p.execs, p.execCell, p.execErr = nil, "", nil
	}
	if !same {
		p.sel, p.offset = 0, 0
	}
	p.reselect(selFlow, selExec)
}

// selectedNames names the selection: a flow, or the id of an execution.
func (p *flowsPane) selectedNames() (flow, exec string) {
	if f, ok := p.selected(); ok {
		return f.Flow, ""
	}
	if e, ok := p.selectedExecution(); ok {
		return "", e.ID
	}
	return "", ""
}

// reselect puts the selection back on the flow or execution named, where
// it now is, else keeps it in range.
func (p *flowsPane) reselect(flow, exec string) {
	p.sel = min(p.sel, max(0, p.items()-1))
	for i, f := range p.flows {
		if flow != "" && f.Flow == flow {
			p.sel = i
		}
	}
	for i, e := range p.execs {
		if exec != "" && e.ID == exec {
			p.sel = len(p.flows) + i
		}
	}
	p.scroll()
}

// poll asks for the latest failed executions of the cell shown when they
// are due: at once for a cell newly shown, then every executionsRefresh
// of the clock now, one request at a time. A cell whose gateway is not
// running, or that has no flows, is not asked.
func (p *flowsPane) poll(now time.Time) tea.Cmd {
	if !p.ok || p.row.down() || len(p.flows) == 0 || p.fetching {
		return nil
	}
	cell := p.row.cell
	if cell == p.execCell && now.Sub(p.execAt) < executionsRefresh {
		return nil
	}
	p.fetching = true
	src := p.d.src
	return p.d.do(statusTimeout, func(ctx context.Context) tea.Msg {
		list, err := src.Executions(ctx, cell, api.ExecutionFilter{Failed: true, Limit: executionsShown})
		return executionsMsg{cell: cell, at: now, list: list, err: err}
	})
}

// receive takes the answer of a poll. One for a cell no longer shown is
// dropped: the next poll asks for the cell shown now. A failed poll keeps
// the executions shown and says why in the title.
func (p *flowsPane) receive(msg executionsMsg) {
	p.fetching = false
	if !p.ok || msg.cell != p.row.cell || len(p.flows) == 0 {
		return
	}
	selFlow, selExec := p.selectedNames()
	p.execCell, p.execAt, p.execErr = msg.cell, msg.at, msg.err
	if msg.err == nil {
		p.execs = msg.list
		if len(p.execs) > executionsShown {
			p.execs = p.execs[:executionsShown]
		}
	}
	p.reselect(selFlow, selExec)
}

// items is how many rows the cursor runs over.
func (p *flowsPane) items() int { return len(p.flows) + len(p.execs) }

// lines is how many lines scroll below the flows' column header: the
// flows, then the executions' column header and the executions.
func (p *flowsPane) lines() int {
	if len(p.execs) == 0 {
		return len(p.flows)
	}
	return len(p.flows) + 1 + len(p.execs)
}

// lineOf is the line item i is drawn on.
func (p *flowsPane) lineOf(i int) int {
	if i < len(p.flows) {
		return i
	}
	return i + 1
}

// wanted is how many rows the pane would like: none while the project has
// no flows, else one per line, or one for the line saying why there are
// none.
func (p *flowsPane) wanted() int {
	if len(p.seen) == 0 {
		return 0
	}
	return max(1, p.lines())
}

func (p *flowsPane) selected() (api.FlowStatus, bool) {
	if p.sel < 0 || p.sel >= len(p.flows) {
		return api.FlowStatus{}, false
	}
	return p.flows[p.sel], true
}

// selectedExecution is the execution under the cursor, if it is on one.
func (p *flowsPane) selectedExecution() (api.ExecutionSummary, bool) {
	i := p.sel - len(p.flows)
	if i < 0 || i >= len(p.execs) {
		return api.ExecutionSummary{}, false
	}
	return p.execs[i], true
}

func (p *flowsPane) setSize(width, height int) {
	p.width, p.height = width, height
	p.scroll()
}

// scroll keeps the selected line in view, with the executions' column
// header when the first execution is selected.
func (p *flowsPane) scroll() {
	n, line := p.lines(), p.lineOf(p.sel)
	if p.sel == len(p.flows) && len(p.execs) > 0 {
		p.offset = scrollTo(p.offset, line-1, p.height, n)
	}
	p.offset = scrollTo(p.offset, line, p.height, n)
}

func (p *flowsPane) move(delta int) {
	if n := p.items(); n > 0 {
		p.sel = max(0, min(n-1, p.sel+delta))
		p.scroll()
	}
}

func (p *flowsPane) navigate(k keyMap, msg tea.KeyPressMsg) {
	if delta, ok := p.step(k, msg, p.items()); ok {
		p.move(delta)
	}
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

func executionsColumns() []column {
	return []column{
		{title: "FAILED EXECUTION", drop: 0},
		{title: "FLOW", flex: true, min: 6, max: 24, drop: 1},
		{title: "STATE", max: 21, drop: 2},
		{title: "FAILED STEP", flex: true, min: 6, max: 20, drop: 4},
		{title: "AGE", right: true, drop: 3},
		{title: "DURATION", right: true, drop: 5},
	}
}

func (p *flowsPane) executionRows(now time.Time) [][]cell {
	rows := make([][]cell, len(p.execs))
	for i, e := range p.execs {
		dur := none
		if e.DurationMs > 0 {
			dur = fmtMillis(e.DurationMs)
		}
		rows[i] = []cell{
			plain(shortID(e.ID)), plain(e.Flow), {orNone(e.State), executionTone(e.State)},
			plain(orNone(e.FailedStep)), plain(fmtAge(now, e.Started)), plain(dur),
		}
	}
	return rows
}

// executionTone is the tone of an execution's state, as `flows runs`
// colours it: a failure undone is a warning, one that stands is bad.
func executionTone(state string) tone {
	switch state {
	case api.ExecutionSucceeded:
		return toneOK
	case api.ExecutionCompensated:
		return toneWarn
	case api.ExecutionFailed, api.ExecutionPartiallyCompensated:
		return toneBad
	}
	return toneNone
}

// shortID is the first 12 characters of an execution id, as `flows runs`
// shows it.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// fmtSuccess formats a success fraction as a percentage, rounded down so
// a failure is never rounded away into 100%.
func fmtSuccess(v float64) string {
	// The epsilon keeps 0.999 from losing a tenth to binary floating point.
	return fmtNumber(math.Floor(v*1000+1e-6)/10) + "%"
}

func (p *flowsPane) view(st styles, focused bool, now time.Time) []string {
	title, info, right := "Flows", "", ""
	if p.ok {
		title += " · " + p.row.cell
	}
	if len(p.flows) > 0 {
		info = st.dim.Render(strconv.Itoa(len(p.flows)))
		if r := rangeInfo(p.offset, p.height, p.lines()); r != "" {
			info = st.dim.Render(r)
		}
	}
	if p.execErr != nil {
		right = st.errText.Render("executions: " + flatten(p.execErr.Error()))
	}
	lines := []string{paneTitle(st, title, info, right, p.width, focused)}
	switch {
	case !p.ok:
		return append(lines, "", "  "+st.dim.Render("no service selected"))
	case p.row.down():
		msg := "cell " + p.row.cell + ": gateway " + orNone(p.row.gateway)
		return append(lines, "", "  "+st.health(p.row.gateway).Render(msg))
	case len(p.flows) == 0:
		return append(lines, "", "  "+st.dim.Render("no flows in cell "+p.row.cell))
	}
	sel := -1
	if p.sel < len(p.flows) {
		sel = p.sel
	}
	flows := renderTable(st, flowsColumns(), p.tableRows(), p.width, len(p.flows), 0, sel, focused)
	body := flows[1:]
	if len(p.execs) > 0 {
		sel = p.sel - len(p.flows)
		body = append(body, renderTable(st, executionsColumns(), p.executionRows(now), p.width, len(p.execs), 0, sel, focused)...)
	}
	end := min(len(body), p.offset+p.height)
	if len(p.execs) > 0 && end-1 == len(p.flows) {
		// The executions' column header would end the pane with none of
		// them under it: say how many there are instead.
		n := len(p.execs)
		body[end-1] = "  " + st.bad.Render(fmt.Sprintf("%d failed %s", n, plural(n, "execution", "executions"))) + st.dim.Render(" below ↓")
	}
	return append(append(lines, flows[0]), body[min(p.offset, end):end]...)
}
