package kube

import (
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/orchestro/orchestro/cellspec"
)

// localName is a name a cell's network gives that the namespace does not:
// what the network gives it to, why the namespace cannot, and what to use
// instead.
type localName struct {
	name, what, why, kube, kubeWhat string
}

// warnNames warns about each environment variable of a service whose value
// reaches a host by a name the cell's own network gives and the namespace
// does not (see the package documentation): one of the cell's services,
// the cell itself or a cell it uses, written as a URL's host
// ("http://users/…", "postgres://u:p@db/…") or as host:port
// ("cache:6379"). A name with a Service of its own (planLocalNames) works
// as it does locally and is not warned about. A bare word ("SERVICE_NAME:
// catalog") is not taken for a host.
func (x *exporter) warnNames(cell *cellspec.Cell, s *cellspec.Service) {
	if len(s.Env) == 0 {
		return
	}
	p := x.p
	gw := GatewayName(p.Name, cell.Name)
	var names []localName
	seen := map[string]bool{}
	// add records the first meaning of a name on the cell's network
	// (its services come first), and whether the namespace gives it.
	add := func(name string, given bool, n localName) {
		if seen[name] {
			return
		}
		seen[name] = true
		if !given {
			n.name = name
			names = append(names, n)
		}
	}
	for _, svc := range cell.ServiceNames() {
		add(svc, x.names.bare[svc] == cell.Name, localName{
			what: "this cell's service " + svc, why: x.names.noBare[cell.Name+"/"+svc],
			kube: ServiceName(p.Name, cell.Name, svc), kubeWhat: "its headless Service",
		})
	}
	add(cell.Name, x.names.cells[cell.Name], localName{
		what: "cell " + cell.Name, why: x.names.noCell[cell.Name],
		kube: gw, kubeWhat: "this cell's gateway Service",
	})
	for _, u := range cell.Uses {
		add(u, x.names.cells[u], localName{
			what: "cell " + u, why: x.names.noCell[u],
			kube: gw, kubeWhat: "this cell's gateway Service, which forwards to cell " + u,
		})
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		for _, n := range names {
			if hostPattern(n.name).MatchString(s.Env[k]) {
				x.warnf("cell %s, service %s: env %s reaches %q, a name the namespace cannot give %s as the cell's own network does (%s); use %q, %s",
					cell.Name, s.Name, k, n.name, n.what, n.why, n.kube, n.kubeWhat)
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
