package kube

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/orchestro/orchestro/cellspec"
)

// loadCells loads a project made of the given cell files, by name, from a
// temporary directory.
func loadCells(t *testing.T, project string, cells map[string]string) *cellspec.Project {
	t.Helper()
	dir := filepath.Join(t.TempDir(), project)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var names []string
	for name, text := range cells {
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name+".yaml")
	}
	slices.Sort(names)
	pf := "project: " + project + "\ncells: [" + strings.Join(names, ", ") + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "orchestro.yaml"), []byte(pf), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := cellspec.Load(cellspec.Options{Files: []string{dir}, WorkDir: dir, Env: cellspec.MapEnv(nil)})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

// find returns the object of a kind and name.
func find[T Object](t *testing.T, e *Export, name string) T {
	t.Helper()
	for _, o := range e.Objects() {
		if v, ok := o.(T); ok && o.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T %s", zero, name)
	return zero
}

func hasWarning(e *Export, parts ...string) bool {
	for _, w := range e.Warnings {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(w, p)
		}
		if all {
			return true
		}
	}
	return false
}

const apiCell = `cell: api
gateway: {port: 8080}
services:
  web:
    image: example/web:1
    port: 8080
    resources: {cpus: 0.25, memory: 128M}
    health: {tcp: true, interval: 1500ms, timeout: 300ms, retries: 1, start_period: 2500ms}
    autoscale: {min: 0, max: 3, cpu: 60, rps: 12.5, scale_down_after: 2h}
`

func TestAutoscaleAndProbes(t *testing.T) {
	p := loadCells(t, "hpa", map[string]string{"api": apiCell})
	e, err := Manifests(p, Options{GatewayImage: "gw:1"})
	if err != nil {
		t.Fatal(err)
	}
	hpa := find[*autoscalingv2.HorizontalPodAutoscaler](t, e, "hpa-api-web")
	if *hpa.Spec.MinReplicas != 1 || hpa.Spec.MaxReplicas != 3 {
		t.Errorf("replicas %d-%d, want 1-3", *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if w := *hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds; w != 3600 {
		t.Errorf("stabilization window %d, want 3600", w)
	}
	var rps, cpu string
	for _, m := range hpa.Spec.Metrics {
		switch m.Type {
		case autoscalingv2.ExternalMetricSourceType:
			rps = m.External.Metric.Name + "=" + m.External.Target.AverageValue.String()
		case autoscalingv2.ResourceMetricSourceType:
			cpu = string(m.Resource.Name) + "=" + m.Resource.Target.AverageValue.String()
		}
	}
	if rps != MetricRPS+"=12500m" || cpu != "cpu=600m" {
		t.Errorf("metrics %s, %s", rps, cpu)
	}
	for _, parts := range [][]string{{"min 0", "minReplicas 1"}, {"scale_down_after 2h", "an hour"}, {MetricRPS, "metrics adapter"}} {
		if !hasWarning(e, parts...) {
			t.Errorf("no warning with %q in %q", parts, e.Warnings)
		}
	}

	dep := find[*appsv1.Deployment](t, e, "hpa-api-web")
	if dep.Spec.Replicas != nil {
		t.Errorf("an autoscaled Deployment says %d replicas", *dep.Spec.Replicas)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if got := c.Resources.Requests.Cpu().String() + " " + c.Resources.Limits.Memory().String(); got != "250m 128Mi" {
		t.Errorf("resources %s", got)
	}
	r, l := c.ReadinessProbe, c.LivenessProbe
	if r.TCPSocket == nil || r.TCPSocket.Port.IntVal != 8080 || r.PeriodSeconds != 2 || r.TimeoutSeconds != 1 || r.FailureThreshold != 1 || r.InitialDelaySeconds != 0 {
		t.Errorf("readiness %+v", r)
	}
	if l.TCPSocket == nil || l.PeriodSeconds != 2 || l.TimeoutSeconds != 5 || l.FailureThreshold != 3 || l.InitialDelaySeconds != 3 {
		t.Errorf("liveness %+v", l)
	}
}

func TestOptions(t *testing.T) {
	p := loadCells(t, "opts", map[string]string{"api": apiCell})
	base := Options{GatewayImage: "gw:1"}

	e, err := Manifests(p, Options{GatewayImage: "gw:1", Namespace: "team-a", Token: "s3cret", AdminPort: 9000})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range e.Shared {
		if kindOf(o) == "Namespace" {
			t.Error("a Namespace object for a namespace that exists")
		}
	}
	if s := find[*corev1.Secret](t, e, "opts-admin-token"); s.StringData[TokenKey] != "s3cret" || s.Namespace != "team-a" {
		t.Errorf("secret %+v", s)
	}
	if hasWarning(e, "no admin token") {
		t.Error("a token warning with a token")
	}
	gw := find[*appsv1.Deployment](t, e, "opts-api-gateway")
	for _, c := range gw.Spec.Template.Spec.Containers {
		for _, env := range c.Env {
			if env.Value == "s3cret" {
				t.Error("the token is in the pod spec")
			}
		}
	}
	for _, v := range gw.Spec.Template.Spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("the gateway mounts the host path %s", v.HostPath.Path)
		}
	}

	if _, err := Manifests(p, Options{GatewayImage: "gw:1", AdminPort: 8080}); err == nil || !strings.Contains(err.Error(), "admin port 8080") {
		t.Errorf("admin port on the cell's port: %v", err)
	}
	if _, err := Manifests(p, Options{}); err == nil {
		t.Error("no gateway image exported")
	}
	if _, err := Manifests(p, Options{GatewayImage: "gw:1", VolumeSize: "lots"}); err == nil {
		t.Error("volume size lots exported")
	}
	if e, err := Manifests(p, base); err != nil || e.Namespace != "opts" || kindOf(e.Shared[0]) != "Namespace" {
		t.Errorf("default namespace: %v", err)
	}
}

func TestBuiltServiceNeedsImage(t *testing.T) {
	p := loadCells(t, "built", map[string]string{"api": `cell: api
gateway: {port: 8080}
services:
  web:
    build: {go: .}
    port: 8080
`})
	_, err := Manifests(p, Options{GatewayImage: "gw:1"})
	if err == nil || !strings.Contains(err.Error(), "service api/web: no image") {
		t.Fatalf("err = %v", err)
	}
	e, err := Manifests(p, Options{GatewayImage: "gw:1", Images: map[string]map[string]string{"api": {"web": "reg/built-api-web:abc"}}})
	if err != nil {
		t.Fatal(err)
	}
	if img := find[*appsv1.Deployment](t, e, "built-api-web").Spec.Template.Spec.Containers[0].Image; img != "reg/built-api-web:abc" {
		t.Errorf("image %s", img)
	}
}

func TestNamesTooLong(t *testing.T) {
	long := strings.Repeat("s", 60)
	p := loadCells(t, "names", map[string]string{"api": `cell: api
gateway: {port: 8080}
services:
  ` + long + `:
    image: x
`})
	_, err := Manifests(p, Options{GatewayImage: "gw:1"})
	if err == nil || !strings.Contains(err.Error(), "63") {
		t.Fatalf("err = %v", err)
	}
}

// TestEnvNameWarnings checks which environment values are warned about: a
// name that works in the namespace as it does on the cell's network (a
// cell's, a service's unique in the project) is not; one that does not
// (a service name two cells share, or a cell's) is, with the name to use.
func TestEnvNameWarnings(t *testing.T) {
	p := loadCells(t, "names", map[string]string{
		"front": `cell: front
gateway: {port: 8080}
uses: [back]
services:
  web:
    image: x
    port: 8080
    env:
      BACK: http://back:8081/api
      DB: postgres://u:p@db/app
      CACHE: cache:6379
      SELF: http://front/x
      NAME: web
      OTHER: http://backend:8081
  db: {image: postgres}
  cache: {image: redis}
`,
		"back": `cell: back
gateway: {port: 8081}
services:
  api:
    image: x
    port: 8080
    env:
      FRONT: http://front:9000
      DB: db:5432
  db: {image: postgres}
  front: {image: x, port: 9000}
`})
	e, err := Manifests(p, Options{GatewayImage: "gw:1", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"front/web DB":   {`reaches "db"`, "cells back, front each have a service of that name", `use "names-front-db"`},
		"back/api DB":    {`reaches "db"`, `use "names-back-db"`},
		"back/api FRONT": {`reaches "front"`, "it is the name of cell front", `use "names-back-front"`},
	}
	for k, parts := range want {
		cell, rest, _ := strings.Cut(k, "/")
		svc, env, _ := strings.Cut(rest, " ")
		if !hasWarning(e, append([]string{"cell " + cell + ", service " + svc + ": env " + env + " "}, parts...)...) {
			t.Errorf("no warning about %s with %q in:\n%s", k, parts, strings.Join(e.Warnings, "\n"))
		}
	}
	for _, k := range []string{"BACK", "CACHE", "SELF", "NAME", "OTHER"} {
		if hasWarning(e, "service web: env "+k+" ") {
			t.Errorf("a warning about %s:\n%s", k, strings.Join(e.Warnings, "\n"))
		}
	}
	if !hasWarning(e, "cell back, service front: ", "also cell front's", "names-back-front") {
		t.Errorf("no warning about the service named like a cell in:\n%s", strings.Join(e.Warnings, "\n"))
	}

	// The names that work have their Services; the others have none.
	for _, name := range []string{"web", "cache", "api"} {
		if svc := find[*corev1.Service](t, e, name); svc.Spec.ClusterIP != corev1.ClusterIPNone || svc.Spec.Selector[LabelService] != name {
			t.Errorf("Service %s: %+v", name, svc.Spec)
		}
	}
	for _, o := range e.Objects() {
		if o.GetName() == "db" {
			t.Errorf("a %s named db, which two cells' services share", kindOf(o))
		}
	}
	front := find[*corev1.Service](t, e, "front")
	if front.Spec.Type != corev1.ServiceTypeClusterIP || front.Spec.Selector[ReachesLabel("front")] != "true" || front.Spec.Selector[LabelRole] != RoleGateway {
		t.Errorf("Service front is not the cell's: %+v", front.Spec)
	}
	gw := find[*appsv1.Deployment](t, e, "names-front-gateway").Spec.Template.Labels
	if gw[ReachesLabel("front")] != "true" || gw[ReachesLabel("back")] != "true" {
		t.Errorf("front's gateway pods are labelled %v", gw)
	}
	if gw := find[*appsv1.Deployment](t, e, "names-back-gateway").Spec.Template.Labels; gw[ReachesLabel("front")] != "" {
		t.Errorf("back's gateway pods, which do not forward to front, are labelled %v", gw)
	}
}

// TestCellNamedLikeAnObject checks a cell whose name is already a
// Service's: it gets no Service of its name, and a warning says so.
func TestCellNamedLikeAnObject(t *testing.T) {
	p := loadCells(t, "p", map[string]string{
		"a":           "cell: a\ngateway: {port: 8080}\nservices:\n  web: {image: x, port: 8080}\n",
		"p-a-gateway": "cell: p-a-gateway\ngateway: {port: 8081}\nuses: [a]\nservices:\n  api: {image: x, port: 8080}\n",
	})
	e, err := Manifests(p, Options{GatewayImage: "gw:1", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(e, "cell p-a-gateway: no Service is named after the cell", "the gateway Service of cell a") {
		t.Errorf("no warning about cell p-a-gateway in:\n%s", strings.Join(e.Warnings, "\n"))
	}
	if svc := find[*corev1.Service](t, e, "p-a-gateway"); svc.Spec.Selector[LabelCell] != "a" {
		t.Errorf("Service p-a-gateway selects %v, want cell a's gateway", svc.Spec.Selector)
	}
	if svc := find[*corev1.Service](t, e, "a"); svc.Spec.Selector[ReachesLabel("a")] != "true" {
		t.Errorf("Service a selects %v", svc.Spec.Selector)
	}

	// A cell name that cannot name a Service, or whose label would be too
	// long a key, gets no Service, no label, and no wider policy.
	long := strings.Repeat("c", 45)
	p = loadCells(t, "p", map[string]string{
		"1a": "cell: 1a\ngateway: {port: 8080}\nservices:\n  web: {image: x, port: 8080}\n",
		long: "cell: " + long + "\ngateway: {port: 8081}\nuses: [1a]\nservices:\n  api: {image: x, port: 8080}\n",
	})
	e, err = Manifests(p, Options{GatewayImage: "gw:1", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for _, parts := range [][]string{{"cell 1a: no Service", "not a valid Service name"}, {"cell " + long + ": no Service", "longer than a label key"}} {
		if !hasWarning(e, parts...) {
			t.Errorf("no warning with %q in:\n%s", parts, strings.Join(e.Warnings, "\n"))
		}
	}
	for _, o := range e.Objects() {
		if o.GetName() == "1a" || o.GetName() == long {
			t.Errorf("a %s named %s", kindOf(o), o.GetName())
		}
		if d, ok := o.(*appsv1.Deployment); ok {
			for k := range d.Spec.Template.Labels {
				if strings.HasPrefix(k, LabelReachesPrefix) {
					t.Errorf("%s: label %s", d.Name, k)
				}
			}
		}
		if np, ok := o.(*networkingv1.NetworkPolicy); ok && len(np.Spec.Ingress) > 3 {
			t.Errorf("NetworkPolicy %s has %d rules, want no more than before", np.Name, len(np.Spec.Ingress))
		}
	}
}

// TestObjectNamesClash checks that two objects of a kind that would share
// a name are refused, naming it.
func TestObjectNamesClash(t *testing.T) {
	p := loadCells(t, "p", map[string]string{
		"a":   "cell: a\ngateway: {port: 8080}\nservices:\n  b-c: {image: x}\n",
		"a-b": "cell: a-b\ngateway: {port: 8081}\nservices:\n  c: {image: x}\n",
	})
	_, err := Manifests(p, Options{GatewayImage: "gw:1", Token: "t"})
	if err == nil || !strings.Contains(err.Error(), `two Deployment objects would be named "p-a-b-c" (of cell a and of cell a-b)`) {
		t.Errorf("err = %v", err)
	}
	p = loadCells(t, "p", map[string]string{"a": "cell: a\ngateway: {port: 8080}\nservices:\n  gateway: {image: x}\n"})
	_, err = Manifests(p, Options{GatewayImage: "gw:1", Token: "t"})
	if err == nil || !strings.Contains(err.Error(), `two Deployment objects would be named "p-a-gateway" (both of cell a)`) {
		t.Errorf("err = %v", err)
	}
}

func TestFiles(t *testing.T) {
	tc := exportCases()[0]
	p := tc.load(t)
	e, err := Manifests(p, tc.options(p))
	if err != nil {
		t.Fatal(err)
	}
	files, err := e.Files()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var all [][]byte
	for _, f := range files {
		names = append(names, f.Name)
		all = append(all, f.Data)
	}
	if got := strings.Join(names, " "); got != "00-project.yaml checkout.yaml edge.yaml shop.yaml users.yaml" {
		t.Errorf("files %s", got)
	}
	whole, err := e.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if joined := bytes.Join(all, []byte("---\n")); !bytes.Equal(joined, whole) {
		t.Error("the files, joined, are not the whole stream")
	}
}
