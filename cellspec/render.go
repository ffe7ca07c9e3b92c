package cellspec

import (
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Rendering a cell as a cell file, for convert. It takes any defaulted cell,
// whatever it was loaded from.

// renderCell writes a defaulted cell as cell file YAML. dir is the
// directory the file will live in; from names the file it came from.
func renderCell(c *Cell, dir, from string) ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	root.Content = append(root.Content, yStr("cell"), yStr(c.Name))
	root.Content[0].HeadComment = "Converted from " + from + " by orchestro convert."

	gw := yMap("port", yInt(c.Gateway.Port))
	if c.Gateway.Balance != DefaultBalance {
		gw.Content = append(gw.Content, yStr("balance"), yStr(c.Gateway.Balance))
	}
	// Routes equal to the default ones are left out. An empty list the
	// author wrote is kept even when the default is empty too: it says
	// "no routes", which must survive a service gaining a port.
	_, routesWritten := c.pos["gateway.routes"]
	if !routesEqual(c.Gateway.Routes, DefaultRoutes(c)) || (routesWritten && len(c.Gateway.Routes) == 0) {
		routes := &yaml.Node{Kind: yaml.SequenceNode}
		for _, r := range c.Gateway.Routes {
			rn := yMap("path", yStr(r.Path), "service", yStr(r.Service))
			if r.StripPrefix {
				rn.Content = append(rn.Content, yStr("strip_prefix"), yBool(true))
			}
			if r.Timeout != DefaultRouteTimeout {
				rn.Content = append(rn.Content, yStr("timeout"), yDuration(r.Timeout))
			}
			if r.Retries != DefaultRouteRetries {
				rn.Content = append(rn.Content, yStr("retries"), yInt(r.Retries))
			}
			routes.Content = append(routes.Content, rn)
		}
		gw.Content = append(gw.Content, yStr("routes"), routes)
	}
	if len(c.Gateway.Listeners) > 0 {
		ls := &yaml.Node{Kind: yaml.SequenceNode}
		for _, l := range c.Gateway.Listeners {
			ln := yMap("port", yInt(l.Port), "service", yStr(l.Service))
			ln.Style = yaml.FlowStyle
			ls.Content = append(ls.Content, ln)
		}
		gw.Content = append(gw.Content, yStr("listeners"), ls)
	}
	// The gateway's outlier is written where it differs from the
	// defaults, a service's where it differs from the gateway's: what a
	// reader of the cell file merges back to the same settings.
	gwOutlier := defaultOutlier
	if c.Gateway.Outlier != nil {
		gwOutlier = *c.Gateway.Outlier
	}
	if on := renderOutlier(gwOutlier, defaultOutlier); on != nil {
		gw.Content = append(gw.Content, yStr("outlier"), on)
	}
	// Only false is written: true is the default, left out like every
	// other default.
	if !c.Gateway.FastPathEnabled() {
		gw.Content = append(gw.Content, yStr("fast_path"), yBool(false))
	}
	if a := c.Gateway.AccessLog; a != nil {
		gw.Content = append(gw.Content, yStr("access_log"), renderAccessLog(a))
	}
	if c.Gateway.Procs != 0 {
		gw.Content = append(gw.Content, yStr("procs"), yInt(c.Gateway.Procs))
	}
	root.Content = append(root.Content, yStr("gateway"), gw)
	if len(c.Uses) > 0 {
		root.Content = append(root.Content, yStr("uses"), yFlow(c.Uses))
	}

	svcs := &yaml.Node{Kind: yaml.MappingNode}
	for _, name := range c.ServiceNames() {
		svcs.Content = append(svcs.Content, yStr(name), renderService(c.Services[name], gwOutlier, dir))
	}
	root.Content = append(root.Content, yStr("services"), svcs)
	if len(c.Flows) > 0 {
		root.Content = append(root.Content, yStr("flows"), renderFlows(c.Flows))
	}

	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// renderAccessLog writes access_log as written: where it goes alone when
// that is all it says.
func renderAccessLog(a *AccessLog) *yaml.Node {
	if a.Sample == 0 && a.MaxSize == 0 && a.MaxFiles == 0 && a.To != "" {
		return yStr(a.To)
	}
	n := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	add := func(key string, v *yaml.Node) { n.Content = append(n.Content, yStr(key), v) }
	if a.To != "" {
		add("to", yStr(a.To))
	}
	if a.Sample != 0 {
		add("sample", yFloat(a.Sample))
	}
	if a.MaxSize != 0 {
		add("max_size", yStr(formatBytes(a.MaxSize)))
	}
	if a.MaxFiles != 0 {
		add("max_files", yInt(a.MaxFiles))
	}
	return n
}

// renderService writes one service; gwOutlier is the gateway's outlier
// setting, which the service's is written against.
func renderService(s *Service, gwOutlier Outlier, dir string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v *yaml.Node) { n.Content = append(n.Content, yStr(key), v) }
	if b := s.Build; b != nil {
		if b.Dockerfile == "" && b.Target == "" && len(b.Args) == 0 && b.Go == "" {
			add("build", yStr(relPath(dir, b.Context)))
		} else {
			bn := &yaml.Node{Kind: yaml.MappingNode}
			if b.Context != "" {
				bn.Content = append(bn.Content, yStr("context"), yStr(relPath(dir, b.Context)))
			}
			if b.Dockerfile != "" {
				bn.Content = append(bn.Content, yStr("dockerfile"), yStr(b.Dockerfile))
			}
			if len(b.Args) > 0 {
				bn.Content = append(bn.Content, yStr("args"), yStrMap(b.Args))
			}
			if b.Target != "" {
				bn.Content = append(bn.Content, yStr("target"), yStr(b.Target))
			}
			if b.Go != "" {
				bn.Content = append(bn.Content, yStr("go"), yStr(relPath(dir, b.Go)))
			}
			add("build", bn)
		}
	}
	if s.Image != "" {
		add("image", yStr(s.Image))
	}
	if s.Port != 0 {
		add("port", yInt(s.Port))
	}
	if len(s.Command) > 0 {
		add("command", yFlow(s.Command))
	}
	if len(s.Entrypoint) > 0 {
		add("entrypoint", yFlow(s.Entrypoint))
	}
	if len(s.Env) > 0 {
		add("env", yStrMap(s.Env))
	}
	if s.Replicas != defaultReplicas(s) {
		add("replicas", yInt(s.Replicas))
	}
	if s.Restart != DefaultRestart {
		add("restart", yStr(s.Restart))
	}
	if h := s.Health; h != nil {
		hn := &yaml.Node{Kind: yaml.MappingNode}
		hadd := func(key string, v *yaml.Node) { hn.Content = append(hn.Content, yStr(key), v) }
		switch {
		case h.HTTP != "":
			hadd("http", yStr(h.HTTP))
		case h.TCP:
			hadd("tcp", yBool(true))
		case len(h.Exec) > 0:
			hadd("exec", yFlow(h.Exec))
		}
		if h.Interval != DefaultHealthInterval {
			hadd("interval", yDuration(h.Interval))
		}
		if h.Timeout != DefaultHealthTimeout {
			hadd("timeout", yDuration(h.Timeout))
		}
		if h.Retries != DefaultHealthRetries {
			hadd("retries", yInt(h.Retries))
		}
		if h.StartPeriod != 0 {
			hadd("start_period", yDuration(h.StartPeriod))
		}
		add("health", hn)
	}
	if a := s.Autoscale; a != nil {
		an := &yaml.Node{Kind: yaml.MappingNode}
		aadd := func(key string, v *yaml.Node) { an.Content = append(an.Content, yStr(key), v) }
		if a.Min != 1 {
			aadd("min", yInt(a.Min))
		}
		aadd("max", yInt(a.Max))
		for _, t := range []struct {
			key string
			v   float64
		}{{"inflight", a.Inflight}, {"rps", a.RPS}, {"cpu", a.CPU}} {
			if t.v != 0 {
				aadd(t.key, yFloat(t.v))
			}
		}
		if a.ScaleDownAfter != DefaultScaleDownAfter {
			aadd("scale_down_after", yDuration(a.ScaleDownAfter))
		}
		add("autoscale", an)
	}
	if o := s.Outlier; o != nil {
		if on := renderOutlier(*o, gwOutlier); on != nil {
			add("outlier", on)
		}
	}
	if r := s.Resources; r != (Resources{}) {
		rn := &yaml.Node{Kind: yaml.MappingNode}
		if r.CPUs != 0 {
			rn.Content = append(rn.Content, yStr("cpus"), yFloat(r.CPUs))
		}
		if r.Memory != 0 {
			rn.Content = append(rn.Content, yStr("memory"), yStr(formatBytes(r.Memory)))
		}
		add("resources", rn)
	}
	if len(s.Volumes) > 0 {
		vn := &yaml.Node{Kind: yaml.SequenceNode}
		for _, v := range s.Volumes {
			src := v.Source
			if v.Type == VolumeBind {
				src = relPath(dir, src)
			}
			spec := src + ":" + v.Target
			if v.ReadOnly {
				spec += ":ro"
			}
			vn.Content = append(vn.Content, yStr(spec))
		}
		add("volumes", vn)
	}
	if len(s.DependsOn) > 0 {
		add("depends_on", yFlow(s.DependsOn))
	}
	return n
}

// renderOutlier writes the fields of o that differ from base, or returns nil
// when none does.
func renderOutlier(o, base Outlier) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	if o.Consecutive5xx != base.Consecutive5xx {
		n.Content = append(n.Content, yStr("consecutive_5xx"), yInt(o.Consecutive5xx))
	}
	if o.BaseEjection != base.BaseEjection {
		n.Content = append(n.Content, yStr("base_ejection"), yDuration(o.BaseEjection))
	}
	if o.MaxEjectionPercent != base.MaxEjectionPercent {
		n.Content = append(n.Content, yStr("max_ejection_percent"), yInt(o.MaxEjectionPercent))
	}
	if len(n.Content) == 0 {
		return nil
	}
	return n
}

func routesEqual(a, b []Route) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// relPath makes p relative to dir in the form the cell decoder reads as a
// path: it starts with "." or "/".
func relPath(dir, p string) string {
	rel, err := filepath.Rel(dir, p)
	switch {
	case err != nil:
		return p
	case rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)):
		return filepath.ToSlash(rel)
	}
	return "./" + filepath.ToSlash(rel)
}

// formatBytes writes a memory size the way people write it when it is a
// whole number of G, M or K.
func formatBytes(b int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if b%u.size == 0 {
			return strconv.FormatInt(b/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(b, 10)
}

// Node constructors. String values have "$" doubled: the cell loader
// interpolates every value, and these are final values.

func yStr(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ReplaceAll(s, "$", "$$")}
	if yaml11Bools[strings.ToLower(s)] {
		n.Style = yaml.DoubleQuotedStyle // read as booleans by YAML 1.1 tools
	}
	return n
}

var yaml11Bools = map[string]bool{"y": true, "yes": true, "n": true, "no": true, "on": true, "off": true}

// yDuration writes a duration the short way: 1m rather than 1m0s.
func yDuration(d Duration) *yaml.Node {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return yStr(s)
}

func yInt(i int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(i)}
}

func yFloat(f float64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.FormatFloat(f, 'f', -1, 64)}
}

func yBool(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func yFlow(list []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range list {
		n.Content = append(n.Content, yStr(s))
	}
	return n
}

func yStrMap(m map[string]string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range sortedKeys(m) {
		key := yStr(k)
		key.Value = k // keys are not interpolated
		n.Content = append(n.Content, key, yStr(m[k]))
	}
	return n
}

func yMap(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Content = append(n.Content, yStr(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return n
}
