package proxy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
)

func TestRouterMatch(t *testing.T) {
	routes := []cellspec.Route{
		{Path: "/orders", Service: "orders", StripPrefix: true},
		{Path: "/orders/admin/", Service: "admin"},
		{Path: "/users", Service: "users"},
		{Path: "/", Service: "web", StripPrefix: true},
	}
	noRoot := routes[:3]

	type result struct {
		Service string
		Path    string
	}
	tests := []struct {
		name   string
		routes []cellspec.Route
		path   string
		want   *result
	}{
		{"exact prefix stripped to root", routes, "/orders", &result{"orders", "/"}},
		{"below prefix stripped", routes, "/orders/42/items", &result{"orders", "/42/items"}},
		{"trailing slash", routes, "/orders/", &result{"orders", "/"}},
		{"longer prefix wins, not stripped", routes, "/orders/admin/x", &result{"admin", "/orders/admin/x"}},
		{"longer prefix itself", routes, "/orders/admin", &result{"admin", "/orders/admin"}},
		{"no partial segment match", routes, "/ordersx", &result{"web", "/ordersx"}},
		{"kept when not stripping", routes, "/users/7", &result{"users", "/users/7"}},
		{"root matches root", routes, "/", &result{"web", "/"}},
		{"root matches anything", routes, "/static/app.js", &result{"web", "/static/app.js"}},
		{"no match without root", noRoot, "/static/app.js", nil},
		{"partial segment without root", noRoot, "/usersx", nil},
		{"no routes", nil, "/orders", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := NewRouter(tt.routes)
			r, path := rt.Match(tt.path)
			var got *result
			if r != nil {
				got = &result{r.Service, path}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Match(%q) mismatch (-want +got):\n%s", tt.path, diff)
			}
		})
	}
}

func TestNewRouterNormalizes(t *testing.T) {
	rt := NewRouter([]cellspec.Route{
		{Path: "api/", Service: "api", Timeout: cellspec.Duration(5 * time.Second), Retries: 1},
		{Path: "/", Service: "web", Retries: -3},
		{Path: "/api", Service: "shadowed"},
		{Path: "/api/v2", Service: "api"},
	})
	want := []Route{
		{Prefix: "/api/v2", Service: "api", Timeout: DefaultTimeout, Name: "/api/v2", svc: 0},
		{Prefix: "/api", Service: "api", Timeout: 5 * time.Second, Retries: 1, Name: "/api", svc: 0},
		{Prefix: "/", Service: "web", Timeout: DefaultTimeout, Name: "/", svc: 1},
	}
	if diff := cmp.Diff(want, rt.Routes(), cmp.AllowUnexported(Route{})); diff != "" {
		t.Errorf("routes mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"api", "web"}, rt.Services()); diff != "" {
		t.Errorf("services mismatch (-want +got):\n%s", diff)
	}
}

func TestGatewayRouterListeners(t *testing.T) {
	rt := NewGatewayRouter(cellspec.Gateway{
		Port:      8081,
		Routes:    []cellspec.Route{{Path: "/api", Service: "api", StripPrefix: true}},
		Listeners: []cellspec.Listener{{Port: 3000, Service: "web"}, {Port: 9090, Service: "api"}},
	})
	for _, tc := range []struct {
		port            int
		path            string
		service, upPath string
		name            string
		retries         int
		noRoute         bool
	}{
		{port: 8081, path: "/api/x", service: "api", upPath: "/x", name: "/api"},
		{port: 8081, path: "/", noRoute: true},
		{port: 0, path: "/api", service: "api", upPath: "/", name: "/api"},
		// A listener takes every path, as it is.
		{port: 3000, path: "/", service: "web", upPath: "/", name: ":3000", retries: DefaultRetries},
		{port: 3000, path: "/api/x", service: "web", upPath: "/api/x", name: ":3000", retries: DefaultRetries},
		{port: 9090, path: "/deep/path", service: "api", upPath: "/deep/path", name: ":9090", retries: DefaultRetries},
	} {
		r, up := rt.MatchOn(tc.port, tc.path)
		switch {
		case tc.noRoute && r != nil:
			t.Errorf("port %d %s: route %+v, want none", tc.port, tc.path, r)
		case tc.noRoute:
		case r == nil:
			t.Errorf("port %d %s: no route", tc.port, tc.path)
		case r.Service != tc.service || up != tc.upPath || r.Name != tc.name || (tc.retries != 0 && r.Retries != tc.retries):
			t.Errorf("port %d %s: %s %q %s retries %d, want %s %q %s", tc.port, tc.path, r.Service, up, r.Name, r.Retries, tc.service, tc.upPath, tc.name)
		}
	}
	if diff := cmp.Diff([]string{"api", "web"}, rt.Services()); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	if got, want := rt.describe(), "routes: /api -> api; port 3000 -> web; port 9090 -> api"; got != want {
		t.Errorf("describe: %q, want %q", got, want)
	}
}

func TestRouterMatchDoesNotAllocate(t *testing.T) {
	rt := NewRouter([]cellspec.Route{{Path: "/orders", Service: "orders", StripPrefix: true}, {Path: "/", Service: "web"}})
	allocs := testing.AllocsPerRun(100, func() {
		if r, _ := rt.Match("/orders/42"); r == nil {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Errorf("Match allocates %.1f times per call, want 0", allocs)
	}
}
