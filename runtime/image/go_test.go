package image

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// tinyProgram writes a small Go main package into a new temporary module
// and returns its directory. It prints a greeting; with the argument "fail"
// it prints two lines and exits 3.
func tinyProgram(t *testing.T, greeting string) string {
	t.Helper()
	return writeTree(t, map[string]string{
		"go.mod": "module example.com/tiny\n\ngo 1.22\n",
		"main.go": `package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fail" {
		fmt.Println("preparing")
		fmt.Println("something went wrong")
		os.Exit(3)
	}
	fmt.Println("` + greeting + `")
}
`,
	})
}

// needGo skips a test when there is no go toolchain to compile with.
func needGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go toolchain")
	}
}

// compileTiny compiles dir for linux/goarch into a temporary file. With cgo
// the binary links dynamically against the C library.
func compileTiny(t *testing.T, dir, goarch string, cgo bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tiny")
	args := []string{"build", "-o", out}
	env := append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	if cgo {
		// Linking through the C toolchain gives a dynamically linked
		// binary with a program interpreter.
		args = append(args, "-ldflags=-linkmode=external")
		env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=1")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return out
}

func TestBuildGo(t *testing.T) {
	needGo(t)
	dir := tinyProgram(t, "hello")
	eng := enginetest.NewFake()
	b := &cellspec.Build{Go: dir}
	labels := map[string]string{engine.LabelProject: "demo"}

	tag, err := BuildGo(t.Context(), eng, b, "demo-shop-orders", labels, nil)
	if err != nil {
		t.Fatalf("BuildGo: %v", err)
	}
	hash, ok := strings.CutPrefix(tag, "demo-shop-orders:")
	if !ok || len(hash) != 12 {
		t.Fatalf("tag = %q, want demo-shop-orders:<12 hex digits>", tag)
	}
	builds := eng.Builds()
	if len(builds) != 1 {
		t.Fatalf("got %d builds, want 1", len(builds))
	}
	// Loaded as one layer: the binary at /app, its entrypoint.
	files := builds[0].Files
	if ep := builds[0].Entrypoint; len(ep) != 1 || ep[0] != "/app" {
		t.Errorf("entrypoint = %q, want [/app]", ep)
	}
	if err := checkStaticELF(writeFile(t, files["app"]), goruntime.GOARCH); err != nil {
		t.Errorf("the image's binary is not a static linux executable: %v", err)
	}
	ca, err := os.ReadFile(hostCABundle)
	switch {
	case err == nil:
		if string(files[strings.TrimPrefix(hostCABundle, "/")]) != string(ca) {
			t.Error("the host's CA bundle is not in the image")
		}
	default:
		if _, ok := files[strings.TrimPrefix(hostCABundle, "/")]; ok {
			t.Error("a CA bundle was added although the host has none")
		}
	}
	if got := builds[0].Options.Labels[engine.LabelManaged]; got != "true" {
		t.Errorf("label %s = %q, want true", engine.LabelManaged, got)
	}

	// An unchanged program is not built again.
	again, err := BuildGo(t.Context(), eng, b, "demo-shop-orders", labels, nil)
	if err != nil {
		t.Fatalf("second BuildGo: %v", err)
	}
	if again != tag || len(eng.Builds()) != 1 {
		t.Errorf("second BuildGo gave %s after %d builds, want %s after 1", again, len(eng.Builds()), tag)
	}

	// A changed program is.
	changed, err := BuildGo(t.Context(), eng, &cellspec.Build{Go: tinyProgram(t, "changed")}, "demo-shop-orders", labels, nil)
	if err != nil {
		t.Fatalf("BuildGo of the changed program: %v", err)
	}
	if changed == tag || len(eng.Builds()) != 2 {
		t.Errorf("changed program gave %s after %d builds, want a new tag after 2", changed, len(eng.Builds()))
	}
}

func TestBuildGoTargetsEngineArch(t *testing.T) {
	needGo(t)
	other := "arm64"
	if goruntime.GOARCH == "arm64" {
		other = "amd64"
	}
	eng := enginetest.NewFake()
	eng.SetArch(other)
	if _, err := BuildGo(t.Context(), eng, &cellspec.Build{Go: tinyProgram(t, "hi")}, "x", nil, nil); err != nil {
		t.Fatalf("BuildGo: %v", err)
	}
	bin := writeFile(t, eng.Builds()[0].Files["app"])
	if err := checkStaticELF(bin, other); err != nil {
		t.Errorf("binary is not for the engine's %s: %v", other, err)
	}
}

func TestBuildGoCompileError(t *testing.T) {
	needGo(t)
	dir := writeTree(t, map[string]string{
		"go.mod":  "module example.com/broken\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() { undefinedThing() }\n",
	})
	eng := enginetest.NewFake()
	_, err := BuildGo(t.Context(), eng, &cellspec.Build{Go: dir}, "x", nil, nil)
	if err == nil {
		t.Fatal("BuildGo of a broken package succeeded")
	}
	for _, want := range []string{"compile go package " + dir, "undefinedThing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if slices.ContainsFunc(eng.Calls(), func(c string) bool { return strings.HasPrefix(c, "ImageBuild") }) {
		t.Error("an image was built although compilation failed")
	}
}

// writeFile stores data in a temporary file and returns its path.
func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompileGoBinaryKeepsTheLast: the last binary of a package is kept
// in the user's cache as a head start for the next compile, which must
// still give the binary of the program as it is now.
func TestCompileGoBinaryKeepsTheLast(t *testing.T) {
	needGo(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := tinyProgram(t, "hello")
	last := lastBinaryPath(dir, goruntime.GOARCH)
	if last == "" {
		t.Fatal("no place to keep the last binary")
	}
	first, err := compileGoBinary(t.Context(), dir, goruntime.GOARCH, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := os.ReadFile(last)
	if err != nil || !bytes.Equal(kept, first) {
		t.Fatalf("kept binary: %d bytes, %v; want the %d bytes compiled", len(kept), err, len(first))
	}
	again, err := compileGoBinary(t.Context(), dir, goruntime.GOARCH, io.Discard)
	if err != nil || !bytes.Equal(again, first) {
		t.Fatalf("second compile of the unchanged program: %d bytes, %v; want the first binary", len(again), err)
	}

	// The program changes: the kept binary is not the answer.
	main := filepath.Join(dir, "main.go")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(main, bytes.Replace(src, []byte(`"hello"`), []byte(`"changed"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := compileGoBinary(t.Context(), dir, goruntime.GOARCH, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(changed, first) || !bytes.Contains(changed, []byte("changed")) {
		t.Error("the changed program compiled to its old binary")
	}
	if kept, _ := os.ReadFile(last); !bytes.Equal(kept, changed) {
		t.Error("the kept binary is not the latest")
	}
}
