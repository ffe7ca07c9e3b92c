package cellspec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fastPathCases write gateway.fast_path (or leave it out) and give the
// setting in force and the fast_path member the cell's JSON carries.
var fastPathCases = []struct {
	name     string
	value    string // the value of gateway.fast_path as written; "" leaves the key out
	env      map[string]string
	want     bool
	wantJSON string // the member of the gateway's JSON; "" when there must be none
}{
	{name: "left out", want: true},
	{name: "false", value: "false", want: false, wantJSON: `"fast_path":false`},
	{name: "true", value: "true", want: true, wantJSON: `"fast_path":true`},
	{name: "no", value: "no", want: false, wantJSON: `"fast_path":false`},
	{name: "off", value: "off", want: false, wantJSON: `"fast_path":false`},
	{name: "variable default", value: "${FAST_PATH:-false}", want: false, wantJSON: `"fast_path":false`},
	{name: "variable set", value: "${FAST_PATH:-false}", env: map[string]string{"FAST_PATH": "true"}, want: true, wantJSON: `"fast_path":true`},
}

func fastPathCellFile(value string) string {
	var b strings.Builder
	b.WriteString("cell: shop\ngateway:\n  port: 8081\n")
	if value != "" {
		b.WriteString("  fast_path: " + value + "\n")
	}
	b.WriteString("services:\n  orders: {image: example/orders:1, port: 8080}\n")
	return b.String()
}

func fastPathCompose(value string) string {
	var b strings.Builder
	b.WriteString("x-orchestro:\n  gateway:\n    port: 8081\n")
	if value != "" {
		b.WriteString("    fast_path: " + value + "\n")
	}
	b.WriteString("services:\n  orders: {image: example/orders:1, expose: [\"8080\"]}\n")
	return b.String()
}

// checkFastPath compares the setting in force, and the JSON that carries
// it, on the cell as loaded and after a JSON round trip: the gateway
// process gets the cell as JSON and asks it the same question.
func checkFastPath(t *testing.T, want bool, wantJSON string, c *Cell) {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	switch has := strings.Contains(string(data), "fast_path"); {
	case wantJSON == "" && has:
		t.Errorf("JSON of a cell that leaves fast_path out mentions it:\n%s", data)
	case wantJSON != "" && !strings.Contains(string(data), wantJSON):
		t.Errorf("JSON lacks %s:\n%s", wantJSON, data)
	}
	var back Cell
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for _, cell := range []struct {
		name string
		c    *Cell
	}{{"loaded", c}, {"after JSON", &back}} {
		if got := cell.c.Gateway.FastPathEnabled(); got != want {
			t.Errorf("FastPathEnabled(), %s = %v, want %v", cell.name, got, want)
		}
	}
}

func TestFastPath(t *testing.T) {
	for _, tt := range fastPathCases {
		t.Run("cell file/"+tt.name, func(t *testing.T) {
			c, _, err := LoadCell("cell.yaml", []byte(fastPathCellFile(tt.value)), MapEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			checkFastPath(t, tt.want, tt.wantJSON, c)
		})
		t.Run("compose/"+tt.name, func(t *testing.T) {
			path := writeCompose(t, "shop", map[string]string{"compose.yaml": fastPathCompose(tt.value)})
			p, err := Load(Options{Files: []string{path}, Env: MapEnv(tt.env)})
			c := oneCell(t, p, err)
			checkFastPath(t, tt.want, tt.wantJSON, c)
			if len(p.Warnings) > 0 {
				t.Errorf("warnings: %v", p.Warnings)
			}

			// convert writes fast_path only to turn the fast path
			// off, and the cell file it writes loads to the same
			// setting.
			out, _, err := ConvertCompose(path, MapEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(out), "fast_path: false\n"); got == tt.want {
				t.Errorf("converted cell writes fast_path: false = %v, want %v:\n%s", got, !tt.want, out)
			}
			cellFile := filepath.Join(filepath.Dir(path), "cell.yaml")
			if err := os.WriteFile(cellFile, out, 0o644); err != nil {
				t.Fatal(err)
			}
			converted, _, err := LoadCell(cellFile, out, MapEnv(nil))
			if err != nil {
				t.Fatalf("converted cell does not load: %v\n%s", err, out)
			}
			if got := converted.Gateway.FastPathEnabled(); got != tt.want {
				t.Errorf("converted cell: FastPathEnabled() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFastPathEnabled: a Gateway that does not say, built by hand or
// decoded from JSON written before the key existed, keeps the fast path.
func TestFastPathEnabled(t *testing.T) {
	on, off := true, false
	tests := []struct {
		name string
		g    Gateway
		want bool
	}{
		{"zero value", Gateway{}, true},
		{"true", Gateway{FastPath: &on}, true},
		{"false", Gateway{FastPath: &off}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.g.FastPathEnabled(); got != tt.want {
				t.Errorf("FastPathEnabled() = %v, want %v", got, tt.want)
			}
		})
	}
	var old Gateway
	if err := json.Unmarshal([]byte(`{"port":8081,"balance":"round_robin","routes":[]}`), &old); err != nil {
		t.Fatal(err)
	}
	if !old.FastPathEnabled() {
		t.Error("a gateway decoded from JSON without fast_path has the fast path off")
	}
}

func TestFastPathProblems(t *testing.T) {
	tests := []struct {
		name string
		line string // written under gateway:
		env  map[string]string
		want []string
	}{
		{
			name: "a word",
			line: "fast_path: sometimes",
			want: []string{`cell.yaml:4:14: gateway.fast_path: must be true or false, not "sometimes"`},
		},
		{
			name: "a number",
			line: "fast_path: 0",
			want: []string{`cell.yaml:4:14: gateway.fast_path: must be true or false, not "0"`},
		},
		{
			name: "quoted",
			line: `fast_path: "maybe"`,
			want: []string{`cell.yaml:4:14: gateway.fast_path: must be true or false, not "maybe"`},
		},
		{
			name: "null",
			line: "fast_path:",
			want: []string{`cell.yaml:4:13: gateway.fast_path: must be true or false, not null`},
		},
		{
			name: "a list",
			line: "fast_path: [false]",
			want: []string{`cell.yaml:4:14: gateway.fast_path: must be true or false, not a list`},
		},
		{
			name: "a mapping",
			line: "fast_path: {enabled: false}",
			want: []string{`cell.yaml:4:14: gateway.fast_path: must be true or false, not a mapping`},
		},
		{
			name: "from a variable",
			line: "fast_path: ${FAST_PATH}",
			env:  map[string]string{"FAST_PATH": "nope"},
			want: []string{`cell.yaml:4:14: gateway.fast_path: must be true or false, not "nope" (the value comes from ${FAST_PATH})`},
		},
		{
			name: "misspelt",
			line: "fastpath: false",
			want: []string{`cell.yaml:4:3: gateway.fastpath: unknown key "fastpath" (did you mean "fast_path"?)`},
		},
		{
			name: "twice",
			line: "fast_path: false\n  fast_path: true",
			want: []string{`cell.yaml:5:3: gateway.fast_path: duplicate key "fast_path"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := "cell: shop\ngateway:\n  port: 8081\n  " + tt.line + "\nservices:\n  orders: {image: example/orders:1, port: 8080}\n"
			_, _, err := LoadCell("cell.yaml", []byte(file), MapEnv(tt.env))
			if diff := cmp.Diff(tt.want, problemLines(t, err, "")); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestComposeFastPathProblems: x-orchestro.gateway.fast_path is checked as
// strictly as a cell file's, at its place in the compose file.
func TestComposeFastPathProblems(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []string
	}{
		{"a word", "sometimes", []string{`compose.yaml:4:16: gateway.fast_path: must be true or false, not "sometimes"`}},
		{"a list", "[false]", []string{`compose.yaml:4:16: gateway.fast_path: must be true or false, not a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeCompose(t, "shop", map[string]string{"compose.yaml": fastPathCompose(tt.value)})
			_, err := Load(Options{Files: []string{path}, Env: MapEnv(nil)})
			if diff := cmp.Diff(tt.want, problemLines(t, err, filepath.Dir(path))); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConvertFastPath(t *testing.T) {
	path := writeCompose(t, "shop", map[string]string{"compose.yaml": fastPathCompose("false")})
	out, _, err := ConvertCompose(path, MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := `# Converted from compose.yaml by orchestro convert.
cell: shop
gateway:
  port: 8081
  fast_path: false
services:
  orders:
    image: example/orders:1
    port: 8080
`
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("converted cell (-want +got):\n%s", diff)
	}
}
