package flow

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// placeOrder is the flow of DESIGN §6, as a gateway receives it.
const placeOrder = `{
  "name": "place-order",
  "route": "POST /checkout/{order}",
  "deadline": "10s",
  "steps": [
    {"id": "validate", "call": "POST orders /validate", "body": "${{ input.body }}", "expect": [200],
     "on_status": {"422": {"fail": {"status": 422, "headers": {"X-Reason": "invalid ${{ path.order }}"}, "body": "${{ validate.body }}"}}}},
    {"parallel": [
      {"id": "reserve", "call": "POST inventory /reservations",
       "body": {"order": "${{ path.order }}", "items": "${{ input.body.items }}"},
       "compensate": {"call": "DELETE inventory /reservations/${{ reserve.body.id }}", "retry": {"attempts": 5}}},
      {"id": "quote", "call": "GET cell:users /discounts/${{ input.headers[\"x-user\"] }}",
       "optional": true, "fallback": {"percent": 0}}
    ]},
    {"id": "charge", "call": "POST payments /charges",
     "headers": {"Idempotency-Key": "${{ flow.id }}-charge"},
     "body": {"order": "${{ path.order }}", "amount": "${{ validate.body.total * (100 - quote.body.percent) / 100 }}"},
     "retry": {"attempts": 2, "retry_on": ["connect"]},
     "on_status": {"402": {"fail": {"status": 402, "body": {"error": "payment_declined"}}}},
     "compensate": {"call": "POST payments /charges/${{ charge.body.id }}/refund"}},
    {"id": "notify", "when": "${{ charge.status == 201 }}", "call": "POST notify /emails",
     "body": {"order": "${{ path.order }}"}, "optional": true}
  ],
  "response": {
    "status": 201,
    "headers": {"Location": "/orders/${{ path.order }}"},
    "body": {
      "order": "${{ path.order }}",
      "reservation": "${{ reserve.body.id }}",
      "charge": "${{ charge.body.id }}",
      "amount": "${{ charge.body.amount }}",
      "items": "${{ input.body.items }}",
      "summary": "order ${{ path.order }}: ${{ charge.body.amount }} charged",
      "notified": "${{ notify.ok }}"
    }
  }
}`

// placeOrderOK answers every step of placeOrder successfully.
func placeOrderOK() map[string][]reply {
	return map[string][]reply{
		"validate": {ok(`{"total": 120}`)},
		"reserve":  {withStatus(201, `{"id": "r-1"}`)},
		"quote":    {ok(`{"percent": 10}`)},
		"charge":   {withStatus(201, `{"id": "c-1", "amount": 108}`)},
		"notify":   {withStatus(202, "")},
	}
}

func TestExecuteSuccess(t *testing.T) {
	res, caller := run(t, placeOrder, placeOrderOK())

	if res.Outcome != Succeeded || res.Status != 201 {
		t.Fatalf("outcome %s, status %d, want succeeded 201; body %s", res.Outcome, res.Status, res.Body)
	}
	// An expression alone keeps its type: numbers, lists and booleans
	// stay what they are; inside a longer string it is text.
	wantBody := `{"amount":108,"charge":"c-1","items":[{"qty":2,"sku":"A"}],"notified":true,
	              "order":"o-7","reservation":"r-1","summary":"order o-7: 108 charged"}`
	assertJSON(t, wantBody, res.Body)
	wantHeader := http.Header{
		"Content-Type":        {"application/json"},
		"Location":            {"/orders/o-7"},
		"X-Orchestro-Flow-Id": {"f1"},
	}
	if diff := cmp.Diff(wantHeader, res.Header); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	// The charge's amount is computed from validate and quote.
	assertJSON(t, `{"order":"o-7","amount":108}`, caller.callsOf("charge")[0].req.Body)
	wantSteps := []StepResult{
		{ID: "validate", State: "succeeded", Status: 200, Tries: 1},
		{ID: "reserve", State: "succeeded", Status: 201, Tries: 1},
		{ID: "quote", State: "succeeded", Status: 200, Tries: 1},
		{ID: "charge", State: "succeeded", Status: 201, Tries: 1},
		{ID: "notify", State: "succeeded", Status: 202, Tries: 1},
	}
	if diff := cmp.Diff(wantSteps, res.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if res.Compensations != nil || res.FailedStep != "" || res.TimedOut {
		t.Errorf("compensations %v, failed step %q, timed out %v; want none", res.Compensations, res.FailedStep, res.TimedOut)
	}
	if !res.Started.Equal(t0) {
		t.Errorf("started %v, want %v", res.Started, t0)
	}
}

func TestExecuteDefaultResponse(t *testing.T) {
	const src = `{"name": "f", "steps": [
	  {"id": "a", "call": "GET svc /a"},
	  {"id": "b", "call": "GET svc /b"},
	  {"id": "skipped", "when": "${{ a.body.n > 5 }}", "call": "GET svc /c"},
	  {"id": "fell", "call": "GET svc /d", "optional": true, "fallback": {"n": 0}},
	  {"id": "checks", "call": "POST svc /e", "body": {
	     "skipped_ok": "${{ skipped.ok }}", "skipped_status": "${{ skipped.status }}", "skipped_body": "${{ skipped.body }}",
	     "fell_ok": "${{ fell.ok }}", "fell_body": "${{ fell.body }}", "fell_error": "${{ fell.error }}", "fell_tries": "${{ fell.tries }}"}}
	]}`
	res, caller := run(t, src, map[string][]reply{
		"a":    {ok(`{"n": 1}`)},
		"b":    {{status: 200, header: http.Header{"Content-Type": {"text/plain"}}, body: "plain"}},
		"fell": {withStatus(500, `{"oops": true}`)},
	})
	if res.Outcome != Succeeded || res.Status != 200 {
		t.Fatalf("outcome %s, status %d, want succeeded 200; body %s", res.Outcome, res.Status, res.Body)
	}
	assertJSON(t, `{"a":{"n":1},"b":"plain","skipped":null,"fell":{"n":0},"checks":null}`, res.Body)
	assertJSON(t, `{"skipped_ok":false,"skipped_status":0,"skipped_body":null,
	                "fell_ok":false,"fell_body":{"n":0},"fell_error":"answered 500, expected 2xx","fell_tries":1}`,
		caller.callsOf("checks")[0].req.Body)
	if got := res.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
	if got := stepStates(res); got != "a:succeeded b:succeeded skipped:skipped fell:failed checks:succeeded" {
		t.Errorf("states: %s", got)
	}
}

// saga has a compensation on every step but the last: a, then b and c in
// parallel (c answers after 10ms, b after 20ms), then d and e. The
// compensations of a and c refer to their step's answer, b's and d's do
// not.
const saga = `{"name": "saga", "deadline": "10s", "steps": [
  {"id": "a", "call": "POST svc /a", "compensate": {"call": "DELETE svc /a/${{ a.body.id }}"}},
  {"parallel": [
    {"id": "b", "call": "POST svc /b", "compensate": {"call": "DELETE svc /b/${{ flow.id }}"}},
    {"id": "c", "call": "POST svc /c", "compensate": {"call": "DELETE svc /c/${{ c.body.id }}"}}
  ]},
  {"id": "d", "call": "POST svc /d", "compensate": {"call": "POST svc /d/undo", "body": {"id": "${{ d.body.id }}"}}},
  {"id": "e", "call": "POST svc /e"}
]}`

func sagaScript() map[string][]reply {
	return map[string][]reply{
		"a": {withStatus(201, `{"id": "a1"}`)},
		"b": {{status: 201, after: 20 * time.Millisecond, header: http.Header{"Content-Type": {"application/json"}}, body: `{"id": "b1"}`}},
		"c": {{status: 201, after: 10 * time.Millisecond, header: http.Header{"Content-Type": {"application/json"}}, body: `{"id": "c1"}`}},
		"d": {withStatus(201, `{"id": "d1"}`)},
		"e": {withStatus(201, "")},
	}
}

func TestExecuteFailurePoints(t *testing.T) {
	fail500 := func(after time.Duration) []reply { return []reply{{status: 500, after: after}} }
	tests := []struct {
		name   string
		src    string
		script map[string][]reply
		// states are the steps' states, in order.
		states     string
		failedStep string
		outcome    Outcome
		// compensations are the compensations, in the order they ran.
		compensations []CompensationResult
		compensated   string // X-Orchestro-Compensated
		calls         []string
	}{
		{
			name: "first step", src: saga, script: map[string][]reply{"a": fail500(0)},
			states:     "a:failed b:not_started c:not_started d:not_started e:not_started",
			failedStep: "a", outcome: Failed,
			calls: []string{"a"},
		},
		{
			name: "parallel member, after its sibling completed", src: saga, script: map[string][]reply{"b": fail500(20 * time.Millisecond)},
			states:     "a:succeeded b:failed c:succeeded d:not_started e:not_started",
			failedStep: "b", outcome: Compensated, compensated: "true",
			compensations: []CompensationResult{
				{Step: "c", Outcome: "done", Status: 200, Tries: 1},
				{Step: "a", Outcome: "done", Status: 200, Tries: 1},
			},
			calls: []string{"a", "b", "c", "c/compensate", "a/compensate"},
		},
		{
			// b is cancelled in flight; its compensation does not need its
			// answer, so it runs, first.
			name: "parallel member, sibling in flight", src: saga, script: map[string][]reply{"c": fail500(10 * time.Millisecond)},
			states:     "a:succeeded b:cancelled c:failed d:not_started e:not_started",
			failedStep: "c", outcome: Compensated, compensated: "true",
			compensations: []CompensationResult{
				{Step: "b", Outcome: "done", Status: 200, Tries: 1},
				{Step: "a", Outcome: "done", Status: 200, Tries: 1},
			},
			calls: []string{"a", "b", "c", "b/compensate", "a/compensate"},
		},
		{
			// Here b's compensation refers to b's answer, which it never
			// got: not compensated.
			name:       "parallel member, sibling in flight needing its answer",
			src:        strings.Replace(saga, "/b/${{ flow.id }}", "/b/${{ b.body.id }}", 1),
			script:     map[string][]reply{"c": fail500(10 * time.Millisecond)},
			states:     "a:succeeded b:cancelled c:failed d:not_started e:not_started",
			failedStep: "c", outcome: Partial, compensated: "partial",
			compensations: []CompensationResult{
				{Step: "b", Outcome: "not_compensated"},
				{Step: "a", Outcome: "done", Status: 200, Tries: 1},
			},
			calls: []string{"a", "b", "c", "a/compensate"},
		},
		{
			// b never reached a replica before it was cancelled: nothing
			// to undo.
			name: "parallel member, sibling never connected", src: saga,
			script: map[string][]reply{
				"b": {{err: ErrConnect, block: true}},
				"c": fail500(10 * time.Millisecond),
			},
			states:     "a:succeeded b:cancelled c:failed d:not_started e:not_started",
			failedStep: "c", outcome: Compensated, compensated: "true",
			compensations: []CompensationResult{
				{Step: "a", Outcome: "done", Status: 200, Tries: 1},
			},
			calls: []string{"a", "b", "c", "a/compensate"},
		},
		{
			name: "middle step", src: saga, script: map[string][]reply{"d": fail500(0)},
			states:     "a:succeeded b:succeeded c:succeeded d:failed e:not_started",
			failedStep: "d", outcome: Compensated, compensated: "true",
			// b completed last (20ms), then c (10ms), then a.
			compensations: []CompensationResult{
				{Step: "b", Outcome: "done", Status: 200, Tries: 1},
				{Step: "c", Outcome: "done", Status: 200, Tries: 1},
				{Step: "a", Outcome: "done", Status: 200, Tries: 1},
			},
			calls: []string{"a", "b", "c", "d", "b/compensate", "c/compensate", "a/compensate"},
		},
		{
			name: "last step", src: saga, script: map[string][]reply{"e": fail500(0)},
			states:     "a:succeeded b:succeeded c:succeeded d:succeeded e:failed",
			failedStep: "e", outcome: Compensated, compensated: "true",
			compensations: []CompensationResult{
				{Step: "d", Outcome: "done", Status: 200, Tries: 1},
				{Step: "b", Outcome: "done", Status: 200, Tries: 1},
				{Step: "c", Outcome: "done", Status: 200, Tries: 1},
				{Step: "a", Outcome: "done", Status: 200, Tries: 1},
			},
			calls: []string{"a", "b", "c", "d", "e", "d/compensate", "b/compensate", "c/compensate", "a/compensate"},
		},
		{
			name:       "compensation failing then retried",
			src:        strings.Replace(saga, `"DELETE svc /a/${{ a.body.id }}"`, `"DELETE svc /a/${{ a.body.id }}", "retry": {"attempts": 3, "retry_on": ["503"]}`, 1),
			script:     map[string][]reply{"b": fail500(20 * time.Millisecond), "a/compensate": {withStatus(503, ""), withStatus(204, "")}},
			states:     "a:succeeded b:failed c:succeeded d:not_started e:not_started",
			failedStep: "b", outcome: Compensated, compensated: "true",
			compensations: []CompensationResult{
				{Step: "c", Outcome: "done", Status: 200, Tries: 1},
				{Step: "a", Outcome: "done", Status: 204, Tries: 2},
			},
			calls: []string{"a", "b", "c", "c/compensate", "a/compensate", "a/compensate"},
		},
		{
			name:       "compensation exhausting its attempts",
			src:        strings.Replace(saga, `"DELETE svc /a/${{ a.body.id }}"`, `"DELETE svc /a/${{ a.body.id }}", "retry": {"attempts": 2, "retry_on": ["503"]}`, 1),
			script:     map[string][]reply{"b": fail500(20 * time.Millisecond), "a/compensate": {withStatus(503, "")}},
			states:     "a:succeeded b:failed c:succeeded d:not_started e:not_started",
			failedStep: "b", outcome: Partial, compensated: "partial",
			compensations: []CompensationResult{
				{Step: "c", Outcome: "done", Status: 200, Tries: 1},
				{Step: "a", Outcome: "failed", Status: 503, Tries: 2},
			},
			calls: []string{"a", "b", "c", "c/compensate", "a/compensate", "a/compensate"},
		},
		{
			name: "compensation answering 404 is done", src: saga,
			script:     map[string][]reply{"d": fail500(0), "a/compensate": {withStatus(404, "")}, "c/compensate": {withStatus(409, "")}},
			states:     "a:succeeded b:succeeded c:succeeded d:failed e:not_started",
			failedStep: "d", outcome: Partial, compensated: "partial",
			compensations: []CompensationResult{
				{Step: "b", Outcome: "done", Status: 200, Tries: 1},
				{Step: "c", Outcome: "failed", Status: 409, Tries: 1},
				{Step: "a", Outcome: "done", Status: 404, Tries: 1},
			},
			calls: []string{"a", "b", "c", "d", "b/compensate", "c/compensate", "a/compensate"},
		},
		{
			// An optional step that succeeded is compensated too; one that
			// failed is not.
			name: "optional steps",
			src: `{"name": "f", "steps": [
			  {"id": "a", "call": "POST svc /a", "optional": true, "compensate": {"call": "DELETE svc /a"}},
			  {"id": "b", "call": "POST svc /b", "optional": true, "compensate": {"call": "DELETE svc /b"}},
			  {"id": "c", "call": "POST svc /c"}]}`,
			script:     map[string][]reply{"b": {withStatus(500, "")}, "c": {withStatus(500, "")}},
			states:     "a:succeeded b:failed c:failed",
			failedStep: "c", outcome: Compensated, compensated: "true",
			compensations: []CompensationResult{{Step: "a", Outcome: "done", Status: 200, Tries: 1}},
			calls:         []string{"a", "b", "c", "a/compensate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := sagaScript()
			for k, v := range tt.script {
				script[k] = v
			}
			res, caller := run(t, tt.src, script)
			if res.Status != 502 || res.Outcome != tt.outcome || res.FailedStep != tt.failedStep || res.TimedOut {
				t.Errorf("status %d, outcome %s, failed step %q, timed out %v; want 502, %s, %q, false",
					res.Status, res.Outcome, res.FailedStep, res.TimedOut, tt.outcome, tt.failedStep)
			}
			if got := stepStates(res); got != tt.states {
				t.Errorf("states:\n got %s\nwant %s", got, tt.states)
			}
			if diff := cmp.Diff(tt.compensations, res.Compensations, cmpopts.IgnoreFields(CompensationResult{}, "Error")); diff != "" {
				t.Errorf("compensations (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.calls, caller.keys()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if got := res.Header.Get(HeaderCompensated); got != tt.compensated {
				t.Errorf("%s: %q, want %q", HeaderCompensated, got, tt.compensated)
			}
			if got := res.Header.Get(HeaderFlowID); got != "f1" {
				t.Errorf("%s: %q, want f1", HeaderFlowID, got)
			}
			for _, c := range res.Compensations {
				if got := stepResult(res, c.Step).Compensated; got != c.Outcome {
					t.Errorf("step %s: compensated %q, want %q", c.Step, got, c.Outcome)
				}
			}
			var p problemDetails
			if err := json.Unmarshal(res.Body, &p); err != nil || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("body %s (%s): %v", res.Body, res.Header.Get("Content-Type"), err)
			}
			if p.Type != ProblemStepFailed || p.Status != 502 || p.Step != tt.failedStep || p.Flow != "saga" && p.Flow != "f" || p.FlowID != "f1" {
				t.Errorf("problem %+v", p)
			}
			if len(p.Compensations) != len(tt.compensations) {
				t.Errorf("problem compensations %v, want %d", p.Compensations, len(tt.compensations))
			}
		})
	}
}

// TestExecuteCompensationRequests checks what compensations send: their
// rendered path and body, and the default Idempotency-Key.
func TestExecuteCompensationRequests(t *testing.T) {
	script := sagaScript()
	script["e"] = []reply{withStatus(500, "")}
	_, caller := run(t, saga, script)
	want := map[string]string{
		"a/compensate": "DELETE /a/a1 f1-a-compensate ",
		"b/compensate": "DELETE /b/f1 f1-b-compensate ",
		"c/compensate": "DELETE /c/c1 f1-c-compensate ",
		"d/compensate": `POST /d/undo f1-d-compensate {"id":"d1"}`,
	}
	for key, w := range want {
		calls := caller.callsOf(key)
		if len(calls) != 1 {
			t.Fatalf("%s: %d calls, want 1", key, len(calls))
		}
		req := calls[0].req
		got := req.Method + " " + req.Path + " " + req.Header.Get("Idempotency-Key") + " " + string(req.Body)
		if got != w || !req.Compensation {
			t.Errorf("%s: %q (compensation %v), want %q", key, got, req.Compensation, w)
		}
	}
}

func TestExecuteDeadline(t *testing.T) {
	// b blocks until the deadline (1s) cuts it. Its compensation does
	// not need its answer, so it runs, after the deadline, and so does a's.
	const src = `{"name": "f", "deadline": "1s", "steps": [
	  {"id": "a", "call": "POST svc /a", "timeout": "5s", "compensate": {"call": "DELETE svc /a/${{ a.body.id }}"}},
	  {"id": "b", "call": "POST svc /b", "timeout": "5s", "compensate": {"call": "DELETE svc /b/${{ flow.id }}", "timeout": "3s"}},
	  {"id": "c", "call": "POST svc /c"}]}`
	var res *Result
	var caller *fakeCaller
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		caller = newFakeCaller(clk, map[string][]reply{
			"a":            {{status: 201, after: 300 * time.Millisecond, header: http.Header{"Content-Type": {"application/json"}}, body: `{"id":"a1"}`}},
			"b":            {{block: true}},
			"b/compensate": {{status: 204, after: 2 * time.Second}},
		})
		r := New("shop", mustFlow(t, src), caller, clk)
		res = drive(t, clk, func() *Result { return r.Execute(t.Context(), testInput()) })
		if d := clk.since(); d != 3*time.Second {
			t.Errorf("ended after %s, want 3s: the deadline at 1s, then b's compensation for 2s", d)
		}
		if res.Duration != 3*time.Second {
			t.Errorf("duration %s, want 3s", res.Duration)
		}
	})
	if res.Status != 504 || !res.TimedOut || res.Outcome != Compensated || res.FailedStep != "b" {
		t.Errorf("status %d, timed out %v, outcome %s, failed step %q; want 504, true, compensated, b", res.Status, res.TimedOut, res.Outcome, res.FailedStep)
	}
	if got := stepStates(res); got != "a:succeeded b:cancelled c:not_started" {
		t.Errorf("states: %s", got)
	}
	want := []CompensationResult{{Step: "b", Outcome: "done", Status: 204, Tries: 1}, {Step: "a", Outcome: "done", Status: 200, Tries: 1}}
	if diff := cmp.Diff(want, res.Compensations); diff != "" {
		t.Errorf("compensations (-want +got):\n%s", diff)
	}
	if got := stepResult(res, "b"); got.Duration != 700*time.Millisecond || !strings.Contains(got.Error, "deadline") {
		t.Errorf("step b: %+v, want 700ms and an error naming the deadline", got)
	}
	var p problemDetails
	if err := json.Unmarshal(res.Body, &p); err != nil {
		t.Fatal(err)
	}
	want2 := problemDetails{
		Type: ProblemDeadline, Title: "Flow deadline exceeded", Status: 504,
		Detail: `the flow's deadline of 1s passed while step "b" ran`,
		Flow:   "f", FlowID: "f1", Step: "b",
		Compensations: []problemCompensation{{Step: "b", Outcome: "done"}, {Step: "a", Outcome: "done"}},
	}
	if diff := cmp.Diff(want2, p); diff != "" {
		t.Errorf("problem (-want +got):\n%s", diff)
	}
	if got := res.Header.Get(HeaderCompensated); got != "true" {
		t.Errorf("%s: %q, want true", HeaderCompensated, got)
	}
}

// TestExecuteDeadlineBoundsTries checks that a try's timeout is cut to the
// time left, and that waits do not outlive the deadline.
func TestExecuteDeadlineBoundsTries(t *testing.T) {
	const src = `{"name": "f", "deadline": "1s", "steps": [
	  {"id": "a", "call": "GET svc /a", "timeout": "400ms",
	   "retry": {"attempts": 10, "backoff": "250ms", "retry_on": ["timeout"]}}]}`
	var res *Result
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		caller := newFakeCaller(clk, map[string][]reply{"a": {{block: true}}})
		r := New("shop", mustFlow(t, src), caller, clk)
		res = drive(t, clk, func() *Result { return r.Execute(t.Context(), testInput()) })
		// Try 1 times out at 400ms, waits 250ms, try 2 starts at 650ms
		// and is cut by the deadline at 1s.
		var at []time.Duration
		for _, c := range caller.callsOf("a") {
			at = append(at, c.at)
		}
		if diff := cmp.Diff([]time.Duration{0, 650 * time.Millisecond}, at); diff != "" {
			t.Errorf("tries at (-want +got):\n%s", diff)
		}
		if d := clk.since(); d != time.Second {
			t.Errorf("ended at %s, want 1s", d)
		}
	})
	if res.Status != 504 || res.Outcome != Failed || res.Steps[0].Tries != 2 {
		t.Errorf("status %d, outcome %s, tries %d; want 504, failed, 2", res.Status, res.Outcome, res.Steps[0].Tries)
	}
	if res.Header.Get(HeaderCompensated) != "" {
		t.Errorf("%s set with nothing to compensate", HeaderCompensated)
	}
}

// TestExecuteClientGone checks that the caller's context ending stops the
// steps but not the compensations.
func TestExecuteClientGone(t *testing.T) {
	const src = `{"name": "f", "steps": [
	  {"id": "a", "call": "POST svc /a", "compensate": {"call": "DELETE svc /a"}},
	  {"id": "b", "call": "POST svc /b"}]}`
	var res *Result
	var caller *fakeCaller
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		caller = newFakeCaller(clk, map[string][]reply{"b": {{block: true}}, "a/compensate": {{status: 200, after: time.Second}}})
		r := New("shop", mustFlow(t, src), caller, clk)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan *Result)
		go func() { done <- r.Execute(ctx, testInput()) }()
		synctest.Wait() // b is in flight
		cancel()
		res = drive(t, clk, func() *Result { return <-done })
	})
	if res.Status != 503 || res.Outcome != Compensated || res.FailedStep != "b" || res.TimedOut {
		t.Errorf("status %d, outcome %s, failed step %q, timed out %v; want 503, compensated, b, false", res.Status, res.Outcome, res.FailedStep, res.TimedOut)
	}
	if diff := cmp.Diff([]string{"a", "b", "a/compensate"}, caller.keys()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	var p problemDetails
	if err := json.Unmarshal(res.Body, &p); err != nil || p.Type != ProblemCancelled {
		t.Errorf("problem %s: %v", res.Body, err)
	}
}

func TestExecuteRetries(t *testing.T) {
	const retrying = `{"name": "f", "steps": [
	  {"id": "a", "call": "%s svc /a", %s
	   "retry": {"attempts": 3, "backoff": "100ms", "retry_on": ["connect", "timeout", "503"]}, "timeout": "1s"}]}`
	flowOf := func(method, headers string) string {
		return strings.Replace(strings.Replace(retrying, "%s", method, 1), "%s", headers, 1)
	}
	reset := errors.New("connection reset by peer")
	tests := []struct {
		name   string
		src    string
		script []reply
		state  string
		tries  int
		at     []time.Duration // when each try started
	}{
		{
			name: "transient 503", src: flowOf("POST", ""), script: []reply{withStatus(503, ""), ok(`{}`)},
			state: "succeeded", tries: 2, at: []time.Duration{0, 100 * time.Millisecond},
		},
		{
			name: "503 every time", src: flowOf("POST", ""), script: []reply{withStatus(503, "")},
			state: "failed", tries: 3, at: []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond},
		},
		{
			name: "status not in retry_on", src: flowOf("POST", ""), script: []reply{withStatus(500, "")},
			state: "failed", tries: 1, at: []time.Duration{0},
		},
		{
			name: "no connection, never reached: retried", src: flowOf("POST", `"headers": {"Idempotency-Key": ""},`),
			script: []reply{{err: ErrConnect}, ok(`{}`)},
			state:  "succeeded", tries: 2, at: []time.Duration{0, 100 * time.Millisecond},
		},
		{
			name: "may have reached, default Idempotency-Key: retried", src: flowOf("POST", ""),
			script: []reply{{err: reset}, ok(`{}`)},
			state:  "succeeded", tries: 2, at: []time.Duration{0, 100 * time.Millisecond},
		},
		{
			name: "may have reached, Idempotency-Key removed: not retried", src: flowOf("POST", `"headers": {"Idempotency-Key": ""},`),
			script: []reply{{err: reset}, ok(`{}`)},
			state:  "failed", tries: 1, at: []time.Duration{0},
		},
		{
			name: "may have reached, idempotent method: retried", src: flowOf("PUT", `"headers": {"idempotency-key": ""},`),
			script: []reply{{err: reset}, ok(`{}`)},
			state:  "succeeded", tries: 2, at: []time.Duration{0, 100 * time.Millisecond},
		},
		{
			name: "timeout, Idempotency-Key removed: not retried", src: flowOf("POST", `"headers": {"Idempotency-Key": ""},`),
			script: []reply{{block: true}},
			state:  "failed", tries: 1, at: []time.Duration{0},
		},
		{
			name: "timeout: retried", src: flowOf("POST", ""),
			script: []reply{{block: true}, ok(`{}`)},
			state:  "succeeded", tries: 2, at: []time.Duration{0, 1100 * time.Millisecond},
		},
		{
			name: "body too large: never retried", src: flowOf("GET", ""),
			script: []reply{{err: ErrBodyTooLarge}, ok(`{}`)},
			state:  "failed", tries: 1, at: []time.Duration{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, caller := run(t, tt.src, map[string][]reply{"a": tt.script})
			got := res.Steps[0]
			if got.State != tt.state || got.Tries != tt.tries {
				t.Errorf("state %s, tries %d (%s); want %s, %d", got.State, got.Tries, got.Error, tt.state, tt.tries)
			}
			var at []time.Duration
			for _, c := range caller.callsOf("a") {
				at = append(at, c.at)
			}
			if diff := cmp.Diff(tt.at, at); diff != "" {
				t.Errorf("tries at (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExecuteBackoff checks the waits between tries on the fake clock:
// doubling, capped, and drawn in [d/2, d] with jitter.
func TestExecuteBackoff(t *testing.T) {
	const src = `{"name": "f", "steps": [{"id": "a", "call": "GET svc /a",
	  "retry": {"attempts": 6, "backoff": "100ms", "max_backoff": "500ms", "jitter": %v, "retry_on": ["503"]}}]}`
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		jitter bool
		draw   func(int64) int64
		waits  []time.Duration
	}{
		{name: "no jitter", waits: ms(100, 200, 400, 500, 500)},
		{name: "jitter, shortest", jitter: true, draw: fixedJitter(0), waits: ms(50, 100, 200, 250, 250)},
		{name: "jitter, longest", jitter: true, draw: fixedJitter(1), waits: ms(100, 200, 400, 500, 500)},
		{name: "jitter, middle", jitter: true, draw: fixedJitter(0.5), waits: ms(75, 150, 300, 375, 375)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.draw != nil {
				opts = append(opts, WithJitter(tt.draw))
			}
			src := strings.Replace(src, "%v", map[bool]string{true: "true", false: "false"}[tt.jitter], 1)
			res, caller := run(t, src, map[string][]reply{"a": {withStatus(503, "")}}, opts...)
			calls := caller.callsOf("a")
			var waits []time.Duration
			for i := 1; i < len(calls); i++ {
				waits = append(waits, calls[i].at-calls[i-1].at)
			}
			if diff := cmp.Diff(tt.waits, waits); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if res.Steps[0].Tries != 6 {
				t.Errorf("tries %d, want 6", res.Steps[0].Tries)
			}
		})
	}
}

func TestExecuteOnStatusFail(t *testing.T) {
	tests := []struct {
		name   string
		script map[string][]reply
		status int
		header http.Header
		body   string
		calls  []string
	}{
		{
			name:   "validate 422: the step's body, as declared",
			script: map[string][]reply{"validate": {withStatus(422, `{"errors": ["no items"], "code": 7}`)}},
			status: 422,
			header: http.Header{"Content-Type": {"application/json"}, "X-Reason": {"invalid o-7"}, "X-Orchestro-Flow-Id": {"f1"}},
			body:   `{"errors":["no items"],"code":7}`,
			calls:  []string{"validate"},
		},
		{
			// The charge is declined after the reservation: the
			// reservation is compensated, then the declared answer sent.
			name:   "charge 402 after a reservation",
			script: map[string][]reply{"charge": {withStatus(402, `{"reason": "card"}`)}},
			status: 402,
			header: http.Header{"Content-Type": {"application/json"}, "X-Orchestro-Flow-Id": {"f1"}, "X-Orchestro-Compensated": {"true"}},
			body:   `{"error":"payment_declined"}`,
			calls:  []string{"validate", "reserve", "quote", "charge", "reserve/compensate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := placeOrderOK()
			for k, v := range tt.script {
				script[k] = v
			}
			res, caller := run(t, placeOrder, script)
			if res.Status != tt.status {
				t.Fatalf("status %d, want %d; body %s", res.Status, tt.status, res.Body)
			}
			if diff := cmp.Diff(tt.header, res.Header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			assertJSON(t, tt.body, res.Body)
			keys := caller.keys()
			// reserve and quote run in parallel: either may be called first.
			if diff := cmp.Diff(tt.calls, keys, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExecuteStepErrors(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		script map[string][]reply
		state  string
		tries  int
		error  string
		detail string
	}{
		{
			name:   "answer over max_body",
			src:    `{"name": "f", "max_body": 1024, "steps": [{"id": "a", "call": "GET svc /a", "retry": {"attempts": 3, "retry_on": ["connect"]}}]}`,
			script: map[string][]reply{"a": {{err: ErrBodyTooLarge}}},
			state:  "failed", tries: 1,
			error:  "answer body over the flow's max_body (1024 bytes)",
			detail: `step "a" failed after 1 try: answer body over the flow's max_body (1024 bytes)`,
		},
		{
			name:  "expression error in a body",
			src:   `{"name": "f", "steps": [{"id": "a", "call": "POST svc /a", "body": {"n": "${{ nope.total * 2 }}"}}]}`,
			state: "failed", tries: 0,
			error:  "body: expression ${{ nope.total * 2 }}: cannot fetch total from <nil>",
			detail: `step "a" failed: body: expression ${{ nope.total * 2 }}: cannot fetch total from <nil>`,
		},
		{
			name:  "expression error in a path",
			src:   `{"name": "f", "steps": [{"id": "a", "call": "GET svc /a/${{ input.body.missing }}"}]}`,
			state: "failed", tries: 0,
			error:  "path: expression ${{ input.body.missing }}: is empty in the call's path",
			detail: `step "a" failed: path: expression ${{ input.body.missing }}: is empty in the call's path`,
		},
		{
			name:  "expression error in a header",
			src:   `{"name": "f", "steps": [{"id": "a", "call": "GET svc /a", "headers": {"x-total": "${{ input.body.total / nope }}"}}]}`,
			state: "failed", tries: 0,
			error: "header X-Total: expression ${{ input.body.total / nope }}: invalid operation: int / <nil>",
		},
		{
			name:  "when that is not a boolean",
			src:   `{"name": "f", "steps": [{"id": "a", "call": "GET svc /a", "when": "${{ input.body.total }}"}]}`,
			state: "failed", tries: 0,
			error: "when: is 120, want true or false",
		},
		{
			name:   "unexpected status",
			src:    `{"name": "f", "steps": [{"id": "a", "call": "GET svc /a", "expect": [200, 201]}]}`,
			script: map[string][]reply{"a": {withStatus(204, "")}},
			state:  "failed", tries: 1,
			error: "answered 204, expected one of [200 201]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := run(t, tt.src, tt.script)
			got := res.Steps[0]
			if got.State != tt.state || got.Tries != tt.tries || got.Error != tt.error {
				t.Errorf("step: %s, %d tries, %q\n want %s, %d tries, %q", got.State, got.Tries, got.Error, tt.state, tt.tries, tt.error)
			}
			if res.Status != 502 || res.Outcome != Failed {
				t.Errorf("status %d, outcome %s; want 502, failed", res.Status, res.Outcome)
			}
			var p problemDetails
			if err := json.Unmarshal(res.Body, &p); err != nil {
				t.Fatal(err)
			}
			if tt.detail != "" && p.Detail != tt.detail {
				t.Errorf("detail %q\n want %q", p.Detail, tt.detail)
			}
		})
	}
}

// TestExecuteAnswerError checks that a response that cannot be rendered
// fails the execution, compensating its steps.
func TestExecuteAnswerError(t *testing.T) {
	const src = `{"name": "f", "steps": [{"id": "a", "call": "POST svc /a", "compensate": {"call": "DELETE svc /a"}}],
	  "response": {"body": {"x": "${{ a.body.total + nope.x }}"}}}`
	res, _ := run(t, src, nil)
	if res.Status != 502 || res.Outcome != Compensated || res.FailedStep != "" {
		t.Errorf("status %d, outcome %s, failed step %q; want 502, compensated, none", res.Status, res.Outcome, res.FailedStep)
	}
	var p problemDetails
	if err := json.Unmarshal(res.Body, &p); err != nil || p.Type != ProblemAnswer || !strings.Contains(p.Detail, "nope.x") {
		t.Errorf("problem %s: %v", res.Body, err)
	}
}

// TestExecuteConcurrent runs executions of one Runner at once, with the
// real clock, for the race detector.
func TestExecuteConcurrent(t *testing.T) {
	r := New("shop", mustFlow(t, placeOrder), instantCaller{}, RealClock{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			in := testInput()
			in.ID = "f" + string(rune('a'+i))
			if res := r.Execute(t.Context(), in); res.Status != 201 {
				t.Errorf("status %d: %s", res.Status, res.Body)
			}
		})
	}
	wg.Wait()
}

// instantCaller answers every call at once with a JSON object of the
// shape placeOrder reads.
type instantCaller struct{}

var instantHeader = http.Header{"Content-Type": {"application/json"}}

func (instantCaller) Call(_ context.Context, req *Request) (*Response, error) {
	status := 200
	if req.Step == "charge" {
		status = 201
	}
	return &Response{Status: status, Header: instantHeader, Body: []byte(`{"id":"x-1","total":120,"percent":10,"amount":108}`)}, nil
}

func stepStates(res *Result) string {
	parts := make([]string, len(res.Steps))
	for i, s := range res.Steps {
		parts[i] = s.ID + ":" + s.State
	}
	return strings.Join(parts, " ")
}

func stepResult(res *Result, id string) StepResult {
	for _, s := range res.Steps {
		if s.ID == id {
			return s
		}
	}
	return StepResult{}
}

func assertJSON(t *testing.T, want string, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

func TestEvalWhen(t *testing.T) {
	env := map[string]any{"a": map[string]any{"status": 201}}
	tests := []struct {
		src     any
		want    bool
		wantErr string
	}{
		{src: "${{ a.status == 201 }}", want: true},
		{src: "${{ a.status == 200 }}", want: false},
		{src: true, want: true},
		{src: false, want: false},
		{src: "${{ a.missing }}", want: false},
		{src: "${{ a.status }}", wantErr: "is 201, want true or false"},
		{src: "yes", wantErr: "is yes, want true or false"},
		{src: "${{ b.status == 1 }}", wantErr: "expression ${{ b.status == 1 }}: cannot fetch status from <nil>"},
	}
	for _, tt := range tests {
		got, err := evalWhen(mustTemplate(t, tt.src), env)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("when %v: error %v, want %q", tt.src, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("when %v = %v, %v; want %v", tt.src, got, err, tt.want)
		}
	}
}

// TestExecuteParallelStartsTogether checks that the members of a group
// start together and that the group waits for all of them.
func TestExecuteParallelStartsTogether(t *testing.T) {
	const src = `{"name": "f", "steps": [
	  {"parallel": [{"id": "a", "call": "GET svc /a"}, {"id": "b", "call": "GET svc /b"}, {"id": "c", "call": "GET svc /c"}]},
	  {"id": "d", "call": "GET svc /d"}]}`
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		release := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{}), "c": make(chan struct{})}
		script := map[string][]reply{}
		for id, ch := range release {
			script[id] = []reply{{status: 200, release: ch}}
		}
		caller := newFakeCaller(clk, script)
		r := New("shop", mustFlow(t, src), caller, clk)
		done := make(chan *Result, 1)
		go func() { done <- r.Execute(t.Context(), testInput()) }()

		synctest.Wait()
		if diff := cmp.Diff([]string{"a", "b", "c"}, caller.keys()); diff != "" {
			t.Fatalf("calls in flight (-want +got):\n%s", diff)
		}
		close(release["b"])
		close(release["c"])
		synctest.Wait()
		if got := len(caller.keys()); got != 3 {
			t.Fatalf("%d calls before a ended, want 3: d started before its group ended", got)
		}
		close(release["a"])
		res := <-done
		if res.Outcome != Succeeded || len(caller.keys()) != 4 {
			t.Errorf("outcome %s, calls %v; want succeeded after 4 calls", res.Outcome, caller.keys())
		}
	})
}

// TestExecuteOptionalFallback checks that an optional step that fails
// does not fail the execution, and that later steps see its fallback.
func TestExecuteOptionalFallback(t *testing.T) {
	script := placeOrderOK()
	script["quote"] = []reply{{err: ErrConnect}}
	script["charge"] = []reply{withStatus(201, `{"id": "c-1", "amount": 120}`)}
	res, caller := run(t, placeOrder, script)
	if res.Outcome != Succeeded || res.Status != 201 {
		t.Fatalf("outcome %s, status %d, want succeeded 201; body %s", res.Outcome, res.Status, res.Body)
	}
	// No discount: the fallback's percent is 0.
	assertJSON(t, `{"order":"o-7","amount":120}`, caller.callsOf("charge")[0].req.Body)
	if got := stepResult(res, "quote"); got.State != "failed" || !strings.Contains(got.Error, "no connection") {
		t.Errorf("quote: %+v, want failed with the caller's error", got)
	}
	if res.Header.Get(HeaderCompensated) != "" || res.Compensations != nil {
		t.Errorf("compensations %v after an optional step failed", res.Compensations)
	}
}

// TestAsyncWaitsForAReplica: an asynchronous execution whose call finds
// no replica waits for one, doubling its waits, without spending the
// step's tries; a synchronous one spends them.
func TestAsyncWaitsForAReplica(t *testing.T) {
	const src = `{"name": "f", "steps": [{"id": "a", "call": "POST svc /a",
	  "retry": {"attempts": 2, "backoff": "1s", "retry_on": ["connect"]}}]}`
	down := []reply{{err: ErrConnect}, {err: ErrConnect}, {err: ErrConnect}, {err: ErrConnect}, ok(`{}`)}
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		caller := newFakeCaller(clk, map[string][]reply{"a": down})
		var waiting, most int
		var mu sync.Mutex
		r := New("shop", mustFlow(t, src), caller, clk, WithWaiting(func(d int) {
			mu.Lock()
			defer mu.Unlock()
			waiting += d
			most = max(most, waiting)
		}))
		runAsync, err := r.Start(testInput())
		if err != nil {
			t.Fatal(err)
		}
		res := drive(t, clk, func() *Result { return runAsync(t.Context()) })
		if res.Outcome != Succeeded || res.Steps[0].Tries != 1 {
			t.Errorf("outcome %s, tries %d; want succeeded after 1 try", res.Outcome, res.Steps[0].Tries)
		}
		var at []time.Duration
		for _, c := range caller.callsOf("a") {
			at = append(at, c.at)
		}
		ms := time.Millisecond
		if diff := cmp.Diff([]time.Duration{0, 100 * ms, 300 * ms, 700 * ms, 1500 * ms}, at); diff != "" {
			t.Errorf("calls at (-want +got):\n%s", diff)
		}
		if waiting != 0 || most != 1 {
			t.Errorf("waiting hook ended at %d, peaked at %d; want 0 and 1", waiting, most)
		}
	})
	res, caller := run(t, src, map[string][]reply{"a": down})
	if res.Outcome != Failed || len(caller.callsOf("a")) != 2 {
		t.Errorf("synchronous: outcome %s after %d calls; want failed after 2", res.Outcome, len(caller.callsOf("a")))
	}
}
