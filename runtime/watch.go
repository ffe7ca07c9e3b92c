package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

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
	if target, err := c.upTarget(ctx, p, opts); err != nil {
		return err
	} else if target == api.TargetSwarm {
		return errors.New("watch runs the project on the local engine; on a swarm, run `orchestro up` again after a change")
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
