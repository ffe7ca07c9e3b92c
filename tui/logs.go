package tui

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/orchestro/orchestro/runtime/api"
)

const (
	// logsKept is how many lines of the followed service the pane keeps.
	logsKept = 2000
	// logsTail is how many lines of each replica a new stream starts with.
	logsTail = 200
	// logsDebounce lets the selection settle before a stream starts, so
	// running the cursor down the table does not start one per row.
	logsDebounce = 250 * time.Millisecond
)

// logTarget is what the logs pane follows: a service, or one replica of it
// (replica > 0).
type logTarget struct {
	cell, service string
	replica       int
}

func (t logTarget) String() string {
	s := t.cell
	if t.service != "" {
		s += "/" + t.service
	}
	if t.replica > 0 {
		s += "-" + strconv.Itoa(t.replica)
	}
	return s
}

// logsStartMsg starts the log stream of generation gen, after the
// debounce or after a stream ended.
type logsStartMsg struct{ gen int }

// logsPane follows the log of the selected service or replica.
type logsPane struct {
	d *deps

	target logTarget
	has    bool
	lines  []api.LogLine
	// last and skip do for replicas what they do for cells in eventsPane:
	// a stream that starts again does not show lines twice.
	last map[int]time.Time
	skip map[int]time.Time

	feed *feed[api.LogLine]
	gen  int
	err  error

	follow     bool
	wrap       bool
	timestamps bool
	filter     string
	// editing is the filter being typed, which applies as it is typed;
	// before is the filter to go back to on esc.
	editing *lineInput
	before  string

	offset        int // matching lines below the view; 0 is the tail
	unseen        int // lines arrived while paused
	width, height int
	prefixW       int
}

func newLogsPane(d *deps) logsPane {
	return logsPane{d: d, follow: true, last: map[int]time.Time{}}
}

// setTarget follows t (has false: nothing). A new service's stream starts
// after the debounce, or at once with now; another replica of the same
// service only changes which lines are shown.
func (p *logsPane) setTarget(t logTarget, has, now bool) tea.Cmd {
	if has == p.has && t == p.target {
		if now && has && p.feed == nil {
			// Asked for at once while the debounce runs.
			return p.start()
		}
		return nil
	}
	sameStream := has && p.has && t.cell == p.target.cell && t.service == p.target.service
	p.target, p.has = t, has
	p.offset, p.unseen = 0, 0
	if sameStream {
		return nil
	}
	p.feed.stop()
	p.feed = nil
	p.gen++
	p.lines, p.err, p.prefixW = nil, nil, 0
	clear(p.last)
	p.skip = nil
	if !has {
		return nil
	}
	if now {
		return p.start()
	}
	gen := p.gen
	return tea.Tick(logsDebounce, func(time.Time) tea.Msg { return logsStartMsg{gen: gen} })
}

func (p *logsPane) startMsg(msg logsStartMsg) tea.Cmd {
	if msg.gen != p.gen || !p.has {
		return nil
	}
	return p.start()
}

// start (re)starts the stream of the target's service.
func (p *logsPane) start() tea.Cmd {
	p.feed.stop()
	p.gen++
	opts := api.LogOptions{Cell: p.target.cell, Service: p.target.service, Follow: true, Tail: logsTail}
	if len(p.last) > 0 {
		// Starting again: pick up where the last stream stopped.
		p.skip = maps.Clone(p.last)
		since := time.Time{}
		for _, t := range p.last {
			if since.IsZero() || t.Before(since) {
				since = t
			}
		}
		opts.Tail, opts.Since = -1, since
	}
	src := p.d.src
	p.feed = startFeed(p.d.ctx, p.d.wg, p.gen, logsKept, func(ctx context.Context, sink func(api.LogLine)) error {
		return src.Logs(ctx, opts, sink)
	})
	return p.feed.next()
}

func (p *logsPane) receive(msg feedMsg[api.LogLine]) tea.Cmd {
	if msg.Gen != p.gen {
		return nil
	}
	p.add(msg.Items)
	if !msg.Ended {
		p.err = nil
		return p.feed.next()
	}
	p.err = msg.Err
	if p.d.ctx.Err() != nil {
		return nil
	}
	gen := p.gen
	return tea.Tick(retryAfter, func(time.Time) tea.Msg { return logsStartMsg{gen: gen} })
}

// add appends lines of the current stream.
func (p *logsPane) add(lines []api.LogLine) {
	added := 0
	for _, l := range lines {
		if l.Cell != p.target.cell || (p.target.service != "" && l.Service != p.target.service) {
			continue
		}
		if skip, ok := p.skip[l.Replica]; ok && !l.Time.After(skip) {
			continue
		}
		if l.Time.After(p.last[l.Replica]) {
			p.last[l.Replica] = l.Time
		}
		l.Text = sanitize(l.Text)
		p.prefixW = max(p.prefixW, ansi.StringWidth(lineSource(l)))
		// Replicas stream separately: keep the lines in time order.
		p.lines = insertByTime(p.lines, l, func(l api.LogLine) time.Time { return l.Time })
		if p.matches(l) {
			added++
		}
	}
	if over := len(p.lines) - logsKept; over > 0 {
		p.lines = append(p.lines[:0], p.lines[over:]...)
	}
	if !p.follow {
		// Paused: keep the same lines in view.
		p.offset += added
		p.unseen += added
	}
}

// matches reports whether a line is shown: it comes from the target
// replica, if one is chosen, and holds the filter text.
func (p *logsPane) matches(l api.LogLine) bool {
	if p.target.replica > 0 && l.Replica != p.target.replica {
		return false
	}
	return p.filter == "" || containsFold(l.Text, p.filter)
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func (p *logsPane) visible() []api.LogLine {
	out := make([]api.LogLine, 0, len(p.lines))
	for _, l := range p.lines {
		if p.matches(l) {
			out = append(out, l)
		}
	}
	return out
}

func (p *logsPane) setSize(width, height int) {
	p.width, p.height = width, height
}

func (p *logsPane) scroll(delta int) {
	total := 0
	for _, l := range p.lines {
		if p.matches(l) {
			total++
		}
	}
	p.offset = max(0, min(p.offset+delta, total-1))
	if delta > 0 && p.offset > 0 {
		// Reading back pauses following, as in `less +F`.
		p.follow = false
	}
}

func (p *logsPane) navigate(k keyMap, msg tea.KeyPressMsg) {
	switch {
	case key.Matches(msg, k.Up):
		p.scroll(1)
	case key.Matches(msg, k.Down):
		p.scroll(-1)
	case key.Matches(msg, k.PageUp):
		p.scroll(max(1, p.height-1))
	case key.Matches(msg, k.PageDown):
		p.scroll(-max(1, p.height-1))
	case key.Matches(msg, k.Top):
		p.scroll(len(p.lines))
	case key.Matches(msg, k.Bottom):
		p.setFollow(true)
	}
}

// setFollow turns following on (back to the newest line) or off.
func (p *logsPane) setFollow(on bool) {
	p.follow = on
	if on {
		p.offset, p.unseen = 0, 0
	}
}

// toggle handles the keys that change how lines are shown: f, w, t, /.
func (p *logsPane) toggle(k keyMap, msg tea.KeyPressMsg) {
	switch {
	case key.Matches(msg, k.Follow):
		p.setFollow(!p.follow)
	case key.Matches(msg, k.Wrap):
		p.wrap = !p.wrap
	case key.Matches(msg, k.Timestamps):
		p.timestamps = !p.timestamps
	case key.Matches(msg, k.Filter):
		p.before = p.filter
		p.editing = &lineInput{value: p.filter, limit: 100}
	}
}

func (p *logsPane) prompting() bool { return p.editing != nil }

// edit handles a key while the filter is being typed.
func (p *logsPane) edit(msg tea.KeyPressMsg) {
	switch msg.String() {
	case "enter":
		p.editing = nil
		return
	case "esc", "ctrl+c":
		p.filter = p.before
		p.editing = nil
		p.offset = 0
		return
	}
	if p.editing.update(msg) {
		p.filter = p.editing.value
		p.offset = 0
	}
}

// clearFilter drops the filter; it reports whether there was one.
func (p *logsPane) clearFilter() bool {
	if p.filter == "" {
		return false
	}
	p.filter = ""
	p.offset = 0
	return true
}

func (p *logsPane) promptView(st styles) string {
	return st.prompt.Render("Filter logs: ") + p.editing.view() + st.dim.Render("   enter: keep · esc: cancel · ctrl+u: clear")
}

func (p *logsPane) view(st styles, focused bool) []string {
	title := "Logs"
	if p.has {
		title += " · " + p.target.String()
	}
	var info []string
	if p.follow {
		info = append(info, st.ok.Render("following"))
	} else {
		paused := "paused"
		if p.unseen > 0 {
			paused += fmt.Sprintf(" (%d new)", p.unseen)
		}
		info = append(info, st.warn.Render(paused))
	}
	if p.wrap {
		info = append(info, "wrap")
	}
	if p.timestamps {
		info = append(info, "timestamps")
	}
	vis := p.visible()
	if p.filter != "" {
		info = append(info, st.info.Render(fmt.Sprintf("/%s", p.filter))+st.dim.Render(fmt.Sprintf(" %d of %d", len(vis), len(p.lines))))
	}
	if p.err != nil {
		info = append(info, st.errText.Render("stream: "+oneLine(p.err.Error())+" (retrying)"))
	}
	lines := []string{paneTitle(st, title, strings.Join(info, st.dim.Render(" · ")), "", p.width, focused)}

	switch {
	case !p.has:
		return append(lines, "  "+st.dim.Render("select a service to follow its logs"))
	case len(vis) == 0 && p.filter != "":
		return append(lines, "  "+st.dim.Render(fmt.Sprintf("no line matches %q", p.filter)))
	case len(vis) == 0:
		return append(lines, "  "+st.dim.Render("no log lines yet"))
	}

	end := len(vis) - min(p.offset, len(vis)-1)
	var rows []string
	for i := end - 1; i >= 0 && len(rows) < p.height; i-- {
		r := p.render(st, vis[i])
		// Prepend the line's rows, keeping the bottom ones when it does
		// not fit.
		rows = append(r, rows...)
	}
	if len(rows) > p.height {
		rows = rows[len(rows)-p.height:]
	}
	return append(lines, rows...)
}

// lineSource names the replica a line comes from.
func lineSource(l api.LogLine) string {
	if l.Replica <= 0 {
		return l.Service
	}
	return l.Service + "-" + strconv.Itoa(l.Replica)
}

// render draws one log line: one row, cut to the width, or several rows
// when wrapping, the continuation rows indented under the text.
func (p *logsPane) render(st styles, l api.LogLine) []string {
	var head strings.Builder
	if p.timestamps {
		head.WriteString(st.dim.Render(l.Time.In(p.d.loc).Format("15:04:05.000")) + " ")
	}
	src := fit(lineSource(l), p.prefixW, false)
	if l.Stderr {
		head.WriteString(st.stderr.Render(src) + st.dim.Render(" │ "))
	} else {
		head.WriteString(st.prefix.Render(src) + st.dim.Render(" │ "))
	}
	h := head.String()
	hw := ansi.StringWidth(h)
	if !p.wrap || p.width-hw < 10 {
		return []string{clip(h+l.Text, p.width)}
	}
	wrapped := strings.Split(ansi.Hardwrap(l.Text, p.width-hw, true), "\n")
	out := make([]string, len(wrapped))
	for i, w := range wrapped {
		if i == 0 {
			out[i] = h + w
		} else {
			out[i] = strings.Repeat(" ", hw) + w
		}
	}
	return out
}
