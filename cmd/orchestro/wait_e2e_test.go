package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EUpWaitFailsFast: `up -d --wait` gives up as soon as a service
// cannot start or crash-loops, exit 3, naming the service, the reason and
// (for a crash loop) the last lines it printed, long before its
// --wait-timeout.
func TestE2EUpWaitFailsFast(t *testing.T) {
	for _, tc := range []struct {
		name    string
		service string // the service's keys besides build
		want    []string
	}{
		{
			name:    "bad entrypoint",
			service: `entrypoint: ["/nope"]`,
			want:    []string{"crash/api cannot start", "/nope"},
		},
		{
			// The crasher of TestE2ECrashLoop prints two lines and exits 1.
			name:    "crash loop",
			service: `replicas: 1`,
			want:    []string{"crash/api is crash-looping", "the last exited 1", "crasher: no config, giving up"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{
				"cell.yaml":       "cell: crash\ngateway:\n  port: ${CRASH_PORT}\nservices:\n  api:\n    build: {go: ./crasher}\n    " + tc.service + "\n",
				"crasher/go.mod":  crashloopFiles["crasher/go.mod"],
				"crasher/main.go": crashloopFiles["crasher/main.go"],
			}
			for name, data := range files {
				path := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := newProject(t, "crash", dir, "CRASH_PORT")
			start := time.Now()
			_, stderr, code := p.run(t, "up", "-d", "--wait", "--wait-timeout", "90s")
			took := time.Since(start)
			t.Logf("up -d --wait gave up after %s:\n%s", took.Round(time.Millisecond), stderr)
			if code != 3 {
				t.Errorf("up exited %d, want 3", code)
			}
			if took > 80*time.Second {
				t.Errorf("up waited for its timeout rather than failing fast")
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("up's error does not say %q", w)
				}
			}
		})
	}
}
