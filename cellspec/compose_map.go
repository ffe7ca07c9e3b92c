package cellspec

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/format"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// The mapping of what compose-go loaded onto the cell, service by service.

// cellName names the cell after the compose project.
func (c *composeImport) cellName() {
	cell := c.rc.cell
	cell.Name = normalizeProjectName(c.project.Name)
	if v := mapGet(c.root, "name"); v != nil {
		c.d.pos["cell"] = c.d.at(v)
	} else {
		c.d.pos["cell"] = c.d.at(c.root)
	}
	if cell.Name == "" {
		c.probs = append(c.probs, Problem{Pos: c.d.pos["cell"], Path: "cell",
			Msg: fmt.Sprintf("cannot make a cell name of compose project name %q", c.project.Name), Hint: "set name: at the top of the compose file"})
	}
}

// service converts one compose service.
func (c *composeImport) service(s types.ServiceConfig) *Service {
	name := s.Name
	sp := "services." + name
	svc := &Service{Name: name}
	c.markFrom(sp, sp)

	if b := s.Build; b != nil {
		c.markFrom(sp+".build", sp+".build")
		if strings.Contains(b.Context, "://") || strings.HasPrefix(b.Context, "git@") {
			c.problem(sp+".build", "clone the repository and point build at the directory", "remote build context %q is not supported", b.Context)
		}
		bd := &Build{Context: absPath(c.dir, b.Context), Dockerfile: b.Dockerfile, Target: b.Target}
		if bd.Dockerfile == "Dockerfile" {
			bd.Dockerfile = "" // the default, as in a cell file
		}
		for _, k := range sortedKeys(b.Args) {
			v := b.Args[k]
			if v == nil {
				continue // the walk reports it
			}
			if bd.Args == nil {
				bd.Args = map[string]string{}
			}
			bd.Args[k] = *v
		}
		svc.Build = bd
	} else {
		svc.Image = s.Image
		c.markFrom(sp+".image", sp+".image")
	}

	svc.Command = c.command(s.Command, sp, "command")
	svc.Entrypoint = c.command(s.Entrypoint, sp, "entrypoint")

	for k, v := range s.Environment {
		if v == nil {
			continue // unset and without a value: compose passes nothing either
		}
		if svc.Env == nil {
			svc.Env = map[string]string{}
		}
		svc.Env[k] = *v
	}
	if svc.Env != nil {
		c.markFrom(sp+".env", sp+".environment", sp+".env_file")
	}

	switch {
	case s.Scale != nil:
		svc.Replicas = *s.Scale
		c.rc.replicas[name] = true
		c.markFrom(sp+".replicas", sp+".scale", sp+".deploy.replicas")
	case s.Deploy != nil && s.Deploy.Replicas != nil:
		svc.Replicas = *s.Deploy.Replicas
		c.rc.replicas[name] = true
		c.markFrom(sp+".replicas", sp+".deploy.replicas", sp+".scale")
	}

	svc.Restart = composeRestart(s.Restart)
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil && s.Deploy.RestartPolicy.Condition != "" {
		// docker compose lets deploy.restart_policy win over restart.
		switch cond := s.Deploy.RestartPolicy.Condition; cond {
		case "none":
			svc.Restart = RestartNever
		case "any":
			svc.Restart = RestartAlways
		default:
			svc.Restart = composeRestart(cond)
		}
		c.markFrom(sp+".restart", sp+".deploy.restart_policy.condition")
	}
	c.markFrom(sp+".restart", sp+".restart")

	svc.Health = c.health(s, sp)

	if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
		l := s.Deploy.Resources.Limits
		svc.Resources = Resources{CPUs: cleanFloat32(float32(l.NanoCPUs)), Memory: int64(l.MemoryBytes)}
		c.markFrom(sp+".resources", sp+".deploy.resources.limits")
	}
	if svc.Resources.CPUs == 0 && s.CPUS > 0 {
		svc.Resources.CPUs = cleanFloat32(s.CPUS)
		c.markFrom(sp+".resources", sp+".cpus")
	}
	if svc.Resources.Memory == 0 && s.MemLimit > 0 {
		svc.Resources.Memory = int64(s.MemLimit)
		c.markFrom(sp+".resources", sp+".mem_limit")
	}

	svc.Volumes = c.volumes(s, sp)
	svc.DependsOn = c.dependsOn(s, sp)
	c.port(s, svc, sp)
	svc.Develop = c.develop(s, sp) // compose_watch.go
	return svc
}

func (c *composeImport) command(cmd types.ShellCommand, sp, key string) []string {
	if cmd == nil {
		return nil
	}
	c.markFrom(sp+"."+key, sp+"."+key)
	if len(cmd) == 0 {
		c.warn(c.cpos.at(sp+"."+key), sp+"."+key, "an empty %s is not honoured by orchestro (the image's %s is used)", key, key)
		return nil
	}
	return append([]string(nil), cmd...)
}

// composeRestart maps a compose restart policy. Unknown values pass through
// for validation to report.
func composeRestart(r string) string {
	switch {
	case r == "":
		return ""
	case r == "no":
		return RestartNever
	case r == "always" || r == "unless-stopped":
		return RestartAlways
	case r == "on-failure" || strings.HasPrefix(r, "on-failure:"):
		return RestartOnFailure
	}
	return r
}

// health converts a compose healthcheck: CMD runs its arguments, CMD-SHELL
// runs its command through /bin/sh -c.
func (c *composeImport) health(s types.ServiceConfig, sp string) *Health {
	hc := s.HealthCheck
	if hc == nil || hc.Disable {
		return nil
	}
	var exec []string
	switch {
	case len(hc.Test) == 0:
		c.warn(c.cpos.at(sp+".healthcheck"), sp+".healthcheck",
			"a healthcheck without test is not honoured by orchestro (it does not read the image's HEALTHCHECK); add test or x-orchestro.health")
		return nil
	case hc.Test[0] == "NONE":
		return nil
	case hc.Test[0] == "CMD" && len(hc.Test) > 1:
		exec = append([]string(nil), hc.Test[1:]...)
	case hc.Test[0] == "CMD-SHELL" && len(hc.Test) > 1:
		exec = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		c.warn(c.cpos.at(sp+".healthcheck.test"), sp+".healthcheck.test", "a test without a command is not honoured by orchestro")
		return nil
	}
	h := &Health{Exec: exec}
	if hc.Interval != nil && *hc.Interval > 0 {
		h.Interval = Duration(*hc.Interval)
	}
	if hc.Timeout != nil && *hc.Timeout > 0 {
		h.Timeout = Duration(*hc.Timeout)
	}
	if hc.StartPeriod != nil && *hc.StartPeriod > 0 {
		h.StartPeriod = Duration(*hc.StartPeriod)
	}
	// Docker reads retries: 0 as its default; so does orchestro.
	if hc.Retries != nil && *hc.Retries > 0 {
		h.Retries = int(min(*hc.Retries, 1<<31-1))
		c.rc.hsRetry[s.Name] = true
	}
	c.markFrom(sp+".health", sp+".healthcheck")
	for _, k := range []string{"interval", "timeout", "retries", "start_period"} {
		c.markFrom(sp+".health."+k, sp+".healthcheck."+k)
	}
	c.markFrom(sp+".health.exec", sp+".healthcheck.test")
	return h
}

// volumes keeps bind mounts and named volumes; the walk warns about the
// rest (anonymous volumes, tmpfs and the like).
func (c *composeImport) volumes(s types.ServiceConfig, sp string) []Volume {
	var out []Volume
	raw := c.rawVolumeTargets(sp)
	for _, v := range s.Volumes {
		var vol Volume
		switch {
		case v.Type == types.VolumeTypeBind:
			vol = Volume{Type: VolumeBind, Source: absPath(c.dir, v.Source), Target: v.Target, ReadOnly: v.ReadOnly}
		case v.Type == types.VolumeTypeVolume && v.Source != "":
			vol = Volume{Type: VolumeNamed, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
			if !IsDNSLabel(strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(v.Source))) || strings.ToLower(v.Source) != v.Source {
				c.problem(firstNonEmpty(raw[v.Target], sp+".volumes"), "lower-case letters, digits, '-', '_' or '.'", "volume name %q is not supported by orchestro", v.Source)
				continue
			}
		default:
			continue
		}
		p := fmt.Sprintf("%s.volumes[%d]", sp, len(out))
		c.markFrom(p, raw[v.Target])
		out = append(out, vol)
	}
	if out != nil {
		c.markFrom(sp+".volumes", sp+".volumes")
	}
	return out
}

// rawVolumeTargets maps each volume target of a service in the main file to
// the compose path of its entry.
func (c *composeImport) rawVolumeTargets(sp string) map[string]string {
	out := map[string]string{}
	svc := mapGet(mapGet(c.iroot, "services"), strings.TrimPrefix(sp, "services."))
	list := mapGet(svc, "volumes")
	if list == nil || list.Kind != yaml.SequenceNode {
		return out
	}
	for i, e := range list.Content {
		if t := volumeTarget(e); t != "" {
			out[t] = fmt.Sprintf("%s.volumes[%d]", sp, i)
		}
	}
	return out
}

func volumeTarget(e *yaml.Node) string {
	switch e.Kind {
	case yaml.ScalarNode:
		if v, err := format.ParseVolume(e.Value); err == nil {
			return filepath.Clean(v.Target)
		}
	case yaml.MappingNode:
		if t := mapGet(e, "target"); t != nil && t.Kind == yaml.ScalarNode {
			return filepath.Clean(t.Value)
		}
	}
	return ""
}

// dependsOn keeps the dependencies on services of the cell; the walk warns
// about the others and about conditions orchestro does not honour.
func (c *composeImport) dependsOn(s types.ServiceConfig, sp string) []string {
	var out []string
	raw := mapGet(mapGet(mapGet(c.root, "services"), s.Name), "depends_on")
	for _, dep := range sortedKeys(s.DependsOn) {
		if _, ok := c.project.Services[dep]; !ok {
			continue
		}
		p := fmt.Sprintf("%s.depends_on[%d]", sp, len(out))
		if raw != nil && raw.Kind == yaml.SequenceNode {
			for i, e := range raw.Content {
				if e.Value == dep {
					c.markFrom(p, fmt.Sprintf("%s.depends_on[%d]", sp, i))
				}
			}
		} else {
			c.markFrom(p, sp+".depends_on."+dep)
		}
		out = append(out, dep)
	}
	if out != nil {
		c.markFrom(sp+".depends_on", sp+".depends_on")
	}
	return out
}

// port sets the container port: the first expose entry, else the container
// side of the first ports entry.
func (c *composeImport) port(s types.ServiceConfig, svc *Service, sp string) {
	if len(s.Expose) > 0 {
		if p, _, ok := parseExpose(s.Expose[0]); ok {
			svc.Port = p
			c.markFrom(sp+".port", sp+".expose[0]", sp+".expose")
			return
		}
	}
	if len(s.Ports) > 0 {
		svc.Port = int(s.Ports[0].Target)
		c.markFrom(sp+".port", sp+".ports[0]", sp+".ports")
	}
}

// parseExpose reads "3000", "3000/tcp" or "3000-3005/udp": the first port,
// the protocol, and whether it is a valid entry.
func parseExpose(s string) (port int, proto string, ok bool) {
	s, proto, _ = strings.Cut(s, "/")
	first, _, _ := strings.Cut(s, "-")
	p, err := strconv.Atoi(first)
	if err != nil {
		return 0, proto, false
	}
	return p, proto, true
}

// cleanFloat32 widens a float32 without the noise of its binary
// representation: 0.1 stays 0.1.
func cleanFloat32(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}
