package cellspec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"gopkg.in/yaml.v3"
)

// decoder turns a yaml.v3 node tree into spec values by hand, so that every
// value keeps its line and column and every unknown key is reported. It
// never stops at the first problem: it records it and carries on.
type decoder struct {
	file     string
	probs    Problems
	warnings []Warning
	pos      positions
	// bad holds the paths whose values failed to decode, so validation
	// does not report the zero value left in their place a second time.
	bad map[string]bool
	// orig holds the text of scalars before interpolation.
	orig map[*yaml.Node]string
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: positions{}, bad: map[string]bool{}, orig: map[*yaml.Node]string{}}
}

func (d *decoder) at(n *yaml.Node) Position {
	if n == nil {
		return Position{File: d.file}
	}
	return Position{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, path, hint, format string, args ...any) {
	d.bad[path] = true
	if o, ok := d.orig[n]; ok && hint == "" {
		hint = "the value comes from " + o
	}
	d.probs = append(d.probs, Problem{Pos: d.at(n), Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func (d *decoder) mark(path string, n *yaml.Node) {
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = d.at(n)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

// fields walks a mapping node, calling fn for each known key and reporting
// unknown and duplicate keys. known lists the keys accepted at this level.
func (d *decoder) fields(n *yaml.Node, path string, known []string, fn func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "", "must be a mapping, not %s", kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		p := join(path, key)
		if seen[key] {
			d.errorf(k, p, "", "duplicate key %q", key)
			continue
		}
		seen[key] = true
		if !contains(known, key) {
			d.errorf(k, p, suggest(key, known), "unknown key %q", key)
			continue
		}
		d.mark(p, k)
		fn(key, k, v)
	}
}

// entries walks a mapping whose keys are names chosen by the user (services,
// env variables).
func (d *decoder) entries(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "", "must be a mapping, not %s", kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if seen[k.Value] {
			d.errorf(k, p, "", "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		d.mark(p, k)
		fn(k.Value, k, v)
	}
}

func (d *decoder) scalar(n *yaml.Node, path, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, path, "", "must be %s, not %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(n *yaml.Node, path string) string {
	s, _ := d.scalar(n, path, "a string")
	return s
}

func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	s, ok := d.scalar(n, path, "an integer")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil || v > math.MaxInt32 || v < math.MinInt32 {
		d.errorf(n, path, "", "must be an integer, not %q", s)
		return 0, false
	}
	return int(v), true
}

func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	s, ok := d.scalar(n, path, "a number")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.errorf(n, path, "", "must be a number, not %q", s)
		return 0, false
	}
	return v, true
}

// boolean reads true or false (yes/no and on/off too, as YAML 1.1 tools
// do). The second result is false when the value is neither, so that a
// caller keeping whether a boolean was written does not take a bad value
// for a written false.
func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	s, ok := d.scalar(n, path, "true or false")
	if !ok {
		return false, false
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	d.errorf(n, path, "", "must be true or false, not %q", s)
	return false, false
}

// duration parses a Go duration ("250ms", "2s", "1m30s"). A bare integer
// is refused: it is ambiguous.
func (d *decoder) duration(n *yaml.Node, path string) (Duration, bool) {
	s, ok := d.scalar(n, path, "a duration")
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		hint := "use a unit, for example 2s or 500ms"
		if _, nerr := strconv.Atoi(s); nerr != nil {
			hint = "for example 2s, 500ms or 1m30s"
		}
		d.errorf(n, path, hint, "invalid duration %q", s)
		return 0, false
	}
	if v <= 0 {
		d.errorf(n, path, "", "duration must be positive, not %s", s)
		return 0, false
	}
	return Duration(v), true
}

// size parses a size as docker's units.RAMInBytes reads it ("256M", "1G",
// "1MiB", a number of bytes); what names it in the message.
func (d *decoder) size(n *yaml.Node, path, what, hint string) (int64, bool) {
	s, ok := d.scalar(n, path, "a size")
	if !ok {
		return 0, false
	}
	b, err := units.RAMInBytes(s)
	if err != nil || b <= 0 {
		d.errorf(n, path, hint, "invalid %s %q", what, s)
		return 0, false
	}
	return b, true
}

// strings decodes a list of strings; a lone scalar is accepted as a
// one-element list only when single is true.
func (d *decoder) strings(n *yaml.Node, path string) []string {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "", "must be a list of strings, not %s", kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.mark(p, e)
		if s, ok := d.scalar(e, p, "a string"); ok {
			out = append(out, s)
		}
	}
	return out
}

// command decodes an argv: a list of strings, or one string split on
// white space as a shell would split a simple command line.
func (d *decoder) command(n *yaml.Node, path string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		f := strings.Fields(n.Value)
		if len(f) == 0 {
			d.errorf(n, path, "", "must not be empty")
		}
		return f
	}
	return d.strings(n, path)
}

// stringMap decodes a mapping of names to scalar values, or a list of
// NAME=value strings as compose allows.
func (d *decoder) stringMap(n *yaml.Node, path string) map[string]string {
	out := map[string]string{}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			s, ok := d.scalar(e, p, "a NAME=value string")
			if !ok {
				continue
			}
			k, v, found := strings.Cut(s, "=")
			if !found || k == "" {
				d.errorf(e, p, "write NAME=value", "invalid entry %q", s)
				continue
			}
			d.mark(join(path, k), e)
			out[k] = v
		}
	default:
		d.entries(n, path, func(key string, _, v *yaml.Node) {
			p := join(path, key)
			if v.Kind != yaml.ScalarNode {
				d.errorf(v, p, "", "must be a string, number or boolean, not %s", kindName(v))
				return
			}
			if v.Tag == "!!null" {
				out[key] = ""
				return
			}
			out[key] = v.Value
		})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
