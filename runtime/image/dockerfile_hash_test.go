package image

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// hashOf returns the content hash of the Dockerfile build b.
func hashOf(t *testing.T, b *cellspec.Build, labels map[string]string) string {
	t.Helper()
	d, err := prepareDockerfile(b, labels)
	if err != nil {
		t.Fatalf("prepare %+v: %v", b, err)
	}
	sum, err := d.contentHash(t.Context())
	if err != nil {
		t.Fatalf("hash %+v: %v", b, err)
	}
	return sum
}

// hashTree is the context every case of TestDockerfileContentHash starts
// from.
var hashTree = map[string]string{
	"Dockerfile":        "FROM scratch\nCOPY . /app\n",
	"main.go":           "package main\n",
	"web/index.html":    "<h1>hello</h1>\n",
	"app.log":           "ignored\n",
	"tmp/cache.bin":     "ignored\n",
	"docs/readme.md":    "ignored\n",
	"docs/keep.md":      "sent\n",
	".dockerignore":     "*.log\ntmp\ndocs\n!docs/keep.md\n",
	"build/Dockerfile2": "FROM scratch\nCOPY main.go /\n",
}

func TestDockerfileContentHash(t *testing.T) {
	write := func(name, content string) func(*testing.T, string, *cellspec.Build) {
		return func(t *testing.T, root string, _ *cellspec.Build) {
			p := filepath.Join(root, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(name string) func(*testing.T, string, *cellspec.Build) {
		return func(t *testing.T, root string, _ *cellspec.Build) {
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(name))); err != nil {
				t.Fatal(err)
			}
		}
	}
	symlink := func(target, name string) func(*testing.T, string, *cellspec.Build) {
		return func(t *testing.T, root string, _ *cellspec.Build) {
			p := filepath.Join(root, filepath.FromSlash(name))
			_ = os.Remove(p)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	build := func(change func(b *cellspec.Build)) func(*testing.T, string, *cellspec.Build) {
		return func(_ *testing.T, _ string, b *cellspec.Build) { change(b) }
	}
	tests := []struct {
		name    string
		change  func(t *testing.T, root string, b *cellspec.Build)
		changed bool
	}{
		{"a source file is edited", write("main.go", "package main // v2\n"), true},
		{"a source file is edited, same size", write("main.go", "package mail\n"), true},
		{"a file in a subdirectory is edited", write("web/index.html", "<h1>bye</h1>\n"), true},
		{"a file is added", write("web/app.js", ""), true},
		{"a file is removed", remove("web/index.html"), true},
		{"a file is renamed", func(t *testing.T, root string, _ *cellspec.Build) {
			if err := os.Rename(filepath.Join(root, "main.go"), filepath.Join(root, "app.go")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"an empty directory is added", func(t *testing.T, root string, _ *cellspec.Build) {
			if err := os.Mkdir(filepath.Join(root, "data"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a file becomes executable", func(t *testing.T, root string, _ *cellspec.Build) {
			if err := os.Chmod(filepath.Join(root, "main.go"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"the Dockerfile is edited", write("Dockerfile", "FROM scratch\nCOPY . /srv\n"), true},
		{"the .dockerignore is edited", write(".dockerignore", "*.log\ntmp\ndocs\n"), true},
		{"a file re-included by an exception is edited", write("docs/keep.md", "changed\n"), true},
		{"a symlink is added", symlink("main.go", "link.go"), true},
		{"an argument is added", build(func(b *cellspec.Build) { b.Args = map[string]string{"VERSION": "1"} }), true},
		{"an argument is emptied", build(func(b *cellspec.Build) { b.Args = map[string]string{"A": "", "B": "2"} }), true},
		{"a target is set", build(func(b *cellspec.Build) { b.Target = "dev" }), true},
		{"another Dockerfile is used", build(func(b *cellspec.Build) { b.Dockerfile = "build/Dockerfile2" }), true},

		{"nothing changes", func(*testing.T, string, *cellspec.Build) {}, false},
		{"an ignored file is edited", write("app.log", "more\n"), false},
		{"an ignored file is added", write("tmp/new.bin", "x"), false},
		{"a file in an ignored directory is edited", write("docs/readme.md", "changed\n"), false},
		{"an ignored file is removed", remove("tmp/cache.bin"), false},
		{"an ignored symlink is added", symlink("/etc/passwd", "tmp/link"), false},
		{"modification times change", func(t *testing.T, root string, _ *cellspec.Build) {
			later := time.Now().Add(time.Hour)
			for _, name := range []string{"main.go", "Dockerfile", "web", "web/index.html"} {
				if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(name)), later, later); err != nil {
					t.Fatal(err)
				}
			}
		}, false},
		{"a file is rewritten with the same contents", write("main.go", hashTree["main.go"]), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, hashTree)
			b := &cellspec.Build{Context: root, Args: map[string]string{"A": "1", "B": "2"}}
			before := hashOf(t, b, nil)
			if again := hashOf(t, b, nil); again != before {
				t.Fatalf("the hash of an unchanged context changed: %s, then %s", before, again)
			}
			tt.change(t, root, b)
			after := hashOf(t, b, nil)
			if changed := after != before; changed != tt.changed {
				t.Errorf("hash %s → %s: changed = %v, want %v", before, after, changed, tt.changed)
			}
		})
	}
}

func TestDockerfileContentHashSymlinks(t *testing.T) {
	root := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY . /\n", "a.txt": "a", "b.txt": "b", "dir/x": "x"})
	b := &cellspec.Build{Context: root}
	link := filepath.Join(root, "current")
	relink := func(target string) string {
		t.Helper()
		_ = os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		return hashOf(t, b, nil)
	}
	toA := relink("a.txt")
	if toB := relink("b.txt"); toB == toA {
		t.Error("retargeting a symlink did not change the hash")
	}
	// The link is sent as a link: what it points to is not part of the
	// context, so only its target text counts.
	outside := filepath.Join(t.TempDir(), "outside.txt")
	if err := os.WriteFile(outside, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	toOutside := relink(outside)
	if err := os.WriteFile(outside, []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := hashOf(t, b, nil); got != toOutside {
		t.Error("a file outside the context, behind a symlink, changed the hash")
	}
	// A symlink to a directory is not followed.
	toDir := relink("dir")
	if err := os.WriteFile(filepath.Join(root, "dir", "x"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := hashOf(t, b, nil); got == toDir {
		t.Error("editing dir/x did not change the hash")
	}
	// A dangling link is sent as it is.
	relink("missing")
}

func TestDockerfileContentHashIndependentOfPlace(t *testing.T) {
	one := writeTree(t, hashTree)
	two := writeTree(t, hashTree)
	if h1, h2 := hashOf(t, &cellspec.Build{Context: one}, nil), hashOf(t, &cellspec.Build{Context: two}, nil); h1 != h2 {
		t.Errorf("the same files in two directories hash to %s and %s", h1, h2)
	}
}

func TestDockerfileContentHashOutsideDockerfile(t *testing.T) {
	root := writeTree(t, map[string]string{"app.txt": "x"})
	dfDir := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY app.txt /\n"})
	df := filepath.Join(dfDir, "Dockerfile")
	b := &cellspec.Build{Context: root, Dockerfile: df}
	before := hashOf(t, b, nil)
	if err := os.WriteFile(df, []byte("FROM scratch\nCOPY app.txt /srv/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if after := hashOf(t, b, nil); after == before {
		t.Error("editing a Dockerfile outside the context did not change the hash")
	}
	// The same Dockerfile elsewhere outside the context gives the same
	// context.
	other := filepath.Join(writeTree(t, map[string]string{"Dockerfile.x": "FROM scratch\nCOPY app.txt /srv/\n"}), "Dockerfile.x")
	if h1, h2 := hashOf(t, b, nil), hashOf(t, &cellspec.Build{Context: root, Dockerfile: other}, nil); h1 != h2 {
		t.Errorf("one Dockerfile in two places outside the context hashes to %s and %s", h1, h2)
	}
}

func TestDockerfileContentHashLabels(t *testing.T) {
	root := writeTree(t, hashTree)
	b := &cellspec.Build{Context: root}
	shop := hashOf(t, b, map[string]string{engine.LabelService: "shop"})
	if users := hashOf(t, b, map[string]string{engine.LabelService: "users"}); users == shop {
		t.Error("images with different labels got the same hash")
	}
}

func TestEnsureDockerfile(t *testing.T) {
	root := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY hello.txt /\n", "hello.txt": "hello\n", "notes.tmp": "x", ".dockerignore": "*.tmp\n"})
	eng := enginetest.NewFake()
	b := &cellspec.Build{Context: root}
	labels := map[string]string{engine.LabelProject: "demo"}
	ensure := func(force bool) (string, string) {
		t.Helper()
		var progress bytes.Buffer
		tag, err := EnsureDockerfile(t.Context(), eng, b, "demo-shop-web", labels, force, &progress)
		if err != nil {
			t.Fatalf("EnsureDockerfile: %v", err)
		}
		return tag, progress.String()
	}
	builds := func() int { return len(eng.Builds()) }

	first, _ := ensure(false)
	if !regexp.MustCompile(`^demo-shop-web:[0-9a-f]{12}$`).MatchString(first) {
		t.Errorf("tag = %s, want demo-shop-web:<12 hex digits>", first)
	}
	if got := eng.Builds()[0].Options.Tags; len(got) != 1 || got[0] != first {
		t.Errorf("built tags %v, want [%s]", got, first)
	}
	if _, err := eng.ImageInspect(t.Context(), first); err != nil {
		t.Errorf("built image not found: %v", err)
	}

	again, progress := ensure(false)
	if again != first || builds() != 1 {
		t.Errorf("unchanged: tag %s after %d builds, want %s after 1", again, builds(), first)
	}
	if !strings.Contains(progress, "is up to date") {
		t.Errorf("unchanged: progress %q, want it to say the image is up to date", progress)
	}

	if err := os.WriteFile(filepath.Join(root, "notes.tmp"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if tag, _ := ensure(false); tag != first || builds() != 1 {
		t.Errorf("ignored file edited: tag %s after %d builds, want %s after 1", tag, builds(), first)
	}

	if forced, _ := ensure(true); forced != first || builds() != 2 {
		t.Errorf("forced: tag %s after %d builds, want %s after 2", forced, builds(), first)
	}

	if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello again\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	second, _ := ensure(false)
	if second == first || builds() != 3 {
		t.Errorf("source edited: tag %s after %d builds, want a new tag after 3", second, builds())
	}
	if got := string(eng.Builds()[2].Files["hello.txt"]); got != "hello again\n" {
		t.Errorf("the rebuild sent hello.txt = %q", got)
	}
}

func TestEnsureDockerfileErrors(t *testing.T) {
	root := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	eng := enginetest.NewFake()
	if _, err := EnsureDockerfile(t.Context(), eng, &cellspec.Build{Context: t.TempDir()}, "x", nil, false, nil); err == nil || !strings.Contains(err.Error(), "build image x: read dockerfile") {
		t.Errorf("missing Dockerfile: error %v", err)
	}
	eng.SetError("ImageInspect", fmt.Errorf("engine down"))
	if _, err := EnsureDockerfile(t.Context(), eng, &cellspec.Build{Context: root}, "x", nil, false, nil); err == nil || !strings.Contains(err.Error(), "engine down") {
		t.Errorf("failing inspect: error %v", err)
	}
	if len(eng.Builds()) != 0 {
		t.Errorf("%d builds after errors, want none", len(eng.Builds()))
	}
}

// BenchmarkDockerfileContentHash hashes a context of 2,000 small files
// and one of 64 MiB.
func BenchmarkDockerfileContentHash(b *testing.B) {
	files := map[string]string{"Dockerfile": "FROM scratch\nCOPY . /\n"}
	for i := range 2000 {
		files[fmt.Sprintf("src/pkg%02d/file%04d.go", i%40, i)] = strings.Repeat("x", 4096)
	}
	root := writeTree(b, files)
	big := make([]byte, 64<<20)
	if err := os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644); err != nil {
		b.Fatal(err)
	}
	d, err := prepareDockerfile(&cellspec.Build{Context: root}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(big)) + 2000*4096)
	for b.Loop() {
		if _, err := d.contentHash(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
