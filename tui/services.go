package tui

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/orchestro/orchestro/runtime/api"
)

const (
	// historySize is how many req/s samples each service keeps for its
	// sparkline.
	historySize = 120
	// pendingFor is how long an optimistic replica count is shown when the
	// snapshots disagree with it (the autoscaler may have moved on).
	pendingFor = 5 * time.Second
)

// serviceRow is one row of the services table: a service, or a cell that
// reports no services (its gateway is down or starting).
type serviceRow struct {
	cell    string
	gateway string
	cellErr string
	svc     *api.ServiceStatus
}

func (r serviceRow) key() string {
	if r.svc == nil {
		return r.cell
	}
	return r.cell + "/" + r.svc.Service
}

// name is cell/service, or the cell alone.
func (r serviceRow) name() string { return r.key() }

func (r serviceRow) down() bool { return r.gateway != "running" }

// pendingScale is a replica count asked for and not yet reported back.
type pendingScale struct {
	n     int
	asked time.Time
}

// servicesPane is the services table. It also owns what acts on a service:
// scaling and restarting, with their prompts.
type servicesPane struct {
	d *deps

	snap    *api.ProjectStatus
	known   map[string]api.CellStatus
	rows    []serviceRow
	history map[string][]float64
	pending map[string]pendingScale

	listCursor

	// ask is the prompt being answered, if any.
	ask *servicePrompt
}

// servicePrompt is a question about one service in the bottom bar.
type servicePrompt struct {
	restart bool // confirm a restart, else type a replica count
	row     serviceRow
	input   lineInput // the replica count
}

func newServicesPane(d *deps) servicesPane {
	return servicesPane{
		d:       d,
		known:   map[string]api.CellStatus{},
		history: map[string][]float64{},
		pending: map[string]pendingScale{},
	}
}

// setStatus takes a new snapshot, keeping the selection on the same
// service. A cell seen before and missing now is shown as down: its
// gateway went away, and it comes back when the gateway does.
func (p *servicesPane) setStatus(st *api.ProjectStatus, now time.Time) {
	snap := normalize(st)
	present := map[string]bool{}
	for _, c := range snap.Cells {
		present[c.Cell] = true
		p.known[c.Cell] = api.CellStatus{Cell: c.Cell, URL: c.URL}
	}
	for name, c := range p.known {
		if !present[name] {
			snap.Cells = append(snap.Cells, api.CellStatus{
				Cell: name, Gateway: "down", URL: c.URL, Error: "gateway not found",
			})
		}
	}
	slices.SortStableFunc(snap.Cells, func(a, b api.CellStatus) int { return cmp.Compare(a.Cell, b.Cell) })
	p.snap = snap

	var selKey string
	if r, ok := p.selected(); ok {
		selKey = r.key()
	}
	p.rows = p.rows[:0]
	for ci := range snap.Cells {
		c := &snap.Cells[ci]
		if len(c.Services) == 0 {
			p.rows = append(p.rows, serviceRow{cell: c.Cell, gateway: c.Gateway, cellErr: c.Error})
			continue
		}
		for si := range c.Services {
			p.rows = append(p.rows, serviceRow{cell: c.Cell, gateway: c.Gateway, cellErr: c.Error, svc: &c.Services[si]})
		}
	}
	p.sel = min(p.sel, max(0, len(p.rows)-1))
	for i, r := range p.rows {
		if r.key() == selKey {
			p.sel = i
		}
	}

	cells := map[string]bool{}
	for _, r := range p.rows {
		cells[r.cell] = true
		if r.svc == nil || r.down() {
			continue
		}
		k := r.key()
		h := append(p.history[k], r.svc.RPS)
		if len(h) > historySize {
			h = h[len(h)-historySize:]
		}
		p.history[k] = h
		if ps, ok := p.pending[k]; ok && (ps.n == r.svc.Desired || now.Sub(ps.asked) > pendingFor) {
			delete(p.pending, k)
		}
	}
	// A cell whose gateway blinks keeps its services' sparklines.
	for k := range p.history {
		if cell, _, _ := strings.Cut(k, "/"); !cells[cell] {
			delete(p.history, k)
		}
	}
	p.clamp(len(p.rows))
}

// normalize copies a snapshot with cells, services and replicas sorted, so
// rows do not jump between refreshes.
func normalize(st *api.ProjectStatus) *api.ProjectStatus {
	out := &api.ProjectStatus{}
	if st == nil {
		return out
	}
	out.Project = st.Project
	out.Cells = make([]api.CellStatus, len(st.Cells))
	for i, c := range st.Cells {
		c.Services = slices.Clone(c.Services)
		for j := range c.Services {
			s := &c.Services[j]
			s.Replicas = slices.Clone(s.Replicas)
			slices.SortStableFunc(s.Replicas, func(a, b api.ReplicaStatus) int {
				return cmp.Or(cmp.Compare(a.Replica, b.Replica), cmp.Compare(a.Name, b.Name))
			})
		}
		slices.SortStableFunc(c.Services, func(a, b api.ServiceStatus) int { return cmp.Compare(a.Service, b.Service) })
		out.Cells[i] = c
	}
	slices.SortStableFunc(out.Cells, func(a, b api.CellStatus) int { return cmp.Compare(a.Cell, b.Cell) })
	return out
}

func (p *servicesPane) selected() (serviceRow, bool) {
	if p.sel < 0 || p.sel >= len(p.rows) {
		return serviceRow{}, false
	}
	return p.rows[p.sel], true
}

func (p *servicesPane) setSize(width, height int) {
	p.listCursor.setSize(width, height, len(p.rows))
}

func (p *servicesPane) move(delta int) { p.listCursor.move(delta, len(p.rows)) }

// navigate handles the movement keys.
func (p *servicesPane) navigate(k keyMap, msg tea.KeyPressMsg) {
	p.listCursor.navigate(k, msg, len(p.rows))
}

// desired is the replica count to start from: the one asked for when it
// has not been reported back yet.
func (p *servicesPane) desired(r serviceRow) int {
	if ps, ok := p.pending[r.key()]; ok {
		return ps.n
	}
	return r.svc.Desired
}

// actionMsg reports the end of a scale or restart.
type actionMsg struct {
	text string
	err  error
	// key is the service scaled, whose optimistic count is dropped when
	// the call failed.
	key string
}

// actionable returns the selected service, or a reason why nothing can be
// done to it.
func (p *servicesPane) actionable() (serviceRow, error) {
	r, ok := p.selected()
	switch {
	case !ok:
		return r, fmt.Errorf("no service selected")
	case r.svc == nil:
		return r, fmt.Errorf("cell %s reports no services (gateway %s)", r.cell, orNone(r.gateway))
	case r.down():
		return r, fmt.Errorf("cannot change %s: the gateway of cell %s is %s", r.name(), r.cell, orNone(r.gateway))
	}
	return r, nil
}

// act handles the keys that act on the selected service: +, -, s, r.
func (p *servicesPane) act(k keyMap, msg tea.KeyPressMsg) tea.Cmd {
	r, err := p.actionable()
	if err != nil {
		return flashErr(err)
	}
	switch {
	case key.Matches(msg, k.ScaleUp):
		return p.scale(r, p.desired(r)+1)
	case key.Matches(msg, k.ScaleDown):
		if n := p.desired(r); n > 0 {
			return p.scale(r, n-1)
		}
		return flashErr(fmt.Errorf("%s already has no replica", r.name()))
	case key.Matches(msg, k.SetScale):
		p.ask = &servicePrompt{row: r, input: lineInput{digits: true, limit: 4}}
	case key.Matches(msg, k.Restart):
		p.ask = &servicePrompt{row: r, restart: true}
	}
	return nil
}

// scale asks for n replicas of r's service, showing n at once.
func (p *servicesPane) scale(r serviceRow, n int) tea.Cmd {
	k := r.key()
	p.pending[k] = pendingScale{n: n, asked: p.d.now()}
	cell, service := r.cell, r.svc.Service
	src := p.d.src
	return p.d.do(actionTimeout, func(ctx context.Context) tea.Msg {
		if err := src.Scale(ctx, cell, service, n); err != nil {
			return actionMsg{err: fmt.Errorf("scale %s/%s to %d: %w", cell, service, n, err), key: k}
		}
		return actionMsg{text: fmt.Sprintf("scaled %s/%s to %d", cell, service, n)}
	})
}

func (p *servicesPane) restart(r serviceRow) tea.Cmd {
	cell, service := r.cell, r.svc.Service
	src := p.d.src
	return p.d.do(actionTimeout, func(ctx context.Context) tea.Msg {
		if err := src.Restart(ctx, cell, service); err != nil {
			return actionMsg{err: fmt.Errorf("restart %s/%s: %w", cell, service, err)}
		}
		return actionMsg{text: fmt.Sprintf("rolling restart of %s/%s started", cell, service)}
	})
}

// actionDone drops the optimistic count of a scale that failed.
func (p *servicesPane) actionDone(msg actionMsg) {
	if msg.err != nil && msg.key != "" {
		delete(p.pending, msg.key)
	}
}

func (p *servicesPane) prompting() bool { return p.ask != nil }

// answer handles a key while a prompt is open.
func (p *servicesPane) answer(msg tea.KeyPressMsg) tea.Cmd {
	a := p.ask
	if a.restart {
		p.ask = nil
		if msg.String() == "y" || msg.String() == "Y" {
			return p.restart(a.row)
		}
		return flashInfo("restart cancelled")
	}
	switch msg.String() {
	case "esc", "ctrl+c":
		p.ask = nil
		return nil
	case "enter":
		p.ask = nil
		n, err := strconv.Atoi(a.input.value)
		if err != nil {
			return flashErr(fmt.Errorf("scale %s: type a number of replicas", a.row.name()))
		}
		return p.scale(a.row, n)
	}
	a.input.update(msg)
	return nil
}

func (p *servicesPane) promptView(st styles) string {
	a := p.ask
	if a.restart {
		return st.prompt.Render(fmt.Sprintf("Restart %s, one replica at a time? ", a.row.name())) + st.bold.Render("[y/N]")
	}
	return st.prompt.Render(fmt.Sprintf("Replicas for %s (now %d): ", a.row.name(), p.desired(a.row))) +
		a.input.view() + st.dim.Render("   enter: scale · esc: cancel")
}

func servicesColumns() []column {
	return []column{
		{title: "CELL", flex: true, min: 4, max: 16, drop: 3},
		{title: "SERVICE", flex: true, min: 6, max: 24, drop: 0},
		{title: "READY", right: true, drop: 1},
		{title: "HEALTH", max: 12, drop: 2},
		{title: "REQ/S", right: true, drop: 4},
		{title: "INFL", right: true, drop: 5},
		{title: "P50", right: true, drop: 11},
		{title: "P99", right: true, drop: 9},
		{title: "ERR%", right: true, drop: 10},
		{title: "CPU%", right: true, drop: 8},
		{title: "MEM", right: true, drop: 12},
		{title: "TARGET", max: 14, drop: 6},
		{title: "ACTUAL", right: true, drop: 7},
	}
}

func (p *servicesPane) tableRows() [][]cell {
	rows := make([][]cell, len(p.rows))
	for i, r := range p.rows {
		if r.svc == nil {
			h := "gateway " + orNone(r.gateway)
			rows[i] = []cell{plain(r.cell), plain(none), plain(none), {h, healthTone(h)},
				plain(none), plain(none), plain(none), plain(none), plain(none), plain(none), plain(none), plain(none), plain(none)}
			continue
		}
		s := r.svc
		health := orNone(s.Health)
		ready := fmt.Sprintf("%d/%d", s.Ready, p.desired(r))
		readyTone := toneOK
		switch {
		case r.down():
			health, ready, readyTone = "gateway down", none, toneOff
			if r.gateway == api.GatewayStopping {
				// down has drained the cell and is removing it.
				health = "stopping"
			}
		case s.Ready < p.desired(r):
			readyTone = toneWarn
		case p.desired(r) == 0:
			readyTone = toneOff
		}
		rps, infl := fmtRate(s.RPS), strconv.FormatInt(s.InFlight, 10)
		if r.down() {
			rps, infl = none, none
		}
		target, actual, cpu := autoscaleCells(s)
		p50, p99, errs, mem := none, none, none, none
		if !r.down() {
			if s.P50Ms > 0 || s.P99Ms > 0 {
				p50, p99 = fmtMillis(s.P50Ms), fmtMillis(s.P99Ms)
			}
			if s.P50Ms > 0 || s.ErrorRate > 0 {
				errs = fmtNumber(100 * s.ErrorRate)
			}
			if s.CPU > 0 {
				cpu = fmtNumber(s.CPU)
			}
			if s.Memory > 0 {
				mem = fmtBytes(s.Memory)
			}
		}
		errTone := toneNone
		if s.ErrorRate > 0.01 {
			errTone = toneBad
		}
		rows[i] = []cell{
			plain(r.cell), plain(s.Service), {ready, readyTone}, {health, healthTone(health)},
			plain(rps), plain(infl),
			plain(p50), plain(p99), {errs, errTone},
			plain(cpu), plain(mem),
			plain(target), plain(actual),
		}
	}
	return rows
}

// autoscaleCells shows the autoscale target that drives the decision (the
// one furthest above or closest to its target), its current value per
// replica, and CPU when the autoscaler measures it.
func autoscaleCells(s *api.ServiceStatus) (target, actual, cpu string) {
	target, actual, cpu = none, none, none
	if s.Autoscale == nil {
		return
	}
	best := -1.0
	for _, t := range s.Autoscale.Targets {
		if t.Metric == "cpu" {
			cpu = fmtNumber(t.Value)
		}
		ratio := 0.0
		if t.Target > 0 {
			ratio = t.Value / t.Target
		}
		if ratio > best {
			best = ratio
			target = t.Metric + " " + fmtNumber(t.Target)
			actual = fmtNumber(t.Value)
		}
	}
	if best < 0 {
		target = fmt.Sprintf("%d–%d", s.Autoscale.Min, s.Autoscale.Max)
	}
	return
}

func (p *servicesPane) view(st styles, focused bool) []string {
	info := fmt.Sprintf("%d in %d %s", countServices(p.rows), len(p.knownCells()), plural(len(p.knownCells()), "cell", "cells"))
	if r := rangeInfo(p.offset, p.height, len(p.rows)); r != "" {
		info += " · " + r
	}
	info = st.dim.Render(info)
	lines := []string{paneTitle(st, "Services", info, "", p.width, focused)}
	if len(p.rows) == 0 {
		msg := "waiting for the first status…"
		if p.snap != nil {
			msg = "the project is not running: start it with `orchestro up -d`"
		}
		return append(lines, "", "  "+st.dim.Render(msg))
	}
	return append(lines, renderTable(st, servicesColumns(), p.tableRows(), p.width, p.height, p.offset, p.sel, focused)...)
}

func (p *servicesPane) knownCells() []string {
	var out []string
	for _, r := range p.rows {
		if len(out) == 0 || out[len(out)-1] != r.cell {
			out = append(out, r.cell)
		}
	}
	return out
}

func countServices(rows []serviceRow) int {
	n := 0
	for _, r := range rows {
		if r.svc != nil {
			n++
		}
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
