package image

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dockerimage "github.com/docker/docker/api/types/image"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// httpServerProgram is a Go main package serving /healthz (200) and /sick
// (503) on :8080.
func httpServerProgram(t *testing.T) string {
	t.Helper()
	return writeTree(t, map[string]string{
		"go.mod": "module example.com/tinyhttp\n\ngo 1.22\n",
		"main.go": `package main

import "net/http"

func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	http.HandleFunc("/sick", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusServiceUnavailable)
	})
	panic(http.ListenAndServe(":8080", nil))
}
`,
	})
}

// compileOrchestro builds the orchestro command of this module as a static
// linux binary for goarch: the test binary cannot stand in for it, since
// the probe must run `orchestro probe`.
func compileOrchestro(t *testing.T, goarch string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "orchestro")
	cmd := exec.Command("go", "build", "-o", out, "github.com/orchestro/orchestro/cmd/orchestro")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/orchestro: %v\n%s", err, b)
	}
	t.Logf("compiled orchestro in %s", time.Since(start).Round(time.Millisecond))
	return out
}

// TestIntegrationProbe adds the probe to a FROM scratch HTTP server image
// and checks that HEALTHCHECKs made by ProbeTest judge its containers
// right: healthy when the service answers, unhealthy with the probe's
// message when it does not.
func TestIntegrationProbe(t *testing.T) {
	needGo(t)
	eng := &countingEngine{Engine: enginetest.NeedEngine(t)}
	labels := enginetest.UniqueLabels(t, eng)
	id := labels[enginetest.LabelTest]
	ctx := t.Context()
	_, goarch, err := engine.Platform(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}

	gw, err := buildGatewayImage(ctx, eng, compileOrchestro(t, goarch), labels, nil)
	if err != nil {
		t.Fatalf("gateway image: %v", err)
	}
	var progress bytes.Buffer
	base, err := BuildGo(ctx, eng, &cellspec.Build{Go: httpServerProgram(t)}, "orchestro-test-probe-"+id, labels, &progress)
	if err != nil {
		t.Fatalf("BuildGo: %v\n%s", err, progress.String())
	}

	builds := eng.builds.Load()
	progress.Reset()
	start := time.Now()
	probed, err := WithProbe(ctx, eng, base, gw, &progress)
	if err != nil {
		t.Fatalf("WithProbe: %v\n%s", err, progress.String())
	}
	t.Logf("built %s in %s", probed, time.Since(start).Round(time.Millisecond))
	var containers []string
	// Before the cleanup by label: the probe image's untagged parents
	// carry the test label too, and must go with it, not one by one.
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, c := range containers {
			if err := eng.ContainerRemove(cctx, c, container.RemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: remove container %s: %v", c, err)
			}
		}
		if _, err := eng.ImageRemove(cctx, probed, dockerimage.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("cleanup: remove image %s: %v", probed, err)
		}
	})
	if !strings.HasPrefix(probed, base+probeTagMark) {
		t.Errorf("probe image %s, want %s%s<hash>", probed, base, probeTagMark)
	}
	if n := eng.builds.Load() - builds; n != 1 {
		t.Errorf("%d builds for the probe image, want 1", n)
	}
	// The base's labels and entrypoint carry over.
	checkImage(t, eng, probed, labels, []string{"/app"})
	if again, err := WithProbe(ctx, eng, base, gw, nil); err != nil || again != probed {
		t.Errorf("second WithProbe = %s, %v; want %s", again, err, probed)
	}
	if n := eng.builds.Load() - builds; n != 1 {
		t.Errorf("%d builds after a second WithProbe, want 1: the probe image must be reused", n)
	}

	checks := []struct {
		name   string
		health *cellspec.Health
		port   int
		want   string // the final status
		output string // in the last check's output, when unhealthy
	}{
		{"http", &cellspec.Health{HTTP: "/healthz", Timeout: cellspec.Duration(2 * time.Second)}, 8080, "healthy", ""},
		{"http failing", &cellspec.Health{HTTP: "/sick", Timeout: cellspec.Duration(2 * time.Second)}, 8080, "unhealthy",
			"probe: GET http://127.0.0.1:8080/sick: status 503 Service Unavailable: database down"},
		{"tcp", &cellspec.Health{TCP: true}, 8080, "healthy", ""},
		{"tcp closed port", &cellspec.Health{TCP: true}, 8081, "unhealthy", "connect: connection refused"},
	}
	for _, c := range checks {
		resp, err := eng.ContainerCreate(ctx, &container.Config{
			Image:  probed,
			Labels: labels,
			Healthcheck: &container.HealthConfig{
				Test:     ProbeTest(c.health, c.port),
				Interval: 250 * time.Millisecond,
				// Above the probe's own timeout, so its message is kept.
				Timeout: 10 * time.Second,
				Retries: 2,
			},
		}, nil, nil, nil, "")
		if err != nil {
			t.Fatalf("create the %s container: %v", c.name, err)
		}
		containers = append(containers, resp.ID)
		if err := eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			t.Fatalf("start the %s container: %v", c.name, err)
		}
	}
	for i, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			deadline := time.Now().Add(time.Minute)
			for {
				st, err := eng.ContainerInspect(ctx, containers[i])
				if err != nil {
					t.Fatal(err)
				}
				if !st.State.Running {
					t.Fatalf("the container stopped: %+v", st.State)
				}
				h := st.State.Health
				if h != nil && h.Status == c.want {
					if c.output != "" {
						last := h.Log[len(h.Log)-1]
						if last.ExitCode != 1 || !strings.Contains(last.Output, c.output) {
							t.Errorf("last check: exit %d, output %q; want 1 and %q", last.ExitCode, last.Output, c.output)
						}
					}
					t.Logf("%s: %s (test %q)", c.name, h.Status, ProbeTest(c.health, c.port))
					return
				}
				if time.Now().After(deadline) {
					var log []string
					if h != nil {
						for _, l := range h.Log {
							log = append(log, l.Output)
						}
					}
					t.Fatalf("health is %+v after a minute, want %s; log %q", h, c.want, log)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	// A healthy container's checks print nothing.
	st, err := eng.ContainerInspect(ctx, containers[0])
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(st.State.Health.Log, func(l *container.HealthcheckResult) bool { return l.ExitCode != 0 || l.Output != "" }); i >= 0 {
		l := st.State.Health.Log[i]
		t.Errorf("a check of the healthy container: exit %d, output %q", l.ExitCode, l.Output)
	}
}
