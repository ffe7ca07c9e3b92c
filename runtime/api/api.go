package api

import (
	"errors"
	"time"
)

// Admin API paths, served by every gateway on its admin port.
const (
	PathStatus  = "/v1/status"
	PathEvents  = "/v1/events"  // GET; ?follow=1 streams NDJSON
	PathScale   = "/v1/scale"   // POST ScaleRequest; needs the token
	PathRestart = "/v1/restart" // POST RestartRequest; needs the token
	PathSpec    = "/v1/spec"    // PUT a new cell spec; needs the token
	PathStop    = "/v1/stop"    // POST: drain every replica, create none; needs the token
	// PathAccessLog serves the access log a gateway keeps in files, as
	// NDJSON: GET with ?tail=N, ?since=<RFC 3339> and ?follow=1; needs
	// the token.
	PathAccessLog = "/v1/access-log"
	PathMetrics   = "/metrics"
	PathHealth    = "/healthz"

	// TokenHeader carries the project token: "Authorization: Bearer <token>".
	TokenHeader = "Authorization"
	// CellHeader names the cell whose gateway the caller means to reach.
	// Admin addresses are ports the engine hands out anew when a gateway
	// starts, so one read a moment ago may have passed to another
	// gateway since: that one answers 421 Misdirected Request rather
	// than act, or answer, for a cell it is not.
	CellHeader = "X-Orchestro-Cell"
)

// Errors the command line branches on.
var (
	// ErrWaitTimeout means `up --wait` gave up before every replica was
	// healthy (exit code 3).
	ErrWaitTimeout = errors.New("timed out waiting for the project to be healthy")
	// ErrUnhealthy means a service failed while waiting (exit code 3).
	ErrUnhealthy = errors.New("service is unhealthy")
	// ErrNotRunning means the project has no gateway running.
	ErrNotRunning = errors.New("project is not running")
	// ErrProjectGone means the project was removed while it was being
	// followed or waited for (a `down` from elsewhere), or is being
	// removed: a `down` stopped a gateway.
	ErrProjectGone = errors.New("the project was removed")
)

// ProjectStatus is the state of every cell of a project.
type ProjectStatus struct {
	Project string `json:"project"`
	// Ready reports that the project runs and every cell's services have
	// their desired replicas ready and routable, with no rolling update or
	// restart under way: what `up --wait` waits for.
	Ready bool `json:"ready"`
	// Target is where the project runs: "docker" or "swarm".
	Target string       `json:"target,omitempty"`
	Cells  []CellStatus `json:"cells"`
}

// GatewayStopping is the state of a gateway that down has stopped: it
// has drained its replicas, creates none and serves nothing, and waits to
// be removed. One left so by a down that did not finish stays so; up
// replaces it.
const GatewayStopping = "stopping"

// CellStatus is what one gateway reports about its cell.
type CellStatus struct {
	Cell string `json:"cell"`
	// Gateway is "running", "down" (no gateway answering), "starting" or
	// GatewayStopping.
	Gateway string `json:"gateway"`
	// URL is the cell's entrance on the host, for example
	// http://127.0.0.1:8081.
	URL string `json:"url"`
	// SpecHash identifies the cell spec the gateway runs.
	SpecHash string          `json:"spec_hash,omitempty"`
	Services []ServiceStatus `json:"services"`
	// Flows are the cell's flows, in the order the cell file lists them.
	Flows []FlowStatus `json:"flows,omitempty"`
	// Error explains why the gateway could not be asked (when down).
	Error string `json:"error,omitempty"`
}

// ServiceStatus is the state of one service.
type ServiceStatus struct {
	Service string `json:"service"`
	Image   string `json:"image"`
	// Desired is the replica count the controller is converging to; Ready
	// counts replicas that are running, healthy and in rotation.
	Desired int `json:"desired"`
	Ready   int `json:"ready"`
	// Health sums up the replicas: "healthy", "starting", "unhealthy",
	// "crashloop" or "stopped" (desired 0).
	Health    string           `json:"health"`
	Autoscale *AutoscaleStatus `json:"autoscale,omitempty"`
	// InFlight and RPS are totals over the service's replicas.
	InFlight int64   `json:"inflight"`
	RPS      float64 `json:"rps"`
	Requests uint64  `json:"requests"`
	// P50Ms and P99Ms are request latencies through the gateway over the
	// last 10 seconds, in milliseconds; ErrorRate is the fraction of 5xx
	// answers in that window.
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	ErrorRate float64 `json:"error_rate"`
	// CPU is the CPU use of all replicas in percent of one core; Memory
	// their memory use in bytes (0 when not sampled).
	CPU      float64         `json:"cpu_percent"`
	Memory   uint64          `json:"memory_bytes"`
	Replicas []ReplicaStatus `json:"replicas"`
	// Failures counts the service's recent failures (replicas that exited
	// unasked, or could not be created or started) while they count
	// towards its crash backoff: until a replacement ran 10 minutes. The
	// latest failure was an exit with LastExitCode, or a failed start with
	// the engine's answer in LastError. NextTry is when a replacement may
	// be created, while the service waits out its backoff.
	// Restarting is how many replicas a rolling restart has still to
	// replace.
	Restarting   int       `json:"restarting,omitempty"`
	Failures     int       `json:"failures,omitempty"`
	LastExitCode *int      `json:"last_exit_code,omitempty"`
	LastError    string    `json:"last_error,omitempty"`
	NextTry      time.Time `json:"next_try,omitzero"`
	// Exited are the latest replicas of the service that exited (or never
	// started) and were removed, oldest first, with the end of their
	// output: the gateway keeps it, since their containers are gone.
	Exited []ExitedReplica `json:"exited,omitempty"`
}

// ExitedReplica is a replica that exited, or never started, and was
// removed by its gateway.
type ExitedReplica struct {
	Name        string `json:"name"`
	Replica     int    `json:"replica"`
	ContainerID string `json:"container_id"`
	// ExitCode is the code the replica exited with; Error is the engine's
	// answer instead when it never started.
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
	// Removed is when the gateway removed the container.
	Removed time.Time `json:"removed"`
	// Lines are the last lines of its output (at most 50), stdout and
	// stderr merged, oldest first.
	Lines []ExitedLine `json:"lines"`
}

// ExitedLine is one line of an exited replica's output.
type ExitedLine struct {
	Time   time.Time `json:"time,omitzero"`
	Stderr bool      `json:"stderr,omitempty"`
	Text   string    `json:"text"`
}

// FlowStatus is what a gateway reports about one of its flows.
type FlowStatus struct {
	Flow string `json:"flow"`
	// Route is the flow's method and path: "POST /checkout/{order}".
	Route string `json:"route"`
	// InFlight counts executions running now.
	InFlight int64 `json:"inflight"`
	// Executions, Failed and Compensated count since the gateway started:
	// every execution, those that did not succeed, and those that ran
	// compensations.
	Executions  uint64 `json:"executions"`
	Failed      uint64 `json:"failed"`
	Compensated uint64 `json:"compensated"`
	// Rate is executions per second and SuccessRate the fraction that
	// succeeded, over the last 10 seconds; P50Ms and P99Ms are their
	// durations in milliseconds over that window.
	Rate        float64 `json:"rate"`
	SuccessRate float64 `json:"success_rate"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
}

// AutoscaleStatus shows the autoscaler's bounds and last decision.
type AutoscaleStatus struct {
	Min          int       `json:"min"`
	Max          int       `json:"max"`
	Targets      []Target  `json:"targets"`
	LastDecision string    `json:"last_decision,omitempty"`
	LastChange   time.Time `json:"last_change,omitzero"`
}

// Target is one autoscaling metric against its target, per replica.
type Target struct {
	Metric string  `json:"metric"` // inflight | rps | cpu
	Value  float64 `json:"value"`
	Target float64 `json:"target"`
}

// ReplicaStatus is the state of one replica.
type ReplicaStatus struct {
	Name        string `json:"name"`
	ContainerID string `json:"container_id"`
	Replica     int    `json:"replica"`
	// State is the container state: created, running, exited, …
	State string `json:"state"`
	// Health is none, starting, healthy, unhealthy, ejected, draining or
	// crashloop.
	Health   string    `json:"health"`
	Address  string    `json:"address"`
	InFlight int64     `json:"inflight"`
	RPS      float64   `json:"rps"`
	Requests uint64    `json:"requests"`
	Restarts int       `json:"restarts"`
	CPU      float64   `json:"cpu_percent"`
	Memory   uint64    `json:"memory_bytes"`
	Started  time.Time `json:"started,omitzero"`
	// Listening is when the gateway first connected to the port of a
	// replica without a health check; zero until then, for a service
	// without a port, and for a replica with a health check (its health
	// says more).
	Listening time.Time `json:"listening,omitzero"`
	// ConfigHash identifies the service config the replica runs.
	ConfigHash string `json:"config_hash"`
	// Node is the swarm node that runs the replica (a swarm task); empty
	// on the local engine.
	Node string `json:"node,omitempty"`
}

// Event is one controller event.
type Event struct {
	Time    time.Time `json:"time"`
	Cell    string    `json:"cell"`
	Service string    `json:"service,omitempty"`
	// Replica is the replica number ("2"), when the event is about one.
	Replica string `json:"replica,omitempty"`
	// Flow is the flow an event is about (flow_failed, compensated).
	Flow string `json:"flow,omitempty"`
	// Type is one of the Event* constants.
	Type    string `json:"type"`
	Message string `json:"message"`
	// From and To are set for "scaled".
	From int `json:"from,omitempty"`
	To   int `json:"to,omitempty"`
}

// Event types.
const (
	EventStarted   = "started"
	EventHealthy   = "healthy"
	EventUnhealthy = "unhealthy"
	EventEjected   = "ejected"
	// EventPanic reports a service entering panic mode (too few replicas
	// available, so the gateway routes to ejected ones too) or, with
	// Message "ended", leaving it.
	EventPanic     = "panic"
	EventReplaced  = "replaced"
	EventDrained   = "drained"
	EventRemoved   = "removed"
	EventExited    = "exited"
	EventCrashloop = "crashloop"
	EventScaled    = "scaled"
	EventUpdated   = "updated"
	EventWaiting   = "waiting"
	EventError     = "error"
	// EventFlowFailed reports a flow execution that failed with nothing
	// to compensate; EventCompensated one that failed after steps had
	// taken effect, and what became of their compensations.
	EventFlowFailed  = "flow_failed"
	EventCompensated = "compensated"
	// EventRecovered reports a flow execution a restarted gateway found
	// unfinished in its journal and finished: compensated (synchronous)
	// or resumed (asynchronous).
	EventRecovered = "recovered"
)

// ScaleRequest sets the replica count of a service.
type ScaleRequest struct {
	Service  string `json:"service"`
	Replicas int    `json:"replicas"`
}

// RestartRequest asks for a rolling restart of one service, or of every
// service when Service is empty.
type RestartRequest struct {
	Service string `json:"service,omitempty"`
}

// Error is the body of every non-2xx admin API answer.
type Error struct {
	Error string `json:"error"`
}
