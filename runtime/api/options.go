package api

import (
	"io"
	"time"
)

// UpOptions are the flags of `up` the runtime needs.
type UpOptions struct {
	Wait          bool
	WaitTimeout   time.Duration
	Build         BuildPolicy
	RemoveOrphans bool
	GatewayImage  string
	// Target is where to deploy: TargetDocker, TargetSwarm, or "" for the
	// project file's target, else where the project runs, else the local
	// engine.
	Target string
	// Registry ("HOST[:PORT][/PREFIX]"), on a swarm, is where built images
	// are pushed for the nodes to pull; they are deployed by digest.
	Registry string
	// Progress receives the steps of the operation (builds, creation,
	// waiting); nil discards them.
	Progress Progress
}

// ImageOptions are the inputs of Images.
type ImageOptions struct {
	Build        BuildPolicy
	GatewayImage string
	// Registry ("HOST[:PORT][/PREFIX]"), when set, is where the images
	// are named: the built ones as REGISTRY/<name>:<content hash>.
	Registry string
	// Push pushes the built images to Registry.
	Push bool
	// Progress receives the builds and pushes; nil discards them.
	Progress Progress
}

// ProjectImages names the images a project runs: the gateway's and each
// service's, by cell and service.
type ProjectImages struct {
	Gateway  string
	Services map[string]map[string]string
}

// BuildPolicy says when service images are built.
type BuildPolicy int

// Build policies: build what is missing or changed (default), always
// rebuild, never build.
const (
	BuildMissing BuildPolicy = iota
	BuildAlways
	BuildNever
)

// DownOptions are the flags of `down`.
type DownOptions struct {
	Volumes bool
	// Images also removes the images orchestro built for the project.
	Images  bool
	Timeout time.Duration
	// Progress receives the steps of the operation; nil discards them.
	Progress Progress
}

// Progress receives what a long operation is doing, step by step, so the
// command line can show live lines on a terminal and plain lines
// otherwise, as docker compose does. Calls may come from several
// goroutines.
type Progress interface {
	// Start begins step id, or updates its text while it runs.
	Start(id, text string)
	// Done ends step id; err is nil when it succeeded.
	Done(id, text string, err error)
	// Note reports something that is not a step: a warning, a summary.
	Note(text string)
}

// Discard is a Progress that reports nothing.
type Discard struct{}

// Start implements Progress.
func (Discard) Start(id, text string) {}

// Done implements Progress.
func (Discard) Done(id, text string, err error) {}

// Note implements Progress.
func (Discard) Note(text string) {}

// LogOptions select log lines.
type LogOptions struct {
	Cell    string
	Service string
	// Replica selects one replica of Service by number; 0 selects all.
	Replica int
	Follow  bool
	Tail    int // negative: all
	Since   time.Time
}

// LogLine is one line of a container's output.
type LogLine struct {
	Cell    string
	Service string // "gateway" for a gateway's access log
	Replica int    // 0 for a gateway
	Time    time.Time
	Stderr  bool
	Text    string
	// Exited is set on the kept output of a replica that exited and was
	// removed, and says how it ended: "exited 1", "never started".
	Exited string
}

// ExecOptions are the inputs of Exec: a command to run in one running
// replica (or in the cell's gateway, for Service "gateway").
type ExecOptions struct {
	Cell    string
	Service string
	// Replica selects the replica by number; 0 selects the lowest-numbered
	// running one.
	Replica int
	Cmd     []string
	// Env, User and WorkDir are the command's environment additions
	// (NAME=value), user and working directory; empty ones are the
	// container's.
	Env     []string
	User    string
	WorkDir string
	// TTY gives the command a terminal of Height rows and Width columns;
	// Resize delivers later sizes (rows, columns) until it is closed.
	TTY           bool
	Height, Width uint
	Resize        <-chan [2]uint
	// Stdin, when set, is copied to the command's input, which is closed
	// at its end. Stdout receives the output (with a TTY, both streams).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ServiceRef names one service of a cell, or the whole cell when Service
// is empty.
type ServiceRef struct {
	Cell    string
	Service string
}
