//go:build unix

package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDashE2E runs the real binary's dashboard in tmux against a running
// demo project: every service shows; + grows a service (checked with ps
// --json); / filters the logs; r restarts a service after a confirmation,
// with no failed request under load; q exits 0 and gives the terminal back.
func TestDashE2E(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed; .ci/run installs it")
		}
		t.Skip("tmux is not installed")
	}
	p := newProject(t, "dash", demoDir(t), demoPorts...)
	if _, stderr, code := p.run(t, "up", "-d", "--wait", "--wait-timeout", "3m"); code != 0 {
		t.Fatalf("up -d --wait exited %d:\n%s", code, stderr)
	}
	catalog := func() psService {
		s, ok := p.ps(t).service("shop", "catalog")
		if !ok {
			t.Fatal("ps --json has no shop/catalog")
		}
		return s
	}

	tm := &dashTmux{t: t, socket: "orchestro-" + p.name}
	t.Cleanup(tm.kill)
	// A shell runs the dashboard, then shows how it ended and whether the
	// terminal is back in its usual (canonical, echoing) mode.
	script := fmt.Sprintf("env %s %s -f %s -p %s dash; echo \"dash exited $?\"; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo; sleep 600",
		strings.Join(p.env, " "), shellQuote(binary(t)), shellQuote(p.spec), p.name)
	tm.run("new-session", "-d", "-s", "dash", "-x", "120", "-y", "40", script)

	// All services show.
	tm.waitFor(time.Minute, "edge", "web", "shop", "catalog", "orders", "users", "accounts")

	// Select shop/catalog (the rows run checkout/inventory,
	// checkout/notify, checkout/payments, edge/web, shop/catalog, …).
	tm.keys("j", "j", "j", "j")
	tm.waitFor(10*time.Second, "Replicas · shop/catalog", "Logs · shop/catalog")
	before := catalog().Desired

	// + grows the service.
	tm.keys("+")
	tm.waitFor(30*time.Second, "scaled shop/catalog to "+strconv.Itoa(before+1))
	if _, ok, why := eventually(time.Minute, 500*time.Millisecond, func() (bool, string) {
		s := catalog()
		return s.Desired == before+1 && s.Ready == before+1, formatCount(s)
	}); !ok {
		t.Fatalf("ps --json does not show shop/catalog at %d replicas: %s", before+1, why)
	}

	// / filters the logs.
	for range 5 {
		resp, err := http.Get(p.url("SHOP_PORT") + "/catalog/items")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	tm.keys("/")
	tm.literal("items")
	tm.keys("Enter")
	tm.waitFor(30*time.Second, "/items", "GET /items 200")
	if screen := tm.screen(); strings.Contains(screen, "GET /catalog/x") {
		t.Errorf("the filtered logs show other lines:\n%s", screen)
	}
	tm.keys("Escape")
	// A key right after Escape would reach the terminal as one Alt
	// sequence; give the dashboard a moment to take Escape alone.
	time.Sleep(time.Second)

	// r restarts, after a confirmation, with no failed request.
	old := map[string]bool{}
	for _, r := range catalog().Replicas {
		old[r.ContainerID] = true
	}
	load := gwStartLoad(t, p.url("SHOP_PORT")+"/catalog/", 2, 90*time.Second)
	tm.keys("r")
	tm.waitFor(10*time.Second, "Restart shop/catalog, one replica at a time?")
	tm.keys("y")
	tm.waitFor(30*time.Second, "replicas requested")
	took, ok, why := eventually(3*time.Minute, 500*time.Millisecond, func() (bool, string) {
		s := catalog()
		if len(s.Replicas) == 0 || s.Ready != s.Desired || len(s.Replicas) != s.Desired {
			return false, formatCount(s)
		}
		for _, r := range s.Replicas {
			if old[r.ContainerID] {
				return false, r.Name + " is still the old one"
			}
		}
		return true, ""
	})
	res := load.stop()
	if !ok {
		t.Fatalf("shop/catalog was not restarted: %s", why)
	}
	t.Logf("restart from the dashboard: every replica new after %.1fs; %s", took.Seconds(), res)
	gwCheckNoFailures(t, "restart from the dashboard", res)

	// q quits with status 0 and gives the terminal back.
	tm.keys("q")
	tm.waitFor(10*time.Second, "dash exited 0")
	// stty prints after the echo: wait for both of its lines, set or not.
	screen := tm.screen()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); screen = tm.screen() {
		if (hasLine(screen, "icanon") || hasLine(screen, "-icanon")) && (hasLine(screen, "echo") || hasLine(screen, "-echo")) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, mode := range []string{"icanon", "echo"} {
		if !hasLine(screen, mode) {
			t.Errorf("terminal mode %s not restored:\n%s", mode, screen)
		}
	}
	if strings.Contains(screen, "Replicas ·") {
		t.Errorf("the dashboard is still on screen after it quit:\n%s", screen)
	}
}

// dashTmux drives a private tmux server.
type dashTmux struct {
	t      *testing.T
	socket string
}

func (x *dashTmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (x *dashTmux) kill() { _ = exec.Command("tmux", "-L", x.socket, "kill-server").Run() }

// keys sends key names (j, Enter, Escape, +) to the dashboard.
func (x *dashTmux) keys(keys ...string) {
	x.run(append([]string{"send-keys", "-t", "dash"}, keys...)...)
}

// literal types text.
func (x *dashTmux) literal(s string) { x.run("send-keys", "-t", "dash", "-l", s) }

func (x *dashTmux) screen() string { return x.run("capture-pane", "-p", "-t", "dash") }

// waitFor waits until the screen shows every one of texts.
func (x *dashTmux) waitFor(timeout time.Duration, texts ...string) {
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

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func hasLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
