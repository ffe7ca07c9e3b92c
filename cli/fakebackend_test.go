package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// fakeBackend records every call as one line of text and answers from
// canned data.
type fakeBackend struct {
	mu    sync.Mutex
	calls []string

	upErr error
	// upBlock makes Up wait for its context to end and return its error,
	// as an interrupted build would.
	upBlock   bool
	downErr   error
	status    *api.ProjectStatus
	statusErr error
	// scaleErr fails Scale of the named CELL/SERVICE.
	scaleErr   map[string]error
	restartErr error
	// waitErr answers Wait.
	waitErr error
	// execCode and execErr answer Exec, which writes execOut to Stdout.
	execCode int
	execErr  error
	execOut  string
	logs     []api.LogLine
	logsErr  error
	// logsBlock makes a following Logs wait, after its lines, for its
	// context to end; logsStarted is closed then.
	logsBlock   bool
	logsStarted chan struct{}
	events      []api.Event
	eventsErr   error
	// images answers Images; imagesErr fails it.
	images    api.ProjectImages
	imagesErr error
	// executions answer Executions (filtered as a gateway does, but in
	// the order given), and Execution (by full id, with their cell and
	// flow).
	executions    []api.ExecutionSummary
	executionsErr error
	// timelines answer Execution, by id, before executions do.
	timelines    map[string]*api.Execution
	executionErr error
	retry        api.RetryResult
	retryErr     error

	// watchErr fails Watch at once; otherwise Watch reports watchNotes
	// and waits for its context to end.
	watchErr   error
	watchNotes []string
	// watchStarted, when set, is closed once Watch has reported its
	// notes.
	watchStarted chan struct{}

	// downCtxErr is the error of the context Down was called with, at the
	// time of the call.
	downCtxErr error
}

func (b *fakeBackend) record(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

func (b *fakeBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *fakeBackend) Up(ctx context.Context, p *cellspec.Project, opts api.UpOptions) error {
	cells := make([]string, len(p.Cells))
	for i, c := range p.Cells {
		cells[i] = c.Name
	}
	b.record("Up %s cells=%s wait=%t wait-timeout=%s build=%s remove-orphans=%t gateway-image=%q progress=%t",
		p.Name, strings.Join(cells, ","), opts.Wait, opts.WaitTimeout, buildPolicyName(opts.Build),
		opts.RemoveOrphans, opts.GatewayImage, opts.Progress != nil)
	if b.upBlock {
		<-ctx.Done()
		return ctx.Err()
	}
	return b.upErr
}

// Watch records the call and, like the real one, watches until its
// context ends, after reporting watchNotes; watchErr fails it at once.
func (b *fakeBackend) Watch(ctx context.Context, p *cellspec.Project, opts api.UpOptions) error {
	b.record("Watch %s build=%s remove-orphans=%t gateway-image=%q progress=%t",
		p.Name, buildPolicyName(opts.Build), opts.RemoveOrphans, opts.GatewayImage, opts.Progress != nil)
	if b.watchErr != nil {
		return b.watchErr
	}
	for _, n := range b.watchNotes {
		opts.Progress.Note(n)
	}
	if b.watchStarted != nil {
		close(b.watchStarted)
	}
	<-ctx.Done()
	return ctx.Err()
}

func buildPolicyName(p api.BuildPolicy) string {
	switch p {
	case api.BuildMissing:
		return "missing"
	case api.BuildAlways:
		return "always"
	case api.BuildNever:
		return "never"
	}
	return fmt.Sprintf("BuildPolicy(%d)", int(p))
}

func (b *fakeBackend) Down(ctx context.Context, project string, opts api.DownOptions) error {
	b.record("Down %s volumes=%t timeout=%s progress=%t", project, opts.Volumes, opts.Timeout, opts.Progress != nil)
	b.mu.Lock()
	b.downCtxErr = ctx.Err()
	b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.downErr
}

func (b *fakeBackend) Status(ctx context.Context, project string) (*api.ProjectStatus, error) {
	b.record("Status %s", project)
	return b.status, b.statusErr
}

func (b *fakeBackend) Scale(ctx context.Context, project, cell, service string, replicas int) error {
	b.record("Scale %s %s/%s %d", project, cell, service, replicas)
	return b.scaleErr[cell+"/"+service]
}

func (b *fakeBackend) Restart(ctx context.Context, project, cell, service string) error {
	b.record("Restart %s cell=%q service=%q", project, cell, service)
	return b.restartErr
}

func (b *fakeBackend) Wait(ctx context.Context, project string, only []api.ServiceRef, timeout time.Duration, progress api.Progress) error {
	var names []string
	for _, r := range only {
		names = append(names, r.Cell+"/"+r.Service)
	}
	b.record("Wait %s %s timeout=%s", project, strings.Join(names, ","), timeout)
	return b.waitErr
}

func (b *fakeBackend) Exec(ctx context.Context, project string, opts api.ExecOptions) (int, error) {
	b.record("Exec %s %s/%s replica=%d tty=%v user=%q workdir=%q env=%q cmd=%q", project, opts.Cell, opts.Service, opts.Replica, opts.TTY, opts.User, opts.WorkDir, opts.Env, opts.Cmd)
	if opts.Stdout != nil {
		_, _ = io.WriteString(opts.Stdout, b.execOut)
	}
	return b.execCode, b.execErr
}

func (b *fakeBackend) Logs(ctx context.Context, project string, opts api.LogOptions, sink func(api.LogLine)) error {
	since := "-"
	if !opts.Since.IsZero() {
		since = opts.Since.UTC().Format(time.RFC3339)
	}
	b.record("Logs %s cell=%q service=%q follow=%t tail=%d since=%s", project, opts.Cell, opts.Service, opts.Follow, opts.Tail, since)
	for _, l := range b.logs {
		sink(l)
	}
	if b.logsBlock && opts.Follow {
		close(b.logsStarted)
		<-ctx.Done()
		return ctx.Err()
	}
	return b.logsErr
}

func (b *fakeBackend) Events(ctx context.Context, project string, follow bool, sink func(api.Event)) error {
	b.record("Events %s follow=%t", project, follow)
	for _, e := range b.events {
		sink(e)
	}
	return b.eventsErr
}

func (b *fakeBackend) Executions(ctx context.Context, project, cell string, f api.ExecutionFilter) ([]api.ExecutionSummary, error) {
	since := "-"
	if !f.Since.IsZero() {
		since = f.Since.UTC().Format(time.RFC3339)
	}
	b.record("Executions %s cell=%q flow=%q failed=%t since=%s limit=%d", project, cell, f.Flow, f.Failed, since, f.Limit)
	if b.executionsErr != nil {
		return nil, b.executionsErr
	}
	ended := map[string]bool{api.ExecutionFailed: true, api.ExecutionCompensated: true, api.ExecutionPartiallyCompensated: true}
	out := []api.ExecutionSummary{}
	for _, e := range b.executions {
		if (cell == "" || e.Cell == cell) && (f.Flow == "" || e.Flow == f.Flow) && (!f.Failed || ended[e.State]) && !e.Started.Before(f.Since) {
			out = append(out, e)
		}
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (b *fakeBackend) Execution(ctx context.Context, project, cell, id string) (*api.Execution, error) {
	b.record("Execution %s cell=%q id=%s", project, cell, id)
	if b.executionErr != nil {
		return nil, b.executionErr
	}
	if e, ok := b.timelines[id]; ok {
		return e, nil
	}
	for _, e := range b.executions {
		if e.ID == id && (cell == "" || e.Cell == cell) {
			return &api.Execution{ID: e.ID, Cell: e.Cell, Flow: e.Flow, State: e.State, Started: e.Started}, nil
		}
	}
	return nil, nil
}

func (b *fakeBackend) RetryExecution(ctx context.Context, project, cell, id string) (api.RetryResult, error) {
	b.record("RetryExecution %s cell=%q id=%s", project, cell, id)
	return b.retry, b.retryErr
}

// testNow is the clock of every test.
var testNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// testCell is a small valid cell: two routed services (one autoscaled) and
// one without a port, hence without a route.
const testCell = `cell: shop
gateway:
  port: 8081
services:
  orders:
    image: example/orders:1.4
    port: 8080
    replicas: 2
    autoscale: {min: 1, max: 4, inflight: 10}
  catalog:
    image: example/catalog:2
    port: 8080
  db:
    image: postgres:16
`

// harness runs the command line against a fakeBackend in a project
// directory named demo.
type harness struct {
	t           *testing.T
	be          *fakeBackend
	f           *Factory
	ios         *IOStreams
	out, errOut *bytes.Buffer
	dir         string
	backendErr  error
}

// newHarness writes files (name → content) into a fresh project directory;
// nil writes cell.yaml holding testCell.
func newHarness(t *testing.T, files map[string]string) *harness {
	t.Helper()
	if files == nil {
		files = map[string]string{"cell.yaml": testCell}
	}
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ios, _, out, errOut := TestStreams()
	h := &harness{t: t, be: &fakeBackend{logsStarted: make(chan struct{})}, ios: ios, out: out, errOut: errOut, dir: dir}
	h.f = &Factory{
		IO: ios,
		Backend: func(ctx context.Context) (Backend, error) {
			h.be.record("connect")
			if h.backendErr != nil {
				return nil, h.backendErr
			}
			return h.be, nil
		},
		Getwd: func() (string, error) { return dir, nil },
		Env:   cellspec.MapEnv(nil),
		Now:   func() time.Time { return testNow },
	}
	return h
}

// run executes the command line and returns its exit code.
func (h *harness) run(ctx context.Context, args ...string) int {
	h.t.Helper()
	return Run(ctx, h.f, args)
}

// wantCalls compares the backend calls with want.
func (h *harness) wantCalls(want ...string) {
	h.t.Helper()
	if diff := cmp.Diff(want, h.be.Calls()); diff != "" {
		h.t.Errorf("backend calls (-want +got):\n%s", diff)
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func (b *fakeBackend) Images(ctx context.Context, p *cellspec.Project, opts api.ImageOptions) (api.ProjectImages, error) {
	b.record("Images %s registry=%q push=%t", p.Name, opts.Registry, opts.Push)
	return b.images, b.imagesErr
}
