package enginetest

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/orchestro/orchestro/runtime/engine"
)

// LabelTest marks what one integration test run creates, so its cleanup
// removes exactly that. UniqueLabels sets it to a value unique to the run.
const LabelTest = "io.orchestro.test"

// NeedEngine returns the real Docker engine for an integration test and
// closes it when the test ends. When no engine is reachable the test is
// skipped, except when CI is set: there a missing engine fails the test, so
// CI can never pass by skipping.
func NeedEngine(t testing.TB) engine.Engine {
	t.Helper()
	eng, err := engine.NewDockerEngine(t.Context())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and the Docker engine is needed: %v", err)
		}
		t.Skipf("integration test needs a Docker engine: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// UniqueLabels returns labels unique to this test run (io.orchestro.managed
// and io.orchestro.test=<random>) and registers a cleanup that removes every
// container and image carrying them. Put them on everything the test creates
// in the engine.
func UniqueLabels(t testing.TB, eng engine.Engine) map[string]string {
	t.Helper()
	id := strings.ToLower(rand.Text()[:12])
	t.Cleanup(func() { removeLabelled(t, eng, LabelTest+"="+id) })
	return map[string]string{engine.LabelManaged: "true", LabelTest: id}
}

// removeLabelled removes the containers, then the images, with the label.
// It runs in t.Cleanup, after t.Context() has ended, so it has its own
// deadline.
func removeLabelled(t testing.TB, eng engine.Engine, label string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", label))
	cs, err := eng.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Errorf("cleanup: list containers %s: %v", label, err)
	}
	for _, c := range cs {
		if err := eng.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("cleanup: remove container %s: %v", c.ID, err)
		}
	}
	imgs, err := eng.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Errorf("cleanup: list images %s: %v", label, err)
	}
	for _, img := range imgs {
		if _, err := eng.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("cleanup: remove image %s: %v", img.ID, err)
		}
	}
}
