package main

// A measurement of what a Go service's image costs to make, for `watch`:
// the product's path (package image: the binary and its metadata loaded
// as a one-layer archive, which runs no container) against the engine's
// classic builder on the same FROM scratch Dockerfile (every step, the
// labels included, runs a container), as Go images were made before.
// Skipped unless ORCHESTRO_BENCH_IMAGES is set; it needs the Docker engine
// and the go tool. Run it with
//
//	ORCHESTRO_BENCH_IMAGES=1 go test -v -run TestImageBuildCost -count=1 ./cmd/orchestro-bench/

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine"
	orchimage "github.com/orchestro/orchestro/runtime/image"
)

func TestImageBuildCost(t *testing.T) {
	if os.Getenv("ORCHESTRO_BENCH_IMAGES") == "" {
		t.Skip("set ORCHESTRO_BENCH_IMAGES=1 to measure image builds against the Docker engine")
	}
	ctx := t.Context()
	eng, err := engine.NewDockerEngine(ctx)
	if err != nil {
		t.Skip(err)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	src, err := os.ReadFile(filepath.Join("..", "..", "testdata", "demo", "services", "echo", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"go.mod": []byte("module example.com/echo\n\ngo 1.22\n"), "main.go": src} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo := fmt.Sprintf("orchestro-bench-image-%d", time.Now().UnixNano())
	labels := map[string]string{engine.LabelManaged: "true", engine.LabelProject: "bench", engine.LabelCell: "web", engine.LabelService: "echo"}
	var tags []string
	defer func() {
		for _, tag := range tags {
			_, _ = cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	}()

	const rounds = 3
	for i := range rounds {
		// A new comment gives a new binary (its build ID changes), so
		// every round builds.
		if err := os.WriteFile(filepath.Join(dir, "main.go"), fmt.Appendf(src, "\n// round %d\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
		// The compile alone, as package image runs it; BuildGo then finds
		// it in Go's build cache.
		start := time.Now()
		out := filepath.Join(t.TempDir(), "app")
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goruntime.GOARCH)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("compile: %v\n%s", err, b)
		}
		compile := time.Since(start)
		bin, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		tag, err := orchimage.BuildGo(ctx, eng, &cellspec.Build{Go: dir}, repo, labels, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		buildGo := time.Since(start)
		tags = append(tags, tag)

		// The same image through the engine's classic builder, as every
		// Go image was made before: FROM scratch, the binary, the
		// entrypoint and the labels, each a step that runs a container.
		ctxDir := t.TempDir()
		df := "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"
		if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctxDir, "app"), bin, 0o755); err != nil {
			t.Fatal(err)
		}
		classicTag := fmt.Sprintf("%s-classic:%d", repo, i)
		start = time.Now()
		if err := orchimage.BuildDockerfile(ctx, eng, &cellspec.Build{Context: ctxDir}, classicTag, labels, io.Discard); err != nil {
			t.Fatal(err)
		}
		classic := time.Since(start)
		tags = append(tags, classicTag)
		t.Logf("round %d: compile %s; package image BuildGo (cached compile + image load) %s; classic build of the same binary and metadata %s",
			i+1, compile.Round(10*time.Millisecond), buildGo.Round(10*time.Millisecond), classic.Round(time.Millisecond))
	}
}
