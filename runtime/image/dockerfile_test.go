package image

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// writeTree creates files (slash-separated paths) under a new temporary
// directory and returns it.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestContextEntries(t *testing.T) {
	tree := map[string]string{
		"Dockerfile":           "FROM scratch\n",
		"main.go":              "package main\n",
		".git/HEAD":            "ref: refs/heads/main\n",
		"node_modules/a/b.js":  "",
		"docs/readme.md":       "",
		"docs/keep.md":         "",
		"build/Dockerfile.dev": "FROM scratch\n",
		"secret.env":           "",
		"sub/secret.env":       "",
	}
	all := []string{
		".git", ".git/HEAD", "Dockerfile", "build", "build/Dockerfile.dev", "docs", "docs/keep.md", "docs/readme.md",
		"main.go", "node_modules", "node_modules/a", "node_modules/a/b.js", "secret.env", "sub", "sub/secret.env",
	}
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(s string) bool { return slices.Contains(drop, s) })
	}
	tests := []struct {
		name         string
		dockerignore string
		keep         string
		want         []string
	}{
		{"no .dockerignore", "", "Dockerfile", all},
		{
			"directories and a top-level glob",
			"# comment\n.git\n/node_modules\n*.env\n",
			"Dockerfile",
			without(".git", ".git/HEAD", "node_modules", "node_modules/a", "node_modules/a/b.js", "secret.env"),
		},
		{"recursive glob", "**/*.env\n", "Dockerfile", without("secret.env", "sub/secret.env")},
		{"exception inside an excluded directory", "docs\n!docs/keep.md\n", "Dockerfile", without("docs", "docs/readme.md")},
		{"the Dockerfile is always kept", "Dockerfile\n", "Dockerfile", all},
		{"a Dockerfile in an excluded directory is kept", "build\n", "build/Dockerfile.dev", without("build")},
		{"everything but one file", "*\n!main.go\n", "Dockerfile", []string{"Dockerfile", "main.go"}},
		{"the .dockerignore is always kept", ".dockerignore\n", "Dockerfile", all},
		{"a later pattern excludes again", "docs\n!docs/keep.md\ndocs/keep.md\n", "Dockerfile", without("docs", "docs/keep.md", "docs/readme.md")},
		{"an exception for a whole directory", "*\n!docs\n", "Dockerfile", []string{"Dockerfile", "docs", "docs/keep.md", "docs/readme.md"}},
		{"an exception by recursive glob", "docs\nsub\n!**/keep.md\n", "Dockerfile", without("docs", "docs/readme.md", "sub", "sub/secret.env")},
		{"an exception by single-segment glob", "docs\n!*/keep.md\n", "Dockerfile", without("docs", "docs/readme.md")},
		{"an exception elsewhere leaves a directory out", "node_modules\n!main.go\n", "Dockerfile", without("node_modules", "node_modules/a", "node_modules/a/b.js")},
		{"a file glob in a directory", "docs/*.md\n!docs/keep.md\n", "Dockerfile", without("docs/readme.md")},
		{"single-character wildcard", "sub/secret.en?\n", "Dockerfile", without("sub/secret.env")},
		{"everything, Dockerfile in a subdirectory", "*\n", "build/Dockerfile.dev", []string{"build/Dockerfile.dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := maps.Clone(tree)
			if tt.dockerignore != "" {
				files[".dockerignore"] = tt.dockerignore
			}
			root := writeTree(t, files)
			pm, err := contextMatcher(root, tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			got, err := contextEntries(root, pm)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if tt.dockerignore != "" {
				// The .dockerignore itself is always sent.
				want = append(slices.Clone(want), ".dockerignore")
			}
			slices.Sort(want)
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("entries mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildDockerfileSendsContextAndOptions(t *testing.T) {
	root := writeTree(t, map[string]string{
		"Dockerfile.dev": "FROM scratch\nCOPY hello.txt /\n",
		"hello.txt":      "hello\n",
		"secret.env":     "TOKEN=1\n",
		".dockerignore":  "*.env\nDockerfile.dev\n",
	})
	eng := enginetest.NewFake()
	b := &cellspec.Build{Context: root, Dockerfile: "Dockerfile.dev", Args: map[string]string{"VERSION": "1", "EMPTY": ""}, Target: "dev"}
	labels := map[string]string{engine.LabelProject: "demo"}
	if err := BuildDockerfile(t.Context(), eng, b, "demo-shop-orders:latest", labels, nil); err != nil {
		t.Fatalf("BuildDockerfile: %v", err)
	}
	builds := eng.Builds()
	if len(builds) != 1 {
		t.Fatalf("got %d builds, want 1", len(builds))
	}
	got := builds[0]
	var names []string
	for n := range got.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{".dockerignore", "Dockerfile.dev", "hello.txt"}, names); diff != "" {
		t.Errorf("context files mismatch (-want +got):\n%s", diff)
	}
	one, empty := "1", ""
	want := build.ImageBuildOptions{
		Tags:        []string{"demo-shop-orders:latest"},
		Dockerfile:  "Dockerfile.dev",
		BuildArgs:   map[string]*string{"VERSION": &one, "EMPTY": &empty},
		Target:      "dev",
		Labels:      map[string]string{engine.LabelProject: "demo", engine.LabelManaged: "true"},
		Version:     build.BuilderV1,
		Remove:      true,
		ForceRemove: true,
	}
	if diff := cmp.Diff(want, got.Options); diff != "" {
		t.Errorf("build options mismatch (-want +got):\n%s", diff)
	}
	if _, err := eng.ImageInspect(t.Context(), "demo-shop-orders:latest"); err != nil {
		t.Errorf("built image not found: %v", err)
	}
	if labels[engine.LabelManaged] != "" {
		t.Error("BuildDockerfile changed the caller's labels")
	}
}

func TestBuildDockerfileOutsideContext(t *testing.T) {
	root := writeTree(t, map[string]string{"app.txt": "x"})
	df := filepath.Join(writeTree(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY app.txt /\n"}), "Dockerfile")
	eng := enginetest.NewFake()
	if err := BuildDockerfile(t.Context(), eng, &cellspec.Build{Context: root, Dockerfile: df}, "x:1", nil, nil); err != nil {
		t.Fatalf("BuildDockerfile: %v", err)
	}
	got := eng.Builds()[0]
	if got.Options.Dockerfile != outsideDockerfileName {
		t.Errorf("Dockerfile option = %q, want %q", got.Options.Dockerfile, outsideDockerfileName)
	}
	if string(got.Files[outsideDockerfileName]) != "FROM scratch\nCOPY app.txt /\n" {
		t.Errorf("context lacks the outside Dockerfile; files: %v", got.Files)
	}
}

func TestBuildDockerfileErrors(t *testing.T) {
	t.Run("failing step", func(t *testing.T) {
		root := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY missing /\n"})
		eng := enginetest.NewFake()
		eng.SetBuildHook(func(enginetest.FakeBuild) ([]string, bool) {
			return []string{
				`{"stream":"Step 1/2 : FROM scratch\n"}`,
				`{"stream":" ---\u003e \n"}`,
				`{"stream":"Step 2/2 : COPY missing /\n"}`,
				`{"errorDetail":{"message":"COPY failed: file not found in build context"},"error":"COPY failed: file not found in build context"}`,
			}, false
		})
		err := BuildDockerfile(t.Context(), eng, &cellspec.Build{Context: root}, "x:1", nil, nil)
		var be *BuildError
		if !errors.As(err, &be) {
			t.Fatalf("error = %v, want a *BuildError", err)
		}
		want := "build image x:1: step 2/2 (COPY missing /) failed: COPY failed: file not found in build context"
		if err.Error() != want {
			t.Errorf("error = %q, want %q", err, want)
		}
		if _, err := eng.ImageInspect(t.Context(), "x:1"); err == nil {
			t.Error("a failed build left an image")
		}
	})
	t.Run("missing Dockerfile", func(t *testing.T) {
		root := t.TempDir()
		err := BuildDockerfile(t.Context(), enginetest.NewFake(), &cellspec.Build{Context: root}, "x:1", nil, nil)
		if err == nil || !strings.Contains(err.Error(), "build image x:1: read dockerfile") || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error = %v, want a read dockerfile error wrapping os.ErrNotExist", err)
		}
	})
	t.Run("engine refuses", func(t *testing.T) {
		root := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\n"})
		eng := enginetest.NewFake()
		boom := errors.New("boom")
		eng.SetError("ImageBuild", boom)
		err := BuildDockerfile(t.Context(), eng, &cellspec.Build{Context: root}, "x:1", nil, nil)
		if !errors.Is(err, boom) {
			t.Errorf("error = %v, want it to wrap %v", err, boom)
		}
	})
	t.Run("bad .dockerignore", func(t *testing.T) {
		root := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\n", ".dockerignore": "!\n"})
		err := BuildDockerfile(t.Context(), enginetest.NewFake(), &cellspec.Build{Context: root}, "x:1", nil, nil)
		if err == nil || !strings.Contains(err.Error(), ".dockerignore") {
			t.Errorf("error = %v, want one naming .dockerignore", err)
		}
	})
}
