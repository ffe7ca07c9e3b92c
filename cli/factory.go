package cli

import (
	"context"
	"os"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// Factory is the only way commands reach the world. Its fields are lazy
// functions, so a command that does not need the Docker engine never
// connects to it, and tests substitute fakes.
type Factory struct {
	IO *IOStreams
	// Backend connects to the runtime. It is called at most once per
	// command, and only by commands that need the engine.
	Backend func(ctx context.Context) (Backend, error)
	// Getwd returns the working directory specs are found from.
	Getwd func() (string, error)
	// Env resolves ${VAR} in specs.
	Env cellspec.Env
	// Now is the clock.
	Now func() time.Time
	// Build describes this binary.
	Build BuildInfo
	// Gateway runs the hidden `gateway` command inside a gateway container.
	Gateway func(ctx context.Context, args []string) error
}

// BuildInfo is set by the linker (see .goreleaser.yaml).
type BuildInfo struct {
	Version string
	Commit  string
	Date    string
}

// NewFactory returns a factory bound to the process.
func NewFactory(build BuildInfo, backend func(ctx context.Context) (Backend, error)) *Factory {
	return &Factory{
		IO:      System(),
		Backend: backend,
		Getwd:   os.Getwd,
		Env:     cellspec.OSEnv(),
		Now:     time.Now,
		Build:   build,
	}
}
