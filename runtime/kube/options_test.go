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
  api: {image: x, port: 8080}
`})
	e, err := Manifests(p, Options{GatewayImage: "gw:1", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"BACK":  `"back", a name only the cell's own network gives; in a Kubernetes namespace it is "names-front-gateway"`,
		"DB":    `"db", a name only the cell's own network gives; in a Kubernetes namespace it is "names-front-db"`,
		"CACHE": `"names-front-cache"`,
		"SELF":  `"names-front-gateway" (this cell's gateway)`,
	}
	for k, text := range want {
		if !hasWarning(e, "env "+k+" ", text) {
			t.Errorf("no warning about %s with %s in:\n%s", k, text, strings.Join(e.Warnings, "\n"))
		}
	}
	for _, k := range []string{"NAME", "OTHER"} {
		if hasWarning(e, "env "+k+" ") {
			t.Errorf("a warning about %s", k)
		}
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
