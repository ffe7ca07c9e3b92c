package cellspec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
	composeloader "github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
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
//   - the top-level x-orchestro key holds what compose lacks, {gateway, uses,
//     flows}, and a service's x-orchestro key holds {autoscale, health,
//     outlier, port}; both are decoded by the cell file decoder, so they
//     are checked as strictly and reported at the same key paths (flows[0]
//     for x-orchestro.flows[0]);
//   - a flow's ${{ expressions }} are left to the flow by compose-go's
//     interpolation, as by the cell file's;
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
		// x-orchestro.flows holds ${{ expressions }}, which compose's
		// own interpolation takes for malformed variables.
		cli.WithLoadOptions(func(o *composeloader.Options) {
			if o.Interpolate != nil {
				o.Interpolate.Substitute = func(s string, m template.Mapping) (string, error) {
					return substituteVariables(s, func(text string) (string, error) { return template.Substitute(text, m) })
				}
			}
		}),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
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
