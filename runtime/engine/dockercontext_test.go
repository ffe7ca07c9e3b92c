package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/client"
)

// writeContext stores a Docker CLI context as `docker context create` does.
func writeContext(t *testing.T, dir, name, host string) {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	meta := filepath.Join(dir, "contexts", "meta", hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(meta, 0o755); err != nil {
		t.Fatal(err)
	}
	data := `{"Name":"` + name + `","Metadata":{},"Endpoints":{"docker":{"Host":"` + host + `","SkipTLSVerify":false}}}`
	if err := os.WriteFile(filepath.Join(meta, "meta.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestContextOption(t *testing.T) {
	dir := t.TempDir()
	writeContext(t, dir, "remote", "tcp://10.1.2.3:2375")
	writeContext(t, dir, "tunnel", "ssh://me@manager")
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	host := func(opt client.Opt) string {
		t.Helper()
		c, err := client.NewClientWithOpts(opt)
		if err != nil {
			t.Fatal(err)
		}
		return c.DaemonHost()
	}
	opt, name, err := contextOption(dir, env(map[string]string{"DOCKER_CONTEXT": "remote"}))
	if err != nil || opt == nil || name != "remote" || host(opt) != "tcp://10.1.2.3:2375" {
		t.Fatalf("DOCKER_CONTEXT=remote: %v %q %v", opt != nil, name, err)
	}
	if opt, _, err := contextOption(dir, env(map[string]string{"DOCKER_CONTEXT": "remote", "DOCKER_HOST": "unix:///x.sock"})); opt != nil || err != nil {
		t.Errorf("DOCKER_HOST must win over DOCKER_CONTEXT: %v %v", opt != nil, err)
	}
	if opt, _, err := contextOption(dir, env(nil)); opt != nil || err != nil {
		t.Errorf("no context chosen: %v %v", opt != nil, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"currentContext":"remote"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if opt, name, err := contextOption(dir, env(nil)); err != nil || name != "remote" || host(opt) != "tcp://10.1.2.3:2375" {
		t.Errorf("currentContext in config.json: %q %v", name, err)
	}
	if opt, _, err := contextOption(dir, env(map[string]string{"DOCKER_CONTEXT": "default"})); opt != nil || err != nil {
		t.Errorf("DOCKER_CONTEXT=default is the environment's engine: %v %v", opt != nil, err)
	}
	for ctxName, want := range map[string]string{"missing": `docker context "missing" does not exist`, "tunnel": "over ssh"} {
		if _, _, err := contextOption(dir, env(map[string]string{"DOCKER_CONTEXT": ctxName})); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DOCKER_CONTEXT=%s: %v, want an error saying %q", ctxName, err, want)
		}
	}
}
