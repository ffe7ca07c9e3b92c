package runtime

import (
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
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/orchestro/orchestro/cellspec"
)

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
