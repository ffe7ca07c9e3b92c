package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine"
)

// hostCABundle is where Debian-family systems (and most others, through
// compatibility links) keep the CA certificates; Go programs in a scratch
// image find them there too.
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// BuildGo compiles the Go main package in b.Go with the local go toolchain
// (CGO off, for the engine's linux architecture) and builds a FROM scratch
// image holding only the binary, as /app with ENTRYPOINT ["/app"], and the
// host's CA certificates when the host has them. It returns the image tag,
// repo:<content hash>. The hash covers the binary, the CA bundle, the
// Dockerfile and the labels, so an unchanged program is not built again.
func BuildGo(ctx context.Context, eng engine.Engine, b *cellspec.Build, repo string, labels map[string]string, progress io.Writer) (string, error) {
	return buildGo(ctx, eng, b, repo, labels, progress, compileGoBinary)
}

// goCompiler returns the static linux binary of the Go main package in
// dir for goarch.
type goCompiler func(ctx context.Context, dir, goarch string, progress io.Writer) ([]byte, error)

// compileGoBinary compiles dir into a temporary file and returns its bytes.
//
// go build links the binary again on every run, which is most of its time
// for an unchanged program, unless the file at its output path already is
// that binary: it reads the build ID the file carries and leaves an
// up-to-date one alone. So the last binary of each package is kept in the
// user's cache (see lastBinaryPath) and copied to the output path before
// go build runs, which relinks it only if the program changed. The copy
// in the cache is replaced by renaming, so runs at once each read a whole
// one; the cache is only ever a head start, never the answer.
func compileGoBinary(ctx context.Context, dir, goarch string, progress io.Writer) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "orchestro-go-")
	if err != nil {
		return nil, fmt.Errorf("compile go package %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "app")
	last := lastBinaryPath(dir, goarch)
	if last != "" {
		if data, err := os.ReadFile(last); err == nil {
			_ = os.WriteFile(bin, data, 0o755)
		}
	}
	if err := compileGo(ctx, dir, bin, goarch, progress); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("compile go package %s: read the binary: %w", dir, err)
	}
	if last != "" {
		keepCached(last, data)
	}
	return data, nil
}

// lastBinaryPath is where the last binary compiled from the Go package in
// dir for goarch is kept, in the user's cache directory, or "" when there
// is none.
func lastBinaryPath(dir, goarch string) string {
	entry := cachePath("go-bin", dir, goarch)
	if entry == "" {
		return ""
	}
	return filepath.Join(entry, "app")
}

// cachePath is where orchestro keeps an entry of kind in the user's cache
// directory for the file or directory at path and the rest of its key, or
// "" when there is no cache directory.
func cachePath(kind, path, rest string) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(abs + "\x00" + rest))
	return filepath.Join(cache, "orchestro", kind, hex.EncodeToString(sum[:8]))
}

// keepCached replaces the cache entry at path with data, by rename, so
// concurrent runs read either the old entry or the new one. It is only a
// cache: a failure makes the next run slower, and is not reported.
func keepCached(path string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), "entry-*")
	if err != nil {
		return
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
}

// GoBuildCache compiles each Go package once, however many services of a
// project run it (the demo runs two programs as four services). It is
// safe for concurrent use: different packages compile at once, and a
// caller asking for a package under way waits for it. The zero value is
// ready to use; `up` uses one per run.
type GoBuildCache struct {
	mu   sync.Mutex
	bins map[string]*goBuild
	// compiler compiles on a miss; nil means compileGoBinary.
	compiler goCompiler
}

// goBuild is one compilation of a GoBuildCache: done is closed when bin
// or err is set.
type goBuild struct {
	done chan struct{}
	bin  []byte
	err  error
}

// BuildGo is the package's BuildGo, except that a Go package this cache
// has already compiled for the architecture is not compiled again.
func (c *GoBuildCache) BuildGo(ctx context.Context, eng engine.Engine, b *cellspec.Build, repo string, labels map[string]string, progress io.Writer) (string, error) {
	return buildGo(ctx, eng, b, repo, labels, progress, c.compile)
}

func (c *GoBuildCache) compile(ctx context.Context, dir, goarch string, progress io.Writer) ([]byte, error) {
	key := goarch + " " + dir
	c.mu.Lock()
	if b, ok := c.bins[key]; ok {
		c.mu.Unlock()
		select {
		case <-b.done:
			return b.bin, b.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.bins == nil {
		c.bins = map[string]*goBuild{}
	}
	b := &goBuild{done: make(chan struct{})}
	c.bins[key] = b
	c.mu.Unlock()

	compile := c.compiler
	if compile == nil {
		compile = compileGoBinary
	}
	b.bin, b.err = compile(ctx, dir, goarch, progress)
	if b.err != nil {
		// Those waiting share the failure; a later caller tries again.
		c.mu.Lock()
		delete(c.bins, key)
		c.mu.Unlock()
	}
	close(b.done)
	return b.bin, b.err
}

func buildGo(ctx context.Context, eng engine.Engine, b *cellspec.Build, repo string, labels map[string]string, progress io.Writer, compile goCompiler) (string, error) {
	progress = orDiscard(progress)
	if b == nil || b.Go == "" {
		return "", fmt.Errorf("build image %s: no go package given", repo)
	}
	goos, goarch, err := engine.Platform(ctx, eng)
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", repo, err)
	}
	if goos != "linux" {
		return "", fmt.Errorf("build image %s: the engine runs %s containers, go images need linux", repo, goos)
	}

	data, err := compile(ctx, b.Go, goarch, progress)
	if err != nil {
		return "", err
	}
	ca, err := os.ReadFile(hostCABundle)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("build image %s: read CA certificates: %w", repo, err)
	}
	files := goImageFiles(data, ca)
	tag := repo + ":" + contentHash(files, labels)
	if err := buildFilesIfMissing(ctx, eng, tag, files, labels, progress); err != nil {
		return "", err
	}
	return tag, nil
}

// goImageFiles is the build context of a Go image: a FROM scratch Dockerfile,
// the binary and, when not empty, the CA bundle.
func goImageFiles(binary, caBundle []byte) []contextFile {
	df := "FROM scratch\nCOPY app /app\n"
	files := []contextFile{{name: "app", mode: 0o755, data: binary}}
	if len(caBundle) > 0 {
		df += "COPY ca-certificates.crt " + hostCABundle + "\n"
		files = append(files, contextFile{name: "ca-certificates.crt", mode: 0o644, data: caBundle})
	}
	df += "ENTRYPOINT [\"/app\"]\n"
	return append([]contextFile{{name: "Dockerfile", mode: 0o644, data: []byte(df)}}, files...)
}

// compileGo builds the main package in dir as a static linux binary for
// goarch. The compiler's output goes to progress and, on failure, into the
// error.
func compileGo(ctx context.Context, dir, out, goarch string, progress io.Writer) error {
	fmt.Fprintf(progress, "compiling %s for linux/%s\n", dir, goarch)
	// -trimpath and -buildvcs=false keep paths and VCS state out of the
	// binary, so its hash, and the image tag, change only with the code.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var output bytes.Buffer
	cmd.Stdout = io.MultiWriter(&output, progress)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("compile go package %s: the go toolchain is needed and was not found: %w", dir, err)
		}
		msg := strings.TrimSpace(output.String())
		if msg == "" {
			return fmt.Errorf("compile go package %s for linux/%s: %w", dir, goarch, err)
		}
		return fmt.Errorf("compile go package %s for linux/%s: %w\n%s", dir, goarch, err, lastLines(msg, 20))
	}
	return nil
}

// lastLines keeps the end of long tool output.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
