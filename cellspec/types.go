package cellspec

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Project is a set of cells started together. It is the normalized form that
// every other package consumes: defaults are filled, paths are absolute and
// cells are sorted by name.
type Project struct {
	// Name is the project name: lower-case DNS label.
	Name string `json:"name"`
	// Dir is the absolute directory the project was loaded from.
	Dir string `json:"dir"`
	// Cells holds every cell of the project, sorted by name.
	Cells []*Cell `json:"cells"`
	// Target is where the project file says it runs: TargetDocker,
	// TargetSwarm, or "" (the local engine, unless `up --target` says).
	Target string `json:"target,omitempty"`
	// Swarm holds the settings of the swarm target.
	Swarm SwarmSettings `json:"swarm,omitzero"`
	// Warnings are non-fatal findings (for example compose keys orchestro
	// does not honour). They never stop a project from starting.
	Warnings []Warning `json:"warnings,omitempty"`
}

// Deployment targets a project file may name.
const (
	TargetDocker = "docker"
	TargetSwarm  = "swarm"
)

// SwarmSettings are the project's settings on a swarm.
type SwarmSettings struct {
	// Encrypted encrypts the traffic of the project's overlay networks
	// between nodes (IPsec; Swarm's "encrypted" network option).
	Encrypted bool `json:"encrypted,omitempty"`
}

// Cell returns the cell with the given name, or nil.
func (p *Project) Cell(name string) *Cell {
	for _, c := range p.Cells {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Cell is a group of services behind one gateway.
type Cell struct {
	Name string `json:"cell"`
	// File is the absolute path of the file the cell was loaded from.
	File string `json:"file"`
	// Source is "cell" or "compose".
	Source   string              `json:"source"`
	Gateway  Gateway             `json:"gateway"`
	Uses     []string            `json:"uses"`
	Services map[string]*Service `json:"services"`
	// Flows are the cell's orchestrated routes (see Flow).
	Flows []*Flow `json:"flows,omitempty"`

	// pos maps a field path ("services.orders.port") to where it was
	// written, so validation can point at the offending line.
	pos positions
	// bad holds field paths whose values failed to decode.
	bad map[string]bool
	// flowDefaults holds the defaults mapping of each flow, as written,
	// by index in Flows: applyDefaults folds it into the steps, and
	// validation checks the retry it holds.
	flowDefaults []flowDefaults
}

// ServiceNames returns the names of the cell's services in sorted order.
func (c *Cell) ServiceNames() []string {
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Listener is a host port of the gateway whose requests all go to one
// service, with their path as it is.
type Listener struct {
	Port    int    `json:"port"`
	Service string `json:"service"`
}

// Gateway configures the cell's single entrance.
type Gateway struct {
	Port    int     `json:"port"`
	Balance string  `json:"balance"`
	Routes  []Route `json:"routes"`
	// Listeners are more host ports of the gateway, each sending every
	// request, whatever its path, to one service: a compose service's
	// published port, kept. omitempty keeps the hash of a cell without
	// them as it was before they existed.
	Listeners []Listener `json:"listeners,omitempty"`
	Outlier   *Outlier   `json:"outlier,omitempty"`
	// FastPath is fast_path as written, nil when the file leaves it out;
	// read it with FastPathEnabled. Unlike the integers whose zero is a
	// legal value (rawCell records that they were written, and
	// applyDefaults stores the value in force), it stays a pointer that
	// is never defaulted, because its zero value must mean "on": the
	// cell reaches the gateway process as JSON, and a Cell built by hand
	// or encoded before the key existed has no fast_path at all. With
	// omitempty, a cell that does not write it encodes (and so hashes) as
	// it did before the setting existed, as Outlier does.
	FastPath *bool `json:"fast_path,omitempty"`
	// AccessLog is access_log as written, nil when the file leaves it
	// out; read it with AccessLogSettings. Like FastPath it is never
	// defaulted, so a cell that does not write it encodes (and hashes) as
	// it did before the setting existed.
	AccessLog *AccessLog `json:"access_log,omitempty"`
	// Procs is how many CPUs the gateway's process runs on at once (Go's
	// GOMAXPROCS); 0, the default, leaves Go's choice: every CPU it may
	// use.
	Procs int `json:"procs,omitempty"`
}

// AccessLogSettings returns the access log the gateway writes: the cell's
// access_log with every field it leaves out at its default.
func (g Gateway) AccessLogSettings() AccessLog {
	a := AccessLog{To: AccessLogFile, Sample: 1, MaxSize: DefaultAccessLogMaxSize, MaxFiles: DefaultAccessLogMaxFiles}
	if w := g.AccessLog; w != nil {
		if w.To != "" {
			a.To = w.To
		}
		if w.Sample != 0 {
			a.Sample = w.Sample
		}
		if w.MaxSize != 0 {
			a.MaxSize = w.MaxSize
		}
		if w.MaxFiles != 0 {
			a.MaxFiles = w.MaxFiles
		}
	}
	return a
}

// AccessLog says where a gateway writes its access log, one JSON line per
// request, and how much of it. Fields left at zero take their defaults
// (see Gateway.AccessLogSettings).
type AccessLog struct {
	// To is AccessLogFile, AccessLogStdout or AccessLogOff.
	To string `json:"to,omitempty"`
	// Sample is the fraction of requests logged, in (0, 1]. A request
	// that failed (a 5xx answer or no answer) is always logged.
	Sample float64 `json:"sample,omitempty"`
	// MaxSize is the size in bytes at which the file is rotated, and
	// MaxFiles how many files are kept, the one being written included:
	// the log never takes more than MaxSize × MaxFiles.
	MaxSize  int64 `json:"max_size,omitempty"`
	MaxFiles int   `json:"max_files,omitempty"`
}

// Where a gateway writes its access log.
const (
	// AccessLogFile writes rotated files on a volume of the cell's
	// gateway, read back through its admin API (the default).
	AccessLogFile = "file"
	// AccessLogStdout writes to the gateway container's standard output,
	// through the engine's log driver.
	AccessLogStdout = "stdout"
	// AccessLogOff writes no access log.
	AccessLogOff = "off"
)

// FastPathEnabled reports whether the gateway serves HTTP/1 requests with
// its own fast server, as it does unless the cell file says fast_path:
// false; when it does not, every request goes through Go's net/http
// server.
func (g Gateway) FastPathEnabled() bool { return g.FastPath == nil || *g.FastPath }

// Balance policies.
const (
	BalanceRoundRobin   = "round_robin"
	BalanceLeastRequest = "least_request"
)

// Route maps a path prefix to a service.
type Route struct {
	Path        string   `json:"path"`
	Service     string   `json:"service"`
	StripPrefix bool     `json:"strip_prefix"`
	Timeout     Duration `json:"timeout"`
	Retries     int      `json:"retries"`
}

// Service is one replicated program of a cell.
type Service struct {
	Name       string            `json:"name"`
	Build      *Build            `json:"build,omitempty"`
	Image      string            `json:"image,omitempty"`
	Port       int               `json:"port,omitempty"`
	Command    []string          `json:"command,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Replicas   int               `json:"replicas"`
	Restart    string            `json:"restart"`
	Health     *Health           `json:"health,omitempty"`
	Autoscale  *Autoscale        `json:"autoscale,omitempty"`
	Outlier    *Outlier          `json:"outlier,omitempty"`
	Resources  Resources         `json:"resources"`
	Volumes    []Volume          `json:"volumes,omitempty"`
	DependsOn  []string          `json:"depends_on,omitempty"`
	// Develop is compose's develop section: what `orchestro watch` does
	// when files change. Only compose files set it (see compose_watch.go).
	Develop *Develop `json:"develop,omitempty"`
}

// Restart policies.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// Build describes how a service image is made. Exactly one of Context and Go
// is set.
type Build struct {
	// Context is the absolute Dockerfile context directory.
	Context    string            `json:"context,omitempty"`
	Dockerfile string            `json:"dockerfile,omitempty"`
	Args       map[string]string `json:"args,omitempty"`
	Target     string            `json:"target,omitempty"`
	// Go is the absolute directory of a Go main package compiled (CGO off)
	// into a FROM scratch image.
	Go string `json:"go,omitempty"`
}

// Health is a service's active health check. Exactly one of HTTP, TCP and
// Exec is set.
type Health struct {
	HTTP        string   `json:"http,omitempty"`
	TCP         bool     `json:"tcp,omitempty"`
	Exec        []string `json:"exec,omitempty"`
	Interval    Duration `json:"interval"`
	Timeout     Duration `json:"timeout"`
	Retries     int      `json:"retries"`
	StartPeriod Duration `json:"start_period"`
}

// Kind names the check type: "http", "tcp" or "exec".
func (h *Health) Kind() string {
	switch {
	case h.HTTP != "":
		return "http"
	case h.TCP:
		return "tcp"
	case len(h.Exec) > 0:
		return "exec"
	}
	return ""
}

// Autoscale bounds and targets the local autoscaler.
type Autoscale struct {
	Min            int      `json:"min"`
	Max            int      `json:"max"`
	Inflight       float64  `json:"inflight,omitempty"`
	RPS            float64  `json:"rps,omitempty"`
	CPU            float64  `json:"cpu,omitempty"`
	ScaleDownAfter Duration `json:"scale_down_after"`
}

// Outlier tunes passive health checking: when the gateway ejects a
// replica on the strength of the answers it gets, and for how long. The
// gateway's mapping applies to every service of the cell; a service's
// mapping overrides it. Either is nil when the file does not write it: read
// the settings in force with Cell.OutlierFor.
type Outlier struct {
	// Consecutive5xx is how many 5xx answers in a row eject a replica; 0
	// means 5xx answers never do, since a 5xx is usually the
	// application's answer rather than a sign of a broken replica.
	Consecutive5xx int `json:"consecutive_5xx"`
	// BaseEjection is the length of a replica's first ejection; it
	// doubles with each further ejection in a streak.
	BaseEjection Duration `json:"base_ejection"`
	// MaxEjectionPercent is the most of a service's replicas, in percent,
	// that may be ejected at once.
	MaxEjectionPercent int `json:"max_ejection_percent"`
}

// OutlierFor returns the passive health settings in force for a service:
// its own outlier mapping, else the gateway's, else the defaults.
//
// It only has to pick, not merge, because loading stores merged values:
// applyDefaults fills a written gateway mapping with the defaults and a
// written service mapping with the gateway's settings, field by field,
// while it still knows which fields were written (zero is a legal written
// value for two of them). Every field of a stored mapping is therefore
// final, and the answer survives the JSON trip to the gateway process,
// where which fields were written is no longer known. A mapping that is
// not written stays nil, so a cell without one encodes as it did before
// the setting existed. A Cell built by hand rather than loaded must fill
// every field of the mappings it sets.
func (c *Cell) OutlierFor(service string) Outlier {
	if s := c.Services[service]; s != nil && s.Outlier != nil {
		return *s.Outlier
	}
	if c.Gateway.Outlier != nil {
		return *c.Gateway.Outlier
	}
	return defaultOutlier
}

// Resources limits a replica.
type Resources struct {
	// CPUs is a fraction of cores; 0 means unlimited.
	CPUs float64 `json:"cpus,omitempty"`
	// Memory is the limit in bytes; 0 means unlimited.
	Memory int64 `json:"memory,omitempty"`
}

// Volume is a mount into a replica.
type Volume struct {
	// Type is "volume" (a named, project-scoped volume) or "bind".
	Type string `json:"type"`
	// Source is the volume name or the absolute host path.
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Volume types.
const (
	VolumeNamed = "volume"
	VolumeBind  = "bind"
)

// Warning is a non-fatal finding with its position.
type Warning struct {
	Pos     Position `json:"pos"`
	Path    string   `json:"path,omitempty"`
	Message string   `json:"message"`
}

func (w Warning) String() string {
	return formatProblem(w.Pos, w.Path, w.Message, "")
}

// Duration is a time.Duration written as a Go duration string ("2s").
type Duration time.Duration

// D returns the standard library duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }
