package cellspec

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The keys accepted at each level of a cell file. They are also the source
// of "did you mean" hints.
var (
	cellKeys      = []string{"cell", "gateway", "uses", "services", "flows"}
	gatewayKeys   = []string{"port", "balance", "routes", "listeners", "outlier", "fast_path", "access_log", "procs"}
	accessLogKeys = []string{"to", "sample", "max_size", "max_files"}
	listenerKeys  = []string{"port", "service"}
	routeKeys     = []string{"path", "service", "strip_prefix", "timeout", "retries"}
	serviceKeys   = []string{"build", "image", "port", "command", "entrypoint", "env", "replicas", "restart", "health", "autoscale", "outlier", "resources", "volumes", "depends_on"}
	buildKeys     = []string{"context", "dockerfile", "args", "target", "go"}
	healthKeys    = []string{"http", "tcp", "exec", "interval", "timeout", "retries", "start_period"}
	autoscaleKeys = []string{"min", "max", "inflight", "rps", "cpu", "scale_down_after"}
	outlierKeys   = []string{"consecutive_5xx", "base_ejection", "max_ejection_percent"}
	resourceKeys  = []string{"cpus", "memory"}
)

// rawCell is a cell as written, before defaults: optional values are
// pointers so that "absent" and "zero" differ.
type rawCell struct {
	cell     *Cell
	retries  map[int]bool // routes whose retries were written
	replicas map[string]bool
	hsRetry  map[string]bool
	asMin    map[string]bool
	// outlier holds the outlier fields written, by field path
	// ("services.orders.outlier.consecutive_5xx").
	outlier map[string]bool
}

func newRawCell(c *Cell) *rawCell {
	return &rawCell{cell: c, retries: map[int]bool{}, replicas: map[string]bool{}, hsRetry: map[string]bool{}, asMin: map[string]bool{}, outlier: map[string]bool{}}
}

// decodeCell decodes the root node of a cell file into a Cell. dir is the
// directory relative paths are resolved against.
func (d *decoder) decodeCell(root *yaml.Node, dir string) *rawCell {
	c := &Cell{Source: "cell", Services: map[string]*Service{}}
	rc := newRawCell(c)
	d.mark("", root)
	hasCell := false
	d.fields(root, "", cellKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "cell":
			hasCell = true
			d.pos[key] = d.at(v)
			if c.Name = d.str(v, key); c.Name == "" && !d.bad[key] {
				d.errorf(v, key, dnsHint, "cell name is empty")
			}
		case "gateway":
			d.decodeGateway(v, rc)
		case "uses":
			c.Uses = d.strings(v, key)
		case "services":
			d.entries(v, key, func(name string, _, sv *yaml.Node) {
				c.Services[name] = d.decodeService(sv, "services."+name, name, dir, rc)
			})
		case "flows":
			d.decodeFlows(v, c)
		}
	})
	if root.Kind == yaml.MappingNode {
		if !hasCell {
			d.errorf(root, "cell", "every cell file starts with `cell: <name>`", "missing required key \"cell\"")
		}
		if _, ok := d.pos["gateway"]; !ok {
			d.errorf(root, "gateway", "add `gateway: {port: 8080}`", "missing required key \"gateway\"")
		}
	}
	return rc
}

func (d *decoder) decodeGateway(n *yaml.Node, rc *rawCell) {
	g := &rc.cell.Gateway
	hasPort := false
	d.fields(n, "gateway", gatewayKeys, func(key string, _, v *yaml.Node) {
		p := "gateway." + key
		switch key {
		case "port":
			hasPort = true
			g.Port, _ = d.integer(v, p)
			d.pos[p] = d.at(v)
		case "balance":
			g.Balance = d.str(v, p)
			d.pos[p] = d.at(v)
		case "routes":
			if v.Kind != yaml.SequenceNode {
				d.errorf(v, p, "", "must be a list of routes, not %s", kindName(v))
				return
			}
			// Non-nil even when empty: routes: [] is a written list.
			g.Routes = make([]Route, 0, len(v.Content))
			for i, rn := range v.Content {
				rp := fmt.Sprintf("gateway.routes[%d]", i)
				d.mark(rp, rn)
				g.Routes = append(g.Routes, d.decodeRoute(rn, rp, i, rc))
			}
		case "listeners":
			if v.Kind != yaml.SequenceNode {
				d.errorf(v, p, "", "must be a list of listeners, not %s", kindName(v))
				return
			}
			for i, ln := range v.Content {
				lp := fmt.Sprintf("gateway.listeners[%d]", i)
				d.mark(lp, ln)
				g.Listeners = append(g.Listeners, d.decodeListener(ln, lp))
			}
		case "outlier":
			g.Outlier = d.decodeOutlier(v, p, rc)
		case "fast_path":
			d.pos[p] = d.at(v)
			if on, ok := d.boolean(v, p); ok {
				g.FastPath = &on
			}
		case "access_log":
			g.AccessLog = d.decodeAccessLog(v, p)
		case "procs":
			g.Procs, _ = d.integer(v, p)
			d.pos[p] = d.at(v)
		}
	})
	if n.Kind == yaml.MappingNode && !hasPort {
		d.errorf(n, "gateway.port", "the host port of the cell's entrance, for example 8080", "missing required key \"port\"")
	}
}

// decodeAccessLog decodes access_log: a mapping, or where it goes alone
// (access_log: stdout). false (or no) is read as off.
func (d *decoder) decodeAccessLog(n *yaml.Node, path string) *AccessLog {
	a := &AccessLog{}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		d.pos[path] = d.at(n)
		d.pos[path+".to"] = d.at(n)
		a.To = accessLogTo(n.Value)
		return a
	}
	d.fields(n, path, accessLogKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "to":
			if s, ok := d.scalar(v, p, "file, stdout or off"); ok {
				a.To = accessLogTo(s)
			}
		case "sample":
			a.Sample, _ = d.number(v, p)
		case "max_size":
			a.MaxSize, _ = d.size(v, p, "size", "for example 10M or 100M")
		case "max_files":
			a.MaxFiles, _ = d.integer(v, p)
		}
	})
	return a
}

// accessLogTo reads where an access log goes; YAML 1.1's words for false
// mean off. Any other word is kept for validation to name.
func accessLogTo(s string) string {
	switch strings.ToLower(s) {
	case "false", "no", "off":
		return AccessLogOff
	}
	return s
}

func (d *decoder) decodeListener(n *yaml.Node, path string) Listener {
	var l Listener
	d.fields(n, path, listenerKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "port":
			l.Port, _ = d.integer(v, p)
		case "service":
			l.Service = d.str(v, p)
		}
	})
	return l
}

func (d *decoder) decodeRoute(n *yaml.Node, path string, i int, rc *rawCell) Route {
	var r Route
	d.fields(n, path, routeKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "path":
			r.Path = d.str(v, p)
		case "service":
			r.Service = d.str(v, p)
		case "strip_prefix":
			r.StripPrefix, _ = d.boolean(v, p)
		case "timeout":
			r.Timeout, _ = d.duration(v, p)
		case "retries":
			if n, ok := d.integer(v, p); ok {
				r.Retries = n
				rc.retries[i] = true
			}
		}
	})
	return r
}

func (d *decoder) decodeService(n *yaml.Node, path, name, dir string, rc *rawCell) *Service {
	s := &Service{Name: name}
	d.fields(n, path, serviceKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "build":
			s.Build = d.decodeBuild(v, p, dir)
		case "image":
			s.Image = d.str(v, p)
		case "port":
			s.Port, _ = d.integer(v, p)
		case "command":
			s.Command = d.command(v, p)
		case "entrypoint":
			s.Entrypoint = d.command(v, p)
		case "env":
			s.Env = d.stringMap(v, p)
		case "replicas":
			if r, ok := d.integer(v, p); ok {
				s.Replicas = r
				rc.replicas[name] = true
			}
		case "restart":
			s.Restart = d.str(v, p)
		case "health":
			s.Health = d.decodeHealth(v, p, name, rc)
		case "autoscale":
			s.Autoscale = d.decodeAutoscale(v, p, name, rc)
		case "outlier":
			s.Outlier = d.decodeOutlier(v, p, rc)
		case "resources":
			s.Resources = d.decodeResources(v, p)
		case "volumes":
			s.Volumes = d.decodeVolumes(v, p, dir)
		case "depends_on":
			s.DependsOn = d.strings(v, p)
		}
	})
	return s
}

func (d *decoder) decodeBuild(n *yaml.Node, path, dir string) *Build {
	b := &Build{}
	if n.Kind == yaml.ScalarNode {
		if ctx := d.str(n, path); ctx != "" {
			b.Context = absPath(dir, ctx)
		} else {
			d.errorf(n, path, "", "must not be empty")
		}
		return b
	}
	d.fields(n, path, buildKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "context":
			b.Context = absPath(dir, d.str(v, p))
		case "dockerfile":
			b.Dockerfile = d.str(v, p)
		case "args":
			b.Args = d.stringMap(v, p)
		case "target":
			b.Target = d.str(v, p)
		case "go":
			b.Go = absPath(dir, d.str(v, p))
		}
	})
	return b
}

func (d *decoder) decodeHealth(n *yaml.Node, path, svc string, rc *rawCell) *Health {
	h := &Health{}
	d.fields(n, path, healthKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "http":
			h.HTTP = d.str(v, p)
		case "tcp":
			h.TCP, _ = d.boolean(v, p)
		case "exec":
			h.Exec = d.command(v, p)
		case "interval":
			h.Interval, _ = d.duration(v, p)
		case "timeout":
			h.Timeout, _ = d.duration(v, p)
		case "retries":
			if r, ok := d.integer(v, p); ok {
				h.Retries = r
				rc.hsRetry[svc] = true
			}
		case "start_period":
			h.StartPeriod = d.startPeriod(v, p)
		}
	})
	return h
}

// startPeriod is a duration that may be zero.
func (d *decoder) startPeriod(v *yaml.Node, p string) Duration {
	if v.Kind == yaml.ScalarNode {
		if z, err := time.ParseDuration(v.Value); (err == nil && z == 0) || v.Value == "0" {
			return 0
		}
	}
	sp, _ := d.duration(v, p)
	return sp
}

func (d *decoder) decodeAutoscale(n *yaml.Node, path, svc string, rc *rawCell) *Autoscale {
	a := &Autoscale{}
	d.fields(n, path, autoscaleKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "min":
			if m, ok := d.integer(v, p); ok {
				a.Min = m
				rc.asMin[svc] = true
			}
		case "max":
			a.Max, _ = d.integer(v, p)
		case "inflight":
			a.Inflight, _ = d.number(v, p)
		case "rps":
			a.RPS, _ = d.number(v, p)
		case "cpu":
			a.CPU, _ = d.number(v, p)
		case "scale_down_after":
			a.ScaleDownAfter, _ = d.duration(v, p)
		}
	})
	return a
}

// decodeOutlier decodes an outlier mapping, under gateway or under a
// service, and records in rc which of its fields were written: applyDefaults
// needs to know, since zero is a legal value for two of them.
func (d *decoder) decodeOutlier(n *yaml.Node, path string, rc *rawCell) *Outlier {
	o := &Outlier{}
	d.fields(n, path, outlierKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		var ok bool
		switch key {
		case "consecutive_5xx":
			o.Consecutive5xx, ok = d.integer(v, p)
		case "base_ejection":
			o.BaseEjection, ok = d.duration(v, p)
		case "max_ejection_percent":
			o.MaxEjectionPercent, ok = d.integer(v, p)
		}
		if ok {
			rc.outlier[p] = true
		}
	})
	return o
}

func (d *decoder) decodeResources(n *yaml.Node, path string) Resources {
	var r Resources
	d.fields(n, path, resourceKeys, func(key string, _, v *yaml.Node) {
		p := join(path, key)
		d.pos[p] = d.at(v)
		switch key {
		case "cpus":
			if f, ok := d.number(v, p); ok {
				if f <= 0 {
					d.errorf(v, p, "a fraction of cores, for example 0.5", "must be positive, not %s", v.Value)
				}
				r.CPUs = f
			}
		case "memory":
			r.Memory, _ = d.size(v, p, "memory size", "for example 256M or 1G")
		}
	})
	return r
}

// decodeVolumes parses "name:/path[:ro]" (a named volume) and
// "./host:/path[:ro]" (a bind mount, relative to the spec's directory).
func (d *decoder) decodeVolumes(n *yaml.Node, path, dir string) []Volume {
	var out []Volume
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "", "must be a list of volumes, not %s", kindName(n))
		return nil
	}
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.mark(p, e)
		s, ok := d.scalar(e, p, "a volume string")
		if !ok {
			continue
		}
		v, err := parseVolume(s, dir)
		if err != nil {
			d.errorf(e, p, "write name:/path, ./dir:/path or /abs:/path, with :ro or :rw", "invalid volume %q: %v", s, err)
			continue
		}
		out = append(out, v)
	}
	return out
}

func parseVolume(s, dir string) (Volume, error) {
	parts := strings.Split(s, ":")
	var v Volume
	switch len(parts) {
	case 2, 3:
		v.Source, v.Target = parts[0], parts[1]
		if len(parts) == 3 {
			switch parts[2] {
			case "ro":
				v.ReadOnly = true
			case "rw":
			default:
				return v, fmt.Errorf("unknown mode %q", parts[2])
			}
		}
	default:
		return v, fmt.Errorf("want source:target[:mode]")
	}
	if v.Source == "" {
		return v, fmt.Errorf("empty source")
	}
	if !strings.HasPrefix(v.Target, "/") {
		return v, fmt.Errorf("target %q is not an absolute path", v.Target)
	}
	if strings.HasPrefix(v.Source, ".") || strings.HasPrefix(v.Source, "/") || strings.HasPrefix(v.Source, "~") {
		v.Type = VolumeBind
		v.Source = absPath(dir, v.Source)
		return v, nil
	}
	v.Type = VolumeNamed
	if !IsDNSLabel(strings.ReplaceAll(strings.ReplaceAll(v.Source, "_", "-"), ".", "-")) {
		return v, fmt.Errorf("volume name %q must be letters, digits, '-', '_' or '.'", v.Source)
	}
	return v, nil
}

func absPath(dir, p string) string {
	if p == "" {
		return ""
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}
