package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchestro/orchestro/runtime/api"
)

// TestExportKubernetesImageTag: with --image-tag nothing is built (the
// engine is never asked), and every built image is named in the registry
// with that tag.
func TestExportKubernetesImageTag(t *testing.T) {
	h := inRepo(t)
	if code := h.run(t.Context(), "-f", "testdata/demo", "export", "kubernetes", "--image-tag", "v1", "--registry", "reg.example.com/team", "--token", "t"); code != ExitOK {
		t.Fatalf("export exited %d:\n%s", code, h.errOut)
	}
	h.wantCalls()
	out := h.out.String()
	for _, want := range []string{"kind: Namespace", "image: reg.example.com/team/demo-shop-catalog:v1", "image: reg.example.com/team/orchestro-gateway:v1", "kind: NetworkPolicy"} {
		if !strings.Contains(out, want) {
			t.Errorf("the manifests have no %q", want)
		}
	}
	if !strings.Contains(h.errOut.String(), "warning:") {
		t.Errorf("no warning on stderr: %q", h.errOut)
	}
}

// TestExportKubernetesBuilds: without --image-tag the images come from the
// backend, which builds (and with --push pushes) them; -o writes a file
// per cell.
func TestExportKubernetesBuilds(t *testing.T) {
	h := inRepo(t)
	h.be.images = api.ProjectImages{Gateway: "reg:5000/orchestro-gateway:abc", Services: map[string]map[string]string{
		"checkout": {"inventory": "reg:5000/i:1", "payments": "reg:5000/p:1", "notify": "reg:5000/n:1"},
		"edge":     {"web": "reg:5000/w:1"},
		"shop":     {"catalog": "reg:5000/c:1", "orders": "reg:5000/o:1"},
		"users":    {"accounts": "reg:5000/a:1"},
	}}
	dir := t.TempDir()
	if code := h.run(t.Context(), "-f", "testdata/demo", "export", "kubernetes", "--registry", "reg:5000", "--push", "-o", dir); code != ExitOK {
		t.Fatalf("export exited %d:\n%s", code, h.errOut)
	}
	h.wantCalls("connect", `Images demo registry="reg:5000" push=true`)
	shop, err := os.ReadFile(filepath.Join(dir, "shop.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(shop), "image: reg:5000/c:1") {
		t.Errorf("shop.yaml does not run the built catalog image")
	}
}

func TestExportKubernetesUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--push"},
		{"--push", "--registry", "r:5000", "--image-tag", "v1"},
		{"--registry", "http://r:5000"},
		{"--image-tag", "-bad"},
	} {
		h := inRepo(t)
		if code := h.run(t.Context(), append([]string{"-f", "testdata/demo", "export", "kubernetes"}, args...)...); code != ExitUsage {
			t.Errorf("export kubernetes %v exited %d, want %d:\n%s", args, code, ExitUsage, h.errOut)
		}
		h.wantCalls()
	}
}
