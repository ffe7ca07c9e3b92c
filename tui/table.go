package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// column describes one column of a pane's table.
type column struct {
	title string
	right bool // numbers are right-aligned
	// flex columns (names) shrink to min with an ellipsis when space is
	// short; the others keep their natural width or are dropped.
	flex bool
	min  int
	max  int // the widest the column gets; 0 means no limit
	// drop orders the columns to leave out when the terminal is too narrow:
	// the highest goes first.
	drop int
}

// cell is one table cell: its text and the tone it is shown in when its
// row is not the focused selection.
type cell struct {
	text string
	tone tone
}

// plain returns a cell without style.
func plain(s string) cell { return cell{text: s} }

const (
	colGap    = 2
	markWidth = 2
)

// layoutColumns decides which columns fit in width and how wide each is:
// the width of each kept column, 0 for a dropped one.
func layoutColumns(cols []column, rows [][]cell, width int) []int {
	natural := make([]int, len(cols))
	for i, c := range cols {
		w := textWidth(c.title)
		for _, r := range rows {
			if i < len(r) {
				w = max(w, textWidth(r[i].text))
			}
		}
		if c.max > 0 {
			w = min(w, c.max)
		}
		natural[i] = w
	}
	least := func(i int) int {
		if cols[i].flex && cols[i].min > 0 {
			return min(natural[i], cols[i].min)
		}
		return natural[i]
	}
	order := make([]int, len(cols))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(cols[a].drop, cols[b].drop) })

	// Columns get their natural width in order of importance; a flex
	// column that does not fit takes what is left if that is at least its
	// minimum; the others are dropped.
	widths := make([]int, len(cols))
	left := width - markWidth
	for _, i := range order {
		gap := 0
		if left < width-markWidth {
			gap = colGap
		}
		room := left - gap
		switch {
		case natural[i] <= room:
			widths[i] = natural[i]
		case cols[i].flex && least(i) <= room:
			widths[i] = room
		default:
			continue
		}
		left = room - widths[i]
	}
	return widths
}

// renderTable draws a header line and the rows from offset on, at most
// height of them. The selected row (sel, an index into rows) carries a
// marker, and, when the pane has focus, reverse video across the row.
func renderTable(st styles, cols []column, rows [][]cell, width, height, offset, sel int, focused bool) []string {
	widths := layoutColumns(cols, rows, width)
	lines := make([]string, 0, height+1)

	var head strings.Builder
	head.WriteString(strings.Repeat(" ", markWidth))
	first := true
	for i, c := range cols {
		if widths[i] == 0 {
			continue
		}
		if !first {
			head.WriteString(strings.Repeat(" ", colGap))
		}
		first = false
		head.WriteString(fit(c.title, widths[i], c.right))
	}
	lines = append(lines, st.colHeader.Render(strings.TrimRight(head.String(), " ")))

	last := -1
	for i := range cols {
		if widths[i] > 0 {
			last = i
		}
	}
	for ri := offset; ri < len(rows) && ri < offset+height; ri++ {
		bar := ri == sel && focused
		var b strings.Builder
		first := true
		for i, c := range cols {
			if widths[i] == 0 {
				continue
			}
			if !first {
				b.WriteString(strings.Repeat(" ", colGap))
			}
			first = false
			var cl cell
			if i < len(rows[ri]) {
				cl = rows[ri][i]
			}
			var text string
			switch {
			case i == last && !c.right && !bar:
				// No trailing blanks after the last column.
				text = clip(cl.text, widths[i])
			default:
				text = fit(cl.text, widths[i], c.right)
			}
			if !bar && cl.tone != toneNone {
				text = st.tone(cl.tone).Render(text)
			}
			b.WriteString(text)
		}
		mark := "  "
		if ri == sel {
			mark = st.marker.Render("▸ ")
		}
		row := b.String()
		if bar {
			row = st.selected.Render(row)
		}
		lines = append(lines, mark+row)
	}
	return lines
}

// scrollTo returns the offset that keeps row sel visible in a window of
// height rows, moving the old offset as little as possible.
func scrollTo(offset, sel, height, total int) int {
	if height <= 0 {
		return 0
	}
	if sel < offset {
		offset = sel
	}
	if sel >= offset+height {
		offset = sel - height + 1
	}
	return max(0, min(offset, total-height))
}

// paneTitle is the first line of a pane: its name (reversed when the pane
// has focus), some information, a rule, and something on the right.
func paneTitle(st styles, title, info, right string, width int, focused bool) string {
	t := st.paneTitle.Render(" " + title + " ")
	if focused {
		t = st.paneTitleFocused.Render(" " + title + " ")
	}
	left := t
	if info != "" {
		left += " " + info
	}
	lw, rw := ansi.StringWidth(left), ansi.StringWidth(right)
	if right != "" && lw+rw+2 <= width {
		return left + " " + st.rule.Render(strings.Repeat("─", width-lw-rw-2)) + " " + right
	}
	left = clip(left, width)
	if fill := width - ansi.StringWidth(left) - 1; fill > 0 {
		return left + " " + st.rule.Render(strings.Repeat("─", fill))
	}
	return left
}

// rangeInfo says which rows a scrolled table shows ("4–9 of 20"), or
// nothing when all of them fit.
func rangeInfo(offset, height, total int) string {
	if total <= height || height <= 0 {
		return ""
	}
	return fmt.Sprintf("%d–%d of %d", offset+1, min(offset+height, total), total)
}

// textWidth is the width of plain text, quick for ASCII, which most cells
// are.
func textWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return ansi.StringWidth(s)
		}
	}
	return len(s)
}
