package cellspec

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// The environment compose-go interpolates with, and interpolated copies of
// the files the walk reads.

// varRef finds variable references: $NAME and ${NAME...}.
var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

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
