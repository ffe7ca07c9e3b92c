package cellspec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// flowFixture is the flow of DESIGN §6 with every key of a flow; the
// schema tests validate it too.
var flowFixture = filepath.Join("testdata", "schema", "valid", "flows.yaml")

// templateCmp compares templates by the value written, which is what they
// compile from.
var templateCmp = cmp.Comparer(func(a, b *Template) bool {
	return (a == nil) == (b == nil) && cmp.Equal(a.Raw(), b.Raw())
})

func loadFlowFixture(t *testing.T) *Cell {
	t.Helper()
	data, err := os.ReadFile(flowFixture)
	if err != nil {
		t.Fatal(err)
	}
	c, warnings, err := LoadCell(flowFixture, data, MapEnv(nil))
	if err != nil {
		t.Fatalf("LoadCell:\n%v", err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	return c
}

// checkFlowGolden compares got with testdata/flows/name, rewritten with
// -update.
func checkFlowGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "flows", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// TestFlowLoaded checks the loaded flows as the gateway receives them:
// the JSON of the cell, every default filled in.
func TestFlowLoaded(t *testing.T) {
	c := loadFlowFixture(t)
	data, err := json.MarshalIndent(c.Flows, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkFlowGolden(t, "design.json", append(data, '\n'))
}

// TestFlowJSONRoundTrip: the gateway process gets the cell as JSON; the
// flows it decodes are the flows loaded, compiled and ready to run.
func TestFlowJSONRoundTrip(t *testing.T) {
	c := loadFlowFixture(t)
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Cell
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c.Flows, back.Flows, templateCmp); diff != "" {
		t.Errorf("flows after JSON (-loaded +decoded):\n%s", diff)
	}
	again, err := json.Marshal(&back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(data) {
		t.Errorf("JSON changed on a second trip:\n%s\n%s", data, again)
	}

	f := back.Flows[0]
	caps, ok := f.Route.Match("POST", "/checkout/o-17")
	if !ok || caps["order"] != "o-17" {
		t.Errorf("Route.Match = %v, %v", caps, ok)
	}
	charge := f.Steps[2]
	got, err := charge.Body.Eval(map[string]any{
		"path":     map[string]any{"order": "o-17"},
		"validate": map[string]any{"body": map[string]any{"total": 200}},
		"quote":    map[string]any{"body": map[string]any{"percent": 10}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"order": "o-17", "amount": 180.0}, got); diff != "" {
		t.Errorf("charge body (-want +got):\n%s", diff)
	}
	if path, err := charge.Compensate.Call.Path.EvalString(map[string]any{"charge": map[string]any{"body": map[string]any{"id": "ch_1"}}}); err != nil || path != "/charges/ch_1/refund" {
		t.Errorf("compensation path = %q, %v", path, err)
	}
}

func TestFlowDefaults(t *testing.T) {
	d := func(s string) Duration { v, _ := time.ParseDuration(s); return Duration(v) }
	builtin := Retry{Attempts: 1, Backoff: d("100ms"), MaxBackoff: d("2s"), Jitter: true, RetryOn: []string{"connect", "timeout", "502", "503", "504"}}
	with := func(r Retry, edit func(*Retry)) Retry { edit(&r); return r }
	type settings struct {
		Timeout           Duration
		Retry             Retry
		CompensateTimeout Duration
		CompensateRetry   Retry
	}
	tests := []struct {
		name  string
		flow  string // under flows:, indented by 2
		want  settings
		check func(t *testing.T, f *Flow)
	}{
		{
			name: "nothing written",
			flow: "  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, compensate: {call: DELETE orders /a}}]}",
			want: settings{Timeout: d("30s"), Retry: builtin, CompensateTimeout: d("30s"),
				CompensateRetry: with(builtin, func(r *Retry) { r.Attempts = DefaultCompensateAttempts })},
			check: func(t *testing.T, f *Flow) {
				got := []any{f.Deadline, f.MaxInflight, f.MaxBody, f.Response}
				want := []any{d("30s"), 1000, int64(1 << 20), (*FlowAnswer)(nil)}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("deadline, max_inflight, max_body, response (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "flow settings written",
			flow: "  - {name: a, route: POST /a, deadline: 5s, max_inflight: 3, max_body: 2MiB, response: {}, steps: [{id: a, call: GET orders /a}]}",
			want: settings{Timeout: d("30s"), Retry: builtin},
			check: func(t *testing.T, f *Flow) {
				got := []any{f.Deadline, f.MaxInflight, f.MaxBody, f.Response}
				want := []any{d("5s"), 3, int64(2 << 20), &FlowAnswer{Status: 200}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("deadline, max_inflight, max_body, response (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "defaults, then the step, field by field",
			flow: `  - name: a
    route: POST /a
    defaults: {timeout: 2s, retry: {attempts: 4, jitter: false, retry_on: [connect]}}
    steps:
      - {id: a, call: GET orders /a, retry: {backoff: 1s, retry_on: []}, compensate: {call: DELETE orders /a}}`,
			want: settings{Timeout: d("2s"),
				Retry:             Retry{Attempts: 4, Backoff: d("1s"), MaxBackoff: d("2s"), Jitter: false, RetryOn: []string{}},
				CompensateTimeout: d("2s"),
				// The step's attempts (4) beat DefaultCompensateAttempts.
				CompensateRetry: Retry{Attempts: 4, Backoff: d("1s"), MaxBackoff: d("2s"), Jitter: false, RetryOn: []string{}}},
		},
		{
			name: "the step's own timeout and retry",
			flow: "  - {name: a, route: POST /a, defaults: {timeout: 2s}, steps: [{id: a, call: GET orders /a, timeout: 500ms, retry: {attempts: 2, retry_on: [connect]}, compensate: {call: DELETE orders /a}}]}",
			want: settings{Timeout: d("500ms"),
				Retry:             with(builtin, func(r *Retry) { r.Attempts = 2; r.RetryOn = []string{"connect"} }),
				CompensateTimeout: d("500ms"),
				CompensateRetry:   with(builtin, func(r *Retry) { r.Attempts = 3; r.RetryOn = []string{"connect"} })},
		},
		{
			name: "the compensation's own",
			flow: "  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, retry: {attempts: 6}, compensate: {call: DELETE orders /a, timeout: 1s, retry: {attempts: 1, max_backoff: 5s, jitter: no}}}]}",
			want: settings{Timeout: d("30s"),
				Retry:             with(builtin, func(r *Retry) { r.Attempts = 6 }),
				CompensateTimeout: d("1s"),
				CompensateRetry:   with(builtin, func(r *Retry) { r.Attempts = 1; r.MaxBackoff = d("5s"); r.Jitter = false })},
		},
		{
			name: "fail status defaults to the status answered",
			flow: "  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, on_status: {409: {fail: {body: conflict}}, 402: {fail: {status: 400}}}}]}",
			want: settings{Timeout: d("30s"), Retry: builtin},
			check: func(t *testing.T, f *Flow) {
				on := f.Steps[0].OnStatus
				if got := []int{on[409].Fail.Status, on[402].Fail.Status}; !cmp.Equal(got, []int{409, 400}) {
					t.Errorf("fail statuses = %v, want [409 400]", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := LoadCell("cell.yaml", []byte(flowCellHead+tt.flow+"\n"), MapEnv(nil))
			if err != nil {
				t.Fatalf("LoadCell:\n%v", err)
			}
			s := c.Flows[0].Steps[0]
			got := settings{Timeout: s.Timeout, Retry: s.Retry}
			if s.Compensate != nil {
				got.CompensateTimeout, got.CompensateRetry = s.Compensate.Timeout, s.Compensate.Retry
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings in force (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t, c.Flows[0])
			}
		})
	}
}

// TestFlowValues checks how YAML values become the JSON-like values of
// templates: numbers are float64, a quoted scalar stays text, a plain
// ${VAR} is typed by its value, and null means "not written".
func TestFlowValues(t *testing.T) {
	const flow = `  - name: a
    route: POST /a
    steps:
      - id: a
        call: GET orders /a
        headers: {X-Empty: , X-Number: 5, X-Quoted: "5", X-Var: "${N}"}
        query:
          page: ${N}
          on: true
        body:
          int: 3
          float: 1.5
          hex: 0x10
          quoted: "3"
          bool: true
          null: null
          list: [1, a, {b: ~}]
          var: ${N}
          var_quoted: "${N}"
          var_word: ${WORD}
          var_bool: ${B}
          var_empty: ${EMPTY}
          expr: ${{ input.body }}
        optional: true
        fallback: null
      - {id: b, call: GET orders /b, body: null}
`
	env := map[string]string{"N": "10", "WORD": "yes", "B": "false", "EMPTY": ""}
	c, _, err := LoadCell("cell.yaml", []byte(flowCellHead+flow), MapEnv(env))
	if err != nil {
		t.Fatalf("LoadCell:\n%v", err)
	}
	a, b := c.Flows[0].Steps[0], c.Flows[0].Steps[1]
	raw := func(m map[string]*Template) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v.Raw()
		}
		return out
	}
	want := map[string]any{
		"headers": map[string]any{"X-Empty": "", "X-Number": 5.0, "X-Quoted": "5", "X-Var": "10"},
		"query":   map[string]any{"page": 10.0, "on": true},
		"body": map[string]any{
			"int": 3.0, "float": 1.5, "hex": 16.0, "quoted": "3", "bool": true, "null": nil,
			"list":       []any{1.0, "a", map[string]any{"b": nil}},
			"var":        10.0,
			"var_quoted": "10",
			"var_word":   "yes", // YAML 1.2: yes is text
			"var_bool":   false,
			"var_empty":  "",
			"expr":       "${{ input.body }}",
		},
	}
	got := map[string]any{"headers": raw(a.Headers), "query": raw(a.Query), "body": a.Body.Raw()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if a.Fallback != nil || b.Body != nil {
		t.Errorf("null fallback, body = %v, %v; want them left out", a.Fallback, b.Body)
	}
}

// TestFlowExpressionsAndInterpolation: ${{ }} is left for the flow while
// ${NAME} in the same string is interpolated, in cell files and compose
// files alike; $$ is a dollar.
func TestFlowExpressionsAndInterpolation(t *testing.T) {
	env := map[string]string{"PREFIX": "shop", "TAG": "v2"}
	want := map[string]any{
		"X-Trace": "shop-${{ flow.id }}",
		"X-Price": "$5 ${{ input.body.price }}",
		"X-Key":   `${{ input.headers["${TAG}"] }}`, // never inside an expression
		"X-Tag":   "v2",
	}
	check := func(t *testing.T, c *Cell) {
		t.Helper()
		got := map[string]any{}
		for k, v := range c.Flows[0].Steps[0].Headers {
			got[k] = v.Raw()
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("headers (-want +got):\n%s", diff)
		}
		if p, _ := c.Flows[0].Steps[0].Call.Path.Raw().(string); p != "/items/${{ path.id }}/v2" {
			t.Errorf("call path = %q", p)
		}
	}
	headers := `{X-Trace: "${PREFIX}-${{ flow.id }}", X-Price: "$$5 ${{ input.body.price }}", X-Key: '${{ input.headers["${TAG}"] }}', X-Tag: "${TAG}"}`
	t.Run("cell file", func(t *testing.T) {
		spec := flowCellHead + `  - name: a
    route: "GET /items/{id}"
    steps:
      - id: item
        call: GET orders /items/${{ path.id }}/${TAG}
        headers: ` + headers + "\n"
		c, warnings, err := LoadCell("cell.yaml", []byte(spec), MapEnv(env))
		if err != nil {
			t.Fatalf("LoadCell:\n%v", err)
		}
		if len(warnings) > 0 {
			t.Errorf("warnings: %v", warnings)
		}
		check(t, c)
	})
	t.Run("compose file", func(t *testing.T) {
		path := writeCompose(t, "shop", map[string]string{"compose.yaml": `x-orchestro:
  gateway: {port: 8081}
  flows:
    - name: a
      route: "GET /items/{id}"
      steps:
        - id: item
          call: GET orders /items/${{ path.id }}/${TAG}
          headers: ` + headers + `
services:
  orders: {image: example/orders:1, expose: ["8080"]}
`})
		p, err := Load(Options{Files: []string{path}, Env: MapEnv(env)})
		if err != nil {
			t.Fatalf("Load:\n%v", err)
		}
		if len(p.Warnings) > 0 {
			t.Errorf("warnings: %v", p.Warnings)
		}
		check(t, p.Cells[0])
	})
}

// composeFlows is flowFixture's cell as a compose file: the same flows
// under x-orchestro, with the on_status codes quoted, since compose-go
// accepts only string keys.
func composeFlows(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(flowFixture)
	if err != nil {
		t.Fatal(err)
	}
	_, flows, ok := strings.Cut(string(data), "\nflows:\n")
	if !ok {
		t.Fatal("no flows in the fixture")
	}
	flows = regexp.MustCompile(`(?m)^(\s+)(\d{3}):`).ReplaceAllString(flows, `$1"$2":`)
	return `name: shop
x-orchestro:
  gateway: {port: 8081}
  uses: [users]
  flows:
` + indent(flows, "  ") + `services:
  orders: {image: example/orders:1, expose: ["8080"]}
  inventory: {image: example/inventory:1, expose: ["8080"]}
  payments: {image: example/payments:1, expose: ["8080"]}
  notify: {image: example/notify:1, expose: ["8080"]}
`
}

func indent(s, by string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "")
}

// TestComposeFlows: x-orchestro.flows of a compose file loads to the same
// flows as the cell file, and converts back to a cell file that does too.
func TestComposeFlows(t *testing.T) {
	want := loadFlowFixture(t)
	path := writeCompose(t, "shop", map[string]string{"compose.yaml": composeFlows(t), "users.yaml": usersCell})
	p, err := Load(Options{Files: []string{path, filepath.Join(filepath.Dir(path), "users.yaml")}, Env: MapEnv(nil)})
	if err != nil {
		t.Fatalf("Load:\n%v", err)
	}
	if diff := cmp.Diff(want.Flows, p.Cell("shop").Flows, templateCmp); diff != "" {
		t.Errorf("flows from compose (-cell file +compose):\n%s", diff)
	}

	out, _, err := ConvertCompose(path, MapEnv(nil))
	if err != nil {
		t.Fatalf("ConvertCompose:\n%v", err)
	}
	c, _, err := LoadCell(filepath.Join(filepath.Dir(path), "cell.yaml"), out, MapEnv(nil))
	if err != nil {
		t.Fatalf("LoadCell of the converted file:\n%v\n%s", err, out)
	}
	if diff := cmp.Diff(p.Cell("shop"), c, cellOpts, templateCmp); diff != "" {
		t.Errorf("converted cell (-compose +cell file):\n%s", diff)
	}
}

// TestComposeFlowProblems: x-orchestro.flows is checked by the cell file's
// decoder, so problems read the same, at their place in the compose file.
func TestComposeFlowProblems(t *testing.T) {
	path := writeCompose(t, "shop", map[string]string{"compose.yaml": `x-orchestro:
  gateway: {port: 8081}
  flows:
    - name: place-order
      route: POST /checkout
      steps:
        - id: reserve
          call: POST inventory /reservations
          body:
            order: ${{ input.body.order }}
            charge: ${{ charge.body.id }}
        - id: charge
          call: POST payment /charges
          retyr: {attempts: 2}
services:
  inventory: {image: example/inventory:1, expose: ["8080"]}
  payments: {image: example/payments:1, expose: ["8080"]}
`})
	_, err := Load(Options{Files: []string{path}, Env: MapEnv(nil)})
	want := []string{
		`compose.yaml:11:21: flows[0].steps[0].body.charge: expression ${{ charge.body.id }}: step "charge" runs after "reserve"`,
		`compose.yaml:13:17: flows[0].steps[1].call: call names unknown service "payment" (did you mean "payments"?)`,
		`compose.yaml:14:11: flows[0].steps[1].retyr: unknown key "retyr" (did you mean "retry"?)`,
	}
	if diff := cmp.Diff(want, problemLines(t, err, filepath.Dir(path))); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}

	t.Run("status code key", func(t *testing.T) {
		path := writeCompose(t, "shop", map[string]string{"compose.yaml": `x-orchestro:
  gateway: {port: 8081}
  flows:
    - name: a
      route: POST /a
      steps:
        - id: a
          call: GET orders /a
          on_status:
            422: {fail: {}}
services:
  orders: {image: example/orders:1, expose: ["8080"]}
`})
		_, err := Load(Options{Files: []string{path}, Env: MapEnv(nil)})
		want := []string{`compose.yaml:10:13: x-orchestro.flows[0].steps[0].on_status.422: key 422 must be a string in a compose file (quote it: "422")`}
		if diff := cmp.Diff(want, problemLines(t, err, filepath.Dir(path))); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
}

// TestFlowRender: a cell's flows render as cell file YAML that loads back
// to the same flows (convert relies on it).
func TestFlowRender(t *testing.T) {
	c := loadFlowFixture(t)
	dir := t.TempDir()
	out, err := renderCell(c, dir, "flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checkFlowGolden(t, "design.render.golden", out)
	back, _, err := LoadCell(filepath.Join(dir, "cell.yaml"), out, MapEnv(nil))
	if err != nil {
		t.Fatalf("LoadCell of the rendered file:\n%v\n%s", err, out)
	}
	if diff := cmp.Diff(c, back, cellOpts, templateCmp); diff != "" {
		t.Errorf("rendered cell (-loaded +rendered):\n%s", diff)
	}
}

// TestFlowRenderDollars: "$" in text is doubled for interpolation, but
// not inside an expression.
func TestFlowRenderDollars(t *testing.T) {
	spec := flowCellHead + `  - name: a
    route: POST /a
    steps:
      - id: a
        call: GET orders /a/$${{ path.x }}
        body: {price: "$$5", expr: '${{ "$" + input.body.x }}', mixed: "$$ ${{ input.body.y }}"}
`
	c, _, err := LoadCell("cell.yaml", []byte(spec), MapEnv(nil))
	if err != nil {
		t.Fatalf("LoadCell:\n%v", err)
	}
	out, err := renderCell(c, ".", "cell.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`call: GET orders /a/${{ path.x }}`,
		`expr: ${{ "$" + input.body.x }}`,
		`mixed: $$ ${{ input.body.y }}`,
		`price: $$5`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered file lacks %q:\n%s", want, out)
		}
	}
	back, _, err := LoadCell("cell.yaml", out, MapEnv(nil))
	if err != nil {
		t.Fatalf("LoadCell of the rendered file:\n%v\n%s", err, out)
	}
	if diff := cmp.Diff(c.Flows, back.Flows, templateCmp); diff != "" {
		t.Errorf("flows (-loaded +rendered):\n%s", diff)
	}
}

// TestFlowRouteMatches: Matches agrees with Match on every shape of path,
// and a capture takes exactly one non-empty segment.
func TestFlowRouteMatches(t *testing.T) {
	r := FlowRoute{Method: "POST", Path: "/checkout/{order}"}
	for _, tt := range []struct {
		method, path string
		want         bool
		order        string
	}{
		{"POST", "/checkout/o1", true, "o1"},
		{"GET", "/checkout/o1", false, ""},
		{"POST", "/checkout/", false, ""},
		{"POST", "/checkout", false, ""},
		{"POST", "/checkout/o1/x", false, ""},
		{"POST", "/checkouts/o1", false, ""},
		{"POST", "checkout/o1", false, ""},
	} {
		caps, ok := r.Match(tt.method, tt.path)
		if ok != tt.want || r.Matches(tt.method, tt.path) != tt.want || caps["order"] != tt.order {
			t.Errorf("%s %s: Match %v %v, Matches %v; want %v", tt.method, tt.path, caps, ok, r.Matches(tt.method, tt.path), tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { r.Matches("POST", "/checkout/o1") }); n != 0 {
		t.Errorf("Matches allocates %v times", n)
	}
}
