package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// progressPrinter renders the steps of up and down on stderr. On a
// terminal, running steps are live lines at the bottom, each with a spinner
// and its time so far, redrawn in place; a finished step becomes a
// permanent line above them. Elsewhere (CI logs, files) every start and end
// is one plain line, and nothing is ever redrawn.
type progressPrinter struct {
	w    io.Writer
	pal  Palette
	live bool
	now  func() time.Time

	mu      sync.Mutex
	steps   []*progressStep // running, in start order
	drawn   int             // live lines currently on screen
	frame   int
	stop    chan struct{}
	stopped sync.WaitGroup
}

type progressStep struct {
	id, text string
	started  time.Time
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// newProgressPrinter returns a printer for ios's stderr; Close it when the
// operation ends.
func newProgressPrinter(ios *IOStreams, now func() time.Time) *progressPrinter {
	p := &progressPrinter{w: ios.ErrOut, pal: ios.Palette(ios.ColorErr()), live: ios.IsStderrTTY(), now: now}
	if p.live {
		p.stop = make(chan struct{})
		p.stopped.Add(1)
		go p.animate()
	}
	return p
}

// animate redraws the live lines ten times a second until Close.
func (p *progressPrinter) animate() {
	defer p.stopped.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.frame++
			p.redrawLocked("")
			p.mu.Unlock()
		}
	}
}

// Start implements api.Progress.
func (p *progressPrinter) Start(id, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.steps {
		if s.id == id {
			if s.text != text {
				s.text = text
				if !p.live {
					fmt.Fprintf(p.w, "%s %s\n", p.pal.Dim("…"), text)
				}
			}
			return
		}
	}
	p.steps = append(p.steps, &progressStep{id: id, text: text, started: p.now()})
	if p.live {
		p.redrawLocked("")
		return
	}
	fmt.Fprintf(p.w, "%s %s\n", p.pal.Dim("…"), text)
}

// Done implements api.Progress.
func (p *progressPrinter) Done(id, text string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var took time.Duration
	for i, s := range p.steps {
		if s.id == id {
			took = p.now().Sub(s.started)
			p.steps = append(p.steps[:i], p.steps[i+1:]...)
			break
		}
	}
	line := p.pal.Green("✔") + " " + text
	if err != nil {
		line = p.pal.Red("✘") + " " + text + ": " + firstLine(err.Error())
	}
	if took >= 100*time.Millisecond {
		line += " " + p.pal.Dim(took.Round(100*time.Millisecond).String())
	}
	p.emitLocked(line)
}

// Note implements api.Progress.
func (p *progressPrinter) Note(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if strings.HasPrefix(text, "warning: ") {
		text = p.pal.Yellow("warning:") + strings.TrimPrefix(text, "warning:")
	}
	p.emitLocked(text)
}

// emitLocked prints a permanent line, above the live ones on a terminal.
func (p *progressPrinter) emitLocked(line string) {
	if !p.live {
		fmt.Fprintln(p.w, line)
		return
	}
	p.redrawLocked(line)
}

// redrawLocked rewrites the live block in place, printing perm (if any)
// where it began, so permanent lines scroll up and live ones stay last.
func (p *progressPrinter) redrawLocked(perm string) {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	if perm != "" {
		b.WriteString("\r\x1b[2K")
		b.WriteString(perm)
		b.WriteByte('\n')
	}
	now := p.now()
	for _, s := range p.steps {
		b.WriteString("\r\x1b[2K")
		b.WriteString(p.pal.Yellow(spinner[p.frame%len(spinner)]))
		b.WriteByte(' ')
		b.WriteString(s.text)
		b.WriteByte(' ')
		b.WriteString(p.pal.Dim(now.Sub(s.started).Round(100 * time.Millisecond).String()))
		b.WriteByte('\n')
	}
	// Lines left over from a taller block are cleared.
	for i := len(p.steps); i < p.drawn-boolInt(perm != ""); i++ {
		b.WriteString("\r\x1b[2K\n")
	}
	extra := p.drawn - boolInt(perm != "") - len(p.steps)
	if extra > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", extra)
	}
	p.drawn = len(p.steps)
	io.WriteString(p.w, b.String())
}

// Close stops the animation and leaves the cursor below the last line.
func (p *progressPrinter) Close() {
	if p.live {
		close(p.stop)
		p.stopped.Wait()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live && p.drawn > 0 {
		// Steps still running when the operation ended stay visible.
		p.steps = nil
		p.drawn = 0
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

var _ api.Progress = (*progressPrinter)(nil)
