package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// TestDockerEngineReadsVersionOnce: the engine answers a version request by
// running runc and docker-init, and a command asks once per image it
// builds, so the engine is asked once; a failed request is not kept.
func TestDockerEngineReadsVersionOnce(t *testing.T) {
	var versions atomic.Int64
	var fail atomic.Bool
	fail.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			_, _ = w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/version"):
			versions.Add(1)
			if fail.Swap(false) {
				http.Error(w, `{"message":"busy"}`, http.StatusInternalServerError)
				return
			}
			_ = json.NewEncoder(w).Encode(types.Version{Os: "linux", Arch: "amd64", APIVersion: "1.41"})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("DOCKER_HOST", "tcp://"+strings.TrimPrefix(srv.URL, "http://"))
	eng, err := engine.NewDockerEngine(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, _, err := engine.Platform(t.Context(), eng); err == nil {
		t.Fatal("Platform succeeded although the engine failed to answer")
	}
	for range 3 {
		goos, goarch, err := engine.Platform(t.Context(), eng)
		if err != nil || goos != "linux" || goarch != "amd64" {
			t.Fatalf("Platform = %s/%s, %v; want linux/amd64", goos, goarch, err)
		}
	}
	if n := versions.Load(); n != 2 {
		t.Errorf("the engine was asked for its version %d times, want 2 (the failed request and one more)", n)
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
