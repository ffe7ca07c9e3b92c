package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/flow"
	"github.com/orchestro/orchestro/runtime/journal"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// flowCellYAML is a cell with a checkout flow over two services and a
// route of its own, so flows and routes share the port.
const flowCellYAML = `cell: shop
gateway:
  port: 8081
  routes:
    - {path: /stock, service: inventory}
services:
  inventory: {image: inventory, port: 8080}
  payments: {image: payments, port: 8080}
flows:
  - name: checkout
    route: POST /checkout/{order}
    max_inflight: 2
    defaults:
      retry: {attempts: 2, backoff: 1ms, max_backoff: 1ms}
    steps:
      - id: reserve
        call: POST inventory /reservations
        body: {order: "${{ path.order }}"}
        compensate:
          call: DELETE inventory /reservations/${{ reserve.body.id }}
      - id: charge
        call: POST payments /charges
        body: {order: "${{ path.order }}", amount: "${{ input.body.amount }}"}
        on_status:
          402: {fail: {status: 402, body: {error: declined}}}
    response:
      status: 201
      body: {reservation: "${{ reserve.body.id }}", charge: "${{ charge.body.id }}", amount: "${{ charge.body.amount }}"}
`

// fakeShop is the two services of flowCellYAML, in memory.
type fakeShop struct {
	mu           sync.Mutex
	reservations map[string]string // id → order
	charges      map[string]float64
	released     []string
	hold         chan struct{} // when set, charges wait on it
}

func (s *fakeShop) inventory(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == "POST" && r.URL.Path == "/reservations":
		var in struct{ Order string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		id := fmt.Sprintf("r-%s", in.Order)
		s.reservations[id] = in.Order
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q}`, id)
	case r.Method == "DELETE" && strings.HasPrefix(r.URL.Path, "/reservations/"):
		id := strings.TrimPrefix(r.URL.Path, "/reservations/")
		delete(s.reservations, id)
		s.released = append(s.released, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}
}

func (s *fakeShop) payments(w http.ResponseWriter, r *http.Request) {
	if s.hold != nil {
		<-s.hold
	}
	var in struct {
		Order  string
		Amount float64
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	if in.Amount > 100 {
		w.WriteHeader(http.StatusPaymentRequired)
		return
	}
	s.mu.Lock()
	s.charges[in.Order] = in.Amount
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"c-%s","amount":%v}`, in.Order, in.Amount)
}

type flowHarness struct {
	dp     *DataPlane
	shop   *fakeShop
	url    string
	log    *syncBuffer
	events chan api.Event
}

// syncBuffer is an access log the test reads while the gateway writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startFlowGateway(t *testing.T, fastPath bool) *flowHarness {
	t.Helper()
	cell, _, err := cellspec.LoadCell("cell.yaml", []byte(flowCellYAML), cellspec.MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	h := &flowHarness{shop: &fakeShop{reservations: map[string]string{}, charges: map[string]float64{}}, log: &syncBuffer{}, events: make(chan api.Event, 16)}
	dp, err := NewDataPlane(cell, h.log, proxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.dp = dp
	dp.flows.emit = func(e api.Event) { h.events <- e }
	for name, fn := range map[string]http.HandlerFunc{"inventory": h.shop.inventory, "payments": h.shop.payments} {
		srv := httptest.NewServer(fn)
		t.Cleanup(srv.Close)
		dp.Proxy.SetUpstreams(name, []*proxy.Upstream{{ID: name + "-1", Service: name, Replica: 1, Name: name + "-1", Addr: srv.Listener.Addr().String()}})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(dp.Proxy, proxy.ServerOptions{DisableFastPath: !fastPath})
	go func() { _ = srv.Serve(ln) }()
	ctx, cancel := t.Context(), func() {}
	go func() { _ = dp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		dp.Proxy.CloseIdleConnections()
	})
	h.url = "http://" + ln.Addr().String()
	return h
}

func (h *flowHarness) post(t *testing.T, path, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(h.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestFlowThroughTheGateway(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_path=%v", fast), func(t *testing.T) {
			h := startFlowGateway(t, fast)

			resp, body := h.post(t, "/checkout/o1", `{"amount": 40}`)
			if resp.StatusCode != 201 || body != `{"amount":40,"charge":"c-o1","reservation":"r-o1"}` {
				t.Fatalf("checkout answered %d %s", resp.StatusCode, body)
			}
			if resp.Header.Get("X-Orchestro-Flow-Id") == "" || resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Orchestro-Compensated") != "" {
				t.Errorf("answer headers %v", resp.Header)
			}

			// A declined payment: the declared answer, after the
			// reservation was released.
			resp, body = h.post(t, "/checkout/o2", `{"amount": 400}`)
			if resp.StatusCode != 402 || body != `{"error":"declined"}` || resp.Header.Get("X-Orchestro-Compensated") != "true" {
				t.Fatalf("declined checkout answered %d %s %v", resp.StatusCode, body, resp.Header)
			}
			h.shop.mu.Lock()
			if _, kept := h.shop.reservations["r-o2"]; kept || len(h.shop.released) != 1 {
				t.Errorf("reservations %v, released %v", h.shop.reservations, h.shop.released)
			}
			h.shop.mu.Unlock()
			select {
			case e := <-h.events:
				if e.Type != api.EventCompensated || e.Flow != "checkout" || !strings.Contains(e.Message, "answered 402: step charge failed (answered 402, which on_status fails); compensations: reserve done") {
					t.Errorf("event %+v", e)
				}
			case <-time.After(5 * time.Second):
				t.Error("no compensated event")
			}

			// The route beside the flow, and a method the flow does not
			// take, go to the services as before.
			resp, body = h.post(t, "/stock", "")
			if resp.StatusCode != 200 || body != `{"path":"/stock"}` {
				t.Errorf("POST /stock answered %d %s", resp.StatusCode, body)
			}
			g, err := http.Get(h.url + "/checkout/o1")
			if err != nil {
				t.Fatal(err)
			}
			g.Body.Close()
			if g.StatusCode != 404 {
				t.Errorf("GET /checkout/o1 answered %d, want 404 (no route)", g.StatusCode)
			}

			st := h.dp.flows.status(time.Now().Add(2 * time.Second))
			if len(st) != 1 || st[0].Executions != 2 || st[0].Failed != 1 || st[0].Compensated != 1 || st[0].Route != "POST /checkout/{order}" {
				t.Errorf("status %+v", st)
			}
			waitFor(t, func() bool { return strings.Count(h.log.String(), `"flow":"checkout"`) >= 6 })
			lines := h.log.String()
			for _, want := range []string{
				`"outcome":"succeeded"`,
				`"outcome":"compensated","failed_step":"charge"`,
				`"service":"inventory","replica":"inventory-1"`,
				`"flow":"checkout","step":"reserve/compensate"`,
			} {
				if !strings.Contains(lines, want) {
					t.Errorf("access log lacks %s:\n%s", want, lines)
				}
			}
		})
	}
}

func TestFlowInflightBound(t *testing.T) {
	h := startFlowGateway(t, true)
	h.shop.hold = make(chan struct{})
	var wg sync.WaitGroup
	var created atomic.Int64
	for i := range 2 {
		wg.Go(func() {
			if resp, _ := h.post(t, fmt.Sprintf("/checkout/h%d", i), `{"amount": 1}`); resp.StatusCode == 201 {
				created.Add(1)
			}
		})
	}
	waitFor(t, func() bool { return h.dp.flows.status(time.Now())[0].InFlight == 2 })
	resp, body := h.post(t, "/checkout/over", `{"amount": 1}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, `"type":"urn:orchestro:problem:flow-busy"`) {
		t.Errorf("third execution answered %d %s", resp.StatusCode, body)
	}
	close(h.shop.hold)
	wg.Wait()
	if created.Load() != 2 {
		t.Errorf("%d of the held executions succeeded, want 2", created.Load())
	}
}

func TestFlowBodyLimit(t *testing.T) {
	h := startFlowGateway(t, true)
	h.dp.flows.set.Load().routes[0].spec.MaxBody = 10
	resp, body := h.post(t, "/checkout/big", `{"amount": 1, "pad": "xxxxxxxxxxxx"}`)
	if resp.StatusCode != 413 || !strings.Contains(body, "application/problem+json") && !strings.Contains(resp.Header.Get("Content-Type"), "problem") {
		t.Errorf("over max_body: %d %s", resp.StatusCode, body)
	}
}

func TestFlowMetricsPassPromlint(t *testing.T) {
	h := startFlowGateway(t, true)
	h.post(t, "/checkout/m1", `{"amount": 1}`)
	h.post(t, "/checkout/m2", `{"amount": 1000}`)
	rec := httptest.NewRecorder()
	h.dp.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{
		`orchestro_flow_executions_total{cell="shop",flow="checkout",outcome="succeeded"} 1`,
		`orchestro_flow_executions_total{cell="shop",flow="checkout",outcome="compensated"} 1`,
		`orchestro_flow_compensations_total{cell="shop",flow="checkout",outcome="done",step="reserve"} 1`,
		`orchestro_flow_duration_seconds_count{cell="shop",flow="checkout"} 2`,
		`orchestro_flow_step_duration_seconds_count{cell="shop",flow="checkout",step="charge"} 2`,
		`orchestro_http_requests_total{cell="shop",code="2xx",method="POST",route="flow:checkout",service="inventory"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

// startJournaledFlowGateway is startFlowGateway with a journal in a
// temporary directory.
func startJournaledFlowGateway(t *testing.T, dir string) (*flowHarness, *journal.Store) {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	h := startFlowGateway(t, true)
	h.dp.flows.journal = j
	cell, _, err := cellspec.LoadCell("cell.yaml", []byte(flowCellYAML), cellspec.MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	h.dp.flows.configure(cell)
	return h, j
}

func TestFlowExecutionsAPI(t *testing.T) {
	h, _ := startJournaledFlowGateway(t, t.TempDir())
	resp, _ := h.post(t, "/checkout/o7", `{"amount": 40}`)
	id := resp.Header.Get("X-Orchestro-Flow-Id")
	g, err := http.Get(h.url + "/_orchestro/executions/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Body.Close()
	var x struct {
		ID, Flow, State string
		Steps           []struct{ ID, State string }
		Response        struct{ Status int }
	}
	if err := json.NewDecoder(g.Body).Decode(&x); err != nil || g.StatusCode != 200 {
		t.Fatalf("GET execution: %d %v", g.StatusCode, err)
	}
	if x.ID != id || x.Flow != "checkout" || x.State != "succeeded" || len(x.Steps) != 2 || x.Response.Status != 201 {
		t.Errorf("execution %+v", x)
	}
	g2, err := http.Get(h.url + "/_orchestro/executions/nope")
	if err != nil {
		t.Fatal(err)
	}
	g2.Body.Close()
	if g2.StatusCode != 404 {
		t.Errorf("unknown execution: %d", g2.StatusCode)
	}
}

// TestFlowRecoveryCompensates: an execution the journal holds unfinished
// (the gateway died after the reservation) is compensated when the
// gateway starts again, and that is an event.
func TestFlowRecoveryCompensates(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Second)
	in := &flow.Input{ID: "crashed-1", Method: "POST", Path: "/checkout/o9", Captures: map[string]string{"order": "o9"}, Body: []byte(`{"amount": 40}`)}
	j.Begin(&flow.BeginRecord{ID: "crashed-1", Flow: "checkout", Started: started, Deadline: started.Add(30 * time.Second), Input: in})
	j.Intent("crashed-1", "reserve")
	if err := j.Step("crashed-1", &flow.StepRecord{Step: "reserve", State: flow.StepSucceeded, Status: 201,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"r-o9"}`), Tries: 1, Started: started}).Wait(); err != nil {
		t.Fatal(err)
	}
	j.Intent("crashed-1", "charge").Wait()
	j.Close()

	h, _ := startJournaledFlowGateway(t, dir)
	h.shop.reservations["r-o9"] = "o9"
	h.dp.flows.recover(t.Context(), func(context.Context) {})

	h.shop.mu.Lock()
	released := fmt.Sprint(h.shop.released)
	h.shop.mu.Unlock()
	if released != "[r-o9]" {
		t.Errorf("released %s, want [r-o9]", released)
	}
	select {
	case e := <-h.events:
		if e.Type != api.EventRecovered || !strings.Contains(e.Message, "execution crashed-1") || !strings.Contains(e.Message, "reserve done") {
			t.Errorf("event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Error("no recovered event")
	}
	x, err := h.dp.flows.journal.Get("crashed-1")
	if err != nil || x.State != "compensated" || !x.Recovered {
		t.Errorf("journal after recovery: %+v, %v", x, err)
	}
}

// TestFlowAsync: Prefer: respond-async answers 202 with where to read the
// execution; a call whose service has no replica waits for one; the
// execution, read with ?wait=, ends with the flow's answer.
func TestFlowAsync(t *testing.T) {
	h, _ := startJournaledFlowGateway(t, t.TempDir())
	payments := h.dp.Proxy.Upstreams("payments")
	h.dp.Proxy.SetUpstreams("payments", nil) // payments is down

	req, _ := http.NewRequest("POST", h.url+"/checkout/a1", strings.NewReader(`{"amount": 5}`))
	req.Header.Set("Prefer", "respond-async, wait=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 || !strings.HasPrefix(loc, "/_orchestro/executions/") || resp.Header.Get("Preference-Applied") != "respond-async" {
		t.Fatalf("answered %d, Location %q, %v", resp.StatusCode, loc, resp.Header)
	}
	waitFor(t, func() bool { return testutilGauge(h.dp, "orchestro_flow_async_waiting") == 1 })

	h.dp.Proxy.SetUpstreams("payments", payments) // back
	g, err := http.Get(h.url + loc + "?wait=10s")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Body.Close()
	var x struct {
		State    string
		Async    bool
		Response struct {
			Status int
			Body   map[string]any
		}
	}
	if err := json.NewDecoder(g.Body).Decode(&x); err != nil {
		t.Fatal(err)
	}
	if x.State != "succeeded" || !x.Async || x.Response.Status != 201 || x.Response.Body["charge"] != "c-a1" {
		t.Errorf("execution %+v", x)
	}
	if n := testutilGauge(h.dp, "orchestro_flow_async_waiting"); n != 0 {
		t.Errorf("async waiting gauge %v after the end", n)
	}
}

// testutilGauge reads a gauge of the data plane's metrics.
func testutilGauge(dp *DataPlane, name string) float64 {
	rec := httptest.NewRecorder()
	dp.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			return v
		}
	}
	return -1
}

func TestFlowExecutionLog(t *testing.T) {
	h, _ := startJournaledFlowGateway(t, t.TempDir())
	h.post(t, "/checkout/ok1", `{"amount": 5}`)
	resp, _ := h.post(t, "/checkout/no1", `{"amount": 500}`)
	declined := resp.Header.Get("X-Orchestro-Flow-Id")

	list, err := h.dp.flows.ListExecutions(t.Context(), api.ExecutionFilter{Failed: true})
	if err != nil || len(list) != 1 || list[0].ID != declined || list[0].State != api.ExecutionCompensated || list[0].Cell != "shop" || list[0].FailedStep != "charge" {
		t.Fatalf("failed executions %+v, %v", list, err)
	}
	all, _ := h.dp.flows.ListExecutions(t.Context(), api.ExecutionFilter{})
	if len(all) != 2 || all[0].ID != declined {
		t.Errorf("all executions, newest first: %+v", all)
	}
	x, err := h.dp.flows.GetExecution(t.Context(), declined)
	if err != nil || len(x.Steps) != 2 || x.Steps[1].Status != 402 || len(x.Compensations) != 1 || x.Compensations[0].Outcome != "done" {
		t.Fatalf("execution %+v, %v", x, err)
	}
	if _, err := h.dp.flows.GetExecution(t.Context(), "nope"); !strings.Contains(fmt.Sprint(err), `no execution "nope"`) {
		t.Errorf("unknown execution: %v", err)
	}

	// A retry runs the same input again: declined again, and compensated.
	r, err := h.dp.flows.RetryExecution(t.Context(), declined)
	if err != nil || r.ID == "" || r.ID == declined {
		t.Fatalf("retry: %+v, %v", r, err)
	}
	h.dp.flows.waitFor(t.Context(), r.ID, 5*time.Second)
	again, err := h.dp.flows.GetExecution(t.Context(), r.ID)
	if err != nil || again.State != api.ExecutionCompensated || again.Response == nil || again.Response.Status != 402 {
		t.Errorf("retried execution %+v, %v", again, err)
	}

	// A running execution is not retried.
	payments := h.dp.Proxy.Upstreams("payments")
	h.dp.Proxy.SetUpstreams("payments", nil)
	req, _ := http.NewRequest("POST", h.url+"/checkout/run1", strings.NewReader(`{"amount": 5}`))
	req.Header.Set("Prefer", "respond-async")
	ar, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ar.Body.Close()
	_, err = h.dp.flows.RetryExecution(t.Context(), ar.Header.Get("X-Orchestro-Flow-Id"))
	var se *admin.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Errorf("retry of a running execution: %v", err)
	}
	h.dp.Proxy.SetUpstreams("payments", payments)
	h.dp.flows.waitFor(t.Context(), ar.Header.Get("X-Orchestro-Flow-Id"), 5*time.Second)
}
