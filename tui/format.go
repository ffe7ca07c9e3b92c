package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// none stands in for a value that is unknown or not reported.
const none = "–"

// fmtRate formats requests per second.
func fmtRate(v float64) string {
	switch {
	case v <= 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v < 10000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v/1000, 'f', 1, 64) + "k"
}

// fmtNumber formats a metric value: whole numbers without decimals.
func fmtNumber(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// fmtAge formats how long ago t was, in at most two units.
func fmtAge(now, t time.Time) string {
	if t.IsZero() {
		return none
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// orNone returns s, or none when s is empty.
func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

// fit pads or truncates a styled string to exactly width cells.
func fit(s string, width int, right bool) string {
	if width <= 0 {
		return ""
	}
	w := ansi.StringWidth(s)
	if w > width {
		return ansi.Truncate(s, width, "…")
	}
	if right {
		return strings.Repeat(" ", width-w) + s
	}
	return s + strings.Repeat(" ", width-w)
}

// clip truncates a styled string to at most width cells.
func clip(s string, width int) string {
	if ansi.StringWidth(s) <= width {
		return s
	}
	return ansi.Truncate(s, width, "…")
}

// sanitize makes text from a container safe to draw: no escape sequences,
// tabs as spaces, no other control characters.
func sanitize(s string) string {
	s = ansi.Strip(strings.TrimRight(s, "\r\n"))
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteString("    ")
		case isControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// padLines returns exactly height lines: lines cut or padded with empty
// ones, so each pane keeps its place on the screen.
func padLines(lines []string, height int) []string {
	if height <= 0 {
		return nil
	}
	if len(lines) > height {
		return lines[:height]
	}
	for len(lines) < height {
		lines = append(lines, "")
	}
	return lines
}

// fmtMillis formats a latency in milliseconds: "850µs", "12ms", "1.2s".
func fmtMillis(ms float64) string {
	switch {
	case ms < 1:
		return strconv.FormatFloat(ms*1000, 'f', 0, 64) + "µs"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
}

// fmtBytes formats a memory size in binary units: "512K", "38M", "1.2G".
func fmtBytes(b uint64) string {
	const k = 1024
	switch {
	case b < k*k:
		return strconv.FormatUint(b/k, 10) + "K"
	case b < k*k*k:
		return strconv.FormatUint(b/(k*k), 10) + "M"
	}
	return strconv.FormatFloat(float64(b)/(k*k*k), 'f', 1, 64) + "G"
}
