package tui

import (
	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
)

// keyMap is every key binding of the dashboard. It implements help.KeyMap:
// ShortHelp is the one-line help bar, FullHelp the `?` overlay.
type keyMap struct {
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Top      key.Binding
	Bottom   key.Binding
	Enter    key.Binding
	Tab      key.Binding
	ShiftTab key.Binding
	Flows    key.Binding // F (f follows the logs): to the flows pane and back, as l is to the logs
	Esc      key.Binding

	ScaleUp   key.Binding
	ScaleDown key.Binding
	SetScale  key.Binding
	Restart   key.Binding

	Logs       key.Binding
	Follow     key.Binding
	Wrap       key.Binding
	Timestamps key.Binding
	Filter     key.Binding

	Help key.Binding
	Quit key.Binding

	// scale only shows "+/-" in the help bar; ScaleUp and ScaleDown match.
	scale key.Binding
}

var _ help.KeyMap = keyMap{}

func defaultKeys() keyMap {
	return keyMap{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+u"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+d"), key.WithHelp("pgdn", "page down")),
		Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g/home", "top")),
		Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G/end", "bottom")),
		Enter:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open replicas / logs")),
		Tab:      key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next pane")),
		ShiftTab: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous pane")),
		Flows:    key.NewBinding(key.WithKeys("F"), key.WithHelp("F", "flows pane")),
		Esc:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back / cancel")),

		ScaleUp:   key.NewBinding(key.WithKeys("+", "="), key.WithHelp("+", "add a replica")),
		ScaleDown: key.NewBinding(key.WithKeys("-", "_"), key.WithHelp("-", "remove a replica")),
		SetScale:  key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "set replica count")),
		Restart:   key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "rolling restart")),

		Logs:       key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "full-screen logs")),
		Follow:     key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "follow on/off")),
		Wrap:       key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "wrap on/off")),
		Timestamps: key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "timestamps on/off")),
		Filter:     key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter logs")),

		Help: key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit: key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),

		scale: key.NewBinding(key.WithKeys("+", "-"), key.WithHelp("+/-", "scale")),
	}
}

// ShortHelp is the help bar while a table has focus.
func (k keyMap) ShortHelp() []key.Binding { return k.shortFor(paneServices) }

// shortFor is the help bar for the pane with focus: the keys that act
// there, with short descriptions so they fit 80 columns.
func (k keyMap) shortFor(p pane) []key.Binding {
	common := []key.Binding{brief(k.Help, "help"), brief(k.Tab, "pane")}
	switch p {
	case paneEvents:
		return append(common, brief(k.Up, "scroll"), brief(k.Logs, "logs"), brief(k.Quit, "quit"))
	case paneFlows:
		return append(common, brief(k.Up, "up"), brief(k.Down, "down"), brief(k.Enter, "timeline"),
			brief(k.Flows, "back"), brief(k.Logs, "logs"), brief(k.Quit, "quit"))
	case paneLogs:
		return append(common, brief(k.Follow, "follow"), brief(k.Wrap, "wrap"), brief(k.Timestamps, "time"),
			brief(k.Filter, "filter"), brief(k.Logs, "zoom"), brief(k.Esc, "back"), brief(k.Quit, "quit"))
	}
	return append(common, brief(k.Enter, "open"), k.scale, brief(k.SetScale, "set"), brief(k.Restart, "restart"),
		brief(k.Logs, "logs"), brief(k.Filter, "filter"), brief(k.Quit, "quit"))
}

// brief is b with a shorter description.
func brief(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

// FullHelp is the `?` overlay, one column per group.
func (k keyMap) FullHelp() [][]key.Binding {
	groups := k.groups()
	out := make([][]key.Binding, len(groups))
	for i, g := range groups {
		out[i] = g.keys
	}
	return out
}

// helpGroup is a titled column of the `?` overlay.
type helpGroup struct {
	title string
	keys  []key.Binding
}

func (k keyMap) groups() []helpGroup {
	return []helpGroup{
		{"Move", []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}},
		{"Panes", []key.Binding{k.Tab, k.ShiftTab, k.Enter, k.Flows, k.Esc, k.Help, k.Quit}},
		{"Service", []key.Binding{k.ScaleUp, k.ScaleDown, k.SetScale, k.Restart}},
		{"Logs", []key.Binding{k.Logs, k.Follow, k.Wrap, k.Timestamps, k.Filter}},
	}
}
