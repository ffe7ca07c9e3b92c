package cellspec

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/format"
	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"
)

// A compose file becomes one cell:
//
//   - the compose project name (name:, else the directory name) is the cell
//     name, normalized to a DNS label;
//   - services map to services: build (context, dockerfile, args, target),
//     image, command, entrypoint, environment with env_file resolved into it,
//     deploy.replicas or scale, healthcheck (CMD and CMD-SHELL become an exec
//     check), volumes (bind and named), depends_on, restart, and
//     deploy.resources.limits (or cpus and mem_limit) as resources;
//   - a service's port is its first expose entry, else the container side
//     of its first ports entry;
//   - the top-level x-orchestro key holds what compose lacks, {gateway, uses},
//     and a service's x-orchestro key holds {autoscale, health, outlier,
//     port}; both are decoded by the cell file decoder, so they are checked
//     as strictly;
//   - without x-orchestro.gateway.port the first host port published by the
//     first service (by name) becomes the gateway port, with a warning.
//
// Every key orchestro does not honour is reported as a Warning naming its
// key path; nothing is dropped silently. Two deliberate differences from
// docker compose: a service without restart: gets orchestro's default
// (always), since replacing crashed replicas is the point of a cell; and
// COMPOSE_PROJECT_NAME is ignored, so that several compose files of one
// project do not all claim the same cell name.
//
// Profiles: the file is loaded as `docker compose up` would load it, with
// the profiles named in COMPOSE_PROFILES (from the environment or the .env
// file) active and no others. A service outside the active profiles is not
// part of the cell, and a warning says so.

// Keys accepted in the x-orchestro extensions.
var (
	composeExtKeys        = []string{"gateway", "uses"}
	composeServiceExtKeys = []string{"autoscale", "health", "outlier", "port"}
)

// composeReasons explains, for the keys orchestro commonly meets and does not
// honour, why.
var composeReasons = map[string]string{
	"networks":       "cells have their own networks",
	"network_mode":   "cells have their own networks",
	"container_name": "replicas are named <project>-<cell>-<service>-<n>",
	"hostname":       "replicas are reached by service name",
	"domainname":     "replicas are reached by service name",
	"labels":         "orchestro sets its own labels",
	"label_file":     "orchestro sets its own labels",
	"links":          "services of a cell reach each other by name; the dependency is kept",
	"external_links": "a cell reaches other cells through uses",
	"logging":        "logs are read with orchestro logs",
	"log_driver":     "logs are read with orchestro logs",
	"log_opt":        "logs are read with orchestro logs",
	"reservations":   "only limits are applied",
	"secrets":        "pass secrets as environment or bind-mounted files",
	"configs":        "bind-mount configuration files instead",
}

// composeLogMu serializes compose loads while logrus's global logger is
// redirected. compose-go logs its warnings through the standard logrus
// logger, which is process-wide state: while a compose file loads, that
// logger writes nowhere and its entries become warnings. The mutex keeps two
// loads of this package from restoring each other's settings. Anything else
// in the process that logs through logrus during a load is captured too (and
// reported as this file's warning), which is the price of a global logger.
var composeLogMu sync.Mutex

// composeImport holds the state of one compose file's conversion.
type composeImport struct {
	file    string // as given, for positions
	absFile string
	dir     string
	env     Env

	root    *yaml.Node // the main file as written (aliases resolved)
	iroot   *yaml.Node // the same, interpolated
	cpos    positions  // compose key path → where it is in the main file
	project *types.Project

	d        *decoder // decodes x-orchestro and keeps the cell's positions
	rc       *rawCell
	warnings []Warning
	probs    Problems

	others map[string]*yaml.Node // other compose files (extends, include), interpolated

	gwService string   // the service whose published port became the gateway port
	gwPort    string   // that published port, as written
	gwTarget  uint32   // and its container port
	gwPos     Position // where that ports entry is
	gwPath    string   // and its key path
	gwTaken   bool     // the ports entry has been met by the walk
}

// loadCompose reads a compose file as one cell, ready for defaults and
// validation. The cell is nil only when the file cannot be loaded at all.
func loadCompose(path string, env Env) (*rawCell, []Warning, Problems) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, Problems{{Pos: Position{File: path}, Msg: err.Error()}}
	}
	c := &composeImport{file: path, absFile: abs, dir: filepath.Dir(abs), env: env, others: map[string]*yaml.Node{}}
	rc := c.load()
	return rc, c.sortedWarnings(), c.probs
}

func (c *composeImport) load() *rawCell {
	data, err := os.ReadFile(c.absFile)
	if err != nil {
		c.probs = append(c.probs, Problem{Pos: Position{File: c.file}, Msg: err.Error()})
		return nil
	}
	c.d = newDecoder(c.file)
	root, err := c.d.parse(data)
	if err != nil {
		c.probs = append(c.probs, err.(Problems)...)
		return nil
	}
	c.root = root
	c.cpos = positions{}
	recordPaths(root, "", c.file, c.cpos)
	c.cpos[""] = c.d.at(root)

	environ := c.environment(data)
	logs := captureLogrus(func() {
		c.project, err = loadComposeProject(c.absFile, c.dir, environ)
	})
	c.logWarnings(logs)
	if err != nil {
		c.probs = append(c.probs, c.composeProblem(err))
		return nil
	}

	// An interpolated copy of the file, for the walk that reports what is
	// not honoured: ports and volumes are read as compose-go read them.
	c.iroot = c.interpolated(root)

	c.rc = newRawCell(&Cell{Source: "compose", File: c.file, Services: map[string]*Service{}})
	c.d.mark("", root)
	c.cellName()
	for _, name := range c.project.ServiceNames() {
		c.rc.cell.Services[name] = c.service(c.project.Services[name])
	}
	c.markFrom("services", "services")
	c.extension()
	c.defaultGateway()
	c.walkFile(c.iroot, c.file, map[string]bool{c.absFile: true}, true)
	c.finishGateway()
	c.rc.cell.pos = c.d.pos
	c.probs = append(c.probs, c.d.probs...)
	return c.rc
}

// loadComposeProject runs compose-go on one file.
func loadComposeProject(path, dir string, environ map[string]string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(dir),
		func(o *cli.ProjectOptions) error {
			o.Environment = environ
			return nil
		},
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

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

var (
	unsetVarLog = regexp.MustCompile(`^The "([^"]+)" variable is not set\. Defaulting to a blank string\.$`)
	varRef      = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
)

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

// environment builds the variables compose-go interpolates with. Env is a
// lookup function, not a list, so the names asked for are every variable of
// the process environment plus every name referenced by the compose file,
// the files it pulls in and the .env file beside it; each is then resolved
// through Env. COMPOSE_PROJECT_NAME is left out: the cell name comes from the
// file.
func (c *composeImport) environment(data []byte) map[string]string {
	names := map[string]bool{"COMPOSE_PROFILES": true}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		names[k] = true
	}
	for k := range c.env.dotenv {
		names[k] = true
	}
	scan := func(b []byte) {
		for _, m := range varRef.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
	}
	scan(data)
	if b, err := os.ReadFile(filepath.Join(c.dir, ".env")); err == nil {
		scan(b)
	}
	seen := map[string]bool{c.absFile: true}
	var refs func(root *yaml.Node, dir string)
	refs = func(root *yaml.Node, dir string) {
		for _, k := range passThroughNames(root) {
			names[k] = true
		}
		for _, f := range composeRefs(root, dir) {
			if seen[f] {
				continue
			}
			seen[f] = true
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			scan(b)
			var doc yaml.Node
			if yaml.Unmarshal(b, &doc) == nil && len(doc.Content) > 0 {
				refs(doc.Content[0], filepath.Dir(f))
			}
		}
	}
	refs(c.root, c.dir)

	out := map[string]string{}
	for k := range names {
		if k == "COMPOSE_PROJECT_NAME" {
			continue
		}
		if v, ok := c.env.Lookup(k); ok {
			out[k] = v
		}
	}
	return out
}

// passThroughNames lists the variables that environment and build args
// entries without a value take from the environment ("- DEBUG").
func passThroughNames(root *yaml.Node) []string {
	var out []string
	scan := func(n *yaml.Node) {
		switch {
		case n == nil:
		case n.Kind == yaml.SequenceNode:
			for _, e := range n.Content {
				if e.Kind == yaml.ScalarNode && !strings.Contains(e.Value, "=") {
					out = append(out, e.Value)
				}
			}
		case n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i+1].Tag == "!!null" {
					out = append(out, n.Content[i].Value)
				}
			}
		}
	}
	for _, svc := range mapValues(mapGet(root, "services")) {
		scan(mapGet(svc, "environment"))
		scan(mapGet(mapGet(svc, "build"), "args"))
	}
	return out
}

// composeRefs lists the files a compose file pulls in: extends files,
// env files and included files, as written (paths holding variables are
// skipped).
func composeRefs(root *yaml.Node, dir string) []string {
	var out []string
	add := func(n *yaml.Node) {
		if n != nil && n.Kind == yaml.ScalarNode && n.Value != "" && !strings.Contains(n.Value, "$") {
			out = append(out, absPath(dir, n.Value))
		}
	}
	addList := func(n *yaml.Node, key string) {
		if n == nil {
			return
		}
		if n.Kind != yaml.SequenceNode {
			add(n)
			return
		}
		for _, e := range n.Content {
			if e.Kind == yaml.MappingNode {
				add(mapGet(e, key))
			} else {
				add(e)
			}
		}
	}
	for _, svc := range mapValues(mapGet(root, "services")) {
		if ext := mapGet(svc, "extends"); ext != nil && ext.Kind == yaml.MappingNode {
			add(mapGet(ext, "file"))
		}
		addList(mapGet(svc, "env_file"), "path")
	}
	if inc := mapGet(root, "include"); inc != nil && inc.Kind == yaml.SequenceNode {
		for _, e := range inc.Content {
			if e.Kind == yaml.MappingNode {
				addList(mapGet(e, "path"), "")
				addList(mapGet(e, "env_file"), "")
			} else {
				add(e)
			}
		}
	}
	return out
}

// interpolated returns a copy of n with variables substituted from the
// project's environment. Problems were reported by compose-go already.
func (c *composeImport) interpolated(n *yaml.Node) *yaml.Node {
	cp := deepCopy(n)
	newDecoder(c.file).interpolate(cp, "", MapEnv(c.project.Environment))
	return cp
}

var (
	lineInError        = regexp.MustCompile(`\bline (\d+)`)
	falseSchema        = regexp.MustCompile(`^(\S+) false schema$`)
	additionalProp     = regexp.MustCompile(`^(\S*) ?additional propert(?:y|ies) '([^',]+)' not allowed$`)
	interpolationError = regexp.MustCompile(`^error while interpolating (\S+): (.*)$`)
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

// recordPaths records where every key and list item of a compose file is:
// at the value when it is a scalar, as the cell decoder does, else at the
// key.
func recordPaths(n *yaml.Node, path, file string, out positions) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			at := k
			if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
				at = v
			}
			out[p] = Position{File: file, Line: at.Line, Column: at.Column}
			recordPaths(v, p, file, out)
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[p] = Position{File: file, Line: e.Line, Column: e.Column}
			recordPaths(e, p, file, out)
		}
	}
}

// markFrom records our field path at the first compose path written in the
// main file.
func (c *composeImport) markFrom(path string, composePaths ...string) {
	for _, cp := range composePaths {
		if pos, ok := c.cpos[cp]; ok {
			if _, done := c.d.pos[path]; !done {
				c.d.pos[path] = pos
			}
			return
		}
	}
}

func (c *composeImport) warn(pos Position, path, format string, args ...any) {
	c.warnings = append(c.warnings, Warning{Pos: pos, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *composeImport) problem(path, hint, format string, args ...any) {
	c.probs = append(c.probs, Problem{Pos: c.cpos.at(path), Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// sortedWarnings orders warnings by position and drops repeats: a key
// inherited through extends by several services is reported once.
func (c *composeImport) sortedWarnings() []Warning {
	ws := append([]Warning(nil), c.warnings...)
	sort.SliceStable(ws, func(i, j int) bool {
		a, b := ws[i], ws[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Column != b.Pos.Column {
			return a.Pos.Column < b.Pos.Column
		}
		return a.Path+a.Message < b.Path+b.Message
	})
	var out []Warning
	seen := map[string]bool{}
	for _, w := range ws {
		key := w.Pos.String() + "\x00" + w.Message
		if w.Pos.Line == 0 {
			key += "\x00" + w.Path
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, w)
	}
	return out
}

// cellName names the cell after the compose project.
func (c *composeImport) cellName() {
	cell := c.rc.cell
	cell.Name = normalizeProjectName(c.project.Name)
	if v := mapGet(c.root, "name"); v != nil {
		c.d.pos["cell"] = c.d.at(v)
	} else {
		c.d.pos["cell"] = c.d.at(c.root)
	}
	if cell.Name == "" {
		c.probs = append(c.probs, Problem{Pos: c.d.pos["cell"], Path: "cell",
			Msg: fmt.Sprintf("cannot make a cell name of compose project name %q", c.project.Name), Hint: "set name: at the top of the compose file"})
	}
}

// service converts one compose service.
func (c *composeImport) service(s types.ServiceConfig) *Service {
	name := s.Name
	sp := "services." + name
	svc := &Service{Name: name}
	c.markFrom(sp, sp)

	if b := s.Build; b != nil {
		c.markFrom(sp+".build", sp+".build")
		if strings.Contains(b.Context, "://") || strings.HasPrefix(b.Context, "git@") {
			c.problem(sp+".build", "clone the repository and point build at the directory", "remote build context %q is not supported", b.Context)
		}
		bd := &Build{Context: absPath(c.dir, b.Context), Dockerfile: b.Dockerfile, Target: b.Target}
		if bd.Dockerfile == "Dockerfile" {
			bd.Dockerfile = "" // the default, as in a cell file
		}
		for _, k := range sortedKeys(b.Args) {
			v := b.Args[k]
			if v == nil {
				continue // the walk reports it
			}
			if bd.Args == nil {
				bd.Args = map[string]string{}
			}
			bd.Args[k] = *v
		}
		svc.Build = bd
	} else {
		svc.Image = s.Image
		c.markFrom(sp+".image", sp+".image")
	}

	svc.Command = c.command(s.Command, sp, "command")
	svc.Entrypoint = c.command(s.Entrypoint, sp, "entrypoint")

	for k, v := range s.Environment {
		if v == nil {
			continue // unset and without a value: compose passes nothing either
		}
		if svc.Env == nil {
			svc.Env = map[string]string{}
		}
		svc.Env[k] = *v
	}
	if svc.Env != nil {
		c.markFrom(sp+".env", sp+".environment", sp+".env_file")
	}

	switch {
	case s.Scale != nil:
		svc.Replicas = *s.Scale
		c.rc.replicas[name] = true
		c.markFrom(sp+".replicas", sp+".scale", sp+".deploy.replicas")
	case s.Deploy != nil && s.Deploy.Replicas != nil:
		svc.Replicas = *s.Deploy.Replicas
		c.rc.replicas[name] = true
		c.markFrom(sp+".replicas", sp+".deploy.replicas", sp+".scale")
	}

	svc.Restart = composeRestart(s.Restart)
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil && s.Deploy.RestartPolicy.Condition != "" {
		// docker compose lets deploy.restart_policy win over restart.
		switch cond := s.Deploy.RestartPolicy.Condition; cond {
		case "none":
			svc.Restart = RestartNever
		case "any":
			svc.Restart = RestartAlways
		default:
			svc.Restart = composeRestart(cond)
		}
		c.markFrom(sp+".restart", sp+".deploy.restart_policy.condition")
	}
	c.markFrom(sp+".restart", sp+".restart")

	svc.Health = c.health(s, sp)

	if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
		l := s.Deploy.Resources.Limits
		svc.Resources = Resources{CPUs: cleanFloat32(float32(l.NanoCPUs)), Memory: int64(l.MemoryBytes)}
		c.markFrom(sp+".resources", sp+".deploy.resources.limits")
	}
	if svc.Resources.CPUs == 0 && s.CPUS > 0 {
		svc.Resources.CPUs = cleanFloat32(s.CPUS)
		c.markFrom(sp+".resources", sp+".cpus")
	}
	if svc.Resources.Memory == 0 && s.MemLimit > 0 {
		svc.Resources.Memory = int64(s.MemLimit)
		c.markFrom(sp+".resources", sp+".mem_limit")
	}

	svc.Volumes = c.volumes(s, sp)
	svc.DependsOn = c.dependsOn(s, sp)
	c.port(s, svc, sp)
	return svc
}

func (c *composeImport) command(cmd types.ShellCommand, sp, key string) []string {
	if cmd == nil {
		return nil
	}
	c.markFrom(sp+"."+key, sp+"."+key)
	if len(cmd) == 0 {
		c.warn(c.cpos.at(sp+"."+key), sp+"."+key, "an empty %s is not honoured by orchestro (the image's %s is used)", key, key)
		return nil
	}
	return append([]string(nil), cmd...)
}

// composeRestart maps a compose restart policy. Unknown values pass through
// for validation to report.
func composeRestart(r string) string {
	switch {
	case r == "":
		return ""
	case r == "no":
		return RestartNever
	case r == "always" || r == "unless-stopped":
		return RestartAlways
	case r == "on-failure" || strings.HasPrefix(r, "on-failure:"):
		return RestartOnFailure
	}
	return r
}

// health converts a compose healthcheck: CMD runs its arguments, CMD-SHELL
// runs its command through /bin/sh -c.
func (c *composeImport) health(s types.ServiceConfig, sp string) *Health {
	hc := s.HealthCheck
	if hc == nil || hc.Disable {
		return nil
	}
	var exec []string
	switch {
	case len(hc.Test) == 0:
		c.warn(c.cpos.at(sp+".healthcheck"), sp+".healthcheck",
			"a healthcheck without test is not honoured by orchestro (it does not read the image's HEALTHCHECK); add test or x-orchestro.health")
		return nil
	case hc.Test[0] == "NONE":
		return nil
	case hc.Test[0] == "CMD" && len(hc.Test) > 1:
		exec = append([]string(nil), hc.Test[1:]...)
	case hc.Test[0] == "CMD-SHELL" && len(hc.Test) > 1:
		exec = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		c.warn(c.cpos.at(sp+".healthcheck.test"), sp+".healthcheck.test", "a test without a command is not honoured by orchestro")
		return nil
	}
	h := &Health{Exec: exec}
	if hc.Interval != nil && *hc.Interval > 0 {
		h.Interval = Duration(*hc.Interval)
	}
	if hc.Timeout != nil && *hc.Timeout > 0 {
		h.Timeout = Duration(*hc.Timeout)
	}
	if hc.StartPeriod != nil && *hc.StartPeriod > 0 {
		h.StartPeriod = Duration(*hc.StartPeriod)
	}
	// Docker reads retries: 0 as its default; so does orchestro.
	if hc.Retries != nil && *hc.Retries > 0 {
		h.Retries = int(min(*hc.Retries, 1<<31-1))
		c.rc.hsRetry[s.Name] = true
	}
	c.markFrom(sp+".health", sp+".healthcheck")
	for _, k := range []string{"interval", "timeout", "retries", "start_period"} {
		c.markFrom(sp+".health."+k, sp+".healthcheck."+k)
	}
	c.markFrom(sp+".health.exec", sp+".healthcheck.test")
	return h
}

// volumes keeps bind mounts and named volumes; the walk warns about the
// rest (anonymous volumes, tmpfs and the like).
func (c *composeImport) volumes(s types.ServiceConfig, sp string) []Volume {
	var out []Volume
	raw := c.rawVolumeTargets(sp)
	for _, v := range s.Volumes {
		var vol Volume
		switch {
		case v.Type == types.VolumeTypeBind:
			vol = Volume{Type: VolumeBind, Source: absPath(c.dir, v.Source), Target: v.Target, ReadOnly: v.ReadOnly}
		case v.Type == types.VolumeTypeVolume && v.Source != "":
			vol = Volume{Type: VolumeNamed, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
			if !isDNSLabel(strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(v.Source))) || strings.ToLower(v.Source) != v.Source {
				c.problem(firstNonEmpty(raw[v.Target], sp+".volumes"), "lower-case letters, digits, '-', '_' or '.'", "volume name %q is not supported by orchestro", v.Source)
				continue
			}
		default:
			continue
		}
		p := fmt.Sprintf("%s.volumes[%d]", sp, len(out))
		c.markFrom(p, raw[v.Target])
		out = append(out, vol)
	}
	if out != nil {
		c.markFrom(sp+".volumes", sp+".volumes")
	}
	return out
}

// rawVolumeTargets maps each volume target of a service in the main file to
// the compose path of its entry.
func (c *composeImport) rawVolumeTargets(sp string) map[string]string {
	out := map[string]string{}
	svc := mapGet(mapGet(c.iroot, "services"), strings.TrimPrefix(sp, "services."))
	list := mapGet(svc, "volumes")
	if list == nil || list.Kind != yaml.SequenceNode {
		return out
	}
	for i, e := range list.Content {
		if t := volumeTarget(e); t != "" {
			out[t] = fmt.Sprintf("%s.volumes[%d]", sp, i)
		}
	}
	return out
}

func volumeTarget(e *yaml.Node) string {
	switch e.Kind {
	case yaml.ScalarNode:
		if v, err := format.ParseVolume(e.Value); err == nil {
			return filepath.Clean(v.Target)
		}
	case yaml.MappingNode:
		if t := mapGet(e, "target"); t != nil && t.Kind == yaml.ScalarNode {
			return filepath.Clean(t.Value)
		}
	}
	return ""
}

// dependsOn keeps the dependencies on services of the cell; the walk warns
// about the others and about conditions orchestro does not honour.
func (c *composeImport) dependsOn(s types.ServiceConfig, sp string) []string {
	var out []string
	raw := mapGet(mapGet(mapGet(c.root, "services"), s.Name), "depends_on")
	for _, dep := range sortedKeys(s.DependsOn) {
		if _, ok := c.project.Services[dep]; !ok {
			continue
		}
		p := fmt.Sprintf("%s.depends_on[%d]", sp, len(out))
		if raw != nil && raw.Kind == yaml.SequenceNode {
			for i, e := range raw.Content {
				if e.Value == dep {
					c.markFrom(p, fmt.Sprintf("%s.depends_on[%d]", sp, i))
				}
			}
		} else {
			c.markFrom(p, sp+".depends_on."+dep)
		}
		out = append(out, dep)
	}
	if out != nil {
		c.markFrom(sp+".depends_on", sp+".depends_on")
	}
	return out
}

// port sets the container port: the first expose entry, else the container
// side of the first ports entry.
func (c *composeImport) port(s types.ServiceConfig, svc *Service, sp string) {
	if len(s.Expose) > 0 {
		if p, _, ok := parseExpose(s.Expose[0]); ok {
			svc.Port = p
			c.markFrom(sp+".port", sp+".expose[0]", sp+".expose")
			return
		}
	}
	if len(s.Ports) > 0 {
		svc.Port = int(s.Ports[0].Target)
		c.markFrom(sp+".port", sp+".ports[0]", sp+".ports")
	}
}

// parseExpose reads "3000", "3000/tcp" or "3000-3005/udp": the first port,
// the protocol, and whether it is a valid entry.
func parseExpose(s string) (port int, proto string, ok bool) {
	s, proto, _ = strings.Cut(s, "/")
	first, _, _ := strings.Cut(s, "-")
	p, err := strconv.Atoi(first)
	if err != nil {
		return 0, proto, false
	}
	return p, proto, true
}

// extension decodes the x-orchestro keys, top level and per service, with
// the cell file decoder: their problems carry positions and key paths like
// a cell file's.
func (c *composeImport) extension() {
	rc, d := c.rc, c.d
	if v, ok := c.project.Extensions["x-orchestro"]; ok {
		n := c.extensionNode(v, mapGet(c.root, "x-orchestro"), "x-orchestro")
		d.fields(n, "x-orchestro", composeExtKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "gateway":
				d.decodeGateway(v, rc)
			case "uses":
				rc.cell.Uses = d.strings(v, "uses")
				d.pos["uses"] = d.at(v)
			}
		})
	}
	for _, name := range c.project.ServiceNames() {
		s := c.project.Services[name]
		v, ok := s.Extensions["x-orchestro"]
		if !ok {
			continue
		}
		sp := "services." + name
		svc := rc.cell.Services[name]
		n := c.extensionNode(v, mapGet(mapGet(mapGet(c.root, "services"), name), "x-orchestro"), sp+".x-orchestro")
		d.fields(n, sp+".x-orchestro", composeServiceExtKeys, func(key string, _, v *yaml.Node) {
			p := sp + "." + key
			d.pos[p] = d.at(v)
			switch key {
			case "autoscale":
				svc.Autoscale = d.decodeAutoscale(v, p, name, rc)
			case "outlier":
				svc.Outlier = d.decodeOutlier(v, p, rc)
			case "health":
				if s.HealthCheck != nil && !s.HealthCheck.Disable {
					c.warn(c.cpos.at(sp+".healthcheck"), sp+".healthcheck", "overridden by x-orchestro.health")
				}
				for k := range d.pos {
					if strings.HasPrefix(k, p+".") {
						delete(d.pos, k)
					}
				}
				rc.hsRetry[name] = false
				svc.Health = d.decodeHealth(v, p, name, rc)
			case "port":
				svc.Port, _ = d.integer(v, p)
			}
		})
	}
}

// extensionNode turns the value compose-go loaded (interpolated, merged
// through extends) back into a node tree, with the positions of the main
// file where they match.
func (c *composeImport) extensionNode(v any, raw *yaml.Node, path string) *yaml.Node {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		c.problem(path, "", "cannot read %s: %v", path, err)
		return &yaml.Node{Kind: yaml.MappingNode}
	}
	overlayPositions(&n, raw)
	if n.Line == 0 {
		pos := c.cpos.at(path)
		setPositions(&n, pos.Line, pos.Column)
	}
	return &n
}

// overlayPositions copies line and column from raw to the matching nodes of
// n: same keys in mappings, same indexes in lists.
func overlayPositions(n, raw *yaml.Node) {
	if raw == nil {
		return
	}
	n.Line, n.Column = raw.Line, raw.Column
	switch {
	case n.Kind == yaml.MappingNode && raw.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			for j := 0; j+1 < len(raw.Content); j += 2 {
				if raw.Content[j].Value == n.Content[i].Value {
					overlayPositions(n.Content[i], raw.Content[j])
					overlayPositions(n.Content[i+1], raw.Content[j+1])
					break
				}
			}
		}
	case n.Kind == yaml.SequenceNode && raw.Kind == yaml.SequenceNode:
		for i := range n.Content {
			if i < len(raw.Content) {
				overlayPositions(n.Content[i], raw.Content[i])
			}
		}
	}
}

// setPositions gives every node without a position the one given.
func setPositions(n *yaml.Node, line, col int) {
	if n.Line == 0 {
		n.Line, n.Column = line, col
	}
	for _, e := range n.Content {
		setPositions(e, line, col)
	}
}

// defaultGateway picks the gateway port when x-orchestro does not set one:
// the first host port published by the first service, by name, that
// publishes one.
func (c *composeImport) defaultGateway() {
	if _, written := c.d.pos["gateway.port"]; written {
		return
	}
	// decodeGateway reports a gateway without a port; here that is either
	// defaulted or reported below, with a compose-specific hint.
	kept := c.d.probs[:0]
	for _, p := range c.d.probs {
		if p.Path == "gateway.port" && strings.HasPrefix(p.Msg, "missing required key") {
			continue
		}
		kept = append(kept, p)
	}
	c.d.probs = kept
	for _, name := range c.project.ServiceNames() {
		for _, p := range c.project.Services[name].Ports {
			if p.Published == "" {
				continue
			}
			first, _, _ := strings.Cut(p.Published, "-")
			port, err := strconv.Atoi(first)
			if err != nil {
				continue
			}
			c.rc.cell.Gateway.Port = port
			c.gwService, c.gwPort, c.gwTarget = name, p.Published, p.Target
			return
		}
	}
	c.probs = append(c.probs, Problem{Pos: c.d.at(c.root), Path: "x-orchestro.gateway.port",
		Msg:  "required: no service publishes a host port to use as the cell's gateway port",
		Hint: "add at the top level:  x-orchestro: {gateway: {port: 8080}}"})
}

// finishGateway records where a defaulted gateway port came from.
func (c *composeImport) finishGateway() {
	if c.gwService == "" {
		return
	}
	sp := "services." + c.gwService
	pos, where := c.gwPos, c.gwPath
	if !c.gwTaken {
		pos, where = c.cpos.at(sp), sp+".ports"
	}
	c.d.pos["gateway.port"] = pos
	c.warn(pos, "x-orchestro.gateway.port", "not set; the gateway takes host port %d, published by %s (add x-orchestro: {gateway: {port: N}} to choose)",
		c.rc.cell.Gateway.Port, where)
}

// The walk over the compose file as written: it reports every key
// orchestro does not honour, where it is written. It covers the main file,
// the files it includes and the services it extends.

// walkFile walks the top level of a compose file.
func (c *composeImport) walkFile(root *yaml.Node, file string, seen map[string]bool, main bool) {
	if root == nil || root.Kind != yaml.MappingNode {
		return
	}
	at := func(n *yaml.Node) Position { return Position{File: file, Line: n.Line, Column: n.Column} }
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		switch {
		case key == "name" || key == "include":
		case key == "services":
			for j := 0; j+1 < len(v.Content); j += 2 {
				name := v.Content[j].Value
				sp := "services." + name
				if ds, disabled := c.project.DisabledServices[name]; disabled {
					c.warn(at(v.Content[j]), sp, "not part of the cell: its profiles (%s) are not active (set COMPOSE_PROFILES to start it)",
						strings.Join(ds.Profiles, ", "))
					continue
				}
				if _, ok := c.project.Services[name]; !ok {
					continue
				}
				c.walkService(v.Content[j+1], sp, name, file, map[string]bool{file + "#" + name: true})
			}
		case key == "volumes":
			for j := 0; j+1 < len(v.Content); j += 2 {
				vp := "volumes." + v.Content[j].Value
				c.walkKeys(v.Content[j+1], vp, file, nil, "named volumes are created by orchestro for the project", nil)
			}
		case key == "version":
			c.warn(at(k), key, "obsolete and ignored")
		case key == "x-orchestro" && !main:
			c.warn(at(k), key, "not honoured outside the main compose file")
		case strings.HasPrefix(key, "x-"):
			// Extension fields: anchors and tools' settings; compose
			// ignores them too.
		default:
			c.warn(at(k), key, "%s", notHonoured(key, ""))
		}
	}
	if inc := mapGet(root, "include"); inc != nil && inc.Kind == yaml.SequenceNode {
		dir := filepath.Dir(c.absOf(file))
		for _, e := range inc.Content {
			paths := []*yaml.Node{e}
			if e.Kind == yaml.MappingNode {
				paths = nil
				if p := mapGet(e, "path"); p != nil && p.Kind == yaml.SequenceNode {
					paths = p.Content
				} else if p != nil {
					paths = []*yaml.Node{p}
				}
			}
			for _, p := range paths {
				if p.Kind != yaml.ScalarNode {
					continue
				}
				f := absPath(dir, p.Value)
				if seen[f] {
					continue
				}
				seen[f] = true
				if r := c.otherFile(f); r != nil {
					c.walkFile(r, c.displayPath(f), seen, false)
				}
			}
		}
	}
}

// displayPath names another compose file the way the main file is named:
// relative to the same base when the main file was given relative.
func (c *composeImport) displayPath(abs string) string {
	if filepath.IsAbs(c.file) {
		return abs
	}
	if rel, err := filepath.Rel(filepath.Dir(c.absFile), abs); err == nil {
		return filepath.Join(filepath.Dir(c.file), rel)
	}
	return abs
}

// absOf is the inverse of displayPath.
func (c *composeImport) absOf(display string) string {
	if abs, err := filepath.Abs(display); err == nil {
		return abs
	}
	return display
}

// otherFile parses and interpolates a file pulled in by the main one.
func (c *composeImport) otherFile(abs string) *yaml.Node {
	if r, ok := c.others[abs]; ok {
		return r
	}
	c.others[abs] = nil
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil
	}
	root, err := newDecoder(abs).parse(data)
	if err != nil {
		return nil
	}
	c.others[abs] = c.interpolated(root)
	return c.others[abs]
}

// notHonoured is the message for a key orchestro ignores.
func notHonoured(key, reason string) string {
	if reason == "" {
		reason = composeReasons[key]
	}
	if reason == "" {
		return "not honoured by orchestro"
	}
	return "not honoured by orchestro (" + reason + ")"
}

// walkKeys warns about every key of n outside honoured (extension keys
// aside) and calls fn for the honoured ones. reason explains all the keys
// of this level at once when it is set.
func (c *composeImport) walkKeys(n *yaml.Node, path, file string, honoured []string, reason string, fn func(key string, k, v *yaml.Node)) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case contains(honoured, k.Value):
			if fn != nil {
				fn(k.Value, k, v)
			}
		case strings.HasPrefix(k.Value, "x-"):
		default:
			c.warn(Position{File: file, Line: k.Line, Column: k.Column}, join(path, k.Value), "%s", notHonoured(k.Value, reason))
		}
	}
}

var composeServiceKeys = []string{
	"image", "build", "command", "entrypoint", "environment", "env_file", "deploy", "scale",
	"healthcheck", "volumes", "depends_on", "expose", "ports", "restart", "extends", "profiles",
	"cpus", "mem_limit",
}

// walkService walks one service. When it walks a service extended by name,
// sp is the path of the extended service and name the service of the cell
// that inherits it.
func (c *composeImport) walkService(n *yaml.Node, sp, name, file string, seen map[string]bool) {
	svc := c.rc.cell.Services[name]
	at := func(n *yaml.Node) Position { return Position{File: file, Line: n.Line, Column: n.Column} }
	c.walkKeys(n, sp, file, composeServiceKeys, "", func(key string, k, v *yaml.Node) {
		p := sp + "." + key
		switch key {
		case "image":
			if svc.Build != nil {
				c.warn(at(k), p, "not honoured by orchestro when build is set (orchestro tags the images it builds)")
			}
		case "build":
			c.walkKeys(v, p, file, []string{"context", "dockerfile", "args", "target"}, "", func(key string, _, v *yaml.Node) {
				if key == "args" {
					c.walkBuildArgs(v, p+".args", file)
				}
			})
		case "deploy":
			c.walkDeploy(v, p, file)
		case "healthcheck":
			c.walkKeys(v, p, file, []string{"test", "interval", "timeout", "retries", "start_period", "disable"}, "", nil)
		case "volumes":
			c.walkVolumes(v, p, file)
		case "depends_on":
			c.walkDependsOn(v, p, file)
		case "ports":
			c.walkPorts(v, p, name, file)
		case "expose":
			c.walkExpose(v, p, svc, file)
		case "restart":
			if n, ok := strings.CutPrefix(v.Value, "on-failure:"); ok {
				c.warn(at(v), p, "the retry limit %s is not honoured by orchestro", n)
			}
		case "extends":
			c.walkExtends(v, name, file, seen)
		}
	})
}

// walkBuildArgs reports build arguments without a value that the
// environment does not set either: compose drops them.
func (c *composeImport) walkBuildArgs(n *yaml.Node, p, file string) {
	check := func(at *yaml.Node, name string) {
		if _, ok := c.project.Environment[name]; !ok {
			c.warn(Position{File: file, Line: at.Line, Column: at.Column}, p+"."+name, "has no value and the environment does not set it; not passed to the build")
		}
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, e := range n.Content {
			if !strings.Contains(e.Value, "=") {
				check(e, e.Value)
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i+1].Tag == "!!null" {
				check(n.Content[i], n.Content[i].Value)
			}
		}
	}
}

func (c *composeImport) walkDeploy(n *yaml.Node, p, file string) {
	c.walkKeys(n, p, file, []string{"replicas", "resources", "restart_policy", "mode"}, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "mode":
			if v.Value != "replicated" {
				c.warn(Position{File: file, Line: v.Line, Column: v.Column}, p+".mode", "mode %s not honoured by orchestro (services are replicated)", v.Value)
			}
		case "resources":
			c.walkKeys(v, p+".resources", file, []string{"limits"}, "", func(_ string, _, v *yaml.Node) {
				c.walkKeys(v, p+".resources.limits", file, []string{"cpus", "memory"}, "", nil)
			})
		case "restart_policy":
			c.walkKeys(v, p+".restart_policy", file, []string{"condition"}, "", nil)
		}
	})
}

func (c *composeImport) walkVolumes(n *yaml.Node, p, file string) {
	if n.Kind != yaml.SequenceNode {
		return
	}
	for i, e := range n.Content {
		ep := fmt.Sprintf("%s[%d]", p, i)
		at := Position{File: file, Line: e.Line, Column: e.Column}
		var typ, source string
		switch e.Kind {
		case yaml.ScalarNode:
			v, err := format.ParseVolume(e.Value)
			if err != nil {
				continue
			}
			typ, source = v.Type, v.Source
			if parts := strings.Split(e.Value, ":"); len(parts) >= 3 || (len(parts) == 2 && v.Source == "") {
				for _, opt := range strings.Split(parts[len(parts)-1], ",") {
					if opt != "ro" && opt != "rw" && opt != "" {
						c.warn(at, ep, "mode %s not honoured by orchestro", opt)
					}
				}
			}
		case yaml.MappingNode:
			if t := mapGet(e, "type"); t != nil {
				typ = t.Value
			}
			if s := mapGet(e, "source"); s != nil {
				source = s.Value
			}
			c.walkKeys(e, ep, file, []string{"type", "source", "target", "read_only"}, "", nil)
		}
		switch {
		case typ == types.VolumeTypeVolume && source == "":
			c.warn(at, ep, "anonymous volume not honoured by orchestro (name it, as in data:/path)")
		case typ != types.VolumeTypeVolume && typ != types.VolumeTypeBind:
			c.warn(at, ep, "%s mount not honoured by orchestro (only bind mounts and named volumes)", typ)
		}
	}
}

func (c *composeImport) walkDependsOn(n *yaml.Node, p, file string) {
	missing := func(at Position, dp, dep string) bool {
		if _, ok := c.project.Services[dep]; ok {
			return false
		}
		why := "no such service"
		if _, ok := c.project.DisabledServices[dep]; ok {
			why = "its profiles are not active"
		}
		c.warn(at, dp, "dependency on %s dropped: it is not part of the cell (%s)", dep, why)
		return true
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, e := range n.Content {
			missing(Position{File: file, Line: e.Line, Column: e.Column}, fmt.Sprintf("%s[%d]", p, i), e.Value)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			dp := p + "." + k.Value
			if missing(Position{File: file, Line: k.Line, Column: k.Column}, dp, k.Value) {
				continue
			}
			c.walkKeys(v, dp, file, []string{"condition", "restart", "required"}, "", func(key string, k, v *yaml.Node) {
				at := Position{File: file, Line: v.Line, Column: v.Column}
				switch key {
				case "condition":
					if v.Value != types.ServiceConditionStarted && v.Value != types.ServiceConditionHealthy {
						c.warn(at, dp+".condition", "%s not honoured by orchestro (it waits for the dependency to start, and to be healthy if it has a health check)", v.Value)
					}
				case "restart":
					if strings.EqualFold(v.Value, "true") {
						c.warn(at, dp+".restart", "not honoured by orchestro (a dependency's restart does not restart this service)")
					}
				case "required":
					if strings.EqualFold(v.Value, "false") {
						c.warn(at, dp+".required", "not honoured by orchestro (a dependency in the cell is always required)")
					}
				}
			})
		}
	}
}

// walkPorts reports what each ports entry asks for and orchestro does not
// give: host bindings (only the gateway publishes a port), container ports
// other than the service's port, UDP.
func (c *composeImport) walkPorts(n *yaml.Node, p, name, file string) {
	if n.Kind != yaml.SequenceNode {
		return
	}
	port := c.rc.cell.Services[name].Port
	for i, e := range n.Content {
		ep := fmt.Sprintf("%s[%d]", p, i)
		at := Position{File: file, Line: e.Line, Column: e.Column}
		var cfgs []types.ServicePortConfig
		var extra []string
		switch e.Kind {
		case yaml.ScalarNode:
			cfgs, _ = types.ParsePortConfig(e.Value)
		case yaml.MappingNode:
			var pc types.ServicePortConfig
			for j := 0; j+1 < len(e.Content); j += 2 {
				k, v := e.Content[j].Value, e.Content[j+1].Value
				switch k {
				case "target":
					t, _ := strconv.ParseUint(v, 10, 32)
					pc.Target = uint32(t)
				case "published":
					pc.Published = v
				case "host_ip":
					pc.HostIP = v
				case "protocol":
					pc.Protocol = v
				case "mode", "name", "app_protocol":
					extra = append(extra, k)
				}
			}
			cfgs = []types.ServicePortConfig{pc}
		}
		var notes, hostPorts, targets []string
		for _, pc := range cfgs {
			isGateway := !c.gwTaken && name == c.gwService && pc.Published == c.gwPort && pc.Target == c.gwTarget
			if isGateway {
				c.gwTaken = true
				c.gwPos, c.gwPath = at, ep
				if pc.HostIP != "" && pc.HostIP != "127.0.0.1" {
					notes = append(notes, fmt.Sprintf("host_ip %s not honoured by orchestro (the gateway binds 127.0.0.1)", pc.HostIP))
				}
			} else if pc.Published != "" {
				hostPorts = appendNew(hostPorts, pc.Published)
			}
			if int(pc.Target) != port {
				targets = appendNew(targets, strconv.Itoa(int(pc.Target)))
			}
			if pc.Protocol != "" && pc.Protocol != "tcp" {
				notes = appendNew(notes, pc.Protocol+" not honoured by orchestro (the gateway routes HTTP)")
			}
		}
		if len(hostPorts) > 0 {
			notes = append(notes, fmt.Sprintf("host port %s not published by orchestro (only the cell gateway publishes a port)", strings.Join(hostPorts, ", ")))
		}
		if len(targets) > 0 {
			notes = append(notes, fmt.Sprintf("container port %s not routed by orchestro (a service has one port: %d)", strings.Join(targets, ", "), port))
		}
		for _, k := range extra {
			notes = append(notes, k+" not honoured by orchestro")
		}
		if len(notes) > 0 {
			c.warn(at, ep, "%s", strings.Join(notes, "; "))
		}
	}
}

func (c *composeImport) walkExpose(n *yaml.Node, p string, svc *Service, file string) {
	items := n.Content
	if n.Kind == yaml.ScalarNode {
		items = []*yaml.Node{n}
	}
	for i, e := range items {
		ep := fmt.Sprintf("%s[%d]", p, i)
		at := Position{File: file, Line: e.Line, Column: e.Column}
		port, proto, ok := parseExpose(e.Value)
		if !ok {
			continue
		}
		var notes []string
		if port != svc.Port || strings.Contains(e.Value, "-") {
			notes = append(notes, fmt.Sprintf("port %s not routed by orchestro (a service has one port: %d)", e.Value, svc.Port))
		} else if proto != "" && proto != "tcp" {
			notes = append(notes, proto+" not honoured by orchestro (the gateway routes HTTP)")
		}
		if len(notes) > 0 {
			c.warn(at, ep, "%s", strings.Join(notes, "; "))
		}
	}
}

// walkExtends walks the service a service extends, reporting what it
// inherits from there under the key paths of the file it is written in.
func (c *composeImport) walkExtends(v *yaml.Node, name, file string, seen map[string]bool) {
	base, baseFile := "", ""
	switch v.Kind {
	case yaml.ScalarNode:
		base = v.Value
	case yaml.MappingNode:
		if s := mapGet(v, "service"); s != nil {
			base = s.Value
		}
		if f := mapGet(v, "file"); f != nil {
			baseFile = f.Value
		}
	}
	absFile := c.absOf(file)
	root := c.iroot
	if absFile != c.absFile {
		root = c.otherFile(absFile)
	}
	display := file
	if baseFile != "" {
		absFile = absPath(filepath.Dir(absFile), baseFile)
		root = c.otherFile(absFile)
		display = c.displayPath(absFile)
	}
	key := display + "#" + base
	if base == "" || root == nil || seen[key] {
		return
	}
	seen[key] = true
	if n := mapGet(mapGet(root, "services"), base); n != nil {
		c.walkService(n, "services."+base, name, display, seen)
	}
}

// The helpers below read yaml.v3 trees.

// mapGet returns the value of key in a mapping node, or nil.
func mapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// mapValues returns the values of a mapping node.
func mapValues(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []*yaml.Node
	for i := 1; i < len(n.Content); i += 2 {
		out = append(out, n.Content[i])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func appendNew(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

func firstNonEmpty(s ...string) string {
	for _, e := range s {
		if e != "" {
			return e
		}
	}
	return ""
}

// cleanFloat32 widens a float32 without the noise of its binary
// representation: 0.1 stays 0.1.
func cleanFloat32(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}

// ConvertCompose loads a compose file as a cell and renders it as a cell
// file: keys in the cell file's order, paths relative to the compose file's
// directory, and values equal to the built-in defaults left out. The
// warnings list what the cell does not carry over. An invalid file returns
// Problems.
func ConvertCompose(path string, env Env) ([]byte, []Warning, error) {
	if env.os == nil && env.dotenv == nil {
		env = OSEnv()
	}
	rc, warns, probs := loadCompose(path, env)
	if rc == nil {
		return nil, warns, probs.sorted()
	}
	applyDefaults(rc)
	v := &validator{}
	v.validateCell(rc.cell)
	if probs = append(probs, v.probs...); len(probs) > 0 {
		return nil, warns, probs.sorted()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, warns, err
	}
	out, err := renderCell(rc.cell, filepath.Dir(abs), filepath.Base(abs))
	if err != nil {
		return nil, warns, fmt.Errorf("render cell %s: %w", rc.cell.Name, err)
	}
	return out, warns, nil
}

// renderCell writes a defaulted cell as cell file YAML. dir is the
// directory the file will live in; from names the file it came from.
func renderCell(c *Cell, dir, from string) ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	root.Content = append(root.Content, yStr("cell"), yStr(c.Name))
	root.Content[0].HeadComment = "Converted from " + from + " by orchestro convert."

	gw := yMap("port", yInt(c.Gateway.Port))
	if c.Gateway.Balance != DefaultBalance {
		gw.Content = append(gw.Content, yStr("balance"), yStr(c.Gateway.Balance))
	}
	// Routes equal to the default ones are left out. An empty list the
	// author wrote is kept even when the default is empty too: it says
	// "no routes", which must survive a service gaining a port.
	_, routesWritten := c.pos["gateway.routes"]
	if !routesEqual(c.Gateway.Routes, DefaultRoutes(c)) || (routesWritten && len(c.Gateway.Routes) == 0) {
		routes := &yaml.Node{Kind: yaml.SequenceNode}
		for _, r := range c.Gateway.Routes {
			rn := yMap("path", yStr(r.Path), "service", yStr(r.Service))
			if r.StripPrefix {
				rn.Content = append(rn.Content, yStr("strip_prefix"), yBool(true))
			}
			if r.Timeout != DefaultRouteTimeout {
				rn.Content = append(rn.Content, yStr("timeout"), yDuration(r.Timeout))
			}
			if r.Retries != DefaultRouteRetries {
				rn.Content = append(rn.Content, yStr("retries"), yInt(r.Retries))
			}
			routes.Content = append(routes.Content, rn)
		}
		gw.Content = append(gw.Content, yStr("routes"), routes)
	}
	// The gateway's outlier is written where it differs from the
	// defaults, a service's where it differs from the gateway's: what a
	// reader of the cell file merges back to the same settings.
	gwOutlier := defaultOutlier
	if c.Gateway.Outlier != nil {
		gwOutlier = *c.Gateway.Outlier
	}
	if on := renderOutlier(gwOutlier, defaultOutlier); on != nil {
		gw.Content = append(gw.Content, yStr("outlier"), on)
	}
	root.Content = append(root.Content, yStr("gateway"), gw)
	if len(c.Uses) > 0 {
		root.Content = append(root.Content, yStr("uses"), yFlow(c.Uses))
	}

	svcs := &yaml.Node{Kind: yaml.MappingNode}
	for _, name := range c.ServiceNames() {
		svcs.Content = append(svcs.Content, yStr(name), renderService(c.Services[name], gwOutlier, dir))
	}
	root.Content = append(root.Content, yStr("services"), svcs)

	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// renderService writes one service; gwOutlier is the gateway's outlier
// setting, which the service's is written against.
func renderService(s *Service, gwOutlier Outlier, dir string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v *yaml.Node) { n.Content = append(n.Content, yStr(key), v) }
	if b := s.Build; b != nil {
		if b.Dockerfile == "" && b.Target == "" && len(b.Args) == 0 && b.Go == "" {
			add("build", yStr(relPath(dir, b.Context)))
		} else {
			bn := &yaml.Node{Kind: yaml.MappingNode}
			if b.Context != "" {
				bn.Content = append(bn.Content, yStr("context"), yStr(relPath(dir, b.Context)))
			}
			if b.Dockerfile != "" {
				bn.Content = append(bn.Content, yStr("dockerfile"), yStr(b.Dockerfile))
			}
			if len(b.Args) > 0 {
				bn.Content = append(bn.Content, yStr("args"), yStrMap(b.Args))
			}
			if b.Target != "" {
				bn.Content = append(bn.Content, yStr("target"), yStr(b.Target))
			}
			if b.Go != "" {
				bn.Content = append(bn.Content, yStr("go"), yStr(relPath(dir, b.Go)))
			}
			add("build", bn)
		}
	}
	if s.Image != "" {
		add("image", yStr(s.Image))
	}
	if s.Port != 0 {
		add("port", yInt(s.Port))
	}
	if len(s.Command) > 0 {
		add("command", yFlow(s.Command))
	}
	if len(s.Entrypoint) > 0 {
		add("entrypoint", yFlow(s.Entrypoint))
	}
	if len(s.Env) > 0 {
		add("env", yStrMap(s.Env))
	}
	if s.Replicas != defaultReplicas(s) {
		add("replicas", yInt(s.Replicas))
	}
	if s.Restart != DefaultRestart {
		add("restart", yStr(s.Restart))
	}
	if h := s.Health; h != nil {
		hn := &yaml.Node{Kind: yaml.MappingNode}
		hadd := func(key string, v *yaml.Node) { hn.Content = append(hn.Content, yStr(key), v) }
		switch {
		case h.HTTP != "":
			hadd("http", yStr(h.HTTP))
		case h.TCP:
			hadd("tcp", yBool(true))
		case len(h.Exec) > 0:
			hadd("exec", yFlow(h.Exec))
		}
		if h.Interval != DefaultHealthInterval {
			hadd("interval", yDuration(h.Interval))
		}
		if h.Timeout != DefaultHealthTimeout {
			hadd("timeout", yDuration(h.Timeout))
		}
		if h.Retries != DefaultHealthRetries {
			hadd("retries", yInt(h.Retries))
		}
		if h.StartPeriod != 0 {
			hadd("start_period", yDuration(h.StartPeriod))
		}
		add("health", hn)
	}
	if a := s.Autoscale; a != nil {
		an := &yaml.Node{Kind: yaml.MappingNode}
		aadd := func(key string, v *yaml.Node) { an.Content = append(an.Content, yStr(key), v) }
		if a.Min != 1 {
			aadd("min", yInt(a.Min))
		}
		aadd("max", yInt(a.Max))
		for _, t := range []struct {
			key string
			v   float64
		}{{"inflight", a.Inflight}, {"rps", a.RPS}, {"cpu", a.CPU}} {
			if t.v != 0 {
				aadd(t.key, yFloat(t.v))
			}
		}
		if a.ScaleDownAfter != DefaultScaleDownAfter {
			aadd("scale_down_after", yDuration(a.ScaleDownAfter))
		}
		add("autoscale", an)
	}
	if o := s.Outlier; o != nil {
		if on := renderOutlier(*o, gwOutlier); on != nil {
			add("outlier", on)
		}
	}
	if r := s.Resources; r != (Resources{}) {
		rn := &yaml.Node{Kind: yaml.MappingNode}
		if r.CPUs != 0 {
			rn.Content = append(rn.Content, yStr("cpus"), yFloat(r.CPUs))
		}
		if r.Memory != 0 {
			rn.Content = append(rn.Content, yStr("memory"), yStr(formatBytes(r.Memory)))
		}
		add("resources", rn)
	}
	if len(s.Volumes) > 0 {
		vn := &yaml.Node{Kind: yaml.SequenceNode}
		for _, v := range s.Volumes {
			src := v.Source
			if v.Type == VolumeBind {
				src = relPath(dir, src)
			}
			spec := src + ":" + v.Target
			if v.ReadOnly {
				spec += ":ro"
			}
			vn.Content = append(vn.Content, yStr(spec))
		}
		add("volumes", vn)
	}
	if len(s.DependsOn) > 0 {
		add("depends_on", yFlow(s.DependsOn))
	}
	return n
}

// renderOutlier writes the fields of o that differ from base, or returns nil
// when none does.
func renderOutlier(o, base Outlier) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	if o.Consecutive5xx != base.Consecutive5xx {
		n.Content = append(n.Content, yStr("consecutive_5xx"), yInt(o.Consecutive5xx))
	}
	if o.BaseEjection != base.BaseEjection {
		n.Content = append(n.Content, yStr("base_ejection"), yDuration(o.BaseEjection))
	}
	if o.MaxEjectionPercent != base.MaxEjectionPercent {
		n.Content = append(n.Content, yStr("max_ejection_percent"), yInt(o.MaxEjectionPercent))
	}
	if len(n.Content) == 0 {
		return nil
	}
	return n
}

// defaultReplicas is the replica count applyDefaults gives a service that
// does not set one.
func defaultReplicas(s *Service) int {
	if a := s.Autoscale; a != nil {
		r := max(a.Min, 1)
		if a.Max > 0 {
			r = min(r, a.Max)
		}
		return r
	}
	return DefaultReplicas
}

func routesEqual(a, b []Route) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// relPath makes p relative to dir in the form the cell decoder reads as a
// path: it starts with "." or "/".
func relPath(dir, p string) string {
	rel, err := filepath.Rel(dir, p)
	switch {
	case err != nil:
		return p
	case rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)):
		return filepath.ToSlash(rel)
	}
	return "./" + filepath.ToSlash(rel)
}

// formatBytes writes a memory size the way people write it when it is a
// whole number of G, M or K.
func formatBytes(b int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if b%u.size == 0 {
			return strconv.FormatInt(b/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(b, 10)
}

// Node constructors. String values have "$" doubled: the cell loader
// interpolates every value, and these are final values.

func yStr(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ReplaceAll(s, "$", "$$")}
	if yaml11Bools[strings.ToLower(s)] {
		n.Style = yaml.DoubleQuotedStyle // read as booleans by YAML 1.1 tools
	}
	return n
}

var yaml11Bools = map[string]bool{"y": true, "yes": true, "n": true, "no": true, "on": true, "off": true}

// yDuration writes a duration the short way: 1m rather than 1m0s.
func yDuration(d Duration) *yaml.Node {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return yStr(s)
}

func yInt(i int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(i)}
}

func yFloat(f float64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.FormatFloat(f, 'f', -1, 64)}
}

func yBool(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func yFlow(list []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range list {
		n.Content = append(n.Content, yStr(s))
	}
	return n
}

func yStrMap(m map[string]string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range sortedKeys(m) {
		key := yStr(k)
		key.Value = k // keys are not interpolated
		n.Content = append(n.Content, key, yStr(m[k]))
	}
	return n
}

func yMap(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Content = append(n.Content, yStr(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return n
}
