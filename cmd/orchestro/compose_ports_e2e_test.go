//go:build unix

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EComposePublishedPorts: a compose file loads as it is. Each
// service that publishes a port keeps it: every path there reaches that
// service, unprefixed, through the cell's gateway. The first (by name)
// becomes the gateway's own port, the others its listeners.
func TestE2EComposePublishedPorts(t *testing.T) {
	cli := requireDocker(t)
	ver, err := cli.ServerVersion(context.Background())
	if err != nil {
		t.Fatalf("engine version: %v", err)
	}
	if ver.Os != "linux" {
		t.Skipf("needs a linux engine, this one runs %s containers", ver.Os)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := map[string]string{
		"compose.yaml": `name: shop
services:
  api:
    build: ./api
    ports: ["${API_PORT}:8080"]
  web:
    build: ./web
    ports: ["${WEB_PORT}:8080"]
  worker:
    build: ./web
`,
		"src/go.mod":      "module example.com/site\n\ngo 1.22\n",
		"src/main.go":     dfServerSource,
		"api/Dockerfile":  "FROM scratch\nCOPY server /server\nCOPY message.txt /message.txt\nENTRYPOINT [\"/server\"]\n",
		"api/message.txt": "api\n",
		"web/Dockerfile":  "FROM scratch\nCOPY server /server\nCOPY message.txt /message.txt\nENTRYPOINT [\"/server\"]\n",
		"web/message.txt": "web\n",
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
	for _, svc := range []string{"api", "web"} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, svc, "server"), ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+ver.Arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("compile the server: %v\n%s", err, out)
		}
	}
	p := newProject(t, "compose", filepath.Join(dir, "compose.yaml"), "API_PORT", "WEB_PORT")
	if _, stderr, code := p.run(t, "up", "-d", "--wait", "--wait-timeout", "90s"); code != 0 {
		t.Fatalf("up -d --wait exited %d:\n%s", code, stderr)
	}
	for _, tc := range []struct{ port, path, want string }{
		{"API_PORT", "/", "api\n"},
		{"API_PORT", "/orders/7", "api\n"},
		{"WEB_PORT", "/", "web\n"},
		{"WEB_PORT", "/api/anything", "web\n"},
	} {
		url := p.url(tc.port) + tc.path
		var got string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if got = dfGet(url); got == tc.want || time.Now().After(deadline) {
				break
			}
		}
		if got != tc.want {
			t.Errorf("GET %s = %q, want %q", url, got, tc.want)
		}
	}
	// The access log has the request as the service got it, once the
	// gateway has written its batch (within 100 ms).
	var stdout string
	_, ok, _ := eventually(5*time.Second, 100*time.Millisecond, func() (bool, string) {
		stdout, _, _ = p.run(t, "logs", "--tail", "50", "shop/gateway")
		return strings.Contains(stdout, `"path":"/api/anything","status":200`) && strings.Contains(stdout, `"service":"web"`), ""
	})
	if !ok {
		t.Errorf("no access-log line of GET /api/anything to web:\n%s", stdout)
	}
}
