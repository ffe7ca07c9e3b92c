package cellspec

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// What compose lacks: the x-orchestro extensions, and a gateway port taken
// from the published ports when they do not set one.

// Keys accepted in the x-orchestro extensions.
var (
	composeExtKeys        = []string{"gateway", "uses", "flows"}
	composeServiceExtKeys = []string{"autoscale", "health", "outlier", "port"}
)

// extension decodes the x-orchestro keys, top level and per service, with
// the cell file decoder: their problems carry positions and key paths like
// a cell file's.
func (c *composeImport) extension() {
	rc, d := c.rc, c.d
	if v, ok := c.project.Extensions["x-orchestro"]; ok {
		n := c.extensionNode(v, mapGet(c.root, "x-orchestro"), "x-orchestro")
		d.fields(n, "x-orchestro", composeExtKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "gateway":
				d.decodeGateway(v, rc)
			case "uses":
				rc.cell.Uses = d.strings(v, "uses")
				d.pos["uses"] = d.at(v)
			case "flows":
				d.decodeFlows(v, rc.cell)
			}
		})
	}
	for _, name := range c.project.ServiceNames() {
		s := c.project.Services[name]
		v, ok := s.Extensions["x-orchestro"]
		if !ok {
			continue
		}
		sp := "services." + name
		svc := rc.cell.Services[name]
		n := c.extensionNode(v, mapGet(mapGet(mapGet(c.root, "services"), name), "x-orchestro"), sp+".x-orchestro")
		d.fields(n, sp+".x-orchestro", composeServiceExtKeys, func(key string, _, v *yaml.Node) {
			p := sp + "." + key
			d.pos[p] = d.at(v)
			switch key {
			case "autoscale":
				svc.Autoscale = d.decodeAutoscale(v, p, name, rc)
			case "outlier":
				svc.Outlier = d.decodeOutlier(v, p, rc)
			case "health":
				if s.HealthCheck != nil && !s.HealthCheck.Disable {
					c.warn(c.cpos.at(sp+".healthcheck"), sp+".healthcheck", "overridden by x-orchestro.health")
				}
				for k := range d.pos {
					if strings.HasPrefix(k, p+".") {
						delete(d.pos, k)
					}
				}
				rc.hsRetry[name] = false
				svc.Health = d.decodeHealth(v, p, name, rc)
			case "port":
				svc.Port, _ = d.integer(v, p)
			}
		})
	}
}

// extensionNode turns the value compose-go loaded (interpolated, merged
// through extends) back into a node tree, with the positions of the main
// file where they match.
func (c *composeImport) extensionNode(v any, raw *yaml.Node, path string) *yaml.Node {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		c.problem(path, "", "cannot read %s: %v", path, err)
		return &yaml.Node{Kind: yaml.MappingNode}
	}
	overlayPositions(&n, raw, c.d.orig)
	if n.Line == 0 {
		pos := c.cpos.at(path)
		setPositions(&n, pos.Line, pos.Column)
	}
	return &n
}

// overlayPositions copies line and column from raw to the matching nodes of
// n: same keys in mappings, same indexes in lists. A scalar that compose-go
// interpolated is recorded in orig with its text as written, as the cell
// decoder records it, and keeps the plain style it was written in, which
// decides its type in a flow (see decoder.value).
func overlayPositions(n, raw *yaml.Node, orig map[*yaml.Node]string) {
	if raw == nil {
		return
	}
	n.Line, n.Column = raw.Line, raw.Column
	switch {
	case n.Kind == yaml.ScalarNode && raw.Kind == yaml.ScalarNode:
		if strings.Contains(raw.Value, "$") && n.Value != raw.Value {
			orig[n] = raw.Value
			if raw.Style == 0 {
				n.Style = 0
			}
		}
	case n.Kind == yaml.MappingNode && raw.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			for j := 0; j+1 < len(raw.Content); j += 2 {
				if raw.Content[j].Value == n.Content[i].Value {
					overlayPositions(n.Content[i], raw.Content[j], orig)
					overlayPositions(n.Content[i+1], raw.Content[j+1], orig)
					break
				}
			}
		}
	case n.Kind == yaml.SequenceNode && raw.Kind == yaml.SequenceNode:
		for i := range n.Content {
			if i < len(raw.Content) {
				overlayPositions(n.Content[i], raw.Content[i], orig)
			}
		}
	}
}

// setPositions gives every node without a position the one given.
func setPositions(n *yaml.Node, line, col int) {
	if n.Line == 0 {
		n.Line, n.Column = line, col
	}
	for _, e := range n.Content {
		setPositions(e, line, col)
	}
}

// defaultGateway picks the gateway port when x-orchestro does not set one:
// the first host port published by the first service, by name, that
// publishes one.
func (c *composeImport) defaultGateway() {
	if _, written := c.d.pos["gateway.port"]; written {
		return
	}
	// decodeGateway reports a gateway without a port; here that is either
	// defaulted or reported below, with a compose-specific hint.
	kept := c.d.probs[:0]
	for _, p := range c.d.probs {
		if p.Path == "gateway.port" && strings.HasPrefix(p.Msg, "missing required key") {
			continue
		}
		kept = append(kept, p)
	}
	c.d.probs = kept
	for _, name := range c.project.ServiceNames() {
		for _, p := range c.project.Services[name].Ports {
			if p.Published == "" {
				continue
			}
			first, _, _ := strings.Cut(p.Published, "-")
			port, err := strconv.Atoi(first)
			if err != nil {
				continue
			}
			c.rc.cell.Gateway.Port = port
			c.gwService, c.gwPort, c.gwTarget = name, p.Published, p.Target
			return
		}
	}
	c.probs = append(c.probs, Problem{Pos: c.d.at(c.root), Path: "x-orchestro.gateway.port",
		Msg:  "required: no service publishes a host port to use as the cell's gateway port",
		Hint: "add at the top level:  x-orchestro: {gateway: {port: 8080}}"})
}

// finishGateway records where a defaulted gateway port came from.
func (c *composeImport) finishGateway() {
	if c.gwService == "" {
		return
	}
	sp := "services." + c.gwService
	pos, where := c.gwPos, c.gwPath
	if !c.gwTaken {
		pos, where = c.cpos.at(sp), sp+".ports"
	}
	c.d.pos["gateway.port"] = pos
	c.warn(pos, "x-orchestro.gateway.port", "not set; the gateway takes host port %d, published by %s, and sends every request there to %s (add x-orchestro: {gateway: {port: N}} to choose)",
		c.rc.cell.Gateway.Port, where, c.gwService)
	// The service keeps its published port as it was: every path there is
	// its own, unless x-orchestro writes routes.
	if _, written := c.d.pos["gateway.routes"]; !written {
		c.rc.cell.Gateway.Routes = []Route{{Path: "/", Service: c.gwService}}
		c.d.pos["gateway.routes"], c.d.pos["gateway.routes[0]"] = pos, pos
		c.d.pos["gateway.routes[0].path"], c.d.pos["gateway.routes[0].service"] = pos, pos
	}
}
