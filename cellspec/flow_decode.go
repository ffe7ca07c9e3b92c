package cellspec

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decoding of the flows: section (DESIGN §6). The same code reads a cell
// file's flows and the top-level x-orchestro.flows of a compose file, so
// both are checked alike and report the same key paths.

// The keys accepted at each level of a flow.
var (
	flowKeys         = []string{"name", "route", "deadline", "defaults", "steps", "response", "max_inflight", "max_body", "mode", "async_deadline"}
	flowDefaultsKeys = []string{"timeout", "retry"}
	// stepKeys are the keys of a step; an entry of steps may instead be
	// a group, whose only key is parallel.
	stepKeys       = []string{"id", "call", "headers", "query", "body", "timeout", "retry", "expect", "on_status", "optional", "fallback", "when", "compensate"}
	stepEntryKeys  = append(append([]string{}, stepKeys...), parallelKey)
	retryKeys      = []string{"attempts", "backoff", "max_backoff", "jitter", "retry_on"}
	onStatusKeys   = []string{"fail"}
	answerKeys     = []string{"status", "headers", "body"}
	compensateKeys = []string{"call", "headers", "query", "body", "timeout", "retry"}
)

const parallelKey = "parallel"

// flowDefaults is a flow's defaults mapping as written. A loaded Flow does
// not hold it: applyDefaults folds it into every step.
type flowDefaults struct {
	Timeout Duration
	Retry   Retry
}

// flowDecoder decodes one flow. Its expressions are compiled once the
// whole flow is decoded, because the names an expression may use depend
// on the steps around it, which may be written after it.
type flowDecoder struct {
	d    *decoder
	flow *Flow
	// later holds the compilations, run once the flow is decoded.
	later []func()
}

// decodeFlows decodes the flows list into c.Flows, with each flow's
// defaults mapping as written in c.flowDefaults.
func (d *decoder) decodeFlows(n *yaml.Node, c *Cell) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "flows", "", "must be a list of flows, not %s", kindName(n))
		return
	}
	for i, fn := range n.Content {
		p := fmt.Sprintf("flows[%d]", i)
		d.mark(p, fn)
		f, defs := d.decodeFlow(fn, p)
		c.Flows = append(c.Flows, f)
		c.flowDefaults = append(c.flowDefaults, defs)
	}
}

func (d *decoder) decodeFlow(n *yaml.Node, path string) (*Flow, flowDefaults) {
	fd := &flowDecoder{d: d, flow: &Flow{}}
	f := fd.flow
	var defs flowDefaults
	d.fields(n, path, flowKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "name":
			f.Name = d.str(v, p)
		case "route":
			s, ok := d.scalar(v, p, "METHOD /path")
			if !ok {
				return
			}
			r, err := ParseFlowRoute(s)
			if err != nil {
				d.errorf(v, p, "", "%v", err)
				return
			}
			f.Route = r
		case "deadline":
			f.Deadline, _ = d.duration(v, p)
		case "defaults":
			defs = d.decodeFlowDefaults(v, p)
		case "steps":
			fd.steps(v, p)
		case "response":
			f.Response = fd.answer(v, p, exprScope{})
		case "max_inflight":
			f.MaxInflight, _ = d.integer(v, p)
		case "mode":
			f.Mode = d.str(v, p)
		case "async_deadline":
			f.AsyncDeadline, _ = d.duration(v, p)
		case "max_body":
			f.MaxBody, _ = d.size(v, p, "size", "for example 1MiB or 512K")
		}
	})
	for _, compile := range fd.later {
		compile()
	}
	return f, defs
}

func (d *decoder) decodeFlowDefaults(n *yaml.Node, path string) flowDefaults {
	var defs flowDefaults
	d.fields(n, path, flowDefaultsKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "timeout":
			defs.Timeout, _ = d.duration(v, p)
		case "retry":
			defs.Retry = d.decodeRetry(v, p)
		}
	})
	return defs
}

func (fd *flowDecoder) steps(n *yaml.Node, path string) {
	d := fd.d
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "", "must be a list of steps, not %s", kindName(n))
		return
	}
	fd.flow.Steps = make([]*Step, 0, len(n.Content))
	for i, sn := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.mark(p, sn)
		if mapGet(sn, parallelKey) != nil {
			fd.flow.Steps = append(fd.flow.Steps, fd.group(sn, p))
		} else {
			fd.flow.Steps = append(fd.flow.Steps, fd.step(sn, p))
		}
	}
}

// group decodes an entry of steps that holds parallel. Its Parallel is
// never nil, so it stays a group even when its list fails to decode.
func (fd *flowDecoder) group(n *yaml.Node, path string) *Step {
	d := fd.d
	g := &Step{Parallel: []*Step{}}
	d.fields(n, path, stepEntryKeys, func(key string, k, v *yaml.Node) {
		p := join(path, key)
		if key != parallelKey {
			d.errorf(k, p, "a group holds only its steps; move it to one of them", "key %q cannot sit beside parallel", key)
			return
		}
		d.pos[p] = d.at(v)
		if v.Kind != yaml.SequenceNode {
			d.errorf(v, p, "", "must be a list of steps, not %s", kindName(v))
			return
		}
		for i, mn := range v.Content {
			mp := fmt.Sprintf("%s[%d]", p, i)
			d.mark(mp, mn)
			g.Parallel = append(g.Parallel, fd.step(mn, mp))
		}
	})
	return g
}

// step decodes one step. It is only called for an entry without parallel,
// so parallel here is a member of a group that is a group itself.
func (fd *flowDecoder) step(n *yaml.Node, path string) *Step {
	d := fd.d
	s := &Step{}
	request := exprScope{step: s}
	d.fields(n, path, stepEntryKeys, func(key string, k, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "id":
			s.ID = d.str(v, p)
		case "call":
			fd.call(v, p, request, &s.Call)
		case "headers":
			s.Headers = fd.templateMap(v, p, request)
		case "query":
			s.Query = fd.templateMap(v, p, request)
		case "body":
			fd.template(v, p, request, &s.Body)
		case "timeout":
			s.Timeout, _ = d.duration(v, p)
		case "retry":
			s.Retry = d.decodeRetry(v, p)
		case "expect":
			s.Expect = d.statuses(v, p)
		case "on_status":
			s.OnStatus = fd.onStatus(v, p)
		case "optional":
			s.Optional, _ = d.boolean(v, p)
		case "fallback":
			fd.template(v, p, request, &s.Fallback)
		case "when":
			fd.when(v, p, s)
		case "compensate":
			s.Compensate = fd.compensate(v, p, s)
		case parallelKey:
			d.errorf(k, p, "put the steps of both in one group, or write two groups one after the other", "parallel groups cannot be nested")
		}
	})
	return s
}

func (fd *flowDecoder) compensate(n *yaml.Node, path string, s *Step) *Compensate {
	d := fd.d
	c := &Compensate{}
	// A compensation runs once its step has answered, so it may use
	// the step's own answer.
	sc := exprScope{step: s, self: true}
	d.fields(n, path, compensateKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "call":
			fd.call(v, p, sc, &c.Call)
		case "headers":
			c.Headers = fd.templateMap(v, p, sc)
		case "query":
			c.Query = fd.templateMap(v, p, sc)
		case "body":
			fd.template(v, p, sc, &c.Body)
		case "timeout":
			c.Timeout, _ = d.duration(v, p)
		case "retry":
			c.Retry = d.decodeRetry(v, p)
		}
	})
	return c
}

// answer decodes a response or an on_status fail answer.
func (fd *flowDecoder) answer(n *yaml.Node, path string, sc exprScope) *FlowAnswer {
	d := fd.d
	a := &FlowAnswer{}
	d.fields(n, path, answerKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "status":
			a.Status, _ = d.integer(v, p)
		case "headers":
			a.Headers = fd.templateMap(v, p, sc)
		case "body":
			fd.template(v, p, sc, &a.Body)
		}
	})
	return a
}

// onStatus decodes a mapping of status codes to what they do. The keys
// are written as plain decimal codes, so that each has one key path.
func (fd *flowDecoder) onStatus(n *yaml.Node, path string) map[int]*OnStatus {
	d := fd.d
	out := map[int]*OnStatus{}
	d.entries(n, path, func(key string, k, v *yaml.Node) {
		p := join(path, key)
		code, err := strconv.Atoi(key)
		if err != nil || strconv.Itoa(code) != key {
			d.errorf(k, p, "for example 422", "on_status keys are status codes, not %q", key)
			return
		}
		o := &OnStatus{}
		if v.Kind == yaml.MappingNode && len(v.Content) == 0 {
			d.errorf(k, p, fmt.Sprintf("add fail: {status: %d}", code), "on_status %d says nothing to do", code)
		}
		d.fields(v, p, onStatusKeys, func(key string, _, v *yaml.Node) {
			fp := join(p, key)
			d.pos[fp] = d.at(v)
			// The answer a step's status leads to may tell what any
			// step did, run or not.
			o.Fail = fd.answer(v, fp, exprScope{})
		})
		out[code] = o
	})
	return out
}

// call decodes "METHOD TARGET PATH" into *dst once the flow is known.
func (fd *flowDecoder) call(n *yaml.Node, path string, sc exprScope, dst **Call) {
	s, ok := fd.d.scalar(n, path, "METHOD TARGET PATH")
	if !ok {
		return
	}
	fd.later = append(fd.later, func() {
		c, errs := ParseCall(s, fd.flow.scope(sc))
		for _, e := range errs {
			fd.d.errorf(n, path, "", "%s", e.Error())
		}
		*dst = c
	})
}

// when decodes a step's condition: true, false or one expression, whose
// value is read as a boolean.
func (fd *flowDecoder) when(n *yaml.Node, path string, s *Step) {
	d := fd.d
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "", "when must be true, false or a ${{ expression }}, not %s", kindName(n))
		return
	}
	v, ok := d.value(n, path, "", nil)
	if !ok {
		return
	}
	switch x := v.(type) {
	case bool:
		s.When = LiteralTemplate(x)
		return
	case string:
		if HasExpression(x) {
			fd.later = append(fd.later, func() {
				t := fd.compile(x, path, map[string]*yaml.Node{"": n}, exprScope{step: s})
				if t.IsLiteral() {
					return // the expression did not compile, and that is reported
				}
				if !t.IsExpression() {
					d.errorf(n, path, "text around ${{ }} makes it a string", "when must be one ${{ expression }}, not %q", x)
					return
				}
				s.When = t
			})
			return
		}
		d.errorf(n, path, "write ${{ "+x+" }}", "when must be true, false or a ${{ expression }}, not %q", x)
	default:
		d.errorf(n, path, "", "when must be true, false or a ${{ expression }}, not %s", kindName(n))
	}
}

// template decodes a value that may hold expressions into *dst once the
// flow is known. A null value is as if the key were not written.
func (fd *flowDecoder) template(n *yaml.Node, path string, sc exprScope, dst **Template) {
	nodes := map[string]*yaml.Node{}
	v, ok := fd.d.value(n, path, "", nodes)
	if !ok || v == nil {
		return
	}
	fd.later = append(fd.later, func() { *dst = fd.compile(v, path, nodes, sc) })
}

// templateMap decodes headers or query parameters: names mapped to
// strings, numbers or booleans that may hold expressions. A null value is
// the empty string, as in env.
func (fd *flowDecoder) templateMap(n *yaml.Node, path string, sc exprScope) map[string]*Template {
	d := fd.d
	out := map[string]*Template{}
	d.entries(n, path, func(name string, _, v *yaml.Node) {
		p := join(path, name)
		if v.Kind != yaml.ScalarNode {
			d.errorf(v, p, "", "must be a string, number or boolean, not %s", kindName(v))
			return
		}
		val, ok := d.value(v, p, "", nil)
		if !ok {
			return
		}
		if val == nil {
			val = ""
		}
		fd.later = append(fd.later, func() { out[name] = fd.compile(val, p, map[string]*yaml.Node{"": v}, sc) })
	})
	return out
}

// compile compiles a value decoded at path and reports each problem at
// the scalar that holds it: nodes maps the template paths of the value
// (TemplateError.Path) to their nodes.
func (fd *flowDecoder) compile(v any, path string, nodes map[string]*yaml.Node, sc exprScope) *Template {
	t, errs := CompileTemplate(v, fd.flow.scope(sc))
	for _, e := range errs {
		n := nodes[e.Path]
		if n == nil {
			n = nodes[""]
		}
		fd.d.errorf(n, templateProblemPath(path, e.Path), "", "%s", e.Error())
	}
	return t
}

// templateProblemPath is the field path of a value inside a template
// written at path: "items[0]" under "body" is "body.items[0]".
func templateProblemPath(path, tpath string) string {
	switch {
	case tpath == "":
		return path
	case strings.HasPrefix(tpath, "["):
		return path + tpath
	}
	return path + "." + tpath
}

// value converts a node to a JSON-like value: nil, bool, float64, string,
// []any or map[string]any. Numbers become float64, as encoding/json
// decodes them, so that a value survives the JSON trip to the gateway
// unchanged (integers up to 2^53 are exact). A quoted scalar stays a
// string: "3" is text. A plain scalar that was written with ${VAR} is
// typed by its substituted value, as if that had been written: with
// LIMIT=10, `limit: ${LIMIT}` is the number 10, `limit: "${LIMIT}"` the
// text "10".
//
// nodes, when not nil, receives the node of every value by its template
// path ("" for n itself, "order", "items[0]"), as CompileTemplate names
// the value an expression problem is in.
func (d *decoder) value(n *yaml.Node, path, tpath string, nodes map[string]*yaml.Node) (any, bool) {
	if nodes != nil {
		nodes[tpath] = n
	}
	switch n.Kind {
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for i, e := range n.Content {
			v, eok := d.value(e, fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("%s[%d]", tpath, i), nodes)
			out = append(out, v)
			ok = ok && eok
		}
		return out, ok
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, e := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if k.Kind != yaml.ScalarNode {
				d.errorf(k, path, "", "a key must be a string, not %s", kindName(k))
				ok = false
				continue
			}
			if _, dup := out[k.Value]; dup {
				d.errorf(k, p, "", "duplicate key %q", k.Value)
				ok = false
				continue
			}
			v, eok := d.value(e, p, joinTemplatePath(tpath, k.Value), nodes)
			out[k.Value] = v
			ok = ok && eok
		}
		return out, ok
	case yaml.ScalarNode:
		return d.scalarValue(n, path)
	}
	d.errorf(n, path, "", "unsupported YAML value: %s", kindName(n))
	return nil, false
}

// scalarValue types a scalar as YAML 1.2 does (see value).
func (d *decoder) scalarValue(n *yaml.Node, path string) (any, bool) {
	typed := n
	if _, interpolated := d.orig[n]; interpolated && n.Style == 0 {
		typed = &yaml.Node{Kind: yaml.ScalarNode, Value: n.Value}
		switch typed.ShortTag() {
		case "!!int", "!!float", "!!bool":
		default:
			return n.Value, true
		}
	}
	switch typed.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool", "!!int", "!!float":
		var v any
		if err := typed.Decode(&v); err != nil {
			d.errorf(n, path, "", "invalid value %q: %v", n.Value, err)
			return nil, false
		}
		switch x := v.(type) {
		case bool:
			return x, true
		case int:
			return float64(x), true
		case int64:
			return float64(x), true
		case uint64:
			return float64(x), true
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				d.errorf(n, path, "JSON has no such number", "must be a finite number, not %s", n.Value)
				return nil, false
			}
			return x, true
		}
		return n.Value, true
	}
	return n.Value, true
}

func (d *decoder) decodeRetry(n *yaml.Node, path string) Retry {
	var r Retry
	d.fields(n, path, retryKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "attempts":
			r.Attempts, _ = d.integer(v, p)
		case "backoff":
			r.Backoff, _ = d.duration(v, p)
		case "max_backoff":
			r.MaxBackoff, _ = d.duration(v, p)
		case "jitter":
			r.Jitter, _ = d.boolean(v, p)
		case "retry_on":
			r.RetryOn = d.strings(v, p)
		}
	})
	return r
}

// statuses decodes a list of status codes. An entry that is not an
// integer is reported and kept as 0, so that every entry keeps its index
// (and its key path) for validation.
func (d *decoder) statuses(n *yaml.Node, path string) []int {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "", "must be a list of status codes, not %s", kindName(n))
		return nil
	}
	out := make([]int, 0, len(n.Content))
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.mark(p, e)
		code, _ := d.integer(e, p)
		out = append(out, code)
	}
	return out
}
