package kube

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// repoTestdata is the repository's testdata directory: the demo project
// and the compose examples.
const repoTestdata = "../../testdata"

// Fixed inputs of the golden exports.
const (
	testRegistry     = "registry.example.com/team"
	testTag          = "0123456789ab"
	testGatewayImage = "registry.example.com/team/orchestro-gateway:0.0.0-test"
	testToken        = "test-token-not-secret"
)

// exportCase is one project exported to a golden file.
type exportCase struct {
	// name is the golden file's name: testdata/<name>.golden.yaml, or
	// testdata/<name>.golden.err for a project that cannot be exported.
	name string
	// files are loaded as one project, relative to repoTestdata.
	files []string
	env   map[string]string
	opts  Options
}

// exportCases are the demo project and every compose example of the
// repository (TestEveryComposeExample checks that none is left out).
func exportCases() []exportCase {
	compose := func(name string, files ...string) exportCase {
		if len(files) == 0 {
			files = []string{filepath.Join("compose", name)}
		}
		return exportCase{name: name, files: files}
	}
	envfile := compose("envfile")
	envfile.env = map[string]string{"TAG": "2.0.0", "API_PORT": "9191", "SENTRY_DSN": "https://sentry.example/1", "PG_VERSION": "17"}
	// storefront uses accounts: both cells make the project. It goes in
	// a namespace that exists, with a storage class for its claims.
	storefront := compose("storefront", "compose/storefront", "compose/accounts")
	storefront.opts = Options{Namespace: "storefront-prod", StorageClass: "fast-ssd", VolumeSize: "5Gi"}
	// The demo gets a token, so its export holds the Secret.
	return []exportCase{
		{name: "demo", files: []string{"demo"}, opts: Options{Token: testToken}},
		compose("accounts"),
		compose("build-args"),
		compose("depends"),
		compose("deploy"),
		envfile,
		compose("extends"),
		compose("healthchecks"),
		compose("ports"),
		compose("profiles"),
		compose("shop"),
		storefront,
	}
}

// load reads a case's project with a fixed environment.
func (tc exportCase) load(t *testing.T) *cellspec.Project {
	t.Helper()
	var files []string
	for _, f := range tc.files {
		abs, err := filepath.Abs(filepath.Join(repoTestdata, f))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, abs)
	}
	p, err := cellspec.Load(cellspec.Options{Files: files, WorkDir: repoTestdata, Env: cellspec.MapEnv(tc.env)})
	if err != nil {
		t.Fatalf("load %v: %v", tc.files, err)
	}
	return p
}

// options completes a case's options with the fixed images: every built
// service as REG/<project>-<cell>-<service>:<tag>, as the command line
// names them.
func (tc exportCase) options(p *cellspec.Project) Options {
	opts := tc.opts
	opts.GatewayImage = testGatewayImage
	opts.Images = map[string]map[string]string{}
	for _, c := range p.Cells {
		opts.Images[c.Name] = map[string]string{}
		for _, name := range c.ServiceNames() {
			if c.Services[name].Build != nil {
				opts.Images[c.Name][name] = ImageRepository(testRegistry, p.Name, c.Name, name) + ":" + testTag
			}
		}
	}
	return opts
}

// export exports a case: the golden text (warnings as comments, then the
// manifests) or the error, and the export itself.
func (tc exportCase) export(t *testing.T) (golden []byte, e *Export, err error) {
	t.Helper()
	p := tc.load(t)
	e, err = Manifests(p, tc.options(p))
	if err != nil {
		return []byte(err.Error() + "\n"), nil, err
	}
	data, err := e.YAML()
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var buf bytes.Buffer
	for _, w := range e.Warnings {
		buf.WriteString("# warning: " + w + "\n")
	}
	buf.Write(data)
	return buf.Bytes(), e, nil
}

func goldenPath(name string, failed bool) string {
	if failed {
		return filepath.Join("testdata", name+".golden.err")
	}
	return filepath.Join("testdata", name+".golden.yaml")
}

// TestGolden exports each case and compares it with its golden file; -update
// rewrites them.
func TestGolden(t *testing.T) {
	for _, tc := range exportCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := tc.export(t)
			path := goldenPath(tc.name, err != nil)
			// No path of this checkout: the export must not depend on
			// where the project lies.
			if abs, _ := filepath.Abs(repoTestdata); bytes.Contains(got, []byte(abs)) {
				t.Errorf("the export holds the path %s", abs)
			}
			if *update {
				_ = os.Remove(goldenPath(tc.name, err == nil))
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatalf("%v (export error: %v; run go test -update)", rerr, err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
			}
		})
	}
}

// TestGoldenIsDeterministic exports each case twice.
func TestGoldenIsDeterministic(t *testing.T) {
	for _, tc := range exportCases() {
		first, _, _ := tc.export(t)
		second, _, _ := tc.export(t)
		if !bytes.Equal(first, second) {
			t.Errorf("%s: two exports differ", tc.name)
		}
	}
}

// TestEveryComposeExample checks that each example under
// testdata/compose is exported by some case.
func TestEveryComposeExample(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(repoTestdata, "compose", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no compose examples (%v)", err)
	}
	covered := map[string]bool{}
	for _, tc := range exportCases() {
		for _, f := range tc.files {
			covered[f] = true
		}
	}
	var missing []string
	for _, d := range dirs {
		if rel := "compose/" + filepath.Base(d); !covered[rel] {
			missing = append(missing, rel)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("compose examples without an export case: %s", strings.Join(missing, ", "))
	}
}

// TestBindMountRefused checks the message of a project with bind mounts:
// it names the cell, the service and the path, relative to the project.
func TestBindMountRefused(t *testing.T) {
	tc := exportCase{name: "shop", files: []string{"compose/shop"}}
	_, _, err := tc.export(t)
	if err == nil {
		t.Fatal("shop exported, want its bind mount refused")
	}
	for _, want := range []string{"service shop/db", "./db/init.sql", "/docker-entrypoint-initdb.d/init.sql", "does not travel"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
