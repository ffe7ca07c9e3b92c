package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EAttachedUpAfterDown: an attached up whose project another
// terminal removes with down says so and exits, rather than following
// logs of replicas that will never come.
func TestE2EAttachedUpAfterDown(t *testing.T) {
	requireDocker(t)
	echo, err := filepath.Abs(filepath.Join("..", "..", "testdata", "demo", "services", "echo"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := "cell: att\ngateway:\n  port: ${ATT_PORT}\nservices:\n  api:\n    build: {go: " + echo + "}\n    port: 8080\n    health: {http: /healthz, interval: 500ms}\n"
	if err := os.WriteFile(filepath.Join(dir, "cell.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newProject(t, "attached", dir, "ATT_PORT")
	up := startProc(t, p.env, p.args("up", "--wait")...)
	_, ok, why := eventually(90*time.Second, 250*time.Millisecond, func() (bool, string) {
		if _, ended := up.wait(0); ended {
			return true, "up ended"
		}
		st := p.ps(t)
		return st.Ready, "not ready yet"
	})
	if !ok {
		t.Fatalf("the attached up did not get ready: %s\n%s", why, up.errb.String())
	}
	if code, ended := up.wait(0); ended {
		t.Fatalf("the attached up ended (%d) before down:\n%s", code, up.errb.String())
	}
	if _, stderr, code := p.run(t, "down"); code != 0 {
		t.Fatalf("down exited %d:\n%s", code, stderr)
	}
	start := time.Now()
	code, ended := up.wait(30 * time.Second)
	if !ended {
		t.Fatalf("the attached up still runs 30s after down:\n%s", up.errb.String())
	}
	t.Logf("the attached up ended %s after down, exit %d", time.Since(start).Round(time.Millisecond), code)
	if code != 1 {
		t.Errorf("the attached up exited %d, want 1", code)
	}
	if !strings.Contains(up.errb.String(), "was removed") {
		t.Errorf("the attached up did not say the project was removed:\n%s", up.errb.String())
	}
}
