//go:build unix

package main

// The harness of the end-to-end tests: they run the orchestro binary, built
// once per test run, against the real Docker engine, and inspect what it
// did through the Docker SDK. Every project a test starts has a unique name
// and free host ports, and its cleanup removes everything labelled with its
// name, whether or not the binary's own `down` worked.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// Labels the product puts on what it creates (DESIGN §2). They are spelled
// out here rather than imported, so a renamed label breaks these tests.
const (
	labelProject = "io.orchestro.project"
	labelCell    = "io.orchestro.cell"
	labelService = "io.orchestro.service"
	labelReplica = "io.orchestro.replica"
	labelRole    = "io.orchestro.role"
	labelManaged = "io.orchestro.managed"
)

// cmdTimeout bounds one run of the binary; a cold `up --wait` builds images.
const cmdTimeout = 4 * time.Minute

// e2e is the state of one test run: the binary, and the gateway images the
// run's projects used, which TestMain removes at the end when this run
// created them and nothing uses them any more.
var e2e struct {
	start time.Time
	dir   string

	buildOnce sync.Once
	bin       string
	buildErr  error

	dockerOnce sync.Once
	docker     *client.Client
	dockerErr  error

	mu       sync.Mutex
	gwImages map[string]bool
}

func TestMain(m *testing.M) {
	e2e.start = time.Now()
	dir, err := os.MkdirTemp("", "orchestro-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(1)
	}
	e2e.dir = dir
	code := m.Run()
	removeGatewayImages()
	if e2e.docker != nil {
		_ = e2e.docker.Close()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the orchestro binary, built once per test run. It must be
// static: the gateway image is this very binary in a FROM scratch image.
// It is built on first use rather than in TestMain, so `go test -short` and
// runs that select no end-to-end test do not pay for it.
func binary(t *testing.T) string {
	t.Helper()
	e2e.buildOnce.Do(func() {
		bin := filepath.Join(e2e.dir, "orchestro")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			e2e.buildErr = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		e2e.bin = bin
	})
	if e2e.buildErr != nil {
		t.Fatalf("build the orchestro binary: %v", e2e.buildErr)
	}
	return e2e.bin
}

// requireDocker returns an SDK client of the engine the binary will use, or
// skips the test when no engine answers. With CI set, a missing engine is a
// failure: CI must never pass by skipping.
func requireDocker(t *testing.T) *client.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine; skipped with -short")
	}
	e2e.dockerOnce.Do(func() {
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			e2e.dockerErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := cli.Ping(ctx); err != nil {
			_ = cli.Close()
			e2e.dockerErr = err
			return
		}
		e2e.docker = cli
	})
	if e2e.dockerErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and no Docker engine answers: %v", e2e.dockerErr)
		}
		t.Skipf("no Docker engine answers: %v", e2e.dockerErr)
	}
	return e2e.docker
}

// run runs the binary to completion with extra environment and returns its
// output and exit code (-1 when it could not run or timed out). It does not
// use t.Context(), so cleanups can call it too.
func run(t *testing.T, env []string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Errorf("orchestro %s: timed out after %s", strings.Join(args, " "), cmdTimeout)
		return out.String(), errb.String(), -1
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Errorf("orchestro %s: %v", strings.Join(args, " "), err)
		return out.String(), errb.String(), -1
	}
	return out.String(), errb.String(), 0
}

// proc is the binary running in the background, in a process group of its
// own so that a kill reaches the go compiler it may have started too.
type proc struct {
	cmd  *exec.Cmd
	out  lockedBuffer
	errb lockedBuffer
	done chan struct{}
	err  error
}

// lockedBuffer is a bytes.Buffer safe to write from the exec package's copy
// goroutine while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProc starts the binary in the background. Its cleanup kills it if
// the test has not.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start orchestro %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
	})
	return p
}

// signal sends sig to the process group.
func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// wait waits up to d for the process to end and returns its exit code, or
// -1 when it has not ended (or ended by a signal).
func (p *proc) wait(d time.Duration) (exit int, ended bool) {
	select {
	case <-p.done:
	default:
		select {
		case <-p.done:
		case <-time.After(d):
			return -1, false
		}
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), true
	}
	if p.err != nil {
		return -1, true
	}
	return 0, true
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. They are free
// when returned; the engine binds them moments later.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// uniqueName returns a project name no other run uses.
func uniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "e2e-" + prefix + "-" + hex.EncodeToString(b)
}

// project is one orchestro project started by a test: its name, the spec
// it is run from, and the host ports its gateways use.
type project struct {
	name string
	spec string // -f argument
	env  []string
	// ports maps an environment variable (SHOP_PORT, …) to its port.
	ports map[string]int
	// lateImages is how long cleanup keeps looking for images after the
	// first sweep: a build the test interrupted may still be finishing.
	lateImages time.Duration
}

// newProject returns a project with a unique name and a free port for each
// of portVars, and registers its cleanup: `down -v`, then a sweep through
// the SDK of every container, network, volume and image labelled with its
// name (belt and braces: the sweep also catches what a broken down leaves).
// The shared gateway image is left to TestMain.
func newProject(t *testing.T, prefix, spec string, portVars ...string) *project {
	t.Helper()
	cli := requireDocker(t)
	p := &project{name: uniqueName(prefix), spec: spec, ports: map[string]int{}}
	for i, port := range freePorts(t, len(portVars)) {
		p.ports[portVars[i]] = port
		p.env = append(p.env, fmt.Sprintf("%s=%d", portVars[i], port))
	}
	t.Cleanup(func() {
		noteGatewayImages(cli, p.name)
		if _, stderr, code := run(t, p.env, "-p", p.name, "down", "-v", "--timeout", "2s"); code != 0 {
			t.Errorf("cleanup: down -v of %s exited %d:\n%s", p.name, code, stderr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := sweep(ctx, cli, p.name, p.lateImages); err != nil {
			t.Errorf("cleanup of %s: %v", p.name, err)
		}
	})
	return p
}

// args prefixes a command line with the project's spec and name.
func (p *project) args(args ...string) []string {
	return append([]string{"-f", p.spec, "-p", p.name}, args...)
}

// run runs the binary on the project. It notes the gateway images the
// project uses before and after, for removeGatewayImages.
func (p *project) run(t *testing.T, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	cli := requireDocker(t)
	noteGatewayImages(cli, p.name)
	defer noteGatewayImages(cli, p.name)
	return run(t, p.env, p.args(args...)...)
}

// url is the host URL of the gateway whose port is in portVar.
func (p *project) url(portVar string) string {
	return fmt.Sprintf("http://127.0.0.1:%d", p.ports[portVar])
}

func projectFilter(name string, more ...string) filters.Args {
	f := filters.NewArgs(filters.Arg("label", labelProject+"="+name))
	for _, m := range more {
		f.Add("label", m)
	}
	return f
}

// listContainers lists the project's containers (all states) whose labels
// also match more.
func listContainers(t *testing.T, cli *client.Client, name string, more ...string) []container.Summary {
	t.Helper()
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: projectFilter(name, more...)})
	if err != nil {
		t.Fatalf("list containers of %s: %v", name, err)
	}
	return list
}

// ids maps container name to container ID for the project's containers
// whose labels match more.
func ids(t *testing.T, cli *client.Client, name string, more ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range listContainers(t, cli, name, more...) {
		out[containerName(c)] = c.ID
	}
	return out
}

func containerName(c container.Summary) string {
	if len(c.Names) == 0 {
		return c.ID
	}
	return strings.TrimPrefix(c.Names[0], "/")
}

// logPrefix is the `cell/service-n` prefix of a replica's log lines.
func logPrefix(c container.Summary) string {
	return c.Labels[labelCell] + "/" + c.Labels[labelService] + "-" + c.Labels[labelReplica]
}

// leftovers lists the containers, networks and volumes still labelled with
// the project, as "kind name" lines.
func leftovers(ctx context.Context, cli *client.Client, name string) ([]string, error) {
	var out []string
	f := projectFilter(name)
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		out = append(out, "container "+containerName(c)+" ("+c.State+")")
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns {
		out = append(out, "network "+n.Name)
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vs.Volumes {
		out = append(out, "volume "+v.Name)
	}
	sort.Strings(out)
	return out, nil
}

// assertNothingLeft fails the test when any container, network or volume
// still carries the project's label.
func assertNothingLeft(t *testing.T, cli *client.Client, name string) {
	t.Helper()
	left, err := leftovers(context.Background(), cli, name)
	if err != nil {
		t.Fatalf("look for what %s left: %v", name, err)
	}
	if len(left) > 0 {
		t.Errorf("project %s left behind:\n  %s", name, strings.Join(left, "\n  "))
	}
}

// sweep removes, through the SDK, every container, network, volume and
// image labelled with the project. Images are swept until none is left for
// late (an interrupted build may still tag one), and repeatedly, because a
// parent image cannot go before its children.
func sweep(ctx context.Context, cli *client.Client, name string, late time.Duration) error {
	var errs []error
	f := projectFilter(name)
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	errs = append(errs, err)
	for _, c := range cs {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", containerName(c), err))
		}
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	errs = append(errs, err)
	for _, n := range ns {
		if err := cli.NetworkRemove(ctx, n.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
		}
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	errs = append(errs, err)
	for _, v := range vs.Volumes {
		if err := cli.VolumeRemove(ctx, v.Name, true); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
		}
	}
	errs = append(errs, sweepImages(ctx, cli, name, late))
	return errors.Join(errs...)
}

// sweepImages removes the images built for the project (labelled with its
// name and as managed), intermediate ones included.
func sweepImages(ctx context.Context, cli *client.Client, name string, late time.Duration) error {
	f := projectFilter(name, labelManaged+"=true")
	deadline := time.Now().Add(late)
	for {
		list, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
		if err != nil {
			return fmt.Errorf("list images: %w", err)
		}
		if len(list) == 0 && !time.Now().Before(deadline) {
			return nil
		}
		var errs []error
		removed := 0
		for _, img := range list {
			_, err := cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			switch {
			case err == nil, errdefs.IsNotFound(err):
				removed++
			default:
				errs = append(errs, fmt.Errorf("remove image %s: %w", img.ID, err))
			}
		}
		if removed == 0 && len(list) > 0 {
			return errors.Join(errs...)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// noteGatewayImages records the images the project's gateways run, for
// removeGatewayImages.
func noteGatewayImages(cli *client.Client, name string) {
	ctx := context.Background()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: projectFilter(name, labelRole+"=gateway")})
	if err != nil {
		return
	}
	// The containers of a swarm's tasks carry the swarm's labels, not the
	// project's: its gateway tasks are those of its gateway services.
	tasks, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", swarmServiceLabel))})
	if err == nil {
		for _, c := range tasks {
			if svc := c.Labels[swarmServiceLabel]; strings.HasPrefix(svc, name+"-") && strings.HasSuffix(svc, "-gateway") {
				list = append(list, c)
			}
		}
	}
	e2e.mu.Lock()
	defer e2e.mu.Unlock()
	if e2e.gwImages == nil {
		e2e.gwImages = map[string]bool{}
	}
	for _, c := range list {
		e2e.gwImages[c.ImageID] = true
	}
}

// swarmServiceLabel names, on a task's container, the swarm service it
// runs.
const swarmServiceLabel = "com.docker.swarm.service.name"

// removeGatewayImages removes the gateway images this run's projects used,
// but only those created during this run (the run's binary is new) and only
// when no container, of any project, uses them: the image is shared by
// every project started by the same binary, and another project may be
// running from an identical build. A removal without force is refused by
// the engine while any container, running or stopped, uses the image.
//
// It goes tag by tag: the swarm target tags the gateway image for its
// registry too, and the engine refuses to remove an image of several
// tags by its ID without force. Removing the last tag removes the image.
func removeGatewayImages() {
	if e2e.docker == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for id := range e2e.gwImages {
		ins, err := e2e.docker.ImageInspect(ctx, id)
		if err != nil {
			continue
		}
		created, err := time.Parse(time.RFC3339Nano, ins.Created)
		if err != nil || created.Before(e2e.start.Add(-time.Second)) {
			continue
		}
		refs := ins.RepoTags
		if len(refs) == 0 {
			refs = []string{id}
		}
		for _, ref := range refs {
			_, _ = e2e.docker.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
		}
	}
}

// httpClient makes one fresh connection per request, so a request never
// rides on a connection to a gateway that has since been killed.
var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// echoReply is the part of the demo services' JSON answer the tests read.
type echoReply struct {
	Service  string     `json:"service"`
	Hostname string     `json:"hostname"`
	Path     string     `json:"path"`
	Upstream *echoReply `json:"upstream"`
}

// get sends a GET and decodes the demo service's JSON answer.
func get(url string) (echoReply, int, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return echoReply{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return echoReply{}, resp.StatusCode, err
	}
	var r echoReply
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(body, &r); err != nil {
			return echoReply{}, resp.StatusCode, fmt.Errorf("decode %s: %w: %q", url, err, body)
		}
	}
	return r, resp.StatusCode, nil
}

// psStatus is the documented `ps --json` shape, as far as the tests read it.
type psStatus struct {
	Project string `json:"project"`
	Ready   bool   `json:"ready"`
	Cells   []struct {
		Cell     string      `json:"cell"`
		Gateway  string      `json:"gateway"`
		URL      string      `json:"url"`
		Services []psService `json:"services"`
	} `json:"cells"`
}

type psService struct {
	Service  string `json:"service"`
	Desired  int    `json:"desired"`
	Ready    int    `json:"ready"`
	Health   string `json:"health"`
	Replicas []struct {
		Name        string `json:"name"`
		ContainerID string `json:"container_id"`
		Replica     int    `json:"replica"`
		State       string `json:"state"`
		Health      string `json:"health"`
	} `json:"replicas"`
}

// ps runs `ps --json` and decodes it.
func (p *project) ps(t *testing.T) psStatus {
	t.Helper()
	stdout, stderr, code := p.run(t, "ps", "--json")
	if code != 0 {
		t.Fatalf("ps --json exited %d:\n%s", code, stderr)
	}
	var st psStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("decode ps --json: %v\n%s", err, stdout)
	}
	return st
}

// service finds one service in a ps status.
func (st psStatus) service(cell, service string) (psService, bool) {
	for _, c := range st.Cells {
		if c.Cell != cell {
			continue
		}
		for _, s := range c.Services {
			if s.Service == service {
				return s, true
			}
		}
	}
	return psService{}, false
}

// settled reports whether every service of a running gateway has exactly its
// desired replicas, all ready, and says what is not when it is not.
func (st psStatus) settled() (bool, string) {
	for _, c := range st.Cells {
		if c.Gateway != "running" {
			return false, fmt.Sprintf("gateway of %s is %s", c.Cell, c.Gateway)
		}
		for _, s := range c.Services {
			if s.Ready != s.Desired || len(s.Replicas) != s.Desired {
				return false, fmt.Sprintf("%s/%s: %d ready, %d desired, %d replicas", c.Cell, s.Service, s.Ready, s.Desired, len(s.Replicas))
			}
		}
	}
	return true, ""
}

// eventually polls cond every interval until it returns true or d passes,
// and returns how long that took and the last explanation cond gave.
func eventually(d, interval time.Duration, cond func() (bool, string)) (time.Duration, bool, string) {
	start := time.Now()
	var why string
	for {
		ok, w := cond()
		if ok {
			return time.Since(start), true, ""
		}
		why = w
		if time.Since(start) > d {
			return time.Since(start), false, why
		}
		time.Sleep(interval)
	}
}

// sameIDs compares two name → ID maps and describes the differences.
func sameIDs(before, after map[string]string) (bool, string) {
	var diffs []string
	for name, id := range before {
		switch got, ok := after[name]; {
		case !ok:
			diffs = append(diffs, name+": gone")
		case got != id:
			diffs = append(diffs, fmt.Sprintf("%s: %.12s → %.12s", name, id, got))
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			diffs = append(diffs, name+": new")
		}
	}
	sort.Strings(diffs)
	return len(diffs) == 0, strings.Join(diffs, ", ")
}
