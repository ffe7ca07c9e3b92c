package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/orchestro/orchestro/runtime/api"
)

// header is the top line: project, cells, totals and the clock.
type header struct {
	project string
	st      *api.ProjectStatus
	// err is why the last snapshot could not be taken; the totals then
	// describe the one before.
	err error
	now time.Time
	loc *time.Location
}

func (h *header) setStatus(st *api.ProjectStatus, err error) {
	h.err = err
	if err != nil {
		return
	}
	h.st = st
	if st.Project != "" {
		h.project = st.Project
	}
}

func (h *header) setNow(t time.Time) { h.now = t }

// totals sums up a snapshot for the header.
type totals struct {
	cells, cellsUp   int
	services         int
	ready, desired   int
	rps              float64
	inflight         int64
	unhealthyService int
}

func sumUp(st *api.ProjectStatus) totals {
	var t totals
	if st == nil {
		return t
	}
	for _, c := range st.Cells {
		t.cells++
		if c.Gateway == "running" {
			t.cellsUp++
		}
		for _, s := range c.Services {
			t.services++
			t.ready += s.Ready
			t.desired += s.Desired
			t.rps += s.RPS
			t.inflight += s.InFlight
			if s.Health == "unhealthy" || s.Health == "crashloop" {
				t.unhealthyService++
			}
		}
	}
	return t
}

func (h header) view(st styles, width int) string {
	clock := st.clock.Render(h.now.In(h.loc).Format("15:04:05"))
	left := st.project.Render(orNone(h.project))

	var parts []string
	if h.err != nil {
		// First, so a narrow screen still shows it.
		parts = append(parts, st.errText.Render("status: "+oneLine(h.err.Error())))
	}
	t := sumUp(h.st)
	switch {
	case h.st != nil && t.cells == 0:
		parts = append(parts, st.bad.Render("not running"))
	case h.st != nil:
		cells := fmt.Sprintf("cells %d/%d up", t.cellsUp, t.cells)
		if t.cellsUp < t.cells {
			cells = st.bad.Render(cells)
		}
		replicas := fmt.Sprintf("replicas %d/%d", t.ready, t.desired)
		if t.ready < t.desired {
			replicas = st.warn.Render(replicas)
		}
		services := fmt.Sprintf("services %d", t.services)
		if t.unhealthyService > 0 {
			services += st.bad.Render(fmt.Sprintf(" (%d unhealthy)", t.unhealthyService))
		}
		parts = append(parts, cells, services, replicas,
			fmtRate(t.rps)+" req/s", fmt.Sprintf("%d in flight", t.inflight))
	}
	if len(parts) > 0 {
		left += "   " + strings.Join(parts, st.dim.Render(" · "))
	}

	cw := ansi.StringWidth(clock)
	if width < cw+2 {
		return clip(left, width)
	}
	left = clip(left, width-cw-1)
	gap := width - ansi.StringWidth(left) - cw
	return left + strings.Repeat(" ", gap) + clock
}

// oneLine keeps the first line of a message.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
