package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// TestDashEndToEnd drives the real binary in tmux against a project it
// starts (the demo spec under a unique name, on free ports) and removes
// afterwards. It runs when ORCHESTRO_E2E_BIN names an orchestro binary
// (CGO_ENABLED=0 go build -o /tmp/orchestro ./cmd/orchestro) and tmux and
// a Docker engine are there.
func TestDashEndToEnd(t *testing.T) {
	bin := os.Getenv("ORCHESTRO_E2E_BIN")
	if bin == "" {
		t.Skip("set ORCHESTRO_E2E_BIN to an orchestro binary to run the end-to-end test")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := filepath.Abs(filepath.Join("..", "testdata", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("dash-e2e-%d", os.Getpid())
	ports := freePorts(t, 3)
	env := []string{"SHOP_PORT=" + ports[0], "USERS_PORT=" + ports[1], "EDGE_PORT=" + ports[2]}

	orchestro := func(ctx context.Context, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"-p", project, "-f", spec}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		return cmd.CombinedOutput()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if out, err := orchestro(ctx, "down", "-v"); err != nil {
			t.Errorf("down: %v\n%s", err, out)
		}
	})
	upCtx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if out, err := orchestro(upCtx, "up", "-d", "--wait"); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	status := func() *api.ProjectStatus {
		t.Helper()
		out, err := orchestro(t.Context(), "ps", "--json")
		if err != nil {
			t.Fatalf("ps --json: %v\n%s", err, out)
		}
		var st api.ProjectStatus
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("ps --json: %v\n%s", err, out)
		}
		return &st
	}

	tm := &tmux{t: t, socket: "orchestro-" + project}
	t.Cleanup(tm.kill)
	// A shell runs the dashboard, then shows how it ended and whether the
	// terminal is back in its usual (canonical, echoing) mode.
	script := fmt.Sprintf("env %s %s -p %s dash; echo \"dash exited $?\"; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo; sleep 600",
		strings.Join(env, " "), shellQuote(bin), project)
	tm.run("new-session", "-d", "-s", "dash", "-x", "120", "-y", "40", script)

	// All services show.
	tm.waitFor(time.Minute, "edge", "web", "shop", "catalog", "orders", "users", "accounts")

	// Select shop/catalog (the rows run edge/web, shop/catalog, …).
	tm.keys("j")
	tm.waitFor(10*time.Second, "Replicas · shop/catalog", "Logs · shop/catalog")
	desired := func() int {
		for _, c := range status().Cells {
			for _, s := range c.Services {
				if c.Cell == "shop" && s.Service == "catalog" {
					return s.Desired
				}
			}
		}
		return -1
	}
	before := desired()

	// + grows the service.
	tm.keys("+")
	tm.waitFor(30*time.Second, "scaled shop/catalog to "+strconv.Itoa(before+1))
	eventually(t, time.Minute, func() bool { return desired() == before+1 }, "ps --json shows shop/catalog at %d replicas", before+1)

	// / filters the logs.
	for range 5 {
		resp, err := http.Get("http://127.0.0.1:" + ports[0] + "/catalog/items")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	tm.keys("/")
	tm.literal("items")
	tm.keys("Enter")
	tm.waitFor(30*time.Second, "/items", "GET /items 200")
	if screen := tm.screen(); strings.Contains(screen, "GET /healthz") {
		t.Errorf("the filtered logs still show health checks:\n%s", screen)
	}
	tm.keys("Escape")

	// r restarts, after a confirmation.
	ids := map[string]bool{}
	for _, c := range status().Cells {
		for _, s := range c.Services {
			if c.Cell == "shop" && s.Service == "catalog" {
				for _, r := range s.Replicas {
					ids[r.ContainerID] = true
				}
			}
		}
	}
	tm.keys("r")
	tm.waitFor(10*time.Second, "Restart shop/catalog, one replica at a time?")
	tm.keys("y")
	tm.waitFor(30*time.Second, "rolling restart of shop/catalog started", "rolling restart requested")
	eventually(t, 3*time.Minute, func() bool {
		for _, c := range status().Cells {
			for _, s := range c.Services {
				if c.Cell == "shop" && s.Service == "catalog" {
					if len(s.Replicas) == 0 || s.Ready != s.Desired {
						return false
					}
					for _, r := range s.Replicas {
						if ids[r.ContainerID] {
							return false
						}
					}
					return true
				}
			}
		}
		return false
	}, "every replica of shop/catalog replaced")

	// q quits with status 0 and gives the terminal back.
	tm.keys("q")
	tm.waitFor(10*time.Second, "dash exited 0")
	screen := tm.screen()
	for _, mode := range []string{"icanon", "echo"} {
		if !containsLine(screen, mode) {
			t.Errorf("terminal mode %s not restored:\n%s", mode, screen)
		}
	}
	if strings.Contains(screen, "Replicas ·") {
		t.Errorf("the dashboard is still on screen after it quit:\n%s", screen)
	}
}

// tmux drives a private tmux server.
type tmux struct {
	t      *testing.T
	socket string
}

func (x *tmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (x *tmux) kill() {
	_ = exec.Command("tmux", "-L", x.socket, "kill-server").Run()
}

// keys sends key names (j, Enter, Escape, +) to the dashboard.
func (x *tmux) keys(keys ...string) { x.run(append([]string{"send-keys", "-t", "dash"}, keys...)...) }

// literal types text.
func (x *tmux) literal(s string) { x.run("send-keys", "-t", "dash", "-l", s) }

func (x *tmux) screen() string { return x.run("capture-pane", "-p", "-t", "dash") }

// waitFor waits until the screen shows every one of texts.
func (x *tmux) waitFor(timeout time.Duration, texts ...string) {
	x.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		screen := x.screen()
		missing := ""
		for _, s := range texts {
			if !strings.Contains(screen, s) {
				missing = s
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("the screen does not show %q after %s:\n%s", missing, timeout, screen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func eventually(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ports []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func containsLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
