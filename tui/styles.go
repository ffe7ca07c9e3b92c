package tui

import (
	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
)

// styles holds every style of the dashboard. Colours are the terminal's own
// 16 ANSI colours, so they follow its light or dark theme; anything that
// must stay visible without colour (focus, selection) also uses bold or
// reverse video, which NO_COLOR allows.
type styles struct {
	project lipgloss.Style
	clock   lipgloss.Style
	dim     lipgloss.Style
	bold    lipgloss.Style

	paneTitle        lipgloss.Style
	paneTitleFocused lipgloss.Style
	rule             lipgloss.Style
	colHeader        lipgloss.Style
	// selected marks the selected row of the focused pane.
	selected lipgloss.Style
	marker   lipgloss.Style

	ok   lipgloss.Style // healthy, running
	warn lipgloss.Style // starting, draining, scaling
	bad  lipgloss.Style // unhealthy, crashing, down
	off  lipgloss.Style // stopped, unknown

	spark   lipgloss.Style
	stderr  lipgloss.Style
	prefix  lipgloss.Style
	errText lipgloss.Style
	info    lipgloss.Style
	prompt  lipgloss.Style
	overlay lipgloss.Style
	heading lipgloss.Style

	help help.Styles
}

func newStyles() styles {
	var (
		red    = lipgloss.Color("1")
		green  = lipgloss.Color("2")
		yellow = lipgloss.Color("3")
		blue   = lipgloss.Color("4")
		cyan   = lipgloss.Color("6")
		grey   = lipgloss.Color("8")
	)
	s := lipgloss.NewStyle()
	dim := s.Faint(true)
	return styles{
		project: s.Bold(true).Foreground(cyan),
		clock:   s.Bold(true),
		dim:     dim,
		bold:    s.Bold(true),

		paneTitle:        s.Bold(true),
		paneTitleFocused: s.Bold(true).Reverse(true),
		rule:             dim,
		colHeader:        s.Bold(true).Faint(true),
		selected:         s.Reverse(true),
		marker:           s.Bold(true).Foreground(cyan),

		ok:   s.Foreground(green),
		warn: s.Foreground(yellow),
		bad:  s.Foreground(red).Bold(true),
		off:  s.Foreground(grey),

		spark:   s.Foreground(blue),
		stderr:  s.Foreground(red),
		prefix:  dim,
		errText: s.Foreground(red).Bold(true),
		info:    s.Foreground(yellow),
		prompt:  s.Bold(true),
		overlay: s.Border(lipgloss.RoundedBorder()).Padding(0, 1),
		heading: s.Bold(true),

		help: help.Styles{
			Ellipsis:       dim,
			ShortKey:       s.Bold(true),
			ShortDesc:      dim,
			ShortSeparator: dim,
			FullKey:        s.Bold(true),
			FullDesc:       s,
			FullSeparator:  dim,
		},
	}
}

// tone is the meaning a table cell's colour conveys. Cells carry a tone
// rather than a lipgloss.Style, which is large to copy for every cell of a
// big table.
type tone uint8

const (
	toneNone tone = iota
	toneOK        // healthy, running
	toneWarn      // starting, draining, scaling
	toneBad       // unhealthy, crashing, down
	toneOff       // stopped, unknown
	toneDim       // secondary text
)

// tone returns the style of a tone.
func (s styles) tone(t tone) lipgloss.Style {
	switch t {
	case toneOK:
		return s.ok
	case toneWarn:
		return s.warn
	case toneBad:
		return s.bad
	case toneOff:
		return s.off
	case toneDim:
		return s.dim
	}
	return lipgloss.NewStyle()
}

// healthTone is the tone of a health or state word.
func healthTone(h string) tone {
	switch h {
	case "healthy", "running", "up":
		return toneOK
	case "starting", "draining", "created", "restarting", "waiting", "scaling", "gateway starting":
		return toneWarn
	case "unhealthy", "crashloop", "ejected", "exited", "dead", "down", "gateway down", "error":
		return toneBad
	}
	return toneOff
}

// health returns the style of a health or state word.
func (s styles) health(h string) lipgloss.Style { return s.tone(healthTone(h)) }

// event returns the style of an event type, as `orchestro events` colours
// them.
func (s styles) event(typ string) lipgloss.Style {
	switch typ {
	case "healthy", "started":
		return s.ok
	case "unhealthy", "ejected", "exited", "crashloop", "error", "flow_failed":
		return s.bad
	case "scaled", "replaced", "updated", "compensated":
		return s.warn
	}
	return lipgloss.NewStyle()
}
