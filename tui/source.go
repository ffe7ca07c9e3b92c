package tui

import (
	"context"
	"io"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// Source is everything the dashboard asks of a running project. It is
// declared here, where it is consumed, so the dashboard is tested against a
// fake and never depends on the command line or on Docker. Every method
// acts on one project, bound by whoever implements it.
type Source interface {
	// Status is a snapshot of every cell of the project.
	Status(ctx context.Context) (*api.ProjectStatus, error)
	// Events writes controller events to sink; with follow it keeps doing
	// so until ctx ends.
	Events(ctx context.Context, follow bool, sink func(api.Event)) error
	// Logs writes the log lines opts selects to sink; with opts.Follow it
	// keeps doing so until ctx ends.
	Logs(ctx context.Context, opts api.LogOptions, sink func(api.LogLine)) error
	// Scale sets the replica count of a service.
	Scale(ctx context.Context, cell, service string, replicas int) error
	// Restart restarts a service one replica at a time.
	Restart(ctx context.Context, cell, service string) error
	// Executions lists the flow executions of one cell that f keeps, the
	// most recently started first.
	Executions(ctx context.Context, cell string, f api.ExecutionFilter) ([]api.ExecutionSummary, error)
	// Execution returns one execution of a cell with its timeline; nil
	// and no error when the cell has no execution of that id.
	Execution(ctx context.Context, cell, id string) (*api.Execution, error)
}

// DefaultRefresh is how often the dashboard asks for a new snapshot.
const DefaultRefresh = time.Second

// Options configure the dashboard.
type Options struct {
	// Project names the project in the header until the first snapshot
	// arrives.
	Project string
	// Refresh is the polling interval; zero means DefaultRefresh.
	Refresh time.Duration
	// Initial is a snapshot already taken, shown at once.
	Initial *api.ProjectStatus
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Location is the time zone of displayed times; nil means time.Local.
	Location *time.Location

	// Input and Output are the terminal Run uses; nil means the process's
	// own.
	Input  io.Reader
	Output io.Writer
	// NoColor renders without colour (bold and reverse video remain), as
	// NO_COLOR asks.
	NoColor bool
}

func (o Options) withDefaults() Options {
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	return o
}
