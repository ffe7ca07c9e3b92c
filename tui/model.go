package tui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/orchestro/orchestro/runtime/api"
)

// Smallest screen the dashboard draws on.
const (
	minWidth  = 40
	minHeight = 12
)

// pane identifies a focusable pane.
type pane int

const (
	paneServices pane = iota
	paneReplicas
	paneFlows // shown only when the project has flows
	paneEvents
	paneLogs
	paneCount
)

// tickMsg asks for a new snapshot; it comes every refresh interval.
type tickMsg time.Time

// statusMsg carries a snapshot, or why there is none.
type statusMsg struct {
	st  *api.ProjectStatus
	err error
}

// Model is the dashboard. It owns the sub-models and routes messages to
// them; it decides nothing about what they show.
type Model struct {
	d    *deps
	keys keyMap
	st   styles

	width, height int
	focus         pane
	// detail is the table whose selection the logs follow: services or
	// replicas.
	detail   pane
	zoomed   bool // the logs fill the screen
	fetching bool
	clock    time.Time

	header   header
	services servicesPane
	replicas replicasPane
	flows    flowsPane
	events   eventsPane
	logs     logsPane
	bar      helpBar
	// timeline is the overlay of one execution, opened from the flows
	// pane.
	timeline timelineView
}

// newModel builds the dashboard. ctx bounds everything it starts; wg
// tracks its goroutines.
func newModel(ctx context.Context, wg *sync.WaitGroup, src Source, opts Options) *Model {
	opts = opts.withDefaults()
	d := &deps{ctx: ctx, wg: wg, src: src, refresh: opts.Refresh, now: opts.Now, loc: opts.Location}
	st := newStyles()
	m := &Model{
		d:        d,
		keys:     defaultKeys(),
		st:       st,
		header:   header{project: opts.Project, loc: opts.Location},
		services: newServicesPane(d),
		flows:    newFlowsPane(d),
		events:   newEventsPane(d),
		logs:     newLogsPane(d),
		timeline: timelineView{d: d},
	}
	m.setClock(opts.Now())
	if opts.Initial != nil {
		m.setStatus(statusMsg{st: opts.Initial})
	}
	return m
}

// Init starts the clock, the event stream and the logs of the first
// service.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.tick(), m.events.start(), m.followSelection(true)}
	if m.header.st == nil {
		cmds = append(cmds, m.fetch())
	}
	return tea.Batch(cmds...)
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.d.refresh, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// fetch takes a snapshot, unless one is on its way.
func (m *Model) fetch() tea.Cmd {
	if m.fetching {
		return nil
	}
	m.fetching = true
	src := m.d.src
	return m.d.do(statusTimeout, func(ctx context.Context) tea.Msg {
		st, err := src.Status(ctx)
		if errors.Is(err, api.ErrNotRunning) {
			// Every gateway went away: a snapshot with no cell, which
			// shows the cells seen so far as down.
			err = nil
		}
		if err == nil && st == nil {
			st = &api.ProjectStatus{}
		}
		return statusMsg{st: st, err: err}
	})
}

// Update routes a message to the sub-models it concerns.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tickMsg:
		m.setClock(time.Time(msg))
		cmds = append(cmds, m.tick(), m.fetch())
	case statusMsg:
		m.fetching = false
		m.setStatus(msg)
	case feedMsg[api.Event]:
		cmds = append(cmds, m.events.receive(msg))
	case eventsRetryMsg:
		cmds = append(cmds, m.events.retry(msg))
	case feedMsg[api.LogLine]:
		cmds = append(cmds, m.logs.receive(msg))
	case logsStartMsg:
		cmds = append(cmds, m.logs.startMsg(msg))
	case executionsMsg:
		m.flows.receive(msg)
	case executionMsg:
		m.timeline.receive(msg)
	case actionMsg:
		m.services.actionDone(msg)
		if msg.err != nil {
			m.bar.setFlash(flashMsg{text: msg.err.Error(), isErr: true}, m.clock)
		} else {
			m.bar.setFlash(flashMsg{text: msg.text}, m.clock)
		}
		cmds = append(cmds, m.fetch())
	case flashMsg:
		m.bar.setFlash(msg, m.clock)
	case tea.KeyPressMsg:
		cmds = append(cmds, m.key(msg))
	case tea.PasteMsg:
		m.paste(msg.Content)
	case tea.MouseWheelMsg:
		m.wheel(msg)
	}
	m.sync()
	cmds = append(cmds, m.followSelection(false), m.flows.poll(m.clock))
	return m, tea.Batch(cmds...)
}

func (m *Model) setClock(t time.Time) {
	m.clock = t
	m.header.setNow(t)
	m.replicas.setNow(t)
	m.bar.expire(t)
}

func (m *Model) setStatus(msg statusMsg) {
	if msg.err == nil {
		m.services.setStatus(msg.st, m.d.now())
	}
	m.header.setStatus(m.services.snap, msg.err)
	m.sync()
}

// key routes a key press: to an open prompt or overlay first, then to the
// pane its binding belongs to.
func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case msg.String() == "ctrl+c":
		return tea.Quit
	case m.bar.visible:
		switch {
		case key.Matches(msg, k.Help, k.Esc):
			m.bar.visible = false
		case key.Matches(msg, k.Quit):
			return tea.Quit
		}
		return nil
	case m.timeline.visible:
		return m.timeline.key(k, msg)
	case m.services.prompting():
		return m.services.answer(msg)
	case m.logs.prompting():
		m.logs.edit(msg)
		return nil
	}
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.bar.visible = true
	case key.Matches(msg, k.Tab):
		m.cycle(1)
	case key.Matches(msg, k.ShiftTab):
		m.cycle(-1)
	case key.Matches(msg, k.Esc):
		m.back()
	case key.Matches(msg, k.Enter):
		return m.enter()
	case key.Matches(msg, k.Logs):
		m.zoom(!m.zoomed)
	case key.Matches(msg, k.Flows):
		return m.toggleFlows()
	case key.Matches(msg, k.ScaleUp, k.ScaleDown, k.SetScale, k.Restart):
		return m.services.act(k, msg)
	case key.Matches(msg, k.Follow, k.Wrap, k.Timestamps, k.Filter):
		m.logs.toggle(k, msg)
	default:
		m.navigate(msg)
	}
	return nil
}

func (m *Model) navigate(msg tea.KeyPressMsg) {
	switch m.focus {
	case paneServices:
		m.services.navigate(m.keys, msg)
	case paneReplicas:
		m.replicas.navigate(m.keys, msg)
	case paneFlows:
		m.flows.navigate(m.keys, msg)
	case paneEvents:
		m.events.navigate(m.keys, msg)
	case paneLogs:
		m.logs.navigate(m.keys, msg)
	}
}

func (m *Model) paste(text string) {
	switch {
	case m.services.prompting() && !m.services.ask.restart:
		m.services.ask.input.insert(text)
	case m.logs.prompting():
		m.logs.editing.insert(text)
		m.logs.filter = m.logs.editing.value
	}
}

// wheel scrolls the pane under the pointer, or the timeline while it is
// open.
func (m *Model) wheel(msg tea.MouseWheelMsg) {
	delta := 0
	switch msg.Button {
	case tea.MouseWheelUp:
		delta = -1
	case tea.MouseWheelDown:
		delta = 1
	default:
		return
	}
	if m.timeline.visible {
		m.timeline.scroll(delta)
		return
	}
	p, ok := m.paneAt(msg.Y)
	if !ok {
		return
	}
	switch p {
	case paneServices:
		m.services.move(delta)
	case paneReplicas:
		m.replicas.move(delta)
	case paneFlows:
		m.flows.move(delta)
	case paneEvents:
		m.events.scroll(-3 * delta)
	case paneLogs:
		m.logs.scroll(-3 * delta)
	}
}

func (m *Model) focusOn(p pane) {
	m.focus = p
	if p == paneServices || p == paneReplicas {
		m.detail = p
	}
}

// cycle moves the focus to the next (dir 1) or previous (dir -1) pane on
// the screen.
func (m *Model) cycle(dir int) {
	if m.zoomed {
		m.zoom(false)
	}
	next := (m.focus + pane(dir) + paneCount) % paneCount
	if next == paneFlows && !m.flowsShown() {
		next = (next + pane(dir) + paneCount) % paneCount
	}
	m.focusOn(next)
}

// flowsShown reports whether the flows pane is on the screen: the project
// has flows and the screen has room for them.
func (m *Model) flowsShown() bool { return m.layout().flows > 0 }

// toggleFlows moves the focus to the flows pane, leaving full-screen logs
// if need be, or back from it.
func (m *Model) toggleFlows() tea.Cmd {
	switch {
	case m.focus == paneFlows:
		m.focusOn(m.detail)
	case m.flows.wanted() == 0:
		return flashInfo("no flows: no cell of the project reports any")
	case m.layoutFor(false).flows == 0:
		return flashInfo("the terminal is too small for the flows pane")
	default:
		m.zoomed = false
		m.focusOn(paneFlows)
	}
	return nil
}

func (m *Model) zoom(on bool) {
	m.zoomed = on
	if on {
		m.focus = paneLogs
	} else {
		m.focus = m.detail
	}
}

// enter opens what the selection leads to: a service's replicas, a
// replica's logs, an execution's timeline.
func (m *Model) enter() tea.Cmd {
	switch m.focus {
	case paneServices:
		m.focusOn(paneReplicas)
	case paneReplicas:
		m.zoom(true)
	case paneFlows:
		if e, ok := m.flows.selectedExecution(); ok {
			return m.timeline.open(m.flows.row.cell, e.ID)
		}
	case paneLogs:
		m.zoom(!m.zoomed)
	}
	return nil
}

// back undoes the last step: full-screen logs, then a filter, then focus
// on a pane other than the services.
func (m *Model) back() {
	switch {
	case m.zoomed:
		m.zoom(false)
	case m.logs.clearFilter():
	case m.focus != paneServices:
		m.focusOn(paneServices)
	}
}

// sync hands the selected service to the replicas and flows panes and
// sizes the panes to the screen.
func (m *Model) sync() {
	r, ok := m.services.selected()
	m.replicas.setService(r, ok, m.services.history[r.key()])
	m.flows.set(m.services.snap, r, ok)
	l := m.layout()
	if m.focus == paneFlows && l.flows == 0 {
		// The screen shrank under the focused flows pane.
		m.focusOn(m.detail)
	}
	m.services.setSize(m.width, l.services)
	m.replicas.setSize(m.width, l.replicas)
	m.flows.setSize(m.width, l.flows)
	m.events.setSize(m.width, l.events)
	m.logs.setSize(m.width, l.logs)
	m.timeline.setSize(m.width, m.height)
}

// layout shares the screen among the panes as they are now.
func (m *Model) layout() layout { return m.layoutFor(m.zoomed) }

func (m *Model) layoutFor(zoomed bool) layout {
	return computeLayout(m.height, len(m.services.rows), len(m.replicas.replicas), m.flows.wanted(), zoomed, m.focus == paneFlows)
}

// followSelection points the logs at the selected service, or at the
// selected replica while the replicas have the selection.
func (m *Model) followSelection(now bool) tea.Cmd {
	r, ok := m.services.selected()
	t := logTarget{cell: r.cell}
	if r.svc != nil {
		t.service = r.svc.Service
		if rep, has := m.replicas.selected(); has && m.detail == paneReplicas {
			t.replica = rep.Replica
		}
	}
	return m.logs.setTarget(t, ok, now)
}

// layout is how many rows each pane shows, not counting its title and
// column header lines. flows is 0 when the flows pane is not shown.
type layout struct {
	services, replicas, flows, events, logs int
}

// Lines each pane spends on its title and column header.
const (
	servicesChrome = 2
	replicasChrome = 2
	flowsChrome    = 2
	eventsChrome   = 1
	logsChrome     = 1
	screenChrome   = 2 // the header and the bottom bar
)

// computeLayout shares the screen's height: the tables get what their rows
// need, up to a share, and the logs get the most of the rest. flows is the
// rows the flows pane wants, 0 to leave it out; it is left out too when
// the screen cannot give every pane a row. The flows pane's share grows
// while it has the focus, so that the failed executions under the flows
// come into view.
func computeLayout(height, services, replicas, flows int, zoomed, flowsFocused bool) layout {
	body := height - screenChrome
	if zoomed {
		return layout{logs: max(1, body-logsChrome)}
	}
	rows := body - servicesChrome - replicasChrome - eventsChrome - logsChrome
	const panes = 5
	if flows > 0 && rows-flowsChrome >= panes {
		rows -= flowsChrome
	} else {
		flows = 0
	}
	var l layout
	l.services = max(1, min(services, rows*3/10))
	l.replicas = max(1, min(replicas, rows/4))
	if flows > 0 {
		share := rows / 5
		if flowsFocused {
			share = rows / 3
		}
		l.flows = max(1, min(flows, share))
	}
	rest := rows - l.services - l.replicas - l.flows
	l.events = max(1, rest*2/5)
	l.logs = max(1, rest-l.events)
	return l
}

// paneAt tells which pane holds screen row y.
func (m *Model) paneAt(y int) (pane, bool) {
	l := m.layout()
	y-- // the header
	if m.zoomed {
		return paneLogs, y >= 0 && y < logsChrome+l.logs
	}
	flows := 0
	if l.flows > 0 {
		flows = flowsChrome + l.flows
	}
	for _, b := range []struct {
		p pane
		h int
	}{
		{paneServices, servicesChrome + l.services},
		{paneReplicas, replicasChrome + l.replicas},
		{paneFlows, flows},
		{paneEvents, eventsChrome + l.events},
		{paneLogs, logsChrome + l.logs},
	} {
		if y >= 0 && y < b.h {
			return b.p, true
		}
		y -= b.h
	}
	return 0, false
}

// View draws the dashboard in the alternate screen, with the mouse wheel
// on.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "orchestro dash · " + orNone(m.header.project)
	return v
}

func (m *Model) render() string {
	if m.width <= 0 || m.height <= 0 {
		return ""
	}
	if m.width < minWidth || m.height < minHeight {
		return clip("orchestro dash: the terminal is too small (needs 40×12)", m.width)
	}
	l := m.layout()
	lines := make([]string, 0, m.height)
	lines = append(lines, m.header.view(m.st, m.width))
	if !m.zoomed {
		lines = append(lines, padLines(m.services.view(m.st, m.focus == paneServices), servicesChrome+l.services)...)
		lines = append(lines, padLines(m.replicas.view(m.st, m.focus == paneReplicas), replicasChrome+l.replicas)...)
		if l.flows > 0 {
			lines = append(lines, padLines(m.flows.view(m.st, m.focus == paneFlows, m.clock), flowsChrome+l.flows)...)
		}
		lines = append(lines, padLines(m.events.view(m.st, m.focus == paneEvents), eventsChrome+l.events)...)
	}
	lines = append(lines, padLines(m.logs.view(m.st, m.focus == paneLogs), logsChrome+l.logs)...)
	lines = padLines(lines, m.height-1)

	var bottom string
	switch {
	case m.services.prompting():
		bottom = m.services.promptView(m.st)
	case m.logs.prompting():
		bottom = m.logs.promptView(m.st)
	default:
		bottom = m.bar.view(m.st, m.keys, m.focus, m.width)
	}
	lines = append(lines, bottom)
	for i, line := range lines {
		lines[i] = clip(line, m.width)
	}
	out := strings.Join(lines, "\n")
	if m.timeline.visible {
		out = m.timeline.overlay(m.st, out, m.clock)
	}
	if m.bar.visible {
		out = m.bar.overlay(m.st, m.keys, out, m.width, m.height)
	}
	return out
}
