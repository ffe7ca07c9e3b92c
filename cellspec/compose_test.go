package cellspec

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sirupsen/logrus"
)

// The golden files are rewritten with -update (the flag is declared in
// load_test.go).

// composeRoot is the directory of the compose examples.
const composeRoot = "../testdata/compose"

// composeCase is one example of testdata/compose loaded as a cell.
type composeCase struct {
	name  string   // golden file name
	files []string // compose files under composeRoot; the first is the one checked
	env   map[string]string
	want  func(dir string) *Cell // dir is the absolute directory of the first file
}

func composeCases() []composeCase {
	d := func(s string) Duration { v, _ := time.ParseDuration(s); return Duration(v) }
	health := func(interval, timeout string, retries int, start string, exec ...string) *Health {
		h := &Health{Exec: exec, Interval: d(interval), Timeout: d(timeout), Retries: retries}
		if start != "" {
			h.StartPeriod = d(start)
		}
		return h
	}
	route := func(svc string) Route {
		return Route{Path: "/" + svc, Service: svc, Timeout: DefaultRouteTimeout, Retries: DefaultRouteRetries}
	}
	// cgw is the gateway of a compose file that sets no gateway port: the
	// port svc publishes, every path of it to svc, and the ports the
	// other services publish as listeners.
	cgw := func(port int, svc string, listeners ...Listener) Gateway {
		return Gateway{Port: port, Balance: BalanceRoundRobin, Listeners: listeners,
			Routes: []Route{{Path: "/", Service: svc, Timeout: DefaultRouteTimeout, Retries: DefaultRouteRetries}}}
	}
	gw := func(port int, svcs ...string) Gateway {
		g := Gateway{Port: port, Balance: BalanceRoundRobin, Routes: []Route{}}
		for _, s := range svcs {
			g.Routes = append(g.Routes, route(s))
		}
		return g
	}
	return []composeCase{
		{
			name:  "shop",
			files: []string{"shop/docker-compose.yml"},
			want: func(dir string) *Cell {
				return &Cell{Name: "shop", Gateway: cgw(8080, "web"), Services: map[string]*Service{
					"web": {Name: "web", Build: &Build{Context: filepath.Join(dir, "web")}, Port: 8080,
						Env: map[string]string{
							"DATABASE_URL": "postgres://shop:shop@db:5432/shop",
							"REDIS_URL":    "redis://cache:6379/0",
							"PORT":         "8080",
						},
						Replicas: 1, Restart: RestartAlways, DependsOn: []string{"cache", "db"}},
					"db": {Name: "db", Image: "postgres:16-alpine",
						Env:      map[string]string{"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": "shop", "POSTGRES_DB": "shop"},
						Replicas: 1, Restart: RestartAlways,
						Health: health("5s", "3s", 10, "", "/bin/sh", "-c", "pg_isready -U shop -d shop"),
						Volumes: []Volume{
							{Type: VolumeNamed, Source: "db-data", Target: "/var/lib/postgresql/data"},
							{Type: VolumeBind, Source: filepath.Join(dir, "db/init.sql"), Target: "/docker-entrypoint-initdb.d/init.sql", ReadOnly: true},
						}},
					"cache": {Name: "cache", Image: "redis:7-alpine", Command: []string{"redis-server", "--appendonly", "yes"},
						Replicas: 1, Restart: RestartAlways,
						Health:  health("5s", "1s", 3, "", "redis-cli", "ping"),
						Volumes: []Volume{{Type: VolumeNamed, Source: "cache-data", Target: "/data"}}},
				}}
			},
		},
		{
			name:  "build-args",
			files: []string{"build-args/compose.yaml"},
			want: func(dir string) *Cell {
				return &Cell{Name: "builder", Gateway: gw(8181, "api"), Services: map[string]*Service{
					"api": {Name: "api",
						Build: &Build{Context: filepath.Join(dir, "api"), Dockerfile: "Dockerfile.prod",
							Args: map[string]string{"GO_VERSION": "1.23", "GIT_SHA": "dev"}, Target: "runtime"},
						Port:       8080,
						Command:    []string{"/api", "--listen", ":8080", "--log-format", "json lines"},
						Entrypoint: []string{"/sbin/tini", "--"},
						Replicas:   1, Restart: RestartAlways},
					"worker": {Name: "worker",
						Build: &Build{Context: dir, Dockerfile: "worker/Dockerfile", Args: map[string]string{"QUEUE": "jobs"}, Target: "worker"},
						Env:   map[string]string{"QUEUE": "jobs"}, Replicas: 1, Restart: RestartAlways},
				}}
			},
		},
		{
			name:  "build-args-env",
			files: []string{"build-args/compose.yaml"},
			env:   map[string]string{"GIT_SHA": "abc123", "BUILD_ENV": "ci"},
			want: func(dir string) *Cell {
				return &Cell{Name: "builder", Gateway: gw(8181, "api"), Services: map[string]*Service{
					"api": {Name: "api",
						Build: &Build{Context: filepath.Join(dir, "api"), Dockerfile: "Dockerfile.prod",
							Args: map[string]string{"GO_VERSION": "1.23", "GIT_SHA": "abc123"}, Target: "runtime"},
						Port:       8080,
						Command:    []string{"/api", "--listen", ":8080", "--log-format", "json lines"},
						Entrypoint: []string{"/sbin/tini", "--"},
						Replicas:   1, Restart: RestartAlways},
					"worker": {Name: "worker",
						Build: &Build{Context: dir, Dockerfile: "worker/Dockerfile", Args: map[string]string{"QUEUE": "jobs", "BUILD_ENV": "ci"}, Target: "worker"},
						Env:   map[string]string{"QUEUE": "jobs"}, Replicas: 1, Restart: RestartAlways},
				}}
			},
		},
		{
			name:  "healthchecks",
			files: []string{"healthchecks/compose.yaml"},
			want: func(string) *Cell {
				return &Cell{Name: "healthchecks", Gateway: cgw(8000, "api"), Services: map[string]*Service{
					"api": {Name: "api", Image: "ghcr.io/example/api:1.2", Port: 8000, Replicas: 1, Restart: RestartAlways,
						Health: health("10s", "2s", 5, "15s", "wget", "-qO-", "http://localhost:8000/healthz")},
					"worker": {Name: "worker", Image: "ghcr.io/example/worker:1.2", Replicas: 1, Restart: RestartAlways,
						Health: health("1m30s", "1s", 3, "", "/bin/sh", "-c", `pgrep -f "worker --queue default" || exit 1`)},
					"legacy":    {Name: "legacy", Image: "ghcr.io/example/legacy:0.9", Replicas: 1, Restart: RestartAlways},
					"batch":     {Name: "batch", Image: "ghcr.io/example/batch:1.0", Replicas: 1, Restart: RestartAlways},
					"inherited": {Name: "inherited", Image: "ghcr.io/example/inherited:2.0", Replicas: 1, Restart: RestartAlways},
				}}
			},
		},
		{
			name:  "profiles",
			files: []string{"profiles/compose.yaml"},
			want: func(string) *Cell {
				return &Cell{Name: "profiles", Gateway: cgw(8088, "app"), Services: map[string]*Service{
					"app": {Name: "app", Image: "nginx:1.27-alpine", Port: 80, Replicas: 1, Restart: RestartAlways},
					"db": {Name: "db", Image: "postgres:16-alpine", Env: map[string]string{"POSTGRES_PASSWORD": "example"},
						Replicas: 1, Restart: RestartAlways},
				}}
			},
		},
		{
			name:  "profiles-tools",
			files: []string{"profiles/compose.yaml"},
			env:   map[string]string{"COMPOSE_PROFILES": "tools"},
			want: func(string) *Cell {
				return &Cell{Name: "profiles", Gateway: cgw(8089, "adminer", Listener{Port: 8088, Service: "app"}), Services: map[string]*Service{
					"app": {Name: "app", Image: "nginx:1.27-alpine", Port: 80, Replicas: 1, Restart: RestartAlways,
						DependsOn: []string{"mailpit"}},
					"adminer": {Name: "adminer", Image: "adminer:4", Port: 8080, Replicas: 1, Restart: RestartAlways,
						DependsOn: []string{"db"}},
					"db": {Name: "db", Image: "postgres:16-alpine", Env: map[string]string{"POSTGRES_PASSWORD": "example"},
						Replicas: 1, Restart: RestartAlways},
					"mailpit": {Name: "mailpit", Image: "axllent/mailpit:v1.20", Port: 8025, Replicas: 1, Restart: RestartAlways},
				}}
			},
		},
		{
			name:  "extends",
			files: []string{"extends/compose.yaml"},
			want: func(string) *Cell {
				base := func(name, image string, env map[string]string) *Service {
					return &Service{Name: name, Image: image, Port: 8080, Env: env, Replicas: 1, Restart: RestartOnFailure,
						Health: health("15s", "1s", 3, "", "/bin/healthcheck")}
				}
				return &Cell{Name: "extends", Gateway: cgw(9000, "orders"), Services: map[string]*Service{
					"orders":  base("orders", "example/orders:2.1", map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "debug"}),
					"billing": base("billing", "example/billing:1.4", map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "info"}),
					"audit":   base("audit", "example/audit:0.9", map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "info", "AUDIT_SINK": "stdout"}),
				}}
			},
		},
		{
			name:  "envfile",
			files: []string{"envfile/compose.yaml"},
			want: func(string) *Cell {
				return &Cell{Name: "envfile", Gateway: cgw(9090, "api"), Services: map[string]*Service{
					"api": {Name: "api", Image: "example/api:1.8.2", Port: 8000, Replicas: 1, Restart: RestartAlways,
						Env: map[string]string{
							"DB_HOST": "db", "DB_POOL": "10", "FEATURE_FLAGS": "search,recommendations",
							"LOG_LEVEL": "warn", "REGION": "eu-west-1", "SENTRY_DSN": "", "PRICE_LABEL": "$9.99",
						}},
					"db": {Name: "db", Image: "postgres:16-alpine", Replicas: 1, Restart: RestartAlways,
						Env:     map[string]string{"POSTGRES_PASSWORD": "secret", "POSTGRES_DB": "app"},
						Volumes: []Volume{{Type: VolumeNamed, Source: "pgdata", Target: "/var/lib/postgresql/data"}}},
				}}
			},
		},
		{
			// The environment wins over .env, as for docker compose.
			name:  "envfile-override",
			files: []string{"envfile/compose.yaml"},
			env:   map[string]string{"TAG": "2.0.0", "API_PORT": "9191", "SENTRY_DSN": "https://sentry.example/1", "DEBUG": "1", "PG_VERSION": "17"},
			want: func(string) *Cell {
				return &Cell{Name: "envfile", Gateway: cgw(9191, "api"), Services: map[string]*Service{
					"api": {Name: "api", Image: "example/api:2.0.0", Port: 8000, Replicas: 1, Restart: RestartAlways,
						Env: map[string]string{
							"DB_HOST": "db", "DB_POOL": "10", "FEATURE_FLAGS": "search,recommendations",
							"LOG_LEVEL": "warn", "REGION": "eu-west-1", "SENTRY_DSN": "https://sentry.example/1",
							"PRICE_LABEL": "$9.99", "DEBUG": "1",
						}},
					"db": {Name: "db", Image: "postgres:17-alpine", Replicas: 1, Restart: RestartAlways,
						Env:     map[string]string{"POSTGRES_PASSWORD": "secret", "POSTGRES_DB": "app"},
						Volumes: []Volume{{Type: VolumeNamed, Source: "pgdata", Target: "/var/lib/postgresql/data"}}},
				}}
			},
		},
		{
			name:  "storefront",
			files: []string{"storefront/compose.yaml", "accounts/compose.yaml"},
			want: func(dir string) *Cell {
				return &Cell{Name: "storefront", Uses: []string{"accounts"},
					Gateway: Gateway{Port: 8090, Balance: BalanceLeastRequest, Routes: []Route{
						{Path: "/api", Service: "api", StripPrefix: true, Timeout: d("5s"), Retries: 1},
						{Path: "/", Service: "frontend", Timeout: DefaultRouteTimeout, Retries: DefaultRouteRetries},
					}, Listeners: []Listener{{Port: 3000, Service: "frontend"}}},
					Services: map[string]*Service{
						"frontend": {Name: "frontend", Build: &Build{Context: filepath.Join(dir, "frontend")}, Port: 3000,
							Env: map[string]string{"API_URL": "http://api:8080"}, Replicas: 1, Restart: RestartAlways,
							Health: &Health{HTTP: "/", Interval: d("5s"), Timeout: DefaultHealthTimeout, Retries: 3}},
						"api": {Name: "api", Build: &Build{Context: filepath.Join(dir, "api")}, Port: 8080,
							Env: map[string]string{"ACCOUNTS_URL": "http://accounts:8091/users"}, Replicas: 2, Restart: RestartAlways,
							Health:    &Health{HTTP: "/healthz", Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Retries: 2},
							Autoscale: &Autoscale{Min: 2, Max: 10, Inflight: 20, CPU: 75, ScaleDownAfter: d("1m")}},
					}}
			},
		},
		{
			name:  "accounts",
			files: []string{"accounts/compose.yaml"},
			want: func(string) *Cell {
				return &Cell{Name: "accounts", Gateway: gw(8091, "users"), Services: map[string]*Service{
					"users": {Name: "users", Image: "example/users:3.2", Port: 8080, Replicas: 2, Restart: RestartAlways,
						Autoscale: &Autoscale{Min: 1, Max: 4, RPS: 150, ScaleDownAfter: DefaultScaleDownAfter}},
				}}
			},
		},
		{
			name:  "deploy",
			files: []string{"deploy/compose.yaml"},
			want: func(string) *Cell {
				return &Cell{Name: "deploy", Gateway: cgw(8000, "api"), Services: map[string]*Service{
					"api": {Name: "api", Image: "example/api:5", Port: 8000, Replicas: 3, Restart: RestartOnFailure,
						Resources: Resources{CPUs: 0.5, Memory: 256 << 20}},
					"worker": {Name: "worker", Image: "example/worker:5", Replicas: 2, Restart: RestartNever,
						Resources: Resources{CPUs: 1.5, Memory: 1 << 30}},
					"cron": {Name: "cron", Image: "example/cron:5", Replicas: 1, Restart: RestartAlways},
				}}
			},
		},
		{
			name:  "depends",
			files: []string{"depends/compose.yaml"},
			want: func(string) *Cell {
				return &Cell{Name: "depends", Gateway: cgw(5000, "app"), Services: map[string]*Service{
					"app": {Name: "app", Image: "example/app:1", Port: 5000, Replicas: 1, Restart: RestartAlways,
						DependsOn: []string{"cache", "db", "migrate"}},
					"migrate": {Name: "migrate", Image: "example/app:1", Command: []string{"./migrate", "up"},
						Replicas: 1, Restart: RestartNever, DependsOn: []string{"db"}},
					"db": {Name: "db", Image: "postgres:16-alpine", Env: map[string]string{"POSTGRES_PASSWORD": "example"},
						Replicas: 1, Restart: RestartAlways, Health: health("2s", "1s", 15, "", "/bin/sh", "-c", "pg_isready -U postgres")},
					"cache": {Name: "cache", Image: "redis:7-alpine", Replicas: 1, Restart: RestartAlways},
				}}
			},
		},
		{
			name:  "ports",
			files: []string{"ports/compose.yaml"},
			want: func(string) *Cell {
				svc := func(name, image string, port int) *Service {
					return &Service{Name: name, Image: image, Port: port, Replicas: 1, Restart: RestartAlways}
				}
				return &Cell{Name: "ports", Gateway: cgw(9001, "admin", Listener{Port: 18080, Service: "api"}, Listener{Port: 9100, Service: "web"}), Services: map[string]*Service{
					"admin":   svc("admin", "example/admin:1", 9000),
					"api":     svc("api", "example/api:1", 8080),
					"dns":     svc("dns", "coredns/coredns:1.11.1", 53),
					"web":     svc("web", "nginx:1.27-alpine", 9100),
					"metrics": svc("metrics", "prom/prometheus:v2.54.1", 9090),
				}}
			},
		},
	}
}

// cellOpts compares cells on what they mean, not where they came from.
var cellOpts = cmp.Options{
	cmpopts.IgnoreFields(Cell{}, "File", "Source"),
	cmpopts.IgnoreUnexported(Cell{}),
	cmpopts.EquateEmpty(),
}

func absTestdata(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(composeRoot)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestLoadCompose(t *testing.T) {
	root := absTestdata(t)
	for _, tc := range composeCases() {
		t.Run(tc.name, func(t *testing.T) {
			var files []string
			for _, f := range tc.files {
				files = append(files, filepath.Join(root, f))
			}
			p, err := Load(Options{Files: files, Env: MapEnv(tc.env)})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			name := tc.want(filepath.Dir(files[0])).Name
			got := p.Cell(name)
			if got == nil {
				t.Fatalf("no cell %q", name)
			}
			if got.Source != "compose" || got.File != files[0] {
				t.Errorf("Source, File = %q, %q; want compose, %s", got.Source, got.File, files[0])
			}
			if diff := cmp.Diff(tc.want(filepath.Dir(files[0])), got, cellOpts); diff != "" {
				t.Errorf("cell (-want +got):\n%s", diff)
			}

			var b strings.Builder
			for _, w := range p.Warnings {
				if w.Pos.File != files[0] && filepath.Dir(w.Pos.File) != filepath.Dir(files[0]) {
					continue // the other cells' warnings
				}
				b.WriteString(w.String())
				b.WriteByte('\n')
			}
			checkComposeGolden(t, tc.name+".warnings.golden", strings.ReplaceAll(b.String(), root, "$TESTDATA"))
		})
	}
}

// TestConvertCompose converts every example, compares the YAML with its
// golden file, then loads the YAML as a cell file beside a copy of the
// example and checks that it is the cell the compose file loads as.
func TestConvertCompose(t *testing.T) {
	root := absTestdata(t)
	for _, tc := range composeCases() {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			var composeFiles, cellFiles []string
			for _, f := range tc.files {
				dir := filepath.Dir(f)
				if err := os.CopyFS(filepath.Join(tmp, dir), os.DirFS(filepath.Join(root, dir))); err != nil && !errors.Is(err, fs.ErrExist) {
					t.Fatal(err)
				}
				cf := filepath.Join(tmp, f)
				out, _, err := ConvertCompose(cf, MapEnv(tc.env))
				if err != nil {
					t.Fatalf("ConvertCompose(%s): %v", f, err)
				}
				if len(composeFiles) == 0 {
					checkComposeGolden(t, tc.name+".convert.golden", string(out))
				}
				cell := filepath.Join(tmp, dir, "cell.yaml")
				if err := os.WriteFile(cell, out, 0o644); err != nil {
					t.Fatal(err)
				}
				composeFiles = append(composeFiles, cf)
				cellFiles = append(cellFiles, cell)
			}

			fromCompose, err := Load(Options{Files: composeFiles, Env: MapEnv(tc.env)})
			if err != nil {
				t.Fatalf("Load compose: %v", err)
			}
			fromCell, err := Load(Options{Files: cellFiles, Env: MapEnv(tc.env)})
			if err != nil {
				t.Fatalf("Load converted cell: %v", err)
			}
			if len(fromCell.Warnings) > 0 {
				t.Errorf("converted cell has warnings: %v", fromCell.Warnings)
			}
			if diff := cmp.Diff(fromCompose.Cells, fromCell.Cells, cellOpts); diff != "" {
				t.Errorf("converted cell differs from the compose cell (-compose +cell):\n%s", diff)
			}

			// LoadCell reads the same cell on its own.
			data, err := os.ReadFile(cellFiles[0])
			if err != nil {
				t.Fatal(err)
			}
			c, _, err := LoadCell(cellFiles[0], data, MapEnv(tc.env))
			if err != nil {
				t.Fatalf("LoadCell: %v", err)
			}
			if diff := cmp.Diff(fromCompose.Cell(c.Name), c, cellOpts); diff != "" {
				t.Errorf("LoadCell (-compose +cell):\n%s", diff)
			}
		})
	}
}

func checkComposeGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "compose", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// writeCompose writes a compose file (and any other files) into a fresh
// directory named dir and returns the compose file's path.
func writeCompose(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	base := filepath.Join(t.TempDir(), dir)
	for name, content := range files {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(base, "compose.yaml")
}

// TestComposeProblems checks that compose files that cannot become a valid
// cell are reported with the file, line, column and key path.
func TestComposeProblems(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // "line:col: message", file name left out
	}{
		{
			name: "no gateway port",
			files: map[string]string{"compose.yaml": `services:
  web:
    image: nginx
    expose: ["80"]
`},
			want: []string{"1:1: x-orchestro.gateway.port: required: no service publishes a host port to use as the cell's gateway port (add at the top level:  x-orchestro: {gateway: {port: 8080}})"},
		},
		{
			name: "x-orchestro typos",
			files: map[string]string{"compose.yaml": `x-orchestro:
  gateway:
    port: 8080
    balanse: least_request
  use: [other]
services:
  web:
    image: nginx
    expose: ["80"]
    x-orchestro:
      autoscal: {max: 3}
`},
			want: []string{
				`4:5: gateway.balanse: unknown key "balanse" (did you mean "balance"?)`,
				`5:3: x-orchestro.use: unknown key "use" (did you mean "uses"?)`,
				`11:7: services.web.x-orchestro.autoscal: unknown key "autoscal" (did you mean "autoscale"?)`,
			},
		},
		{
			name: "validation points at compose lines",
			files: map[string]string{"compose.yaml": `x-orchestro:
  gateway: {port: 8080}
services:
  web:
    image: nginx
    expose: ["80"]
    deploy:
      replicas: 9
    restart: sometimes
    x-orchestro:
      autoscale:
        max: 4
        inflight: 5
  db:
    image: postgres
    depends_on: [web]
  web2:
    image: nginx
    depends_on: [db]
    x-orchestro:
      health: {http: healthz}
`},
			want: []string{
				`8:17: services.web.replicas: replicas 9 is outside the autoscale bounds (autoscale bounds are 1-4)`,
				`9:14: services.web.restart: unknown restart policy "sometimes" (always, on-failure or never)`,
				`21:15: services.web2.health: an http or tcp health check needs the service's port (give the service a port)`,
				`21:22: services.web2.health.http: health path "healthz" must start with / (write /healthz)`,
			},
		},
		{
			name: "port out of range",
			files: map[string]string{"compose.yaml": `x-orchestro:
  gateway: {port: 70000}
services:
  web:
    image: nginx
    x-orchestro: {port: 0}
`},
			want: []string{
				`2:19: gateway.port: port 70000 is out of range 1-65535`,
				`6:25: services.web.port: port 0 is out of range 1-65535`,
			},
		},
		{
			name: "unknown compose key",
			files: map[string]string{"compose.yaml": `services:
  web:
    image: nginx
    ports: ["8080:80"]
    deploy:
      replicaz: 2
`},
			want: []string{`6:17: services.web.deploy.replicaz: unknown key "replicaz" (did you mean "replicas"?)`},
		},
		{
			name: "required variable",
			files: map[string]string{"compose.yaml": `services:
  web:
    image: nginx:${TAG:?set TAG to the release}
    ports: ["8080:80"]
`},
			want: []string{`3:12: services.web.image: required variable TAG is missing a value: set TAG to the release`},
		},
		{
			name: "undefined dependency",
			files: map[string]string{"compose.yaml": `services:
  web:
    image: nginx
    ports: ["8080:80"]
    depends_on: [db]
`},
			want: []string{`2:3: services.web: service "web" depends on undefined service "db": invalid compose project`},
		},
		{
			name: "invalid service name",
			files: map[string]string{"compose.yaml": `services:
  Web_1:
    image: nginx
    ports: ["8080:80"]
`},
			want: []string{`2:3: services.Web_1: invalid service name "Web_1" (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit)`},
		},
		{
			name: "invalid YAML",
			files: map[string]string{"compose.yaml": `services:
  web:
    image: nginx
    ports: ["8080:80"
`},
			want: []string{`3:1: invalid YAML: did not find expected ',' or ']'`},
		},
		{
			name: "missing env file",
			files: map[string]string{"compose.yaml": `services:
  web:
    image: nginx
    ports: ["8080:80"]
    env_file: web.env
`},
			want: []string{`env file $DIR/web.env not found: stat $DIR/web.env: no such file or directory`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeCompose(t, "app", tt.files)
			_, err := Load(Options{Files: []string{path}, Env: MapEnv(nil)})
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Load error = %v, want Problems", err)
			}
			var got []string
			for _, p := range probs {
				s := strings.TrimPrefix(p.String(), path)
				s = strings.TrimPrefix(s, ":")
				s = strings.ReplaceAll(s, filepath.Dir(path), "$DIR")
				got = append(got, strings.TrimPrefix(s, " "))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if _, _, err := ConvertCompose(path, MapEnv(nil)); !errors.As(err, &probs) {
				t.Errorf("ConvertCompose error = %v, want Problems", err)
			}
		})
	}
}

// TestComposeNameAndPositions checks the cell name and that positions of
// the compose file back the cell's field paths.
func TestComposeNameAndPositions(t *testing.T) {
	path := writeCompose(t, "My_Project.v2", map[string]string{"compose.yaml": `services:
  web:
    image: nginx
    expose: ["80"]
    ports:
      - "8080:80"
    deploy:
      replicas: 2
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - /cache
      - type: tmpfs
        target: /tmp
      - logs:/var/log/nginx
    depends_on: [api]
  api:
    image: example/api
volumes:
  logs:
`})
	rc, warns, probs := loadCompose(path, MapEnv(nil))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	c := rc.cell
	// As docker compose does, the name keeps letters, digits, '-' and '_'
	// only; orchestro then turns '_' into '-'.
	if c.Name != "my-projectv2" {
		t.Errorf("cell name = %q, want my-projectv2", c.Name)
	}
	for path, want := range map[string]string{
		"cell":                    "1:1",
		"services.web":            "2:3",
		"services.web.image":      "3:12",
		"services.web.port":       "4:14",
		"services.web.replicas":   "8:17",
		"services.web.volumes":    "9:5",
		"services.web.volumes[0]": "10:9",
		"services.web.volumes[1]": "14:9",
		"services.web.depends_on": "15:5",
		"gateway.port":            "6:9",
	} {
		pos := c.pos.at(path)
		if got := strings.TrimPrefix(pos.String(), pos.File+":"); got != want {
			t.Errorf("position of %s = %s, want %s", path, got, want)
		}
	}
	wantVolumes := []Volume{
		{Type: VolumeBind, Source: filepath.Join(filepath.Dir(path), "html"), Target: "/usr/share/nginx/html", ReadOnly: true},
		{Type: VolumeNamed, Source: "logs", Target: "/var/log/nginx"},
	}
	if diff := cmp.Diff(wantVolumes, c.Services["web"].Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	var got []string
	for _, w := range warns {
		got = append(got, strings.TrimPrefix(w.String(), path+":"))
	}
	want := []string{
		"6:9: x-orchestro.gateway.port: not set; the gateway takes host port 8080, published by services.web.ports[0], and sends every request there to web (add x-orchestro: {gateway: {port: N}} to choose)",
		"11:9: services.web.volumes[1]: anonymous volume not honoured by orchestro (name it, as in data:/path)",
		"12:9: services.web.volumes[2]: tmpfs mount not honoured by orchestro (only bind mounts and named volumes)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestComposeLogrusQuiet checks that compose-go's logrus output never
// reaches the terminal: it becomes warnings, and the logger is restored.
// logrus writes to its Out, stderr by default; a buffer stands in for it.
// The file makes compose-go log twice (an obsolete version key and an unset
// variable), from concurrent loads.
func TestComposeLogrusQuiet(t *testing.T) {
	std := logrus.StandardLogger()
	var out syncBuffer
	oldOut, oldLevel := std.Out, std.GetLevel()
	std.SetOutput(&out)
	std.SetLevel(logrus.InfoLevel)
	t.Cleanup(func() {
		std.SetOutput(oldOut)
		std.SetLevel(oldLevel)
	})

	path := writeCompose(t, "noisy", map[string]string{"compose.yaml": `version: "3.8"
services:
  web:
    image: nginx:${NGINX_TAG}
    ports: ["8080:80"]
`})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := Load(Options{Files: []string{path}, Env: MapEnv(nil)})
			if err != nil {
				t.Error(err)
				return
			}
			var got []string
			for _, w := range p.Warnings {
				got = append(got, strings.TrimPrefix(w.String(), path+":"))
			}
			want := []string{
				"1:1: version: obsolete and ignored",
				"4:12: services.web.image: variable NGINX_TAG is not set; using an empty string",
				"5:13: x-orchestro.gateway.port: not set; the gateway takes host port 8080, published by services.web.ports[0], and sends every request there to web (add x-orchestro: {gateway: {port: N}} to choose)",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		}()
	}
	wg.Wait()
	if out.String() != "" {
		t.Errorf("logrus wrote during the load:\n%s", out.String())
	}
	if std.Out != io.Writer(&out) || std.GetLevel() != logrus.InfoLevel {
		t.Errorf("logrus output or level not restored")
	}
	logrus.Info("after")
	if !strings.Contains(out.String(), "after") {
		t.Errorf("logrus does not log after a load: %q", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestComposeIncludeAndExtendsWarnings checks that keys pulled in from
// other files are reported where they are written.
func TestComposeIncludeAndExtendsWarnings(t *testing.T) {
	path := writeCompose(t, "inc", map[string]string{
		"compose.yaml": `include:
  - infra/compose.yaml
services:
  web:
    extends: {file: base.yaml, service: base}
    ports: ["8080:80"]
    depends_on: [cache]
`,
		"base.yaml": `services:
  base:
    image: nginx
    privileged: true
`,
		"infra/compose.yaml": `services:
  cache:
    image: redis:7
    cap_add: [NET_ADMIN]
`,
	})
	p, err := Load(Options{Files: []string{path}, Env: MapEnv(nil)})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	var got []string
	for _, w := range p.Warnings {
		got = append(got, strings.ReplaceAll(w.String(), dir, "$DIR"))
	}
	want := []string{
		"$DIR/base.yaml:4:5: services.base.privileged: not honoured by orchestro",
		"$DIR/compose.yaml:6:13: x-orchestro.gateway.port: not set; the gateway takes host port 8080, published by services.web.ports[0], and sends every request there to web (add x-orchestro: {gateway: {port: N}} to choose)",
		"$DIR/infra/compose.yaml:4:5: services.cache.cap_add: not honoured by orchestro",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if c := p.Cells[0]; c.Services["cache"] == nil || c.Services["web"].Image != "nginx" {
		t.Errorf("services = %v, want web (nginx) and cache", c.ServiceNames())
	}

	// A relative path names the other files relatively too.
	t.Chdir(filepath.Dir(dir))
	_, warns, err := ConvertCompose(filepath.Join("inc", "compose.yaml"), MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, w := range warns {
		got = append(got, w.String())
	}
	want = []string{
		"inc/base.yaml:4:5: services.base.privileged: not honoured by orchestro",
		"inc/compose.yaml:6:13: x-orchestro.gateway.port: not set; the gateway takes host port 8080, published by services.web.ports[0], and sends every request there to web (add x-orchestro: {gateway: {port: N}} to choose)",
		"inc/infra/compose.yaml:4:5: services.cache.cap_add: not honoured by orchestro",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings with a relative path (-want +got):\n%s", diff)
	}
}

// TestComposeExtensionInterpolated checks that x-orchestro values are
// interpolated like the rest of the file, from the environment and .env.
func TestComposeExtensionInterpolated(t *testing.T) {
	path := writeCompose(t, "ext", map[string]string{
		".env": "GATEWAY_PORT=8300\nMAX_REPLICAS=6\n",
		"compose.yaml": `x-orchestro:
  gateway:
    port: ${GATEWAY_PORT}
    routes:
      - {path: /, service: web, timeout: "${ROUTE_TIMEOUT:-10s}"}
services:
  web:
    image: nginx
    expose: ["80"]
    x-orchestro:
      autoscale: {max: "${MAX_REPLICAS}", rps: 50}
`,
	})
	p, err := Load(Options{Files: []string{path}, Env: MapEnv(map[string]string{"ROUTE_TIMEOUT": "3s"})})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Cells[0]
	want := Gateway{Port: 8300, Balance: BalanceRoundRobin, Routes: []Route{
		{Path: "/", Service: "web", Timeout: Duration(3 * time.Second), Retries: DefaultRouteRetries},
	}}
	if diff := cmp.Diff(want, c.Gateway); diff != "" {
		t.Errorf("gateway (-want +got):\n%s", diff)
	}
	if a := c.Services["web"].Autoscale; a == nil || a.Max != 6 || a.RPS != 50 {
		t.Errorf("autoscale = %+v, want max 6, rps 50", a)
	}
	if len(p.Warnings) > 0 {
		t.Errorf("warnings: %v", p.Warnings)
	}
}

// TestComposeProcessEnv checks that without an explicit Env the process
// environment is used, and wins over .env.
func TestComposeProcessEnv(t *testing.T) {
	t.Setenv("ORCHESTRO_COMPOSE_TEST_TAG", "1.27")
	path := writeCompose(t, "penv", map[string]string{
		".env":         "ORCHESTRO_COMPOSE_TEST_TAG=0.1\n",
		"compose.yaml": "services:\n  web:\n    image: nginx:${ORCHESTRO_COMPOSE_TEST_TAG}\n    ports: [\"8080:80\"]\n",
	})
	p, err := Load(Options{Files: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Cells[0].Services["web"].Image; got != "nginx:1.27" {
		t.Errorf("image = %q, want nginx:1.27", got)
	}
}
