package main

// A measurement of what a Go service's image costs to make, for `watch`:
// the product's path (package image: a FROM scratch build on the engine's
// classic builder, whose every label and ENTRYPOINT is a step that runs a
// container) against loading the same files and metadata as an image
// archive (the engine's image load, which runs no container). Skipped
// unless ORCHESTRO_BENCH_IMAGES is set; it needs the Docker engine and
// the go tool. Run it with
//
//	ORCHESTRO_BENCH_IMAGES=1 go test -v -run TestImageBuildCost -count=1 ./cmd/orchestro-bench/

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

		loadTag := fmt.Sprintf("%s-load:%d", repo, i)
		start = time.Now()
		if err := loadImage(ctx, cli, loadTag, bin, labels); err != nil {
			t.Fatal(err)
		}
		load := time.Since(start)
		tags = append(tags, loadTag)
		t.Logf("round %d: compile %s; package image BuildGo (cached compile + classic build) %s; image load of the same binary and metadata %s",
			i+1, compile.Round(10*time.Millisecond), buildGo.Round(10*time.Millisecond), load.Round(time.Millisecond))
	}
}

// loadImage loads a one-layer image holding bin as /app, with
// ENTRYPOINT ["/app"] and labels, through the engine's image load.
func loadImage(ctx context.Context, cli *client.Client, tag string, bin []byte, labels map[string]string) error {
	layer, err := tarOf([]tarEntry{{"app", 0o755, bin}})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(layer)
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config":  map[string]any{"Entrypoint": []string{"/app"}, "Labels": labels},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(sum[:])}},
		"history": []map[string]string{{"created_by": "orchestro-bench"}},
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{tag}, "Layers": []string{"layer.tar"}}})
	if err != nil {
		return err
	}
	archive, err := tarOf([]tarEntry{{"config.json", 0o644, config}, {"layer.tar", 0o644, layer}, {"manifest.json", 0o644, manifest}})
	if err != nil {
		return err
	}
	resp, err := cli.ImageLoad(ctx, bytes.NewReader(archive), client.ImageLoadWithQuiet(true))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

type tarEntry struct {
	name string
	mode int64
	data []byte
}

func tarOf(entries []tarEntry) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
