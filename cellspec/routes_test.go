package cellspec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultRoutes(t *testing.T) {
	svc := func(name string, port int) *Service {
		return &Service{Name: name, Image: "example/" + name, Port: port}
	}
	route := func(name string) Route {
		return Route{Path: "/" + name, Service: name, Timeout: DefaultRouteTimeout, Retries: DefaultRouteRetries}
	}
	tests := []struct {
		name     string
		services []*Service
		want     []Route
	}{
		{name: "no services", want: []Route{}},
		{name: "no service has a port", services: []*Service{svc("worker", 0), svc("cron", 0)}, want: []Route{}},
		{name: "only services with a port, by name", services: []*Service{svc("web", 80), svc("worker", 0), svc("api", 8080)},
			want: []Route{route("api"), route("web")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Cell{Services: map[string]*Service{}}
			for _, s := range tt.services {
				c.Services[s.Name] = s
			}
			got := DefaultRoutes(c)
			if got == nil {
				t.Fatal("DefaultRoutes returned nil, want a non-nil slice")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DefaultRoutes (-want +got):\n%s", diff)
			}
		})
	}
}

// routesCases are the three ways to write gateway.routes: leave it out (the
// default routes), write an empty list (no routes at all), or list routes.
var routesCases = []struct {
	name   string
	routes string // the routes key under gateway, indented by 4; "" leaves it out
	want   []Route
}{
	{name: "absent", want: []Route{
		{Path: "/api", Service: "api", Timeout: DefaultRouteTimeout, Retries: DefaultRouteRetries},
		{Path: "/web", Service: "web", Timeout: DefaultRouteTimeout, Retries: DefaultRouteRetries},
	}},
	{name: "empty list", routes: "    routes: []\n", want: []Route{}},
	{name: "explicit", routes: "    routes:\n      - {path: /, service: web, timeout: 5s, retries: 0}\n", want: []Route{
		{Path: "/", Service: "web", Timeout: Duration(5 * time.Second), Retries: 0},
	}},
}

// checkRoutes compares routes exactly: an empty list and nil differ, since
// the runtime takes the list as given.
func checkRoutes(t *testing.T, want []Route, c *Cell) {
	t.Helper()
	if c.Gateway.Routes == nil {
		t.Fatal("routes are nil after defaults, want a list")
	}
	if diff := cmp.Diff(want, c.Gateway.Routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	// config --json prints the project as encoding/json does: a cell with
	// no routes shows "routes": [], never null. The gateway process reads
	// the same JSON and must see the same list.
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 && !strings.Contains(string(data), `"routes":[]`) {
		t.Errorf("JSON of the cell lacks \"routes\":[]:\n%s", data)
	}
	var back Cell
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Gateway.Routes == nil || !cmp.Equal(want, back.Gateway.Routes) {
		t.Errorf("routes after a JSON round trip = %#v, want %#v", back.Gateway.Routes, want)
	}
}

func TestRoutesInCellFile(t *testing.T) {
	for _, tt := range routesCases {
		t.Run(tt.name, func(t *testing.T) {
			spec := "cell: shop\ngateway:\n    port: 8081\n" + tt.routes + `services:
  web: {image: example/web:1, port: 80}
  api: {image: example/api:1, port: 8080}
  worker: {image: example/worker:1}
`
			c, _, err := LoadCell("cell.yaml", []byte(spec), MapEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			checkRoutes(t, tt.want, c)
		})
	}
}

func TestRoutesInCompose(t *testing.T) {
	for _, tt := range routesCases {
		t.Run(tt.name, func(t *testing.T) {
			path := writeCompose(t, "shop", map[string]string{"compose.yaml": "x-orchestro:\n  gateway:\n    port: 8081\n" + tt.routes + `services:
  web: {image: example/web:1, expose: ["80"]}
  api: {image: example/api:1, expose: ["8080"]}
  worker: {image: example/worker:1}
`})
			p, err := Load(Options{Files: []string{path}, Env: MapEnv(nil)})
			checkRoutes(t, tt.want, oneCell(t, p, err))

			// convert keeps the meaning: the converted cell file loads
			// with the same routes.
			out, _, err := ConvertCompose(path, MapEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.want) == 0 && !strings.Contains(string(out), "routes: []") {
				t.Errorf("convert does not write routes: []:\n%s", out)
			}
			cellFile := filepath.Join(filepath.Dir(path), "cell.yaml")
			if err := os.WriteFile(cellFile, out, 0o644); err != nil {
				t.Fatal(err)
			}
			c, _, err := LoadCell(cellFile, out, MapEnv(nil))
			if err != nil {
				t.Fatalf("converted cell does not load: %v\n%s", err, out)
			}
			checkRoutes(t, tt.want, c)
		})
	}
}

// TestConvertKeepsNoRoutes: a compose cell that asked for no routes is
// converted with routes: [] even when the default routes would be empty
// too, so that giving a service a port later in the cell file does not
// bring routes the author had turned off.
func TestConvertKeepsNoRoutes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		routes string
		want   bool
	}{
		{name: "absent", want: false},
		{name: "empty list", routes: "    routes: []\n", want: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeCompose(t, "jobs", map[string]string{"compose.yaml": "x-orchestro:\n  gateway:\n    port: 8081\n" + tt.routes +
				"services:\n  worker: {image: example/worker:1}\n"})
			out, _, err := ConvertCompose(path, MapEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(out), "routes: []"); got != tt.want {
				t.Errorf("converted cell writes routes: [] = %v, want %v:\n%s", got, tt.want, out)
			}
		})
	}
}
