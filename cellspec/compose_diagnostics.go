package cellspec

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"
)

// What compose-go says, its log lines and its errors, made into warnings
// and problems with positions.

// composeLogMu serializes compose loads while logrus's global logger is
// redirected. compose-go logs its warnings through the standard logrus
// logger, which is process-wide state: while a compose file loads, that
// logger writes nowhere and its entries become warnings. The mutex keeps two
// loads of this package from restoring each other's settings. Anything else
// in the process that logs through logrus during a load is captured too (and
// reported as this file's warning), which is the price of a global logger.
var composeLogMu sync.Mutex

// captureLogrus runs fn with the standard logrus logger writing nowhere and
// returns the messages logged meanwhile. See composeLogMu for the caveat.
func captureLogrus(fn func()) []string {
	composeLogMu.Lock()
	defer composeLogMu.Unlock()
	std := logrus.StandardLogger()
	hook := &logCapture{}
	oldHooks := std.ReplaceHooks(logrus.LevelHooks{})
	std.AddHook(hook)
	oldOut := std.Out
	std.SetOutput(io.Discard)
	oldLevel := std.GetLevel()
	std.SetLevel(logrus.WarnLevel)
	defer func() {
		std.SetLevel(oldLevel)
		std.SetOutput(oldOut)
		std.ReplaceHooks(oldHooks)
	}()
	fn()
	return hook.messages()
}

// logCapture is a logrus hook that keeps the messages it is given.
type logCapture struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logCapture) Levels() []logrus.Level { return logrus.AllLevels }

func (h *logCapture) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, e.Message)
	return nil
}

func (h *logCapture) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs...)
}

var unsetVarLog = regexp.MustCompile(`^The "([^"]+)" variable is not set\. Defaulting to a blank string\.$`)

// logWarnings turns compose-go's log lines into warnings.
func (c *composeImport) logWarnings(logs []string) {
	for _, msg := range logs {
		switch {
		case strings.Contains(msg, "the attribute `version` is obsolete"):
			// Reported by the walk, once per load (compose-go logs it
			// once per process).
		case unsetVarLog.MatchString(msg):
			name := unsetVarLog.FindStringSubmatch(msg)[1]
			pos, path := c.findVar(c.root, "", name)
			c.warnings = append(c.warnings, Warning{Pos: pos, Path: path,
				Message: fmt.Sprintf("variable %s is not set; using an empty string", name)})
		default:
			c.warnings = append(c.warnings, Warning{Pos: Position{File: c.file}, Message: "compose: " + msg})
		}
	}
}

// findVar returns where a variable is first referenced in the main file.
func (c *composeImport) findVar(n *yaml.Node, path, name string) (Position, string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if pos, p := c.findVar(n.Content[i+1], join(path, n.Content[i].Value), name); pos.Line > 0 {
				return pos, p
			}
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			if pos, p := c.findVar(e, fmt.Sprintf("%s[%d]", path, i), name); pos.Line > 0 {
				return pos, p
			}
		}
	case yaml.ScalarNode:
		for _, m := range varRef.FindAllStringSubmatch(n.Value, -1) {
			if m[1] == name {
				return c.d.at(n), path
			}
		}
	}
	return Position{File: c.file}, ""
}

var (
	lineInError        = regexp.MustCompile(`\bline (\d+)`)
	falseSchema        = regexp.MustCompile(`^(\S+) false schema$`)
	additionalProp     = regexp.MustCompile(`^(\S*) ?additional propert(?:y|ies) '([^',]+)' not allowed$`)
	interpolationError = regexp.MustCompile(`^error while interpolating (\S+): (.*)$`)
	// compose-go refuses a key that YAML reads as a number, such as a
	// status code under x-orchestro.flows[].steps[].on_status.
	nonStringKey = regexp.MustCompile(`^non-string key in (\S+): (.*)$`)
)
var pathInError = regexp.MustCompile(`\bservices\.[A-Za-z0-9._-]+|\bservice "([^"]+)"`)

// composeProblem turns a compose-go error into a Problem at the file, at
// the line the message names or the key path it starts with.
func (c *composeImport) composeProblem(err error) Problem {
	msg := err.Error()
	for _, prefix := range []string{"validating ", "failed to parse "} {
		if rest, ok := strings.CutPrefix(msg, prefix+c.absFile+": "); ok {
			msg = rest
		}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	p := Problem{Pos: Position{File: c.file}, Msg: msg}
	if m := additionalProp.FindStringSubmatch(msg); m != nil {
		msg = join(m[1], m[2]) + " false schema"
	}
	if m := falseSchema.FindStringSubmatch(msg); m != nil {
		// The schema's ways of saying that a key is unknown.
		path := m[1]
		parent, key := "", path
		if i := strings.LastIndexByte(path, '.'); i >= 0 {
			parent, key = path[:i], path[i+1:]
		}
		p.Pos, p.Path, p.Msg = c.cpos.at(path), path, fmt.Sprintf("unknown key %q", key)
		p.Hint = suggest(key, composeSiblings(parent))
		return p
	}
	if m := interpolationError.FindStringSubmatch(msg); m != nil {
		p.Pos, p.Path, p.Msg = c.cpos.at(m[1]), m[1], m[2]
		return p
	}
	if m := nonStringKey.FindStringSubmatch(msg); m != nil {
		path := join(m[1], m[2])
		p.Pos, p.Path, p.Msg = c.cpos.at(path), path, fmt.Sprintf("key %s must be a string in a compose file", m[2])
		p.Hint = fmt.Sprintf("quote it: %q", m[2])
		return p
	}
	if m := lineInError.FindStringSubmatch(msg); m != nil {
		p.Pos.Line, _ = strconv.Atoi(m[1])
		p.Pos.Column = 1
		return p
	}
	if m := pathInError.FindStringSubmatch(msg); m != nil {
		path := strings.TrimRight(m[0], ".")
		if m[1] != "" {
			path = "services." + m[1]
		}
		p.Pos = c.cpos.at(path)
		p.Path = path
	}
	return p
}

// composeSiblings lists the keys the compose specification allows beside
// the given key path ("services.web" → image, build, ports, ...).
func composeSiblings(parent string) []string {
	want := strings.Split(parent, ".")
	if parent == "" {
		want = nil
	}
	var out []string
	for _, ap := range schema.AttributePaths() {
		parts := strings.Split(string(ap), ".")
		if len(parts) != len(want)+1 {
			continue
		}
		match := true
		for i, w := range want {
			if parts[i] != w && parts[i] != "*" {
				match = false
				break
			}
		}
		if match {
			out = appendNew(out, parts[len(parts)-1])
		}
	}
	return out
}
