package cellspec

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Checks of the flows of a cell. Expressions were compiled, and their
// names checked against the steps, while decoding (see flow_decode.go):
// what is left here needs the cell (its services, uses and routes) or
// the defaults applied.

const (
	stepIDHint   = "lower-case letters, digits and '_', starting with a letter: an id is a name in expressions, where '-' would read as a subtraction"
	captureHint  = "lower-case letters, digits and '_', starting with a letter: a capture is read as path.<name> in expressions"
	methodHint   = "for example GET, POST, PUT or DELETE"
	retryOnHint  = "connect, timeout or a status code such as 503"
	minStatus    = 100
	maxStatus    = 599
	statusFormat = "status %d is out of range 100-599"
)

func (v *validator) validateFlows(c *Cell) {
	names := map[string]int{}
	routes := map[string]int{}
	for i, f := range c.Flows {
		p := fmt.Sprintf("flows[%d]", i)
		if c.bad[p] {
			continue // not a mapping, and reported
		}
		switch j, dup := names[f.Name]; {
		case f.Name == "":
			v.add(c, p+".name", "add name: <flow name>", "flow has no name")
		case !IsDNSLabel(f.Name):
			v.add(c, p+".name", dnsHint, "invalid flow name %q", f.Name)
		case dup:
			v.add(c, p+".name", fmt.Sprintf("flows[%d] has it already", j), "duplicate flow name %q", f.Name)
		default:
			names[f.Name] = i
		}
		if shape, ok := v.validateFlowRoute(c, p+".route", f.Route); ok {
			if j, dup := routes[shape]; dup {
				v.add(c, p+".route", fmt.Sprintf("flows[%d] answers the same requests", j), "route %q collides with flow %q", f.Route.String(), c.Flows[j].Name)
			} else {
				routes[shape] = i
			}
			v.validateRouteAgainstGateway(c, p+".route", f.Route)
		}
		if f.Mode != FlowSync && f.Mode != FlowAsync && !c.bad[p+".mode"] {
			v.add(c, p+".mode", suggest(f.Mode, []string{FlowSync, FlowAsync}), "mode must be sync or async, not %q", f.Mode)
		}
		if _, written := c.pos[p+".max_inflight"]; written && f.MaxInflight < 1 {
			v.add(c, p+".max_inflight", "", "max_inflight must be at least 1, not %d", f.MaxInflight)
		}
		if i < len(c.flowDefaults) {
			eff := mergeRetry(defaultRetry(), c.flowDefaults[i].Retry, p+".defaults.retry", c.pos.written)
			v.validateRetry(c, p+".defaults.retry", eff)
		}
		v.validateSteps(c, p, f)
		if r := f.Response; r != nil {
			v.validateAnswer(c, p+".response", r)
		}
	}
}

// validateFlowRoute checks a flow's route and returns its shape, the
// method and the path with every capture written {}: two routes of the
// same shape answer the same requests.
func (v *validator) validateFlowRoute(c *Cell, path string, r FlowRoute) (string, bool) {
	if r.Method == "" {
		v.add(c, path, "for example POST /checkout/{order}", "flow has no route")
		return "", false
	}
	ok := true
	if !isMethod(r.Method) {
		v.add(c, path, methodHint, "route method %q must be an upper-case HTTP method", r.Method)
		ok = false
	}
	switch {
	case !strings.HasPrefix(r.Path, "/"):
		v.add(c, path, "write /"+r.Path, "route path %q must start with /", r.Path)
		return "", false
	case strings.ContainsAny(r.Path, "?# \t"):
		v.add(c, path, "no query, fragment or space", "route path %q must be a plain path", r.Path)
		return "", false
	}
	segs := strings.Split(r.Path, "/")
	seen := map[string]bool{}
	for i, seg := range segs {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		name, isCapture := strings.CutPrefix(seg, "{")
		name, closed := strings.CutSuffix(name, "}")
		switch {
		case !isCapture || !closed || strings.ContainsAny(name, "{}"):
			v.add(c, path, "a capture is a whole segment, as in /orders/{id}", "route segment %q is not a {name} capture", seg)
			ok = false
		case !exprNamePattern.MatchString(name):
			v.add(c, path, captureHint, "invalid capture name %q in route", name)
			ok = false
		case seen[name]:
			v.add(c, path, "each capture needs its own name", "capture %q appears twice in route", name)
			ok = false
		default:
			seen[name] = true
			segs[i] = "{}"
		}
	}
	return r.Method + " " + strings.Join(segs, "/"), ok
}

// validateRouteAgainstGateway reports a flow route whose path is the path
// of a gateway route. A gateway route takes every method under its path
// prefix, so it would answer the flow's requests too; a flow deeper under
// the prefix (POST /orders/{id}/cancel beside /orders) is a deliberate
// refinement and is not reported.
func (v *validator) validateRouteAgainstGateway(c *Cell, path string, r FlowRoute) {
	norm := strings.TrimSuffix(r.Path, "/")
	_, written := c.pos["gateway.routes"]
	for i, gr := range c.Gateway.Routes {
		if strings.TrimSuffix(gr.Path, "/") != norm || gr.Path == "" {
			continue
		}
		hint := fmt.Sprintf("gateway.routes[%d] sends every method under %s to service %q", i, gr.Path, gr.Service)
		if !written {
			hint = fmt.Sprintf("%s is a default route, one per service with a port; write gateway.routes to choose them", gr.Path)
		}
		v.add(c, path, hint, "route %q collides with the gateway route %s", r.String(), gr.Path)
		return
	}
}

func (v *validator) validateSteps(c *Cell, path string, f *Flow) {
	if len(f.Steps) == 0 {
		v.add(c, path+".steps", "a flow makes at least one call", "flow has no steps")
		return
	}
	for i, s := range f.Steps {
		if s.IsGroup() && len(s.Parallel) == 0 {
			v.add(c, fmt.Sprintf("%s.steps[%d].parallel", path, i), "list the steps that start together", "parallel group has no steps")
		}
	}
	ids := map[string]string{}
	f.eachStep(path, func(sp string, s *Step) {
		if c.bad[sp] {
			return // not a mapping, and reported
		}
		v.validateStepID(c, sp, s, ids)
		if s.Call == nil {
			if _, written := c.pos[sp+".call"]; !written {
				v.add(c, sp, "for example call: POST orders /validate", "step has no call")
			}
		} else {
			v.validateCall(c, sp+".call", s.Call)
		}
		v.validateHeaders(c, sp+".headers", s.Headers)
		v.validateRetry(c, sp+".retry", s.Retry)
		for k, code := range s.Expect {
			if code < minStatus || code > maxStatus {
				v.add(c, fmt.Sprintf("%s.expect[%d]", sp, k), "", statusFormat, code)
			}
		}
		codes := make([]int, 0, len(s.OnStatus))
		for code := range s.OnStatus {
			codes = append(codes, code)
		}
		sort.Ints(codes)
		for _, code := range codes {
			op := fmt.Sprintf("%s.on_status.%d", sp, code)
			if code < minStatus || code > maxStatus {
				v.add(c, op, "", statusFormat, code)
			}
			if fail := s.OnStatus[code].Fail; fail != nil {
				v.validateAnswer(c, op+".fail", fail)
			}
		}
		if s.Fallback != nil && !s.Optional {
			v.add(c, sp+".fallback", "add optional: true", "fallback applies to optional steps only")
		}
		if cp := s.Compensate; cp != nil {
			cpath := sp + ".compensate"
			if cp.Call == nil {
				if _, written := c.pos[cpath+".call"]; !written {
					v.add(c, cpath, "for example call: DELETE inventory /reservations/${{ reserve.body.id }}", "compensate has no call")
				}
			} else {
				v.validateCall(c, cpath+".call", cp.Call)
			}
			v.validateHeaders(c, cpath+".headers", cp.Headers)
			v.validateRetry(c, cpath+".retry", cp.Retry)
		}
	})
}

// validateStepID checks a step's id; ids maps the ids met so far in the
// flow to where they were.
func (v *validator) validateStepID(c *Cell, path string, s *Step, ids map[string]string) {
	p := path + ".id"
	switch first, dup := ids[s.ID]; {
	case s.ID == "":
		v.add(c, p, "add id: <name>; later steps read its answer as <name>.body", "step has no id")
	case contains(flowNames, s.ID):
		v.add(c, p, "input, path and flow are names of every expression; choose another id", "step id %q shadows the expression name %s", s.ID, s.ID)
	case !exprNamePattern.MatchString(s.ID):
		v.add(c, p, stepIDHint, "invalid step id %q", s.ID)
	case exprWord(s.ID):
		v.add(c, p, "choose another id", "step id %q is a word of the expression language", s.ID)
	case dup:
		v.add(c, p, first+" has it already", "duplicate step id %q", s.ID)
	default:
		ids[s.ID] = p
	}
}

// validateCall checks a call's method, target and path.
func (v *validator) validateCall(c *Cell, path string, call *Call) {
	if !isMethod(call.Method) {
		v.add(c, path, methodHint, "call method %q must be an upper-case HTTP method", call.Method)
	}
	if strings.HasPrefix(call.Target, PeerPrefix) {
		switch peer := call.Peer(); {
		case peer == "":
			v.add(c, path, "write cell:<name>", "call target %q names no cell", call.Target)
		case !contains(c.Uses, peer):
			v.add(c, path, fmt.Sprintf("add %s to uses", peer), "call names cell %q, which is not in uses", peer)
		}
	} else {
		switch s := c.Services[call.Target]; {
		case s == nil:
			v.add(c, path, hintOr(suggest(call.Target, c.ServiceNames()), "services: "+strings.Join(c.ServiceNames(), ", ")+"; another cell is cell:<name>"),
				"call names unknown service %q", call.Target)
		case s.Port == 0:
			v.add(c, path, "give the service a port", "call names service %q, which has no port", call.Target)
		}
	}
	if p, ok := call.Path.Raw().(string); ok && !strings.HasPrefix(p, "/") {
		v.add(c, path, "write /"+p, "call path %q must start with /", p)
	}
}

// validateHeaders checks header names: HTTP tokens.
func (v *validator) validateHeaders(c *Cell, path string, headers map[string]*Template) {
	for _, name := range sortedKeys(headers) {
		if !isToken(name) {
			v.add(c, join(path, name), "letters, digits and !#$%&'*+-.^_`|~", "invalid header name %q", name)
		}
	}
}

// validateAnswer checks a response or an on_status fail answer.
func (v *validator) validateAnswer(c *Cell, path string, a *FlowAnswer) {
	if a.Status < minStatus || a.Status > maxStatus {
		v.add(c, path+".status", "", statusFormat, a.Status)
	}
	v.validateHeaders(c, path+".headers", a.Headers)
}

// validateRetry checks the fields of the retry mapping written at path;
// eff is the retry in force there, the written fields included. Fields
// taken from elsewhere are reported where they are written, once.
func (v *validator) validateRetry(c *Cell, path string, eff Retry) {
	written := func(key string) bool { return c.pos.written(path + "." + key) }
	if written("attempts") && eff.Attempts < 1 {
		v.add(c, path+".attempts", "1 tries once, without retrying", "attempts must be at least 1, not %d", eff.Attempts)
	}
	if written("retry_on") {
		for i, on := range eff.RetryOn {
			p := fmt.Sprintf("%s.retry_on[%d]", path, i)
			if on == RetryOnConnect || on == RetryOnTimeout {
				continue
			}
			code, err := strconv.Atoi(on)
			switch {
			case err != nil || strconv.Itoa(code) != on:
				v.add(c, p, hintOr(suggest(on, []string{RetryOnConnect, RetryOnTimeout}), retryOnHint), "unknown retry_on entry %q", on)
			case code < minStatus || code > maxStatus:
				v.add(c, p, "", statusFormat, code)
			}
		}
	}
	if eff.Backoff > eff.MaxBackoff {
		switch {
		case written("backoff"):
			v.add(c, path+".backoff", "the wait doubles up to max_backoff", "backoff %s is greater than max_backoff %s", eff.Backoff, eff.MaxBackoff)
		case written("max_backoff"):
			v.add(c, path+".max_backoff", "the wait doubles up to max_backoff", "max_backoff %s is less than backoff %s", eff.MaxBackoff, eff.Backoff)
		}
	}
}

// isMethod reports whether s is an upper-case HTTP method: a token
// without lower-case letters.
func isMethod(s string) bool {
	return isToken(s) && strings.ToUpper(s) == s
}

// isToken reports whether s is an HTTP token (RFC 9110), the form of
// methods and header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0:
		default:
			return false
		}
	}
	return true
}
