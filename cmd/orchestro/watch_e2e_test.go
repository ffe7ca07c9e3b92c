//go:build unix

package main

// End-to-end test of `orchestro watch`: a Go service copied from the demo
// is edited under steady load through the gateway, and the new code must
// answer with no failed request. A failed build is reported and watching
// carries on. With ORCHESTRO_E2E_COMPOSE set to a docker compose binary
// (v5.6, built from its module github.com/docker/compose/v5), the same service and the same edit
// are measured under `docker compose watch` (develop.watch rebuild) in the
// same run, and both save-to-serving times are logged. Run it with
//
//	go test -v -run TestE2EWatch -count=1 ./cmd/orchestro/
//	ORCHESTRO_E2E_COMPOSE=$PWD/docker-compose go test -v -run TestE2EWatch -count=1 ./cmd/orchestro/

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// watchAnchor is the line of the demo echo service the test edits: the
// service name it answers with gets a version suffix.
const watchAnchor = `name := envOr("SERVICE_NAME", "echo")`

// Load through the gateway: watchClients clients, each sending one GET
// every watchEvery on a new connection.
const (
	watchClients = 4
	watchEvery   = 20 * time.Millisecond
)

// watchCell is the orchestro project: one cell, one Go service.
const watchCell = `cell: web
gateway:
  port: ${WEB_PORT}
services:
  echo:
    build: {go: ./echo}
    port: 8080
    health: {http: /healthz, interval: 500ms, timeout: 1s, retries: 2}
`

// watchMeasure is what one tool did with one edit under load.
type watchMeasure struct {
	tool string
	// serving is from the save to the first answer of the new code.
	serving time.Duration
	// reported is the tool's own account, when it gives one.
	reported         string
	requests, failed int64
	firstFailure     string
}

func TestE2EWatch(t *testing.T) {
	requireDocker(t)
	src, err := os.ReadFile(filepath.Join(demoDir(t), "services", "echo", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(watchAnchor)) {
		t.Fatalf("the demo echo service no longer has the line %q the test edits", watchAnchor)
	}
	var results []watchMeasure
	t.Run("orchestro", func(t *testing.T) {
		results = append(results, watchOrchestro(t, string(src)))
	})
	if bin := os.Getenv("ORCHESTRO_E2E_COMPOSE"); bin != "" {
		t.Run("compose", func(t *testing.T) {
			results = append(results, watchCompose(t, bin, string(src)))
		})
	} else {
		t.Log("set ORCHESTRO_E2E_COMPOSE to a docker compose binary to measure compose watch on the same service")
	}
	for _, r := range results {
		t.Logf("%-9s save→serving %-7s requests %5d, failed %4d  %s %s", r.tool, r.serving.Round(10*time.Millisecond), r.requests, r.failed, r.reported, r.firstFailure)
	}
}

// echoVersion is the echo source answering as echo@version.
func echoVersion(src, version string) string {
	return strings.Replace(src, watchAnchor, watchAnchor+` + "@`+version+`"`, 1)
}

// writeFile writes a file, creating its directory.
func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func watchOrchestro(t *testing.T, src string) watchMeasure {
	dir := t.TempDir()
	main := filepath.Join(dir, "echo", "main.go")
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/echo\n\ngo 1.22\n")
	writeFile(t, main, echoVersion(src, "v1"))
	writeFile(t, filepath.Join(dir, "cell.yaml"), watchCell)
	p := newProject(t, "watch", filepath.Join(dir, "cell.yaml"), "WEB_PORT")
	proc := startProc(t, p.env, p.args("watch")...)
	url := p.url("WEB_PORT") + "/echo/hello"

	waitWatching(t, proc, "watching web/echo")
	waitAnswer(t, url, "echo@v1")

	// 1. An edit rolls under load with no failed request.
	m := editUnderLoad(t, url, "echo@v2", func() { writeFile(t, main, echoVersion(src, "v2")) }, func() bool {
		return strings.Contains(proc.errb.String(), "rebuilt web/echo in")
	})
	m.tool = "orchestro"
	if line := regexp.MustCompile(`rebuilt web/echo in \S+ \(ready in \S+\)`).FindString(proc.errb.String()); line != "" {
		m.reported = "(" + line + ")"
	} else {
		t.Errorf("no line `rebuilt web/echo in … (ready in …)`; stderr:\n%s", proc.errb.String())
	}
	if m.failed != 0 {
		t.Errorf("%d of %d requests failed while watch rolled the service; the first: %s", m.failed, m.requests, m.firstFailure)
	}

	// 2. A build that fails is reported; the service keeps serving, and
	// the next good edit is served.
	writeFile(t, main, echoVersion(src, "v3")+"\nfunc broken( {\n")
	if _, ok, _ := eventually(time.Minute, 100*time.Millisecond, func() (bool, string) {
		return strings.Contains(proc.errb.String(), "build of web/echo failed:"), ""
	}); !ok {
		t.Fatalf("no line `build of web/echo failed:`; stderr:\n%s", proc.errb.String())
	}
	waitAnswer(t, url, "echo@v2")
	writeFile(t, main, echoVersion(src, "v3"))
	waitAnswer(t, url, "echo@v3")

	// 3. Ctrl-C stops watching and leaves the project running.
	proc.signal(syscall.SIGINT)
	if code, ended := proc.wait(30 * time.Second); !ended || code != 0 {
		t.Errorf("watch after Ctrl-C: exit %d (ended %t); stderr:\n%s", code, ended, proc.errb.String())
	}
	if !strings.Contains(proc.errb.String(), "stopped watching") {
		t.Errorf("stderr lacks `stopped watching`:\n%s", proc.errb.String())
	}
	waitAnswer(t, url, "echo@v3")
	t.Logf("watch output:\n%s", proc.errb.String())
	return m
}

// waitWatching waits until watch prints its "watching …" line, and
// fails at once if it exits first.
func waitWatching(t *testing.T, proc *proc, line string) {
	t.Helper()
	if _, ok, _ := eventually(cmdTimeout, 200*time.Millisecond, func() (bool, string) {
		if _, ended := proc.wait(0); ended {
			return true, ""
		}
		return strings.Contains(proc.errb.String(), line), ""
	}); !ok || !strings.Contains(proc.errb.String(), line) {
		t.Fatalf("watch did not start watching (%q); stderr:\n%s", line, proc.errb.String())
	}
}

// waitAnswer waits until the service answers as want.
func waitAnswer(t *testing.T, url, want string) {
	t.Helper()
	if _, ok, why := eventually(2*time.Minute, 100*time.Millisecond, func() (bool, string) {
		r, code, err := get(url)
		if err != nil || code != 200 {
			return false, fmt.Sprintf("GET %s: %d %v", url, code, err)
		}
		return r.Service == want, "answered as " + r.Service
	}); !ok {
		t.Fatalf("the service does not answer as %s: %s", want, why)
	}
}

// editUnderLoad applies steady load to url, edits after a second, and
// measures how long the new answer (want) takes to appear. Load goes on
// until settled reports that the tool is done, and a second more.
func editUnderLoad(t *testing.T, url, want string, edit func(), settled func() bool) watchMeasure {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var m watchMeasure
	var mu sync.Mutex
	var firstNew time.Time
	var wg sync.WaitGroup
	for range watchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(watchEvery)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				r, code, err := get(url)
				at := time.Now()
				atomic.AddInt64(&m.requests, 1)
				if err != nil || code != 200 {
					if ctx.Err() != nil {
						return
					}
					if atomic.AddInt64(&m.failed, 1) == 1 {
						mu.Lock()
						m.firstFailure = fmt.Sprintf("(first failure: %d %v)", code, err)
						mu.Unlock()
					}
					continue
				}
				if r.Service == want {
					mu.Lock()
					if firstNew.IsZero() || at.Before(firstNew) {
						firstNew = at
					}
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Second) // load before the edit
	saved := time.Now()
	edit()
	_, ok, _ := eventually(2*time.Minute, 20*time.Millisecond, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return !firstNew.IsZero() && settled(), ""
	})
	if !ok {
		t.Errorf("the edit was not served (as %s) within 2m", want)
	}
	time.Sleep(time.Second) // load after the roll, through the drain
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if !firstNew.IsZero() {
		m.serving = firstNew.Sub(saved)
	}
	return m
}

// The compose side: the same service, built by a Dockerfile (a Go
// toolchain image made from this machine's GOROOT, with the echo
// service's dependencies in its build cache, as a BuildKit cache mount
// would have them), watched with develop.watch rebuild.

const composeWatchFile = `name: %s
services:
  echo:
    build:
      context: .
      labels: {%s: "%s"}
    ports: ["127.0.0.1:%d:8080"]
    develop:
      watch:
        - path: ./echo
          action: rebuild
        - path: ./go.mod
          action: rebuild
`

const composeDockerfile = `FROM %s AS build
WORKDIR /src
COPY go.mod ./
COPY echo/ ./echo/
RUN ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/app", "./echo"]
FROM scratch
COPY --from=build /app /app
ENTRYPOINT ["/app"]
`

func watchCompose(t *testing.T, bin, src string) watchMeasure {
	cli := requireDocker(t)
	toolchain := goToolchainImage(t, cli, src)
	dir := t.TempDir()
	name := uniqueName("cwatch")
	port := freePorts(t, 1)[0]
	main := filepath.Join(dir, "echo", "main.go")
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/echo\n\ngo 1.22\n")
	writeFile(t, main, echoVersion(src, "v1"))
	writeFile(t, filepath.Join(dir, "Dockerfile"), fmt.Sprintf(composeDockerfile, toolchain))
	writeFile(t, filepath.Join(dir, "compose.yaml"), fmt.Sprintf(composeWatchFile, name, labelE2EImage, toolchain, port))
	compose := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, append([]string{"-f", filepath.Join(dir, "compose.yaml")}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "NO_COLOR=1", "COMPOSE_MENU=false")
		return cmd
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := compose(ctx, "down", "--rmi", "local", "-v", "--timeout", "2").CombinedOutput(); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	if out, err := compose(ctx, "up", "-d", "--build", "--wait").CombinedOutput(); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	var out lockedBuffer
	watch := compose(ctx, "watch", "--no-up")
	watch.Stdout, watch.Stderr = &out, &out
	watch.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := watch.Start(); err != nil {
		t.Fatalf("compose watch: %v", err)
	}
	defer func() {
		_ = syscall.Kill(-watch.Process.Pid, syscall.SIGKILL)
		_ = watch.Wait()
		t.Logf("compose watch output:\n%s", out.String())
	}()
	if _, ok, _ := eventually(time.Minute, 100*time.Millisecond, func() (bool, string) {
		return strings.Contains(out.String(), "Watch enabled"), ""
	}); !ok {
		t.Fatalf("compose watch did not start:\n%s", out.String())
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/echo/hello", port)
	waitAnswer(t, url, "echo@v1")
	m := editUnderLoad(t, url, "echo@v2", func() { writeFile(t, main, echoVersion(src, "v2")) }, func() bool { return true })
	m.tool = "compose"
	return m
}

// goToolchainImage builds an image holding this machine's Go toolchain
// (the registry may be out of reach, so no golang image is pulled), with
// the standard library packages the echo service uses already in its
// build cache. It is removed when the test ends.
func goToolchainImage(t *testing.T, cli *client.Client, src string) string {
	t.Helper()
	tag := uniqueName("gotoolchain") + ":" + strings.TrimPrefix(goruntime.Version(), "go")
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	df := `FROM scratch
COPY go /usr/local/go
ENV PATH=/usr/local/go/bin HOME=/root TMPDIR=/tmp GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOPROXY=off
WORKDIR /tmp
WORKDIR /warm
COPY warm/ ./
RUN ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/tmp/app", "."]
`
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := func() error {
			for name, content := range map[string]string{"Dockerfile": df, "warm/go.mod": "module example.com/echo\n\ngo 1.22\n", "warm/main.go": src} {
				if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
					return err
				}
				if _, err := io.WriteString(tw, content); err != nil {
					return err
				}
			}
			return filepath.WalkDir(goroot, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(goroot, p)
				switch top := strings.Split(filepath.ToSlash(rel), "/")[0]; {
				case top == "test" || top == "doc" || top == "api" || top == "misc" || d.Name() == "testdata":
					return filepath.SkipDir
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				link := ""
				if info.Mode()&fs.ModeSymlink != 0 {
					link, _ = os.Readlink(p)
				}
				hdr, err := tar.FileInfoHeader(info, link)
				if err != nil {
					return err
				}
				hdr.Name = filepath.ToSlash(filepath.Join("go", rel))
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				if info.Mode().IsRegular() {
					f, err := os.Open(p)
					if err != nil {
						return err
					}
					defer f.Close()
					if _, err := io.Copy(tw, f); err != nil {
						return err
					}
				}
				return nil
			})
		}()
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	// Every image of the comparison carries the label (the build stage of
	// compose's images inherits it from this one), so the cleanup finds
	// them all, untagged ones included.
	t.Cleanup(func() { removeLabelled(cli, labelE2EImage+"="+tag) })
	resp, err := cli.ImageBuild(ctx, pr, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true,
		Labels: map[string]string{labelE2EImage: tag}})
	if err != nil {
		t.Fatalf("build the Go toolchain image: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(body, []byte(`"error"`)) {
		t.Fatalf("build the Go toolchain image:\n%s", body)
	}
	return tag
}

// labelE2EImage marks the images the compose comparison builds.
const labelE2EImage = "io.orchestro.e2e-watch-toolchain"

// removeLabelled removes every image with a label, children before their
// parents.
func removeLabelled(cli *client.Client, label string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", label))
	for range 20 {
		list, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
		if err != nil || len(list) == 0 {
			return
		}
		for _, img := range list {
			_, _ = cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	}
}

// watchSyncCompose is a compose project whose site serves message.txt,
// read per request: develop.watch syncs it into the replicas, and rebuilds
// on any other change of the context.
const watchSyncCompose = `name: wsync
x-orchestro:
  gateway:
    port: ${WEB_PORT}
services:
  site:
    build: ./site
    expose: ["8080"]
    deploy: {replicas: 2}
    x-orchestro:
      health: {http: /healthz, interval: 500ms, timeout: 1s, retries: 2}
    develop:
      watch:
        - path: ./site/message.txt
          action: sync
          target: /message.txt
        - path: ./site
          action: rebuild
          ignore: [message.txt]
        - path: ./site/hooks
          action: sync+exec
          target: /hooks
          exec:
            command: ["true"]
`

// TestE2EWatchSync checks develop.watch sync against the engine: a changed
// file reaches every running replica without a rebuild or a restart, and
// the keys orchestro does not carry out are warned about.
func TestE2EWatchSync(t *testing.T) {
	cli := requireDocker(t)
	ver, err := cli.ServerVersion(context.Background())
	if err != nil {
		t.Fatalf("engine version: %v", err)
	}
	if ver.Os != "linux" {
		t.Skipf("needs a linux engine, this one runs %s containers", ver.Os)
	}
	dir, site := writeDockerfileProject(t, ver.Arch)
	writeFile(t, filepath.Join(dir, "compose.yaml"), watchSyncCompose)
	p := newProject(t, "wsync", filepath.Join(dir, "compose.yaml"), "WEB_PORT")
	proc := startProc(t, p.env, p.args("watch")...)
	waitWatching(t, proc, "watching wsync/site")
	for _, want := range []string{
		"services.site.develop.watch[2].action: sync+exec is carried out as sync by orchestro",
		"services.site.develop.watch[2].exec: not honoured by orchestro",
	} {
		if !strings.Contains(proc.errb.String(), want) {
			t.Errorf("stderr lacks the warning %q:\n%s", want, proc.errb.String())
		}
	}
	url := p.url("WEB_PORT") + "/site/"
	allAnswer := func(want string) (bool, string) {
		for range 6 { // two replicas, round robin
			if got := dfGet(url); got != want {
				return false, fmt.Sprintf("answered %q", got)
			}
		}
		return true, ""
	}
	if _, ok, why := eventually(time.Minute, 100*time.Millisecond, func() (bool, string) { return allAnswer("version 1\n") }); !ok {
		t.Fatalf("the site does not serve version 1: %s", why)
	}
	before := ids(t, cli, p.name, labelRole+"=replica")
	if len(before) != 2 {
		t.Fatalf("replicas = %v, want 2", before)
	}

	writeFile(t, filepath.Join(site, "message.txt"), "version 2\n")
	took, ok, why := eventually(time.Minute, 50*time.Millisecond, func() (bool, string) { return allAnswer("version 2\n") })
	if !ok {
		t.Fatalf("the synced file is not served: %s\nstderr:\n%s", why, proc.errb.String())
	}
	t.Logf("save→served by both replicas (sync): %s", took.Round(10*time.Millisecond))
	if _, ok, _ := eventually(10*time.Second, 100*time.Millisecond, func() (bool, string) {
		return strings.Contains(proc.errb.String(), "synced 1 file to wsync/site (2 replicas)"), ""
	}); !ok {
		t.Errorf("no line `synced 1 file to wsync/site (2 replicas)`:\n%s", proc.errb.String())
	}
	if same, diff := sameIDs(before, ids(t, cli, p.name, labelRole+"=replica")); !same {
		t.Errorf("a sync replaced replicas: %s", diff)
	}
	if strings.Contains(proc.errb.String(), "rebuilt") {
		t.Errorf("a change the rebuild rule ignores rebuilt the service:\n%s", proc.errb.String())
	}
	proc.signal(syscall.SIGINT)
	if code, ended := proc.wait(30 * time.Second); !ended || code != 0 {
		t.Errorf("watch after Ctrl-C: exit %d (ended %t); stderr:\n%s", code, ended, proc.errb.String())
	}
	t.Logf("watch output:\n%s", proc.errb.String())
}
