package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/system"

	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

func TestNewDockerEngineUnreachable(t *testing.T) {
	dead := "unix://" + filepath.Join(t.TempDir(), "docker.sock")
	tests := []struct {
		name     string
		host     string
		contains []string
	}{
		{"missing socket", dead, []string{"cannot reach the Docker engine at " + dead, "does not exist", "start Docker"}},
		{"refused port", "tcp://127.0.0.1:1", []string{"at tcp://127.0.0.1:1", "connection refused", "set DOCKER_HOST"}},
		{"malformed address", "not-an-address", []string{`"not-an-address"`, "DOCKER_HOST"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.host)
			start := time.Now()
			eng, err := engine.NewDockerEngine(t.Context())
			elapsed := time.Since(start)
			if err == nil {
				_ = eng.Close()
				t.Fatal("NewDockerEngine succeeded, want an error")
			}
			if !errors.Is(err, engine.ErrUnreachable) {
				t.Errorf("error %v does not wrap ErrUnreachable", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, want := range tt.contains {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if elapsed > 500*time.Millisecond {
				t.Errorf("NewDockerEngine took %s, want well under a second", elapsed)
			}
		})
	}
}

// platformEngine reports a fixed version and info.
type platformEngine struct {
	*enginetest.Fake
	version types.Version
	info    system.Info
}

func (e platformEngine) ServerVersion(context.Context) (types.Version, error) { return e.version, nil }
func (e platformEngine) Info(context.Context) (system.Info, error)            { return e.info, nil }

func TestPlatform(t *testing.T) {
	tests := []struct {
		name       string
		version    types.Version
		info       system.Info
		wantOS     string
		wantArch   string
		wantErrSub string
	}{
		{"from version", types.Version{Os: "linux", Arch: "arm64"}, system.Info{}, "linux", "arm64", ""},
		{"uname names from info", types.Version{}, system.Info{OSType: "linux", Architecture: "x86_64"}, "linux", "amd64", ""},
		{"aarch64", types.Version{Os: "linux", Arch: "aarch64"}, system.Info{}, "linux", "arm64", ""},
		{"nothing reported", types.Version{}, system.Info{}, "", "", "reports no OS or architecture"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := platformEngine{Fake: enginetest.NewFake(), version: tt.version, info: tt.info}
			goos, goarch, err := engine.Platform(t.Context(), eng)
			if tt.wantErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrSub) {
					t.Fatalf("Platform error = %v, want one containing %q", err, tt.wantErrSub)
				}
				return
			}
			if err != nil {
				t.Fatalf("Platform: %v", err)
			}
			if goos != tt.wantOS || goarch != tt.wantArch {
				t.Errorf("Platform = %s/%s, want %s/%s", goos, goarch, tt.wantOS, tt.wantArch)
			}
		})
	}
}

func TestNewDockerEngineReal(t *testing.T) {
	eng := enginetest.NeedEngine(t)
	goos, goarch, err := engine.Platform(t.Context(), eng)
	if err != nil {
		t.Fatalf("Platform: %v", err)
	}
	if goos != "linux" || goarch == "" {
		t.Errorf("Platform = %s/%s, want linux and an architecture", goos, goarch)
	}
}
