package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

const testToken = "s3cret-token"

// fakeCell records the calls it gets and answers each with err.
type fakeCell struct {
	mu     sync.Mutex
	status api.CellStatus
	err    error
	calls  []string
}

func (f *fakeCell) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fakeCell) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeCell) Status() api.CellStatus { return f.status }

func (f *fakeCell) Scale(ctx context.Context, service string, replicas int) error {
	return f.record(fmt.Sprintf("scale %s %d", service, replicas))
}

func (f *fakeCell) Restart(ctx context.Context, service string) error {
	return f.record(fmt.Sprintf("restart %q", service))
}

func (f *fakeCell) UpdateSpec(ctx context.Context, spec []byte) error {
	return f.record("spec " + string(spec))
}

func (f *fakeCell) Stop(ctx context.Context) error { return f.record("stop") }

func testStatus() api.CellStatus {
	return api.CellStatus{
		Cell:    "shop",
		Gateway: "running",
		URL:     "http://127.0.0.1:8081",
		Services: []api.ServiceStatus{{
			Service: "orders",
			Image:   "demo-shop-orders:latest",
			Desired: 2,
			Ready:   2,
			Health:  "healthy",
			Autoscale: &api.AutoscaleStatus{
				Min: 1, Max: 4,
				Targets: []api.Target{{Metric: "inflight", Value: 3, Target: 10}},
			},
			Replicas: []api.ReplicaStatus{
				{Name: "demo-shop-orders-1", Replica: 1, State: "running", Health: "healthy", Address: "10.0.0.2:8080"},
				{Name: "demo-shop-orders-2", Replica: 2, State: "running", Health: "healthy", Address: "10.0.0.3:8080"},
			},
		}},
	}
}

// testEvent returns a distinct event; n sets its time and replica.
func testEvent(n int) api.Event {
	return api.Event{
		Time:    time.Date(2025, 1, 2, 3, 4, n, 0, time.UTC),
		Cell:    "shop",
		Service: "orders",
		Replica: fmt.Sprintf("demo-shop-orders-%d", n),
		Type:    api.EventStarted,
		Message: fmt.Sprintf("replica %d started", n),
	}
}

// newTestServer returns a Server over cell and bus with testToken and a
// metrics handler that answers "metrics".
func newTestServer(cell Cell, bus *EventBus) *Server {
	s, err := NewServer(ServerConfig{
		Cell:     cell,
		CellName: "shop",
		Events:   bus,
		Token:    testToken,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "metrics\n")
		}),
	})
	if err != nil {
		panic(err)
	}
	return s
}

// pipeTransport serves requests with a handler in memory, over an
// io.Pipe instead of a socket, so that client and server can run inside
// one testing/synctest bubble, where every goroutine is accounted for.
type pipeTransport struct{ h http.Handler }

func (t pipeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	w := &pipeResponse{header: make(http.Header), pw: pw, ready: make(chan struct{})}
	sreq := req.Clone(req.Context())
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	sreq.RequestURI = req.URL.RequestURI()
	go func() {
		t.h.ServeHTTP(w, sreq)
		w.WriteHeader(http.StatusOK) // a no-op unless the handler wrote nothing
		pw.Close()
	}()
	<-w.ready
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", w.code, http.StatusText(w.code)),
		StatusCode:    w.code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          pr,
		ContentLength: -1,
		Request:       req,
	}, nil
}

// pipeResponse is the server side of a pipeTransport exchange.
type pipeResponse struct {
	header http.Header
	pw     *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
	// code and sent are set once, before ready is closed.
	code int
	sent http.Header
}

func (p *pipeResponse) Header() http.Header { return p.header }

func (p *pipeResponse) WriteHeader(code int) {
	p.once.Do(func() {
		p.code = code
		p.sent = p.header.Clone()
		close(p.ready)
	})
}

func (p *pipeResponse) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.pw.Write(b)
}

// Flush is a no-op: a pipe write returns only once it has been read.
func (p *pipeResponse) Flush() {}

// fakeExecutions is a journal of two executions of shop/place-order: a
// compensated one and one still running. It records the calls it gets;
// err, when set, answers every call.
type fakeExecutions struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (f *fakeExecutions) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fakeExecutions) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeExecutions) ListExecutions(ctx context.Context, filter api.ExecutionFilter) ([]api.ExecutionSummary, error) {
	since := "-"
	if !filter.Since.IsZero() {
		since = filter.Since.Format(time.RFC3339Nano)
	}
	if err := f.record(fmt.Sprintf("list flow=%q failed=%t since=%s limit=%d", filter.Flow, filter.Failed, since, filter.Limit)); err != nil {
		return nil, err
	}
	var out []api.ExecutionSummary
	for _, e := range testExecutions() {
		if (filter.Flow == "" || e.Flow == filter.Flow) && (!filter.Failed || e.State != api.ExecutionRunning) {
			out = append(out, summaryOf(e))
		}
	}
	return out, nil
}

func (f *fakeExecutions) GetExecution(ctx context.Context, id string) (*api.Execution, error) {
	if err := f.record("get " + id); err != nil {
		return nil, err
	}
	for _, e := range testExecutions() {
		if e.ID == id {
			return e, nil
		}
	}
	return nil, NotFound(fmt.Errorf("no execution %s", id))
}

func (f *fakeExecutions) RetryExecution(ctx context.Context, id string) (api.RetryResult, error) {
	if err := f.record("retry " + id); err != nil {
		return api.RetryResult{}, err
	}
	for _, e := range testExecutions() {
		switch {
		case e.ID != id:
		case e.State == api.ExecutionRunning:
			return api.RetryResult{}, Conflict(fmt.Errorf("execution %s is running", id))
		default:
			return api.RetryResult{ID: "e3"}, nil
		}
	}
	return api.RetryResult{}, NotFound(fmt.Errorf("no execution %s", id))
}

// testExecutions is the journal of fakeExecutions, newest first.
func testExecutions() []*api.Execution {
	started := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return []*api.Execution{
		{
			ID: "e2", Flow: "place-order", State: api.ExecutionRunning, Started: started.Add(time.Second),
			Steps:         []api.ExecutionStep{{ID: "reserve", State: "in_flight", Started: started.Add(time.Second)}},
			Compensations: []api.ExecutionCompensation{},
		},
		{
			ID: "e1", Flow: "place-order", State: api.ExecutionCompensated, Outcome: "compensated",
			Started: started, Finished: started.Add(16 * time.Millisecond), DurationMs: 15.9, FailedStep: "charge",
			Steps: []api.ExecutionStep{
				{ID: "reserve", State: "succeeded", Status: 201, Tries: 1, DurationMs: 5.5, Reached: true, Compensated: "done"},
				{ID: "charge", State: "failed", Status: 402, Tries: 1, DurationMs: 5.6, Reached: true, Error: "answered 402"},
			},
			Compensations: []api.ExecutionCompensation{{Step: "reserve", Outcome: "done", Status: 204, Tries: 1}},
			Response:      &api.ExecutionResponse{Status: 402, Body: json.RawMessage(`{"error":"payment_declined"}`)},
		},
	}
}

func summaryOf(e *api.Execution) api.ExecutionSummary {
	return api.ExecutionSummary{
		ID: e.ID, Flow: e.Flow, State: e.State, Outcome: e.Outcome, Started: e.Started,
		DurationMs: e.DurationMs, FailedStep: e.FailedStep, Recovered: e.Recovered, Async: e.Async,
	}
}

// newExecutionsServer returns a Server with testToken whose cell has the
// flow executions execs; nil execs is a cell without flows.
func newExecutionsServer(execs Executions) *Server {
	s, err := NewServer(ServerConfig{Cell: &fakeCell{}, Events: NewEventBus(1), Token: testToken, Executions: execs})
	if err != nil {
		panic(err)
	}
	return s
}
