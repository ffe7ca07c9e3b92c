//go:build unix

package main

// End-to-end test of Dockerfile services following their source: an edit
// of a file in the build context is served after the next `up -d --wait`,
// with no --build, while an unchanged context (or a change .dockerignore
// hides) rebuilds and rolls nothing. Run it with
//
//	go test -v -run TestE2EDockerfileRebuild -count=1 ./cmd/orchestro/

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dfServerSource is a tiny static HTTP server: every path but /healthz
// answers with the contents of /message.txt, read per request.
const dfServerSource = `package main

import (
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile("/message.txt")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	http.ListenAndServe(":8080", nil)
}
`

// dfCell is the project: one cell, one Dockerfile service.
const dfCell = `cell: web
gateway:
  port: ${WEB_PORT}
services:
  site:
    build: ./site
    port: 8080
    health: {http: /healthz, interval: 500ms, timeout: 1s, retries: 2}
`

// writeDockerfileProject writes the project into a new directory: the cell
// file, and the site's build context holding the server compiled for the
// engine's architecture, a FROM scratch Dockerfile and message.txt.
func writeDockerfileProject(t *testing.T, goarch string) (dir, site string) {
	t.Helper()
	dir = t.TempDir()
	site = filepath.Join(dir, "site")
	src := filepath.Join(dir, "src")
	for _, d := range []string{site, src} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(dir, "cell.yaml"):       dfCell,
		filepath.Join(src, "go.mod"):          "module example.com/site\n\ngo 1.22\n",
		filepath.Join(src, "main.go"):         dfServerSource,
		filepath.Join(site, "Dockerfile"):     "FROM scratch\nCOPY server /server\nCOPY message.txt /message.txt\nENTRYPOINT [\"/server\"]\n",
		filepath.Join(site, "message.txt"):    "version 1\n",
		filepath.Join(site, ".dockerignore"):  "*.tmp\n",
		filepath.Join(site, "scratchpad.tmp"): "notes\n",
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(site, "server"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compile the site server: %v\n%s", err, out)
	}
	return dir, site
}

// dfGet returns the body of a GET, or the error as text.
func dfGet(url string) string {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

func TestE2EDockerfileRebuild(t *testing.T) {
	cli := requireDocker(t)
	ver, err := cli.ServerVersion(context.Background())
	if err != nil {
		t.Fatalf("engine version: %v", err)
	}
	if ver.Os != "linux" {
		t.Skipf("needs a linux engine, this one runs %s containers", ver.Os)
	}
	dir, site := writeDockerfileProject(t, ver.Arch)
	p := newProject(t, "dfbuild", filepath.Join(dir, "cell.yaml"), "WEB_PORT")
	url := p.url("WEB_PORT") + "/site/"
	tagRE := regexp.MustCompile(`^` + regexp.QuoteMeta(p.name) + `-web-site:[0-9a-f]{12}$`)

	// replicas returns the site's replica container IDs and the image
	// reference they were created from.
	replicas := func() (map[string]string, string) {
		t.Helper()
		ids := map[string]string{}
		image := ""
		for _, c := range listContainers(t, cli, p.name, labelRole+"=replica") {
			ids[containerName(c)] = c.ID
			image = c.Image
		}
		return ids, image
	}
	up := func(what string) {
		t.Helper()
		start := time.Now()
		_, stderr, code := p.run(t, "up", "-d", "--wait", "--wait-timeout", "90s")
		t.Logf("up -d --wait (%s): %s", what, time.Since(start).Round(time.Millisecond))
		if code != 0 {
			t.Fatalf("up -d --wait (%s) exited %d, want 0:\n%s", what, code, stderr)
		}
	}
	// serves waits until the gateway answers want several times in a row:
	// replicas of the old image may be draining for a moment after --wait.
	serves := func(want string) {
		t.Helper()
		first := dfGet(url)
		took, ok, why := eventually(15*time.Second, 100*time.Millisecond, func() (bool, string) {
			for range 5 {
				if got := dfGet(url); got != want {
					return false, "the gateway answered " + strings.TrimSpace(got)
				}
			}
			return true, ""
		})
		if !ok {
			t.Fatalf("%s does not serve %q after up -d --wait: %s", url, want, why)
		}
		if first != want {
			t.Logf("the first answer after up -d --wait was %q; %q after %s", first, want, took.Round(time.Millisecond))
		}
	}

	up("first")
	serves("version 1\n")
	ids1, image1 := replicas()
	if !tagRE.MatchString(image1) {
		t.Errorf("the replicas run %s, want %s-web-site:<content hash>", image1, p.name)
	}

	// Nothing changed, or only a file .dockerignore leaves out: the same
	// image, the same replicas.
	up("unchanged")
	if err := os.WriteFile(filepath.Join(site, "scratchpad.tmp"), []byte("more notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up("ignored file edited")
	time.Sleep(time.Second) // a wrong roll would have started by now
	if ids, image := replicas(); image != image1 {
		t.Errorf("unchanged context: the replicas run %s, want still %s", image, image1)
	} else if same, diff := sameIDs(ids1, ids); !same {
		t.Errorf("unchanged context: the replicas changed: %s", diff)
	}

	// The source changes: the next up builds and serves it.
	if err := os.WriteFile(filepath.Join(site, "message.txt"), []byte("version 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up("source edited")
	serves("version 2\n")
	ids2, image2 := replicas()
	if !tagRE.MatchString(image2) || image2 == image1 {
		t.Errorf("after the edit the replicas run %s, want a new %s-web-site:<content hash> (was %s)", image2, p.name, image1)
	}
	if same, _ := sameIDs(ids1, ids2); same {
		t.Errorf("after the edit the replicas are still %v", ids2)
	}
}
