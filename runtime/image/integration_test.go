package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// countingEngine counts the builds sent to the real engine, to prove that
// an unchanged image is not built again.
type countingEngine struct {
	engine.Engine
	builds atomic.Int32
}

func (c *countingEngine) ImageBuild(ctx context.Context, r io.Reader, o build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	c.builds.Add(1)
	return c.Engine.ImageBuild(ctx, r, o)
}

// ImageLoad counts too: the Go and gateway images are loaded, not built.
func (c *countingEngine) ImageLoad(ctx context.Context, r io.Reader, o ...client.ImageLoadOption) (image.LoadResponse, error) {
	c.builds.Add(1)
	return c.Engine.ImageLoad(ctx, r, o...)
}

// checkImage asserts the image's test labels and entrypoint.
func checkImage(t *testing.T, eng engine.Engine, ref string, labels map[string]string, entrypoint []string) {
	t.Helper()
	img, err := eng.ImageInspect(t.Context(), ref)
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	for k, v := range labels {
		if got := img.Config.Labels[k]; got != v {
			t.Errorf("image %s label %s = %q, want %q", ref, k, got, v)
		}
	}
	if !slices.Equal(img.Config.Entrypoint, entrypoint) {
		t.Errorf("image %s entrypoint = %q, want %q", ref, img.Config.Entrypoint, entrypoint)
	}
}

// runToCompletion runs the image once and returns what it printed.
func runToCompletion(t *testing.T, eng engine.Engine, ref string, labels map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	resp, err := eng.ContainerCreate(ctx, &container.Config{Image: ref, Labels: labels}, nil, nil, nil, "")
	if err != nil {
		t.Fatalf("create container from %s: %v", ref, err)
	}
	if err := eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container from %s: %v", ref, err)
	}
	results, errs := eng.ContainerWait(ctx, resp.ID, container.WaitConditionNotRunning)
	select {
	case r := <-results:
		if r.StatusCode != 0 {
			t.Errorf("container from %s exited with %d", ref, r.StatusCode)
		}
	case err := <-errs:
		t.Fatalf("wait for container from %s: %v", ref, err)
	}
	rc, err := eng.ContainerLogs(ctx, resp.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs of container from %s: %v", ref, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("read logs of container from %s: %v", ref, err)
	}
	return out.String()
}

func TestIntegrationBuildGo(t *testing.T) {
	needGo(t)
	eng := &countingEngine{Engine: enginetest.NeedEngine(t)}
	labels := enginetest.UniqueLabels(t, eng)
	ctx := t.Context()

	b := &cellspec.Build{Go: tinyProgram(t, "hello from scratch")}
	var progress bytes.Buffer
	tag, err := BuildGo(ctx, eng, b, "orchestro-test-go", labels, &progress)
	if err != nil {
		t.Fatalf("BuildGo: %v\n%s", err, progress.String())
	}
	if !strings.HasPrefix(tag, "orchestro-test-go:") {
		t.Errorf("tag = %s, want orchestro-test-go:<hash>", tag)
	}
	checkImage(t, eng, tag, labels, []string{"/app"})
	if got := runToCompletion(t, eng, tag, labels); got != "hello from scratch\n" {
		t.Errorf("the image printed %q, want %q", got, "hello from scratch\n")
	}

	progress.Reset()
	again, err := BuildGo(ctx, eng, b, "orchestro-test-go", labels, &progress)
	if err != nil {
		t.Fatalf("second BuildGo: %v", err)
	}
	if again != tag || eng.builds.Load() != 1 {
		t.Errorf("second BuildGo = %s after %d builds, want %s after 1", again, eng.builds.Load(), tag)
	}
	if !strings.Contains(progress.String(), "is up to date") {
		t.Errorf("second BuildGo progress = %q, want it to say the image is up to date", progress.String())
	}

	// A failing RUN step of a Dockerfile build, on top of the Go image (a
	// scratch image has no shell, the exec form needs none).
	failCtx := writeTree(t, map[string]string{"Dockerfile": "FROM " + tag + "\nRUN [\"/app\", \"fail\"]\n"})
	err = BuildDockerfile(ctx, eng, &cellspec.Build{Context: failCtx}, "orchestro-test-fail:"+labels[enginetest.LabelTest], labels, nil)
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("failing build: error %v, want a *BuildError", err)
	}
	// The classic builder appends a LABEL step per build label, so only
	// the step number is known.
	if !strings.HasPrefix(be.Step, "2/") || be.Instruction != `RUN ["/app", "fail"]` {
		t.Errorf("failing step = %s (%s), want 2/N (RUN [\"/app\", \"fail\"])", be.Step, be.Instruction)
	}
	if !strings.Contains(be.Message, "non-zero code: 3") {
		t.Errorf("message = %q, want the exit code 3", be.Message)
	}
	if !slices.Contains(be.Output, "something went wrong") {
		t.Errorf("output = %q, want the step's last lines", be.Output)
	}
	if !strings.Contains(err.Error(), "step 2/") || !strings.Contains(err.Error(), "something went wrong") {
		t.Errorf("error text %q does not name the step and its output", err)
	}
}

func TestIntegrationBuildDockerfile(t *testing.T) {
	eng := enginetest.NeedEngine(t)
	labels := enginetest.UniqueLabels(t, eng)
	ctx := t.Context()
	dir := writeTree(t, map[string]string{
		"Dockerfile":     "FROM scratch\nCOPY hello.txt /hello.txt\nENTRYPOINT [\"/nothing\"]\n",
		"Dockerfile.bad": "FROM scratch\nCOPY secret.txt /secret.txt\n",
		"hello.txt":      "hello\n",
		"secret.txt":     "do not send\n",
		".dockerignore":  "secret.txt\n",
	})
	tag := "orchestro-test-df:" + labels[enginetest.LabelTest]
	var progress bytes.Buffer
	if err := BuildDockerfile(ctx, eng, &cellspec.Build{Context: dir}, tag, labels, &progress); err != nil {
		t.Fatalf("BuildDockerfile: %v\n%s", err, progress.String())
	}
	if !strings.Contains(progress.String(), " : COPY hello.txt /hello.txt") {
		t.Errorf("progress lacks the build steps:\n%s", progress.String())
	}
	checkImage(t, eng, tag, labels, []string{"/nothing"})

	// The ignored file is not in the context, so copying it fails at its
	// step.
	err := BuildDockerfile(ctx, eng, &cellspec.Build{Context: dir, Dockerfile: "Dockerfile.bad"}, tag+"-bad", labels, nil)
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("build copying an ignored file: error %v, want a *BuildError", err)
	}
	if !strings.HasPrefix(be.Step, "2/") || be.Instruction != "COPY secret.txt /secret.txt" {
		t.Errorf("failing step = %s (%s), want 2/N (COPY secret.txt /secret.txt)", be.Step, be.Instruction)
	}
}

func TestIntegrationGatewayImage(t *testing.T) {
	needGo(t)
	eng := &countingEngine{Engine: enginetest.NeedEngine(t)}
	labels := enginetest.UniqueLabels(t, eng)
	ctx := t.Context()
	_, goarch, err := engine.Platform(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	// A unique stand-in for the orchestro binary, so the tag is new.
	bin := compileTiny(t, tinyProgram(t, "gateway "+labels[enginetest.LabelTest]), goarch, false)
	tag, err := buildGatewayImage(ctx, eng, bin, labels, nil)
	if err != nil {
		t.Fatalf("buildGatewayImage: %v", err)
	}
	checkImage(t, eng, tag, labels, []string{"/orchestro", "gateway"})
	if again, err := buildGatewayImage(ctx, eng, bin, labels, nil); err != nil || again != tag {
		t.Fatalf("second buildGatewayImage = %s, %v; want %s", again, err, tag)
	}
	if n := eng.builds.Load(); n != 1 {
		t.Errorf("%d builds, want 1: the existing image must be reused", n)
	}

	if err := Ensure(ctx, eng, tag, nil); err != nil {
		t.Errorf("Ensure of a local image: %v", err)
	}
	// Nothing listens on port 1, so the pull fails at once.
	missing := "127.0.0.1:1/orchestro-test/missing:" + labels[enginetest.LabelTest]
	err = Ensure(ctx, eng, missing, nil)
	want := "image " + missing + " is not present locally and could not be pulled: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Ensure of a missing image: %v, want an error starting with %q", err, want)
	}
}

func TestIntegrationEnsureDockerfile(t *testing.T) {
	eng := &countingEngine{Engine: enginetest.NeedEngine(t)}
	labels := enginetest.UniqueLabels(t, eng)
	ctx := t.Context()
	// A unique repository, so no image of another run can match a tag.
	repo := "orchestro-test-ensure-" + labels[enginetest.LabelTest]
	dir := writeTree(t, map[string]string{
		"Dockerfile":    "FROM scratch\nCOPY message.txt /message.txt\nENTRYPOINT [\"/nothing\"]\n",
		"message.txt":   "version 1\n",
		"scratch.tmp":   "not sent\n",
		".dockerignore": "*.tmp\n",
	})
	b := &cellspec.Build{Context: dir}
	ensure := func(force bool) (tag, id string) {
		t.Helper()
		var progress bytes.Buffer
		tag, err := EnsureDockerfile(ctx, eng, b, repo, labels, force, &progress)
		if err != nil {
			t.Fatalf("EnsureDockerfile: %v\n%s", err, progress.String())
		}
		img, err := eng.ImageInspect(ctx, tag)
		if err != nil {
			t.Fatalf("inspect %s: %v", tag, err)
		}
		return tag, img.ID
	}

	tag1, id1 := ensure(false)
	if !strings.HasPrefix(tag1, repo+":") || len(tag1) != len(repo)+1+12 {
		t.Errorf("tag = %s, want %s:<12 hex digits>", tag1, repo)
	}
	checkImage(t, eng, tag1, labels, []string{"/nothing"})
	if n := eng.builds.Load(); n != 1 {
		t.Fatalf("%d builds after the first ensure, want 1", n)
	}

	// Unchanged, and changed only where .dockerignore hides it: no build.
	if tag, id := ensure(false); tag != tag1 || id != id1 {
		t.Errorf("unchanged context: %s (%.19s), want %s (%.19s)", tag, id, tag1, id1)
	}
	if err := os.WriteFile(filepath.Join(dir, "scratch.tmp"), []byte("still not sent\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if tag, _ := ensure(false); tag != tag1 {
		t.Errorf("ignored file edited: tag %s, want %s", tag, tag1)
	}
	if n := eng.builds.Load(); n != 1 {
		t.Errorf("%d builds, want 1: an unchanged context must not be built again", n)
	}

	// The source changes: a new tag, a new image.
	if err := os.WriteFile(filepath.Join(dir, "message.txt"), []byte("version 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tag2, id2 := ensure(false)
	if tag2 == tag1 || id2 == id1 {
		t.Errorf("edited source: %s (%.19s), want a new tag and image than %s (%.19s)", tag2, id2, tag1, id1)
	}
	if n := eng.builds.Load(); n != 2 {
		t.Errorf("%d builds after the edit, want 2", n)
	}
	checkImage(t, eng, tag2, labels, []string{"/nothing"})
	// The old image stays, under its own tag, for replicas still on it.
	if _, err := eng.ImageInspect(ctx, tag1); err != nil {
		t.Errorf("the image of the first version is gone: %v", err)
	}

	// Forced, the same context is built again under the same tag.
	if tag, _ := ensure(true); tag != tag2 {
		t.Errorf("forced build: tag %s, want %s", tag, tag2)
	}
	if n := eng.builds.Load(); n != 3 {
		t.Errorf("%d builds after a forced ensure, want 3", n)
	}
}
