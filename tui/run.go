package tui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
)

// Timeouts of the calls the dashboard makes.
const (
	statusTimeout = 5 * time.Second
	actionTimeout = 15 * time.Second
	// retryAfter is how long a stream that ended (a gateway went away)
	// waits before it starts again.
	retryAfter = 2 * time.Second
)

// deps is what every part of the model shares: the source, the clock and
// the lifetime of the work it starts.
type deps struct {
	// ctx is the program's lifetime. bubbletea's Update has no context
	// parameter, so the model keeps the one it was built with to derive
	// the contexts of the calls and streams it starts; Run cancels it when
	// the program ends and then waits on wg for every goroutine started.
	ctx context.Context
	wg  *sync.WaitGroup
	src Source

	refresh time.Duration
	now     func() time.Time
	loc     *time.Location
}

// do runs fn in a goroutine tracked by wg and returns a command that
// waits for its message. fn gets a context bounded by timeout and by the
// program's lifetime.
func (d *deps) do(timeout time.Duration, fn func(ctx context.Context) tea.Msg) tea.Cmd {
	ch := make(chan tea.Msg, 1)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(d.ctx, timeout)
		defer cancel()
		ch <- fn(ctx)
	}()
	return func() tea.Msg {
		select {
		case msg := <-ch:
			return msg
		case <-d.ctx.Done():
			return nil
		}
	}
}

// Run shows the dashboard until the user quits or ctx ends. Every
// goroutine it starts has ended when it returns.
func Run(ctx context.Context, src Source, opts Options) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	m := newModel(ctx, &wg, src, opts)
	// 30 frames a second is plenty for a dashboard, and half the idle
	// wake-ups of the default.
	popts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithFPS(30)}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		popts = append(popts, tea.WithOutput(opts.Output))
	}
	if opts.NoColor {
		popts = append(popts, tea.WithColorProfile(colorprofile.ASCII))
	}
	_, err := tea.NewProgram(m, popts...).Run()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil, errors.Is(err, tea.ErrInterrupted):
		// SIGINT or SIGTERM, through the caller's context or bubbletea's
		// own handler: the user's way to leave, not a failure.
		return nil
	}
	return fmt.Errorf("dashboard: %w", err)
}
