package kube

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/orchestro/orchestro/cellspec"
)

// pod is a pod as NetworkPolicies see it.
type pod struct {
	name      string
	namespace string
	labels    map[string]string
	// ports are its container ports, by name, for named policy ports.
	ports map[string]int32
	// open are the numbers of all its container ports, named or not.
	open []int32
}

// cluster is the namespaces and policies an evaluation runs against.
type cluster struct {
	policies []*networkingv1.NetworkPolicy
}

// selects reports whether a label selector selects a label set. A nil
// selector selects nothing; an empty one everything.
func selects(sel *metav1.LabelSelector, set map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		panic(err)
	}
	return s.Matches(labels.Set(set))
}

// namespaceLabels are the labels Kubernetes gives every namespace.
func namespaceLabels(ns string) map[string]string {
	return map[string]string{labelNamespaceName: ns}
}

// peerMatches reports whether a rule's peer admits src, for a policy in
// namespace ns.
func peerMatches(peer networkingv1.NetworkPolicyPeer, ns string, src pod) bool {
	switch {
	case peer.IPBlock != nil:
		return false // the export writes none; pod IPs are not modelled
	case peer.PodSelector != nil && peer.NamespaceSelector != nil:
		return selects(peer.NamespaceSelector, namespaceLabels(src.namespace)) && selects(peer.PodSelector, src.labels)
	case peer.NamespaceSelector != nil:
		return selects(peer.NamespaceSelector, namespaceLabels(src.namespace))
	case peer.PodSelector != nil:
		return src.namespace == ns && selects(peer.PodSelector, src.labels)
	}
	return false
}

// portMatches reports whether a rule's port admits TCP port on dst.
func portMatches(p networkingv1.NetworkPolicyPort, dst pod, port int32) bool {
	if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
		return false
	}
	if p.Port == nil {
		return true
	}
	want := p.Port.IntVal
	if p.Port.StrVal != "" {
		var ok bool
		if want, ok = dst.ports[p.Port.StrVal]; !ok {
			return false
		}
	}
	if p.EndPort != nil {
		return port >= want && port <= *p.EndPort
	}
	return port == want
}

// allowed evaluates ingress to dst on a TCP port as Kubernetes does: a pod
// that no Ingress policy selects accepts everything; one that some select
// accepts what any rule of any of them admits.
func (c *cluster) allowed(src, dst pod, port int32) bool {
	isolated := false
	for _, np := range c.policies {
		if np.Namespace != dst.namespace || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		sel := np.Spec.PodSelector
		if !selects(&sel, dst.labels) {
			continue
		}
		isolated = true
		for _, rule := range np.Spec.Ingress {
			fromOK := len(rule.From) == 0
			for _, peer := range rule.From {
				fromOK = fromOK || peerMatches(peer, np.Namespace, src)
			}
			portOK := len(rule.Ports) == 0
			for _, p := range rule.Ports {
				portOK = portOK || portMatches(p, dst, port)
			}
			if fromOK && portOK {
				return true
			}
		}
	}
	return !isolated
}

// TestEvaluator checks the evaluator itself on the rules of Kubernetes'
// NetworkPolicy semantics it relies on.
func TestEvaluator(t *testing.T) {
	a := pod{name: "a", namespace: "ns", labels: map[string]string{"app": "a"}}
	b := pod{name: "b", namespace: "ns", labels: map[string]string{"app": "b"}, ports: map[string]int32{"http": 80}}
	far := pod{name: "far", namespace: "other", labels: map[string]string{"app": "a"}}
	policy := func(rules ...networkingv1.NetworkPolicyIngressRule) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, Ingress: rules}}
	}
	fromA := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}}}
	http := policyPorts(gatewayPort{"http", 80})
	for _, tt := range []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		src      pod
		port     int32
		want     bool
	}{
		{"no policy", nil, a, 80, true},
		{"deny all", []*networkingv1.NetworkPolicy{policy()}, a, 80, false},
		{"pod selector", []*networkingv1.NetworkPolicy{policy(networkingv1.NetworkPolicyIngressRule{From: fromA})}, a, 80, true},
		{"pod selector is namespaced", []*networkingv1.NetworkPolicy{policy(networkingv1.NetworkPolicyIngressRule{From: fromA})}, far, 80, false},
		{"port", []*networkingv1.NetworkPolicy{policy(networkingv1.NetworkPolicyIngressRule{From: fromA, Ports: http})}, a, 80, true},
		{"other port", []*networkingv1.NetworkPolicy{policy(networkingv1.NetworkPolicyIngressRule{From: fromA, Ports: http})}, a, 81, false},
		{"union", []*networkingv1.NetworkPolicy{policy(), policy(networkingv1.NetworkPolicyIngressRule{})}, far, 81, true},
		{"namespace selector", []*networkingv1.NetworkPolicy{policy(networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: labelNamespaceName, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"ns"}}}}}}})}, far, 80, true},
		{"namespace selector excludes its own", []*networkingv1.NetworkPolicy{policy(networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: labelNamespaceName, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"ns"}}}}}}})}, a, 80, false},
	} {
		c := &cluster{policies: tt.policies}
		if got := c.allowed(tt.src, b, tt.port); got != tt.want {
			t.Errorf("%s: allowed = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// podsOf builds the pods of an export from its Deployments: their template
// labels and container ports, as emitted.
func podsOf(t *testing.T, objs []Object) map[string]pod {
	t.Helper()
	pods := map[string]pod{}
	for _, o := range objs {
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			continue
		}
		ports := map[string]int32{}
		var open []int32
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name != "" {
					ports[p.Name] = p.ContainerPort
				}
				open = append(open, p.ContainerPort)
			}
		}
		pods[d.Name] = pod{name: d.Name, namespace: d.Namespace, labels: d.Spec.Template.Labels, ports: ports, open: open}
	}
	return pods
}

// TestNetworkPoliciesFollowUses evaluates the NetworkPolicies of every
// golden export against the project's uses: graph. For every pair of cells
// A and B (A = B included):
//
//   - A's gateway reaches B's gateway on B's port iff B is in A's uses, and
//     never on B's egress ports;
//   - A's replicas reach B's gateway on B's port iff A = B or B is in A's
//     uses (the Service named B may send them there), on B's listeners
//     iff A = B, and on B's egress port for a cell C iff A = B, A = C or C
//     is in A's uses (the Service named C may send them there);
//   - the Service named after B selects exactly the gateways that forward
//     to B on its port (B's own and those of the cells that use B), and
//     A's replicas reach every one of them on that port iff A = B or B is
//     in A's uses, and none of them otherwise;
//   - A's gateway and A's replicas reach B's replicas iff A = B;
//   - nothing reaches a gateway's admin port from inside the namespace.
//
// A pod outside the namespace reaches every gateway on its port, its
// listeners and its admin port, and no replica; a pod of the namespace
// that is not the project's (another project's included) reaches nothing.
func TestNetworkPoliciesFollowUses(t *testing.T) {
	for _, tc := range exportCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.load(t)
			path := goldenPath(tc.name, false)
			if _, err := Manifests(p, tc.options(p)); err != nil {
				t.Skipf("not exported: %v", err)
			}
			objs := decodeGolden(t, path)
			c := &cluster{}
			ns := ""
			services := map[string]*corev1.Service{}
			for _, o := range objs {
				if np, ok := o.(*networkingv1.NetworkPolicy); ok {
					c.policies = append(c.policies, np)
				}
				if svc, ok := o.(*corev1.Service); ok {
					services[svc.Name] = svc
				}
				if ns == "" && kindOf(o) != "Namespace" {
					ns = o.GetNamespace()
				}
			}
			if len(c.policies) != 2*len(p.Cells) {
				t.Fatalf("%d NetworkPolicies for %d cells", len(c.policies), len(p.Cells))
			}
			pods := podsOf(t, objs)
			gw := func(cell string) pod {
				t.Helper()
				g, ok := pods[GatewayName(p.Name, cell)]
				if !ok {
					t.Fatalf("no gateway Deployment for cell %s", cell)
				}
				return g
			}
			replicas := func(cell *cellspec.Cell) []pod {
				var out []pod
				for _, s := range cell.ServiceNames() {
					out = append(out, pods[ServiceName(p.Name, cell.Name, s)])
				}
				return out
			}
			replicaPort := func(cell *cellspec.Cell, r pod) int32 {
				s := cell.Services[r.labels[LabelService]]
				if s.Port > 0 {
					return int32(s.Port)
				}
				return 5432 // any port: replica policies name none
			}
			admin := gw(p.Cells[0].Name).ports["admin"]
			check := func(what string, src, dst pod, port int32, want bool) {
				t.Helper()
				if got := c.allowed(src, dst, port); got != want {
					t.Errorf("%s: %s → %s:%d allowed = %v, want %v", what, src.name, dst.name, port, got, want)
				}
			}
			outside := pod{name: "ingress-controller", namespace: "ingress-nginx", labels: map[string]string{"app": "ingress"}}
			stranger := pod{name: "stranger", namespace: ns, labels: map[string]string{"app": "stranger"}}

			for _, a := range p.Cells {
				for _, b := range p.Cells {
					uses := slices.Contains(a.Uses, b.Name)
					same := a.Name == b.Name
					bPort := int32(b.Gateway.Port)
					check(fmt.Sprintf("gateway %s → gateway %s (uses: %v)", a.Name, b.Name, uses), gw(a.Name), gw(b.Name), bPort, uses)
					check("gateway → gateway's admin port", gw(a.Name), gw(b.Name), admin, false)
					for _, u := range b.Uses {
						check(fmt.Sprintf("gateway %s → egress port of %s for %s", a.Name, b.Name, u), gw(a.Name), gw(b.Name), int32(p.Cell(u).Gateway.Port), false)
					}
					for _, r := range replicas(a) {
						check(fmt.Sprintf("replica of %s → gateway %s (uses: %v)", a.Name, b.Name, uses), r, gw(b.Name), bPort, same || uses)
						check("replica → admin port", r, gw(b.Name), admin, false)
						for _, l := range b.Gateway.Listeners {
							check(fmt.Sprintf("replica of %s → listener of %s", a.Name, b.Name), r, gw(b.Name), int32(l.Port), same)
						}
						for _, u := range b.Uses {
							want := same || a.Name == u || slices.Contains(a.Uses, u)
							check(fmt.Sprintf("replica of %s → egress port of %s for %s", a.Name, b.Name, u), r, gw(b.Name), int32(p.Cell(u).Gateway.Port), want)
						}
						for _, r2 := range replicas(b) {
							check(fmt.Sprintf("replica of %s → replica of %s", a.Name, b.Name), r, r2, replicaPort(b, r2), same)
						}
					}
					for _, r2 := range replicas(b) {
						check(fmt.Sprintf("gateway %s → replica of %s", a.Name, b.Name), gw(a.Name), r2, replicaPort(b, r2), same)
					}
				}
			}
			// The Services named after cells: who is behind each, and who
			// gets through to them.
			for _, b := range p.Cells {
				svc, ok := services[b.Name]
				if !ok {
					t.Errorf("no Service is named after cell %s", b.Name)
					continue
				}
				bPort := int32(b.Gateway.Port)
				if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != bPort || svc.Spec.Ports[0].TargetPort.IntVal != bPort {
					t.Errorf("Service %s: ports %+v, want %d → %d", b.Name, svc.Spec.Ports, bPort, bPort)
				}
				var endpoints []pod
				var got []string
				for _, name := range slices.Sorted(maps.Keys(pods)) {
					if q := pods[name]; len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(q.labels)) {
						endpoints = append(endpoints, q)
						got = append(got, q.name)
					}
				}
				want := []string{GatewayName(p.Name, b.Name)}
				for _, a := range p.Cells {
					if slices.Contains(a.Uses, b.Name) {
						want = append(want, GatewayName(p.Name, a.Name))
					}
				}
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("Service %s selects %v, want the gateways forwarding to it, %v", b.Name, got, want)
				}
				for _, g := range endpoints {
					if !slices.Contains(g.open, bPort) {
						t.Errorf("Service %s: %s has no container port %d", b.Name, g.name, bPort)
					}
				}
				for _, a := range p.Cells {
					want := a.Name == b.Name || slices.Contains(a.Uses, b.Name)
					for _, r := range replicas(a) {
						for _, g := range endpoints {
							check(fmt.Sprintf("replica of %s → http://%s:%d through %s (uses: %v)", a.Name, b.Name, bPort, g.name, a.Uses), r, g, bPort, want)
						}
					}
				}
				for _, g := range endpoints {
					check("stranger → Service "+b.Name, stranger, g, bPort, false)
					check("outside → egress port of Service "+b.Name, outside, g, bPort, g.name == GatewayName(p.Name, b.Name))
				}
			}
			other := func(q pod) pod {
				l := maps.Clone(q.labels)
				l[LabelProject] = "other"
				return pod{name: "other-project-" + q.name, namespace: q.namespace, labels: l}
			}
			for _, b := range p.Cells {
				g := gw(b.Name)
				check("outside → gateway", outside, g, int32(b.Gateway.Port), true)
				check("outside → admin port", outside, g, admin, true)
				for _, l := range b.Gateway.Listeners {
					check("outside → listener", outside, g, int32(l.Port), true)
				}
				for _, u := range b.Uses {
					check("outside → egress port", outside, g, int32(p.Cell(u).Gateway.Port), false)
					check("stranger → egress port", stranger, g, int32(p.Cell(u).Gateway.Port), false)
				}
				check("stranger → gateway", stranger, g, int32(b.Gateway.Port), false)
				check("stranger → admin port", stranger, g, admin, false)
				for _, a := range p.Cells {
					check("another project's gateway → gateway", other(gw(a.Name)), g, int32(b.Gateway.Port), false)
					for _, r := range replicas(a) {
						check("another project's replica → gateway", other(r), g, int32(b.Gateway.Port), false)
						for _, u := range b.Uses {
							check("another project's replica → egress port", other(r), g, int32(p.Cell(u).Gateway.Port), false)
						}
					}
				}
				for _, r := range replicas(b) {
					port := replicaPort(b, r)
					check("outside → replica", outside, r, port, false)
					check("stranger → replica", stranger, r, port, false)
					check("another project's gateway → replica", other(g), r, port, false)
					check("another project's replica → replica", other(r), r, port, false)
				}
			}
		})
	}
}

// TestGoldenCasesCoverUses makes sure the policy test meets cells that use
// others, not only lone cells.
func TestGoldenCasesCoverUses(t *testing.T) {
	edges := 0
	for _, tc := range exportCases() {
		p := tc.load(t)
		if _, err := Manifests(p, tc.options(p)); err != nil {
			continue
		}
		for _, c := range p.Cells {
			edges += len(c.Uses)
		}
	}
	if edges < 3 {
		t.Errorf("the exported cases have %d uses: edges, want several", edges)
	}
}
