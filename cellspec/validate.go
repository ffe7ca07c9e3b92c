package cellspec

import (
	"fmt"
	"sort"
	"strings"
)

// validator collects every problem of a project; it never stops early.
type validator struct {
	probs Problems
}

func (v *validator) add(c *Cell, path, hint, format string, args ...any) {
	// A value that failed to decode was reported already; its zero value
	// is not a second problem.
	if c.bad[path] {
		return
	}
	v.probs = append(v.probs, Problem{Pos: c.pos.at(path), Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

const dnsHint = "lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit"

// IsDNSLabel reports whether s is an RFC 1123 label in lower case, the form
// of project, cell and service names. It is the one home of that rule: the
// command line checks names it is given (-p, CELL/SERVICE) with it too, so a
// name it accepts is one the loader accepts.
func IsDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
		case ch == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

// validateCell checks one cell on its own. Checks that need the other
// cells (uses, unique names and ports) are in validateProject.
func (v *validator) validateCell(c *Cell) {
	if c.Name != "" && !IsDNSLabel(c.Name) {
		v.add(c, "cell", dnsHint, "invalid cell name %q", c.Name)
	}
	v.validateGateway(c)
	if len(c.Services) == 0 {
		v.add(c, "services", "a cell runs at least one service", "no services")
	}
	for _, name := range c.ServiceNames() {
		v.validateService(c, c.Services[name])
	}
	v.validateDependsOn(c)
	v.validateFlows(c)
}

func (v *validator) validateGateway(c *Cell) {
	g := c.Gateway
	if _, written := c.pos["gateway.port"]; written && (g.Port < 1 || g.Port > 65535) {
		v.add(c, "gateway.port", "", "port %d is out of range 1-65535", g.Port)
	}
	if _, written := c.pos["gateway.procs"]; written && (g.Procs < 1 || g.Procs > maxGatewayProcs) {
		v.add(c, "gateway.procs", "leave it out for every CPU", "procs must be between 1 and %d, not %d", maxGatewayProcs, g.Procs)
	}
	if g.Balance != BalanceRoundRobin && g.Balance != BalanceLeastRequest {
		v.add(c, "gateway.balance", hintOr(suggest(g.Balance, []string{BalanceRoundRobin, BalanceLeastRequest}), "round_robin or least_request"),
			"unknown balance policy %q", g.Balance)
	}
	paths := map[string]int{}
	for i, r := range g.Routes {
		p := fmt.Sprintf("gateway.routes[%d]", i)
		switch {
		case r.Path == "":
			v.add(c, p+".path", "for example /orders", "route has no path")
		case !strings.HasPrefix(r.Path, "/"):
			v.add(c, p+".path", "write /"+r.Path, "route path %q must start with /", r.Path)
		case strings.ContainsAny(r.Path, "?# "):
			v.add(c, p+".path", "", "route path %q must be a plain path prefix", r.Path)
		default:
			norm := strings.TrimSuffix(r.Path, "/")
			if j, dup := paths[norm]; dup {
				v.add(c, p+".path", fmt.Sprintf("gateway.routes[%d] has it already", j), "duplicate route path %q", r.Path)
			} else {
				paths[norm] = i
			}
		}
		switch s := c.Services[r.Service]; {
		case r.Service == "":
			v.add(c, p+".service", "", "route has no service")
		case s == nil:
			v.add(c, p+".service", hintOr(suggest(r.Service, c.ServiceNames()), "services: "+strings.Join(c.ServiceNames(), ", ")),
				"route names unknown service %q", r.Service)
		case s.Port == 0:
			v.add(c, p+".service", "give the service a port", "route names service %q, which has no port", r.Service)
		}
		if r.Retries < 0 {
			v.add(c, p+".retries", "", "retries must be 0 or more, not %d", r.Retries)
		}
	}
	ports := map[int]string{g.Port: "gateway.port"}
	for i, l := range g.Listeners {
		p := fmt.Sprintf("gateway.listeners[%d]", i)
		switch other, dup := ports[l.Port]; {
		case l.Port < 1 || l.Port > 65535:
			v.add(c, p+".port", "", "port %d is out of range 1-65535", l.Port)
		case dup:
			v.add(c, p+".port", other+" has it already", "port %d is taken", l.Port)
		default:
			ports[l.Port] = p + ".port"
		}
		switch s := c.Services[l.Service]; {
		case l.Service == "":
			v.add(c, p+".service", "", "listener has no service")
		case s == nil:
			v.add(c, p+".service", hintOr(suggest(l.Service, c.ServiceNames()), "services: "+strings.Join(c.ServiceNames(), ", ")),
				"listener names unknown service %q", l.Service)
		case s.Port == 0:
			v.add(c, p+".service", "give the service a port", "listener names service %q, which has no port", l.Service)
		}
	}
	v.validateOutlier(c, "gateway.outlier", g.Outlier)
	v.validateAccessLog(c, g.AccessLog)
}

// validateAccessLog checks the fields access_log writes.
func (v *validator) validateAccessLog(c *Cell, a *AccessLog) {
	if a == nil {
		return
	}
	const p = "gateway.access_log"
	switch a.To {
	case "", AccessLogFile, AccessLogStdout, AccessLogOff:
	default:
		v.add(c, p+".to", hintOr(suggest(a.To, []string{AccessLogFile, AccessLogStdout, AccessLogOff}), "file (the default), stdout or off"),
			"unknown access log destination %q", a.To)
	}
	written := func(key string) bool {
		_, ok := c.pos[p+"."+key]
		return ok
	}
	if written("sample") && (a.Sample <= 0 || a.Sample > 1) {
		v.add(c, p+".sample", "1 logs every request, 0.1 one in ten; failed requests are always logged", "sample must be more than 0 and at most 1, not %g", a.Sample)
	}
	if written("max_size") && a.MaxSize > 0 && a.MaxSize < minAccessLogMaxSize {
		v.add(c, p+".max_size", "", "max_size must be at least 64KiB, not %d bytes", a.MaxSize)
	}
	if written("max_files") && (a.MaxFiles < 1 || a.MaxFiles > maxAccessLogFiles) {
		v.add(c, p+".max_files", "", "max_files must be between 1 and %d, not %d", maxAccessLogFiles, a.MaxFiles)
	}
	if a.To != "" && a.To != AccessLogFile && (written("max_size") || written("max_files")) {
		key := "max_size"
		if !written(key) {
			key = "max_files"
		}
		v.add(c, p+"."+key, "remove it, or write to: file", "%s bounds the access log's files, but the log goes to %s", key, a.To)
	}
}

// The bounds of an access log's rotation: a file smaller than 64 KiB
// would rotate at every flush of a busy gateway.
const (
	minAccessLogMaxSize = 64 << 10
	maxAccessLogFiles   = 100
	maxGatewayProcs     = 1024
)

// validateOutlier checks the fields of an outlier mapping written at path.
// A service's mapping holds the gateway's values where it writes none, and
// those are reported at the gateway, once. A base_ejection of zero or less
// never gets here: the decoder refuses durations that are not positive.
func (v *validator) validateOutlier(c *Cell, path string, o *Outlier) {
	if o == nil {
		return
	}
	written := func(key string) bool {
		_, ok := c.pos[path+"."+key]
		return ok
	}
	if written("consecutive_5xx") && o.Consecutive5xx < 0 {
		v.add(c, path+".consecutive_5xx", "0 keeps 5xx answers from ejecting replicas", "consecutive_5xx must be 0 or more, not %d", o.Consecutive5xx)
	}
	if written("max_ejection_percent") && (o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100) {
		v.add(c, path+".max_ejection_percent", "", "max_ejection_percent must be between 0 and 100, not %d", o.MaxEjectionPercent)
	}
}

func (v *validator) validateService(c *Cell, s *Service) {
	path := "services." + s.Name
	if !IsDNSLabel(s.Name) {
		v.add(c, path, dnsHint, "invalid service name %q", s.Name)
	}
	switch {
	case s.Build == nil && s.Image == "":
		v.add(c, path, "add build: ./dir, build: {go: ./cmd/x} or image: name:tag", "service has neither build nor image")
	case s.Build != nil && s.Image != "":
		v.add(c, path+".image", "keep one of them", "service has both build and image")
	case s.Build != nil:
		b := s.Build
		switch {
		case b.Context == "" && b.Go == "":
			v.add(c, path+".build", "set context or go", "build names neither a context nor a Go package")
		case b.Context != "" && b.Go != "":
			v.add(c, path+".build.go", "a Go build needs no Dockerfile context", "build has both context and go")
		case b.Go != "" && (b.Dockerfile != "" || b.Target != "" || len(b.Args) > 0):
			v.add(c, path+".build.go", "dockerfile, target and args apply to Dockerfile builds only", "build: go cannot be combined with dockerfile, target or args")
		}
	}
	if _, written := c.pos[path+".port"]; written && (s.Port < 1 || s.Port > 65535) {
		v.add(c, path+".port", "", "port %d is out of range 1-65535", s.Port)
	}
	if s.Replicas < 0 {
		v.add(c, path+".replicas", "0 stops the service", "replicas must be 0 or more, not %d", s.Replicas)
	}
	restarts := []string{RestartAlways, RestartOnFailure, RestartNever}
	if !contains(restarts, s.Restart) {
		v.add(c, path+".restart", hintOr(suggest(s.Restart, restarts), "always, on-failure or never"), "unknown restart policy %q", s.Restart)
	}
	if h := s.Health; h != nil {
		hp := path + ".health"
		kinds := 0
		for _, set := range []bool{h.HTTP != "", h.TCP, len(h.Exec) > 0} {
			if set {
				kinds++
			}
		}
		switch {
		case kinds == 0:
			v.add(c, hp, "set http: /path, tcp: true or exec: [cmd, args]", "health check has no probe")
		case kinds > 1:
			v.add(c, hp, "keep one", "health check sets more than one of http, tcp and exec")
		}
		if h.HTTP != "" && !strings.HasPrefix(h.HTTP, "/") {
			v.add(c, hp+".http", "write /"+h.HTTP, "health path %q must start with /", h.HTTP)
		}
		if (h.HTTP != "" || h.TCP) && s.Port == 0 {
			v.add(c, hp, "give the service a port", "an http or tcp health check needs the service's port")
		}
		if h.Retries < 1 {
			v.add(c, hp+".retries", "", "retries must be at least 1, not %d", h.Retries)
		}
	}
	if a := s.Autoscale; a != nil {
		ap := path + ".autoscale"
		if a.Min < 0 {
			v.add(c, ap+".min", "", "min must be 0 or more, not %d", a.Min)
		}
		if _, written := c.pos[ap+".max"]; !written {
			v.add(c, ap, "for example max: 8", "autoscale needs max")
		} else if a.Max < 1 {
			v.add(c, ap+".max", "", "max must be at least 1, not %d", a.Max)
		} else if a.Min > a.Max {
			v.add(c, ap+".min", "", "min %d is greater than max %d", a.Min, a.Max)
		}
		for _, t := range []struct {
			key string
			val float64
		}{{"inflight", a.Inflight}, {"rps", a.RPS}, {"cpu", a.CPU}} {
			if t.val < 0 {
				v.add(c, ap+"."+t.key, "", "%s target must be positive, not %g", t.key, t.val)
			}
		}
		if a.Inflight <= 0 && a.RPS <= 0 && a.CPU <= 0 {
			v.add(c, ap, "set inflight, rps or cpu", "autoscale has no positive target")
		}
		if (a.Inflight > 0 || a.RPS > 0) && s.Port == 0 {
			v.add(c, ap, "traffic targets need a port the gateway routes to", "inflight and rps targets need the service's port")
		}
		if _, written := c.pos[path+".replicas"]; written && a.Max >= a.Min && (s.Replicas < a.Min || s.Replicas > a.Max) {
			v.add(c, path+".replicas", fmt.Sprintf("autoscale bounds are %d-%d", a.Min, a.Max), "replicas %d is outside the autoscale bounds", s.Replicas)
		}
	}
	v.validateOutlier(c, path+".outlier", s.Outlier)
	seen := map[string]bool{}
	for i, vol := range s.Volumes {
		if seen[vol.Target] {
			v.add(c, fmt.Sprintf("%s.volumes[%d]", path, i), "", "two volumes mount on %s", vol.Target)
		}
		seen[vol.Target] = true
	}
}

func (v *validator) validateDependsOn(c *Cell) {
	for _, name := range c.ServiceNames() {
		s := c.Services[name]
		for i, dep := range s.DependsOn {
			p := fmt.Sprintf("services.%s.depends_on[%d]", name, i)
			switch {
			case dep == name:
				v.add(c, p, "", "service %q depends on itself", name)
			case c.Services[dep] == nil:
				v.add(c, p, hintOr(suggest(dep, c.ServiceNames()), "depends_on names services of the same cell"), "unknown service %q", dep)
			}
		}
	}
	// Report each cycle once, at the first service (in name order) on it.
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(string)
	visit = func(n string) {
		state[n] = visiting
		stack = append(stack, n)
		for _, dep := range c.Services[n].DependsOn {
			if c.Services[dep] == nil || dep == n {
				continue
			}
			switch state[dep] {
			case visiting:
				i := indexOf(stack, dep)
				cycle := append(append([]string{}, stack[i:]...), dep)
				v.add(c, "services."+dep+".depends_on", "", "dependency cycle: %s", strings.Join(cycle, " → "))
			case unvisited:
				visit(dep)
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for _, name := range c.ServiceNames() {
		if state[name] == unvisited {
			visit(name)
		}
	}
}

// portPath is the key path of a cell's host port: its gateway port or
// one of its listeners'.
func (c *Cell) portPath(port int) string {
	for i, l := range c.Gateway.Listeners {
		if l.Port == port && port != c.Gateway.Port {
			return fmt.Sprintf("gateway.listeners[%d].port", i)
		}
	}
	return "gateway.port"
}

// validateProject checks what spans cells: unique names and ports, uses.
func (v *validator) validateProject(p *Project) {
	byName := map[string]*Cell{}
	byPort := map[int]*Cell{}
	for _, c := range p.Cells {
		if other, dup := byName[c.Name]; dup && c.Name != "" {
			v.add(c, "cell", "also defined at "+other.pos.at("cell").String(), "duplicate cell name %q", c.Name)
		} else {
			byName[c.Name] = c
		}
		if other, dup := byPort[c.Gateway.Port]; dup && c.Gateway.Port > 0 {
			v.add(c, "gateway.port", fmt.Sprintf("cell %q uses it at %s", other.Name, other.pos.at(other.portPath(c.Gateway.Port))), "gateway port %d is already taken", c.Gateway.Port)
		} else {
			byPort[c.Gateway.Port] = c
		}
		for i, l := range c.Gateway.Listeners {
			if other, dup := byPort[l.Port]; dup && other != c && l.Port > 0 {
				v.add(c, fmt.Sprintf("gateway.listeners[%d].port", i), fmt.Sprintf("cell %q uses it at %s", other.Name, other.pos.at(other.portPath(l.Port))), "port %d is already taken", l.Port)
			} else if !dup {
				byPort[l.Port] = c
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, c := range p.Cells {
		seen := map[string]bool{}
		for i, u := range c.Uses {
			path := fmt.Sprintf("uses[%d]", i)
			switch {
			case u == c.Name:
				v.add(c, path, "a cell reaches its own services directly", "cell %q lists itself in uses", c.Name)
			case seen[u]:
				v.add(c, path, "", "cell %q is listed twice", u)
			case byName[u] == nil:
				v.add(c, path, hintOr(suggest(u, names), "cells in this project: "+strings.Join(names, ", ")), "unknown cell %q", u)
			}
			seen[u] = true
		}
	}
}

func hintOr(hint, fallback string) string {
	if hint != "" {
		return hint
	}
	return fallback
}

func indexOf(list []string, s string) int {
	for i, e := range list {
		if e == s {
			return i
		}
	}
	return -1
}
