package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// stats builds a linux stats document: CPU totals now and at the previous
// read (zero for none), and the number of online CPUs.
func stats(read time.Time, total, system, preTotal, preSystem uint64, online uint32) container.StatsResponse {
	return container.StatsResponse{
		Read:    read,
		PreRead: read.Add(-time.Second),
		CPUStats: container.CPUStats{
			CPUUsage:    container.CPUUsage{TotalUsage: total},
			SystemUsage: system,
			OnlineCPUs:  online,
		},
		PreCPUStats: container.CPUStats{
			CPUUsage:    container.CPUUsage{TotalUsage: preTotal},
			SystemUsage: preSystem,
			OnlineCPUs:  online,
		},
		MemoryStats: container.MemoryStats{Usage: 64 << 20, Limit: 1 << 30},
	}
}

func TestUsageOf(t *testing.T) {
	at := t0
	withMemory := func(d container.StatsResponse, usage uint64, st map[string]uint64) container.StatsResponse {
		d.MemoryStats = container.MemoryStats{Usage: usage, Limit: 1 << 30, Stats: st}
		return d
	}
	noOnline := stats(at, 1500, 12000, 1000, 10000, 0)
	noOnline.CPUStats.CPUUsage.PercpuUsage = []uint64{700, 800}
	prev := stats(at.Add(-time.Second), 1000, 10000, 0, 0, 4)
	tests := []struct {
		name   string
		doc    container.StatsResponse
		prev   *container.StatsResponse
		osType string
		want   Usage
	}{
		{
			name: "one core of four busy",
			doc:  stats(at, 1500, 12000, 1000, 10000, 4),
			want: Usage{CPU: 100, HasCPU: true, Memory: 64 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "two cores of eight busy",
			doc:  stats(at, 3000, 18000, 1000, 10000, 8),
			want: Usage{CPU: 200, HasCPU: true, Memory: 64 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "idle",
			doc:  stats(at, 1000, 12000, 1000, 10000, 4),
			want: Usage{CPU: 0, HasCPU: true, Memory: 64 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "first document of a stream has no cpu",
			doc:  stats(at, 1500, 12000, 0, 0, 4),
			want: Usage{Memory: 64 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "empty precpu falls back to the previous document",
			doc:  stats(at, 1500, 12000, 0, 0, 4),
			prev: &prev,
			want: Usage{CPU: 100, HasCPU: true, Memory: 64 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "online cpus from the per-cpu list",
			doc:  noOnline,
			want: Usage{CPU: 50, HasCPU: true, Memory: 64 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "no cpu count at all means one",
			doc:  stats(at, 1500, 12000, 1000, 10000, 0),
			want: Usage{CPU: 25, HasCPU: true, Memory: 64 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "a cpu counter that went back has no value",
			doc:  stats(at, 500, 12000, 1000, 10000, 4),
			want: Usage{Memory: 64 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "no system time between the reads has no value",
			doc:  stats(at, 1500, 10000, 1000, 10000, 4),
			want: Usage{Memory: 64 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "cgroup v2 page cache is not in use",
			doc:  withMemory(stats(at, 0, 0, 0, 0, 1), 100<<20, map[string]uint64{"inactive_file": 30 << 20}),
			want: Usage{Memory: 70 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "cgroup v1 page cache is not in use",
			doc: withMemory(stats(at, 0, 0, 0, 0, 1), 100<<20,
				map[string]uint64{"inactive_file": 10 << 20, "total_inactive_file": 40 << 20}),
			want: Usage{Memory: 60 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name: "a page cache larger than the usage is ignored",
			doc:  withMemory(stats(at, 0, 0, 0, 0, 1), 10<<20, map[string]uint64{"inactive_file": 30 << 20}),
			want: Usage{Memory: 10 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name:   "windows: cpu time over wall time",
			doc:    windowsStats(at, at.Add(-time.Second), 15_000_000, 10_000_000),
			osType: "windows",
			// 5,000,000 × 100 ns = 0.5 s of CPU in 1 s.
			want: Usage{CPU: 50, HasCPU: true, Memory: 32 << 20, MemoryLimit: 1 << 30, At: at},
		},
		{
			name:   "windows: first document",
			doc:    windowsStats(at, time.Time{}, 15_000_000, 0),
			osType: "windows",
			want:   Usage{Memory: 32 << 20, MemoryLimit: 1 << 30, At: at},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := usageOf(&tt.doc, tt.prev, tt.osType)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("usageOf mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func windowsStats(read, preRead time.Time, total, preTotal uint64) container.StatsResponse {
	return container.StatsResponse{
		Read:        read,
		PreRead:     preRead,
		NumProcs:    4,
		CPUStats:    container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: total}},
		PreCPUStats: container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: preTotal}},
		MemoryStats: container.MemoryStats{PrivateWorkingSet: 32 << 20, Limit: 1 << 30},
	}
}

// fakeContainer creates and starts a container in the fake engine.
func fakeContainer(t *testing.T, f *enginetest.Fake, name string) string {
	t.Helper()
	f.AddImage("busy:1", nil)
	resp, err := f.ContainerCreate(t.Context(), &container.Config{Image: "busy:1"}, nil, nil, nil, name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := f.ContainerStart(t.Context(), resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return resp.ID
}

// statsCalls counts the ContainerStats calls for a container name.
func statsCalls(f *enginetest.Fake, name string) int {
	n := 0
	for _, c := range f.Calls() {
		if c == "ContainerStats "+name {
			n++
		}
	}
	return n
}

// errorLog collects the sampler's reported errors.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(_ string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// startSampler runs s until the returned stop is called; stop reports what
// Run returned.
func startSampler(t *testing.T, s *CPUSampler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

func TestCPUSamplerFakeEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := enginetest.NewFake()
		a := fakeContainer(t, f, "a")
		// A stream's first document has no previous read; the second
		// one gives a value.
		if err := f.SetStats(a,
			stats(t0, 1000, 10000, 0, 0, 4),
			stats(t0.Add(time.Second), 1500, 12000, 1000, 10000, 4),
		); err != nil {
			t.Fatal(err)
		}
		var log errorLog
		s := NewCPUSampler(f, WithErrorHandler(log.add))
		if err := s.Add(a); err != nil {
			t.Fatal(err)
		}
		if err := s.Add(a); err != nil {
			t.Fatalf("adding a container twice: %v", err)
		}
		if _, ok := s.Usage(a); ok {
			t.Error("usage before Run")
		}
		stop := startSampler(t, s)
		synctest.Wait()

		want := Usage{CPU: 100, HasCPU: true, Memory: 64 << 20, MemoryLimit: 1 << 30, At: t0.Add(time.Second)}
		got, ok := s.Usage(a)
		if diff := cmp.Diff(want, got); !ok || diff != "" {
			t.Errorf("Usage(a) = %v (-want +got):\n%s", ok, diff)
		}
		if n := statsCalls(f, "a"); n != 1 {
			t.Errorf("%d stats calls for a container added twice, want 1", n)
		}

		// The fake's stream ends after its documents; the sampler
		// opens it again and picks up what is new.
		if err := f.SetStats(a, stats(t0.Add(5*time.Second), 4000, 22000, 1500, 12000, 4)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(retryMin)
		synctest.Wait()
		if got, _ := s.Usage(a); got.CPU != 100 || got.At != t0.Add(5*time.Second) {
			t.Errorf("after the stream was opened again: CPU %v at %s, want 100 at t0+5s", got.CPU, got.At.Sub(t0))
		}

		// A container added while running starts at once.
		b := fakeContainer(t, f, "b")
		if err := f.SetStats(b, stats(t0, 1000, 10000, 500, 8000, 2)); err != nil {
			t.Fatal(err)
		}
		if err := s.Add(b); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got, ok := s.Usage(b); !ok || got.CPU != 50 {
			t.Errorf("Usage(b) = %v, %v, want CPU 50", got, ok)
		}
		if diff := cmp.Diff(Metric{Value: 75, Samples: 2}, s.CPUMetric([]string{a, b, "unknown"})); diff != "" {
			t.Errorf("CPUMetric mismatch (-want +got):\n%s", diff)
		}

		// Remove ends the stream and forgets the usage.
		if !s.Remove(a) {
			t.Error("Remove(a) = false")
		}
		if s.Remove(a) {
			t.Error("second Remove(a) = true")
		}
		synctest.Wait()
		if _, ok := s.Usage(a); ok {
			t.Error("usage of a removed container")
		}
		before, beforeB := statsCalls(f, "a"), statsCalls(f, "b")
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := statsCalls(f, "a"); n != before {
			t.Errorf("a removed container was asked for stats %d more times", n-before)
		}
		if n := statsCalls(f, "b"); n <= beforeB {
			t.Error("the stream of b was not opened again")
		}

		if err := stop(); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if err := s.Add(a); !errors.Is(err, ErrStopped) {
			t.Errorf("Add after Run = %v, want ErrStopped", err)
		}
		if err := s.Run(t.Context()); !errors.Is(err, ErrStopped) {
			t.Errorf("second Run = %v, want ErrStopped", err)
		}
		if errs := log.all(); len(errs) != 0 {
			t.Errorf("errors reported: %v", errs)
		}
	})
}

func TestCPUSamplerRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := enginetest.NewFake()
		id := fakeContainer(t, f, "a")
		boom := errors.New("engine hiccup")
		f.SetError("ContainerStats", boom)
		var log errorLog
		s := NewCPUSampler(f, WithErrorHandler(log.add))
		if err := s.Add(id); err != nil {
			t.Fatal(err)
		}
		stop := startSampler(t, s)
		defer stop()

		// Tries at 0s, then after 1, 2, 4, 8, 10, 10 s: at 1, 3, 7, 15,
		// 25 and 35 s.
		time.Sleep(36 * time.Second)
		synctest.Wait()
		if n := statsCalls(f, "a"); n != 7 {
			t.Errorf("%d stats calls in 36s of failures, want 7", n)
		}
		errs := log.all()
		if len(errs) != 7 {
			t.Fatalf("%d errors reported, want 7: %v", len(errs), errs)
		}
		if !errors.Is(errs[0], boom) || !strings.Contains(errs[0].Error(), "stream stats of container "+id) {
			t.Errorf("error = %v, want it to wrap %v and name the container", errs[0], boom)
		}
		if _, ok := s.Usage(id); ok {
			t.Error("usage without any document")
		}

		// Once the engine answers, the next try brings the stats in.
		f.SetError("ContainerStats", nil)
		if err := f.SetStats(id, stats(t0, 1500, 12000, 1000, 10000, 4)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(retryMax)
		synctest.Wait()
		if got, ok := s.Usage(id); !ok || got.CPU != 100 {
			t.Errorf("Usage = %v, %v after the engine recovered, want CPU 100", got, ok)
		}
	})
}

// pipeEngine serves every stats stream through a pipe the test writes to,
// closed when the request's context ends, as the engine's HTTP stream is.
type pipeEngine struct {
	mu      sync.Mutex
	writers map[string]*io.PipeWriter
}

func (p *pipeEngine) ContainerStats(ctx context.Context, id string, stream bool) (container.StatsResponseReader, error) {
	r, w := io.Pipe()
	context.AfterFunc(ctx, func() { w.CloseWithError(ctx.Err()) })
	p.mu.Lock()
	p.writers[id] = w
	p.mu.Unlock()
	return container.StatsResponseReader{Body: r, OSType: "linux"}, nil
}

func (p *pipeEngine) send(t *testing.T, id string, doc container.StatsResponse) error {
	t.Helper()
	p.mu.Lock()
	w := p.writers[id]
	p.mu.Unlock()
	if w == nil {
		t.Fatalf("no stats stream open for %s", id)
	}
	return json.NewEncoder(w).Encode(doc)
}

func TestCPUSamplerStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := &pipeEngine{writers: map[string]*io.PipeWriter{}}
		s := NewCPUSampler(eng)
		for _, id := range []string{"a", "b"} {
			if err := s.Add(id); err != nil {
				t.Fatal(err)
			}
		}
		stop := startSampler(t, s)
		synctest.Wait()

		// Documents arrive one at a time and each replaces the last.
		// The engine may leave precpu_stats empty; the previous
		// document stands in.
		cpu := func(id string) float64 {
			u, ok := s.Usage(id)
			if !ok || !u.HasCPU {
				return math.NaN()
			}
			return u.CPU
		}
		docs := []struct {
			doc  container.StatsResponse
			want float64 // NaN: no CPU value
		}{
			{stats(t0, 1000, 10000, 0, 0, 4), math.NaN()},
			{stats(t0.Add(time.Second), 1500, 12000, 0, 0, 4), 100},
			{stats(t0.Add(2*time.Second), 3500, 14000, 1500, 12000, 4), 400},
			{stats(t0.Add(3*time.Second), 3500, 16000, 3500, 14000, 4), 0},
		}
		for i, d := range docs {
			if err := eng.send(t, "a", d.doc); err != nil {
				t.Fatalf("send document %d: %v", i, err)
			}
			synctest.Wait()
			if got := cpu("a"); !cmp.Equal(d.want, got, cmp.Comparer(func(x, y float64) bool {
				return x == y || math.IsNaN(x) && math.IsNaN(y)
			})) {
				t.Errorf("after document %d: CPU %v, want %v", i, got, d.want)
			}
		}
		if _, ok := s.Usage("b"); ok {
			t.Error("usage of b before any document")
		}

		// Remove closes the open stream.
		s.Remove("a")
		synctest.Wait()
		if err := eng.send(t, "a", docs[0].doc); err == nil {
			t.Error("the stream of a removed container is still open")
		}

		// Stopping closes the rest and waits for the goroutines.
		if err := stop(); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if err := eng.send(t, "b", docs[0].doc); err == nil {
			t.Error("a stream is still open after Run returned")
		}
	})
}

func TestCPUSamplerAddEmpty(t *testing.T) {
	s := NewCPUSampler(enginetest.NewFake())
	if err := s.Add(""); err == nil {
		t.Error("Add of an empty ID succeeded")
	}
}
