package cellspec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/template"
	"gopkg.in/yaml.v3"
)

// Env resolves ${VAR} references. The process environment wins over the
// .env file beside the spec.
type Env struct {
	os     func(string) (string, bool)
	dotenv map[string]string
}

// OSEnv returns an Env backed by the process environment only.
func OSEnv() Env { return Env{os: os.LookupEnv} }

// MapEnv returns an Env backed by a fixed map (for tests and fuzzing).
func MapEnv(m map[string]string) Env {
	return Env{os: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

// withDotEnv returns env extended with the .env file in dir, if there is
// one.
func (e Env) withDotEnv(dir string) (Env, error) {
	path := filepath.Join(dir, ".env")
	if _, err := os.Stat(path); err != nil {
		return e, nil
	}
	vars, err := dotenv.GetEnvFromFile(map[string]string{}, []string{path})
	if err != nil {
		return e, fmt.Errorf("read %s: %w", path, err)
	}
	return Env{os: e.os, dotenv: vars}, nil
}

// Lookup returns the value of a variable.
func (e Env) Lookup(name string) (string, bool) {
	if e.os != nil {
		if v, ok := e.os(name); ok {
			return v, true
		}
	}
	v, ok := e.dotenv[name]
	return v, ok
}

// interpolate substitutes ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?message}, ${VAR?message} and $$ in every scalar value of the tree
// (never in keys). A flow's ${{ expression }} is left as written (see
// substituteVariables). Problems are recorded against the value's
// position.
func (d *decoder) interpolate(n *yaml.Node, path string, env Env) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			d.interpolate(c, path, env)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.interpolate(n.Content[i+1], join(path, n.Content[i].Value), env)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.interpolate(c, fmt.Sprintf("%s[%d]", path, i), env)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		var unset []string
		lookup := func(name string) (string, bool) {
			v, ok := env.Lookup(name)
			if !ok {
				unset = append(unset, name)
			}
			return v, ok
		}
		out, err := substituteVariables(n.Value, func(s string) (string, error) {
			return template.SubstituteWithOptions(s, lookup, template.WithoutLogging)
		})
		if err != nil {
			var req *template.MissingRequiredError
			var inv *template.InvalidTemplateError
			switch {
			case errors.As(err, &req):
				msg := fmt.Sprintf("required variable %s is not set", req.Variable)
				if req.Reason != "" {
					msg += ": " + req.Reason
				}
				d.errorf(n, path, "set it in the environment or in .env beside the spec", "%s", msg)
			case errors.As(err, &inv):
				d.errorf(n, path, "write ${NAME}, ${NAME:-default} or $$ for a literal $", "invalid interpolation %q", n.Value)
			default:
				d.errorf(n, path, "", "interpolation: %v", err)
			}
			return
		}
		for _, name := range unset {
			if !strings.Contains(n.Value, "${"+name+":-") && !strings.Contains(n.Value, "${"+name+"-") {
				d.warnings = append(d.warnings, Warning{Pos: d.at(n), Path: path,
					Message: fmt.Sprintf("variable %s is not set; using an empty string", name)})
			}
		}
		if out != n.Value {
			d.orig[n] = n.Value
		}
		n.Value = out
	}
}

// substituteVariables applies subst, an environment interpolation, to s
// except for its ${{ expression }} parts, which are kept as written for
// the flow that evaluates them: compose's interpolation would take "${{"
// for a malformed variable reference. It is the one home of that rule,
// used for cell files and, through compose-go's Substitute option, for
// compose files.
//
// s is read from left to right: "$$" is an escaped dollar and stays for
// subst to unescape, "${{" opens an expression that ends at the next "}}"
// (or at the end of s when it is not closed, which the flow's compiler
// then reports). Everything else goes to subst. Since "$$" is read first,
// "$${{ x }}" becomes "${{ x }}" after subst, which a flow reads as an
// expression: a flow value cannot hold a literal "${{".
func substituteVariables(s string, subst func(string) (string, error)) (string, error) {
	if !HasExpression(s) {
		return subst(s)
	}
	var b strings.Builder
	var err error
	expressionSpans(s, func(part string, expr bool) {
		if err != nil {
			return
		}
		if expr {
			b.WriteString(part)
			return
		}
		var out string
		out, err = subst(part)
		b.WriteString(out)
	})
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// expressionSpans calls fn for each part of s in turn, with expr true for
// a ${{ expression }} (delimiters included) and false for the text
// between them. It is how both interpolation and the renderer, which
// escapes "$" in text only, read a value.
func expressionSpans(s string, fn func(part string, expr bool)) {
	text := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			continue
		}
		if s[i+1] == '$' {
			i++
			continue
		}
		if !strings.HasPrefix(s[i:], openDelim) {
			continue
		}
		if text < i {
			fn(s[text:i], false)
		}
		end := len(s)
		if j := strings.Index(s[i+len(openDelim):], closeDelim); j >= 0 {
			end = i + len(openDelim) + j + len(closeDelim)
		}
		fn(s[i:end], true)
		text = end
		i = end - 1
	}
	if text < len(s) {
		fn(s[text:], false)
	}
}
