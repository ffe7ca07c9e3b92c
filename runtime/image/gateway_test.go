package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	dockerimage "github.com/docker/docker/api/types/image"

	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

func TestCheckStaticELF(t *testing.T) {
	needGo(t)
	dir := tinyProgram(t, "hi")
	other := "arm64"
	if goruntime.GOARCH == "arm64" {
		other = "amd64"
	}
	type check struct {
		name    string
		path    string
		wantErr string // empty: static and right
	}
	checks := []check{
		{"static binary", compileTiny(t, dir, goruntime.GOARCH, false), ""},
		{"other architecture", compileTiny(t, dir, other, false), "it is built for " + other},
		{"not ELF", writeFile(t, []byte("#!/bin/sh\necho hi\n")), "it is not an ELF executable"},
	}
	// A dynamically linked example: the system's /bin/true, or else a cgo
	// build when a C compiler is there.
	if _, err := os.Stat("/bin/true"); err == nil && goruntime.GOOS == "linux" {
		checks = append(checks, check{"system /bin/true", "/bin/true", "it is dynamically linked, interpreter /"})
	} else if _, err := exec.LookPath("gcc"); err == nil && goruntime.GOOS == "linux" {
		checks = append(checks, check{"cgo binary", compileTiny(t, dir, goruntime.GOARCH, true), "it is dynamically linked"})
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			err := checkStaticELF(c.path, goruntime.GOARCH)
			if c.wantErr == "" {
				if err != nil {
					t.Errorf("checkStaticELF: %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("checkStaticELF error = %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestBuildGatewayImage(t *testing.T) {
	needGo(t)
	bin := compileTiny(t, tinyProgram(t, "gateway"), goruntime.GOARCH, false)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	wantTag := "orchestro-gateway:" + hex.EncodeToString(sum[:])[:12]

	eng := enginetest.NewFake()
	tag, err := buildGatewayImage(t.Context(), eng, bin, nil, nil)
	if err != nil {
		t.Fatalf("buildGatewayImage: %v", err)
	}
	if tag != wantTag {
		t.Errorf("tag = %s, want %s", tag, wantTag)
	}
	b := eng.Builds()
	if len(b) != 1 {
		t.Fatalf("got %d builds, want 1", len(b))
	}
	if got := b[0].Entrypoint; len(got) != 2 || got[0] != "/orchestro" || got[1] != "gateway" {
		t.Errorf("entrypoint = %q, want [/orchestro gateway]", got)
	}
	if string(b[0].Files["orchestro"]) != string(data) {
		t.Error("the image does not hold the binary")
	}
	if got := b[0].Options.Labels[engine.LabelManaged]; got != "true" {
		t.Errorf("label %s = %q, want true", engine.LabelManaged, got)
	}

	if again, err := buildGatewayImage(t.Context(), eng, bin, nil, nil); err != nil || again != tag {
		t.Fatalf("second buildGatewayImage = %s, %v; want %s", again, err, tag)
	}
	if len(eng.Builds()) != 1 {
		t.Errorf("an existing gateway image was built again")
	}
}

func TestBuildGatewayImageRefusesDynamicBinary(t *testing.T) {
	if _, err := os.Stat("/bin/true"); err != nil || goruntime.GOOS != "linux" {
		t.Skip("needs the dynamically linked /bin/true of a linux host")
	}
	eng := enginetest.NewFake()
	_, err := buildGatewayImage(t.Context(), eng, "/bin/true", nil, nil)
	if err == nil {
		t.Fatal("buildGatewayImage accepted a dynamic binary")
	}
	for _, want := range []string{
		"the orchestro binary at /bin/true is not a static linux/" + goruntime.GOARCH + " executable",
		"dynamically linked",
		"cannot run as the gateway",
		"CGO_ENABLED=0 GOOS=linux",
		"--gateway-image/ORCHESTRO_GATEWAY_IMAGE",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

func TestGatewayImageOverride(t *testing.T) {
	t.Run("flag wins over environment, local image is not pulled", func(t *testing.T) {
		t.Setenv(EnvGatewayImage, "example/from-env:1")
		eng := enginetest.NewFake()
		eng.AddImage("example/gateway:2", nil)
		ref, err := Gateway(t.Context(), eng, "example/gateway:2", nil)
		if err != nil || ref != "example/gateway:2" {
			t.Fatalf("Gateway = %s, %v; want example/gateway:2", ref, err)
		}
		for _, c := range eng.Calls() {
			if strings.HasPrefix(c, "ImagePull") || strings.HasPrefix(c, "ImageBuild") {
				t.Errorf("unexpected call %s", c)
			}
		}
	})
	t.Run("environment, pulled when missing", func(t *testing.T) {
		t.Setenv(EnvGatewayImage, "example/from-env:1")
		eng := enginetest.NewFake()
		eng.SetPullable("example/from-env:1")
		ref, err := Gateway(t.Context(), eng, "", nil)
		if err != nil || ref != "example/from-env:1" {
			t.Fatalf("Gateway = %s, %v; want example/from-env:1", ref, err)
		}
		if _, err := eng.ImageInspect(t.Context(), ref); err != nil {
			t.Errorf("the image was not pulled: %v", err)
		}
	})
	t.Run("missing and not pullable", func(t *testing.T) {
		t.Setenv(EnvGatewayImage, "")
		eng := enginetest.NewFake()
		_, err := Gateway(t.Context(), eng, "example/x:1", nil)
		want := "gateway image: image example/x:1 is not present locally and could not be pulled: "
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error = %v, want it to start with %q", err, want)
		}
	})
}

func TestEnsureImage(t *testing.T) {
	t.Run("present", func(t *testing.T) {
		eng := enginetest.NewFake()
		eng.AddImage("example/x", nil)
		if err := Ensure(t.Context(), eng, "example/x:latest", nil); err != nil {
			t.Fatal(err)
		}
		if calls := eng.Calls(); len(calls) != 1 || calls[0] != "ImageInspect example/x:latest" {
			t.Errorf("calls = %q, want only the inspect", calls)
		}
	})
	t.Run("inspect fails", func(t *testing.T) {
		eng := enginetest.NewFake()
		boom := errors.New("boom")
		eng.SetError("ImageInspect", boom)
		err := Ensure(t.Context(), eng, "example/x:1", nil)
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "inspect image example/x:1: ") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("pull stream reports an error", func(t *testing.T) {
		eng := &pullFailEngine{enginetest.NewFake()}
		err := Ensure(t.Context(), eng, "example/x:1", nil)
		want := "image example/x:1 is not present locally and could not be pulled: manifest unknown"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %q", err, want)
		}
	})
	t.Run("pull refused", func(t *testing.T) {
		eng := enginetest.NewFake()
		err := Ensure(t.Context(), eng, "example/x:1", nil)
		if !cerrdefs.IsNotFound(err) {
			t.Errorf("error = %v, want a not-found error", err)
		}
	})
}

// pullFailEngine reports a pull failure inside the pull's message stream,
// as registries do for a missing tag.
type pullFailEngine struct{ *enginetest.Fake }

func (pullFailEngine) ImagePull(context.Context, string, dockerimage.PullOptions) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(`{"status":"Pulling from example/x"}{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`)), nil
}
