package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	dockerimage "github.com/docker/docker/api/types/image"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

func TestProbeTest(t *testing.T) {
	tests := []struct {
		name  string
		h     *cellspec.Health
		port  int
		want  []string
		probe bool
	}{
		{"none", nil, 8080, nil, false},
		{"empty", &cellspec.Health{}, 8080, nil, false},
		{"http", &cellspec.Health{HTTP: "/healthz", Timeout: cellspec.Duration(2 * time.Second)}, 8080,
			[]string{"CMD", "/.orchestro/orchestro", "probe", "http", "8080", "/healthz", "2s"}, true},
		{"http path without slash, default timeout", &cellspec.Health{HTTP: "ready?deep=1"}, 3000,
			[]string{"CMD", "/.orchestro/orchestro", "probe", "http", "3000", "/ready?deep=1", "1s"}, true},
		{"tcp", &cellspec.Health{TCP: true, Timeout: cellspec.Duration(1500 * time.Millisecond)}, 5432,
			[]string{"CMD", "/.orchestro/orchestro", "probe", "tcp", "5432", "1.5s"}, true},
		{"exec", &cellspec.Health{Exec: []string{"pg_isready", "-U", "app"}, Timeout: cellspec.Duration(time.Second)}, 5432,
			[]string{"CMD", "pg_isready", "-U", "app"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ProbeTest(tt.h, tt.port)); diff != "" {
				t.Errorf("ProbeTest (-want +got):\n%s", diff)
			}
			if got := NeedsProbe(tt.h); got != tt.probe {
				t.Errorf("NeedsProbe = %v, want %v", got, tt.probe)
			}
		})
	}
}

// probeHash is the hash WithProbe puts in a probe image's tag.
func probeHash(baseID, gwID, bin string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\nbase %s\ngateway %s\nbinary %s\n", probeLayout, baseID, gwID, bin))
	return hex.EncodeToString(sum[:])[:12]
}

func TestWithProbe(t *testing.T) {
	ctx := t.Context()
	eng := enginetest.NewFake()
	baseLabels := map[string]string{
		engine.LabelProject: "demo",
		engine.LabelManaged: "true",
		"org.example.team":  "shop",
	}
	baseID := eng.AddImage("demo-shop-catalog:3f2a9c1d", baseLabels)
	gwID := eng.AddImage("orchestro-gateway:0123456789ab", map[string]string{engine.LabelManaged: "true"})

	var out strings.Builder
	tag, err := WithProbe(ctx, eng, "demo-shop-catalog:3f2a9c1d", "orchestro-gateway:0123456789ab", &out)
	if err != nil {
		t.Fatalf("WithProbe: %v", err)
	}
	if want := "demo-shop-catalog:3f2a9c1d-probe-" + probeHash(baseID, gwID, "/orchestro"); tag != want {
		t.Errorf("tag = %s, want %s", tag, want)
	}
	builds := eng.Builds()
	if len(builds) != 1 {
		t.Fatalf("%d builds, want 1", len(builds))
	}
	b := builds[0]
	wantFiles := map[string][]byte{"Dockerfile": []byte("FROM " + baseID + "\nCOPY --from=" + gwID + " /orchestro /.orchestro/orchestro\n")}
	if diff := cmp.Diff(wantFiles, b.Files); diff != "" {
		t.Errorf("build context (-want +got):\n%s", diff)
	}
	// The base's labels come with FROM; setting them again would cost a
	// build step each.
	if len(b.Options.Labels) != 0 {
		t.Errorf("build labels = %v, want none: the base is managed and labelled already", b.Options.Labels)
	}
	if b.Options.Version != build.BuilderV1 || len(b.Options.Tags) != 1 || b.Options.Tags[0] != tag {
		t.Errorf("build options: version %q tags %q, want the classic builder and %s", b.Options.Version, b.Options.Tags, tag)
	}

	// A base orchestro did not build: the probe image is marked managed.
	eng.AddImage("redis:7", nil)
	if _, err := WithProbe(ctx, eng, "redis:7", "orchestro-gateway:0123456789ab", nil); err != nil {
		t.Fatalf("WithProbe of an unmanaged base: %v", err)
	}
	builds = eng.Builds()
	if diff := cmp.Diff(map[string]string{engine.LabelManaged: "true"}, builds[len(builds)-1].Options.Labels); diff != "" {
		t.Errorf("build labels of an unmanaged base (-want +got):\n%s", diff)
	}
	before := len(builds)

	// Unchanged: reused.
	out.Reset()
	again, err := WithProbe(ctx, eng, "demo-shop-catalog:3f2a9c1d", "orchestro-gateway:0123456789ab", &out)
	if err != nil || again != tag {
		t.Fatalf("second WithProbe = %s, %v; want %s", again, err, tag)
	}
	if len(eng.Builds()) != before || !strings.Contains(out.String(), "is up to date") {
		t.Errorf("an existing probe image was built again (%d builds); progress %q", len(eng.Builds()), out.String())
	}

	// A rebuilt base under the same tag has a new ID, so a new probe image.
	eng.AddImage("demo-shop-catalog:3f2a9c1d", baseLabels)
	rebuilt, err := WithProbe(ctx, eng, "demo-shop-catalog:3f2a9c1d", "orchestro-gateway:0123456789ab", nil)
	if err != nil || rebuilt == tag || len(eng.Builds()) != before+1 {
		t.Errorf("WithProbe of a rebuilt base = %s, %v after %d builds; want a new tag than %s and a second build", rebuilt, err, len(eng.Builds()), tag)
	}

	// By ID: the image's first name.
	byID, err := WithProbe(ctx, eng, gwID, "orchestro-gateway:0123456789ab", nil)
	if err != nil || !strings.HasPrefix(byID, "orchestro-gateway:0123456789ab-probe-") {
		t.Errorf("WithProbe by ID = %s, %v; want orchestro-gateway:0123456789ab-probe-<hash>", byID, err)
	}

	// Missing images are named.
	_, err = WithProbe(ctx, eng, "demo-shop-missing:1", "orchestro-gateway:0123456789ab", nil)
	if !cerrdefs.IsNotFound(err) || !strings.HasPrefix(err.Error(), "add the health probe to demo-shop-missing:1: inspect the image: ") {
		t.Errorf("missing base: %v", err)
	}
	_, err = WithProbe(ctx, eng, "demo-shop-catalog:3f2a9c1d", "orchestro-gateway:missing", nil)
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "inspect the gateway image orchestro-gateway:missing") {
		t.Errorf("missing gateway image: %v", err)
	}
}

func TestProbeTagLength(t *testing.T) {
	long := strings.Repeat("v", 128)
	img := dockerimage.InspectResponse{ID: testImageID}
	tag := probeTag("example.com/team/app:"+long, img, "sha256:gw", "/orchestro")
	repo, tagPart, _ := strings.Cut(strings.TrimPrefix(tag, "example.com/team/"), ":")
	if repo != "app" || len(tagPart) != maxTag || !strings.Contains(tagPart, probeTagMark) {
		t.Errorf("probe tag of a 128-character tag = %s (tag %d characters), want app:<tag cut short>-probe-<hash> of %d", tag, len(tagPart), maxTag)
	}
	if got := probeTag("redis", img, "sha256:gw", "/orchestro"); !strings.HasPrefix(got, "redis:latest-probe-") {
		t.Errorf("probe tag of an untagged base = %s, want redis:latest-probe-<hash>", got)
	}
}
