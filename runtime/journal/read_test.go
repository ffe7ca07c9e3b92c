package journal

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/flow"
)

func TestStateOf(t *testing.T) {
	tests := []struct {
		ended        bool
		outcome      flow.Outcome
		compensating bool
		want         State
	}{
		{false, "", false, Running},
		{false, "", true, Compensating},
		{true, flow.Succeeded, false, Succeeded},
		{true, flow.Failed, false, Failed},
		{true, flow.Compensated, true, Compensated},
		{true, flow.Partial, true, PartiallyCompensated},
	}
	for _, tt := range tests {
		t.Run(string(tt.want), func(t *testing.T) {
			if got := stateOf(tt.ended, tt.outcome, tt.compensating); got != tt.want {
				t.Errorf("stateOf(%v, %q, %v) = %q, want %q", tt.ended, tt.outcome, tt.compensating, got, tt.want)
			}
		})
	}
}

// TestGetState journals executions that stop at each state, and checks
// the state Get and List compute.
func TestGetState(t *testing.T) {
	s := open(t, tempPath(t), Options{})
	comp := &flow.CompensationResult{Step: "a", Outcome: flow.CompensationDone}
	tests := []struct {
		id      string
		records func(id string)
		want    State
	}{
		{"running", func(id string) { s.Intent(id, "a") }, Running},
		{"running-step", func(id string) { s.Step(id, &flow.StepRecord{Step: "a", State: flow.StepSucceeded}) }, Running},
		{"compensating", func(id string) { s.Compensation(id, comp) }, Compensating},
		{"succeeded", func(id string) { s.End(id, endRec(flow.Succeeded, t0)) }, Succeeded},
		{"failed", func(id string) { s.End(id, endRec(flow.Failed, t0)) }, Failed},
		{"compensated", func(id string) { s.Compensation(id, comp); s.End(id, endRec(flow.Compensated, t0)) }, Compensated},
		{"partial", func(id string) { s.Compensation(id, comp); s.End(id, endRec(flow.Partial, t0)) }, PartiallyCompensated},
	}
	for _, tt := range tests {
		s.Begin(beginRec(tt.id, "f", t0))
		tt.records(tt.id)
	}
	wait(t, s.Begin(beginRec("sync", "f", t0)))
	list, err := s.List(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	listed := make(map[string]State)
	for _, sum := range list {
		listed[sum.ID] = sum.State
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			x, err := s.Get(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if x.State != tt.want {
				t.Errorf("Get: state %q, want %q", x.State, tt.want)
			}
			if listed[tt.id] != tt.want {
				t.Errorf("List: state %q, want %q", listed[tt.id], tt.want)
			}
		})
	}
}

func TestList(t *testing.T) {
	s := open(t, tempPath(t), Options{})
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	// Journaled out of start order, as concurrent executions are.
	run(t, s, "o3", "orders", at(3), flow.Failed)
	run(t, s, "o1", "orders", at(1), flow.Succeeded)
	run(t, s, "p2", "payments", at(2), flow.Compensated)
	run(t, s, "o5", "orders", at(5), flow.Partial)
	wait(t, s.Begin(beginRec("o4", "orders", at(4))))
	run(t, s, "p6", "payments", at(6), flow.Succeeded)
	run(t, s, "o0", "orders-x", at(0), flow.Failed) // a flow whose name extends another's

	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all", Filter{}, []string{"p6", "o5", "o4", "o3", "p2", "o1", "o0"}},
		{"flow", Filter{Flow: "orders"}, []string{"o5", "o4", "o3", "o1"}},
		{"other flow", Filter{Flow: "orders-x"}, []string{"o0"}},
		{"unknown flow", Filter{Flow: "nope"}, []string{}},
		{"failed", Filter{Failed: true}, []string{"o5", "o3", "p2", "o0"}},
		{"failed of a flow", Filter{Flow: "payments", Failed: true}, []string{"p2"}},
		{"since", Filter{Since: at(3)}, []string{"p6", "o5", "o4", "o3"}},
		{"since of a flow", Filter{Flow: "orders", Since: at(3)}, []string{"o5", "o4", "o3"}},
		{"limit", Filter{Limit: 2}, []string{"p6", "o5"}},
		{"failed with limit", Filter{Failed: true, Limit: 3}, []string{"o5", "o3", "p2"}},
		{"flow with limit", Filter{Flow: "orders", Limit: 1}, []string{"o5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := s.List(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, sum := range list {
				got = append(got, sum.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}

	list, err := s.List(Filter{Flow: "orders", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []*Summary{
		{ID: "o5", Flow: "orders", State: PartiallyCompensated, Outcome: flow.Partial, Started: at(5), Duration: Duration(time.Second)},
		{ID: "o4", Flow: "orders", State: Running, Started: at(4)},
	}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("summaries (-want +got):\n%s", diff)
	}
}

// TestExecutionJSON checks the shape the executions API serves.
func TestExecutionJSON(t *testing.T) {
	s := open(t, tempPath(t), Options{})
	b := beginRec("x", "place-order", t0)
	b.Async = true
	s.Begin(b)
	s.Intent("x", "reserve")
	s.Step("x", &flow.StepRecord{
		Step: "reserve", State: flow.StepSucceeded, Status: 201, Tries: 1, Body: []byte(`{"id":"r1"}`),
		Started: t0, Duration: 1500 * time.Microsecond, Reached: true,
	})
	s.Intent("x", "charge")
	s.Compensation("x", &flow.CompensationResult{Step: "reserve", Outcome: flow.CompensationDone, Status: 204, Tries: 1})
	wait(t, s.End("x", &flow.EndRecord{
		Outcome: flow.Compensated, Status: 502, FailedStep: "charge",
		Header:   http.Header{"Content-Type": {"application/problem+json"}},
		Body:     []byte(`{"type":"urn:x","status":502}`),
		Finished: t0.Add(2 * time.Second), Duration: 2 * time.Second,
	}))
	x, err := s.Get("x")
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "id": "x",
  "flow": "place-order",
  "state": "compensated",
  "async": true,
  "started": "2026-03-01T12:00:00Z",
  "deadline": "2026-03-01T12:00:10Z",
  "finished": "2026-03-01T12:00:02Z",
  "duration_ms": 2000,
  "outcome": "compensated",
  "failed_step": "charge",
  "steps": [
    {
      "id": "reserve",
      "state": "succeeded",
      "status": 201,
      "tries": 1,
      "started": "2026-03-01T12:00:00Z",
      "duration_ms": 1.5,
      "reached": true,
      "compensated": "done"
    },
    {
      "id": "charge",
      "state": "in_flight"
    }
  ],
  "compensations": [
    {
      "step": "reserve",
      "outcome": "done",
      "status": 204,
      "tries": 1
    }
  ],
  "response": {
    "status": 502,
    "headers": {
      "Content-Type": [
        "application/problem+json"
      ]
    },
    "body": {
      "type": "urn:x",
      "status": 502
    }
  }
}`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}

	// The CLI reads it back.
	var back Execution
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if back.Steps[0].Duration != Duration(1500*time.Microsecond) || back.State != Compensated {
		t.Errorf("read back: %+v", back)
	}
}

func TestAPIBody(t *testing.T) {
	tests := []struct {
		name string
		ct   string
		body string
		want string
	}{
		{"json", "application/json; charset=utf-8", `{"a":1}`, `{"a":1}`},
		{"problem json", "application/problem+json", `{"a":1}`, `{"a":1}`},
		{"invalid json", "application/json", `{"a":`, `"{\"a\":"`},
		{"text that looks like json", "text/plain", `123`, `"123"`},
		{"no type", "", `{"a":1}`, `"{\"a\":1}"`},
		{"text", "text/plain", "hello\n", `"hello\n"`},
		{"empty", "application/json", "", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := apiBody(http.Header{"Content-Type": {tt.ct}}, []byte(tt.body))
			if string(got) != tt.want {
				t.Errorf("apiBody = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 1500 * time.Microsecond, 1234567, 36 * time.Hour, 999999999} {
		b, err := json.Marshal(Duration(d))
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if time.Duration(back) != d {
			t.Errorf("%v → %s → %v", d, b, time.Duration(back))
		}
	}
}
