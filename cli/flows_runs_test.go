package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// testExecutions is what the gateways of testFlowsProject journal, in no
// particular order: two executions whose ids share the prefix 3f2a, one
// running, one compensating, one a restarted gateway finished, and one
// from the day before.
func testExecutions() []api.ExecutionSummary {
	ago := func(d time.Duration) time.Time { return testNow.Add(-d) }
	return []api.ExecutionSummary{
		{ID: "3f2a11d0e4b7c9a8f6e5d4c3b2a19080", Cell: "shop", Flow: "place-order", State: api.ExecutionSucceeded,
			Outcome: "succeeded", Started: ago(5 * time.Minute), DurationMs: 42},
		{ID: "a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2", Cell: "users", Flow: "signup", State: api.ExecutionFailed,
			Outcome: "failed", Started: ago(2 * time.Hour), DurationMs: 2400, FailedStep: "create", Recovered: true},
		{ID: "8c1d0e2f3a4b5c6d7e8f9a0b1c2d3e4f", Cell: "shop", Flow: "place-order", State: api.ExecutionRunning,
			Started: ago(2 * time.Second), Async: true},
		{ID: "3f2a9c1b2d4e5f60718293a4b5c6d7e8", Cell: "shop", Flow: "place-order", State: api.ExecutionCompensated,
			Outcome: "compensated", Started: ago(3 * time.Minute), DurationMs: 15.932, FailedStep: "charge"},
		{ID: "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b", Cell: "shop", Flow: "cancel-order", State: api.ExecutionPartiallyCompensated,
			Outcome: "partially_compensated", Started: ago(26 * time.Hour), DurationMs: 65_300, FailedStep: "cancel"},
		{ID: "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", Cell: "shop", Flow: "place-order", State: api.ExecutionCompensating,
			Started: ago(10 * time.Second), FailedStep: "charge"},
	}
}

const allExecutionsCall = `Executions demo cell="" flow="" failed=false since=- limit=20`

func TestFlowsRuns(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		execErr    error
		wantCall   string
		golden     string // stdout
		wantStderr string
	}{
		{name: "every cell", args: []string{"flows", "runs"}, wantCall: allExecutionsCall, golden: "flows_runs.stdout"},
		{
			name: "one flow since a duration", args: []string{"flows", "runs", "shop/place-order", "--since", "1h"},
			wantCall: `Executions demo cell="shop" flow="place-order" failed=false since=2026-11-22T09:00:00Z limit=20`,
			golden:   "flows_runs_flow.stdout",
		},
		{
			name: "failed, limited", args: []string{"flows", "runs", "--failed", "--limit", "2"},
			wantCall: `Executions demo cell="" flow="" failed=true since=- limit=2`,
			golden:   "flows_runs_failed.stdout",
		},
		{
			name: "one cell since a time", args: []string{"flows", "runs", "users", "--since", "2026-11-22T07:00:00+01:00"},
			wantCall: `Executions demo cell="users" flow="" failed=false since=2026-11-22T06:00:00Z limit=20`,
			golden:   "flows_runs_cell.stdout",
		},
		{name: "whole ids", args: []string{"flows", "runs", "--no-trunc"}, wantCall: allExecutionsCall, golden: "flows_runs_no_trunc.stdout"},
		{name: "json", args: []string{"flows", "runs", "--json"}, wantCall: allExecutionsCall, golden: "flows_runs.json"},
		{
			name: "not running", args: []string{"flows", "runs"}, execErr: fmt.Errorf("find gateways: %w", api.ErrNotRunning),
			wantCall: allExecutionsCall, golden: "flows_runs_none.stdout", wantStderr: "project demo is not running\n",
		},
		{name: "not running, json", args: []string{"flows", "runs", "--json"}, execErr: api.ErrNotRunning, wantCall: allExecutionsCall, golden: "flows_runs_none.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testFlowsProject())
			h.be.executions, h.be.executionsErr = testExecutions(), tt.execErr
			if code := h.run(t.Context(), tt.args...); code != ExitOK {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
			}
			h.wantCalls("connect", tt.wantCall)
			golden(t, tt.golden, h.out.String())
			if diff := cmp.Diff(tt.wantStderr, h.errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFlowsRunsJSONShape pins the keys scripts read: every field of an
// execution summary, those left out when empty included.
func TestFlowsRunsJSONShape(t *testing.T) {
	h := newHarness(t, testFlowsProject())
	h.be.executions = testExecutions()
	if code := h.run(t.Context(), "flows", "runs", "--json"); code != ExitOK {
		t.Fatalf("exit code = %d; stderr:\n%s", code, h.errOut)
	}
	var list []map[string]any
	if err := json.Unmarshal(h.out.Bytes(), &list); err != nil {
		t.Fatalf("flows runs --json: %v\n%s", err, h.out)
	}
	keys := map[string]bool{}
	for _, e := range list {
		for k := range e {
			keys[k] = true
		}
		for _, k := range []string{"id", "cell", "flow", "state", "started"} {
			if _, ok := e[k]; !ok {
				t.Errorf("execution %v has no %q", e["id"], k)
			}
		}
	}
	want := []string{"async", "cell", "duration_ms", "failed_step", "flow", "id", "outcome", "recovered", "started", "state"}
	if diff := cmp.Diff(want, slices.Sorted(maps.Keys(keys))); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if ids := []string{list[0]["id"].(string), list[len(list)-1]["id"].(string)}; ids[0] != "8c1d0e2f3a4b5c6d7e8f9a0b1c2d3e4f" || ids[1] != "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b" {
		t.Errorf("first and last ids %q, want the newest and the oldest execution", ids)
	}
}

func TestFlowsRunsUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"flows", "runs", "shpo"}, `unknown cell "shpo" in project demo (cells: shop, users); did you mean "shop"?`},
		{[]string{"flows", "runs", "shop/place-ordr"}, `cell shop has no flow "place-ordr" (flows: place-order, cancel-order); did you mean "place-order"?`},
		{[]string{"flows", "runs", "shop/"}, `flows runs "shop/": the flow name is empty: write CELL or CELL/FLOW`},
		{[]string{"flows", "runs", "shop/a/b"}, `flows runs "shop/a/b": too many '/': write CELL or CELL/FLOW`},
		{[]string{"flows", "runs", "Shop"}, `flows runs "Shop": invalid cell name "Shop": write CELL or CELL/FLOW`},
		{[]string{"flows", "runs", "shop", "users"}, `flows runs takes at most one CELL or CELL/FLOW argument, got 2`},
		{[]string{"flows", "runs", "--limit", "0"}, `--limit 0: list at least one execution`},
		{[]string{"flows", "runs", "--since", "yesterday"}, `--since "yesterday" is neither a duration (10m, 1h30m) nor an RFC 3339 time (2026-11-22T10:00:00Z)`},
		{[]string{"flows", "runs", "--failed=maybe"}, `invalid argument "maybe" for "--failed" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			h := newHarness(t, testFlowsProject())
			if code := h.run(t.Context(), tt.args...); code != ExitUsage {
				t.Errorf("exit code = %d, want %d", code, ExitUsage)
			}
			want := "error: " + tt.want + "\nRun 'orchestro --help' for usage.\n"
			if diff := cmp.Diff(want, h.errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			h.wantCalls() // a typo never reaches the engine
		})
	}
}

// TestFlowsRunsCellWithoutFlows checks that a cell whose spec has no
// flows lists nothing, as `flows CELL` does, without asking a gateway.
func TestFlowsRunsCellWithoutFlows(t *testing.T) {
	for _, tt := range []struct{ args, stdout, stderr string }{
		{"flows runs shop", "ID   CELL   FLOW   STATE   STARTED   DURATION   FAILED STEP   RECOVERED\n", "cell shop has no flows\n"},
		{"flows runs shop/place-order", "ID   CELL   FLOW   STATE   STARTED   DURATION   FAILED STEP   RECOVERED\n", "cell shop has no flows\n"},
		{"flows runs shop --json", "[]\n", ""},
	} {
		h := newHarness(t, nil)
		if code := h.run(t.Context(), strings.Fields(tt.args)...); code != ExitOK {
			t.Errorf("%s: exit code = %d, want 0; stderr:\n%s", tt.args, code, h.errOut)
		}
		if h.out.String() != tt.stdout || h.errOut.String() != tt.stderr {
			t.Errorf("%s: stdout %q, stderr %q; want %q, %q", tt.args, h.out, h.errOut, tt.stdout, tt.stderr)
		}
		h.wantCalls()
	}
}

func TestFlowsRunsFailure(t *testing.T) {
	for _, tt := range []struct{ args, want string }{
		{"flows runs", "error: executions of demo: list executions of shop: 500: journal: disk I/O error\n"},
		{"flows runs shop/place-order", "error: executions of shop/place-order: list executions of shop: 500: journal: disk I/O error\n"},
	} {
		h := newHarness(t, testFlowsProject())
		h.be.executionsErr = errors.New("list executions of shop: 500: journal: disk I/O error")
		if code := h.run(t.Context(), strings.Fields(tt.args)...); code != ExitFailure {
			t.Errorf("%s: exit code = %d, want %d", tt.args, code, ExitFailure)
		}
		if h.errOut.String() != tt.want {
			t.Errorf("%s: stderr = %q, want %q", tt.args, h.errOut, tt.want)
		}
		if h.out.Len() != 0 {
			t.Errorf("%s: stdout = %q, want nothing", tt.args, h.out)
		}
	}
}

// TestFlowsRunsColor checks that the coloured STATE column keeps the table
// aligned: without its escape codes it is the plain table.
func TestFlowsRunsColor(t *testing.T) {
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	plain := newHarness(t, testFlowsProject())
	plain.be.executions = testExecutions()
	plain.run(t.Context(), "flows", "runs")

	tty := newHarness(t, testFlowsProject())
	tty.be.executions = testExecutions()
	tty.ios.SetStdoutTTY(true)
	tty.run(t.Context(), "flows", "runs")
	for _, want := range []string{"\x1b[32msucceeded\x1b[0m", "\x1b[33mcompensated\x1b[0m", "\x1b[31mfailed\x1b[0m",
		"\x1b[31mpartially_compensated\x1b[0m", "\x1b[39mrunning\x1b[0m"} {
		if !strings.Contains(tty.out.String(), want) {
			t.Errorf("on a terminal, no %q in:\n%s", want, tty.out)
		}
	}
	if diff := cmp.Diff(plain.out.String(), ansi.ReplaceAllString(tty.out.String(), "")); diff != "" {
		t.Errorf("coloured table without colour differs from the plain one (-plain +coloured):\n%s", diff)
	}
}

// TestFlowsCellNamedLikeASubcommand shows that the words runs, show and
// retry are the subcommands, and that `flows -- NAME` lists the flows of
// a cell of that name.
func TestFlowsCellNamedLikeASubcommand(t *testing.T) {
	files := map[string]string{"cell.yaml": strings.Replace(testCell, "cell: shop", "cell: runs", 1) + `flows:
  - name: place-order
    route: POST /checkout
    steps:
      - id: reserve
        call: POST orders /reservations
`}
	h := newHarness(t, files)
	h.be.statusErr = api.ErrNotRunning
	if code := h.run(t.Context(), "flows", "--", "runs"); code != ExitOK {
		t.Fatalf("flows -- runs: exit code %d; stderr:\n%s", code, h.errOut)
	}
	h.wantCalls("connect", "Status demo")
	if want := "runs   place-order   POST /checkout"; !strings.Contains(h.out.String(), want) {
		t.Errorf("flows -- runs does not list the flows of cell runs:\n%s", h.out)
	}

	h = newHarness(t, files)
	if code := h.run(t.Context(), "flows", "runs"); code != ExitOK {
		t.Fatalf("flows runs: exit code %d; stderr:\n%s", code, h.errOut)
	}
	h.wantCalls("connect", allExecutionsCall)
}
