package tui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/orchestro/orchestro/runtime/api"
)

// testNow is the clock of every test.
var testNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fakeSource records every call as a line of text and answers from canned
// data. Its streams send what they hold, then wait for their context.
type fakeSource struct {
	mu    sync.Mutex
	calls []string

	status     *api.ProjectStatus
	statusErr  error
	events     []api.Event
	logs       []api.LogLine
	scaleErr   error
	restartErr error
	// executions answer Executions, by cell; timelines answer Execution,
	// by id.
	executions    map[string][]api.ExecutionSummary
	executionsErr error
	timelines     map[string]*api.Execution
}

func (s *fakeSource) record(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
}

// Calls returns the calls so far, streams and polls left out unless
// withStreams.
func (s *fakeSource) Calls(withStreams bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.calls {
		if withStreams || !(strings.HasPrefix(c, "Events") || strings.HasPrefix(c, "Logs") || c == "Status" || strings.HasPrefix(c, "Executions ")) {
			out = append(out, c)
		}
	}
	return out
}

func (s *fakeSource) Status(ctx context.Context) (*api.ProjectStatus, error) {
	s.record("Status")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, s.statusErr
}

func (s *fakeSource) Events(ctx context.Context, follow bool, sink func(api.Event)) error {
	s.record("Events follow=%t", follow)
	for _, e := range s.events {
		sink(e)
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *fakeSource) Logs(ctx context.Context, opts api.LogOptions, sink func(api.LogLine)) error {
	s.record("Logs %s/%s follow=%t tail=%d", opts.Cell, opts.Service, opts.Follow, opts.Tail)
	for _, l := range s.logs {
		if l.Cell == opts.Cell && (opts.Service == "" || l.Service == opts.Service) {
			sink(l)
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *fakeSource) Scale(ctx context.Context, cell, service string, replicas int) error {
	s.record("Scale %s/%s %d", cell, service, replicas)
	return s.scaleErr
}

func (s *fakeSource) Restart(ctx context.Context, cell, service string) error {
	s.record("Restart %s/%s", cell, service)
	return s.restartErr
}

func (s *fakeSource) Executions(ctx context.Context, cell string, f api.ExecutionFilter) ([]api.ExecutionSummary, error) {
	s.record("Executions %s failed=%t limit=%d", cell, f.Failed, f.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.executions[cell], s.executionsErr
}

func (s *fakeSource) Execution(ctx context.Context, cell, id string) (*api.Execution, error) {
	s.record("Execution %s %s", cell, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.timelines[id], nil
}

// testStatus is a project of two cells: shop with an autoscaled service,
// a stopped one and a healthy one, and users with one service.
func testStatus() *api.ProjectStatus {
	started := testNow.Add(-12*time.Minute - 5*time.Second)
	return &api.ProjectStatus{
		Project: "demo",
		Cells: []api.CellStatus{
			{
				Cell: "users", Gateway: "running", URL: "http://127.0.0.1:8082",
				Services: []api.ServiceStatus{{
					Service: "accounts", Image: "demo-users-accounts", Desired: 2, Ready: 2, Health: "healthy",
					InFlight: 1, RPS: 12.25, Requests: 9000,
					Replicas: []api.ReplicaStatus{
						{Name: "demo-users-accounts-2", Replica: 2, State: "running", Health: "healthy", Address: "172.21.0.4:8080", InFlight: 1, RPS: 6.1, Started: started},
						{Name: "demo-users-accounts-1", Replica: 1, State: "running", Health: "healthy", Address: "172.21.0.3:8080", RPS: 6.15, Started: started},
					},
				}},
			},
			{
				Cell: "shop", Gateway: "running", URL: "http://127.0.0.1:8081",
				Services: []api.ServiceStatus{
					{
						Service: "orders", Image: "demo-shop-orders", Desired: 3, Ready: 3, Health: "healthy",
						Autoscale: &api.AutoscaleStatus{Min: 1, Max: 6, Targets: []api.Target{
							{Metric: "inflight", Value: 4.5, Target: 10},
							{Metric: "cpu", Value: 12, Target: 70},
						}},
						InFlight: 14, RPS: 48.5, Requests: 52000, P50Ms: 4.2, P99Ms: 38, ErrorRate: 0.002, CPU: 37.5, Memory: 41 << 20,
						Replicas: []api.ReplicaStatus{
							{Name: "demo-shop-orders-1", Replica: 1, State: "running", Health: "healthy", Address: "172.20.0.3:8080", InFlight: 5, RPS: 16.2, Restarts: 1, Started: started},
							{Name: "demo-shop-orders-2", Replica: 2, State: "running", Health: "healthy", Address: "172.20.0.4:8080", InFlight: 4, RPS: 16.1, Started: started},
							{Name: "demo-shop-orders-3", Replica: 3, State: "running", Health: "healthy", Address: "172.20.0.5:8080", InFlight: 5, RPS: 16.2, Started: testNow.Add(-40 * time.Second)},
						},
					},
					{Service: "worker", Image: "demo-shop-worker", Desired: 0, Ready: 0, Health: "stopped", Replicas: []api.ReplicaStatus{}},
					{
						Service: "search", Image: "demo-shop-search", Desired: 1, Ready: 1, Health: "healthy", RPS: 3,
						Replicas: []api.ReplicaStatus{
							{Name: "demo-shop-search-1", Replica: 1, State: "running", Health: "healthy", Address: "172.20.0.6:8080", RPS: 3, Started: started},
						},
					},
				},
			},
		},
	}
}

// unhealthyStatus is testStatus with search failing its health checks
// and the users gateway gone.
func unhealthyStatus() *api.ProjectStatus {
	st := testStatus()
	st.Cells[0] = api.CellStatus{Cell: "users", Gateway: "down", URL: "http://127.0.0.1:8082",
		Error: "dial tcp 127.0.0.1:9082: connect: connection refused",
		Services: []api.ServiceStatus{{Service: "accounts", Image: "demo-users-accounts", Health: "unknown",
			Replicas: []api.ReplicaStatus{{Name: "demo-users-accounts-1", State: "running", Health: "unknown"}}}}}
	search := &st.Cells[1].Services[2]
	search.Desired, search.Ready, search.Health, search.RPS = 2, 0, "unhealthy", 0
	search.Replicas = []api.ReplicaStatus{
		{Name: "demo-shop-search-1", Replica: 1, State: "running", Health: "unhealthy", Address: "172.20.0.6:8080", Restarts: 3, Started: testNow.Add(-30 * time.Second)},
		{Name: "demo-shop-search-2", Replica: 2, State: "restarting", Health: "crashloop", Address: "172.20.0.7:8080", Restarts: 5, Started: testNow.Add(-5 * time.Second)},
	}
	return st
}

// flowStatus is testStatus with flows in shop, in file order: one busy
// and failing now and then, one idle, and one whose executions fail.
func flowStatus() *api.ProjectStatus {
	st := testStatus()
	st.Cells[1].Flows = []api.FlowStatus{
		{Flow: "place-order", Route: "POST /checkout/{order}", InFlight: 3, Executions: 1520, Failed: 12, Compensated: 7,
			Rate: 12.5, SuccessRate: 0.9996, P50Ms: 42, P99Ms: 180.46},
		{Flow: "cancel-order", Route: "DELETE /orders/{order}", Executions: 4, Failed: 1, Compensated: 1},
		{Flow: "refund", Route: "POST /orders/{order}/refund", InFlight: 1, Executions: 40, Failed: 9,
			Rate: 0.8, SuccessRate: 0.75, P50Ms: 850, P99Ms: 2400},
	}
	return st
}

// failedExecutions are the latest failed executions of shop, newest
// first.
func failedExecutions() []api.ExecutionSummary {
	return []api.ExecutionSummary{
		{ID: "3f2a9c1b2d4e5f60718293a4b5c6d7e8", Cell: "shop", Flow: "place-order", State: api.ExecutionCompensated,
			Started: testNow.Add(-3 * time.Minute), DurationMs: 15.9, FailedStep: "charge"},
		{ID: "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", Cell: "shop", Flow: "refund", State: api.ExecutionPartiallyCompensated,
			Started: testNow.Add(-14 * time.Minute), DurationMs: 2400, FailedStep: "refund"},
		{ID: "a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2", Cell: "shop", Flow: "place-order", State: api.ExecutionFailed,
			Started: testNow.Add(-2*time.Hour - 5*time.Minute), DurationMs: 30000, FailedStep: "reserve", Recovered: true},
	}
}

// failedTimeline is the whole of the first of failedExecutions.
func failedTimeline() *api.Execution {
	started := testNow.Add(-3 * time.Minute)
	return &api.Execution{
		ID: "3f2a9c1b2d4e5f60718293a4b5c6d7e8", Cell: "shop", Flow: "place-order", State: api.ExecutionCompensated,
		Started: started, DurationMs: 15.9, FailedStep: "charge",
		Steps: []api.ExecutionStep{
			{ID: "reserve", State: "succeeded", Status: 201, Tries: 1, DurationMs: 5.5, Reached: true, Compensated: "done"},
			{ID: "customer", State: "succeeded", Status: 200, Tries: 1, DurationMs: 3.2, Reached: true},
			{ID: "charge", State: "failed", Status: 402, Tries: 2, DurationMs: 5.6, Reached: true, Error: "answered 402,\nwhich on_status fails"},
			{ID: "notify", State: "not_started"},
		},
		Compensations: []api.ExecutionCompensation{
			{Step: "reserve", Outcome: "done", Status: 204, Tries: 1},
			{Step: "customer", Outcome: "not_compensated", Error: "no compensate"},
		},
		Response: &api.ExecutionResponse{Status: 402},
	}
}

// showFailed gives the model the failed executions of shop, as a poll
// answers them.
func showFailed(m *Model) {
	send(m, executionsMsg{cell: "shop", at: m.clock, list: failedExecutions()})
}

func testEvents() []api.Event {
	at := func(s int) time.Time { return testNow.Add(time.Duration(s-60) * time.Second) }
	return []api.Event{
		{Time: at(1), Cell: "shop", Service: "orders", Replica: "1", Type: api.EventStarted, Message: "container demo-shop-orders-1"},
		{Time: at(5), Cell: "shop", Service: "orders", Replica: "1", Type: api.EventHealthy},
		{Time: at(9), Cell: "users", Service: "accounts", Replica: "2", Type: api.EventHealthy},
		{Time: at(20), Cell: "shop", Service: "orders", Type: api.EventScaled, From: 1, To: 3, Message: "inflight 23.5/replica > target 10"},
		{Time: at(22), Cell: "shop", Service: "orders", Replica: "3", Type: api.EventStarted, Message: "container demo-shop-orders-3"},
		{Time: at(30), Cell: "shop", Service: "search", Replica: "1", Type: api.EventUnhealthy, Message: "GET /healthz: 503 Service Unavailable"},
		{Time: at(41), Cell: "shop", Service: "search", Replica: "1", Type: api.EventHealthy},
	}
}

func testLogs() []api.LogLine {
	var out []api.LogLine
	paths := []string{"/orders", "/orders/42", "/orders?limit=10", "/healthz"}
	for i := range 30 {
		r := i%3 + 1
		text := fmt.Sprintf(`{"level":"info","msg":"request","method":"GET","path":%q,"status":200,"duration_ms":%d,"request_id":"req-%04d"}`, paths[i%len(paths)], 3+i%7, i)
		stderr := false
		if i%10 == 7 {
			text = fmt.Sprintf(`{"level":"error","msg":"upstream users/accounts: timeout after 2s","request_id":"req-%04d"}`, i)
			stderr = true
		}
		out = append(out, api.LogLine{Cell: "shop", Service: "orders", Replica: r, Time: testNow.Add(time.Duration(i-30) * time.Second), Stderr: stderr, Text: text})
	}
	return out
}

// newTestModel returns a dashboard of w × h fed by src, whose goroutines
// end with the test.
func newTestModel(t testing.TB, src Source, w, h int) *Model {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	m := newModel(ctx, &wg, src, Options{Project: "demo", Now: func() time.Time { return testNow }, Location: time.UTC})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// send feeds messages to the model in turn and returns the last command.
func send(m *Model, msgs ...tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	for _, msg := range msgs {
		_, cmd = m.Update(msg)
	}
	return cmd
}

// feedAll gives the model a snapshot, the test events and the logs of the
// service it follows.
func feedAll(m *Model, st *api.ProjectStatus) {
	// A minute of traffic for the sparklines.
	for _, rps := range []float64{2, 3, 5, 8, 12, 18, 25, 31, 36, 40, 44, 47, 49, 50, 48, 45, 41, 38, 36, 35, 37, 40, 44, 46, 47, 48, 48, 49} {
		snap := testStatus()
		snap.Cells[1].Services[0].RPS = rps
		snap.Cells[0].Services[0].RPS = rps / 4
		send(m, statusMsg{st: snap})
	}
	send(m, statusMsg{st: st})
	send(m, feedMsg[api.Event]{Gen: m.events.gen, Items: testEvents()})
	send(m, feedMsg[api.LogLine]{Gen: m.logs.gen, Items: testLogs()})
}

// press returns the key press of s: a key name such as "enter" or
// "shift+tab", or a printable character.
func press(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// typeKeys presses each key of a space-separated list.
func typeKeys(m *Model, keys string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range strings.Fields(keys) {
		cmd = send(m, press(k))
	}
	return cmd
}
