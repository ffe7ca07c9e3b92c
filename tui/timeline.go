package tui

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/orchestro/orchestro/runtime/api"
)

// executionMsg carries the execution the timeline asked for.
type executionMsg struct {
	cell, id string
	e        *api.Execution
	err      error
}

// timelineView is the overlay that shows one execution as a timeline of
// its steps and compensations, opened by enter on a failed execution in
// the flows pane, as `orchestro flows show` prints it.
type timelineView struct {
	d *deps

	visible  bool
	cell, id string
	e        *api.Execution // nil while it is on its way
	err      error
	offset   int // the first line of the content shown

	width, height int // the screen's
}

// open shows the timeline of execution id of cell and asks for it.
func (v *timelineView) open(cell, id string) tea.Cmd {
	v.visible, v.cell, v.id, v.e, v.err, v.offset = true, cell, id, nil, nil, 0
	src := v.d.src
	return v.d.do(statusTimeout, func(ctx context.Context) tea.Msg {
		e, err := src.Execution(ctx, cell, id)
		return executionMsg{cell: cell, id: id, e: e, err: err}
	})
}

// receive takes the execution asked for, unless the overlay was closed
// or shows another one by now.
func (v *timelineView) receive(msg executionMsg) {
	if !v.visible || msg.cell != v.cell || msg.id != v.id {
		return
	}
	v.e, v.err = msg.e, msg.err
	if msg.e == nil && msg.err == nil {
		v.err = fmt.Errorf("cell %s no longer has execution %s", msg.cell, msg.id)
	}
}

func (v *timelineView) setSize(width, height int) {
	v.width, v.height = width, height
}

// key handles a key while the overlay is open: esc or enter close it,
// the movement keys scroll it.
func (v *timelineView) key(k keyMap, msg tea.KeyPressMsg) tea.Cmd {
	room := v.room()
	switch {
	case key.Matches(msg, k.Esc, k.Enter):
		v.visible = false
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Up):
		v.scroll(-1)
	case key.Matches(msg, k.Down):
		v.scroll(1)
	case key.Matches(msg, k.PageUp):
		v.scroll(-room)
	case key.Matches(msg, k.PageDown):
		v.scroll(room)
	case key.Matches(msg, k.Top):
		v.offset = 0
	case key.Matches(msg, k.Bottom):
		v.scroll(len(v.content(newStyles(), time.Time{})))
	}
	return nil
}

// scroll moves the content by delta lines, within what there is to see.
func (v *timelineView) scroll(delta int) {
	// The styles do not change how many lines there are.
	n := len(v.content(newStyles(), time.Time{}))
	v.offset = max(0, min(v.offset+delta, n-v.room()))
}

// room is how many lines of content the box has: the screen less its
// border.
func (v *timelineView) room() int { return max(1, v.height-2) }

// inner is the width of the box's content: the screen less its border
// and padding.
func (v *timelineView) inner() int { return max(1, v.width-4) }

// content is every line of the timeline; now is the clock the age of the
// execution is told from.
func (v *timelineView) content(st styles, now time.Time) []string {
	width := v.inner()
	head := st.bold.Render(shortID(v.id)) + " " + v.cell
	if v.e != nil {
		head += "/" + v.e.Flow
	}
	lines := []string{head}
	switch {
	case v.err != nil:
		return append(lines, "", st.errText.Render(flatten(v.err.Error())))
	case v.e == nil:
		return append(lines, "", st.dim.Render("loading…"))
	}
	e := v.e
	facts := []string{st.tone(executionTone(e.State)).Render(orNone(e.State))}
	if e.FailedStep != "" {
		facts = append(facts, "failed at "+e.FailedStep)
	}
	if e.TimedOut {
		facts = append(facts, "past its deadline")
	}
	if !e.Started.IsZero() {
		facts = append(facts, "started "+fmtAge(now, e.Started)+" ago")
	}
	if e.DurationMs > 0 {
		facts = append(facts, "took "+fmtMillis(e.DurationMs))
	}
	if e.Recovered {
		facts = append(facts, "recovered after a gateway restart")
	}
	lines = append(lines, strings.Join(facts, st.dim.Render(" · ")))

	if len(e.Steps) > 0 {
		rows := make([][]cell, len(e.Steps))
		for i, s := range e.Steps {
			rows[i] = []cell{plain(s.ID), {orNone(s.State), stepTone(s.State)}, plain(countOrNone(s.Status)),
				plain(countOrNone(s.Tries)), plain(millisOrNone(s.DurationMs)), errorCell(s.Error)}
		}
		lines = append(lines, "")
		lines = append(lines, renderTable(st, timelineStepColumns(), rows, width, len(rows), 0, -1, false)...)
	}
	if len(e.Compensations) > 0 {
		rows := make([][]cell, len(e.Compensations))
		for i, c := range e.Compensations {
			rows[i] = []cell{plain(c.Step), {orNone(c.Outcome), stepTone(c.Outcome)}, plain(countOrNone(c.Status)),
				plain(countOrNone(c.Tries)), errorCell(c.Error)}
		}
		lines = append(lines, "")
		lines = append(lines, renderTable(st, timelineCompensationColumns(), rows, width, len(rows), 0, -1, false)...)
	}
	if r := e.Response; r != nil {
		lines = append(lines, "", "Response "+strings.TrimSpace(strconv.Itoa(r.Status)+" "+http.StatusText(r.Status)))
	}
	return lines
}

func timelineStepColumns() []column {
	return []column{
		{title: "STEP", flex: true, min: 4, max: 24, drop: 0},
		{title: "STATE", drop: 1},
		{title: "STATUS", right: true, drop: 2},
		{title: "TRIES", right: true, drop: 4},
		{title: "DURATION", right: true, drop: 5},
		{title: "ERROR", flex: true, min: 5, drop: 3},
	}
}

func timelineCompensationColumns() []column {
	return []column{
		{title: "COMPENSATION", flex: true, min: 4, max: 24, drop: 0},
		{title: "OUTCOME", drop: 1},
		{title: "STATUS", right: true, drop: 2},
		{title: "TRIES", right: true, drop: 4},
		{title: "ERROR", flex: true, min: 5, drop: 3},
	}
}

// stepTone is the tone of the state of a step or the outcome of a
// compensation.
func stepTone(state string) tone {
	switch state {
	case "succeeded", "done":
		return toneOK
	case "cancelled":
		return toneWarn
	case "failed", "not_compensated":
		return toneBad
	case "skipped", "not_started":
		return toneOff
	}
	return toneNone
}

// errorCell shows an error on one line, in the tone of failure.
func errorCell(err string) cell {
	if err == "" {
		return plain("")
	}
	return cell{flatten(err), toneBad}
}

// flatten puts a message that may span lines on one.
func flatten(s string) string { return strings.Join(strings.Fields(s), " ") }

func countOrNone(n int) string {
	if n == 0 {
		return none
	}
	return strconv.Itoa(n)
}

func millisOrNone(ms float64) string {
	if ms <= 0 {
		return none
	}
	return fmtMillis(ms)
}

// overlay draws the timeline in a box over base, a screen of the size
// setSize gave. The first line, which names the execution, stays on top
// while the rest scrolls.
func (v *timelineView) overlay(st styles, base string, now time.Time) string {
	lines := v.content(st, now)
	room := v.room()
	hint := "esc closes"
	if len(lines) > room {
		hint += " · ↑/↓ scroll"
	}
	head, body := lines[0]+st.dim.Render("   "+hint), lines[1:]
	start := min(v.offset, max(0, len(body)-(room-1)))
	shown := append([]string{head}, body[start:min(len(body), start+room-1)]...)
	for i, l := range shown {
		shown[i] = clip(l, v.inner())
	}
	return place(base, st.overlay.Render(strings.Join(shown, "\n")), v.width, v.height)
}
