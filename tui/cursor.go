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
	if delta, ok := c.step(k, msg, n); ok {
		c.move(delta, n)
	}
}

// step is how far a movement key moves the selection over n rows, for a
// pane that moves it itself; ok is false for any other key.
func (c *listCursor) step(k keyMap, msg tea.KeyPressMsg, n int) (delta int, ok bool) {
	switch {
	case key.Matches(msg, k.Up):
		return -1, true
	case key.Matches(msg, k.Down):
		return 1, true
	case key.Matches(msg, k.PageUp):
		return -max(1, c.height), true
	case key.Matches(msg, k.PageDown):
		return max(1, c.height), true
	case key.Matches(msg, k.Top):
		return -n, true
	case key.Matches(msg, k.Bottom):
		return n, true
	}
	return 0, false
}
