package cellspec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// outlierCases write outlier mappings at the gateway and for the service
// orders (other has none) and give the settings in force for both services.
var outlierCases = []struct {
	name    string
	gateway string // flow mapping under gateway.outlier; "" leaves it out
	orders  string // flow mapping under services.orders.outlier; "" leaves it out
	want    map[string]Outlier
}{
	{
		name: "none",
		want: map[string]Outlier{
			"orders": {Consecutive5xx: 0, BaseEjection: Duration(30 * time.Second), MaxEjectionPercent: 50},
			"other":  {Consecutive5xx: 0, BaseEjection: Duration(30 * time.Second), MaxEjectionPercent: 50},
		},
	},
	{
		name:    "gateway only",
		gateway: "{consecutive_5xx: 5}",
		want: map[string]Outlier{
			"orders": {Consecutive5xx: 5, BaseEjection: DefaultBaseEjection, MaxEjectionPercent: DefaultMaxEjectionPercent},
			"other":  {Consecutive5xx: 5, BaseEjection: DefaultBaseEjection, MaxEjectionPercent: DefaultMaxEjectionPercent},
		},
	},
	{
		name:   "service only, zero written",
		orders: "{max_ejection_percent: 0}",
		want: map[string]Outlier{
			"orders": {Consecutive5xx: DefaultConsecutive5xx, BaseEjection: DefaultBaseEjection, MaxEjectionPercent: 0},
			"other":  defaultOutlier,
		},
	},
	{
		name:    "service overrides the gateway field by field",
		gateway: "{consecutive_5xx: 5, base_ejection: 10s}",
		orders:  "{consecutive_5xx: 0, max_ejection_percent: 100}",
		want: map[string]Outlier{
			"orders": {Consecutive5xx: 0, BaseEjection: Duration(10 * time.Second), MaxEjectionPercent: 100},
			"other":  {Consecutive5xx: 5, BaseEjection: Duration(10 * time.Second), MaxEjectionPercent: DefaultMaxEjectionPercent},
		},
	},
	{
		name:    "an empty service mapping takes the gateway's",
		gateway: "{max_ejection_percent: 0, base_ejection: 1m}",
		orders:  "{}",
		want: map[string]Outlier{
			"orders": {Consecutive5xx: DefaultConsecutive5xx, BaseEjection: Duration(time.Minute), MaxEjectionPercent: 0},
			"other":  {Consecutive5xx: DefaultConsecutive5xx, BaseEjection: Duration(time.Minute), MaxEjectionPercent: 0},
		},
	},
}

func outlierCellFile(gateway, orders string) string {
	var b strings.Builder
	b.WriteString("cell: shop\ngateway:\n  port: 8081\n")
	if gateway != "" {
		b.WriteString("  outlier: " + gateway + "\n")
	}
	b.WriteString("services:\n  orders:\n    image: example/orders:1\n    port: 8080\n")
	if orders != "" {
		b.WriteString("    outlier: " + orders + "\n")
	}
	b.WriteString("  other: {image: example/other:1, port: 8080}\n")
	return b.String()
}

func outlierCompose(gateway, orders string) string {
	var b strings.Builder
	b.WriteString("x-orchestro:\n  gateway:\n    port: 8081\n")
	if gateway != "" {
		b.WriteString("    outlier: " + gateway + "\n")
	}
	b.WriteString("services:\n  orders:\n    image: example/orders:1\n    expose: [\"8080\"]\n")
	if orders != "" {
		b.WriteString("    x-orchestro:\n      outlier: " + orders + "\n")
	}
	b.WriteString("  other: {image: example/other:1, expose: [\"8080\"]}\n")
	return b.String()
}

// checkOutlierFor compares the settings in force for every service, on the
// cell as loaded and after a JSON round trip: the gateway process gets the
// cell as JSON and asks it the same question.
func checkOutlierFor(t *testing.T, want map[string]Outlier, c *Cell) {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Cell
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for _, cell := range []struct {
		name string
		c    *Cell
	}{{"loaded", c}, {"after JSON", &back}} {
		got := map[string]Outlier{}
		for name := range want {
			got[name] = cell.c.OutlierFor(name)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("OutlierFor, %s (-want +got):\n%s", cell.name, diff)
		}
	}
}

func TestOutlierFor(t *testing.T) {
	for _, tt := range outlierCases {
		t.Run("cell file/"+tt.name, func(t *testing.T) {
			c, _, err := LoadCell("cell.yaml", []byte(outlierCellFile(tt.gateway, tt.orders)), MapEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			checkOutlierFor(t, tt.want, c)
		})
		t.Run("compose/"+tt.name, func(t *testing.T) {
			path := writeCompose(t, "shop", map[string]string{"compose.yaml": outlierCompose(tt.gateway, tt.orders)})
			p, err := Load(Options{Files: []string{path}, Env: MapEnv(nil)})
			c := oneCell(t, p, err)
			checkOutlierFor(t, tt.want, c)
			if len(p.Warnings) > 0 {
				t.Errorf("warnings: %v", p.Warnings)
			}

			// convert writes a cell file that loads to the same
			// settings.
			out, _, err := ConvertCompose(path, MapEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			cellFile := filepath.Join(filepath.Dir(path), "cell.yaml")
			if err := os.WriteFile(cellFile, out, 0o644); err != nil {
				t.Fatal(err)
			}
			converted, _, err := LoadCell(cellFile, out, MapEnv(nil))
			if err != nil {
				t.Fatalf("converted cell does not load: %v\n%s", err, out)
			}
			checkOutlierFor(t, tt.want, converted)
		})
	}
}

// TestOutlierUnwrittenStaysNil: a cell that writes no outlier mapping
// encodes as before the setting existed, so its JSON (and the spec hash
// taken of it) does not change.
func TestOutlierUnwrittenStaysNil(t *testing.T) {
	c, _, err := LoadCell("cell.yaml", []byte(outlierCellFile("", "")), MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "outlier") {
		t.Errorf("JSON of a cell without outlier mentions it:\n%s", data)
	}
}

// TestOutlierStoredMerged pins what config --json shows: written mappings
// with every field in force.
func TestOutlierStoredMerged(t *testing.T) {
	c, _, err := LoadCell("cell.yaml", []byte(outlierCellFile("{consecutive_5xx: 3}", "{base_ejection: 5s}")), MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	gw := &Outlier{Consecutive5xx: 3, BaseEjection: DefaultBaseEjection, MaxEjectionPercent: DefaultMaxEjectionPercent}
	if diff := cmp.Diff(gw, c.Gateway.Outlier); diff != "" {
		t.Errorf("gateway.outlier (-want +got):\n%s", diff)
	}
	orders := &Outlier{Consecutive5xx: 3, BaseEjection: Duration(5 * time.Second), MaxEjectionPercent: DefaultMaxEjectionPercent}
	if diff := cmp.Diff(orders, c.Services["orders"].Outlier); diff != "" {
		t.Errorf("services.orders.outlier (-want +got):\n%s", diff)
	}
	if c.Services["other"].Outlier != nil {
		t.Errorf("services.other.outlier = %+v, want nil", c.Services["other"].Outlier)
	}
}

func TestOutlierProblems(t *testing.T) {
	tests := []struct {
		name    string
		gateway string
		orders  string
		want    []string
	}{
		{
			name:    "negative consecutive_5xx",
			gateway: "{consecutive_5xx: -1}",
			want:    []string{`cell.yaml:4:30: gateway.outlier.consecutive_5xx: consecutive_5xx must be 0 or more, not -1 (0 keeps 5xx answers from ejecting replicas)`},
		},
		{
			name:   "percent over 100",
			orders: "{max_ejection_percent: 101}",
			want:   []string{`cell.yaml:8:37: services.orders.outlier.max_ejection_percent: max_ejection_percent must be between 0 and 100, not 101`},
		},
		{
			name:   "negative percent",
			orders: "{max_ejection_percent: -5}",
			want:   []string{`cell.yaml:8:37: services.orders.outlier.max_ejection_percent: max_ejection_percent must be between 0 and 100, not -5`},
		},
		{
			name:    "zero base_ejection",
			gateway: "{base_ejection: 0s}",
			want:    []string{`cell.yaml:4:28: gateway.outlier.base_ejection: duration must be positive, not 0s`},
		},
		{
			name:   "base_ejection without a unit",
			orders: "{base_ejection: 30}",
			want:   []string{`cell.yaml:8:30: services.orders.outlier.base_ejection: invalid duration "30" (use a unit, for example 2s or 500ms)`},
		},
		{
			name:    "consecutive_5xx not an integer",
			gateway: "{consecutive_5xx: many}",
			want:    []string{`cell.yaml:4:30: gateway.outlier.consecutive_5xx: must be an integer, not "many"`},
		},
		{
			name:   "percent as a list",
			orders: "{max_ejection_percent: [50]}",
			want:   []string{`cell.yaml:8:37: services.orders.outlier.max_ejection_percent: must be an integer, not a list`},
		},
		{
			name:   "not a mapping",
			orders: "5",
			want:   []string{`cell.yaml:8:14: services.orders.outlier: must be a mapping, not "5"`},
		},
		{
			name:    "unknown key",
			gateway: "{max_ejection_percnt: 10}",
			want:    []string{`cell.yaml:4:13: gateway.outlier.max_ejection_percnt: unknown key "max_ejection_percnt" (did you mean "max_ejection_percent"?)`},
		},
		{
			// The service inherits the gateway's bad value; it is
			// reported once, where it is written.
			name:    "inherited bad value reported once",
			gateway: "{consecutive_5xx: -2}",
			orders:  "{base_ejection: 1s}",
			want:    []string{`cell.yaml:4:30: gateway.outlier.consecutive_5xx: consecutive_5xx must be 0 or more, not -2 (0 keeps 5xx answers from ejecting replicas)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadCell("cell.yaml", []byte(outlierCellFile(tt.gateway, tt.orders)), MapEnv(nil))
			if diff := cmp.Diff(tt.want, problemLines(t, err, "")); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestComposeOutlierProblems: the x-orchestro outlier mappings are checked
// as strictly as a cell file's, at their place in the compose file.
func TestComposeOutlierProblems(t *testing.T) {
	path := writeCompose(t, "shop", map[string]string{"compose.yaml": outlierCompose("{consecutive_5xx: -1}", "{max_ejection_percnt: 10}")})
	_, err := Load(Options{Files: []string{path}, Env: MapEnv(nil)})
	want := []string{
		`compose.yaml:4:32: gateway.outlier.consecutive_5xx: consecutive_5xx must be 0 or more, not -1 (0 keeps 5xx answers from ejecting replicas)`,
		`compose.yaml:10:17: services.orders.outlier.max_ejection_percnt: unknown key "max_ejection_percnt" (did you mean "max_ejection_percent"?)`,
	}
	if diff := cmp.Diff(want, problemLines(t, err, filepath.Dir(path))); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestConvertOutlier(t *testing.T) {
	path := writeCompose(t, "shop", map[string]string{"compose.yaml": outlierCompose(
		"{consecutive_5xx: 5, base_ejection: 30s, max_ejection_percent: 25}",
		"{consecutive_5xx: 0, max_ejection_percent: 25, base_ejection: 1m}")})
	out, _, err := ConvertCompose(path, MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Values equal to the defaults (gateway) or to the gateway's
	// (service) are left out.
	want := `# Converted from compose.yaml by orchestro convert.
cell: shop
gateway:
  port: 8081
  outlier:
    consecutive_5xx: 5
    max_ejection_percent: 25
services:
  orders:
    image: example/orders:1
    port: 8080
    outlier:
      consecutive_5xx: 0
      base_ejection: 1m
  other:
    image: example/other:1
    port: 8080
`
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("converted cell (-want +got):\n%s", diff)
	}
}
