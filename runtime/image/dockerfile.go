package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine"
)

// outsideDockerfileName is the name a Dockerfile that lives outside the
// build context gets inside the context sent to the engine.
const outsideDockerfileName = ".orchestro.Dockerfile"

// errContextDone tells the goroutine packing a build context that the
// engine no longer reads it.
var errContextDone = errors.New("build context no longer needed")

// BuildDockerfile builds the Dockerfile image described by b and tags it.
// The context directory is sent as a tar stream that honours its
// .dockerignore, except that the Dockerfile and the .dockerignore itself
// are always sent, as the docker CLI does. Build output lines go to
// progress (which may be nil); a failing build returns an error wrapping a
// *BuildError that names the failing step and holds the last lines of its
// output.
func BuildDockerfile(ctx context.Context, eng engine.Engine, b *cellspec.Build, tag string, labels map[string]string, progress io.Writer) error {
	d, err := prepareDockerfile(b, labels)
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	return d.build(ctx, eng, tag, progress)
}

// EnsureDockerfile returns the image of the Dockerfile build b, tagged
// repo:<content hash> (see dockerfileBuild.contentHash), and builds it
// unless an image with that tag exists. The hash covers what the engine
// is sent and how it is asked to build, so a changed source file,
// Dockerfile, argument or target gives a new tag and a build, while an
// unchanged context reuses the image. force builds even then: a RUN step
// may fetch what no hash of the context can see.
func EnsureDockerfile(ctx context.Context, eng engine.Engine, b *cellspec.Build, repo string, labels map[string]string, force bool, progress io.Writer) (string, error) {
	progress = orDiscard(progress)
	d, err := prepareDockerfile(b, labels)
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", repo, err)
	}
	sum, err := d.contentHash(ctx)
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", repo, err)
	}
	tag := repo + ":" + sum
	if !force {
		exists, err := Exists(ctx, eng, tag)
		if err != nil {
			return "", fmt.Errorf("inspect image %s: %w", tag, err)
		}
		if exists {
			fmt.Fprintf(progress, "image %s is up to date\n", tag)
			return tag, nil
		}
	}
	if err := d.build(ctx, eng, tag, progress); err != nil {
		return "", err
	}
	return tag, nil
}

// dockerfileBuild is a Dockerfile build made ready to send: what goes into
// the context and the build options but the tag. Sending and hashing both
// read it, so the hash covers exactly what the engine gets.
type dockerfileBuild struct {
	// root is the context directory; pm selects its entries.
	root string
	pm   *patternmatcher.PatternMatcher
	// extra holds files sent beside the directory's: a Dockerfile that
	// lives outside the context.
	extra []contextFile
	opts  build.ImageBuildOptions
}

// prepareDockerfile checks b's Dockerfile and reads the context's
// .dockerignore.
func prepareDockerfile(b *cellspec.Build, labels map[string]string) (*dockerfileBuild, error) {
	if b == nil || b.Context == "" {
		return nil, errors.New("no build context given")
	}
	root := b.Context
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	dfPath := dockerfile
	if !filepath.IsAbs(dfPath) {
		dfPath = filepath.Join(root, dfPath)
	}
	if fi, err := os.Stat(dfPath); err != nil {
		return nil, fmt.Errorf("read dockerfile: %w", err)
	} else if fi.IsDir() {
		return nil, fmt.Errorf("dockerfile %s is a directory", dfPath)
	}

	// A Dockerfile outside the context travels inside it under a fixed
	// name, as the docker CLI does.
	var extra []contextFile
	dfName := ""
	if rel, err := filepath.Rel(root, dfPath); err == nil && filepath.IsLocal(rel) {
		dfName = filepath.ToSlash(rel)
	} else {
		data, err := os.ReadFile(dfPath)
		if err != nil {
			return nil, fmt.Errorf("read dockerfile: %w", err)
		}
		dfName = outsideDockerfileName
		extra = append(extra, contextFile{name: dfName, mode: 0o644, data: data})
	}
	pm, err := contextMatcher(root, dfName)
	if err != nil {
		return nil, err
	}

	args := make(map[string]*string, len(b.Args))
	for k, v := range b.Args {
		args[k] = &v
	}
	return &dockerfileBuild{
		root:  root,
		pm:    pm,
		extra: extra,
		opts: build.ImageBuildOptions{
			Dockerfile: dfName,
			BuildArgs:  args,
			Target:     b.Target,
			Labels:     labels,
		},
	}, nil
}

// build sends the context to the engine and builds it as tag.
func (d *dockerfileBuild) build(ctx context.Context, eng engine.Engine, tag string, progress io.Writer) error {
	opts := d.opts
	opts.Tags = []string{tag}
	pr, pw := io.Pipe()
	packed := make(chan error, 1)
	go func() {
		err := writeDirContext(pw, d.root, d.pm, d.extra)
		pw.CloseWithError(err)
		packed <- err
	}()
	_, buildErr := runBuild(ctx, eng, pr, opts, progress)
	// Unblock the packer if the engine stopped reading early.
	pr.CloseWithError(errContextDone)
	if err := <-packed; err != nil && !errors.Is(err, errContextDone) {
		return fmt.Errorf("build image %s: pack context %s: %w", tag, d.root, err)
	}
	return buildErr
}

// readDockerignore returns the patterns of the context's .dockerignore, or
// none when it has no such file.
func readDockerignore(root string) ([]string, error) {
	name := filepath.Join(root, ".dockerignore")
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
	return patterns, nil
}

// contextMatcher returns the matcher of the paths the context of root
// leaves out: its .dockerignore patterns, plus exceptions for the
// .dockerignore itself and the Dockerfile (slash-separated, relative to
// root) when the patterns exclude them. That is what the docker CLI sends
// (TrimBuildFilesFromExcludes); the engine drops them again after reading.
func contextMatcher(root, dockerfile string) (*patternmatcher.PatternMatcher, error) {
	excludes, err := readDockerignore(root)
	if err != nil {
		return nil, err
	}
	for _, keep := range []string{".dockerignore", dockerfile} {
		if excluded, _ := patternmatcher.Matches(keep, excludes); excluded {
			excludes = append(excludes, "!"+keep)
		}
	}
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(root, ".dockerignore"), err)
	}
	return pm, nil
}

// contextEntries lists the slash-separated paths of root that a build
// context holds: everything pm does not exclude, in lexical order, a
// directory before its contents. An excluded directory is left out; its
// subtree is not even read unless an exception ("!" pattern) may
// re-include something in it, and then each entry is matched on its own.
func contextEntries(root string, pm *patternmatcher.PatternMatcher) ([]string, error) {
	var entries []string
	parents := map[string]patternmatcher.MatchInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		excluded, info, err := pm.MatchesUsingParentResults(rel, parents[path.Dir(rel)])
		if err != nil {
			return fmt.Errorf("match %s against .dockerignore: %w", rel, err)
		}
		if d.IsDir() {
			parents[rel] = info
		}
		if !excluded {
			entries = append(entries, rel)
			return nil
		}
		if d.IsDir() && !exceptionInside(pm, rel) {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// exceptionInside reports whether an exception pattern may match a path
// under the directory dir: its leading segments match dir's, or a "**"
// comes first. So "docs" with "!**/keep.md" sends docs/keep.md, as
// BuildKit (docker build's default builder) does; the classic docker CLI
// tests only whether the pattern text starts with "docs/" and leaves it
// out.
func exceptionInside(pm *patternmatcher.PatternMatcher, dir string) bool {
	if !pm.Exclusions() {
		return false
	}
	dirSegs := strings.Split(dir, "/")
	for _, p := range pm.Patterns() {
		if !p.Exclusion() {
			continue
		}
		if segmentsMayContain(strings.Split(filepath.ToSlash(p.String()), "/"), dirSegs) {
			return true
		}
	}
	return false
}

// segmentsMayContain reports whether the pattern segments pat may match a
// path strictly below the directory whose segments are dir.
func segmentsMayContain(pat, dir []string) bool {
	for i, d := range dir {
		if i >= len(pat) {
			return false
		}
		if pat[i] == "**" {
			return true
		}
		ok, err := path.Match(pat[i], d)
		if err != nil {
			// A pattern this test cannot read is kept on the safe side:
			// the subtree is read and each entry matched.
			return true
		}
		if !ok {
			return false
		}
	}
	return len(pat) > len(dir)
}

// writeDirContext writes the build context of root as a tar stream: the
// entries contextEntries selects, then the in-memory extra files.
func writeDirContext(w io.Writer, root string, pm *patternmatcher.PatternMatcher, extra []contextFile) error {
	entries, err := contextEntries(root, pm)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, rel := range entries {
		if err := addContextEntry(tw, root, rel); err != nil {
			return err
		}
	}
	for _, f := range extra {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data))}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return tw.Close()
}

// contextHeader describes one entry of the context as it is sent: a file,
// directory or symlink, owned by root. It returns nil for other file types
// (sockets, devices), which have no place in an image and are left out.
func contextHeader(root, rel string) (*tar.Header, error) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	link := ""
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		if link, err = os.Readlink(p); err != nil {
			return nil, err
		}
	case fi.IsDir(), fi.Mode().IsRegular():
	default:
		return nil, nil
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", rel, err)
	}
	hdr.Name = rel
	if fi.IsDir() {
		hdr.Name += "/"
	}
	// The image should not depend on who owns the files on this machine.
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	return hdr, nil
}

// addContextEntry writes one entry of the context, as contextHeader
// describes it, and a regular file's contents.
func addContextEntry(tw *tar.Writer, root, rel string) error {
	hdr, err := contextHeader(root, rel)
	if err != nil || hdr == nil {
		return err
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	// Copy exactly the size announced in the header, even if the file
	// grows while it is being sent.
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	return nil
}
