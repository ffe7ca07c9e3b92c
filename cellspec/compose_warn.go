package cellspec

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/format"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// The walk over the compose file as written: it reports every key
// orchestro does not honour, where it is written. It covers the main file,
// the files it includes and the services it extends.

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
	"cpus", "mem_limit", "develop",
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
		case "develop":
			c.walkDevelop(v, p, file) // compose_watch.go
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

// walkPorts keeps the first host port a service publishes for its port:
// the gateway listens on it and sends everything there to the service
// (a listener), unless it became the gateway's own port. It reports what
// else the entries ask for and orchestro does not give: more host ports
// of one service, container ports other than the service's port, host
// addresses other than 127.0.0.1, UDP.
func (c *composeImport) walkPorts(n *yaml.Node, p, name, file string) {
	if n.Kind != yaml.SequenceNode {
		return
	}
	port := c.rc.cell.Services[name].Port
	kept := name == c.gwService
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
			published, err := strconv.Atoi(strings.SplitN(pc.Published, "-", 2)[0])
			isListener := !isGateway && !kept && err == nil && int(pc.Target) == port && (pc.Protocol == "" || pc.Protocol == "tcp")
			switch {
			case isGateway:
				c.gwTaken = true
				c.gwPos, c.gwPath = at, ep
			case isListener:
				kept = true
				lp := fmt.Sprintf("gateway.listeners[%d]", len(c.rc.cell.Gateway.Listeners))
				c.rc.cell.Gateway.Listeners = append(c.rc.cell.Gateway.Listeners, Listener{Port: published, Service: name})
				c.d.pos[lp], c.d.pos[lp+".port"], c.d.pos[lp+".service"] = at, at, at
			case pc.Published != "":
				hostPorts = appendNew(hostPorts, pc.Published)
			}
			if (isGateway || isListener) && pc.HostIP != "" && pc.HostIP != "127.0.0.1" {
				notes = append(notes, fmt.Sprintf("host_ip %s not honoured by orchestro (the gateway binds 127.0.0.1)", pc.HostIP))
			}
			if (isGateway || isListener) && strings.Contains(pc.Published, "-") {
				notes = append(notes, fmt.Sprintf("host port range %s: orchestro publishes its first port only", pc.Published))
			}
			if int(pc.Target) != port {
				targets = appendNew(targets, strconv.Itoa(int(pc.Target)))
			}
			if pc.Protocol != "" && pc.Protocol != "tcp" {
				notes = appendNew(notes, pc.Protocol+" not honoured by orchestro (the gateway routes HTTP)")
			}
		}
		if len(hostPorts) > 0 {
			notes = append(notes, fmt.Sprintf("host port %s not published by orchestro (the gateway publishes one host port per service, its first)", strings.Join(hostPorts, ", ")))
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
