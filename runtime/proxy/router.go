package proxy

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// Route defaults, as documented for the cell file.
const (
	DefaultTimeout = 30 * time.Second
	DefaultRetries = 2
)

// Route is a compiled route: a normalized path prefix and what to do with
// the requests under it.
type Route struct {
	// Prefix is the path prefix without a trailing slash ("/" for the root).
	Prefix string
	// Service receives the matched requests.
	Service string
	// StripPrefix removes Prefix from the path sent upstream.
	StripPrefix bool
	// Timeout bounds each try up to the upstream's response headers.
	Timeout time.Duration
	// Retries is the number of further tries allowed on other replicas.
	Retries int
	// Port is, for a listener's route, the port whose every request it
	// takes; 0 for a path route.
	Port int
	// Name is what records call the route: Prefix, or ":<port>" for a
	// listener's.
	Name string

	svc int // index into Router.Services
}

// Router maps request paths to routes by longest prefix, and the ports
// of listeners to their route. It is immutable once built, so lookups
// need no lock and allocate nothing.
type Router struct {
	routes   []Route // longest prefix first
	services []string
	// byPort holds the listeners' routes by port.
	byPort map[int]*Route
}

// NewGatewayRouter compiles a gateway's routes and listeners: a
// listener's route takes every request that arrives on its port, with
// its path as it is, and the route defaults.
func NewGatewayRouter(g cellspec.Gateway) *Router {
	rt := NewRouter(g.Routes)
	for _, l := range g.Listeners {
		if rt.byPort == nil {
			rt.byPort = map[int]*Route{}
		}
		if _, dup := rt.byPort[l.Port]; dup {
			continue
		}
		idx := slices.Index(rt.services, l.Service)
		if idx < 0 {
			idx = len(rt.services)
			rt.services = append(rt.services, l.Service)
		}
		rt.byPort[l.Port] = &Route{Prefix: "/", Service: l.Service, Timeout: DefaultTimeout, Retries: DefaultRetries,
			Port: l.Port, Name: ":" + strconv.Itoa(l.Port), svc: idx}
	}
	return rt
}

// NewRouter compiles routes. Paths are normalized (a leading slash added, a
// trailing one removed), a zero timeout becomes DefaultTimeout and negative
// retries become 0. When two routes have the same prefix, the first wins;
// rejecting such specs is the validator's job.
func NewRouter(routes []cellspec.Route) *Router {
	rt := &Router{}
	svcIndex := map[string]int{}
	seen := map[string]bool{}
	for _, r := range routes {
		prefix := normalizePrefix(r.Path)
		if seen[prefix] {
			continue
		}
		seen[prefix] = true
		idx, ok := svcIndex[r.Service]
		if !ok {
			idx = len(rt.services)
			svcIndex[r.Service] = idx
			rt.services = append(rt.services, r.Service)
		}
		timeout := r.Timeout.D()
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		rt.routes = append(rt.routes, Route{
			Prefix:      prefix,
			Service:     r.Service,
			StripPrefix: r.StripPrefix,
			Timeout:     timeout,
			Retries:     max(r.Retries, 0),
			Name:        prefix,
			svc:         idx,
		})
	}
	// Longest first, so the first match is the longest; stable keeps the
	// spec's order in listings of equal-length prefixes.
	slices.SortStableFunc(rt.routes, func(a, b Route) int {
		return cmp.Compare(len(b.Prefix), len(a.Prefix))
	})
	return rt
}

func normalizePrefix(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	return p
}

// Match returns the route with the longest prefix matching path, and the
// path to send upstream (path itself, or the rest after the prefix when the
// route strips it; "/" when nothing is left). A prefix matches the path
// itself and everything below it: "/orders" matches "/orders" and
// "/orders/7" but not "/ordersx". The root route matches every path. Match
// returns nil when no route matches.
func (rt *Router) Match(path string) (*Route, string) {
	for i := range rt.routes {
		r := &rt.routes[i]
		rest, ok := matchPrefix(r.Prefix, path)
		if !ok {
			continue
		}
		if !r.StripPrefix {
			return r, path
		}
		return r, rest
	}
	return nil, ""
}

// MatchOn is Match for a request that arrived on port: the route of the
// listener of that port, when there is one, with the path as it is.
func (rt *Router) MatchOn(port int, path string) (*Route, string) {
	if rt.byPort != nil {
		if r := rt.byPort[port]; r != nil {
			return r, path
		}
	}
	return rt.Match(path)
}

// matchPrefix reports whether prefix matches path and returns what is left
// after it, starting with a slash.
func matchPrefix(prefix, path string) (string, bool) {
	if prefix == "/" {
		return path, true
	}
	if !strings.HasPrefix(path, prefix) {
		return "", false
	}
	switch {
	case len(path) == len(prefix):
		return "/", true
	case path[len(prefix)] == '/':
		return path[len(prefix):], true
	}
	return "", false
}

// Routes returns the compiled routes, longest prefix first.
func (rt *Router) Routes() []Route { return slices.Clone(rt.routes) }

// Services returns the services the routes lead to, in order of first
// appearance.
func (rt *Router) Services() []string { return slices.Clone(rt.services) }

// describe lists the routes for a "no route" answer.
func (rt *Router) describe() string {
	if len(rt.routes) == 0 {
		return "the cell has no routes"
	}
	var b strings.Builder
	b.WriteString("routes:")
	for _, r := range rt.routes {
		b.WriteString(" ")
		b.WriteString(r.Prefix)
		b.WriteString(" -> ")
		b.WriteString(r.Service)
		b.WriteString(";")
	}
	for _, port := range slices.Sorted(maps.Keys(rt.byPort)) {
		fmt.Fprintf(&b, " port %d -> %s;", port, rt.byPort[port].Service)
	}
	s := b.String()
	return s[:len(s)-1]
}
