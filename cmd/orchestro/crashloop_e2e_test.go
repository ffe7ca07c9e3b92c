//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// crashloopFiles is a one-cell project of two broken services: crasher
// prints two lines and exits 1; nope cannot start at all, its entrypoint
// does not exist.
var crashloopFiles = map[string]string{
	"cell.yaml": `cell: cl
gateway:
  port: ${CL_PORT}
services:
  crasher:
    build: {go: ./crasher}
    replicas: 1
  nope:
    build: {go: ./crasher}
    entrypoint: ["/nope"]
    replicas: 1
`,
	"crasher/go.mod": "module crasher\n\ngo 1.22\n",
	"crasher/main.go": `package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("crasher: starting")
	fmt.Fprintln(os.Stderr, "crasher: no config, giving up")
	os.Exit(1)
}
`,
}

// TestE2ECrashLoop: a replica that exits and a replica that cannot start
// are recreated with a growing backoff, not in a tight loop; ps shows both
// services in crashloop with the exit code or the start error; logs shows
// the output of the exited replicas, marked as such, for the service and
// for one replica.
func TestE2ECrashLoop(t *testing.T) {
	requireDocker(t)
	dir := t.TempDir()
	for name, data := range crashloopFiles {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := newProject(t, "crashloop", filepath.Join(dir, "cell.yaml"), "CL_PORT")
	if _, stderr, code := p.run(t, "up", "-d"); code != 0 {
		t.Fatalf("up -d exited %d:\n%s", code, stderr)
	}
	start := time.Now()

	var crasher, nope psServiceCrash
	took, ok, why := eventually(45*time.Second, 500*time.Millisecond, func() (bool, string) {
		crasher, nope = crashStatus(t, p, "crasher"), crashStatus(t, p, "nope")
		if crasher.Health != "crashloop" || nope.Health != "crashloop" {
			return false, fmt.Sprintf("crasher is %s, nope is %s", crasher.Health, nope.Health)
		}
		return true, ""
	})
	if !ok {
		t.Fatalf("the services were not in crashloop within 45s: %s", why)
	}
	t.Logf("both services in crashloop %s after up returned", took.Round(time.Millisecond))
	if crasher.LastExitCode == nil || *crasher.LastExitCode != 1 || crasher.LastError != "" {
		t.Errorf("crasher: last exit code %v, last error %q; want exit code 1", crasher.LastExitCode, crasher.LastError)
	}
	if nope.LastExitCode != nil || !strings.Contains(nope.LastError, "/nope") {
		t.Errorf("nope: last exit code %v, last error %q; want the start error naming /nope", nope.LastExitCode, nope.LastError)
	}

	stdout, stderr, code := p.run(t, "ps")
	if code != 0 {
		t.Fatalf("ps exited %d:\n%s", code, stderr)
	}
	for _, want := range []string{"crashloop(exit=1)", "crashloop(start-failed)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("ps does not show %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "cl/nope: crashloop") || !strings.Contains(stderr, "/nope") {
		t.Errorf("ps does not explain nope's crash loop on stderr:\n%s", stderr)
	}

	// The backoff: over 15 seconds more, each service fails a handful of
	// times (1s, 2s, 4s, 8s apart), never dozens.
	time.Sleep(15 * time.Second)
	elapsed := time.Since(start)
	for _, svc := range []string{"crasher", "nope"} {
		var failures int
		var lines []string
		for _, e := range gwEvents(t, p, "cl", svc, start.Add(-time.Minute)) {
			if strings.Contains(e, " error: ") || strings.Contains(e, " exited: ") {
				failures++
			}
			lines = append(lines, e)
		}
		t.Logf("%s: %d failures in %s", svc, failures, elapsed.Round(time.Second))
		if failures < 3 || failures > 10 {
			t.Errorf("%s failed %d times in %s, want 3 to 10 with the backoff; events:\n  %s", svc, failures, elapsed.Round(time.Second), strings.Join(lines, "\n  "))
		}
	}

	for _, args := range [][]string{{"logs", "cl/crasher"}, {"logs", "cl/crasher-1"}, {"logs"}} {
		stdout, stderr, code := p.run(t, args...)
		if code != 0 {
			t.Errorf("%s exited %d:\n%s", strings.Join(args, " "), code, stderr)
			continue
		}
		// The prefix column is as wide as the longest prefix.
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^cl/crasher-1 \(exited 1\) *│ crasher: starting$`),
			regexp.MustCompile(`(?m)^cl/crasher-1 \(exited 1\) *│ crasher: no config, giving up$`),
		} {
			if !want.MatchString(stdout) {
				t.Errorf("%s does not show a line matching %s:\n%s", strings.Join(args, " "), want, stdout)
			}
		}
	}
	stdout, _, _ = p.run(t, "logs", "cl/nope")
	if !strings.Contains(stdout, "cl/nope-1 (never started) │") || !strings.Contains(stdout, "/nope") {
		t.Errorf("logs cl/nope does not say the replica never started:\n%s", stdout)
	}
}

// psServiceCrash is the crash loop part of a service in `ps --json`.
type psServiceCrash struct {
	Health       string `json:"health"`
	Failures     int    `json:"failures"`
	LastExitCode *int   `json:"last_exit_code"`
	LastError    string `json:"last_error"`
}

// crashStatus reads one service of cell cl from `ps --json`.
func crashStatus(t *testing.T, p *project, service string) psServiceCrash {
	t.Helper()
	stdout, stderr, code := p.run(t, "ps", "--json")
	if code != 0 {
		t.Fatalf("ps --json exited %d:\n%s", code, stderr)
	}
	var st struct {
		Cells []struct {
			Cell     string `json:"cell"`
			Services []struct {
				Service string `json:"service"`
				psServiceCrash
			} `json:"services"`
		} `json:"cells"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("decode ps --json: %v\n%s", err, stdout)
	}
	for _, c := range st.Cells {
		for _, s := range c.Services {
			if c.Cell == "cl" && s.Service == service {
				return s.psServiceCrash
			}
		}
	}
	return psServiceCrash{}
}
