package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// gatewayService is the service name log lines and arguments use for a
// cell's gateway (its access log).
const gatewayService = "gateway"

// prefixColors are the 256-colour palette entries given to log prefixes in
// turn; the basic and bright colours read well on dark and light terminals.
var prefixColors = [...]int{6, 5, 2, 3, 4, 14, 13, 10, 11, 12}

// logPrinter writes log lines from many replicas to one stream, each behind
// a `cell/service-n │ ` prefix padded to a common width, with one colour per
// prefix when colour is on. It is safe for concurrent use, because a Backend
// may call its sink from one goroutine per container.
type logPrinter struct {
	mu         sync.Mutex
	w          io.Writer
	pal        Palette
	timestamps bool
	width      int
	colors     map[string]int
}

// newLogPrinter returns a printer writing to w. known lists the prefixes
// expected up front, so lines line up from the first one; a longer prefix
// seen later widens the column from then on.
func newLogPrinter(w io.Writer, color, timestamps bool, known []string) *logPrinter {
	p := &logPrinter{w: w, pal: Palette{on: color}, timestamps: timestamps, colors: map[string]int{}}
	for _, k := range known {
		p.width = max(p.width, utf8.RuneCountInString(k))
	}
	return p
}

// Print writes one log line. A line holding several lines of text is
// written as several prefixed lines. The kept output of a replica that
// exited says so in its prefix: "shop/catalog-2 (exited 1)".
func (p *logPrinter) Print(l api.LogLine) {
	prefix := logPrefix(l.Cell, l.Service, l.Replica)
	if l.Exited != "" {
		prefix += " (" + l.Exited + ")"
	}
	text := strings.TrimRight(l.Text, "\r\n")

	p.mu.Lock()
	defer p.mu.Unlock()
	p.width = max(p.width, utf8.RuneCountInString(prefix))
	c, ok := p.colors[prefix]
	if !ok {
		c = prefixColors[len(p.colors)%len(prefixColors)]
		p.colors[prefix] = c
	}
	head := p.pal.Color(c, pad(prefix, p.width)+" │") + " "
	if p.timestamps {
		head += l.Time.UTC().Format(time.RFC3339Nano) + " "
	}
	var b strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		b.WriteString(head)
		b.WriteString(strings.TrimSuffix(line, "\r"))
		b.WriteByte('\n')
	}
	// A sink cannot return an error; a broken stdout shows up soon enough
	// as the command's own error or a SIGPIPE.
	_, _ = io.WriteString(p.w, b.String())
}

// logPrefix names the container a line comes from: cell/service-n for a
// replica, cell/gateway for a gateway.
func logPrefix(cell, service string, replica int) string {
	if service == gatewayService || replica <= 0 {
		return cell + "/" + service
	}
	return cell + "/" + service + "-" + strconv.Itoa(replica)
}

// knownPrefixes lists the longest prefix of every service of p selected by
// cell and service (empty selects all), so a log column is wide enough from
// the first line. Gateways are included only when selected by name.
func knownPrefixes(p *cellspec.Project, cell, service string) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, c := range p.Cells {
		if cell != "" && c.Name != cell {
			continue
		}
		if service == gatewayService {
			out = append(out, logPrefix(c.Name, gatewayService, 0))
			continue
		}
		for _, name := range c.ServiceNames() {
			if service != "" && name != service {
				continue
			}
			s := c.Services[name]
			n := max(s.Replicas, 1)
			if s.Autoscale != nil {
				n = max(n, s.Autoscale.Max)
			}
			out = append(out, logPrefix(c.Name, name, n))
		}
	}
	return out
}

// pad right-pads s with spaces to width runes.
func pad(s string, width int) string {
	if n := utf8.RuneCountInString(s); n < width {
		return s + strings.Repeat(" ", width-n)
	}
	return s
}

// parseSince reads --since: a duration back from now ("10m") or an RFC 3339
// time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %s: the duration must not be negative", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q is neither a duration (10m, 1h30m) nor an RFC 3339 time (2026-11-22T10:00:00Z)", s)
}

// parseTail reads --tail: "all" or a non-negative line count. All is -1, as
// api.LogOptions wants it.
func parseTail(s string) (int, error) {
	if s == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || !isDigits(s) {
		return 0, fmt.Errorf("--tail %q must be \"all\" or a non-negative number of lines", s)
	}
	return n, nil
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
