package kube

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/orchestro/orchestro/cellspec"
)

// DefaultAdminPort is the gateways' admin port when Options.AdminPort is
// zero and no cell uses it: the local target's, moved down past any port
// a cell of the project uses, as there.
const DefaultAdminPort = 7700

// DefaultVolumeSize is the storage a PersistentVolumeClaim asks for when
// Options.VolumeSize is empty: a cell file says nothing of sizes.
const DefaultVolumeSize = "1Gi"

// gatewayReplicas is how many gateway pods a cell runs.
const gatewayReplicas = 2

// Options says what a project's manifests are made with.
type Options struct {
	// Namespace is the namespace every object goes in. Empty means one
	// named after the project, which the export creates (a Namespace
	// object comes first); a name means an existing namespace, and no
	// Namespace object.
	Namespace string
	// Images maps a cell, then a service, to the image reference its pods
	// run: for a built service, REG/<project>-<cell>-<service>:<tag> (see
	// ImageRepository), which the caller pushes. A service with an image:
	// and no build runs that image unless Images names another. A built
	// service without an entry is an error.
	Images map[string]map[string]string
	// GatewayImage is the orchestro gateway image the cluster pulls.
	GatewayImage string
	// AdminPort is the container port of the gateways' admin API; zero
	// picks DefaultAdminPort, moved down past the ports the cells use.
	AdminPort int
	// Token is the project's admin token. When set, the export holds a
	// Secret (TokenSecretName) with it; when empty, the gateways still
	// read the token from that Secret, which the user creates, and a
	// warning says how. Either way the token never appears in a pod spec.
	//
	// Manifests make no token of their own: an export is a pure function
	// of its input (the same project exports to the same bytes, and a
	// diff of two exports shows only what changed), and manifests are
	// often committed, where a Secret with a token does not belong.
	Token string
	// VolumeSize is the storage each PersistentVolumeClaim requests, as a
	// Kubernetes quantity; empty means DefaultVolumeSize.
	VolumeSize string
	// StorageClass is the storage class of the claims; empty leaves it to
	// the cluster's default.
	StorageClass string
}

// Object is one Kubernetes object of an export, with its apiVersion and
// kind set.
type Object interface {
	metav1.Object
	runtime.Object
}

// Export is a project's manifests.
type Export struct {
	Project string
	// Namespace is the namespace of every object.
	Namespace string
	// Shared are the objects of the project as a whole, in order: the
	// Namespace and the token Secret, each when there is one.
	Shared []Object
	// Cells holds each cell's objects, in the project's (name) order.
	Cells []CellObjects
	// Warnings are what the manifests cannot carry of the spec, or need
	// from the cluster, one sentence each, in a stable order.
	Warnings []string
}

// CellObjects are the objects of one cell, in the order they are applied:
// the gateway's ConfigMap, Deployment, Services (the Service named after
// the cell last), PodDisruptionBudget and NetworkPolicies, then for each
// service (in name order) the claims of the volumes it is the first to
// mount, its Deployment, its headless Services (the prefixed one, then the
// one of its bare name) and its HorizontalPodAutoscaler.
type CellObjects struct {
	Cell    string
	Objects []Object
}

// Objects returns every object of the export, in order.
func (e *Export) Objects() []Object {
	out := append([]Object(nil), e.Shared...)
	for _, c := range e.Cells {
		out = append(out, c.Objects...)
	}
	return out
}

// exporter carries what every part of an export needs.
type exporter struct {
	p        *cellspec.Project
	opts     Options
	ns       string
	admin    int
	size     resource.Quantity
	warnings []string
	// claimed records the volumes whose claim is emitted already, by
	// volume name, and claimNames the volume each claim name stands for.
	claimed    map[string]bool
	claimNames map[string]string
	// names are the names of the cells' networks the namespace gives.
	names localNames
}

func (x *exporter) warnf(format string, args ...any) {
	x.warnings = append(x.warnings, fmt.Sprintf(format, args...))
}

// Manifests turns a loaded project into Kubernetes objects. It fails on
// what cannot travel to a cluster (bind mounts, names Kubernetes refuses,
// a built service without an image) and warns about what travels
// differently (see Export.Warnings).
func Manifests(p *cellspec.Project, opts Options) (*Export, error) {
	if p == nil || len(p.Cells) == 0 {
		return nil, errors.New("export kubernetes: the project has no cell")
	}
	if opts.GatewayImage == "" {
		return nil, errors.New("export kubernetes: no gateway image")
	}
	x := &exporter{p: p, opts: opts, ns: opts.Namespace, claimed: map[string]bool{}, claimNames: map[string]string{}}
	if x.ns == "" {
		x.ns = p.Name
	}
	if err := checkLabelName(x.ns, "namespace"); err != nil {
		return nil, fmt.Errorf("export kubernetes: %w", err)
	}
	size := opts.VolumeSize
	if size == "" {
		size = DefaultVolumeSize
	}
	q, err := resource.ParseQuantity(size)
	if err != nil || q.Sign() <= 0 {
		return nil, fmt.Errorf("export kubernetes: volume size %q is not a positive Kubernetes quantity (such as 1Gi)", size)
	}
	x.size = q
	if x.admin, err = adminPort(p, opts.AdminPort); err != nil {
		return nil, fmt.Errorf("export kubernetes: %w", err)
	}
	if err := x.check(); err != nil {
		return nil, err
	}

	e := &Export{Project: p.Name, Namespace: x.ns}
	if opts.Namespace == "" {
		e.Shared = append(e.Shared, x.namespace())
	}
	if opts.Token != "" {
		e.Shared = append(e.Shared, x.tokenSecret())
	} else {
		x.warnf("no admin token given: the gateways read it from the Secret %s (key %q), which this export does not hold; create it before applying: kubectl -n %s create secret generic %s --from-literal=%s=\"$(openssl rand -hex 32)\"",
			TokenSecretName(p.Name), TokenKey, x.ns, TokenSecretName(p.Name), TokenKey)
	}
	if vols := namedVolumes(p); len(vols) > 0 {
		x.warnf("volumes %s: each is a ReadWriteOnce claim, which only pods on one node can mount at a time, the new pod of a rolling update included; pods spread over nodes need a storage class that offers ReadWriteMany",
			strings.Join(vols, ", "))
	}
	x.planLocalNames()
	for _, cell := range p.Cells {
		objs, err := x.cell(cell)
		if err != nil {
			return nil, fmt.Errorf("export kubernetes: %w", err)
		}
		e.Cells = append(e.Cells, CellObjects{Cell: cell.Name, Objects: objs})
	}
	if err := checkUnique(e); err != nil {
		return nil, err
	}
	e.Warnings = x.warnings
	return e, nil
}

// check refuses, before anything is built, what cannot be exported: bind
// mounts (all of them, in one error), names Kubernetes would refuse, and
// services without an image.
func (x *exporter) check() error {
	p := x.p
	if p.Name == "" || p.Name[0] < 'a' || p.Name[0] > 'z' {
		// Every Service name starts with the project's.
		return fmt.Errorf("export kubernetes: the project name %q does not start with a letter, as Kubernetes wants a Service name to: name the project with -p", p.Name)
	}
	var errs []error
	for _, cell := range p.Cells {
		what := "cell " + cell.Name
		for _, name := range []string{GatewayName(p.Name, cell.Name), GatewayPodsName(p.Name, cell.Name)} {
			if err := checkServiceName(name, what); err != nil {
				errs = append(errs, err)
			}
		}
		for _, name := range cell.ServiceNames() {
			s := cell.Services[name]
			what := fmt.Sprintf("service %s/%s", cell.Name, name)
			if err := checkServiceName(ServiceName(p.Name, cell.Name, name), what); err != nil {
				errs = append(errs, err)
			}
			if x.image(cell.Name, s) == "" {
				errs = append(errs, fmt.Errorf("%s: no image: it is built, and the export was given no reference for it", what))
			}
			for _, v := range s.Volumes {
				switch v.Type {
				case cellspec.VolumeBind:
					errs = append(errs, fmt.Errorf("%s: the bind mount of %s at %s cannot be exported: it names a path on this machine, which does not travel to a cluster's nodes; use a named volume, or put the files in the image",
						what, x.relPath(v.Source), v.Target))
				case cellspec.VolumeNamed:
					claim := claimName(p.Name, v.Source)
					if other, ok := x.claimNames[claim]; ok && other != v.Source {
						errs = append(errs, fmt.Errorf("%s: the volumes %q and %q both become the claim %s", what, other, v.Source, claim))
					}
					x.claimNames[claim] = v.Source
					if err := checkLabelName(claim, fmt.Sprintf("%s: the claim of volume %q", what, v.Source)); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("export kubernetes: %w", errors.Join(errs...))
	}
	return nil
}

// namedVolumes lists the project's named volumes, sorted.
func namedVolumes(p *cellspec.Project) []string {
	seen := map[string]bool{}
	for _, c := range p.Cells {
		for _, s := range c.Services {
			for _, v := range s.Volumes {
				if v.Type == cellspec.VolumeNamed {
					seen[v.Source] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// image is the reference a service's pods run, or "".
func (x *exporter) image(cell string, s *cellspec.Service) string {
	if ref := x.opts.Images[cell][s.Name]; ref != "" {
		return ref
	}
	if s.Build == nil {
		return s.Image
	}
	return ""
}

// relPath writes a path of the project relative to its directory, for
// messages and for the spec the gateways get: the absolute paths of the
// machine that exported mean nothing in a cluster, and would make the
// export depend on where the project is checked out.
func (x *exporter) relPath(path string) string {
	if path == "" || !filepath.IsAbs(path) || x.p.Dir == "" {
		return path
	}
	rel, err := filepath.Rel(x.p.Dir, path)
	if err != nil {
		return path
	}
	rel = filepath.ToSlash(rel)
	if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return rel
	}
	return "./" + rel
}

// adminPort returns the gateways' admin port: the one asked for, unless a
// cell uses it, or DefaultAdminPort moved down past the cells' ports.
func adminPort(p *cellspec.Project, asked int) (int, error) {
	used := map[int]string{}
	for _, c := range p.Cells {
		used[c.Gateway.Port] = c.Name
		for _, l := range c.Gateway.Listeners {
			used[l.Port] = c.Name
		}
	}
	if asked != 0 {
		if asked < 1 || asked > 65535 {
			return 0, fmt.Errorf("admin port %d is out of range 1-65535", asked)
		}
		if cell, ok := used[asked]; ok {
			return 0, fmt.Errorf("admin port %d is a port of cell %s", asked, cell)
		}
		return asked, nil
	}
	port := DefaultAdminPort
	for used[port] != "" {
		port--
	}
	return port, nil
}

// namespace is the project's namespace, when the export creates it.
func (x *exporter) namespace() Object {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: x.ns, Labels: projectLabels(x.p.Name)},
	}
}

// tokenSecret holds the admin token the gateways check writes against.
func (x *exporter) tokenSecret() Object {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: x.meta(TokenSecretName(x.p.Name), projectLabels(x.p.Name)),
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{TokenKey: x.opts.Token},
	}
}

// meta is the metadata of a namespaced object.
func (x *exporter) meta(name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: x.ns, Labels: labels}
}

func ptr[T any](v T) *T { return &v }
