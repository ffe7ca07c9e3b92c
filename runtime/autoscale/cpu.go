package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
)

// ErrStopped is returned by Add once the sampler's Run has returned, and
// by a second call to Run.
var ErrStopped = errors.New("cpu sampler stopped")

// Retry delays for a stats stream that ended or failed while its container
// is still registered: the first retry waits retryMin, each further one
// twice as long up to retryMax, and a stream that delivered a document
// starts over from retryMin.
const (
	retryMin = time.Second
	retryMax = 10 * time.Second
)

// StatsSource is the part of the Docker engine a CPUSampler reads: the
// SDK's ContainerStats, streaming when stream is set. engine.Engine is one.
type StatsSource interface {
	ContainerStats(ctx context.Context, containerID string, stream bool) (container.StatsResponseReader, error)
}

// Usage is the latest resource use of one container.
type Usage struct {
	// CPU is the CPU use in percent of one core (150 is one and a half
	// cores), valid when HasCPU is set. The first document of a stream has
	// nothing to compare with, so CPU becomes valid with the second.
	CPU    float64
	HasCPU bool
	// Memory is the memory in use in bytes, without the page cache the
	// kernel can reclaim (as `docker stats` shows it), and MemoryLimit the
	// container's limit (the host's memory when it has none).
	Memory      uint64
	MemoryLimit uint64
	// At is when the engine read the statistics.
	At time.Time
}

// SamplerOption configures a CPUSampler.
type SamplerOption func(*CPUSampler)

// WithErrorHandler makes the sampler report stream failures, for logs: a
// stats call that failed or a stream that broke off. The sampler retries on
// its own either way. f is called from the stream goroutines, possibly
// concurrently.
func WithErrorHandler(f func(containerID string, err error)) SamplerOption {
	return func(s *CPUSampler) { s.onError = f }
}

// CPUSampler keeps one streaming stats request open per registered
// container and remembers each container's latest Usage.
//
// Run owns the stream goroutines: containers added before Run start when
// it starts, containers added while it runs start at once, and Run returns
// only after every goroutine has ended. A stream that ends or fails while
// its container is registered is opened again after a growing delay. Add,
// Remove, Usage and CPUMetric are safe for concurrent use.
type CPUSampler struct {
	eng     StatsSource
	onError func(containerID string, err error)
	// wake tells Run that Add registered a container to start.
	wake chan struct{}

	mu      sync.Mutex
	streams map[string]*statsStream
	running bool
	stopped bool
}

// statsStream is the state of one container's stream.
type statsStream struct {
	id string
	// cancel is nil until Run has started the goroutine.
	cancel context.CancelFunc
	usage  Usage
	has    bool
}

// NewCPUSampler returns a sampler that reads container stats from eng.
func NewCPUSampler(eng StatsSource, opts ...SamplerOption) *CPUSampler {
	s := &CPUSampler{
		eng:     eng,
		wake:    make(chan struct{}, 1),
		streams: make(map[string]*statsStream),
	}
	for _, o := range opts {
		o(s)
	}
	if s.onError == nil {
		s.onError = func(string, error) {}
	}
	return s
}

// Add starts following the stats of a container. Adding a container that
// is already followed changes nothing.
func (s *CPUSampler) Add(containerID string) error {
	if containerID == "" {
		return errors.New("sample container stats: empty container ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("sample stats of container %s: %w", containerID, ErrStopped)
	}
	if _, ok := s.streams[containerID]; ok {
		return nil
	}
	s.streams[containerID] = &statsStream{id: containerID}
	if s.running {
		select {
		case s.wake <- struct{}{}:
		default: // Run is already due to look.
		}
	}
	return nil
}

// Remove stops following a container, forgets its usage and reports
// whether it was followed. It does not wait for the stream goroutine to
// end; Run does.
func (s *CPUSampler) Remove(containerID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[containerID]
	if !ok {
		return false
	}
	delete(s.streams, containerID)
	if st.cancel != nil {
		st.cancel()
	}
	return true
}

// Usage returns the latest usage of a followed container, and false until
// its first stats document arrived.
func (s *CPUSampler) Usage(containerID string) (Usage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[containerID]
	if !ok || !st.has {
		return Usage{}, false
	}
	return st.usage, true
}

// CPUMetric averages the CPU of the given containers, normally a service's
// ready replicas, for Decide. Containers without a CPU value yet are left
// out of the average and of Samples.
func (s *CPUSampler) CPUMetric(containerIDs []string) Metric {
	values := make([]float64, 0, len(containerIDs))
	for _, id := range containerIDs {
		if u, ok := s.Usage(id); ok && u.HasCPU {
			values = append(values, u.CPU)
		} else {
			values = append(values, math.NaN())
		}
	}
	return Average(values...)
}

// Run follows the registered containers until ctx is done, then stops
// every stream, waits for the goroutines to end and returns nil. A sampler
// runs once: a second call returns ErrStopped at once.
func (s *CPUSampler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	s.mu.Lock()
	if s.running || s.stopped {
		s.mu.Unlock()
		return ErrStopped
	}
	s.running = true
	s.startPending(ctx, &wg)
	s.mu.Unlock()

	for {
		select {
		case <-s.wake:
			s.mu.Lock()
			s.startPending(ctx, &wg)
			s.mu.Unlock()
		case <-ctx.Done():
			s.mu.Lock()
			s.stopped = true
			for _, st := range s.streams {
				if st.cancel != nil {
					st.cancel()
				}
			}
			s.mu.Unlock()
			wg.Wait()
			return nil
		}
	}
}

// startPending starts a goroutine for every registered container that has
// none. s.mu must be held.
func (s *CPUSampler) startPending(ctx context.Context, wg *sync.WaitGroup) {
	if ctx.Err() != nil {
		return // Run is about to stop; a late Add starts nothing.
	}
	for _, st := range s.streams {
		if st.cancel != nil {
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		st.cancel = cancel
		wg.Go(func() {
			defer cancel()
			s.follow(sctx, st)
		})
	}
}

// follow reads the container's stats stream, opening it again whenever it
// ends, until ctx is done.
func (s *CPUSampler) follow(ctx context.Context, st *statsStream) {
	delay := retryMin
	for {
		got, err := s.readStream(ctx, st)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.onError(st.id, err)
		}
		if got {
			delay = retryMin
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
	}
}

// readStream opens one stats stream and publishes every document until the
// stream ends. It reports whether any document arrived; a stream that
// simply ends is not an error.
func (s *CPUSampler) readStream(ctx context.Context, st *statsStream) (got bool, err error) {
	resp, err := s.eng.ContainerStats(ctx, st.id, true)
	if err != nil {
		return false, fmt.Errorf("stream stats of container %s: %w", st.id, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var prev *container.StatsResponse
	for {
		var doc container.StatsResponse
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return got, nil
			}
			return got, fmt.Errorf("read stats of container %s: %w", st.id, err)
		}
		u := usageOf(&doc, prev, resp.OSType)
		s.mu.Lock()
		// A removed container's goroutine may still be here; it must
		// not bring the entry back.
		if s.streams[st.id] == st {
			st.usage, st.has = u, true
		}
		s.mu.Unlock()
		got = true
		prev = &doc
	}
}

// usageOf computes a container's usage from one stats document. prev is
// the stream's previous document, used when the engine left precpu_stats
// empty; it may be nil.
func usageOf(doc, prev *container.StatsResponse, osType string) Usage {
	u := Usage{At: doc.Read, MemoryLimit: doc.MemoryStats.Limit}
	if osType == "windows" {
		u.Memory = doc.MemoryStats.PrivateWorkingSet
		u.CPU, u.HasCPU = windowsCPU(doc, prev)
		return u
	}
	u.Memory = memoryInUse(doc.MemoryStats)
	u.CPU, u.HasCPU = linuxCPU(doc, prev)
	return u
}

// linuxCPU is (cpu_delta / system_delta) × online_cpus × 100: the
// container's share of all the host's CPU time between two reads, scaled
// to percent of one core.
func linuxCPU(doc, prev *container.StatsResponse) (float64, bool) {
	cur, pre := doc.CPUStats, doc.PreCPUStats
	if pre.SystemUsage == 0 && prev != nil {
		pre = prev.CPUStats
	}
	if pre.SystemUsage == 0 || cur.SystemUsage <= pre.SystemUsage || cur.CPUUsage.TotalUsage < pre.CPUUsage.TotalUsage {
		return 0, false
	}
	online := float64(cur.OnlineCPUs)
	if online == 0 {
		online = float64(len(cur.CPUUsage.PercpuUsage))
	}
	if online == 0 {
		online = 1
	}
	cpuDelta := float64(cur.CPUUsage.TotalUsage - pre.CPUUsage.TotalUsage)
	sysDelta := float64(cur.SystemUsage - pre.SystemUsage)
	return cpuDelta / sysDelta * online * 100, true
}

// windowsCPU divides the CPU time used (in 100 ns units) by the wall time
// between the two reads: Windows reports no system usage.
func windowsCPU(doc, prev *container.StatsResponse) (float64, bool) {
	pre, preRead := doc.PreCPUStats, doc.PreRead
	if preRead.IsZero() && prev != nil {
		pre, preRead = prev.CPUStats, prev.Read
	}
	if preRead.IsZero() || !doc.Read.After(preRead) || doc.CPUStats.CPUUsage.TotalUsage < pre.CPUUsage.TotalUsage {
		return 0, false
	}
	intervals := float64(doc.Read.Sub(preRead).Nanoseconds()) / 100
	return float64(doc.CPUStats.CPUUsage.TotalUsage-pre.CPUUsage.TotalUsage) / intervals * 100, true
}

// memoryInUse subtracts the reclaimable page cache from the usage, as
// `docker stats` does: total_inactive_file on cgroup v1 (which also has an
// inactive_file, for the cgroup alone), inactive_file on v2.
func memoryInUse(m container.MemoryStats) uint64 {
	for _, key := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := m.Stats[key]; ok && v < m.Usage {
			return m.Usage - v
		}
	}
	return m.Usage
}
