package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RegistryModule and RegistryVersion name the CNCF distribution registry
// StartRegistry runs. It is built from source with the go toolchain, never
// added to the project's go.mod.
const (
	RegistryModule  = "github.com/distribution/distribution/v3/cmd/registry"
	RegistryVersion = "v3.1.2"
)

// registryBuildTimeout bounds the first build of the registry: downloading
// its modules and compiling them takes minutes.
const registryBuildTimeout = 15 * time.Minute

// registryReadyTimeout bounds the wait for a started registry to answer.
const registryReadyTimeout = 30 * time.Second

// registryBuildMu serialises builds of the registry within one process;
// builds of several processes are made safe by renaming into place.
var registryBuildMu sync.Mutex

// StartRegistry starts a private, anonymous, plain-HTTP image registry (the
// CNCF distribution registry, RegistryVersion) for this test, storing its
// images under a t.TempDir(), and returns its address, "127.0.0.1:PORT".
// The Docker engine pushes to and pulls from registries on 127.0.0.0/8
// over plain HTTP without configuration, so an engine on this machine can
// use it at once. It is stopped when the test ends.
//
// The registry binary is built with `go install` the first time and kept
// in a directory under os.TempDir() named after the version, so later
// tests and runs reuse it. Without a go toolchain the test is skipped,
// except when CI is set: there it fails.
func StartRegistry(t testing.TB) string {
	t.Helper()
	bin := registryBinary(t)
	root := t.TempDir()
	var lastErr error
	// The port is chosen free, then given to the registry; another process
	// may take it in between, so a registry that cannot listen is started
	// again on another port.
	for range 3 {
		addr, err := freeLocalAddr()
		if err != nil {
			t.Fatalf("start registry: %v", err)
		}
		if err := runRegistry(t, bin, root, addr); err != nil {
			lastErr = err
			continue
		}
		return addr
	}
	t.Fatalf("start registry: %v", lastErr)
	return ""
}

// registryBinary returns the path of the registry binary, building it when
// it is not there yet.
func registryBinary(t testing.TB) string {
	t.Helper()
	name := "registry"
	if goruntime.GOOS == "windows" {
		name += ".exe"
	}
	dir := filepath.Join(os.TempDir(), "orchestro-test-registry-"+RegistryVersion)
	bin := filepath.Join(dir, name)
	registryBuildMu.Lock()
	defer registryBuildMu.Unlock()
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and the test registry needs the go toolchain to build: %v", err)
		}
		t.Skipf("the test registry needs the go toolchain to build: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("build registry: %v", err)
	}
	// Build into a directory of its own, then rename into place, so a
	// concurrent build in another test process never sees half a binary.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatalf("build registry: %v", err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), registryBuildTimeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, gobin, "install", RegistryModule+"@"+RegistryVersion)
	// Outside any module, with no inherited -mod or workspace settings: the
	// registry is built from its own go.mod, as published.
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build registry: go install %s@%s: %v\n%s", RegistryModule, RegistryVersion, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, name), bin); err != nil {
		t.Fatalf("build registry: %v", err)
	}
	t.Logf("built the test registry %s in %s", RegistryVersion, time.Since(start).Round(100*time.Millisecond))
	return bin
}

// freeLocalAddr returns a loopback address with a port free a moment ago.
func freeLocalAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}

// registryConfig is the registry's configuration: filesystem storage,
// quiet logs, one loopback address. %s are the storage directory and the
// address.
const registryConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: orchestro-test-registry
`

// lockedBuffer collects the registry's output from its copying goroutines.
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

// runRegistry starts the registry on addr and waits until it answers. On
// success its stop is registered with t.Cleanup; on failure it is stopped
// and the error holds its output.
func runRegistry(t testing.TB, bin, root, addr string) error {
	t.Helper()
	storage := filepath.Join(root, "storage-"+strings.ReplaceAll(addr, ":", "-"))
	config := filepath.Join(root, "config-"+strings.ReplaceAll(addr, ":", "-")+".yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, registryConfig, strconv.Quote(storage), strconv.Quote(addr)), 0o644); err != nil {
		return err
	}
	var out lockedBuffer
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = &out, &out
	// The registry exports traces over OTLP unless told not to.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		if goruntime.GOOS != "windows" {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
				return
			case <-time.After(5 * time.Second):
			}
		}
		_ = cmd.Process.Kill()
		<-exited
	}

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(registryReadyTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("the registry on %s exited at start (%v):\n%s", addr, waitErr, out.String())
		default:
		}
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("the registry on %s did not answer GET /v2/ within %s (last: %v):\n%s", addr, registryReadyTimeout, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			if s := out.String(); s != "" {
				t.Logf("registry %s output:\n%s", addr, s)
			}
		}
	})
	return nil
}
