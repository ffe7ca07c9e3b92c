package tui

import (
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// flashFor is how long a message stays in the bottom bar.
const flashFor = 5 * time.Second

// flashMsg puts a message in the bottom bar for a while.
type flashMsg struct {
	text  string
	isErr bool
}

func flashErr(err error) tea.Cmd {
	return func() tea.Msg { return flashMsg{text: err.Error(), isErr: true} }
}

func flashInfo(text string) tea.Cmd {
	return func() tea.Msg { return flashMsg{text: text} }
}

// helpBar is the bottom line (a message, or the key help) and the `?`
// overlay listing every key.
type helpBar struct {
	visible bool // the overlay
	flash   flashMsg
	until   time.Time
}

func (b *helpBar) setFlash(msg flashMsg, now time.Time) {
	b.flash = msg
	b.until = now.Add(flashFor)
}

// expire drops a message that has been shown long enough.
func (b *helpBar) expire(now time.Time) {
	if b.flash.text != "" && !now.Before(b.until) {
		b.flash = flashMsg{}
	}
}

// view is the bottom line: a message while there is one, else the short
// key help.
func (b helpBar) view(st styles, k keyMap, focus pane, width int) string {
	if b.flash.text != "" {
		if b.flash.isErr {
			return clip(st.errText.Render("✗ ")+st.errText.Render(oneLine(b.flash.text)), width)
		}
		return clip(st.ok.Render("✓ ")+oneLine(b.flash.text), width)
	}
	return shortHelp(st, k.shortFor(focus), width)
}

// shortHelp lays out key help on one line, as many bindings as fit, then
// an ellipsis. (help.Model.ShortHelpView can overflow a narrow screen.)
func shortHelp(st styles, bindings []key.Binding, width int) string {
	sep := st.help.ShortSeparator.Render(" · ")
	tail := " " + st.help.Ellipsis.Render("…")
	var b strings.Builder
	used := 0
	for i, kb := range bindings {
		item := st.help.ShortKey.Render(kb.Help().Key) + " " + st.help.ShortDesc.Render(kb.Help().Desc)
		if i > 0 {
			item = sep + item
		}
		w := ansi.StringWidth(item)
		room := width
		if i < len(bindings)-1 {
			room -= ansi.StringWidth(tail)
		}
		if used+w > room {
			if used+ansi.StringWidth(tail) <= width {
				b.WriteString(tail)
			}
			break
		}
		b.WriteString(item)
		used += w
	}
	return b.String()
}

// overlay draws the key list in a box over base, a screen of width ×
// height.
func (b helpBar) overlay(st styles, k keyMap, base string, width, height int) string {
	var cols []string
	for _, g := range k.groups() {
		keyW := 0
		for _, kb := range g.keys {
			keyW = max(keyW, ansi.StringWidth(kb.Help().Key))
		}
		lines := []string{st.heading.Render(g.title)}
		for _, kb := range g.keys {
			lines = append(lines, st.help.FullKey.Render(fit(kb.Help().Key, keyW, false))+"  "+st.help.FullDesc.Render(kb.Help().Desc))
		}
		cols = append(cols, strings.Join(lines, "\n"))
	}
	// As many groups side by side as the screen takes.
	inner := width - 4
	var rows []string
	for i := 0; i < len(cols); {
		row := cols[i]
		j := i + 1
		for ; j < len(cols); j++ {
			wider := lipgloss.JoinHorizontal(lipgloss.Top, row, "    ", cols[j])
			if lipgloss.Width(wider) > inner {
				break
			}
			row = wider
		}
		rows = append(rows, row)
		i = j
	}
	body := st.bold.Render("Keys") + st.dim.Render("   ? or esc closes") + "\n\n" + strings.Join(rows, "\n\n")
	box := st.overlay.Render(body)
	return place(base, box, width, height)
}

// place draws box centred over base, a screen of width × height.
func place(base, box string, width, height int) string {
	bw, bh := lipgloss.Width(box), lipgloss.Height(box)
	c := lipgloss.NewCanvas(width, height)
	c.Compose(lipgloss.NewCompositor(
		lipgloss.NewLayer(base),
		lipgloss.NewLayer(box).X(max(0, (width-bw)/2)).Y(max(0, (height-bh)/2)).Z(1),
	))
	return c.Render()
}
