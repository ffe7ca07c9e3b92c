package autoscale

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
	"github.com/orchestro/orchestro/runtime/image"
)

// busyProgram writes a Go main package that spins on every core it has,
// so that it stays well above half a core even on a machine busy with
// other work.
func busyProgram(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/busy\n\ngo 1.22\n",
		"main.go": `package main

import "runtime"

func spin() {
	for n := 0; ; n++ {
	}
}

func main() {
	for range runtime.NumCPU() - 1 {
		go spin()
	}
	spin()
}
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCPUSamplerDocker runs a container that spins and checks that the
// sampler sees it use more than half a core, in several documents.
func TestCPUSamplerDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	eng := enginetest.NeedEngine(t)
	labels := enginetest.UniqueLabels(t, eng)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	tag, err := image.BuildGo(ctx, eng, &cellspec.Build{Go: busyProgram(t)}, "orchestro-test-busy", labels, nil)
	if err != nil {
		t.Fatalf("build the busy image: %v", err)
	}
	resp, err := eng.ContainerCreate(ctx, &container.Config{Image: tag, Labels: labels}, nil, nil, nil, "")
	if err != nil {
		t.Fatalf("create the busy container: %v", err)
	}
	if err := eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start the busy container: %v", err)
	}

	s := NewCPUSampler(eng, WithErrorHandler(func(id string, err error) { t.Logf("sampler: %v", err) }))
	if err := s.Add(resp.ID); err != nil {
		t.Fatal(err)
	}
	stop := startSampler(t, s)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	}()

	// The engine sends a document a second; wait for three busy ones.
	// They need not be consecutive: other work on the machine can starve
	// the container for a moment.
	const want = 3
	var busy int
	var last time.Time
	var seen []float64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for busy < want {
		select {
		case <-deadline:
			t.Fatalf("fewer than %d documents above 50%% of a core; CPU seen: %v", want, seen)
		case <-tick.C:
		}
		u, ok := s.Usage(resp.ID)
		if !ok || !u.HasCPU || !u.At.After(last) {
			continue
		}
		last = u.At
		seen = append(seen, u.CPU)
		if u.CPU > 50 {
			busy++
		}
		if u.Memory == 0 {
			t.Errorf("memory in use is 0 at %s", u.At)
		}
	}
	t.Logf("CPU of one core seen: %v", seen)
	if m := s.CPUMetric([]string{resp.ID}); m.Samples != 1 || m.Value <= 0 {
		t.Errorf("CPUMetric = %+v, want one sample above 0", m)
	}
}
