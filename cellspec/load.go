package cellspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// File names looked up when no -f is given, in order.
var (
	ProjectFileNames = []string{"orchestro.yaml", "orchestro.yml"}
	CellFileNames    = []string{"cell.yaml", "cell.yml"}
	ComposeFileNames = []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}
)

// Options says what to load.
type Options struct {
	// Files are the -f arguments: cell files, project files, compose files
	// or directories holding an orchestro.yaml. Empty means discovery in
	// WorkDir.
	Files []string
	// ProjectName is -p; empty means project: in orchestro.yaml, else the
	// directory name.
	ProjectName string
	// WorkDir is the directory relative paths and discovery start from;
	// empty means the process's working directory.
	WorkDir string
	// Env resolves ${VAR}; the zero value means the process environment.
	Env Env
}

// ErrNoSpec is returned when discovery finds nothing to load.
var ErrNoSpec = errors.New("no orchestro.yaml, cell.yaml or compose file here")

// Load reads, interpolates, defaults and validates a project. An invalid
// project returns Problems listing every problem found. Warnings are in the
// returned project.
func Load(opts Options) (*Project, error) {
	if opts.WorkDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("working directory: %w", err)
		}
		opts.WorkDir = wd
	}
	if opts.Env.os == nil && opts.Env.dotenv == nil {
		opts.Env = OSEnv()
	}
	files := opts.Files
	if len(files) == 0 {
		f, err := discover(opts.WorkDir)
		if err != nil {
			return nil, err
		}
		files = []string{f}
	}

	l := &loader{env: opts.Env, seen: map[string]bool{}}
	for _, f := range files {
		l.add(absPath(opts.WorkDir, f), Position{File: f}, true)
	}

	p := &Project{Name: opts.ProjectName, Dir: l.firstDir, Target: l.target, Swarm: l.swarm}
	if p.Name == "" {
		p.Name = l.projectName
	}
	if p.Name == "" {
		p.Name = normalizeProjectName(filepath.Base(p.Dir))
	}
	if !IsDNSLabel(p.Name) && (p.Name != "" || len(l.probs) == 0) {
		src, pos := "-p", Position{File: "-p"}
		if opts.ProjectName == "" {
			src, pos = "project name", l.projectPos
			if pos.File == "" {
				pos = Position{File: p.Dir}
				src = "project name (from the directory name)"
			}
		}
		l.probs = append(l.probs, Problem{Pos: pos, Path: "project", Msg: fmt.Sprintf("invalid %s %q", src, p.Name), Hint: dnsHint})
	}
	v := &validator{}
	for _, rc := range l.cells {
		applyDefaults(rc)
		v.validateCell(rc.cell)
		p.Cells = append(p.Cells, rc.cell)
	}
	v.validateProject(p)
	sort.SliceStable(p.Cells, func(i, j int) bool { return p.Cells[i].Name < p.Cells[j].Name })
	p.Warnings = l.warnings
	probs := append(l.probs, v.probs...)
	if len(probs) > 0 {
		return p, probs.sorted()
	}
	return p, nil
}

// LoadCell reads one cell file from bytes, for tools and fuzzing: it
// decodes, interpolates, defaults and validates the cell on its own.
func LoadCell(file string, data []byte, env Env) (*Cell, []Warning, error) {
	d := newDecoder(file)
	root, err := d.parse(data)
	if err != nil {
		return nil, nil, err
	}
	d.interpolate(root, "", env)
	rc := d.decodeCell(root, filepath.Dir(file))
	rc.cell.File = file
	rc.cell.pos = d.pos
	rc.cell.bad = d.bad
	applyDefaults(rc)
	v := &validator{}
	v.validateCell(rc.cell)
	probs := append(d.probs, v.probs...)
	if len(probs) > 0 {
		return rc.cell, d.warnings, probs.sorted()
	}
	return rc.cell, d.warnings, nil
}

// loader accumulates the cells of a project from its files.
type loader struct {
	env         Env
	seen        map[string]bool
	cells       []*rawCell
	probs       Problems
	warnings    []Warning
	firstDir    string
	projectName string
	projectPos  Position
	target      string
	swarm       SwarmSettings
}

func (l *loader) problem(pos Position, format string, args ...any) {
	l.probs = append(l.probs, Problem{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// add loads path, which was named at from (a -f flag or a project file's
// cells list). top is true for -f arguments, which may be directories or
// project files.
func (l *loader) add(path string, from Position, top bool) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			l.problem(from, "%s does not exist", path)
		} else {
			l.problem(from, "%v", err)
		}
		return
	}
	if info.IsDir() {
		if !top {
			l.problem(from, "%s is a directory; list cell files", path)
			return
		}
		// A directory is read as the working directory would be:
		// orchestro.yaml, else cell.yaml, else a compose file.
		f, err := discover(path)
		if err != nil {
			l.problem(from, "directory %s holds no orchestro.yaml, cell.yaml or compose file", path)
			return
		}
		path = f
	}
	if l.seen[path] {
		return
	}
	l.seen[path] = true
	if l.firstDir == "" {
		l.firstDir = filepath.Dir(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		l.problem(from, "%v", err)
		return
	}
	d := newDecoder(path)
	root, err := d.parse(data)
	if err != nil {
		l.probs = append(l.probs, err.(Problems)...)
		return
	}
	switch classify(path, root) {
	case kindProject:
		if !top {
			l.problem(from, "%s is a project file; project files cannot be nested", path)
			return
		}
		l.addProject(path, root)
	case kindCompose:
		rc, warns, probs := loadCompose(path, l.env)
		l.warnings = append(l.warnings, warns...)
		l.probs = append(l.probs, probs...)
		if rc != nil {
			l.cells = append(l.cells, rc)
		}
	default:
		env, err := l.env.withDotEnv(filepath.Dir(path))
		if err != nil {
			l.problem(Position{File: path}, "%v", err)
			return
		}
		d.interpolate(root, "", env)
		rc := d.decodeCell(root, filepath.Dir(path))
		rc.cell.File = path
		rc.cell.pos = d.pos
		rc.cell.bad = d.bad
		l.probs = append(l.probs, d.probs...)
		l.warnings = append(l.warnings, d.warnings...)
		l.cells = append(l.cells, rc)
	}
}

func (l *loader) addProject(path string, root *yaml.Node) {
	d := newDecoder(path)
	env, err := l.env.withDotEnv(filepath.Dir(path))
	if err != nil {
		l.problem(Position{File: path}, "%v", err)
		return
	}
	d.interpolate(root, "", env)
	var cells []*yaml.Node
	d.fields(root, "", []string{"project", "cells", "target", "swarm"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "target":
			switch t := d.str(v, key); t {
			case "", TargetDocker, TargetSwarm:
				l.target = t
			default:
				d.errorf(v, key, "docker runs on the local engine, swarm on a Docker Swarm", "must be docker or swarm, not %q", t)
			}
		case "swarm":
			d.fields(v, key, []string{"encrypted"}, func(k string, _, sv *yaml.Node) {
				if b, ok := d.boolean(sv, key+"."+k); ok {
					l.swarm.Encrypted = b
				}
			})
		case "project":
			if name := d.str(v, key); name != "" && l.projectName == "" {
				l.projectName = name
				l.projectPos = d.at(v)
			}
		case "cells":
			if v.Kind != yaml.SequenceNode {
				d.errorf(v, key, "", "must be a list of files, not %s", kindName(v))
				return
			}
			cells = v.Content
		}
	})
	if _, ok := d.pos["cells"]; !ok && root.Kind == yaml.MappingNode {
		d.errorf(root, "cells", "list the cell and compose files of the project", "missing required key \"cells\"")
	}
	l.probs = append(l.probs, d.probs...)
	l.warnings = append(l.warnings, d.warnings...)
	if l.projectPos.File == "" {
		l.projectPos = Position{File: path}
	}
	for i, n := range cells {
		f, ok := d.scalar(n, fmt.Sprintf("cells[%d]", i), "a file path")
		if !ok {
			l.probs = append(l.probs, d.probs[len(d.probs)-1])
			continue
		}
		l.add(absPath(filepath.Dir(path), f), d.at(n), false)
	}
}

// parse reads a YAML document. An empty document is a problem; a syntax
// error is reported with its line.
func (d *decoder) parse(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{Pos: Position{File: d.file, Line: 1, Column: 1}, Msg: "file is empty"}}
		}
		return nil, Problems{d.yamlProblem(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Problems{{Pos: Position{File: d.file, Line: extra.Line, Column: extra.Column}, Msg: "more than one YAML document", Hint: "one cell per file"}}
	}
	if len(doc.Content) == 0 {
		return nil, Problems{{Pos: Position{File: d.file, Line: 1, Column: 1}, Msg: "file is empty"}}
	}
	root := doc.Content[0]
	if err := checkAliases(root, 0); err != nil {
		return nil, Problems{{Pos: d.at(root), Msg: err.Error()}}
	}
	resolveAliases(root)
	return root, nil
}

// yamlProblem turns a yaml.v3 syntax error ("yaml: line 3: ...") into a
// Problem with a position.
func (d *decoder) yamlProblem(err error) Problem {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if strings.HasPrefix(msg, "line ") {
		var rest string
		if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
			_, rest, _ = strings.Cut(msg, ":")
			msg = strings.TrimSpace(rest)
		}
	}
	col := 0
	if line > 0 {
		col = 1
	}
	return Problem{Pos: Position{File: d.file, Line: line, Column: col}, Msg: "invalid YAML: " + msg}
}

// checkAliases refuses alias bombs: deeply nested or hugely expanding
// aliases.
func checkAliases(n *yaml.Node, depth int) error {
	var count int
	var walk func(*yaml.Node, int) error
	walk = func(n *yaml.Node, depth int) error {
		if depth > 100 {
			return errors.New("document is nested too deeply")
		}
		count++
		if count > 100000 {
			return errors.New("document is too large once aliases are expanded")
		}
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			return walk(n.Alias, depth+1)
		}
		for _, c := range n.Content {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(n, depth)
}

// resolveAliases replaces alias nodes by copies of their anchors, so the
// decoder sees plain trees (and merge keys "<<" are expanded).
func resolveAliases(n *yaml.Node) {
	for i, c := range n.Content {
		if c.Kind == yaml.AliasNode && c.Alias != nil {
			cp := deepCopy(c.Alias)
			n.Content[i] = cp
			c = cp
		}
		resolveAliases(c)
	}
	if n.Kind == yaml.MappingNode {
		var out []*yaml.Node
		var merged []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
				switch v.Kind {
				case yaml.MappingNode:
					merged = append(merged, v.Content...)
				case yaml.SequenceNode:
					for _, m := range v.Content {
						if m.Kind == yaml.MappingNode {
							merged = append(merged, m.Content...)
						}
					}
				}
				continue
			}
			out = append(out, k, v)
		}
		if merged != nil {
			have := map[string]bool{}
			for i := 0; i < len(out); i += 2 {
				have[out[i].Value] = true
			}
			for i := 0; i+1 < len(merged); i += 2 {
				if !have[merged[i].Value] {
					have[merged[i].Value] = true
					out = append(out, merged[i], merged[i+1])
				}
			}
			n.Content = out
		}
	}
}

func deepCopy(n *yaml.Node) *yaml.Node {
	cp := *n
	cp.Content = make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		cp.Content[i] = deepCopy(c)
	}
	if cp.Kind == yaml.AliasNode && cp.Alias != nil {
		return deepCopy(cp.Alias)
	}
	return &cp
}

type fileKind int

const (
	kindCell fileKind = iota
	kindProject
	kindCompose
)

// classify tells a project file (it has cells:), a compose file (a compose
// file name, or services: without cell:) and a cell file apart.
func classify(path string, root *yaml.Node) fileKind {
	base := strings.ToLower(filepath.Base(path))
	if strings.HasPrefix(base, "docker-compose") || strings.HasPrefix(base, "compose.") || strings.HasPrefix(base, "compose-") {
		return kindCompose
	}
	if root.Kind != yaml.MappingNode {
		return kindCell
	}
	has := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		has[root.Content[i].Value] = true
	}
	switch {
	case has["cell"]:
		return kindCell
	case has["cells"] || has["project"]:
		return kindProject
	case has["services"] && (has["version"] || has["networks"] || has["x-orchestro"] || has["name"] || has["volumes"] || looksLikeCompose(root)):
		return kindCompose
	}
	return kindCell
}

// looksLikeCompose reports whether any service uses a compose-only key.
func looksLikeCompose(root *yaml.Node) bool {
	composeOnly := map[string]bool{"environment": true, "ports": true, "expose": true, "healthcheck": true, "deploy": true, "container_name": true, "networks": true, "env_file": true}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "services" || root.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		svcs := root.Content[i+1]
		for j := 1; j < len(svcs.Content); j += 2 {
			s := svcs.Content[j]
			for k := 0; k+1 < len(s.Content); k += 2 {
				if composeOnly[s.Content[k].Value] {
					return true
				}
			}
		}
	}
	return false
}

func discover(dir string) (string, error) {
	for _, names := range [][]string{ProjectFileNames, CellFileNames, ComposeFileNames} {
		if f := firstExisting(dir, names); f != "" {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w (in %s); pass -f FILE", ErrNoSpec, dir)
}

func firstExisting(dir string, names []string) string {
	for _, n := range names {
		p := filepath.Join(dir, n)
		if info, err := os.Stat(p); err == nil && !info.IsDir() {
			return p
		}
	}
	return ""
}

// normalizeProjectName turns a directory name into a project name as docker
// compose does: lower case, and only letters, digits, '-' and '_' kept
// ('_' becomes '-' here, since names are DNS labels).
func normalizeProjectName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == '.' || r == ' ':
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
