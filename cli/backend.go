package cli

import (
	"context"
	"time"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// Backend is everything the command line asks of the runtime. It is
// declared here, where it is consumed, so commands are tested against a
// fake and the cli package never imports a Docker package.
type Backend interface {
	// Up builds images, creates networks and gateways, and hands each
	// gateway its cell spec. It returns once the gateways accepted it; with
	// opts.Wait it returns once every replica is healthy and routable.
	Up(ctx context.Context, p *cellspec.Project, opts api.UpOptions) error
	// Down removes the project's gateways, then replicas, then networks
	// (and volumes with opts.Volumes). It is idempotent.
	Down(ctx context.Context, project string, opts api.DownOptions) error
	// Status asks every gateway of the project for its cell's status.
	Status(ctx context.Context, project string) (*api.ProjectStatus, error)
	// Scale sets the replica count of a service through its gateway.
	Scale(ctx context.Context, project, cell, service string, replicas int) error
	// Restart asks a gateway for a rolling restart of one or every service.
	Restart(ctx context.Context, project, cell, service string) error
	// Wait waits until the services only names (every service when it is
	// empty) have their desired replicas ready and routable, with no
	// rolling update or restart under way. It fails with api.ErrWaitTimeout
	// after timeout, and with api.ErrUnhealthy as soon as one of them
	// cannot start or crash-loops.
	Wait(ctx context.Context, project string, only []api.ServiceRef, timeout time.Duration, progress api.Progress) error
	// Images builds or finds the project's images, as Up does, and names
	// them in opts.Registry (pushing them there with opts.Push); export
	// uses it.
	Images(ctx context.Context, p *cellspec.Project, opts api.ImageOptions) (api.ProjectImages, error)
	// Watch brings the project up to date, as Up does, then rebuilds and
	// rolls the services whose files change (or syncs or restarts them,
	// as their develop.watch says) until ctx ends, reporting one line per
	// step on opts.Progress and carrying on after a failed build. It
	// returns nil when ctx ends, and an error when it cannot start.
	Watch(ctx context.Context, p *cellspec.Project, opts api.UpOptions) error
	// Logs writes replica (and gateway) log lines to sink until ctx ends or,
	// without opts.Follow, until the logs are exhausted.
	Logs(ctx context.Context, project string, opts api.LogOptions, sink func(api.LogLine)) error
	// Exec runs a command in a running replica (or a gateway) attached to
	// opts' streams and returns its exit code.
	Exec(ctx context.Context, project string, opts api.ExecOptions) (int, error)
	// Events writes the controller events of every gateway to sink.
	Events(ctx context.Context, project string, follow bool, sink func(api.Event)) error
	// Executions lists the flow executions f keeps, of every running
	// gateway or of one cell's, each with its cell, the most recently
	// started first and at most f.Limit of them. Across the project, a
	// gateway that cannot answer or has no flows is passed over.
	Executions(ctx context.Context, project, cell string, f api.ExecutionFilter) ([]api.ExecutionSummary, error)
	// Execution returns one execution by its full id, from the gateway of
	// cell or, when cell is empty, from whichever gateway has it; nil and
	// no error when none has it.
	Execution(ctx context.Context, project, cell, id string) (*api.Execution, error)
	// RetryExecution starts a new execution with the input of execution
	// id, on the gateway of cell or, when cell is empty, on the one that
	// has it. The gateway refuses while the execution runs.
	RetryExecution(ctx context.Context, project, cell, id string) (api.RetryResult, error)
}
