package kube

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/orchestro/orchestro/runtime/api"
)

// objectTrees renders each object of an export and reads it back as a
// tree, by kind/name.
func objectTrees(t *testing.T, e *Export) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, o := range e.Objects() {
		data, err := MarshalObject(o)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		out[kindOf(o)+"/"+o.GetName()] = m
	}
	return out
}

// treeDiff lists the paths where two trees differ: the deepest mapping key
// whose values differ, or a list whose lengths do.
func treeDiff(prefix string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		var out []string
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			out = append(out, treeDiff(prefix+"/"+k, am[k], bm[k])...)
		}
		return out
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		var out []string
		for i := range al {
			out = append(out, treeDiff(fmt.Sprintf("%s/%d", prefix, i), al[i], bl[i])...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	return []string{prefix}
}

// TestSpecChangeDiff changes a service's replicas and environment and
// checks that exactly the expected fields of the export change: the
// service's Deployment, the spec in its cell's ConfigMap, and the spec
// hash on the gateways' pod template (so that they roll and read it).
func TestSpecChangeDiff(t *testing.T) {
	tc := exportCases()[0]
	if tc.name != "demo" {
		t.Fatalf("the first case is %s, want demo", tc.name)
	}
	before := tc.load(t)
	after := tc.load(t)
	catalog := after.Cell("shop").Services["catalog"]
	catalog.Replicas = 5
	catalog.Env["LOG_LEVEL"] = "debug"

	e1, err := Manifests(before, tc.options(before))
	if err != nil {
		t.Fatal(err)
	}
	e2, err := Manifests(after, tc.options(after))
	if err != nil {
		t.Fatal(err)
	}
	t1, t2 := objectTrees(t, e1), objectTrees(t, e2)
	var got []string
	for _, id := range slices.Sorted(maps.Keys(t2)) {
		if _, ok := t1[id]; !ok {
			got = append(got, id+" added")
			continue
		}
		for _, p := range treeDiff("", t1[id], t2[id]) {
			got = append(got, id+" "+p)
		}
	}
	for id := range t1 {
		if _, ok := t2[id]; !ok {
			got = append(got, id+" removed")
		}
	}
	sort.Strings(got)
	want := []string{
		"ConfigMap/demo-shop-gateway /data/spec.json",
		"Deployment/demo-shop-catalog /spec/replicas",
		"Deployment/demo-shop-catalog /spec/template/spec/containers/0/env",
		"Deployment/demo-shop-gateway /spec/template/metadata/annotations/" + AnnotationSpecHash,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("changed fields (-want +got):\n%s", diff)
	}

	// The new values, where they belong.
	dep := t2["Deployment/demo-shop-catalog"]
	if r := dig(dep, "spec", "replicas"); r != float64(5) {
		t.Errorf("replicas = %v, want 5", r)
	}
	env := dig(dep, "spec", "template", "spec", "containers", 0, "env").([]any)
	if first := env[0].(map[string]any); first["name"] != "LOG_LEVEL" || first["value"] != "debug" {
		t.Errorf("env starts with %v, want LOG_LEVEL=debug (sorted first)", first)
	}
	var spec api.GatewaySpec
	if err := json.Unmarshal([]byte(dig(t2["ConfigMap/demo-shop-gateway"], "data", SpecKey).(string)), &spec); err != nil {
		t.Fatal(err)
	}
	if s := spec.Cell.Services["catalog"]; s.Replicas != 5 || s.Env["LOG_LEVEL"] != "debug" {
		t.Errorf("the gateway spec has catalog replicas %d, env %v", s.Replicas, s.Env)
	}
	if spec.Target != api.TargetKubernetes || !spec.FindsByDNS() {
		t.Errorf("the gateway spec's target is %q", spec.Target)
	}
	h1 := dig(t1["Deployment/demo-shop-gateway"], "spec", "template", "metadata", "annotations", AnnotationSpecHash)
	h2 := dig(t2["Deployment/demo-shop-gateway"], "spec", "template", "metadata", "annotations", AnnotationSpecHash)
	if h2 != spec.Hash() || h1 == h2 {
		t.Errorf("spec hash %v → %v, want → %s", h1, h2, spec.Hash())
	}
}

// dig walks a tree by keys and indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[p]
		case int:
			l, _ := v.([]any)
			if p >= len(l) {
				return nil
			}
			v = l[p]
		}
	}
	return v
}

// TestGatewaySpecOfDemo checks the spec a gateway of the demo gets: every
// service discovered by its headless Service, every used cell through the
// headless Service over its gateway pods, no path of this machine.
func TestGatewaySpecOfDemo(t *testing.T) {
	tc := exportCases()[0]
	p := tc.load(t)
	e, err := Manifests(p, tc.options(p))
	if err != nil {
		t.Fatal(err)
	}
	trees := objectTrees(t, e)
	for _, c := range p.Cells {
		var spec api.GatewaySpec
		raw := dig(trees["ConfigMap/"+GatewayName(p.Name, c.Name)], "data", SpecKey).(string)
		if err := json.Unmarshal([]byte(raw), &spec); err != nil {
			t.Fatalf("cell %s: %v", c.Name, err)
		}
		if strings.Contains(raw, p.Dir) {
			t.Errorf("cell %s: the spec holds the project's directory %s", c.Name, p.Dir)
		}
		if spec.AdminPort != DefaultAdminPort || spec.Project != p.Name || spec.Cell.Name != c.Name {
			t.Errorf("cell %s: admin port %d, project %s, cell %s", c.Name, spec.AdminPort, spec.Project, spec.Cell.Name)
		}
		for _, s := range c.ServiceNames() {
			if got, want := spec.Discovery[s], ServiceName(p.Name, c.Name, s); got != want {
				t.Errorf("cell %s: discovery of %s = %q, want %q", c.Name, s, got, want)
			}
			if _, ok := trees["Service/"+spec.Discovery[s]]; !ok {
				t.Errorf("cell %s: no Service %s", c.Name, spec.Discovery[s])
			}
		}
		for _, u := range c.Uses {
			want := fmt.Sprintf("%s:%d", GatewayPodsName(p.Name, u), p.Cell(u).Gateway.Port)
			if spec.Peers[u] != want {
				t.Errorf("cell %s: peer %s = %q, want %q", c.Name, u, spec.Peers[u], want)
			}
			svc := trees["Service/"+GatewayPodsName(p.Name, u)]
			if dig(svc, "spec", "clusterIP") != "None" {
				t.Errorf("cell %s: peer %s: Service %s is not headless", c.Name, u, GatewayPodsName(p.Name, u))
			}
		}
	}
}
