package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

func TestUpDetached(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // the Up call
	}{
		{
			name: "defaults",
			args: []string{"up", "-d"},
			want: `Up demo cells=shop wait=false wait-timeout=2m0s build=missing remove-orphans=false gateway-image="" progress=true`,
		},
		{
			name: "every flag",
			args: []string{"up", "--detach", "--wait", "--wait-timeout", "30s", "--build", "--remove-orphans", "--gateway-image", "ghcr.io/orchestro/gateway:1"},
			want: `Up demo cells=shop wait=true wait-timeout=30s build=always remove-orphans=true gateway-image="ghcr.io/orchestro/gateway:1" progress=true`,
		},
		{
			name: "no build",
			args: []string{"up", "-d", "--no-build"},
			want: `Up demo cells=shop wait=false wait-timeout=2m0s build=never remove-orphans=false gateway-image="" progress=true`,
		},
		{
			name: "project flag",
			args: []string{"-p", "other", "up", "-d"},
			want: `Up other cells=shop wait=false wait-timeout=2m0s build=missing remove-orphans=false gateway-image="" progress=true`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if code := h.run(t.Context(), tt.args...); code != ExitOK {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
			}
			project := strings.Fields(tt.want)[1]
			h.wantCalls("connect", tt.want, "Status "+project)
			if h.out.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", h.out)
			}
		})
	}
}

// TestUpSummary checks the URLs printed once the project is up: the running
// gateway's URL when it reports one, else the spec's port on loopback.
func TestUpSummary(t *testing.T) {
	files := map[string]string{
		"orchestro.yaml": "project: demo\ncells: [shop.yaml, users.yaml]\n",
		"shop.yaml":      testCell,
		"users.yaml":     "cell: users\ngateway: {port: 8082}\nservices:\n  accounts: {image: example/accounts:1, port: 8080}\n",
	}
	h := newHarness(t, files)
	h.be.status = &api.ProjectStatus{Project: "demo", Cells: []api.CellStatus{
		{Cell: "users", Gateway: gatewayRunning, URL: "http://127.0.0.1:18082"},
	}}
	if code := h.run(t.Context(), "up", "-d"); code != ExitOK {
		t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
	}
	golden(t, "up_detached.stderr", h.errOut.String())
}

func TestUpExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		upErr      error
		backendErr error
		wantCode   int
		wantErr    string
		wantCalls  []string
	}{
		{
			name:     "wait timed out",
			args:     []string{"up", "-d", "--wait"},
			upErr:    fmt.Errorf("wait for shop/orders: %w", api.ErrWaitTimeout),
			wantCode: ExitUnhealthy,
			wantErr:  "error: up demo: wait for shop/orders: timed out waiting for the project to be healthy\n",
		},
		{
			name:     "unhealthy",
			args:     []string{"up", "-d", "--wait"},
			upErr:    fmt.Errorf("shop/orders: %w", api.ErrUnhealthy),
			wantCode: ExitUnhealthy,
			wantErr:  "error: up demo: shop/orders: service is unhealthy\n",
		},
		{
			// Attached up that fails to start does not attach or stop.
			name:     "attached wait timed out",
			args:     []string{"up", "--wait"},
			upErr:    api.ErrWaitTimeout,
			wantCode: ExitUnhealthy,
			wantErr:  "error: up demo: timed out waiting for the project to be healthy\n",
		},
		{
			name:     "build failed",
			args:     []string{"up", "-d"},
			upErr:    errors.New("build image of shop/orders: exit status 1"),
			wantCode: ExitFailure,
			wantErr:  "error: up demo: build image of shop/orders: exit status 1\n",
		},
		{
			name:       "no engine",
			args:       []string{"up", "-d"},
			backendErr: errors.New("cannot reach the Docker engine at unix:///var/run/docker.sock: is it running?"),
			wantCode:   ExitFailure,
			wantErr:    "error: cannot reach the Docker engine at unix:///var/run/docker.sock: is it running?\n",
			wantCalls:  []string{"connect"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.be.upErr = tt.upErr
			h.backendErr = tt.backendErr
			if code := h.run(t.Context(), tt.args...); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			if got := h.errOut.String(); got != tt.wantErr {
				t.Errorf("stderr = %q, want %q", got, tt.wantErr)
			}
			for _, c := range h.be.Calls() {
				if strings.HasPrefix(c, "Down") || strings.HasPrefix(c, "Logs") {
					t.Errorf("unexpected call %s", c)
				}
			}
			if tt.wantCalls != nil {
				h.wantCalls(tt.wantCalls...)
			}
		})
	}
}

func TestUpInvalidSpec(t *testing.T) {
	h := newHarness(t, map[string]string{"cell.yaml": strings.Replace(testCell, "services:", "servics:", 1)})
	if code := h.run(t.Context(), "up", "-d"); code != ExitUsage {
		t.Errorf("exit code = %d, want %d", code, ExitUsage)
	}
	for _, want := range []string{"cell.yaml:4:1", "invalid spec"} {
		if !strings.Contains(h.errOut.String(), want) {
			t.Errorf("stderr does not contain %q:\n%s", want, h.errOut)
		}
	}
	h.wantCalls() // nothing started, not even a connection
}

// attachedLogs are the lines the fake sends to an attached up, a gateway
// access log line among them, which attached up does not show.
var attachedLogs = []api.LogLine{
	{Cell: "shop", Service: "orders", Replica: 1, Time: testNow, Text: "listening on :8080\n"},
	{Cell: "shop", Service: "gateway", Time: testNow, Text: `{"method":"GET","path":"/orders","status":200}`},
	{Cell: "shop", Service: "catalog", Replica: 1, Time: testNow, Text: "ready"},
	{Cell: "shop", Service: "orders", Replica: 2, Time: testNow, Stderr: true, Text: "warming cache\r\nwarm\n"},
}

// TestUpAttached checks that attached up streams the replicas' logs until
// its context is cancelled (Ctrl-C), then stops the project with Down under
// a context that is still alive.
func TestUpAttached(t *testing.T) {
	h := newHarness(t, nil)
	h.be.logs = attachedLogs
	h.be.logsBlock = true
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int)
	go func() { done <- h.run(ctx, "up") }()

	select {
	case <-h.be.logsStarted:
	case code := <-done:
		t.Fatalf("up returned %d before following the logs; stderr:\n%s", code, h.errOut)
	}
	cancel() // Ctrl-C
	if code := <-done; code != ExitOK {
		t.Errorf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
	}

	h.wantCalls(
		"connect",
		`Up demo cells=shop wait=false wait-timeout=2m0s build=missing remove-orphans=false gateway-image="" progress=true`,
		"Status demo",
		`Logs demo cell="" service="" follow=true tail=-1 since=`+testNow.Format(time.RFC3339),
		"Down demo volumes=false timeout=10s progress=true",
	)
	if h.be.downCtxErr != nil {
		t.Errorf("Down ran under a finished context: %v", h.be.downCtxErr)
	}
	golden(t, "up_attached.stdout", h.out.String())
	golden(t, "up_attached.stderr", h.errOut.String())
}

// TestUpAttachedWaitThenAttach checks that --wait without -d waits, then
// attaches.
func TestUpAttachedWaitThenAttach(t *testing.T) {
	h := newHarness(t, nil)
	h.be.logsBlock = true
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int)
	go func() { done <- h.run(ctx, "up", "--wait") }()
	<-h.be.logsStarted
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
	}
	calls := h.be.Calls()
	if len(calls) != 5 || !strings.Contains(calls[1], "wait=true") || !strings.HasPrefix(calls[3], "Logs") || !strings.HasPrefix(calls[4], "Down") {
		t.Errorf("calls = %q, want Up with wait=true, then Logs, then Down", calls)
	}
}

// TestUpAttachedInterruptedWhileStarting checks that Ctrl-C during an
// attached up's start stops what was started.
func TestUpAttachedInterruptedWhileStarting(t *testing.T) {
	h := newHarness(t, nil)
	h.be.upBlock = true
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if code := h.run(ctx, "up"); code != ExitFailure {
		t.Errorf("exit code = %d, want %d", code, ExitFailure)
	}
	h.wantCalls(
		"connect",
		`Up demo cells=shop wait=false wait-timeout=2m0s build=missing remove-orphans=false gateway-image="" progress=true`,
		"Down demo volumes=false timeout=10s progress=true",
	)
	for _, want := range []string{"Stopping…", "project demo stopped", "error: up demo: interrupted"} {
		if !strings.Contains(h.errOut.String(), want) {
			t.Errorf("stderr does not contain %q:\n%s", want, h.errOut)
		}
	}
}

// TestUpStopAbandoned checks that a second interrupt, which cancels the
// stop's context, abandons the stop with advice.
func TestUpStopAbandoned(t *testing.T) {
	h := newHarness(t, nil)
	h.be.logsBlock = true
	secondInterrupt := func(parent context.Context) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
		cancel()
		return ctx, cancel
	}
	cmd := newUpCmd(h.f, &globalOptions{}, func(ctx context.Context, opts *UpOptions) error {
		opts.InterruptContext = secondInterrupt
		return runUp(ctx, opts)
	})
	cmd.SetArgs([]string{})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the first interrupt
	err := cmd.ExecuteContext(ctx)
	if code := ExitCode(err); code != ExitFailure {
		t.Errorf("exit code = %d, want %d", code, ExitFailure)
	}
	if want := "stop demo: abandoned; run 'orchestro down' to remove what is left"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
	if !errors.Is(h.be.downCtxErr, context.Canceled) {
		t.Errorf("Down's context error = %v, want context.Canceled", h.be.downCtxErr)
	}
}

// TestInterruptContext checks that the stop context outlives its parent's
// cancellation and keeps its values.
func TestInterruptContext(t *testing.T) {
	type key struct{}
	parent, cancelParent := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
	cancelParent()
	ctx, cancel := interruptContext(parent)
	if ctx.Err() != nil {
		t.Errorf("stop context is done at once: %v", ctx.Err())
	}
	if ctx.Value(key{}) != "v" {
		t.Errorf("stop context lost the parent's values")
	}
	cancel()
	if ctx.Err() == nil {
		t.Errorf("stop context is not done after cancel")
	}
}

// TestUpAttachedProjectRemoved: when a down from elsewhere removes the
// project, while its logs are followed or before they are opened, the
// attached up says so and stops nothing.
func TestUpAttachedProjectRemoved(t *testing.T) {
	for _, tc := range []struct {
		name    string
		logsErr error
	}{
		{"while following", api.ErrProjectGone},
		{"before the logs were opened", fmt.Errorf("%w (project demo has no containers)", api.ErrNotRunning)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.be.logsErr = tc.logsErr
			if code := h.run(t.Context(), "up"); code != ExitFailure {
				t.Errorf("exit code = %d, want %d", code, ExitFailure)
			}
			for _, call := range h.be.Calls() {
				if strings.HasPrefix(call, "Down") {
					t.Errorf("up stopped a project that is gone: %q", h.be.Calls())
				}
			}
			if want := "project demo was removed"; !strings.Contains(h.errOut.String(), want) {
				t.Errorf("stderr does not contain %q:\n%s", want, h.errOut)
			}
		})
	}
}
