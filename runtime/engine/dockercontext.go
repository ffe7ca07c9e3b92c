package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/docker/client"
)

// Docker CLI contexts: a name for an engine address (and its TLS
// material), chosen with DOCKER_CONTEXT or `docker context use`. The SDK
// reads DOCKER_HOST only, so orchestro reads the CLI's context store, as
// docker and docker compose do, and DOCKER_HOST wins over a context.

// contextOption returns the client option that points the SDK at the
// engine of the Docker context in use, or nil when none is (no context
// named, "default", or DOCKER_HOST set). configDir is the Docker CLI's
// configuration directory.
func contextOption(configDir string, getenv func(string) string) (client.Opt, string, error) {
	if getenv(client.EnvOverrideHost) != "" {
		return nil, "", nil
	}
	name := getenv("DOCKER_CONTEXT")
	if name == "" {
		data, err := os.ReadFile(filepath.Join(configDir, "config.json"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("read the Docker CLI configuration: %w", err)
		}
		var cfg struct {
			CurrentContext string `json:"currentContext"`
		}
		if len(data) > 0 {
			if err := json.Unmarshal(data, &cfg); err != nil {
				return nil, "", fmt.Errorf("read %s: %w", filepath.Join(configDir, "config.json"), err)
			}
		}
		name = cfg.CurrentContext
	}
	if name == "" || name == "default" {
		return nil, "", nil
	}
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:])
	metaPath := filepath.Join(configDir, "contexts", "meta", id, "meta.json")
	data, err := os.ReadFile(metaPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("docker context %q does not exist (see `docker context ls`)", name)
		}
		return nil, "", fmt.Errorf("read docker context %q: %w", name, err)
	}
	var meta struct {
		Endpoints map[string]struct {
			Host          string `json:"Host"`
			SkipTLSVerify bool   `json:"SkipTLSVerify"`
		} `json:"Endpoints"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, "", fmt.Errorf("read docker context %q (%s): %w", name, metaPath, err)
	}
	ep, ok := meta.Endpoints["docker"]
	if !ok || ep.Host == "" {
		return nil, "", fmt.Errorf("docker context %q names no Docker endpoint", name)
	}
	if strings.HasPrefix(ep.Host, "ssh://") {
		return nil, "", fmt.Errorf("docker context %q reaches its engine over ssh (%s), which orchestro does not do; forward the socket (ssh -L) and set DOCKER_HOST", name, ep.Host)
	}
	tlsDir := filepath.Join(configDir, "contexts", "tls", id, "docker")
	ca, cert, key := filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
	opts := []client.Opt{client.WithHost(ep.Host)}
	if _, err := os.Stat(cert); err == nil {
		if ep.SkipTLSVerify {
			ca = ""
		}
		opts = append(opts, client.WithTLSClientConfig(ca, cert, key))
	}
	return func(c *client.Client) error {
		for _, o := range opts {
			if err := o(c); err != nil {
				return err
			}
		}
		return nil
	}, name, nil
}

// dockerConfigDir is the Docker CLI's configuration directory: DOCKER_CONFIG,
// else ~/.docker.
func dockerConfigDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker")
}
