package kube

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// newObject returns an empty typed object for an apiVersion and kind, from
// the k8s.io/api release in go.mod.
func newObject(apiVersion, kind string) (Object, error) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	}
	return nil, fmt.Errorf("unexpected %s %s", apiVersion, kind)
}

// splitDocuments splits a YAML stream into its documents, without the
// comment lines (the golden files' warnings).
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var kept []string
		for _, line := range strings.Split(doc, "\n") {
			if !strings.HasPrefix(line, "#") {
				kept = append(kept, line)
			}
		}
		doc = strings.TrimSpace(strings.Join(kept, "\n"))
		if doc != "" {
			docs = append(docs, []byte(doc+"\n"))
		}
	}
	return docs
}

// decodeStrict decodes one document into its typed object, refusing
// unknown and repeated fields.
func decodeStrict(doc []byte) (Object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	obj, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// decodeGolden reads a golden file's objects, strictly.
func decodeGolden(t *testing.T, path string) []Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var objs []Object
	for i, doc := range splitDocuments(data) {
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Fatalf("%s: document %d: %v\n%s", path, i+1, err, doc)
		}
		objs = append(objs, obj)
	}
	return objs
}

// TestGoldenDecodesStrictly decodes every document of every golden file
// into the k8s.io/api type its apiVersion and kind name, with unknown
// fields refused, and encodes it back to the same text.
func TestGoldenDecodesStrictly(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.golden.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files (%v)", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i, doc := range splitDocuments(data) {
				obj, err := decodeStrict(doc)
				if err != nil {
					t.Fatalf("document %d: %v\n%s", i+1, err, doc)
				}
				again, err := MarshalObject(obj)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, doc) {
					t.Errorf("document %d does not survive a round trip:\n%s\nbecame\n%s", i+1, doc, again)
				}
			}
		})
	}
}

// TestStrictDecodingRefusesUnknownFields makes sure the strict decoding
// above would catch a field the API does not have.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	doc := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 2\n")
	if _, err := decodeStrict(doc); err == nil {
		t.Fatal("a Deployment with spec.replica decoded")
	}
}

// TestGoldenObjectsAreValid checks, for every golden file, what the API
// server would refuse and strict decoding cannot see: names, labels and
// port names in their Kubernetes forms, selectors that select their pod
// templates, and references (ConfigMaps, Secrets, claims, HPA targets)
// that resolve within the export.
func TestGoldenObjectsAreValid(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.golden.yaml"))
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			objs := decodeGolden(t, path)
			have := map[string]bool{}
			for _, o := range objs {
				have[kindOf(o)+"/"+o.GetName()] = true
			}
			need := func(kind, name, by string) {
				t.Helper()
				if !have[kind+"/"+name] {
					// The token Secret is the user's to create when
					// the export was given no token.
					if kind == "Secret" && strings.HasSuffix(name, "-admin-token") {
						return
					}
					t.Errorf("%s refers to %s %s, which the export lacks", by, kind, name)
				}
			}
			var templates []corev1.PodTemplateSpec
			for _, o := range objs {
				if d, ok := o.(*appsv1.Deployment); ok {
					templates = append(templates, d.Spec.Template)
				}
			}
			var namespace string
			for _, o := range objs {
				id := kindOf(o) + " " + o.GetName()
				for _, msg := range validation.IsDNS1123Label(o.GetName()) {
					t.Errorf("%s: name: %s", id, msg)
				}
				if kindOf(o) == "Namespace" {
					namespace = o.GetName()
				} else if namespace != "" && o.GetNamespace() != namespace {
					t.Errorf("%s is in namespace %q, want %q", id, o.GetNamespace(), namespace)
				} else if o.GetNamespace() == "" {
					t.Errorf("%s has no namespace", id)
				}
				checkLabels(t, id, o.GetLabels())
				switch o := o.(type) {
				case *corev1.Service:
					for _, msg := range validation.IsDNS1035Label(o.Name) {
						t.Errorf("%s: name: %s", id, msg)
					}
					for _, p := range o.Spec.Ports {
						checkPortName(t, id, p.Name)
					}
					if o.Spec.ClusterIP != corev1.ClusterIPNone && len(o.Spec.Ports) == 0 {
						t.Errorf("%s: a ClusterIP Service without ports", id)
					}
					checkServiceSelects(t, id, o, templates)
				case *appsv1.Deployment:
					sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector)
					if err != nil || sel.Empty() {
						t.Errorf("%s: selector %v: %v", id, o.Spec.Selector, err)
					} else if !sel.Matches(labels.Set(o.Spec.Template.Labels)) {
						t.Errorf("%s: selector %s does not select its template's labels %v", id, sel, o.Spec.Template.Labels)
					}
					checkLabels(t, id+" template", o.Spec.Template.Labels)
					for _, c := range o.Spec.Template.Spec.Containers {
						for _, msg := range validation.IsDNS1123Label(c.Name) {
							t.Errorf("%s: container name: %s", id, msg)
						}
						if c.Image == "" {
							t.Errorf("%s: container %s has no image", id, c.Name)
						}
						for _, p := range c.Ports {
							if p.Name != "" {
								checkPortName(t, id, p.Name)
							}
						}
						for _, e := range c.Env {
							if r := e.ValueFrom; r != nil && r.ConfigMapKeyRef != nil {
								need("ConfigMap", r.ConfigMapKeyRef.Name, id)
							}
							if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
								need("Secret", r.SecretKeyRef.Name, id)
							}
						}
						for _, m := range c.VolumeMounts {
							found := false
							for _, v := range o.Spec.Template.Spec.Volumes {
								found = found || v.Name == m.Name
							}
							if !found {
								t.Errorf("%s: container %s mounts volume %s, which the pod lacks", id, c.Name, m.Name)
							}
						}
					}
					for _, v := range o.Spec.Template.Spec.Volumes {
						if v.PersistentVolumeClaim != nil {
							need("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName, id)
						}
						if v.HostPath != nil {
							t.Errorf("%s: mounts the host path %s", id, v.HostPath.Path)
						}
					}
				case *autoscalingv2.HorizontalPodAutoscaler:
					need(o.Spec.ScaleTargetRef.Kind, o.Spec.ScaleTargetRef.Name, id)
					if o.Spec.MinReplicas == nil || *o.Spec.MinReplicas < 1 || *o.Spec.MinReplicas > o.Spec.MaxReplicas {
						t.Errorf("%s: replicas %v-%d", id, o.Spec.MinReplicas, o.Spec.MaxReplicas)
					}
					if len(o.Spec.Metrics) == 0 {
						t.Errorf("%s: no metric", id)
					}
				}
			}
		})
	}
}

func checkLabels(t *testing.T, id string, set map[string]string) {
	t.Helper()
	for k, v := range set {
		for _, msg := range validation.IsQualifiedName(k) {
			t.Errorf("%s: label key %q: %s", id, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			t.Errorf("%s: label %s=%q: %s", id, k, v, msg)
		}
	}
}

func checkPortName(t *testing.T, id, name string) {
	t.Helper()
	for _, msg := range validation.IsValidPortName(name) {
		t.Errorf("%s: port name %q: %s", id, name, msg)
	}
}

// checkServiceSelects checks that a Service selects pods of the export and
// that each of them has a container port for each of its target ports.
func checkServiceSelects(t *testing.T, id string, svc *corev1.Service, templates []corev1.PodTemplateSpec) {
	t.Helper()
	if len(svc.Spec.Selector) == 0 {
		t.Errorf("%s: no selector", id)
		return
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	selected := 0
	for _, tmpl := range templates {
		if !sel.Matches(labels.Set(tmpl.Labels)) {
			continue
		}
		selected++
		for _, sp := range svc.Spec.Ports {
			found := false
			for _, c := range tmpl.Spec.Containers {
				for _, cp := range c.Ports {
					found = found || (sp.TargetPort.StrVal != "" && cp.Name == sp.TargetPort.StrVal) ||
						(sp.TargetPort.StrVal == "" && cp.ContainerPort == sp.TargetPort.IntVal)
				}
			}
			if !found {
				t.Errorf("%s: port %s targets %s, which the pods with labels %v do not expose", id, sp.Name, sp.TargetPort.String(), tmpl.Labels)
			}
		}
	}
	if selected == 0 {
		t.Errorf("%s: selector %s selects no pod template of the export", id, sel)
	}
}
