package tui

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// blockingSource is a fakeSource whose streams report when they end.
type blockingSource struct {
	fakeSource
	mu      sync.Mutex
	running int
	started chan struct{}
}

func (s *blockingSource) track(ctx context.Context) error {
	s.mu.Lock()
	s.running++
	s.mu.Unlock()
	select {
	case s.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	s.mu.Lock()
	s.running--
	s.mu.Unlock()
	return ctx.Err()
}

func (s *blockingSource) Events(ctx context.Context, follow bool, sink func(api.Event)) error {
	return s.track(ctx)
}

func (s *blockingSource) Logs(ctx context.Context, opts api.LogOptions, sink func(api.LogLine)) error {
	return s.track(ctx)
}

func TestRunQuitsAndStopsEverything(t *testing.T) {
	src := &blockingSource{fakeSource: fakeSource{status: testStatus()}, started: make(chan struct{}, 4)}
	in, press := io.Pipe()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(t.Context(), src, Options{Initial: testStatus(), Input: in, Output: &out, NoColor: true})
	}()
	// Quit once both streams run.
	for range 2 {
		select {
		case <-src.started:
		case <-time.After(5 * time.Second):
			t.Fatal("the streams did not start")
		}
	}
	if _, err := press.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after q", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("q did not end the dashboard")
	}
	press.Close()
	if src.running != 0 {
		t.Errorf("%d streams still running after Run returned", src.running)
	}
	// Output is no terminal, so it has no size and nothing is drawn; the
	// view's settings were applied, then undone on the way out.
	for _, want := range []string{"\x1b]2;orchestro dash · demo\a", "\x1b[?1049h", "\x1b[?1049l"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%q", want, out.String())
		}
	}
}

func TestRunEndsWithItsContext(t *testing.T) {
	src := &blockingSource{fakeSource: fakeSource{status: testStatus()}, started: make(chan struct{}, 4)}
	in, press := io.Pipe()
	defer press.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, src, Options{Initial: testStatus(), Input: in, Output: io.Discard})
	}()
	<-src.started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil when its context ends", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dashboard outlived its context")
	}
	if src.running != 0 {
		t.Errorf("%d streams still running after Run returned", src.running)
	}
}
