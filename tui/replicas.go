package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/orchestro/orchestro/runtime/api"
)

// sparkWidth is the most samples the req/s sparkline shows.
const sparkWidth = 40

// replicasPane lists the replicas of the selected service, with its req/s
// sparkline in the title.
type replicasPane struct {
	row      serviceRow
	ok       bool // a row is selected
	replicas []api.ReplicaStatus
	history  []float64

	listCursor
	now time.Time
}

// setService shows the replicas of r, keeping the selection on the same
// replica when r is the service shown before.
func (p *replicasPane) setService(r serviceRow, ok bool, history []float64) {
	var selName string
	same := ok && p.ok && r.key() == p.row.key()
	if rep, has := p.selected(); has && same {
		selName = rep.Name
	}
	p.row, p.ok, p.history = r, ok, history
	p.replicas = nil
	if ok && r.svc != nil {
		p.replicas = r.svc.Replicas
	}
	if !same {
		p.sel, p.offset = 0, 0
	}
	p.sel = min(p.sel, max(0, len(p.replicas)-1))
	for i, rep := range p.replicas {
		if rep.Name == selName {
			p.sel = i
		}
	}
	p.clamp(len(p.replicas))
}

func (p *replicasPane) selected() (api.ReplicaStatus, bool) {
	if p.sel < 0 || p.sel >= len(p.replicas) {
		return api.ReplicaStatus{}, false
	}
	return p.replicas[p.sel], true
}

func (p *replicasPane) setSize(width, height int) {
	p.listCursor.setSize(width, height, len(p.replicas))
}

func (p *replicasPane) setNow(t time.Time) { p.now = t }

func (p *replicasPane) move(delta int) { p.listCursor.move(delta, len(p.replicas)) }

func (p *replicasPane) navigate(k keyMap, msg tea.KeyPressMsg) {
	p.listCursor.navigate(k, msg, len(p.replicas))
}

func replicasColumns() []column {
	return []column{
		{title: "#", right: true, drop: 0},
		{title: "STATE", max: 10, drop: 2},
		{title: "HEALTH", max: 12, drop: 1},
		{title: "ADDRESS", flex: true, min: 9, max: 24, drop: 5},
		{title: "INFL", right: true, drop: 3},
		{title: "REQ/S", right: true, drop: 4},
		{title: "RESTARTS", right: true, drop: 6},
		{title: "AGE", right: true, drop: 7},
		{title: "CONTAINER", flex: true, min: 10, max: 40, drop: 8},
	}
}

func (p *replicasPane) tableRows() [][]cell {
	down := p.row.down()
	rows := make([][]cell, len(p.replicas))
	for i, r := range p.replicas {
		num := none
		if r.Replica > 0 {
			num = strconv.Itoa(r.Replica)
		}
		health := orNone(r.Health)
		infl, rps := strconv.FormatInt(r.InFlight, 10), fmtRate(r.RPS)
		if down {
			health, infl, rps = "gateway down", none, none
		}
		restarts := plain(strconv.Itoa(r.Restarts))
		if r.Restarts > 0 {
			restarts.tone = toneWarn
		}
		rows[i] = []cell{
			plain(num), {orNone(r.State), healthTone(r.State)}, {health, healthTone(health)},
			plain(orNone(r.Address)), plain(infl), plain(rps), restarts,
			plain(fmtAge(p.now, r.Started)), {r.Name, toneDim},
		}
	}
	return rows
}

func (p *replicasPane) view(st styles, focused bool) []string {
	title, info, right := "Replicas", "", ""
	if p.ok {
		title += " · " + p.row.name()
		right = sparkline(st, p.history, min(sparkWidth, p.width/3))
		if r := rangeInfo(p.offset, p.height, len(p.replicas)); r != "" {
			info = st.dim.Render(r)
		}
	}
	lines := []string{paneTitle(st, title, info, right, p.width, focused)}
	switch {
	case !p.ok:
		return append(lines, "", "  "+st.dim.Render("no service selected"))
	case len(p.replicas) == 0 && p.row.svc == nil:
		msg := fmt.Sprintf("cell %s: gateway %s", p.row.cell, orNone(p.row.gateway))
		if p.row.cellErr != "" {
			msg += ": " + oneLine(p.row.cellErr)
		}
		return append(lines, "", "  "+st.health(p.row.gateway).Render(msg))
	case len(p.replicas) == 0:
		return append(lines, "", "  "+st.dim.Render("no replicas"))
	}
	return append(lines, renderTable(st, replicasColumns(), p.tableRows(), p.width, p.height, p.offset, p.sel, focused)...)
}

// sparkline draws the last width samples as block characters, scaled to
// their maximum, followed by the latest value.
func sparkline(st styles, samples []float64, width int) string {
	if len(samples) == 0 || width < 4 {
		return ""
	}
	if len(samples) > width {
		samples = samples[len(samples)-width:]
	}
	const bars = "▁▂▃▄▅▆▇█"
	levels := []rune(bars)
	top := 0.0
	for _, v := range samples {
		top = max(top, v)
	}
	var b strings.Builder
	for _, v := range samples {
		i := 0
		if top > 0 {
			i = int(v / top * float64(len(levels)-1))
		}
		b.WriteRune(levels[max(0, min(len(levels)-1, i))])
	}
	last := samples[len(samples)-1]
	return st.dim.Render("req/s ") + st.spark.Render(b.String()) + " " + fmtRate(last)
}
