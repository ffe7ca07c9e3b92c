package cli

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWatch checks that watch hands the project to the backend's Watch,
// prints what it reports, and that Ctrl-C ends it with the project left
// running.
func TestWatch(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"defaults", []string{"watch"}, `Watch demo build=missing remove-orphans=false gateway-image="" progress=true`},
		{"flags", []string{"watch", "--build", "--gateway-image", "gw:1"}, `Watch demo build=always remove-orphans=false gateway-image="gw:1" progress=true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.be.watchNotes = []string{"watching shop/orders (2 directories)", "rebuilt shop/orders in 1.2s (ready in 2.5s)"}
			h.be.watchStarted = make(chan struct{})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan int)
			go func() { done <- h.run(ctx, tt.args...) }()
			select {
			case <-h.be.watchStarted:
			case code := <-done:
				t.Fatalf("watch returned %d before watching; stderr:\n%s", code, h.errOut)
			}
			cancel() // Ctrl-C
			if code := <-done; code != ExitOK {
				t.Errorf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
			}
			h.wantCalls("connect", tt.want)
			want := "watching shop/orders (2 directories)\nrebuilt shop/orders in 1.2s (ready in 2.5s)\n" +
				"stopped watching; project demo keeps running ('orchestro down' stops it)\n"
			if diff := cmp.Diff(want, h.errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if h.out.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", h.out)
			}
		})
	}
}

func TestWatchCannotStart(t *testing.T) {
	h := newHarness(t, nil)
	h.be.watchErr = errors.New("no service has build inputs or develop.watch rules to watch")
	if code := h.run(t.Context(), "watch"); code != ExitFailure {
		t.Errorf("exit code = %d, want %d", code, ExitFailure)
	}
	if want := "error: watch demo: no service has build inputs"; !strings.Contains(h.errOut.String(), want) {
		t.Errorf("stderr = %q, want it to contain %q", h.errOut, want)
	}
}

// TestUpWatchDetached checks that up -d --watch starts the project, then
// watches in the foreground; Ctrl-C leaves the project running.
func TestUpWatchDetached(t *testing.T) {
	h := newHarness(t, nil)
	h.be.watchStarted = make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int)
	go func() { done <- h.run(ctx, "up", "-d", "--watch", "--build") }()
	<-h.be.watchStarted
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
	}
	h.wantCalls(
		"connect",
		`Up demo cells=shop wait=false wait-timeout=2m0s build=always remove-orphans=false gateway-image="" progress=true`,
		"Status demo",
		`Watch demo build=always remove-orphans=false gateway-image="" progress=true`,
	)
}

// TestUpWatchAttached checks that up --watch watches while it streams the
// logs, and that Ctrl-C stops both, then the project.
func TestUpWatchAttached(t *testing.T) {
	h := newHarness(t, nil)
	h.be.logsBlock = true
	h.be.watchStarted = make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int)
	go func() { done <- h.run(ctx, "up", "--watch") }()
	<-h.be.watchStarted
	<-h.be.logsStarted
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
	}
	calls := h.be.Calls()
	// Watch and Logs start concurrently, in either order.
	slices.Sort(calls[3:5])
	want := []string{
		"connect",
		`Up demo cells=shop wait=false wait-timeout=2m0s build=missing remove-orphans=false gateway-image="" progress=true`,
		"Status demo",
		`Logs demo cell="" service="" follow=true tail=-1 since=` + testNow.Format("2006-01-02T15:04:05Z07:00"),
		`Watch demo build=missing remove-orphans=false gateway-image="" progress=true`,
		"Down demo volumes=false timeout=10s progress=true",
	}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
}

// TestUpWatchAttachedWatchFails checks that a watch that cannot start ends
// an attached up: the logs stop, the project is stopped, and the error is
// reported.
func TestUpWatchAttachedWatchFails(t *testing.T) {
	h := newHarness(t, nil)
	h.be.logsBlock = true
	h.be.watchErr = errors.New("inotify: too many open files")
	if code := h.run(t.Context(), "up", "--watch"); code != ExitFailure {
		t.Errorf("exit code = %d, want %d; stderr:\n%s", code, ExitFailure, h.errOut)
	}
	calls := h.be.Calls()
	if len(calls) == 0 || calls[len(calls)-1] != "Down demo volumes=false timeout=10s progress=true" {
		t.Errorf("calls = %q, want the project stopped last", calls)
	}
	if want := "watch demo: inotify: too many open files"; !strings.Contains(h.errOut.String(), want) {
		t.Errorf("stderr = %q, want it to contain %q", h.errOut, want)
	}
}

func TestUpWatchNoBuild(t *testing.T) {
	h := newHarness(t, nil)
	if code := h.run(t.Context(), "up", "--watch", "--no-build"); code != ExitUsage {
		t.Errorf("exit code = %d, want %d", code, ExitUsage)
	}
	h.wantCalls()
}
