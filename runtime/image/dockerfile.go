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
// .dockerignore, except that the Dockerfile itself is always sent. Build
// output lines go to progress (which may be nil); a failing build returns an
// error wrapping a *BuildError that names the failing step and holds the
// last lines of its output.
func BuildDockerfile(ctx context.Context, eng engine.Engine, b *cellspec.Build, tag string, labels map[string]string, progress io.Writer) error {
	if b == nil || b.Context == "" {
		return fmt.Errorf("build image %s: no build context given", tag)
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
		return fmt.Errorf("build image %s: read dockerfile: %w", tag, err)
	} else if fi.IsDir() {
		return fmt.Errorf("build image %s: dockerfile %s is a directory", tag, dfPath)
	}
	excludes, err := readDockerignore(root)
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return fmt.Errorf("build image %s: parse %s: %w", tag, filepath.Join(root, ".dockerignore"), err)
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
			return fmt.Errorf("build image %s: read dockerfile: %w", tag, err)
		}
		dfName = outsideDockerfileName
		extra = append(extra, contextFile{name: dfName, mode: 0o644, data: data})
	}

	args := make(map[string]*string, len(b.Args))
	for k, v := range b.Args {
		args[k] = &v
	}
	opts := build.ImageBuildOptions{
		Tags:       []string{tag},
		Dockerfile: dfName,
		BuildArgs:  args,
		Target:     b.Target,
		Labels:     labels,
	}

	pr, pw := io.Pipe()
	packed := make(chan error, 1)
	go func() {
		err := writeDirContext(pw, root, pm, dfName, extra)
		pw.CloseWithError(err)
		packed <- err
	}()
	_, buildErr := runBuild(ctx, eng, pr, opts, progress)
	// Unblock the packer if the engine stopped reading early.
	pr.CloseWithError(errContextDone)
	if err := <-packed; err != nil && !errors.Is(err, errContextDone) {
		return fmt.Errorf("build image %s: pack context %s: %w", tag, root, err)
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

// contextEntries lists the slash-separated paths of root that a build
// context holds: everything not excluded by pm, plus keep (the Dockerfile).
// Directories come before their contents.
func contextEntries(root string, pm *patternmatcher.PatternMatcher, keep string) ([]string, error) {
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
		if excluded && rel != keep {
			// An excluded directory may still hold the Dockerfile or a
			// file re-included by a "!" pattern; only otherwise can the
			// whole subtree be skipped.
			if d.IsDir() && !pm.Exclusions() && !strings.HasPrefix(keep, rel+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		entries = append(entries, rel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// writeDirContext writes the build context of root as a tar stream: the
// entries contextEntries selects, then the in-memory extra files.
func writeDirContext(w io.Writer, root string, pm *patternmatcher.PatternMatcher, keep string, extra []contextFile) error {
	entries, err := contextEntries(root, pm, keep)
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

// addContextEntry writes one file, directory or symlink of the context.
// Other file types (sockets, devices) have no place in an image and are
// left out.
func addContextEntry(tw *tar.Writer, root, rel string) error {
	p := filepath.Join(root, filepath.FromSlash(rel))
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	link := ""
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	case fi.IsDir(), fi.Mode().IsRegular():
	default:
		return nil
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("describe %s: %w", rel, err)
	}
	hdr.Name = rel
	if fi.IsDir() {
		hdr.Name += "/"
	}
	// The image should not depend on who owns the files on this machine.
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
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
