package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/fsnotify/fsnotify"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/image"
)

// Watch: the build inputs of every service are watched (fsnotify, one
// watch per directory), changes are debounced, and each batch becomes a
// plan of steps (planWatch, a pure function): rebuild a service and roll
// it through its gateway, copy files into its replicas, or restart it.
// Rebuilt images are handed to the gateways as a new spec, exactly as Up
// does, so a service rolls new-before-old with no failed request.

// Timing of watch.
const (
	// watchQuiet is how long the files must stay still before a batch of
	// changes is acted on: an editor's save, or a branch switch, is many
	// events.
	watchQuiet = 300 * time.Millisecond
	// watchMaxDelay bounds how long a stream of changes that never goes
	// quiet defers acting on them.
	watchMaxDelay = 3 * time.Second
	// watchRollTimeout bounds the wait for a rebuilt service to be served
	// by its new replicas only.
	watchRollTimeout = 2 * time.Minute
	// watchPoll is how often the gateways are asked how a roll is going.
	watchPoll = 100 * time.Millisecond
	// watchErrorLines is how much of a failed build's output is shown.
	watchErrorLines = 12
)

// Watch brings the project up to date as Up does, then, until ctx ends,
// watches the build inputs of its services and carries out what changes
// ask for: a rebuild rolled through the gateway, files synced into the
// replicas, or a rolling restart, as compose's develop.watch says (a
// service without one is rebuilt when its build inputs change). It
// reports one line per step on opts.Progress and carries on after a
// failed build. It returns nil when ctx ends, and an error only when it
// cannot start.
func (c *Client) Watch(ctx context.Context, p *cellspec.Project, opts api.UpOptions) error {
	progress := opts.Progress
	if progress == nil {
		progress = api.Discard{}
	}
	if opts.Build == api.BuildNever {
		return errors.New("watch builds images; it cannot run with --no-build")
	}
	_, goarch, err := engine.Platform(ctx, c.eng)
	if err != nil {
		return err
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("start watching files: %w", err)
	}
	defer fw.Close()
	w := &watcher{c: c, p: p, opts: opts, progress: progress, goarch: goarch,
		fw: fw, dirs: map[string]bool{}, kick: make(chan struct{}, 1),
		deb: debouncer{quiet: watchQuiet, maxDelay: watchMaxDelay}}
	var names []string
	for _, cell := range p.Cells {
		for _, name := range cell.ServiceNames() {
			rules, warn := serviceWatchRules(ctx, cell, cell.Services[name], w.goList)
			if warn != "" {
				progress.Note("warning: " + warn)
			}
			if len(rules) > 0 {
				names = append(names, cell.Name+"/"+name)
			}
			w.rules = append(w.rules, rules...)
		}
	}
	if len(names) == 0 {
		return errors.New("no service has build inputs or develop.watch rules to watch")
	}
	// Files are watched before the first build, so an edit made while it
	// runs is not missed: it is the first batch.
	if err := w.watchRules(w.rules); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	events, stop := context.WithCancel(ctx)
	defer stop() // before wg.Wait: the reader ends with events
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.readEvents(events)
	}()

	w.gwImage, w.images, err = c.buildImages(ctx, p, opts, progress)
	if err != nil {
		return err
	}
	if err := c.rollImages(ctx, p, opts, w.gwImage, w.images, progress); err != nil {
		return err
	}
	progress.Note(fmt.Sprintf("watching %s (%s)", strings.Join(names, ", "), watchPlural(len(w.dirs), "directory", "directories")))
	w.loop(ctx)
	return nil
}

// rollImages is the second half of Up, with the images given: it hands
// every gateway its cell's spec, so the services whose image changed roll.
func (c *Client) rollImages(ctx context.Context, p *cellspec.Project, opts api.UpOptions, gwImage string, images map[string]map[string]api.ServiceImage, progress api.Progress) error {
	observed, err := c.observeUp(ctx, p)
	if err != nil {
		return err
	}
	if err := checkPorts(p, observed); err != nil {
		return err
	}
	token := observed.token()
	if token == "" {
		token = newToken()
	}
	plan, err := planUp(desiredUp(p, gwImage, images, token, opts.RemoveOrphans), observed)
	if err != nil {
		return err
	}
	return c.executeUp(ctx, plan, progress)
}

// watcher is the state of one Watch.
type watcher struct {
	c        *Client
	p        *cellspec.Project
	opts     api.UpOptions
	progress api.Progress
	goarch   string
	// gwImage and images are the images the gateways were last handed.
	gwImage string
	images  map[string]map[string]api.ServiceImage
	fw      *fsnotify.Watcher
	// kick wakes the loop when a change arrives.
	kick chan struct{}

	mu    sync.Mutex
	rules []watchRule
	dirs  map[string]bool // directories fw watches
	deb   debouncer
}

// loop acts on each batch of changes once it is due, until ctx ends.
func (w *watcher) loop(ctx context.Context) {
	for {
		w.mu.Lock()
		due, pending := w.deb.due()
		w.mu.Unlock()
		var timer <-chan time.Time
		if pending {
			timer = time.After(max(0, due.Sub(w.c.now())))
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-timer:
			w.mu.Lock()
			paths, first, ok := w.deb.take(w.c.now())
			steps := planWatch(w.rules, paths)
			w.mu.Unlock()
			if ok && len(steps) > 0 {
				w.apply(ctx, steps, first)
			}
		}
	}
}

// readEvents turns file events into pending changes until ctx ends. It
// watches directories as they are created, and reports their files as
// changed, since they may have been written before the watch began.
func (w *watcher) readEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			w.event(ev)
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: act as if everything changed.
				w.mu.Lock()
				for _, r := range w.rules {
					for _, s := range r.scopes {
						w.deb.add(s.path, w.c.now())
					}
				}
				w.mu.Unlock()
				w.wake()
				continue
			}
			w.progress.Note("warning: watch: " + err.Error())
		}
	}
}

func (w *watcher) event(ev fsnotify.Event) {
	if ev.Op == fsnotify.Chmod || skipPath(ev.Name) {
		return
	}
	changed := []string{ev.Name}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			w.mu.Lock()
			rules := w.rules
			w.mu.Unlock()
			files, err := w.addTree(rules, ev.Name)
			if err != nil {
				w.progress.Note("warning: watch: " + err.Error())
			}
			changed = append(changed, files...)
		}
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		w.mu.Lock()
		if w.dirs[ev.Name] {
			delete(w.dirs, ev.Name)
			_ = w.fw.Remove(ev.Name)
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	relevant := false
	for _, p := range changed {
		if anyRuleMatches(w.rules, p) {
			w.deb.add(p, w.c.now())
			relevant = true
		}
	}
	w.mu.Unlock()
	if relevant {
		w.wake()
	}
}

func (w *watcher) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// apply carries out the steps of one batch; since is when its first
// change was seen. Rebuilds come first, then syncs and restarts.
func (w *watcher) apply(ctx context.Context, steps []watchStep, since time.Time) {
	var rebuilds []watchStep
	for _, s := range steps {
		if s.kind == cellspec.WatchRebuild {
			rebuilds = append(rebuilds, s)
		}
	}
	if len(rebuilds) > 0 {
		w.rebuild(ctx, rebuilds, since)
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return
		}
		switch s.kind {
		case cellspec.WatchSync:
			start := w.c.now()
			n, err := w.c.syncFiles(ctx, w.p.Name, s.cell, s.service, s.files)
			if err != nil {
				w.progress.Note(fmt.Sprintf("sync to %s failed: %s", s.ref(), watchErrorText(err)))
				continue
			}
			w.progress.Note(fmt.Sprintf("synced %s to %s (%s) in %s", watchPlural(len(s.files), "file", "files"), s.ref(), watchPlural(n, "replica", "replicas"), watchDuration(w.c.now().Sub(start))))
		case cellspec.WatchRestart:
			if err := w.c.Restart(ctx, w.p.Name, s.cell, s.service); err != nil {
				w.progress.Note(fmt.Sprintf("restart of %s failed: %s", s.ref(), watchErrorText(err)))
				continue
			}
			w.progress.Note(fmt.Sprintf("restarting %s, one replica at a time", s.ref()))
		}
	}
}

// rebuild builds the images of the services in steps, hands the gateways
// the new ones and waits until they serve them, reporting one line per
// service. A service whose build fails keeps its image.
func (w *watcher) rebuild(ctx context.Context, steps []watchStep, since time.Time) {
	gocache := &image.GoBuildCache{}
	images := map[string]map[string]api.ServiceImage{}
	for cell, m := range w.images {
		images[cell] = map[string]api.ServiceImage{}
		for svc, img := range m {
			images[cell][svc] = img
		}
	}
	type built struct {
		step watchStep
		took time.Duration
		hash string
	}
	var changed []built
	// The rules are refreshed at the end, so listing a Go program's
	// packages does not delay the roll.
	defer func() {
		for _, s := range steps {
			cell := w.p.Cell(s.cell)
			w.refreshRules(ctx, cell, cell.Services[s.service])
		}
	}()
	for _, s := range steps {
		cell := w.p.Cell(s.cell)
		svc := cell.Services[s.service]
		start := w.c.now()
		img, err := w.c.serviceImage(ctx, w.p.Name, cell, svc, w.opts.Build, api.Discard{}, gocache)
		took := w.c.now().Sub(start)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			w.progress.Note(fmt.Sprintf("build of %s failed: %s", s.ref(), watchErrorText(err)))
			continue
		}
		if img.ID == images[s.cell][s.service].ID {
			w.progress.Note(fmt.Sprintf("%s unchanged (built in %s)", s.ref(), watchDuration(took)))
			continue
		}
		images[s.cell][s.service] = img
		changed = append(changed, built{step: s, took: took, hash: engine.ServiceConfigHash(w.p.Name, s.cell, svc, img.ID)})
	}
	if len(changed) == 0 {
		return
	}
	// The images become the wanted state even when handing them over
	// fails: the next roll hands them over again.
	w.images = images
	if err := w.c.rollImages(ctx, w.p, w.opts, w.gwImage, images, api.Discard{}); err != nil {
		for _, b := range changed {
			w.progress.Note(fmt.Sprintf("rolling %s failed: %s", b.step.ref(), watchErrorText(err)))
		}
		return
	}
	want := map[string]string{}
	for _, b := range changed {
		want[b.step.ref()] = b.hash
	}
	results := w.c.waitRolled(ctx, w.p.Name, want, watchRollTimeout)
	for _, b := range changed {
		ref := b.step.ref()
		r := results[ref]
		switch {
		case ctx.Err() != nil:
			return
		case r.err != nil:
			w.progress.Note(fmt.Sprintf("rebuilt %s in %s, but it is not served: %s", ref, watchDuration(b.took), watchErrorText(r.err)))
		default:
			w.progress.Note(fmt.Sprintf("rebuilt %s in %s (ready in %s)", ref, watchDuration(b.took), watchDuration(r.at.Sub(since))))
		}
	}
}

// refreshRules recomputes the rules of a service after a rebuild: a Go
// program may import new packages, a .dockerignore may have changed.
func (w *watcher) refreshRules(ctx context.Context, cell *cellspec.Cell, svc *cellspec.Service) {
	rules, _ := serviceWatchRules(ctx, cell, svc, w.goList)
	if len(rules) == 0 {
		return
	}
	w.mu.Lock()
	kept := slices.DeleteFunc(slices.Clone(w.rules), func(r watchRule) bool { return r.cell == cell.Name && r.service == svc.Name })
	w.rules = append(kept, rules...)
	w.mu.Unlock()
	if err := w.watchRules(rules); err != nil {
		w.progress.Note("warning: watch: " + err.Error())
	}
}

// rollResult is how the roll of one service ended.
type rollResult struct {
	at  time.Time
	err error
}

// waitRolled polls the gateways until every service in want (by
// cell/service) runs only replicas of its wanted config hash, all ready,
// or fails, or timeout passes.
func (c *Client) waitRolled(ctx context.Context, project string, want map[string]string, timeout time.Duration) map[string]rollResult {
	out := map[string]rollResult{}
	deadline := c.now().Add(timeout)
	for len(out) < len(want) {
		st, err := c.Status(ctx, project)
		if err == nil {
			for _, cs := range st.Cells {
				for _, s := range cs.Services {
					ref := cs.Cell + "/" + s.Service
					hash, ok := want[ref]
					if _, done := out[ref]; !ok || done {
						continue
					}
					if rolled(s, hash) {
						out[ref] = rollResult{at: c.now()}
					} else if why := rollFailing(s, hash); why != "" {
						out[ref] = rollResult{at: c.now(), err: errors.New(why)}
					}
				}
			}
		}
		if c.now().After(deadline) {
			for ref := range want {
				if _, done := out[ref]; !done {
					out[ref] = rollResult{at: c.now(), err: fmt.Errorf("its new replicas are not all ready after %s", timeout)}
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			return out
		case <-time.After(watchPoll):
		}
	}
	return out
}

// rolled reports whether a service runs only ready replicas of config
// hash, as many as it wants.
func rolled(s api.ServiceStatus, hash string) bool {
	if len(s.Replicas) != s.Desired || s.Ready < s.Desired {
		return false
	}
	for _, r := range s.Replicas {
		if r.ConfigHash != hash || r.Health == "draining" {
			return false
		}
	}
	return true
}

// rollFailing says why the new replicas of a service will not serve by
// waiting, or "": they crash-loop or cannot start, and none of them is
// ready.
func rollFailing(s api.ServiceStatus, hash string) string {
	for _, r := range s.Replicas {
		if r.ConfigHash == hash && r.Health == "healthy" {
			return ""
		}
	}
	switch {
	case s.Health == "crashloop":
		return fmt.Sprintf("it is crash-looping (%d failures)", s.Failures)
	case s.LastError != "":
		return "its replicas cannot start: " + s.LastError
	}
	return ""
}

// goList returns the inputs of the Go main package in dir.
func (w *watcher) goList(ctx context.Context, dir string) ([]watchScope, error) {
	return goInputs(ctx, dir, w.goarch)
}

// watchRules adds to fw every directory the rules' files may appear in.
func (w *watcher) watchRules(rules []watchRule) error {
	for _, r := range rules {
		for _, s := range r.scopes {
			if err := w.watchScope(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// watchScope watches the directories of one scope: a file's directory, a
// directory, or a tree without the directories it ignores.
func (w *watcher) watchScope(s watchScope) error {
	fi, err := os.Stat(s.path)
	switch {
	case err != nil:
		// Not there yet: its directory sees it appear.
		return w.addDir(filepath.Dir(s.path), true)
	case !fi.IsDir():
		return w.addDir(filepath.Dir(s.path), false)
	case !s.recursive:
		return w.addDir(s.path, false)
	}
	_, err = w.walkScope(s, s.path)
	return err
}

// walkScope watches the directories of the tree at dir that scope s
// covers, and returns the files and directories under dir that s
// matches.
func (w *watcher) walkScope(s watchScope, dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // vanished while walking
		}
		if skipPath(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != s.path && s.ignoresDir(p) {
				return filepath.SkipDir
			}
			if p != dir && s.matches(p) {
				files = append(files, p) // a new directory is a change of a build context
			}
			return w.addDir(p, false)
		}
		if s.matches(p) {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

// addTree watches a directory just created, wherever a rule covers it,
// and returns the files already in it that rules match.
func (w *watcher) addTree(rules []watchRule, dir string) ([]string, error) {
	var files []string
	for _, r := range rules {
		for _, s := range r.scopes {
			switch {
			case s.recursive && (dir == s.path || under(s.path, dir)) && !s.ignoresDir(dir):
				f, err := w.walkScope(s, dir)
				if err != nil {
					return files, err
				}
				files = append(files, f...)
			case dir == s.path || dir == filepath.Dir(s.path):
				if err := w.addDir(dir, false); err != nil {
					return files, err
				}
			}
		}
	}
	return files, nil
}

// addDir adds one directory to fw, once. With optional, a directory that
// does not exist is passed over.
func (w *watcher) addDir(dir string, optional bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dirs[dir] {
		return nil
	}
	if err := w.fw.Add(dir); err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed since it was seen
		}
		return fmt.Errorf("watch %s: %w (on Linux, raise fs.inotify.max_user_watches if it is too low)", dir, err)
	}
	w.dirs[dir] = true
	return nil
}

// The rules: which files of a service are watched, and what their change
// asks for.

// watchRule is what a change of some files asks watch to do to one
// service.
type watchRule struct {
	cell, service string
	// action is cellspec.WatchRebuild, WatchSync or WatchRestart.
	action string
	// root and target map a changed file to its place in the container
	// (sync): root/a/b goes to target/a/b.
	root, target string
	scopes       []watchScope
}

// watchScope is a set of files: a file, or those directly in a
// directory, or (recursive) those anywhere under it; less the ignored
// ones, and, when include is set, only those that match it.
type watchScope struct {
	path      string
	recursive bool
	// goSources keeps only the files go build reads for a package: its
	// .go files (not tests) and assembly.
	goSources bool
	ignores   []watchIgnore
	// include holds patterns matched against the path relative to path
	// and against the file name.
	include []string
}

// watchIgnore is a set of .dockerignore patterns, relative to base.
type watchIgnore struct {
	base string
	pm   *patternmatcher.PatternMatcher
	// dirs decides whether a whole directory is left unwatched: the
	// patterns as written, without the exceptions a build context adds
	// for its Dockerfile and .dockerignore, which would otherwise make
	// every ignored directory (node_modules) worth walking.
	dirs *patternmatcher.PatternMatcher
}

// matches reports whether a change of p concerns the scope. p is an
// absolute, clean path.
func (s watchScope) matches(p string) bool {
	if p == s.path {
		return true
	}
	if !under(s.path, p) {
		return false
	}
	rel := filepath.ToSlash(strings.TrimPrefix(p, s.path+string(filepath.Separator)))
	if !s.recursive && strings.Contains(rel, "/") {
		return false
	}
	if s.goSources && !goSource(path.Base(rel)) {
		return false
	}
	for _, ig := range s.ignores {
		if ignored(ig, p) {
			return false
		}
	}
	if len(s.include) > 0 {
		for _, pat := range s.include {
			if ok, _ := path.Match(pat, rel); ok {
				return true
			}
			if ok, _ := path.Match(pat, path.Base(rel)); ok {
				return true
			}
		}
		return false
	}
	return true
}

// ignoresDir reports whether the whole directory dir is ignored: it
// matches an ignore pattern and no exception may bring back a file in it.
func (s watchScope) ignoresDir(dir string) bool {
	for _, ig := range s.ignores {
		if matchUnder(ig.dirs, ig.base, dir) && !ig.dirs.Exclusions() {
			return true
		}
	}
	return false
}

func ignored(ig watchIgnore, p string) bool {
	return matchUnder(ig.pm, ig.base, p)
}

// matchUnder reports whether pm, whose patterns are relative to base,
// matches p or one of its parents.
func matchUnder(pm *patternmatcher.PatternMatcher, base, p string) bool {
	if !under(base, p) {
		return false
	}
	rel, err := filepath.Rel(base, p)
	if err != nil {
		return false
	}
	m, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
	return err == nil && m
}

// under reports whether p lies strictly below dir.
func under(dir, p string) bool {
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

// goSource reports whether go build (CGO off) reads a file of this name
// in a package directory.
func goSource(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || strings.HasSuffix(name, "_test.go") {
		return false
	}
	return strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".s")
}

// skipPath reports whether a path is never a build input worth a
// rebuild: version control directories and the temporary files editors
// write while saving.
func skipPath(p string) bool {
	for _, seg := range strings.Split(filepath.ToSlash(p), "/") {
		switch seg {
		case ".git", ".hg", ".svn", ".idea":
			return true
		}
	}
	name := filepath.Base(p)
	switch {
	case strings.HasSuffix(name, "~"), // vim, emacs backups
		strings.HasSuffix(name, ".swp"), strings.HasSuffix(name, ".swx"), strings.HasSuffix(name, ".swo"), // vim swap
		name == "4913",                // vim's probe for a writable directory
		strings.HasPrefix(name, ".#"), // emacs locks
		strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#"),                     // emacs autosave
		strings.HasSuffix(name, "___jb_tmp___"), strings.HasSuffix(name, "___jb_old___"), // JetBrains safe write
		name == ".DS_Store":
		return true
	}
	return false
}

func anyRuleMatches(rules []watchRule, p string) bool {
	for _, r := range rules {
		for _, s := range r.scopes {
			if s.matches(p) {
				return true
			}
		}
	}
	return false
}

// serviceWatchRules returns the rules of one service: its develop.watch
// entries when it has some, else a rebuild when its build inputs change.
// goList lists a Go package's inputs. The warning, when not empty, says
// what could not be found out and what is watched instead.
func serviceWatchRules(ctx context.Context, cell *cellspec.Cell, s *cellspec.Service, goList func(ctx context.Context, dir string) ([]watchScope, error)) ([]watchRule, string) {
	base := watchRule{cell: cell.Name, service: s.Name, action: cellspec.WatchRebuild}
	if s.Develop != nil {
		var rules []watchRule
		var ctxIgnore *watchIgnore
		if s.Build != nil && s.Build.Context != "" {
			ctxIgnore, _ = dockerignore(s.Build)
		}
		for _, d := range s.Develop.Watch {
			r := base
			r.action, r.root, r.target = d.Action, d.Path, d.Target
			sc := watchScope{path: d.Path, recursive: true, include: d.Include}
			if len(d.Ignore) > 0 {
				if pm, err := patternmatcher.New(d.Ignore); err == nil {
					sc.ignores = append(sc.ignores, watchIgnore{base: d.Path, pm: pm, dirs: pm})
				}
			}
			if ctxIgnore != nil {
				sc.ignores = append(sc.ignores, *ctxIgnore)
			}
			r.scopes = []watchScope{sc}
			rules = append(rules, r)
		}
		return rules, ""
	}
	switch {
	case s.Build == nil:
		return nil, ""
	case s.Build.Go != "":
		scopes, err := goList(ctx, s.Build.Go)
		if err != nil {
			base.scopes = []watchScope{{path: s.Build.Go, recursive: true, goSources: true}}
			return []watchRule{base}, fmt.Sprintf("%s/%s: cannot list the packages of %s, so only its directory is watched: %s", cell.Name, s.Name, s.Build.Go, watchFirstLine(err.Error()))
		}
		base.scopes = scopes
	default:
		sc := watchScope{path: s.Build.Context, recursive: true}
		ig, err := dockerignore(s.Build)
		if ig != nil {
			sc.ignores = []watchIgnore{*ig}
		}
		base.scopes = []watchScope{sc}
		if df := s.Build.Dockerfile; df != "" {
			if !filepath.IsAbs(df) {
				df = filepath.Join(s.Build.Context, df)
			}
			if !under(s.Build.Context, df) {
				base.scopes = append(base.scopes, watchScope{path: df})
			}
		}
		if err != nil {
			return []watchRule{base}, fmt.Sprintf("%s/%s: %s; every file of the context is watched", cell.Name, s.Name, watchFirstLine(err.Error()))
		}
	}
	return []watchRule{base}, ""
}

// dockerignore reads the .dockerignore of a build context, with
// exceptions for the Dockerfile and the .dockerignore itself, which the
// context always carries (as in package image).
func dockerignore(b *cellspec.Build) (*watchIgnore, error) {
	name := filepath.Join(b.Context, ".dockerignore")
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	dirs, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	keep := []string{"!.dockerignore"}
	switch df := b.Dockerfile; {
	case df == "":
		keep = append(keep, "!Dockerfile")
	case !filepath.IsAbs(df):
		keep = append(keep, "!"+filepath.ToSlash(df))
	case under(b.Context, df):
		keep = append(keep, "!"+filepath.ToSlash(strings.TrimPrefix(df, b.Context+string(filepath.Separator))))
	}
	pm, err := patternmatcher.New(append(patterns, keep...))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	return &watchIgnore{base: b.Context, pm: pm, dirs: dirs}, nil
}

// goListPackage is what goInputs reads of `go list -json`.
type goListPackage struct {
	Dir        string
	Standard   bool
	EmbedFiles []string
	Module     *goListModule
}

type goListModule struct {
	Main    bool
	GoMod   string
	Version string
	Replace *goListModule
}

// goInputs lists what the build of the Go main package in dir reads that
// a developer edits: the source files of every package it depends on that
// is not the standard library's or a downloaded module's (the main module,
// workspace modules and modules replaced by a local directory), the files
// they embed, and those modules' go.mod and go.sum. It lists them for
// linux/goarch with CGO off, as package image compiles.
func goInputs(ctx context.Context, dir, goarch string) ([]watchScope, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-deps", "-json=Dir,Standard,EmbedFiles,Module", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("go list %s: %w: %s", dir, err, msg)
		}
		return nil, fmt.Errorf("go list %s: %w", dir, err)
	}
	return goScopes(out)
}

// goScopes turns the output of `go list -deps -json` into scopes.
func goScopes(out []byte) ([]watchScope, error) {
	var scopes []watchScope
	seen := map[string]bool{}
	add := func(s watchScope) {
		if !seen[s.path] {
			seen[s.path] = true
			scopes = append(scopes, s)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg goListPackage
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read go list output: %w", err)
		}
		m := pkg.Module
		local := m != nil && (m.Main || m.Replace != nil && m.Replace.Version == "")
		if pkg.Standard || !local || pkg.Dir == "" {
			continue
		}
		add(watchScope{path: pkg.Dir, goSources: true})
		for _, e := range pkg.EmbedFiles {
			add(watchScope{path: filepath.Join(pkg.Dir, filepath.FromSlash(e))})
		}
		gomod := m.GoMod
		if m.Replace != nil && m.Replace.GoMod != "" {
			gomod = m.Replace.GoMod
		}
		if gomod != "" {
			add(watchScope{path: gomod})
			add(watchScope{path: filepath.Join(filepath.Dir(gomod), "go.sum")})
		}
	}
	if len(scopes) == 0 {
		return nil, errors.New("go list found no package of a local module")
	}
	return scopes, nil
}

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

// Syncing files into replicas.

// containerCopier is the engine call sync needs beyond engine.Engine.
type containerCopier interface {
	CopyToContainer(ctx context.Context, containerID, dstPath string, content io.Reader, options container.CopyToContainerOptions) error
}

// syncFiles copies files into every running replica of a service, and
// removes from them the files that no longer exist on the host. It
// returns how many replicas it reached. Replicas created later start from
// the image, without these files: sync suits servers that reload files,
// while a rebuild is what every future replica sees.
func (c *Client) syncFiles(ctx context.Context, project, cell, service string, files []syncFile) (int, error) {
	cp, ok := c.eng.(containerCopier)
	if !ok {
		return 0, errors.New("this engine cannot copy files into containers")
	}
	list, err := c.eng.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("label", engine.LabelCell+"="+cell),
		filters.Arg("label", engine.LabelService+"="+service),
		filters.Arg("label", engine.LabelRole+"="+engine.RoleReplica),
		filters.Arg("status", "running"),
	)})
	if err != nil {
		return 0, fmt.Errorf("list replicas of %s/%s: %w", cell, service, err)
	}
	archive, deleted, err := syncArchive(files)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, ctr := range list {
		name := engine.ContainerName(ctr.Names)
		if len(archive) > 0 {
			if err := cp.CopyToContainer(ctx, ctr.ID, "/", bytes.NewReader(archive), container.CopyToContainerOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("copy into %s: %w", name, err))
				continue
			}
		}
		if len(deleted) > 0 {
			if err := c.removeFiles(ctx, ctr.ID, deleted); err != nil {
				errs = append(errs, fmt.Errorf("remove %s from %s: %w", strings.Join(deleted, ", "), name, err))
			}
		}
	}
	return len(list), errors.Join(errs...)
}

// syncArchive packs the files that exist as a tar stream rooted at /, and
// lists the container paths of those that do not.
func syncArchive(files []syncFile) ([]byte, []string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var deleted []string
	n := 0
	for _, f := range files {
		fi, err := os.Lstat(f.host)
		if errors.Is(err, fs.ErrNotExist) {
			deleted = append(deleted, f.container)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("sync %s: %w", f.host, err)
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(f.host)
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil, nil, fmt.Errorf("sync %s: %w", f.host, err)
		}
		hdr.Name = strings.TrimPrefix(f.container, "/")
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, nil, err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(f.host)
			if err != nil {
				return nil, nil, fmt.Errorf("sync %s: %w", f.host, err)
			}
			if int64(len(data)) != hdr.Size {
				return nil, nil, fmt.Errorf("sync %s: it changed while being read", f.host)
			}
			if _, err := tw.Write(data); err != nil {
				return nil, nil, err
			}
		}
		n++
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	if n == 0 {
		return nil, deleted, nil
	}
	return buf.Bytes(), deleted, nil
}

// removeFiles runs rm in a container; an image without rm cannot have
// files removed.
func (c *Client) removeFiles(ctx context.Context, id string, paths []string) error {
	ex, err := c.eng.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: append([]string{"rm", "-rf", "--"}, paths...)})
	if err != nil {
		return err
	}
	if err := c.eng.ContainerExecStart(ctx, ex.ID, container.ExecStartOptions{}); err != nil {
		return err
	}
	for range 50 {
		ins, err := c.eng.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			return err
		}
		if !ins.Running {
			if ins.ExitCode != 0 {
				return fmt.Errorf("rm exited %d", ins.ExitCode)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("rm did not finish within a second")
}

// Formatting of the lines watch reports.

// roundDuration shows a duration as watch lines do: 1.4s, 250ms.
func watchDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// errorLines shows the first lines of an error, the further ones
// indented under the first.
func watchErrorText(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	more := 0
	if len(lines) > watchErrorLines {
		more = len(lines) - watchErrorLines
		lines = lines[:watchErrorLines]
	}
	s := strings.Join(lines, "\n    ")
	if more > 0 {
		s += fmt.Sprintf("\n    … %d more lines", more)
	}
	return s
}

func watchPlural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func watchFirstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
