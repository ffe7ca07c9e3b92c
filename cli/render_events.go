package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/tui"
)

// eventPrinter writes controller events, one per line, as text or as
// NDJSON (one api.Event object per line). It is safe for concurrent use.
type eventPrinter struct {
	mu   sync.Mutex
	w    io.Writer
	pal  Palette
	json bool
	err  error
}

// Print writes one event. The first write error is kept for Err.
func (p *eventPrinter) Print(e api.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	if p.json {
		enc := json.NewEncoder(p.w)
		enc.SetEscapeHTML(false)
		p.err = enc.Encode(e)
		return
	}
	_, p.err = io.WriteString(p.w, formatEvent(e, p.pal)+"\n")
}

// Err returns the first write error.
func (p *eventPrinter) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// formatEvent renders an event as one line of text, for example
//
//	2026-11-22T10:00:00Z shop/orders scaled 1 → 3: inflight 23.5/replica > target 10
func formatEvent(e api.Event, pal Palette) string {
	var b strings.Builder
	b.WriteString(pal.Dim(e.Time.UTC().Format(time.RFC3339)))
	b.WriteByte(' ')
	b.WriteString(tui.EventSubject(e))
	b.WriteByte(' ')
	b.WriteString(eventColor(pal, e.Type))
	if e.Type == api.EventScaled {
		fmt.Fprintf(&b, " %d → %d", e.From, e.To)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

func eventColor(pal Palette, typ string) string {
	switch typ {
	case api.EventHealthy, api.EventStarted:
		return pal.Green(typ)
	case api.EventUnhealthy, api.EventEjected, api.EventPanic, api.EventExited, api.EventCrashloop, api.EventError,
		api.EventFlowFailed:
		return pal.Red(typ)
	case api.EventScaled, api.EventReplaced, api.EventUpdated, api.EventCompensated:
		return pal.Yellow(typ)
	}
	return typ
}
