package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

const (
	compensatedID = "3f2a9c1b2d4e5f60718293a4b5c6d7e8"
	runningID     = "8c1d0e2f3a4b5c6d7e8f9a0b1c2d3e4f"
	// oldID is older than any list: only its whole id finds it.
	oldID = "ffee0000111122223333444455556666"
)

// testTimelines are the executions the fake backend returns whole.
func testTimelines() map[string]*api.Execution {
	started := testNow.Add(-3 * time.Minute)
	at := func(ms int) time.Time { return started.Add(time.Duration(ms) * time.Millisecond) }
	return map[string]*api.Execution{
		compensatedID: {
			ID: compensatedID, Cell: "shop", Flow: "place-order", State: api.ExecutionCompensated, Outcome: "compensated",
			Started: started, Deadline: started.Add(8 * time.Second), Finished: at(16), DurationMs: 15.932, FailedStep: "charge",
			Steps: []api.ExecutionStep{
				{ID: "reserve", State: "succeeded", Status: 201, Tries: 1, Started: at(0), DurationMs: 5.552, Reached: true, Compensated: "done"},
				{ID: "customer", State: "succeeded", Status: 200, Tries: 1, Started: at(0), DurationMs: 3.205, Reached: true},
				{ID: "charge", State: "failed", Status: 402, Tries: 2, Started: at(6), DurationMs: 5.63, Reached: true,
					Error: "answered 402,\nwhich on_status fails"},
				{ID: "notify", State: "not_started"},
			},
			Compensations: []api.ExecutionCompensation{
				{Step: "reserve", Outcome: "done", Status: 204, Tries: 1},
				{Step: "customer", Outcome: "not_compensated", Error: "no compensate"},
			},
			Response: &api.ExecutionResponse{
				Status:  http.StatusPaymentRequired,
				Headers: http.Header{"Content-Type": {"application/json"}},
				Body:    json.RawMessage(`{"error":"payment_declined"}`),
			},
		},
		oldID: {
			ID: oldID, Cell: "users", Flow: "signup", State: api.ExecutionSucceeded, Outcome: "succeeded", Async: true,
			Started: testNow.Add(-30 * 24 * time.Hour), DurationMs: 1250, Recovered: true,
			Steps:         []api.ExecutionStep{{ID: "create", State: "succeeded", Status: 201, Tries: 1, DurationMs: 1250}},
			Compensations: []api.ExecutionCompensation{},
			Response:      &api.ExecutionResponse{Status: 201},
		},
	}
}

func TestFlowsShow(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCall string // the Execution call
		golden   string
	}{
		{name: "prefix", args: []string{"flows", "show", "3f2a9"}, wantCall: `Execution demo cell="shop" id=` + compensatedID, golden: "flows_show.stdout"},
		{name: "short id", args: []string{"flows", "show", "3f2a9c1b2d4e"}, wantCall: `Execution demo cell="shop" id=` + compensatedID, golden: "flows_show.stdout"},
		{name: "whole id", args: []string{"flows", "show", compensatedID}, wantCall: `Execution demo cell="shop" id=` + compensatedID, golden: "flows_show.stdout"},
		{name: "json", args: []string{"flows", "show", "--json", "3f2a9"}, wantCall: `Execution demo cell="shop" id=` + compensatedID, golden: "flows_show.json"},
		{name: "running", args: []string{"flows", "show", "8c1"}, wantCall: `Execution demo cell="shop" id=` + runningID, golden: "flows_show_running.stdout"},
		// Not among the latest executions: every gateway is asked for it.
		{name: "older than the list", args: []string{"flows", "show", oldID}, wantCall: `Execution demo cell="" id=` + oldID, golden: "flows_show_old.stdout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testFlowsProject())
			h.be.executions, h.be.timelines = testExecutions(), testTimelines()
			if code := h.run(t.Context(), tt.args...); code != ExitOK {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
			}
			h.wantCalls("connect", `Executions demo cell="" flow="" failed=false since=- limit=1000`, tt.wantCall)
			golden(t, tt.golden, h.out.String())
			if h.errOut.Len() != 0 {
				t.Errorf("stderr = %q, want nothing", h.errOut)
			}
		})
	}
}

// TestFlowsShowJSONShape checks that --json is the api.Execution the
// gateway serves, with its cell, to the last field.
func TestFlowsShowJSONShape(t *testing.T) {
	h := newHarness(t, testFlowsProject())
	h.be.executions, h.be.timelines = testExecutions(), testTimelines()
	if code := h.run(t.Context(), "flows", "show", "--json", "3f2a9"); code != ExitOK {
		t.Fatalf("exit code = %d; stderr:\n%s", code, h.errOut)
	}
	var got api.Execution
	dec := json.NewDecoder(strings.NewReader(h.out.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("flows show --json: %v\n%s", err, h.out)
	}
	// The body is JSON as the gateway sent it, indented with the rest.
	var body bytes.Buffer
	if err := json.Compact(&body, got.Response.Body); err != nil {
		t.Fatalf("response body %s: %v", got.Response.Body, err)
	}
	got.Response.Body = body.Bytes()
	if diff := cmp.Diff(testTimelines()[compensatedID], &got); diff != "" {
		t.Errorf("execution (-want +got):\n%s", diff)
	}
}

func TestFlowsShowColor(t *testing.T) {
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	plain := newHarness(t, testFlowsProject())
	plain.be.executions, plain.be.timelines = testExecutions(), testTimelines()
	plain.run(t.Context(), "flows", "show", "3f2a9")

	tty := newHarness(t, testFlowsProject())
	tty.be.executions, tty.be.timelines = testExecutions(), testTimelines()
	tty.ios.SetStdoutTTY(true)
	tty.run(t.Context(), "flows", "show", "3f2a9")
	for _, want := range []string{"\x1b[33mcompensated\x1b[0m", "\x1b[31mfailed\x1b[0m", "\x1b[32mdone\x1b[0m", "\x1b[90mnot_started\x1b[0m"} {
		if !strings.Contains(tty.out.String(), want) {
			t.Errorf("on a terminal, no %q in:\n%s", want, tty.out)
		}
	}
	if diff := cmp.Diff(plain.out.String(), ansi.ReplaceAllString(tty.out.String(), "")); diff != "" {
		t.Errorf("coloured timeline without colour differs from the plain one (-plain +coloured):\n%s", diff)
	}
}

func TestFlowsShowErrors(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		execErr   error // of Executions
		getErr    error // of Execution
		wantCode  int
		wantErr   string
		wantCalls int // backend calls after connect
	}{
		{
			name: "ambiguous prefix", args: []string{"flows", "show", "3f2a"}, wantCode: ExitUsage, wantCalls: 1,
			wantErr: `error: execution id "3f2a" is ambiguous: the ids of 2 executions start with it; give more of it
  3f2a9c1b2d4e5f60718293a4b5c6d7e8  shop/place-order  compensated  3m ago
  3f2a11d0e4b7c9a8f6e5d4c3b2a19080  shop/place-order  succeeded  5m ago
Run 'orchestro --help' for usage.
`,
		},
		{
			name: "no such execution", args: []string{"flows", "show", "abc"}, wantCode: ExitFailure, wantCalls: 2,
			wantErr: "error: no execution abc in project demo (a prefix is looked for among the latest 1000 executions; give the whole id of an older one)\n",
		},
		{
			name: "not running", args: []string{"flows", "show", "3f2a9"}, execErr: fmt.Errorf("%w: no gateway of project demo is running", api.ErrNotRunning),
			wantCode: ExitFailure, wantCalls: 1,
			wantErr: "error: find execution 3f2a9: project is not running: no gateway of project demo is running\n",
		},
		{
			name: "a gateway fails", args: []string{"flows", "show", "3f2a9"}, getErr: errors.New("get execution 3f2a9c1b2d4e5f60718293a4b5c6d7e8 of shop: 500: journal: disk I/O error"),
			wantCode: ExitFailure, wantCalls: 2,
			wantErr: "error: find execution 3f2a9: get execution 3f2a9c1b2d4e5f60718293a4b5c6d7e8 of shop: 500: journal: disk I/O error\n",
		},
		{
			name: "no id", args: []string{"flows", "show"}, wantCode: ExitUsage,
			wantErr: "error: flows show takes one execution ID argument, got 0\nRun 'orchestro --help' for usage.\n",
		},
		{
			name: "empty id", args: []string{"flows", "show", ""}, wantCode: ExitUsage,
			wantErr: "error: flows show: the execution id is empty\nRun 'orchestro --help' for usage.\n",
		},
		{
			name: "a cell/flow for an id", args: []string{"flows", "show", "shop/place-order"}, wantCode: ExitUsage,
			wantErr: "error: flows show \"shop/place-order\": an execution id has no \"/\"\nRun 'orchestro --help' for usage.\n",
		},
		{
			name: "two ids", args: []string{"flows", "retry", "3f2a9", "8c1d"}, wantCode: ExitUsage,
			wantErr: "error: flows retry takes one execution ID argument, got 2\nRun 'orchestro --help' for usage.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testFlowsProject())
			h.be.executions, h.be.timelines = testExecutions(), testTimelines()
			h.be.executionsErr, h.be.executionErr = tt.execErr, tt.getErr
			if code := h.run(t.Context(), tt.args...); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			if diff := cmp.Diff(tt.wantErr, h.errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if h.out.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", h.out)
			}
			calls := h.be.Calls()
			if tt.wantCalls == 0 && len(calls) != 0 || tt.wantCalls > 0 && len(calls) != tt.wantCalls+1 {
				t.Errorf("backend calls %q, want connect and %d more", calls, tt.wantCalls)
			}
		})
	}
}

// TestFlowsShowAmbiguousListsTen checks that a short prefix many ids
// share lists the ten newest and counts the others.
func TestFlowsShowAmbiguousListsTen(t *testing.T) {
	h := newHarness(t, testFlowsProject())
	for i := range 12 {
		h.be.executions = append(h.be.executions, api.ExecutionSummary{
			ID: fmt.Sprintf("77%030d", i), Cell: "shop", Flow: "place-order", State: api.ExecutionSucceeded,
			Started: testNow.Add(-time.Duration(i) * time.Minute),
		})
	}
	if code := h.run(t.Context(), "flows", "show", "7"); code != ExitUsage {
		t.Errorf("exit code = %d, want %d", code, ExitUsage)
	}
	lines := strings.Split(strings.TrimSpace(h.errOut.String()), "\n")
	if len(lines) != 13 || !strings.Contains(lines[1], "770000") || !strings.Contains(lines[1], "just now") ||
		lines[11] != "  … and 2 more" {
		t.Errorf("stderr:\n%s\nwant the first line, the ten newest, … and 2 more, the usage hint", h.errOut)
	}
}

func TestFlowsRetry(t *testing.T) {
	h := newHarness(t, testFlowsProject())
	h.be.executions, h.be.timelines = testExecutions(), testTimelines()
	h.be.retry = api.RetryResult{ID: "4d5e6f708192a3b4c5d6e7f8091a2b3c"}
	if code := h.run(t.Context(), "flows", "retry", "3f2a9c"); code != ExitOK {
		t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
	}
	h.wantCalls("connect", `Executions demo cell="" flow="" failed=false since=- limit=1000`,
		`Execution demo cell="shop" id=`+compensatedID, `RetryExecution demo cell="shop" id=`+compensatedID)
	if got, want := h.out.String(), "4d5e6f708192a3b4c5d6e7f8091a2b3c\n"; got != want {
		t.Errorf("stdout = %q, want the new id alone, %q", got, want)
	}
	if got, want := h.errOut.String(), "retrying shop/place-order 3f2a9c1b2d4e as a new execution\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

// TestFlowsRetryRefused checks that the gateway's refusal to retry a
// running execution is a runtime failure (exit code 1, as any request a
// gateway refuses) that says why.
func TestFlowsRetryRefused(t *testing.T) {
	h := newHarness(t, testFlowsProject())
	h.be.executions = testExecutions()
	h.be.retryErr = errors.New("retry execution " + runningID + " of shop: 409: execution " + runningID + " is running")
	if code := h.run(t.Context(), "flows", "retry", "8c1d"); code != ExitFailure {
		t.Errorf("exit code = %d, want %d", code, ExitFailure)
	}
	want := "error: retry shop/place-order 8c1d0e2f3a4b: retry execution " + runningID + " of shop: 409: execution " + runningID + " is running\n"
	if diff := cmp.Diff(want, h.errOut.String()); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
	if h.out.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", h.out)
	}
}
