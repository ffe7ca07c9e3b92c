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
	// Progress receives human-readable progress lines (builds, creation,
	// waiting).
	Progress io.Writer
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
	Timeout time.Duration
	// Progress receives human-readable progress lines.
	Progress io.Writer
}

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
