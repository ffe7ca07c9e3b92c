package cellspec

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Flow is a route of the cell gateway whose answer is composed from calls
// to several services: sequential steps, parallel groups, templated
// requests, per-step timeouts and retries, and compensation of completed
// steps when a later one fails. Loading fills every default, so a Flow
// read from a loaded cell (or from its JSON) holds the settings in force.
type Flow struct {
	// Name is unique in the cell and a DNS label.
	Name string `json:"name"`
	// Route is the method and path the flow answers.
	Route FlowRoute `json:"route"`
	// Deadline bounds a whole synchronous execution;
	// DefaultFlowDeadline unless written.
	Deadline Duration `json:"deadline"`
	// Mode is how the client is answered: FlowSync (the default) holds
	// the request until the execution ends; FlowAsync answers 202 at
	// once, with where to read the execution, and runs it durably. A
	// client asks any flow for async with Prefer: respond-async.
	Mode string `json:"mode,omitempty"`
	// AsyncDeadline bounds an asynchronous execution;
	// DefaultAsyncDeadline unless written.
	AsyncDeadline Duration `json:"async_deadline,omitempty"`
	// Steps run in the order written; a step with Parallel is a group.
	Steps []*Step `json:"steps"`
	// Response is the answer of a successful execution; nil answers 200
	// with an object of every step's body by id.
	Response *FlowAnswer `json:"response,omitempty"`
	// MaxInflight bounds the executions of this flow running at once;
	// beyond it the gateway answers 503 with Retry-After.
	// DefaultFlowMaxInflight unless written.
	MaxInflight int `json:"max_inflight"`
	// MaxBody bounds, in bytes, the body of each step answer kept for
	// templating (and the client's request body); a larger one fails the
	// step. DefaultFlowMaxBody unless written.
	MaxBody int64 `json:"max_body"`
}

// Flow modes.
const (
	FlowSync  = "sync"
	FlowAsync = "async"
)

// Flow defaults.
const (
	DefaultAsyncDeadline   = 24 * time.Hour
	DefaultFlowDeadline    = 30 * time.Second
	DefaultStepTimeout     = 30 * time.Second
	DefaultFlowMaxInflight = 1000
	DefaultFlowMaxBody     = 1 << 20
	DefaultRetryBackoff    = 100 * time.Millisecond
	DefaultRetryMaxBackoff = 2 * time.Second
	// DefaultCompensateAttempts is the fewest tries of a compensation
	// whose retry does not say: a rollback is worth insisting on. One
	// whose step tries more often tries as often as its step.
	DefaultCompensateAttempts = 3
)

// DefaultRetryOn is what a step retries when its retry does not say:
// failed connections, timeouts and the statuses of a gateway or a replica
// that is briefly unavailable.
var DefaultRetryOn = []string{RetryOnConnect, RetryOnTimeout, "502", "503", "504"}

// Conditions of retry_on besides status codes.
const (
	RetryOnConnect = "connect" // no connection could be made, or it broke
	RetryOnTimeout = "timeout" // no answer within the step's timeout
)

// FlowRoute is the method and path pattern of a flow: "POST
// /checkout/{order}". A {name} segment captures one path segment.
type FlowRoute struct {
	Method string
	Path   string
}

func (r FlowRoute) String() string { return r.Method + " " + r.Path }

// Captures returns the names of the route's {name} segments, in order.
func (r FlowRoute) Captures() []string {
	var out []string
	for _, seg := range strings.Split(r.Path, "/") {
		if name, ok := captureName(seg); ok {
			out = append(out, name)
		}
	}
	return out
}

// Match reports whether method and path match the route and returns the
// captured segments.
func (r FlowRoute) Match(method, path string) (map[string]string, bool) {
	var caps map[string]string
	ok := method == r.Method && r.walk(path, func(name, value string) {
		if caps == nil {
			caps = map[string]string{}
		}
		caps[name] = value
	})
	if !ok {
		return nil, false
	}
	return caps, true
}

// Matches reports whether method and path match the route, as Match does,
// without allocating: a gateway asks it of every request.
func (r FlowRoute) Matches(method, path string) bool {
	return method == r.Method && r.walk(path, nil)
}

// walk matches path against the route's segments, calling capture (when
// not nil) for each {name} segment with the path's segment.
func (r FlowRoute) walk(path string, capture func(name, value string)) bool {
	pat, got := r.Path, path
	for {
		ps, prest, pmore := strings.Cut(pat, "/")
		gs, grest, gmore := strings.Cut(got, "/")
		if name, ok := captureName(ps); ok {
			if gs == "" {
				return false
			}
			if capture != nil {
				capture(name, gs)
			}
		} else if ps != gs {
			return false
		}
		if pmore != gmore {
			return false
		}
		if !pmore {
			return true
		}
		pat, got = prest, grest
	}
}

// captureName returns name for a "{name}" segment.
func captureName(seg string) (string, bool) {
	if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// ParseFlowRoute parses "METHOD /path". It only splits: the loader
// checks the method, the path and its captures.
func ParseFlowRoute(s string) (FlowRoute, error) {
	method, path := cutSpace(strings.TrimSpace(s))
	path = strings.TrimSpace(path)
	if method == "" || path == "" {
		return FlowRoute{}, fmt.Errorf("route %q must be METHOD /path, for example POST /checkout/{order}", s)
	}
	return FlowRoute{Method: method, Path: path}, nil
}

// MarshalJSON writes the route as "METHOD /path".
func (r FlowRoute) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// UnmarshalJSON reads "METHOD /path".
func (r *FlowRoute) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseFlowRoute(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Step is one call of a flow, or (with Parallel set and nothing else) a
// group of steps started together; the group ends when all its members
// have.
type Step struct {
	ID       string  `json:"id,omitempty"`
	Parallel []*Step `json:"parallel,omitempty"`

	Call    *Call                `json:"call,omitempty"`
	Headers map[string]*Template `json:"headers,omitempty"`
	Query   map[string]*Template `json:"query,omitempty"`
	Body    *Template            `json:"body,omitempty"`
	// Timeout bounds each try: the step's timeout, else its flow's
	// defaults.timeout, else DefaultStepTimeout.
	Timeout Duration `json:"timeout,omitempty"`
	// Retry holds, field by field, what the step writes, else what its
	// flow's defaults.retry writes, else the built-in retry (1 attempt,
	// backoff 100ms, max_backoff 2s, jitter, DefaultRetryOn). A group
	// has none, and its JSON leaves it out.
	Retry Retry `json:"retry,omitzero"`
	// Expect lists the statuses that are success; empty means any 2xx.
	Expect []int `json:"expect,omitempty"`
	// OnStatus maps an answer's status to what the execution does.
	OnStatus map[int]*OnStatus `json:"on_status,omitempty"`
	// Optional steps never fail the execution; Fallback is their body
	// when they do not succeed.
	Optional bool      `json:"optional,omitempty"`
	Fallback *Template `json:"fallback,omitempty"`
	// When, if set, is evaluated before the step; false skips it.
	When       *Template   `json:"when,omitempty"`
	Compensate *Compensate `json:"compensate,omitempty"`
}

// IsGroup reports whether the step is a parallel group.
func (s *Step) IsGroup() bool { return s.Parallel != nil }

// Expects reports whether status counts as the step's success.
func (s *Step) Expects(status int) bool {
	if len(s.Expect) == 0 {
		return status >= 200 && status < 300
	}
	for _, e := range s.Expect {
		if e == status {
			return true
		}
	}
	return false
}

// Call is the request a step makes: "METHOD TARGET PATH", where TARGET is
// a service of the cell or cell:<name> for a cell in uses, and PATH may
// hold expressions.
type Call struct {
	Method string
	Target string
	Path   *Template
}

// PeerPrefix marks a call target that is another cell.
const PeerPrefix = "cell:"

// Peer returns the cell a call goes to, or "" for a service of this cell.
func (c *Call) Peer() string {
	if name, ok := strings.CutPrefix(c.Target, PeerPrefix); ok {
		return name
	}
	return ""
}

func (c *Call) String() string {
	path, _ := c.Path.Raw().(string)
	return c.Method + " " + c.Target + " " + path
}

// ParseCall parses "METHOD TARGET PATH" and compiles the path with scope.
// The path is everything after the target, so an expression in it may hold
// spaces.
func ParseCall(s string, scope *Scope) (*Call, []*TemplateError) {
	method, rest := cutSpace(strings.TrimSpace(s))
	target, path := cutSpace(rest)
	path = strings.TrimSpace(path)
	if method == "" || target == "" || path == "" {
		return nil, []*TemplateError{{Msg: fmt.Sprintf("call %q must be METHOD TARGET PATH, for example POST orders /validate", s)}}
	}
	tpl, errs := CompileTemplate(path, scope)
	return &Call{Method: method, Target: target, Path: tpl}, errs
}

// cutSpace cuts s around its first run of white space.
func cutSpace(s string) (before, after string) {
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeftFunc(s[i:], unicode.IsSpace)
}

// MarshalJSON writes the call as written.
func (c *Call) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// UnmarshalJSON parses and compiles a call.
func (c *Call) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, errs := ParseCall(s, nil)
	if len(errs) > 0 {
		return errs[0]
	}
	*c = *v
	return nil
}

// Retry says how often and when a call is tried again.
type Retry struct {
	// Attempts counts every try, the first included.
	Attempts int `json:"attempts"`
	// Backoff is the first wait; it doubles each time up to MaxBackoff.
	Backoff    Duration `json:"backoff"`
	MaxBackoff Duration `json:"max_backoff"`
	// Jitter draws each wait at random between half of it and all of it.
	Jitter bool `json:"jitter"`
	// RetryOn lists what is retried: connect, timeout and status codes.
	RetryOn []string `json:"retry_on"`
}

// RetriesOn reports whether the retry applies to a condition (connect,
// timeout) or a status code.
func (r Retry) RetriesOn(cond string, status int) bool {
	for _, c := range r.RetryOn {
		if cond != "" && c == cond {
			return true
		}
		if status != 0 && c == fmt.Sprint(status) {
			return true
		}
	}
	return false
}

// OnStatus is what an answer with a given status does to the execution.
type OnStatus struct {
	// Fail ends the execution (after compensation) with this answer.
	Fail *FlowAnswer `json:"fail,omitempty"`
}

// FlowAnswer is an answer a flow sends its client.
type FlowAnswer struct {
	// Status is the answer's status. Unless written, it is
	// DefaultResponseStatus for a flow's response, and the status that
	// led to it for an on_status fail answer.
	Status  int                  `json:"status"`
	Headers map[string]*Template `json:"headers,omitempty"`
	Body    *Template            `json:"body,omitempty"`
}

// Compensate is the call that undoes a completed step.
type Compensate struct {
	Call    *Call                `json:"call"`
	Headers map[string]*Template `json:"headers,omitempty"`
	Query   map[string]*Template `json:"query,omitempty"`
	Body    *Template            `json:"body,omitempty"`
	// Timeout bounds each try: the compensation's timeout, else its
	// step's in force.
	Timeout Duration `json:"timeout,omitempty"`
	// Retry holds, field by field, what the compensation writes, else
	// its step's retry in force; except Attempts, which is the
	// compensation's, else the larger of its step's attempts and
	// DefaultCompensateAttempts. The flow's defaults reach it only
	// through its step.
	Retry Retry `json:"retry"`
}
