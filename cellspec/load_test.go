package cellspec

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// update rewrites golden files: go test ./cellspec/ -run TestInvalidSpecs -update
var update = flag.Bool("update", false, "rewrite golden files")

// invalidSpecsDir holds one broken spec per problem class, each X.yaml (or
// project directory X/) with the expected Problems text in X.golden beside
// it. Paths in the goldens are relative to that directory.
var invalidSpecsDir = filepath.Join("..", "testdata", "invalid")

func TestInvalidSpecs(t *testing.T) {
	dir, err := filepath.Abs(invalidSpecsDir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	specs := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		var spec string
		switch {
		case e.IsDir():
			if _, err := os.Stat(filepath.Join(dir, name, "orchestro.yaml")); err != nil {
				t.Errorf("%s: a project directory needs an orchestro.yaml", name)
				continue
			}
			spec = name
		case strings.HasSuffix(name, ".yaml"):
			spec = strings.TrimSuffix(name, ".yaml")
		default:
			continue
		}
		specs[spec] = true
		t.Run(spec, func(t *testing.T) {
			_, err := Load(Options{Files: []string{name}, WorkDir: dir, Env: MapEnv(nil)})
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Load() error = %v, want Problems", err)
			}
			got := relativeTo(probs.Error(), dir) + "\n"
			golden := filepath.Join(dir, spec+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if len(specs) < 25 {
		t.Errorf("found %d invalid specs, want at least 25", len(specs))
	}
	// A golden without its spec is a leftover of a renamed spec.
	goldens, _ := filepath.Glob(filepath.Join(dir, "*.golden"))
	for _, g := range goldens {
		if spec := strings.TrimSuffix(filepath.Base(g), ".golden"); !specs[spec] {
			t.Errorf("%s has no spec beside it", filepath.Base(g))
		}
	}
}

// relativeTo makes the absolute paths under dir in s relative to dir, so
// goldens do not depend on where the repository is checked out.
func relativeTo(s, dir string) string {
	if dir == "" {
		return s
	}
	s = strings.ReplaceAll(s, dir+string(filepath.Separator), "")
	return strings.ReplaceAll(s, dir, ".")
}

// writeSpecFiles writes files (slash-separated names relative to dir) and
// returns dir.
func writeSpecFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadTree loads a project written to a fresh directory, with -f files
// (none: discovery) and env as the whole environment. It returns the
// directory too, for relativeTo.
func loadTree(t *testing.T, files map[string]string, env map[string]string, f ...string) (*Project, string, error) {
	t.Helper()
	dir := writeSpecFiles(t, t.TempDir(), files)
	p, err := Load(Options{Files: f, WorkDir: dir, Env: MapEnv(env)})
	return p, dir, err
}

// problemLines returns the Problems of err, one line each, with dir made
// relative; it fails the test if err is not Problems.
func problemLines(t *testing.T, err error, dir string) []string {
	t.Helper()
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error = %v, want Problems", err)
	}
	return strings.Split(relativeTo(probs.Error(), dir), "\n")
}

// oneCell returns the single cell of a project loaded without error.
func oneCell(t *testing.T, p *Project, err error) *Cell {
	t.Helper()
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	if len(p.Cells) != 1 {
		t.Fatalf("got %d cells, want 1", len(p.Cells))
	}
	return p.Cells[0]
}

func TestInterpolation(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		env     map[string]string
		dotenv  string
		want    string
		wantErr string
		warning string
	}{
		{name: "set", value: "${NAME}", env: map[string]string{"NAME": "shop"}, want: "shop"},
		{name: "braces inside text", value: "a-${NAME}-b", env: map[string]string{"NAME": "x"}, want: "a-x-b"},
		{name: "unbraced", value: "$NAME/x", env: map[string]string{"NAME": "v"}, want: "v/x"},
		{name: "unset is empty with a warning", value: "${NAME}", want: "",
			warning: "cell.yaml:6:14: services.app.env.V: variable NAME is not set; using an empty string"},
		{name: "colon dash unset", value: "${NAME:-fallback}", want: "fallback"},
		{name: "colon dash empty", value: "${NAME:-fallback}", env: map[string]string{"NAME": ""}, want: "fallback"},
		{name: "colon dash set", value: "${NAME:-fallback}", env: map[string]string{"NAME": "v"}, want: "v"},
		{name: "dash unset", value: "${NAME-fallback}", want: "fallback"},
		{name: "dash empty keeps empty", value: "${NAME-fallback}", env: map[string]string{"NAME": ""}, want: ""},
		{name: "required set", value: "${NAME:?need a name}", env: map[string]string{"NAME": "v"}, want: "v"},
		{name: "required unset", value: "${NAME:?need a name}",
			wantErr: "cell.yaml:6:14: services.app.env.V: required variable NAME is not set: need a name (set it in the environment or in .env beside the spec)"},
		{name: "required empty", value: "${NAME:?need a name}", env: map[string]string{"NAME": ""},
			wantErr: "cell.yaml:6:14: services.app.env.V: required variable NAME is not set: need a name (set it in the environment or in .env beside the spec)"},
		{name: "question unset", value: "${NAME?}",
			wantErr: "cell.yaml:6:14: services.app.env.V: required variable NAME is not set (set it in the environment or in .env beside the spec)"},
		{name: "double dollar", value: "$$NAME costs $$5", env: map[string]string{"NAME": "v"}, want: "$NAME costs $5"},
		{name: "unclosed", value: "${NAME",
			wantErr: "cell.yaml:6:14: services.app.env.V: invalid interpolation \"${NAME\" (write ${NAME}, ${NAME:-default} or $$ for a literal $)"},
		{name: "dotenv", value: "${NAME}", dotenv: "NAME=from-file\n", want: "from-file"},
		{name: "environment beats dotenv", value: "${NAME}", env: map[string]string{"NAME": "from-env"}, dotenv: "NAME=from-file\n", want: "from-env"},
		{name: "dotenv default", value: "${OTHER:-d}", dotenv: "NAME=from-file\n", want: "d"},
		// A flow's ${{ expression }} is never interpolated (see flows).
		{name: "expression left", value: "${{ input.body }}", want: "${{ input.body }}"},
		{name: "variable beside an expression", value: "${NAME}-${{ flow.id }}-$NAME", env: map[string]string{"NAME": "v"}, want: "v-${{ flow.id }}-v"},
		{name: "no variable inside an expression", value: `${{ input.headers["${NAME}"] }}`, env: map[string]string{"NAME": "v"}, want: `${{ input.headers["${NAME}"] }}`},
		{name: "unclosed expression left", value: "${NAME} ${{ input", env: map[string]string{"NAME": "v"}, want: "v ${{ input"},
		{name: "double dollar before braces", value: "$${{ x }}", want: "${{ x }}"},
		{name: "unset beside an expression", value: "${NAME}${{ x }}", want: "${{ x }}",
			warning: "cell.yaml:6:14: services.app.env.V: variable NAME is not set; using an empty string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"cell.yaml": "cell: app\ngateway: {port: 8080}\nservices:\n  app:\n    image: example/app:1\n    env: {V: '" +
				strings.ReplaceAll(tt.value, "'", "''") + "'}\n"}
			if tt.dotenv != "" {
				files[".env"] = tt.dotenv
			}
			p, dir, err := loadTree(t, files, tt.env)
			if tt.wantErr != "" {
				if diff := cmp.Diff([]string{tt.wantErr}, problemLines(t, err, dir)); diff != "" {
					t.Errorf("problems (-want +got):\n%s", diff)
				}
				return
			}
			c := oneCell(t, p, err)
			if got := c.Services["app"].Env["V"]; got != tt.want {
				t.Errorf("V = %q, want %q", got, tt.want)
			}
			var warnings []string
			for _, w := range p.Warnings {
				warnings = append(warnings, relativeTo(w.String(), dir))
			}
			var want []string
			if tt.warning != "" {
				want = []string{tt.warning}
			}
			if diff := cmp.Diff(want, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInterpolationOfTypedValues(t *testing.T) {
	spec := `cell: ${CELL}
gateway:
  port: ${GATEWAY_PORT:-9000}
  routes:
    - {path: '${PREFIX:-/api}', service: app, strip_prefix: '${STRIP:-true}', timeout: '${TIMEOUT:-5s}'}
services:
  app:
    image: example/app:${TAG:-1}
    port: ${PORT}
    replicas: ${REPLICAS:-3}
    env:
      ${KEY}: kept
`
	p, _, err := loadTree(t, map[string]string{"cell.yaml": spec}, map[string]string{"CELL": "shop", "PORT": "8080", "KEY": "never"})
	c := oneCell(t, p, err)
	s := c.Services["app"]
	got := []any{c.Name, c.Gateway.Port, c.Gateway.Routes[0].Path, c.Gateway.Routes[0].StripPrefix, c.Gateway.Routes[0].Timeout.D(), s.Image, s.Port, s.Replicas}
	want := []any{"shop", 9000, "/api", true, 5 * time.Second, "example/app:1", 8080, 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("interpolated values (-want +got):\n%s", diff)
	}
	// Keys are never interpolated.
	if diff := cmp.Diff(map[string]string{"${KEY}": "kept"}, s.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	spec := `cell: shop
gateway: {port: 8081}
services:
  orders:
    image: example/orders:1
    port: 8080
    health: {http: /healthz}
  search:
    image: example/search:1
    port: 9200
    autoscale: {min: 3, max: 5, rps: 100}
  worker:
    image: example/worker:1
    autoscale: {max: 4, cpu: 50}
`
	p, dir, err := loadTree(t, map[string]string{"cell.yaml": spec}, nil)
	got := oneCell(t, p, err)
	want := &Cell{
		Name:   "shop",
		File:   filepath.Join(dir, "cell.yaml"),
		Source: "cell",
		Gateway: Gateway{
			Port:    8081,
			Balance: BalanceRoundRobin,
			Routes: []Route{
				{Path: "/orders", Service: "orders", Timeout: Duration(30 * time.Second), Retries: 2},
				{Path: "/search", Service: "search", Timeout: Duration(30 * time.Second), Retries: 2},
			},
		},
		Uses: []string{},
		Services: map[string]*Service{
			"orders": {
				Name: "orders", Image: "example/orders:1", Port: 8080, Replicas: 1, Restart: RestartAlways,
				Health: &Health{HTTP: "/healthz", Interval: Duration(2 * time.Second), Timeout: Duration(time.Second), Retries: 3},
			},
			"search": {
				Name: "search", Image: "example/search:1", Port: 9200, Replicas: 3, Restart: RestartAlways,
				Autoscale: &Autoscale{Min: 3, Max: 5, RPS: 100, ScaleDownAfter: Duration(30 * time.Second)},
			},
			"worker": {
				Name: "worker", Image: "example/worker:1", Replicas: 1, Restart: RestartAlways,
				Autoscale: &Autoscale{Min: 1, Max: 4, CPU: 50, ScaleDownAfter: Duration(30 * time.Second)},
			},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Cell{})); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if p.Name != normalizeProjectName(filepath.Base(dir)) {
		t.Errorf("project name = %q, want the directory's", p.Name)
	}
}

func TestWrittenValuesAreNotDefaulted(t *testing.T) {
	spec := `cell: shop
gateway:
  port: 8081
  balance: least_request
  routes:
    - {path: /, service: orders, retries: 0, timeout: 2m, strip_prefix: yes}
services:
  orders:
    image: example/orders:1
    port: 8080
    replicas: 0
    restart: on-failure
    health: {tcp: true, interval: 500ms, timeout: 250ms, retries: 1, start_period: 0s}
    autoscale: {min: 0, max: 2, inflight: 5, scale_down_after: 1m}
  other:
    image: example/other:1
    port: 8080
`
	p, _, err := loadTree(t, map[string]string{"cell.yaml": spec}, nil)
	c := oneCell(t, p, err)
	wantRoutes := []Route{{Path: "/", Service: "orders", StripPrefix: true, Timeout: Duration(2 * time.Minute), Retries: 0}}
	if diff := cmp.Diff(wantRoutes, c.Gateway.Routes); diff != "" {
		t.Errorf("routes (written routes replace the default ones) (-want +got):\n%s", diff)
	}
	if c.Gateway.Balance != BalanceLeastRequest {
		t.Errorf("balance = %q", c.Gateway.Balance)
	}
	s := c.Services["orders"]
	if s.Replicas != 0 || s.Restart != RestartOnFailure {
		t.Errorf("replicas, restart = %d, %q; want 0, on-failure", s.Replicas, s.Restart)
	}
	wantHealth := &Health{TCP: true, Interval: Duration(500 * time.Millisecond), Timeout: Duration(250 * time.Millisecond), Retries: 1}
	if diff := cmp.Diff(wantHealth, s.Health); diff != "" {
		t.Errorf("health (-want +got):\n%s", diff)
	}
	wantScale := &Autoscale{Min: 0, Max: 2, Inflight: 5, ScaleDownAfter: Duration(time.Minute)}
	if diff := cmp.Diff(wantScale, s.Autoscale); diff != "" {
		t.Errorf("autoscale (-want +got):\n%s", diff)
	}
}

func TestDefaultReplicasFollowAutoscale(t *testing.T) {
	tests := []struct {
		autoscale string
		want      int
	}{
		{"{max: 4, cpu: 50}", 1},
		{"{min: 0, max: 4, cpu: 50}", 1},
		{"{min: 2, max: 4, cpu: 50}", 2},
		{"{min: 4, max: 4, cpu: 50}", 4},
	}
	for _, tt := range tests {
		t.Run(tt.autoscale, func(t *testing.T) {
			spec := "cell: shop\ngateway: {port: 8081}\nservices:\n  worker:\n    image: example/worker:1\n    autoscale: " + tt.autoscale + "\n"
			c, _, err := LoadCell("cell.yaml", []byte(spec), MapEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Services["worker"].Replicas; got != tt.want {
				t.Errorf("replicas = %d, want %d", got, tt.want)
			}
		})
	}
}

const (
	shopCell  = "cell: shop\ngateway: {port: 8081}\nservices:\n  orders: {image: example/orders:1, port: 8080}\n"
	usersCell = "cell: users\ngateway: {port: 8082}\nservices:\n  users: {image: example/users:1, port: 8080}\n"
	otherCell = "cell: other\ngateway: {port: 8083}\nservices:\n  other: {image: example/other:1, port: 8080}\n"
)

func TestDiscover(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"project beats cell and compose", []string{"orchestro.yaml", "cell.yaml", "compose.yaml"}, "orchestro.yaml"},
		{"project .yml", []string{"orchestro.yml", "cell.yaml"}, "orchestro.yml"},
		{"cell beats compose", []string{"cell.yaml", "compose.yaml", "docker-compose.yml"}, "cell.yaml"},
		{"cell .yml", []string{"cell.yml", "docker-compose.yaml"}, "cell.yml"},
		{"compose.yaml first", []string{"compose.yaml", "compose.yml", "docker-compose.yml"}, "compose.yaml"},
		{"docker-compose.yml", []string{"docker-compose.yml"}, "docker-compose.yml"},
		{"other yaml ignored", []string{"shop.yaml", "docker-compose.yml"}, "docker-compose.yml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			for _, f := range tt.files {
				files[f] = "x: 1\n"
			}
			dir := writeSpecFiles(t, t.TempDir(), files)
			got, err := discover(dir)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, tt.want); got != want {
				t.Errorf("discover() = %s, want %s", got, want)
			}
		})
	}
	t.Run("nothing", func(t *testing.T) {
		dir := writeSpecFiles(t, t.TempDir(), map[string]string{"README.md": "x", "cell.yaml/x": "a directory named cell.yaml"})
		if _, err := discover(dir); !errors.Is(err, ErrNoSpec) {
			t.Errorf("discover() error = %v, want ErrNoSpec", err)
		}
		if _, err := Load(Options{WorkDir: dir, Env: MapEnv(nil)}); !errors.Is(err, ErrNoSpec) {
			t.Errorf("Load() error = %v, want ErrNoSpec", err)
		}
	})
}

func TestLoadDiscovery(t *testing.T) {
	tree := map[string]string{
		"orchestro.yaml":        "cells: [cells/shop.yaml, cells/users.yaml]\n",
		"cells/shop.yaml":       shopCell,
		"cells/users.yaml":      usersCell,
		"cell.yaml":             otherCell,
		"sub/orchestro.yaml":    "project: sub\ncells: [../cell.yaml]\n",
		"nested/cell.yaml":      otherCell,
		"nested/other/x.yaml":   otherCell,
		"project-with-dir.yaml": "cells: [cells]\n",
	}
	cellNames := func(p *Project) []string {
		var names []string
		for _, c := range p.Cells {
			names = append(names, c.Name)
		}
		return names
	}
	tests := []struct {
		name  string
		files []string
		want  []string
		// problems must all be reported (the loader may add others).
		problems []string
	}{
		{name: "orchestro.yaml beats cell.yaml", want: []string{"shop", "users"}},
		{name: "-f cell file", files: []string{"cell.yaml"}, want: []string{"other"}},
		{name: "-f directory", files: []string{"sub"}, want: []string{"other"}},
		{name: "-f project and cell", files: []string{"orchestro.yaml", "cell.yaml"}, want: []string{"other", "shop", "users"}},
		{name: "-f same file twice", files: []string{"cell.yaml", "./cell.yaml"}, want: []string{"other"}},
		{name: "-f directory with a cell file", files: []string{"nested"}, want: []string{"other"}},
		{name: "-f directory without a spec", files: []string{"nested/other"},
			problems: []string{"nested/other: directory nested/other holds no orchestro.yaml, cell.yaml or compose file"}},
		{name: "-f missing", files: []string{"gone.yaml"},
			problems: []string{"gone.yaml: gone.yaml does not exist"}},
		{name: "project lists a directory", files: []string{"project-with-dir.yaml"},
			problems: []string{"project-with-dir.yaml:1:9: cells is a directory; list cell files"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, dir, err := loadTree(t, tree, nil, tt.files...)
			if tt.problems != nil {
				got := problemLines(t, err, dir)
				for _, want := range tt.problems {
					if !slices.Contains(got, want) {
						t.Errorf("missing problem %q in:\n%s", want, strings.Join(got, "\n"))
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error:\n%v", err)
			}
			if diff := cmp.Diff(tt.want, cellNames(p)); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProjectName(t *testing.T) {
	tests := []struct {
		name     string
		dir      string
		files    map[string]string
		flag     string
		want     string
		problems []string
	}{
		{name: "-p wins", dir: "work", flag: "override",
			files: map[string]string{"orchestro.yaml": "project: demo\ncells: [cell.yaml]\n", "cell.yaml": shopCell}, want: "override"},
		{name: "project key", dir: "work",
			files: map[string]string{"orchestro.yaml": "project: demo\ncells: [cell.yaml]\n", "cell.yaml": shopCell}, want: "demo"},
		{name: "directory name", dir: "shop",
			files: map[string]string{"orchestro.yaml": "cells: [cell.yaml]\n", "cell.yaml": shopCell}, want: "shop"},
		{name: "directory name normalized", dir: "My_Shop.v2",
			files: map[string]string{"cell.yaml": shopCell}, want: "my-shop-v2"},
		{name: "directory name trimmed", dir: "_Tools_",
			files: map[string]string{"cell.yaml": shopCell}, want: "tools"},
		{name: "bad -p", dir: "work", flag: "Demo_1",
			files:    map[string]string{"cell.yaml": shopCell},
			problems: []string{`-p: project: invalid -p "Demo_1" (` + dnsHint + `)`}},
		{name: "bad project key", dir: "work",
			files:    map[string]string{"orchestro.yaml": "project: Demo 1\ncells: [cell.yaml]\n", "cell.yaml": shopCell},
			problems: []string{`orchestro.yaml:1:10: project: invalid project name "Demo 1" (` + dnsHint + `)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeSpecFiles(t, filepath.Join(t.TempDir(), tt.dir), tt.files)
			p, err := Load(Options{WorkDir: dir, ProjectName: tt.flag, Env: MapEnv(nil)})
			if tt.problems != nil {
				if diff := cmp.Diff(tt.problems, problemLines(t, err, dir)); diff != "" {
					t.Errorf("problems (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error:\n%v", err)
			}
			if p.Name != tt.want {
				t.Errorf("project name = %q, want %q", p.Name, tt.want)
			}
			if p.Dir != dir {
				t.Errorf("project dir = %q, want %q", p.Dir, dir)
			}
		})
	}
}

func TestDidYouMean(t *testing.T) {
	const head = "cell: shop\ngateway: {port: 8081}\nservices:\n  orders:\n    image: example/orders:1\n    port: 8080\n"
	tests := []struct {
		name string
		spec string
		path string
		hint string
	}{
		{"root key", "cell: shop\ngatewy: {port: 8081}\nservices:\n  orders: {image: x, port: 8080}\n", "gatewy", `did you mean "gateway"?`},
		{"gateway key", "cell: shop\ngateway: {prot: 8081}\nservices:\n  orders: {image: x, port: 8080}\n", "gateway.prot", `did you mean "port"?`},
		{"route key", "cell: shop\ngateway: {port: 8081, routes: [{path: /, servce: orders}]}\nservices:\n  orders: {image: x, port: 8080}\n",
			"gateway.routes[0].servce", `did you mean "service"?`},
		{"service key", head + "    dependson: []\n", "services.orders.dependson", `did you mean "depends_on"?`},
		{"build key", "cell: shop\ngateway: {port: 8081}\nservices:\n  orders: {build: {context: ., dockerfle: D}, port: 8080}\n",
			"services.orders.build.dockerfle", `did you mean "dockerfile"?`},
		{"health key", head + "    health: {http: /, intervall: 2s}\n", "services.orders.health.intervall", `did you mean "interval"?`},
		{"autoscale key", head + "    autoscale: {max: 2, rps: 1, scale_down: 1m}\n", "services.orders.autoscale.scale_down", `did you mean "scale_down_after"?`},
		{"resources key", head + "    resources: {memroy: 1G}\n", "services.orders.resources.memroy", `did you mean "memory"?`},
		{"balance value", "cell: shop\ngateway: {port: 8081, balance: round-robin}\nservices:\n  orders: {image: x, port: 8080}\n",
			"gateway.balance", `did you mean "round_robin"?`},
		{"balance value far", "cell: shop\ngateway: {port: 8081, balance: random}\nservices:\n  orders: {image: x, port: 8080}\n",
			"gateway.balance", "round_robin or least_request"},
		{"restart value", head + "    restart: on_failure\n", "services.orders.restart", `did you mean "on-failure"?`},
		{"route service", "cell: shop\ngateway: {port: 8081, routes: [{path: /, service: order}]}\nservices:\n  orders: {image: x, port: 8080}\n",
			"gateway.routes[0].service", `did you mean "orders"?`},
		{"depends_on", head + "    depends_on: [dbb]\n  db: {image: postgres}\n", "services.orders.depends_on[0]", `did you mean "db"?`},
		{"depends_on far", head + "    depends_on: [cache]\n  db: {image: postgres}\n", "services.orders.depends_on[0]",
			"depends_on names services of the same cell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadCell("cell.yaml", []byte(tt.spec), MapEnv(nil))
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("LoadCell() error = %v, want Problems", err)
			}
			for _, p := range probs {
				if p.Path == tt.path {
					if p.Hint != tt.hint {
						t.Errorf("hint = %q, want %q", p.Hint, tt.hint)
					}
					return
				}
			}
			t.Errorf("no problem at %s in:\n%v", tt.path, err)
		})
	}
}

func TestDuplicateKeys(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string
	}{
		{"root", "cell: shop\ncell: shop\ngateway: {port: 8081}\nservices: {a: {image: x}}\n",
			[]string{`cell.yaml:2:1: cell: duplicate key "cell"`}},
		{"gateway", "cell: shop\ngateway:\n  port: 8081\n  port: 8082\nservices: {a: {image: x}}\n",
			[]string{`cell.yaml:4:3: gateway.port: duplicate key "port"`}},
		{"service name", "cell: shop\ngateway: {port: 8081}\nservices:\n  a: {image: x}\n  a: {image: y}\n",
			[]string{`cell.yaml:5:3: services.a: duplicate key "a"`}},
		{"service key", "cell: shop\ngateway: {port: 8081}\nservices:\n  a:\n    image: x\n    image: y\n",
			[]string{`cell.yaml:6:5: services.a.image: duplicate key "image"`}},
		{"env", "cell: shop\ngateway: {port: 8081}\nservices:\n  a:\n    image: x\n    env: {A: 1, A: 2}\n",
			[]string{`cell.yaml:6:17: services.a.env.A: duplicate key "A"`}},
		{"build args", "cell: shop\ngateway: {port: 8081}\nservices:\n  a:\n    build: {context: ., args: {V: 1, V: 2}}\n",
			[]string{`cell.yaml:5:38: services.a.build.args.V: duplicate key "V"`}},
		{"health", "cell: shop\ngateway: {port: 8081}\nservices:\n  a:\n    image: x\n    port: 80\n    health: {http: /, http: /x}\n",
			[]string{`cell.yaml:7:23: services.a.health.http: duplicate key "http"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadCell("cell.yaml", []byte(tt.spec), MapEnv(nil))
			if diff := cmp.Diff(tt.want, problemLines(t, err, "")); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	spec := `cell: shop
gateway: {port: 8081}
uses: &peers [users]
services:
  orders: &base
    image: example/orders:1
    port: 8080
    env: &env {LOG_LEVEL: debug, REGION: eu}
    health: {http: /healthz}
  payments:
    <<: *base
    image: example/payments:1
    env:
      <<: *env
      REGION: us
  ledger:
    <<: [{port: 9000, restart: never}, *base]
    image: example/ledger:1
    depends_on: *peers
`
	// users is not a service: depends_on reuses the uses list only to show
	// that a sequence alias resolves.
	_, _, err := LoadCell("cell.yaml", []byte(spec), MapEnv(nil))
	want := []string{`cell.yaml:3:15: services.ledger.depends_on[0]: unknown service "users" (depends_on names services of the same cell)`}
	if diff := cmp.Diff(want, problemLines(t, err, "")); diff != "" {
		t.Fatalf("problems (-want +got):\n%s", diff)
	}

	spec = strings.Replace(spec, "depends_on: *peers", "depends_on: [orders]", 1)
	c, _, err := LoadCell("cell.yaml", []byte(spec), MapEnv(nil))
	if err != nil {
		t.Fatalf("LoadCell() error:\n%v", err)
	}
	type view struct {
		Image, Restart string
		Port           int
		Env            map[string]string
		Health         string
	}
	got := map[string]view{}
	for name, s := range c.Services {
		v := view{Image: s.Image, Restart: s.Restart, Port: s.Port, Env: s.Env}
		if s.Health != nil {
			v.Health = s.Health.HTTP
		}
		got[name] = v
	}
	want2 := map[string]view{
		"orders":   {Image: "example/orders:1", Restart: "always", Port: 8080, Env: map[string]string{"LOG_LEVEL": "debug", "REGION": "eu"}, Health: "/healthz"},
		"payments": {Image: "example/payments:1", Restart: "always", Port: 8080, Env: map[string]string{"LOG_LEVEL": "debug", "REGION": "us"}, Health: "/healthz"},
		// The first mapping of a merge list wins over later ones.
		"ledger": {Image: "example/ledger:1", Restart: "never", Port: 9000, Env: map[string]string{"LOG_LEVEL": "debug", "REGION": "eu"}, Health: "/healthz"},
	}
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("merged services (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"users"}, c.Uses); diff != "" {
		t.Errorf("uses (-want +got):\n%s", diff)
	}
}

func TestAliasBomb(t *testing.T) {
	// Nine levels of ten aliases each: 10^9 nodes once expanded.
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		prev := fmt.Sprintf("*a%d", i-1)
		fmt.Fprintf(&b, "a%d: &a%d [%s%s]\n", i, i, strings.Repeat(prev+", ", 9), prev)
	}
	b.WriteString("cell: *a8\n")
	_, _, err := LoadCell("bomb.yaml", []byte(b.String()), MapEnv(nil))
	want := []string{"bomb.yaml:1:1: document is too large once aliases are expanded"}
	if diff := cmp.Diff(want, problemLines(t, err, "")); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestProjectChecks(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name: "duplicate cell name",
			files: map[string]string{
				"orchestro.yaml": "cells: [a.yaml, b.yaml]\n",
				"a.yaml":         shopCell,
				"b.yaml":         strings.Replace(shopCell, "8081", "8082", 1),
			},
			want: []string{`b.yaml:1:7: cell: duplicate cell name "shop" (also defined at a.yaml:1:7)`},
		},
		{
			name: "duplicate gateway port",
			files: map[string]string{
				"orchestro.yaml": "cells: [a.yaml, b.yaml]\n",
				"a.yaml":         shopCell,
				"b.yaml":         strings.Replace(usersCell, "8082", "8081", 1),
			},
			want: []string{`b.yaml:2:17: gateway.port: gateway port 8081 is already taken (cell "shop" uses it at a.yaml:2:17)`},
		},
		{
			name: "uses",
			files: map[string]string{
				"orchestro.yaml": "cells: [shop.yaml, users.yaml]\n",
				"shop.yaml":      strings.Replace(shopCell, "gateway:", "uses: [user, shop, users, users]\ngateway:", 1),
				"users.yaml":     usersCell,
			},
			want: []string{
				`shop.yaml:2:8: uses[0]: unknown cell "user" (did you mean "users"?)`,
				`shop.yaml:2:14: uses[1]: cell "shop" lists itself in uses (a cell reaches its own services directly)`,
				`shop.yaml:2:27: uses[3]: cell "users" is listed twice`,
			},
		},
		{
			name: "uses far from every cell",
			files: map[string]string{
				"orchestro.yaml": "cells: [shop.yaml, users.yaml]\n",
				"shop.yaml":      strings.Replace(shopCell, "gateway:", "uses: [billing]\ngateway:", 1),
				"users.yaml":     usersCell,
			},
			want: []string{`shop.yaml:2:8: uses[0]: unknown cell "billing" (cells in this project: shop, users)`},
		},
		{
			name: "nested project",
			files: map[string]string{
				"orchestro.yaml": "cells: [inner.yaml]\n",
				"inner.yaml":     "cells: [shop.yaml]\n",
				"shop.yaml":      shopCell,
			},
			want: []string{`orchestro.yaml:1:9: inner.yaml is a project file; project files cannot be nested`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir, err := loadTree(t, tt.files, nil)
			if diff := cmp.Diff(tt.want, problemLines(t, err, dir)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		p, _, err := loadTree(t, map[string]string{
			"orchestro.yaml": "project: demo\ncells: [users.yaml, shop.yaml]\n",
			"shop.yaml":      strings.Replace(shopCell, "gateway:", "uses: [users]\ngateway:", 1),
			"users.yaml":     usersCell,
		}, nil)
		if err != nil {
			t.Fatalf("Load() error:\n%v", err)
		}
		var got []string
		for _, c := range p.Cells {
			got = append(got, c.Name+" uses "+strings.Join(c.Uses, ","))
		}
		// Cells are sorted by name, whatever the order of the project file.
		if diff := cmp.Diff([]string{"shop uses users", "users uses "}, got); diff != "" {
			t.Errorf("cells (-want +got):\n%s", diff)
		}
		if p.Cell("users") == nil || p.Cell("nope") != nil {
			t.Errorf("Project.Cell lookup is wrong")
		}
	})
}

func TestProblemsAreSortedAndComplete(t *testing.T) {
	spec := `cell: Bad
gateway: {port: 0, balance: x}
services:
  a: {image: x, replicas: -1, restart: y}
`
	_, _, err := LoadCell("cell.yaml", []byte(spec), MapEnv(nil))
	want := []string{
		`cell.yaml:1:7: cell: invalid cell name "Bad" (` + dnsHint + `)`,
		`cell.yaml:2:17: gateway.port: port 0 is out of range 1-65535`,
		`cell.yaml:2:29: gateway.balance: unknown balance policy "x" (round_robin or least_request)`,
		`cell.yaml:4:27: services.a.replicas: replicas must be 0 or more, not -1 (0 stops the service)`,
		`cell.yaml:4:40: services.a.restart: unknown restart policy "y" (always, on-failure or never)`,
	}
	if diff := cmp.Diff(want, problemLines(t, err, "")); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
