package kube

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/orchestro/orchestro/cellspec"
)

// LabelReachesPrefix starts the label that a gateway pod template carries,
// set to "true", for each cell it forwards to on that cell's port: its own
// cell (ReachesLabel(cell)) and every cell of its uses:. The Service named
// after a cell selects the gateway pods with that cell's label.
const LabelReachesPrefix = "io.orchestro.reaches-"

// ReachesLabel is the key of the label that marks the gateway pods
// forwarding to cell on its port.
func ReachesLabel(cell string) string { return LabelReachesPrefix + cell }

// localNames records which names of the cells' own networks the namespace
// gives as well (see the package documentation, "Names inside a cell"),
// and why it does not give the others.
type localNames struct {
	// cells holds the cells with a Service of their own name.
	cells map[string]bool
	// noCell says, by cell, why a cell has none.
	noCell map[string]string
	// bare maps a service name that names a Service of its own to the
	// one cell that has a service of that name.
	bare map[string]string
	// noBare says, by "<cell>/<service>", why a service has none.
	noBare map[string]string
}

// planLocalNames decides which unprefixed Services the export holds: one
// per cell, named after it, unless the name cannot be a Service's or is
// taken by one of the export's prefixed Services; one per service whose
// name is unique in the project and is no cell's. It warns about each cell
// without its Service and each service named like a cell.
func (x *exporter) planLocalNames() {
	p := x.p
	n := localNames{cells: map[string]bool{}, noCell: map[string]string{}, bare: map[string]string{}, noBare: map[string]string{}}
	// The prefixed Service names, which the gateways rely on: a cell or
	// service named like one of them gives way.
	taken := map[string]string{}
	owners := map[string][]string{}
	for _, c := range p.Cells {
		taken[GatewayName(p.Name, c.Name)] = "the gateway Service of cell " + c.Name
		taken[GatewayPodsName(p.Name, c.Name)] = "the Service over the gateway pods of cell " + c.Name
		for _, s := range c.ServiceNames() {
			taken[ServiceName(p.Name, c.Name, s)] = fmt.Sprintf("the headless Service of service %s/%s", c.Name, s)
			owners[s] = append(owners[s], c.Name)
		}
	}
	if x.ns == "default" {
		taken["kubernetes"] = "the Service of the Kubernetes API in namespace default"
	}
	for _, c := range p.Cells {
		var why string
		switch {
		case !dns1035.MatchString(c.Name):
			why = "it is not a valid Service name, which starts with a letter"
		case len(validation.IsQualifiedName(ReachesLabel(c.Name))) > 0:
			why = fmt.Sprintf("the label %s that would select its gateways is longer than a label key may be (63 characters)", ReachesLabel(c.Name))
		case taken[c.Name] != "":
			why = "it is the name of " + taken[c.Name]
		}
		if why == "" {
			n.cells[c.Name] = true
			continue
		}
		n.noCell[c.Name] = why
		x.warnf("cell %s: no Service is named after the cell, as %s: inside it and the cells that use it, the name does not reach it; each of those cells reaches it through its own gateway Service, %s, on port %d",
			c.Name, why, GatewayName(p.Name, "<cell>"), c.Gateway.Port)
	}
	for _, c := range p.Cells {
		for _, s := range c.ServiceNames() {
			var why string
			switch {
			case p.Cell(s) != nil:
				why = "it is the name of cell " + s
				x.warnf("cell %s, service %s: the name %q is also cell %s's, and in the namespace it names no Service of this service: the service is reached as %s",
					c.Name, s, s, s, ServiceName(p.Name, c.Name, s))
			case len(owners[s]) > 1:
				why = fmt.Sprintf("cells %s each have a service of that name", strings.Join(owners[s], ", "))
			case !dns1035.MatchString(s):
				why = "it is not a valid Service name, which starts with a letter"
			case taken[s] != "":
				why = "it is the name of " + taken[s]
			}
			if why == "" {
				n.bare[s] = c.Name
			} else {
				n.noBare[c.Name+"/"+s] = why
			}
		}
	}
	if x.opts.Namespace != "" && len(n.cells)+len(n.bare) > 0 {
		var cells []string
		for _, c := range p.Cells {
			if n.cells[c.Name] {
				cells = append(cells, c.Name)
			}
		}
		var named []string
		if len(cells) > 0 {
			named = append(named, "cells ("+strings.Join(cells, ", ")+")")
		}
		if len(n.bare) > 0 {
			named = append(named, "services ("+strings.Join(slices.Sorted(maps.Keys(n.bare)), ", ")+")")
		}
		x.warnf("namespace %s: the Services named after the %s carry no project prefix, so that the replicas reach them by their local names; another project exported into this namespace with one of those names would replace them",
			x.ns, strings.Join(named, " and "))
	}
	x.names = n
}

// cellNameService answers to a cell's name, on its port, as the cell's
// network does locally: it selects the gateway pods that forward to the
// cell on that port, the cell's own (its entrance) and those of every cell
// that uses it (their egress listener for it). A replica of one of those
// cells calling http://<cell>:<port> therefore always goes through a
// gateway that forwards to the cell, though not always its own cell's: a
// call of a replica of U may land on the gateway of a sibling (another
// cell that uses the same cell) or on the cell's own gateway, and the
// metrics and access log of that gateway, not U's, then count it. The
// NetworkPolicies admit the replicas of each of those cells on those ports
// of each of those gateways (see gatewayPolicy), and nobody else's.
func (x *exporter) cellNameService(cell *cellspec.Cell) Object {
	p := x.p
	port := int32(cell.Gateway.Port)
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: x.meta(cell.Name, gatewayLabels(p.Name, cell.Name)),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{LabelProject: p.Name, LabelRole: RoleGateway, ReachesLabel(cell.Name): "true"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// reachesLabels adds to a cell's gateway pod labels the ReachesLabel of
// each cell it forwards to on that cell's port and that has a Service of
// its name.
func (x *exporter) reachesLabels(cell *cellspec.Cell, labels map[string]string) {
	for _, c := range append([]string{cell.Name}, cell.Uses...) {
		if x.names.cells[c] {
			labels[ReachesLabel(c)] = "true"
		}
	}
}

// callersOf returns the cells whose replicas may call cell by its name:
// the cell itself and the cells that use it, sorted.
func (x *exporter) callersOf(cell string) []string {
	out := append([]string{cell}, x.usersOf(cell)...)
	sort.Strings(out)
	return out
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

// checkUnique refuses an export in which two objects of a kind share a
// name: Kubernetes would keep one. Prefixed names can meet when a cell or
// service name holds a dash ("a" with service "b-c" and "a-b" with service
// "c"), or a service is named like a gateway object ("gateway").
func checkUnique(e *Export) error {
	type key struct{ kind, name string }
	owner := map[key]string{}
	var errs []string
	add := func(o Object, cell string) {
		k := key{kindOf(o), o.GetName()}
		if prev, dup := owner[k]; dup {
			of := "both of " + cell
			if prev != cell {
				of = fmt.Sprintf("of %s and of %s", prev, cell)
			}
			errs = append(errs, fmt.Sprintf("two %s objects would be named %q (%s): rename a cell or a service", k.kind, k.name, of))
			return
		}
		owner[k] = cell
	}
	for _, o := range e.Shared {
		add(o, "the project")
	}
	for _, c := range e.Cells {
		for _, o := range c.Objects {
			add(o, "cell "+c.Cell)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("export kubernetes: %s", strings.Join(errs, "; "))
	}
	return nil
}
