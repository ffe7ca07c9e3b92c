package runtime

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// The plan: what one batch of changes asks for.

// watchStep is one thing a batch of changes asks watch to do.
type watchStep struct {
	kind          string // cellspec.WatchRebuild, WatchSync or WatchRestart
	cell, service string
	files         []syncFile // sync
}

// syncFile is a changed file and where it goes in the containers.
type syncFile struct {
	host, container string
}

func (s watchStep) ref() string { return s.cell + "/" + s.service }

// String is one line, as in the plans of Up.
func (s watchStep) String() string {
	if s.kind != cellspec.WatchSync {
		return s.kind + " " + s.ref()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sync %s:", s.ref())
	for _, f := range s.files {
		fmt.Fprintf(&b, " %s→%s", f.host, f.container)
	}
	return b.String()
}

// planWatch decides what the changed paths ask for, per service in
// cell/service order: a rebuild when a rebuild rule matches (it makes
// syncs and restarts of the service moot), else the files each sync rule
// matches, then a restart when a restart rule matches. It is a pure
// function.
func planWatch(rules []watchRule, paths []string) []watchStep {
	type key struct{ cell, service string }
	type want struct {
		rebuild, restart bool
		files            []syncFile
		seen             map[string]bool
	}
	wants := map[key]*want{}
	var keys []key
	for _, r := range rules {
		k := key{r.cell, r.service}
		wt := wants[k]
		for _, p := range paths {
			if !slices.ContainsFunc(r.scopes, func(s watchScope) bool { return s.matches(p) }) {
				continue
			}
			if wt == nil {
				wt = &want{seen: map[string]bool{}}
				wants[k] = wt
				keys = append(keys, k)
			}
			switch r.action {
			case cellspec.WatchRebuild:
				wt.rebuild = true
			case cellspec.WatchRestart:
				wt.restart = true
			case cellspec.WatchSync:
				if wt.seen[p] {
					continue
				}
				wt.seen[p] = true
				dst := r.target
				if p != r.root {
					rel, _ := filepath.Rel(r.root, p)
					dst = path.Join(r.target, filepath.ToSlash(rel))
				}
				wt.files = append(wt.files, syncFile{host: p, container: dst})
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].cell != keys[j].cell {
			return keys[i].cell < keys[j].cell
		}
		return keys[i].service < keys[j].service
	})
	var steps []watchStep
	for _, k := range keys {
		wt := wants[k]
		if wt.rebuild {
			steps = append(steps, watchStep{kind: cellspec.WatchRebuild, cell: k.cell, service: k.service})
			continue
		}
		if len(wt.files) > 0 {
			sort.Slice(wt.files, func(i, j int) bool { return wt.files[i].host < wt.files[j].host })
			steps = append(steps, watchStep{kind: cellspec.WatchSync, cell: k.cell, service: k.service, files: wt.files})
		}
		if wt.restart {
			steps = append(steps, watchStep{kind: cellspec.WatchRestart, cell: k.cell, service: k.service})
		}
	}
	return steps
}

// debouncer gathers changed paths until they have been quiet for quiet,
// or for at most maxDelay after the first one. It is a pure function of
// the times it is given.
type debouncer struct {
	quiet, maxDelay time.Duration
	first, last     time.Time
	paths           map[string]bool
}

// add records a change of p at now.
func (d *debouncer) add(p string, now time.Time) {
	if len(d.paths) == 0 {
		d.paths = map[string]bool{}
		d.first = now
	}
	d.paths[p] = true
	d.last = now
}

// due returns when the pending batch is due, and whether there is one.
func (d *debouncer) due() (time.Time, bool) {
	if len(d.paths) == 0 {
		return time.Time{}, false
	}
	at := d.last.Add(d.quiet)
	if limit := d.first.Add(d.maxDelay); limit.Before(at) {
		at = limit
	}
	return at, true
}

// take returns the batch, sorted, and when its first change came, once it
// is due at now; then it starts a new batch.
func (d *debouncer) take(now time.Time) ([]string, time.Time, bool) {
	at, ok := d.due()
	if !ok || now.Before(at) {
		return nil, time.Time{}, false
	}
	paths := make([]string, 0, len(d.paths))
	for p := range d.paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	first := d.first
	d.paths = nil
	return paths, first, true
}
