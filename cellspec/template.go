package cellspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// A Template is a value of a flow (a call's path, a header, a body, a
// when condition) that may hold ${{ expression }} parts, compiled once
// when the cell is loaded and evaluated for each execution.
//
// The value is a JSON-like tree: nil, bool, number, string, list or
// mapping. A string that is exactly one ${{ }} evaluates to the
// expression's own type (a number stays a number, an object an object);
// inside a longer string, each expression is rendered as text.
//
// A Template encodes to JSON as the value as written, and decoding JSON
// compiles it again, so a cell sent to a gateway arrives ready to run.
type Template struct {
	raw  any
	root tnode
	refs []string
}

// tnode is one compiled node of a template's value tree.
type tnode struct {
	lit   any // a value with no expression in it
	prog  *vm.Program
	src   string   // the expression of prog, for error messages
	parts []tpart  // a string mixing text and expressions
	list  []tnode  // a list holding expressions
	keys  []string // a mapping holding expressions: its keys, sorted
	vals  []tnode  // and their values
	kind  tkind
}

type tkind uint8

const (
	tLit tkind = iota
	tExpr
	tText
	tList
	tMap
)

type tpart struct {
	text string
	prog *vm.Program
	src  string
}

// TemplateError is a problem in one expression of a template. Path is
// where the expression sits inside the value ("" for the value itself,
// "order", "items[0]"), so the loader can point at its line.
type TemplateError struct {
	Path string
	Expr string
	Msg  string
}

func (e *TemplateError) Error() string {
	if e.Expr == "" {
		return e.Msg
	}
	return fmt.Sprintf("expression ${{ %s }}: %s", e.Expr, e.Msg)
}

// Scope says which names the expressions of a template may use. Names
// lists the names visible; Known, when set, is called for any other name
// and returns a message for it ("step \"charge\" runs after this one")
// or "" to report it as unknown.
type Scope struct {
	Names []string
	Known func(name string) string
}

const (
	openDelim  = "${{"
	closeDelim = "}}"
)

// HasExpression reports whether s holds a ${{ }} expression.
func HasExpression(s string) bool { return strings.Contains(s, openDelim) }

// CompileTemplate compiles a JSON-like value. With a nil scope every name
// is accepted (the gateway compiles a cell that was checked when it was
// loaded). Every problem found is returned, each with its path.
func CompileTemplate(v any, scope *Scope) (*Template, []*TemplateError) {
	c := &tcompiler{scope: scope, refs: map[string]bool{}}
	root := c.node(v, "")
	t := &Template{raw: v, root: root}
	for r := range c.refs {
		t.refs = append(t.refs, r)
	}
	sort.Strings(t.refs)
	return t, c.errs
}

// LiteralTemplate returns a template of a value without expressions.
func LiteralTemplate(v any) *Template { return &Template{raw: v, root: tnode{lit: v}} }

// Raw returns the value as written.
func (t *Template) Raw() any {
	if t == nil {
		return nil
	}
	return t.raw
}

// Refs returns the names the template's expressions refer to, sorted.
func (t *Template) Refs() []string {
	if t == nil {
		return nil
	}
	return t.refs
}

// IsLiteral reports whether the template holds no expression.
func (t *Template) IsLiteral() bool { return t == nil || t.root.kind == tLit }

// IsExpression reports whether the template is exactly one ${{ }}
// expression, whose value keeps the expression's type (a when condition
// must be one).
func (t *Template) IsExpression() bool { return t != nil && t.root.kind == tExpr }

// MarshalJSON encodes the template as written.
func (t *Template) MarshalJSON() ([]byte, error) { return json.Marshal(t.raw) }

// UnmarshalJSON decodes a template and compiles it, accepting any name.
func (t *Template) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	c, errs := CompileTemplate(v, nil)
	if len(errs) > 0 {
		return errs[0]
	}
	*t = *c
	return nil
}

// Eval evaluates the template with env, which maps each name to its
// value. Numbers come out as float64 or int, as the expression made them.
func (t *Template) Eval(env map[string]any) (any, error) {
	if t == nil {
		return nil, nil
	}
	return t.root.eval(env)
}

// EvalString evaluates the template and renders the result as text: a
// string as is, null as "", numbers and booleans as JSON writes them, and
// lists and mappings as JSON.
func (t *Template) EvalString(env map[string]any) (string, error) {
	v, err := t.Eval(env)
	if err != nil {
		return "", err
	}
	return Text(v), nil
}

// EvalText evaluates the template and renders it as text, as EvalString
// does, except that the text of each expression goes through escape while
// the text written around it stays as is. A flow call's path is rendered
// with it, so that a value cannot add segments, a query or a fragment to
// the path it is part of. An error from escape is reported with its
// expression.
func (t *Template) EvalText(env map[string]any, escape func(string) (string, error)) (string, error) {
	if t == nil {
		return "", nil
	}
	switch n := &t.root; n.kind {
	case tLit:
		return Text(n.lit), nil
	case tText:
		return n.text(env, escape)
	default:
		src := n.src
		v, err := n.eval(env)
		if err != nil {
			return "", err
		}
		return escapeText(src, Text(v), escape)
	}
}

// Text renders a value of an evaluated template as text, as EvalString
// does.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func (n *tnode) eval(env map[string]any) (any, error) {
	switch n.kind {
	case tLit:
		return n.lit, nil
	case tExpr:
		v, err := expr.Run(n.prog, env)
		if err != nil {
			return nil, evalError(n.src, err)
		}
		return v, nil
	case tText:
		s, err := n.text(env, nil)
		if err != nil {
			return nil, err
		}
		return s, nil
	case tList:
		out := make([]any, len(n.list))
		for i := range n.list {
			v, err := n.list[i].eval(env)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case tMap:
		out := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			v, err := n.vals[i].eval(env)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, nil
}

// text renders a string mixing text and expressions, passing the text of
// each expression through escape when it is set.
func (n *tnode) text(env map[string]any, escape func(string) (string, error)) (string, error) {
	var b strings.Builder
	for _, p := range n.parts {
		if p.prog == nil {
			b.WriteString(p.text)
			continue
		}
		v, err := expr.Run(p.prog, env)
		if err != nil {
			return "", evalError(p.src, err)
		}
		s, err := escapeText(p.src, Text(v), escape)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// escapeText passes the text of expression src through escape, if set.
func escapeText(src, s string, escape func(string) (string, error)) (string, error) {
	if escape == nil {
		return s, nil
	}
	out, err := escape(s)
	if err != nil {
		return "", &TemplateError{Expr: src, Msg: err.Error()}
	}
	return out, nil
}

// evalError shortens expr's run-time error to its first line.
func evalError(src string, err error) error {
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return &TemplateError{Expr: src, Msg: msg}
}

type tcompiler struct {
	scope *Scope
	refs  map[string]bool
	errs  []*TemplateError
}

func (c *tcompiler) node(v any, path string) tnode {
	switch x := v.(type) {
	case string:
		return c.text(x, path)
	case []any:
		n := tnode{kind: tList, list: make([]tnode, len(x))}
		dynamic := false
		for i, e := range x {
			n.list[i] = c.node(e, fmt.Sprintf("%s[%d]", path, i))
			dynamic = dynamic || n.list[i].kind != tLit
		}
		if !dynamic {
			return tnode{lit: x}
		}
		return n
	case map[string]any:
		n := tnode{kind: tMap}
		for k := range x {
			n.keys = append(n.keys, k)
		}
		sort.Strings(n.keys)
		dynamic := false
		for _, k := range n.keys {
			e := c.node(x[k], joinTemplatePath(path, k))
			n.vals = append(n.vals, e)
			dynamic = dynamic || e.kind != tLit
		}
		if !dynamic {
			return tnode{lit: x}
		}
		return n
	}
	return tnode{lit: v}
}

func joinTemplatePath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// text compiles a string: a literal, exactly one expression (which keeps
// its type) or text with expressions in it.
func (c *tcompiler) text(s, path string) tnode {
	if !HasExpression(s) {
		return tnode{lit: s}
	}
	var parts []tpart
	rest := s
	for {
		i := strings.Index(rest, openDelim)
		if i < 0 {
			if rest != "" {
				parts = append(parts, tpart{text: rest})
			}
			break
		}
		if i > 0 {
			parts = append(parts, tpart{text: rest[:i]})
		}
		rest = rest[i+len(openDelim):]
		j := strings.Index(rest, closeDelim)
		if j < 0 {
			c.errs = append(c.errs, &TemplateError{Path: path, Msg: "${{ is not closed by }}"})
			return tnode{lit: s}
		}
		src := strings.TrimSpace(rest[:j])
		rest = rest[j+len(closeDelim):]
		prog, ok := c.compile(src, path)
		if !ok {
			return tnode{lit: s}
		}
		parts = append(parts, tpart{prog: prog, src: src})
	}
	if len(parts) == 1 && parts[0].prog != nil && strings.TrimSpace(s) == s {
		return tnode{kind: tExpr, prog: parts[0].prog, src: parts[0].src}
	}
	return tnode{kind: tText, parts: parts}
}

// compile checks the names an expression uses against the scope and
// compiles it.
func (c *tcompiler) compile(src, path string) (*vm.Program, bool) {
	if src == "" {
		c.errs = append(c.errs, &TemplateError{Path: path, Expr: src, Msg: "empty expression"})
		return nil, false
	}
	tree, err := parser.Parse(src)
	if err != nil {
		c.errs = append(c.errs, &TemplateError{Path: path, Expr: src, Msg: exprMessage(err)})
		return nil, false
	}
	names := &nameCollector{locals: map[string]bool{}}
	ast.Walk(&tree.Node, names)
	ok := true
	for _, name := range names.names {
		if names.locals[name] {
			continue
		}
		c.refs[name] = true
		if c.scope == nil || contains(c.scope.Names, name) {
			continue
		}
		msg := ""
		if c.scope.Known != nil {
			msg = c.scope.Known(name)
		}
		if msg == "" {
			msg = fmt.Sprintf("unknown name %q", name)
			if hint := suggest(name, c.scope.Names); hint != "" {
				msg += " (" + hint + ")"
			} else {
				msg += fmt.Sprintf(" (known: %s)", strings.Join(c.scope.Names, ", "))
			}
		}
		c.errs = append(c.errs, &TemplateError{Path: path, Expr: src, Msg: msg})
		ok = false
	}
	if !ok {
		return nil, false
	}
	prog, err := expr.Compile(src, expr.AllowUndefinedVariables())
	if err != nil {
		c.errs = append(c.errs, &TemplateError{Path: path, Expr: src, Msg: exprMessage(err)})
		return nil, false
	}
	return prog, true
}

// exprMessage shortens expr's compile error (which repeats the source with
// a caret under it) to its message and column.
func exprMessage(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Column >= 0 {
			return fmt.Sprintf("%s (column %d)", fe.Message, fe.Column+1)
		}
		return fe.Message
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// nameCollector gathers the free names of an expression, in order, and
// the names it declares itself with let.
type nameCollector struct {
	names  []string
	locals map[string]bool
}

func (n *nameCollector) Visit(node *ast.Node) {
	switch x := (*node).(type) {
	case *ast.IdentifierNode:
		if !contains(n.names, x.Value) {
			n.names = append(n.names, x.Value)
		}
	case *ast.VariableDeclaratorNode:
		n.locals[x.Name] = true
	}
}
