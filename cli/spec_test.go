package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchestro/orchestro/cellspec"
)

// repoRoot is the repository root, where the project's testdata lives.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// inRepo points the harness's working directory at the repository root,
// as a user running orchestro from a clone would be.
func inRepo(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, nil)
	root := repoRoot(t)
	h.f.Getwd = func() (string, error) { return root, nil }
	return h
}

func TestValidateDemo(t *testing.T) {
	h := inRepo(t)
	if code := h.run(t.Context(), "-f", "testdata/demo", "validate"); code != ExitOK {
		t.Fatalf("validate exited %d:\n%s", code, h.errOut)
	}
	if !strings.Contains(h.errOut.String(), "project demo: 4 cells, 7 services") {
		t.Errorf("stderr: %q", h.errOut)
	}
	h.wantCalls() // validating never needs the engine
}

// TestConfigDemo compares the normalized demo project with a golden file,
// the repository's absolute path replaced by $REPO.
func TestConfigDemo(t *testing.T) {
	h := inRepo(t)
	if code := h.run(t.Context(), "-f", "testdata/demo", "config", "--json"); code != ExitOK {
		t.Fatalf("config exited %d:\n%s", code, h.errOut)
	}
	got := strings.ReplaceAll(h.out.String(), repoRoot(t), "$REPO")
	golden(t, "config_demo.json", got)
	var p cellspec.Project
	if err := json.Unmarshal(h.out.Bytes(), &p); err != nil {
		t.Fatalf("config --json is not a project: %v", err)
	}
}

// TestConfigYAMLFlows: config prints flows, and numbers as they are
// written (a byte count is not printed as a float).
func TestConfigYAMLFlows(t *testing.T) {
	h := newHarness(t, map[string]string{"cell.yaml": testCell + `flows:
  - name: place-order
    route: "POST /checkout/{order}"
    max_body: 2MiB
    steps:
      - id: charge
        call: POST orders /charges
        body: {order: "${{ path.order }}", amount: 1.5}
`})
	if code := h.run(t.Context(), "config"); code != ExitOK {
		t.Fatalf("config exited %d:\n%s", code, h.errOut)
	}
	for _, want := range []string{
		"max_body: 2097152\n",
		"route: POST /checkout/{order}\n",
		"call: POST orders /charges\n",
		"amount: 1.5\n",
		"order: ${{ path.order }}\n",
	} {
		if !strings.Contains(h.out.String(), want) {
			t.Errorf("config output lacks %q:\n%s", want, h.out)
		}
	}
}

// TestInvalidSpecsExit2 runs validate on every broken spec: exit code 2,
// nothing on stdout, and every problem of its golden file on stderr.
func TestInvalidSpecsExit2(t *testing.T) {
	root := repoRoot(t)
	specs, err := filepath.Glob(filepath.Join(root, "testdata", "invalid", "*.yaml"))
	if err != nil || len(specs) < 25 {
		t.Fatalf("want at least 25 invalid specs, found %d (%v)", len(specs), err)
	}
	for _, spec := range specs {
		name := strings.TrimSuffix(filepath.Base(spec), ".yaml")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(spec, ".yaml") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			h := inRepo(t)
			// Problems print relative to the working directory, which is
			// the directory of the specs here.
			dir := filepath.Dir(spec)
			h.f.Getwd = func() (string, error) { return dir, nil }
			if code := h.run(t.Context(), "-f", filepath.Base(spec), "validate"); code != ExitUsage {
				t.Fatalf("exit code %d, want %d", code, ExitUsage)
			}
			if h.out.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", h.out)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
				if !strings.Contains(h.errOut.String(), line) {
					t.Errorf("stderr lacks %q:\n%s", line, h.errOut)
				}
			}
		})
	}
}

// TestConvertCompose converts every compose example and loads the result
// as a cell.
func TestConvertCompose(t *testing.T) {
	root := repoRoot(t)
	dirs, err := filepath.Glob(filepath.Join(root, "testdata", "compose", "*"))
	if err != nil || len(dirs) < 8 {
		t.Fatalf("want at least 8 compose examples, found %d (%v)", len(dirs), err)
	}
	for _, dir := range dirs {
		file := ""
		for _, n := range cellspec.ComposeFileNames {
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				file = filepath.Join(dir, n)
				break
			}
		}
		if file == "" {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			h := inRepo(t)
			h.f.Getwd = func() (string, error) { return dir, nil }
			if code := h.run(t.Context(), "convert", filepath.Base(file)); code != ExitOK {
				t.Fatalf("convert exited %d:\n%s", code, h.errOut)
			}
			// The cell file goes beside the compose file, so relative
			// paths still resolve.
			if _, _, err := cellspec.LoadCell(filepath.Join(dir, "converted.yaml"), h.out.Bytes(), cellspec.MapEnv(nil)); err != nil {
				t.Errorf("converted cell does not load: %v\n%s", err, h.out)
			}
		})
	}
}

func TestSchemaAndVersion(t *testing.T) {
	h := inRepo(t)
	if code := h.run(t.Context(), "schema"); code != ExitOK {
		t.Fatalf("schema exited %d", code)
	}
	var schema map[string]any
	if err := json.Unmarshal(h.out.Bytes(), &schema); err != nil || schema["$schema"] == nil {
		t.Fatalf("schema output is not a JSON Schema: %v", err)
	}
	h = inRepo(t)
	h.f.Build = BuildInfo{Version: "1.2.3", Commit: "abc", Date: "2026-11-22"}
	if code := h.run(t.Context(), "version"); code != ExitOK {
		t.Fatalf("version exited %d", code)
	}
	if got := h.out.String(); !strings.HasPrefix(got, "orchestro 1.2.3 (commit abc, built 2026-11-22, go") {
		t.Errorf("version = %q", got)
	}
}
