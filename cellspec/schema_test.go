package cellspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	units "github.com/docker/go-units"
	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"gopkg.in/yaml.v3"
)

// compileSchema compiles Schema() as a validator would; compiling also checks
// it against the draft 2020-12 meta-schema.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatalf("Schema() is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

// yamlInstance reads a YAML document as JSON-shaped data: yaml.v3 decodes
// into any, then every mapping gets string keys.
func yamlInstance(data []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return jsonShaped(v), nil
}

func jsonShaped(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonShaped(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = jsonShaped(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonShaped(e)
		}
		return out
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return v
}

func validateYAMLFile(t *testing.T, sch *jsonschema.Schema, path string) error {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := yamlInstance(data)
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

func TestSchemaHeader(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	got := []any{s["$schema"], s["$id"], s["type"], s["additionalProperties"]}
	want := []any{"https://json-schema.org/draft/2020-12/schema", SchemaID, "object", false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if !bytes.HasSuffix(Schema(), []byte("}\n")) || !bytes.Contains(Schema(), []byte("\n  \"$defs\": {")) {
		t.Errorf("Schema() is not indented JSON ending in a newline")
	}
}

// schemaWalker navigates the decoded schema the way a validator would see
// the keys of one level: through $ref and into every anyOf/oneOf/allOf
// branch.
type schemaWalker struct {
	defs map[string]any
}

// expand returns s and every schema it stands for through $ref and the
// applicator branches (not if/then/not, which only constrain).
func (w schemaWalker) expand(s map[string]any) []map[string]any {
	out := []map[string]any{s}
	if r, ok := s["$ref"].(string); ok {
		def, _ := w.defs[strings.TrimPrefix(r, "#/$defs/")].(map[string]any)
		if def == nil {
			panic("unresolved $ref " + r)
		}
		out = append(out, w.expand(def)...)
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		branches, _ := s[k].([]any)
		for _, b := range branches {
			out = append(out, w.expand(b.(map[string]any))...)
		}
	}
	return out
}

// objects returns the fixed-key object schemas at path: "" is the root,
// "name" a property, "[]" the items of a list, "*" the values of a map with
// free keys.
func (w schemaWalker) objects(root map[string]any, path string) []map[string]any {
	cur := w.expand(root)
	if path != "" {
		for _, seg := range strings.Split(path, ".") {
			var next []map[string]any
			for _, s := range cur {
				var child any
				switch seg {
				case "[]":
					child = s["items"]
				case "*":
					child = s["additionalProperties"]
				default:
					props, _ := s["properties"].(map[string]any)
					if s["type"] == "object" {
						child = props[seg]
					}
				}
				if m, ok := child.(map[string]any); ok {
					next = append(next, w.expand(m)...)
				}
			}
			cur = next
		}
	}
	var out []map[string]any
	for _, s := range cur {
		if _, ok := s["properties"]; ok && s["type"] == "object" {
			out = append(out, s)
		}
	}
	return out
}

// TestSchemaKeysMatchLoader keeps the schema's keys and the loader's *Keys
// lists from drifting apart, in both directions: every level the loader
// decodes has exactly its keys in the schema, closed to any other, and the
// schema has no fixed-key object that is not one of these levels.
func TestSchemaKeysMatchLoader(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(Schema(), &root); err != nil {
		t.Fatal(err)
	}
	w := schemaWalker{defs: root["$defs"].(map[string]any)}
	levels := []struct {
		path string
		keys []string
	}{
		{"", cellKeys},
		{"gateway", gatewayKeys},
		{"gateway.routes.[]", routeKeys},
		{"gateway.listeners.[]", listenerKeys},
		{"services.*", serviceKeys},
		{"services.*.build", buildKeys},
		{"services.*.health", healthKeys},
		{"services.*.autoscale", autoscaleKeys},
		{"gateway.outlier", outlierKeys},
		{"gateway.access_log", accessLogKeys},
		{"services.*.outlier", outlierKeys},
		{"services.*.resources", resourceKeys},
		{"flows.[]", flowKeys},
		{"flows.[].defaults", flowDefaultsKeys},
		{"flows.[].defaults.retry", retryKeys},
		{"flows.[].steps.[]", stepEntryKeys},
		{"flows.[].steps.[].parallel.[]", stepKeys},
		{"flows.[].steps.[].retry", retryKeys},
		{"flows.[].steps.[].on_status.*", onStatusKeys},
		{"flows.[].steps.[].on_status.*.fail", answerKeys},
		{"flows.[].steps.[].compensate", compensateKeys},
		{"flows.[].steps.[].compensate.retry", retryKeys},
		{"flows.[].response", answerKeys},
	}
	checked := map[uintptr]bool{}
	for _, l := range levels {
		t.Run("level "+l.path, func(t *testing.T) {
			objs := w.objects(root, l.path)
			if len(objs) == 0 {
				t.Fatalf("no object schema at %q", l.path)
			}
			var got []string
			for _, o := range objs {
				checked[reflect.ValueOf(o).Pointer()] = true
				if o["additionalProperties"] != false {
					t.Errorf("object at %q does not set additionalProperties: false", l.path)
				}
				for k := range o["properties"].(map[string]any) {
					if !slices.Contains(got, k) {
						got = append(got, k)
					}
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(l.keys))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("keys at %q (-loader +schema):\n%s", l.path, diff)
			}
		})
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["properties"]; ok && v["type"] == "object" && !checked[reflect.ValueOf(v).Pointer()] {
				t.Errorf("object schema with keys %v is not compared with a loader key list", slices.Sorted(mapKeys(v["properties"])))
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(root)
}

func mapKeys(v any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range v.(map[string]any) {
			if !yield(k) {
				return
			}
		}
	}
}

// TestSchemaDocumentsEveryProperty: yaml-language-server shows the title and
// description on hover, so no property may lack them.
func TestSchemaDocumentsEveryProperty(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(Schema(), &root); err != nil {
		t.Fatal(err)
	}
	count := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok && v["type"] == "object" {
				for name, p := range props {
					count++
					p := p.(map[string]any)
					for _, k := range []string{"title", "description"} {
						if s, _ := p[k].(string); s == "" {
							t.Errorf("%s/properties/%s has no %s", path, name, k)
						}
					}
				}
			}
			for k, e := range v {
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s/%d", path, i), e)
			}
		}
	}
	walk("#", root)
	if count < 40 {
		t.Errorf("walked %d properties; the walk is broken", count)
	}
}

// TestSchemaAcceptsValidCells validates the demo project's cells and the
// valid fixtures; the fixtures must load too, so schema and loader agree.
func TestSchemaAcceptsValidCells(t *testing.T) {
	sch := compileSchema(t)
	demo, _ := filepath.Glob(filepath.Join("..", "testdata", "demo", "cells", "*.yaml"))
	if len(demo) == 0 {
		t.Log("no demo cells yet; validating the fixtures only")
	}
	own, _ := filepath.Glob(filepath.Join("testdata", "schema", "valid", "*.yaml"))
	if len(own) < 5 {
		t.Fatalf("found %d valid fixtures", len(own))
	}
	for _, f := range append(demo, own...) {
		t.Run(f, func(t *testing.T) {
			if err := validateYAMLFile(t, sch, f); err != nil {
				t.Errorf("schema rejects a valid cell:\n%#v", err)
			}
		})
	}
	for _, f := range own {
		t.Run("load "+f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := LoadCell(f, data, MapEnv(nil)); err != nil {
				t.Errorf("loader rejects a fixture the schema accepts:\n%v", err)
			}
		})
	}
}

// TestSchemaRejectsInvalidCells: each fixture breaks one rule the schema can
// express; the loader must reject it as well.
func TestSchemaRejectsInvalidCells(t *testing.T) {
	sch := compileSchema(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "schema", "invalid", "*.yaml"))
	if len(files) < 10 {
		t.Fatalf("found %d invalid fixtures", len(files))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// The first line names where the schema must reject the file,
			// so a fixture rejected for another reason is caught.
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# rejected at: ")
			if !ok {
				t.Fatalf("first line is not \"# rejected at: /json/pointer\" or \"# rejected at: name <key>\"")
			}
			err = validateYAMLFile(t, sch, f)
			var verr *jsonschema.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("schema does not reject it: %v", err)
			}
			if locs := leafLocations(verr); !slices.Contains(locs, want) {
				t.Errorf("rejected at %v, want at %s:\n%v", locs, want, err)
			}
			if _, _, err := LoadCell(f, data, MapEnv(nil)); err == nil {
				t.Errorf("loader accepts a fixture the schema rejects")
			}
		})
	}
}

// leafLocations returns where the innermost errors of e are, as "/"-joined
// instance paths. An invalid property name is returned as "name <name>":
// jsonschema v6.0.3 reports it at a wrong location (a sibling mapping's).
func leafLocations(e *jsonschema.ValidationError) []string {
	if k, ok := e.ErrorKind.(*kind.PropertyNames); ok {
		return []string{"name " + k.Property}
	}
	if len(e.Causes) == 0 {
		return []string{"/" + strings.Join(e.InstanceLocation, "/")}
	}
	var out []string
	for _, c := range e.Causes {
		out = append(out, leafLocations(c)...)
	}
	return out
}

// TestSchemaOnInvalidSpecs runs the schema over the loader's invalid specs.
// The schema rejects every one except those whose problem spans fields or
// files, or only shows once ${VAR} is substituted: those are listed here, so
// a change of the schema's reach is a visible change of this list.
func TestSchemaOnInvalidSpecs(t *testing.T) {
	beyondSchema := map[string]bool{
		"autoscale-min-greater-than-max.yaml": true, // compares two fields
		"depends-on-cycle.yaml":               true,
		"depends-on-itself.yaml":              true,
		"depends-on-unknown.yaml":             true,
		"duplicate-volume-target.yaml":        true,
		"replicas-outside-autoscale.yaml":     true,
		"route-duplicate-path.yaml":           true,
		"route-service-without-port.yaml":     true, // the route names another object
		"route-unknown-service.yaml":          true,
		"uses-itself.yaml":                    true, // uses names cells of the project
		"uses-unknown-cell.yaml":              true,
		"required-variable-unset.yaml":        true, // checked after substitution
		"unset-variable-in-integer.yaml":      true,
		"bad-interpolation.yaml":              true,
		"two-documents.yaml":                  true, // editors check each document on its own
		"flow-call-target.yaml":               true, // calls name services and cells
		"flow-route-collision.yaml":           true, // routes are compared with each other
		"flow-step-order.yaml":                true, // expressions name steps
	}
	sch := compileSchema(t)
	files, _ := filepath.Glob(filepath.Join(invalidSpecsDir, "*.yaml"))
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			err := validateYAMLFile(t, sch, f)
			switch {
			case beyondSchema[name] && err != nil:
				t.Errorf("schema now rejects it; take it off the list:\n%v", err)
			case !beyondSchema[name] && err == nil:
				t.Errorf("schema accepts a spec the loader rejects")
			}
		})
	}
}

// TestDurationPattern checks the schema's duration pattern against
// time.ParseDuration as the loader uses it: a unit, and greater than zero.
func TestDurationPattern(t *testing.T) {
	re := regexp.MustCompile(positiveDurationPattern)
	for _, s := range []string{
		"1s", "2s", "500ms", "1m30s", "1.5h", ".5s", "1.s", "0h5m", "0.0s1ns", "1h0m0s", "3µs", "3μs", "3us", "10ns",
		"0s", "0", "0.0s", "0m0s", ".0s", "10", "", "s", "1 s", "1x", "1sm", "-1s", "+1s", "1.2.3s", "ten", "1S", "0.000s",
	} {
		d, err := time.ParseDuration(s)
		loaderOK := err == nil && d > 0 && strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0
		if s != "" && (s[0] == '+' || s[0] == '-') {
			// Signs are valid Go but no one writes them; the schema
			// refuses them.
			loaderOK = false
		}
		if got := re.MatchString(s); got != loaderOK {
			t.Errorf("pattern matches %q = %v, loader accepts it = %v", s, got, loaderOK)
		}
	}
}

func TestSchemaPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		good    []string
		bad     []string
	}{
		{dnsLabelPattern, []string{"a", "shop", "shop-2", "0", strings.Repeat("a", 63)}, []string{"", "Shop", "-a", "a-", "a_b", "a.b", strings.Repeat("a", 64)}},
		{memoryPattern, []string{"256M", "1G", "1g", "512MiB", "1.5GB", "1024", "10 k", "100b"}, []string{"", "lots", "1X", "M", "512Mi", "1GiBs", "-1G"}},
		{volumePattern, []string{"data:/data", "./conf:/etc/x:ro", "/abs:/x:rw", "${DIR:-./d}:/d", "data:${TARGET}"},
			[]string{"data", "data:rel", ":/x", "./x:/x:rx", "a:/b:ro:rw"}},
		{routePathPattern, []string{"/", "/orders", "/a/b/"}, []string{"", "orders", "/a?b", "/a#b", "/a b"}},
		{interpolationPattern, []string{"${X}", "${X:-1}"}, []string{"$X", "8080", "x${X}"}},
	}
	for _, tt := range tests {
		re := regexp.MustCompile(tt.pattern)
		for _, s := range tt.good {
			if !re.MatchString(s) {
				t.Errorf("%s does not match %q", tt.pattern, s)
			}
		}
		for _, s := range tt.bad {
			if re.MatchString(s) {
				t.Errorf("%s matches %q", tt.pattern, s)
			}
		}
	}
	// The volume and DNS patterns agree with the loader.
	for _, s := range []string{"data:/data", "./conf:/etc/x:ro", "data:rel", "./x:/x:rx", ":/x"} {
		_, err := parseVolume(s, "/spec")
		if got := regexp.MustCompile(volumePattern).MatchString(s); got != (err == nil) {
			t.Errorf("volume %q: pattern %v, loader error %v", s, got, err)
		}
	}
	for _, s := range []string{"256M", "1G", "512MiB", "1.5GB", "1024", "10 k", "lots", "512Mi", "1GiBs", "-1G", "1X"} {
		b, err := units.RAMInBytes(s)
		if got := regexp.MustCompile(memoryPattern).MatchString(s); got != (err == nil && b > 0) {
			t.Errorf("memory %q: pattern %v, loader %d, %v", s, got, b, err)
		}
	}
	for _, s := range []string{"a", "Shop", "a-", "shop-2"} {
		if got := regexp.MustCompile(dnsLabelPattern).MatchString(s); got != IsDNSLabel(s) {
			t.Errorf("name %q: pattern %v, loader %v", s, got, IsDNSLabel(s))
		}
	}
}
