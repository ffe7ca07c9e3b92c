package image

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dockerimage "github.com/docker/docker/api/types/image"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// TestIntegrationPush pushes a small image to a registry of its own and
// pulls it back by the digest Push returned, after removing it locally.
func TestIntegrationPush(t *testing.T) {
	eng := enginetest.NeedEngine(t)
	pusher, ok := eng.(Pusher)
	if !ok {
		t.Fatalf("the engine client %T cannot push", eng)
	}
	labels := enginetest.UniqueLabels(t, eng)
	id := labels[enginetest.LabelTest]
	start := time.Now()
	reg := enginetest.StartRegistry(t)
	t.Logf("registry %s ready in %s", reg, time.Since(start).Round(time.Millisecond))
	ctx := t.Context()

	dir := writeTree(t, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\nENTRYPOINT [\"/nothing\"]\n",
		"hello.txt":  "hello from " + id + "\n",
	})
	tag := "orchestro-test-push:" + id
	var progress bytes.Buffer
	start = time.Now()
	if err := BuildDockerfile(ctx, eng, &cellspec.Build{Context: dir}, tag, labels, &progress); err != nil {
		t.Fatalf("BuildDockerfile: %v\n%s", err, progress.String())
	}
	t.Logf("built %s in %s", tag, time.Since(start).Round(time.Millisecond))
	img, err := eng.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}

	progress.Reset()
	start = time.Now()
	ref, err := Push(ctx, pusher, tag, reg+"/orchestro-test", &progress)
	if err != nil {
		t.Fatalf("Push: %v\n%s", err, progress.String())
	}
	t.Logf("pushed %s as %s in %s", tag, ref, time.Since(start).Round(time.Millisecond))
	repo := reg + "/orchestro-test/orchestro-test-push"
	digest, ok := strings.CutPrefix(ref, repo+"@sha256:")
	if !ok || len(digest) != 64 || strings.Trim(digest, "0123456789abcdef") != "" {
		t.Fatalf("Push = %s, want %s@sha256:<64 hex digits>", ref, repo)
	}
	for _, want := range []string{"pushing " + tag + " as " + repo + ":" + id, "Pushed", "digest: sha256:" + digest} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("push progress lacks %q:\n%s", want, progress.String())
		}
	}
	pushed, err := eng.ImageInspect(ctx, repo+":"+id)
	if err != nil {
		t.Fatalf("the pushed tag is not there: %v", err)
	}
	if pushed.ID != img.ID || !slices.Contains(pushed.RepoDigests, ref) {
		t.Errorf("pushed image %s with digests %q, want %s with %s", pushed.ID, pushed.RepoDigests, img.ID, ref)
	}

	// Pushed again, the registry has it all: the same digest.
	if again, err := Push(ctx, pusher, img.ID, reg+"/orchestro-test", nil); err != nil || again != ref {
		t.Errorf("second Push, by image ID = %s, %v; want %s", again, err, ref)
	}

	// Gone locally, the image comes back from the registry by digest.
	if _, err := eng.ImageRemove(ctx, repo+":"+id, dockerimage.RemoveOptions{}); err != nil {
		t.Fatalf("remove the pushed tag: %v", err)
	}
	if _, err := eng.ImageRemove(ctx, img.ID, dockerimage.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
		t.Fatalf("remove the image: %v", err)
	}
	if _, err := eng.ImageInspect(ctx, img.ID); !cerrdefs.IsNotFound(err) {
		t.Fatalf("the image is still there after its removal: %v", err)
	}
	progress.Reset()
	start = time.Now()
	if err := Ensure(ctx, eng, ref, &progress); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	t.Logf("pulled %s back in %s", ref, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(progress.String(), "pulling "+ref) {
		t.Errorf("the image was not pulled:\n%s", progress.String())
	}
	pulled, err := eng.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatalf("inspect %s after the pull: %v", ref, err)
	}
	if pulled.ID != img.ID {
		t.Errorf("pulled image %s, want the pushed %s", pulled.ID, img.ID)
	}
	if pulled.Config == nil || pulled.Config.Labels[enginetest.LabelTest] != id {
		t.Errorf("the pulled image lost its labels: %+v", pulled.Config)
	}

	// Nothing listens on port 1: the engine's error is Push's.
	_, err = Push(ctx, pusher, ref, "127.0.0.1:1", nil)
	want := "push " + ref + " to 127.0.0.1:1: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Push to a closed port: %v, want an error starting with %q", err, want)
	} else {
		t.Logf("push to a closed port: %v", err)
	}
}
