package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// testFlowsProject is a project of two cells with flows: shop (the cell of
// testStatus, running) declares two, users (whose gateway is down in
// testStatus) one.
func testFlowsProject() map[string]string {
	return map[string]string{
		"orchestro.yaml": "project: demo\ncells: [shop.yaml, users.yaml]\n",
		"shop.yaml": testCell + `flows:
  - name: place-order
    route: POST /checkout/{order}
    steps:
      - id: reserve
        call: POST orders /reservations
        compensate:
          call: DELETE orders /reservations/${{ path.order }}
      - id: price
        call: GET catalog /prices
  - name: cancel-order
    route: DELETE /orders/{order}
    steps:
      - id: cancel
        call: DELETE orders /orders/${{ path.order }}
`,
		"users.yaml": `cell: users
gateway:
  port: 8082
services:
  accounts:
    image: example/accounts:1
    port: 8080
flows:
  - name: signup
    route: POST /signup
    steps:
      - id: create
        call: POST accounts /accounts
`,
	}
}

const usersDownWarning = "warning: cell users: gateway down: dial tcp 127.0.0.1:9082: connection refused\n"

func TestFlows(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string // nil: testFlowsProject
		args       []string
		status     *api.ProjectStatus
		statusErr  error
		golden     string // stdout
		wantStderr string
	}{
		{name: "every cell", args: []string{"flows"}, status: testStatus(), golden: "flows.stdout", wantStderr: usersDownWarning},
		{name: "one cell", args: []string{"flows", "shop"}, status: testStatus(), golden: "flows_cell.stdout"},
		{name: "cell whose gateway is down", args: []string{"flows", "users"}, status: testStatus(), golden: "flows_cell_down.stdout", wantStderr: usersDownWarning},
		{name: "json", args: []string{"flows", "--json"}, status: testStatus(), golden: "flows.json"},
		{name: "json, one cell", args: []string{"flows", "--json", "shop"}, status: testStatus(), golden: "flows_cell.json"},
		{
			name: "not running", args: []string{"flows"}, statusErr: fmt.Errorf("find gateways: %w", api.ErrNotRunning),
			golden: "flows_not_running.stdout", wantStderr: "project demo is not running\n",
		},
		{name: "not running, json", args: []string{"flows", "--json"}, statusErr: api.ErrNotRunning, golden: "flows_not_running.json"},
		{
			name: "no flows", files: map[string]string{"cell.yaml": testCell}, args: []string{"flows"}, status: withoutFlows(testStatus()),
			golden: "flows_none.stdout", wantStderr: usersDownWarning + "project demo has no flows\n",
		},
		{
			name: "no flows in the cell", files: map[string]string{"cell.yaml": testCell}, args: []string{"flows", "shop"}, statusErr: api.ErrNotRunning,
			golden: "flows_none.stdout", wantStderr: "project demo is not running\ncell shop has no flows\n",
		},
		{name: "no flows, json", files: map[string]string{"cell.yaml": testCell}, args: []string{"flows", "--json"}, statusErr: api.ErrNotRunning, golden: "flows_none.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := tt.files
			if files == nil {
				files = testFlowsProject()
			}
			h := newHarness(t, files)
			h.be.status, h.be.statusErr = tt.status, tt.statusErr
			if code := h.run(t.Context(), tt.args...); code != ExitOK {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
			}
			h.wantCalls("connect", "Status demo")
			golden(t, tt.golden, h.out.String())
			if diff := cmp.Diff(tt.wantStderr, h.errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFlowsJSONShape pins the keys of every flow object, the FlowStatus
// fields inline beside cell and gateway, since scripts read them by name.
func TestFlowsJSONShape(t *testing.T) {
	h := newHarness(t, testFlowsProject())
	h.be.status = testStatus()
	if code := h.run(t.Context(), "flows", "--json"); code != ExitOK {
		t.Fatalf("exit code = %d; stderr:\n%s", code, h.errOut)
	}
	var doc struct {
		Project string           `json:"project"`
		Flows   []map[string]any `json:"flows"`
	}
	if err := json.Unmarshal(h.out.Bytes(), &doc); err != nil {
		t.Fatalf("flows --json: %v\n%s", err, h.out)
	}
	if doc.Project != "demo" || len(doc.Flows) != 3 {
		t.Fatalf("project %q with %d flows, want demo with 3", doc.Project, len(doc.Flows))
	}
	want := []string{"cell", "compensated", "executions", "failed", "flow", "gateway", "inflight", "p50_ms", "p99_ms", "rate", "route", "success_rate"}
	for _, f := range doc.Flows {
		if diff := cmp.Diff(want, slices.Sorted(maps.Keys(f))); diff != "" {
			t.Errorf("keys of %v (-want +got):\n%s", f["flow"], diff)
		}
	}
}

func TestFlowsUnknownCell(t *testing.T) {
	t.Run("from the spec", func(t *testing.T) {
		h := newHarness(t, testFlowsProject())
		if code := h.run(t.Context(), "flows", "shpo"); code != ExitUsage {
			t.Errorf("exit code = %d, want %d", code, ExitUsage)
		}
		want := "error: unknown cell \"shpo\" in project demo (cells: shop, users); did you mean \"shop\"?\nRun 'orchestro --help' for usage.\n"
		if diff := cmp.Diff(want, h.errOut.String()); diff != "" {
			t.Errorf("stderr (-want +got):\n%s", diff)
		}
		if h.out.Len() != 0 {
			t.Errorf("stdout = %q, want nothing", h.out)
		}
		h.wantCalls() // a typo never reaches the engine
	})
	// Without a spec, -p names the project and the running cells are the
	// known ones.
	t.Run("from the status", func(t *testing.T) {
		h := newHarness(t, map[string]string{})
		h.be.status = testStatus()
		if code := h.run(t.Context(), "-p", "demo", "flows", "orders"); code != ExitUsage {
			t.Errorf("exit code = %d, want %d", code, ExitUsage)
		}
		if want := `unknown cell "orders" in project demo (cells: billing, shop, users)` + "\n"; !strings.Contains(h.errOut.String(), want) {
			t.Errorf("stderr does not contain %q:\n%s", want, h.errOut)
		}
		h.wantCalls("connect", "Status demo")
	})
}

func TestFlowsFailure(t *testing.T) {
	h := newHarness(t, testFlowsProject())
	h.be.statusErr = errors.New("list gateways: permission denied")
	if code := h.run(t.Context(), "flows"); code != ExitFailure {
		t.Errorf("exit code = %d, want %d", code, ExitFailure)
	}
	if want := "error: status of demo: list gateways: permission denied\n"; h.errOut.String() != want {
		t.Errorf("stderr = %q, want %q", h.errOut, want)
	}
	if h.out.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", h.out)
	}
}

// TestFlowFigures checks how the figures of one flow are shown: "-" for
// what was not measured, and a success percentage that never rounds a
// failure away.
func TestFlowFigures(t *testing.T) {
	tests := []struct {
		name string
		row  flowRow
		want string // INFLIGHT RATE SUCCESS COMPENSATED P50 P99
	}{
		{"busy", flowRow{Gateway: gatewayRunning, FlowStatus: api.FlowStatus{InFlight: 3, Rate: 12.5, SuccessRate: 0.984, Compensated: 7, P50Ms: 4.25, P99Ms: 180}},
			"3 12.5 98.4% 7 4.2ms 180ms"},
		{"all succeeded", flowRow{Gateway: gatewayRunning, FlowStatus: api.FlowStatus{Rate: 0.1, SuccessRate: 1, P50Ms: 0.5, P99Ms: 0.5}},
			"0 0.1 100% 0 0.5ms 0.5ms"},
		{"one failure in thousands", flowRow{Gateway: gatewayRunning, FlowStatus: api.FlowStatus{Rate: 300, SuccessRate: 0.9999}},
			"0 300.0 99.9% 0 0ms 0ms"},
		{"a tenth exactly", flowRow{Gateway: gatewayRunning, FlowStatus: api.FlowStatus{Rate: 1, SuccessRate: 0.999}},
			"0 1.0 99.9% 0 0ms 0ms"},
		{"none succeeded", flowRow{Gateway: gatewayRunning, FlowStatus: api.FlowStatus{Rate: 2, SuccessRate: 0, Compensated: 40}},
			"0 2.0 0% 40 0ms 0ms"},
		{"idle", flowRow{Gateway: gatewayRunning, FlowStatus: api.FlowStatus{Executions: 9, Compensated: 2}},
			"0 0.0 - 2 - -"},
		{"gateway down", flowRow{Gateway: gatewayDown}, "- - - - - -"},
		{"gateway starting", flowRow{Gateway: "starting", FlowStatus: api.FlowStatus{Rate: 5}}, "- - - - - -"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.row
			got := strings.Join([]string{r.inflight(), r.rate(), r.success(), r.compensated(), r.latency(r.P50Ms), r.latency(r.P99Ms)}, " ")
			if got != tt.want {
				t.Errorf("figures = %q, want %q", got, tt.want)
			}
		})
	}
}
