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

	"github.com/orchestro/orchestro/runtime/api"
)

// eventsKept is how many events the pane remembers.
const eventsKept = 500

// eventsPane shows the controller events of every cell, newest at the
// bottom, fed by a follow stream that starts again when it ends.
type eventsPane struct {
	d *deps

	events []api.Event
	// last is the time of the newest event seen from each cell. A stream
	// that starts again replays the backlog; skip holds what last was
	// then, so the replay is not shown twice.
	last map[string]time.Time
	skip map[string]time.Time

	feed *feed[api.Event]
	gen  int
	err  error

	offset        int // lines scrolled up from the newest
	width, height int
}

// eventsRetryMsg starts the event stream again.
type eventsRetryMsg struct{ gen int }

func newEventsPane(d *deps) eventsPane {
	return eventsPane{d: d, last: map[string]time.Time{}}
}

// start (re)starts the event stream.
func (p *eventsPane) start() tea.Cmd {
	p.feed.stop()
	p.gen++
	p.skip = maps.Clone(p.last)
	src := p.d.src
	p.feed = startFeed(p.d.ctx, p.d.wg, p.gen, eventsKept, func(ctx context.Context, sink func(api.Event)) error {
		return src.Events(ctx, true, sink)
	})
	return p.feed.next()
}

func (p *eventsPane) receive(msg feedMsg[api.Event]) tea.Cmd {
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
	return tea.Tick(retryAfter, func(time.Time) tea.Msg { return eventsRetryMsg{gen: gen} })
}

func (p *eventsPane) retry(msg eventsRetryMsg) tea.Cmd {
	if msg.gen != p.gen {
		return nil
	}
	return p.start()
}

// add appends events, skipping any already seen.
func (p *eventsPane) add(evs []api.Event) {
	added := 0
	for _, e := range evs {
		if skip, ok := p.skip[e.Cell]; ok && !e.Time.After(skip) {
			continue
		}
		if e.Time.After(p.last[e.Cell]) {
			p.last[e.Cell] = e.Time
		}
		// Cells stream separately: keep the list in time order.
		p.events = insertByTime(p.events, e, func(e api.Event) time.Time { return e.Time })
		added++
	}
	if over := len(p.events) - eventsKept; over > 0 {
		p.events = append(p.events[:0], p.events[over:]...)
	}
	if p.offset > 0 {
		// Scrolled up: keep the same events in view.
		p.offset += added
	}
	p.clampScroll()
}

func (p *eventsPane) setSize(width, height int) {
	p.width, p.height = width, height
	p.clampScroll()
}

func (p *eventsPane) clampScroll() {
	p.offset = max(0, min(p.offset, len(p.events)-p.height))
}

func (p *eventsPane) scroll(delta int) {
	p.offset += delta
	p.clampScroll()
}

func (p *eventsPane) navigate(k keyMap, msg tea.KeyPressMsg) {
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
		p.scroll(len(p.events))
	case key.Matches(msg, k.Bottom):
		p.offset = 0
	}
}

func (p *eventsPane) view(st styles, focused bool) []string {
	info := st.dim.Render(strconv.Itoa(len(p.events)))
	if p.offset > 0 {
		info += st.info.Render(fmt.Sprintf("  ↑ %d newer below", p.offset))
	}
	if p.err != nil {
		info += "  " + st.errText.Render("stream: "+oneLine(p.err.Error())+" (retrying)")
	}
	lines := []string{paneTitle(st, "Events", info, "", p.width, focused)}
	if len(p.events) == 0 {
		return append(lines, "  "+st.dim.Render("no events yet"))
	}
	end := len(p.events) - p.offset
	start := max(0, end-p.height)
	for _, e := range p.events[start:end] {
		lines = append(lines, clip(p.format(st, e), p.width))
	}
	return lines
}

// format renders an event as `orchestro events` does, with a short time.
func (p *eventsPane) format(st styles, e api.Event) string {
	var b strings.Builder
	b.WriteString(st.dim.Render(e.Time.In(p.d.loc).Format("15:04:05")))
	b.WriteByte(' ')
	b.WriteString(EventSubject(e))
	b.WriteByte(' ')
	b.WriteString(st.event(e.Type).Render(e.Type))
	if e.Type == api.EventScaled {
		fmt.Fprintf(&b, " %d → %d", e.From, e.To)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(sanitize(e.Message))
	}
	return b.String()
}
