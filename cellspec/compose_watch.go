package cellspec

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// Compose's develop.watch: what `orchestro watch` does when a service's
// files change. The mapping (develop) keeps the rules orchestro carries
// out and warns about the others; the walk (walkDevelop) warns about keys
// of the section orchestro does not read.

// Develop is what `orchestro watch` does when files of a service change.
// A service without one is rebuilt when its build inputs change; a service
// with one follows its rules only (none: it is not watched), as compose
// does.
type Develop struct {
	Watch []WatchRule `json:"watch,omitempty"`
}

// WatchRule is one develop.watch entry.
type WatchRule struct {
	// Path is the absolute file or directory watched.
	Path string `json:"path"`
	// Action is one of WatchRebuild, WatchSync, WatchSyncRestart and
	// WatchRestart.
	Action string `json:"action"`
	// Target is where WatchSync copies the files of Path into the
	// service's containers: Path's counterpart.
	Target string `json:"target,omitempty"`
	// Ignore holds .dockerignore-style patterns, relative to Path, of
	// files whose changes the rule passes over.
	Ignore []string `json:"ignore,omitempty"`
	// Include, when not empty, limits the rule to the files that match
	// one of these patterns (relative to Path).
	Include []string `json:"include,omitempty"`
}

// Watch actions.
const (
	// WatchRebuild rebuilds the image and rolls the service onto it
	// through the gateway.
	WatchRebuild = "rebuild"
	// WatchSync copies the changed files into every running replica.
	WatchSync = "sync"
	// WatchSyncRestart is carried out as WatchRebuild (see watchRule).
	WatchSyncRestart = "sync+restart"
	// WatchRestart restarts the service through the gateway, one replica
	// at a time.
	WatchRestart = "restart"
)

// develop maps a compose service's develop.watch entries, warning about
// each one orchestro cannot carry out as written.
func (c *composeImport) develop(s types.ServiceConfig, sp string) *Develop {
	if s.Develop == nil || len(s.Develop.Watch) == 0 {
		return nil
	}
	var build *Build
	if s.Build != nil {
		build = &Build{Context: absPath(c.dir, s.Build.Context)}
	}
	d := &Develop{}
	for i, t := range s.Develop.Watch {
		ep := fmt.Sprintf("%s.develop.watch[%d]", sp, i)
		r, note := watchRule(t, c.dir, build)
		if note != "" {
			c.warn(c.cpos.at(ep+".action"), ep+".action", "%s", note)
		}
		if r != nil {
			d.Watch = append(d.Watch, *r)
		}
	}
	c.markFrom(sp+".develop", sp+".develop")
	return d
}

// watchRule maps one develop.watch entry for a service built from build
// (nil for an image). It returns nil when orchestro cannot carry the
// entry out at all, and a note whenever what it does differs from what
// compose would.
func watchRule(t types.Trigger, dir string, build *Build) (*WatchRule, string) {
	r := &WatchRule{
		Path:    absPath(dir, t.Path),
		Action:  string(t.Action),
		Target:  t.Target,
		Ignore:  append([]string(nil), t.Ignore...),
		Include: append([]string(nil), t.Include...),
	}
	if t.Path == "" {
		return nil, "a watch entry without path is not honoured by orchestro"
	}
	switch t.Action {
	case types.WatchActionRebuild:
		if build == nil {
			return nil, "rebuild not honoured by orchestro: the service has no build"
		}
		return r, ""
	case types.WatchActionRestart:
		return r, ""
	case types.WatchActionSync, types.WatchActionSyncExec:
		if t.Target == "" {
			return nil, fmt.Sprintf("%s not honoured by orchestro: it needs a target", t.Action)
		}
		r.Action = WatchSync
		if t.Action == types.WatchActionSyncExec {
			return r, "sync+exec is carried out as sync by orchestro (the exec command is not run)"
		}
		return r, ""
	case types.WatchActionSyncRestart:
		// A rolling restart replaces a replica with a new container from
		// the image, so files copied into the old one would be lost: the
		// files reach the new replicas through a rebuilt image instead.
		if build == nil || !within(build.Context, r.Path) {
			return nil, "sync+restart not honoured by orchestro: it rebuilds instead, and the path is outside the build context"
		}
		r.Action = WatchRebuild
		r.Target = ""
		return r, "sync+restart is carried out as rebuild by orchestro (a rolling restart starts new containers from the image, which would not have the synced files)"
	}
	return nil, fmt.Sprintf("action %q not honoured by orchestro (it knows rebuild, sync, sync+restart and restart)", t.Action)
}

// within reports whether path is dir or lies under it.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && filepath.IsLocal(rel) || rel == "."
}

// walkDevelop reports the keys of a develop section that orchestro does
// not read.
func (c *composeImport) walkDevelop(n *yaml.Node, p, file string) {
	c.walkKeys(n, p, file, []string{"watch"}, "", func(_ string, _, v *yaml.Node) {
		if v.Kind != yaml.SequenceNode {
			return
		}
		for i, e := range v.Content {
			ep := fmt.Sprintf("%s.watch[%d]", p, i)
			c.walkKeys(e, ep, file, []string{"path", "action", "target", "ignore", "include", "exec", "initial_sync"}, "", func(key string, k, v *yaml.Node) {
				at := Position{File: file, Line: k.Line, Column: k.Column}
				switch key {
				case "exec":
					c.warn(at, ep+".exec", "not honoured by orchestro (no command is run after a sync)")
				case "initial_sync":
					if strings.EqualFold(v.Value, "true") {
						c.warn(at, ep+".initial_sync", "not honoured by orchestro (files are synced when they change)")
					}
				}
			})
		}
	})
}
