package api

import (
	"time"
)

// UpOptions are the flags of `up` the runtime needs.
type UpOptions struct {
	Wait          bool
	WaitTimeout   time.Duration
	Build         BuildPolicy
	RemoveOrphans bool
	GatewayImage  string
	// Progress receives the steps of the operation (builds, creation,
	// waiting); nil discards them.
	Progress Progress
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
}
