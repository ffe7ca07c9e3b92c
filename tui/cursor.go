package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// listCursor is the selection and scroll position of a pane that lists
// rows, with the pane's size. The pane owns the rows: each method that
// needs their count takes it as n.
type listCursor struct {
	sel, offset   int
	width, height int
}

// setSize resizes the pane, keeping the selection in view.
func (c *listCursor) setSize(width, height, n int) {
	c.width, c.height = width, height
	c.clamp(n)
}

// clamp scrolls so the selection is in view and no room is left below
// the last of n rows.
func (c *listCursor) clamp(n int) {
	c.offset = scrollTo(c.offset, c.sel, c.height, n)
}

// move moves the selection by delta, within n rows.
func (c *listCursor) move(delta, n int) {
	if n == 0 {
		return
	}
	c.sel = max(0, min(n-1, c.sel+delta))
	c.clamp(n)
}

// navigate handles the movement keys over n rows.
func (c *listCursor) navigate(k keyMap, msg tea.KeyPressMsg, n int) {
	switch {
	case key.Matches(msg, k.Up):
		c.move(-1, n)
	case key.Matches(msg, k.Down):
		c.move(1, n)
	case key.Matches(msg, k.PageUp):
		c.move(-max(1, c.height), n)
	case key.Matches(msg, k.PageDown):
		c.move(max(1, c.height), n)
	case key.Matches(msg, k.Top):
		c.move(-n, n)
	case key.Matches(msg, k.Bottom):
		c.move(n, n)
	}
}
