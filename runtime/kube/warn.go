package kube

import (
	"fmt"
	"regexp"

	"github.com/orchestro/orchestro/cellspec"
)

// cellName is a name a cell's network gives, and what stands for it in a
// namespace.
type cellName struct {
	name, kube, what string
}

// warnNames warns about each environment variable of a service whose value
// reaches a host by a name only the cell's own network gives (see the
// package documentation): one of the cell's services, the cell itself or a
// cell it uses, written as a URL's host ("http://users/…",
// "postgres://u:p@db/…") or as host:port ("cache:6379"). A bare word
// ("SERVICE_NAME: catalog") is not taken for a host.
func (x *exporter) warnNames(cell *cellspec.Cell, s *cellspec.Service) {
	if len(s.Env) == 0 {
		return
	}
	p := x.p
	gw := GatewayName(p.Name, cell.Name)
	var names []cellName
	seen := map[string]bool{}
	add := func(n cellName) {
		if !seen[n.name] {
			seen[n.name] = true
			names = append(names, n)
		}
	}
	for _, svc := range cell.ServiceNames() {
		add(cellName{svc, ServiceName(p.Name, cell.Name, svc), "the headless Service of service " + svc})
	}
	add(cellName{cell.Name, gw, "this cell's gateway"})
	for _, u := range cell.Uses {
		add(cellName{u, gw, "this cell's gateway, which forwards to cell " + u})
	}
	for _, k := range sortedKeys(s.Env) {
		for _, n := range names {
			if hostPattern(n.name).MatchString(s.Env[k]) {
				x.warnf("cell %s, service %s: env %s reaches %q, a name only the cell's own network gives; in a Kubernetes namespace it is %q (%s)",
					cell.Name, s.Name, k, n.name, n.kube, n.what)
			}
		}
	}
}

// hostPattern matches name used as a host: followed by a port, or after
// the "//" or "@" of a URL and followed by its end or its path.
func hostPattern(name string) *regexp.Regexp {
	q := regexp.QuoteMeta(name)
	return regexp.MustCompile(fmt.Sprintf(`(?:^|[^A-Za-z0-9_.-])%s:[0-9]+|(?://|@)%s(?:[/?#]|$)`, q, q))
}
