package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

var execStart = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// journal is the admin.Executions of one fake gateway: its executions,
// newest first, and the calls it got.
type journal struct {
	mu    sync.Mutex
	execs []api.Execution
	calls []string
	err   error // answers every call when set
}

func (j *journal) record(call string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls = append(j.calls, call)
	return j.err
}

func (j *journal) Calls() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.calls...)
}

func (j *journal) ListExecutions(ctx context.Context, f api.ExecutionFilter) ([]api.ExecutionSummary, error) {
	if err := j.record(fmt.Sprintf("list flow=%q failed=%t since=%s limit=%d", f.Flow, f.Failed, f.Since.UTC().Format(time.RFC3339), f.Limit)); err != nil {
		return nil, err
	}
	var out []api.ExecutionSummary
	for _, e := range j.execs {
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		out = append(out, api.ExecutionSummary{ID: e.ID, Flow: e.Flow, State: e.State, Started: e.Started, DurationMs: e.DurationMs})
	}
	return out, nil
}

func (j *journal) GetExecution(ctx context.Context, id string) (*api.Execution, error) {
	if err := j.record("get " + id); err != nil {
		return nil, err
	}
	for _, e := range j.execs {
		if e.ID == id {
			return &e, nil
		}
	}
	return nil, admin.NotFound(fmt.Errorf("no execution %s", id))
}

func (j *journal) RetryExecution(ctx context.Context, id string) (api.RetryResult, error) {
	if err := j.record("retry " + id); err != nil {
		return api.RetryResult{}, err
	}
	for _, e := range j.execs {
		switch {
		case e.ID != id:
		case e.State == api.ExecutionRunning:
			return api.RetryResult{}, admin.Conflict(fmt.Errorf("execution %s is running", id))
		default:
			return api.RetryResult{ID: id + "-retry"}, nil
		}
	}
	return api.RetryResult{}, admin.NotFound(fmt.Errorf("no execution %s", id))
}

// execution is an execution of flow that started at second s of
// execStart.
func execution(id, flow, state string, s int) api.Execution {
	return api.Execution{ID: id, Flow: flow, State: state, Started: execStart.Add(time.Duration(s) * time.Second), DurationMs: 12}
}

// idleCell is the admin.Cell of a fake gateway: only its status is ever
// asked for.
type idleCell struct{}

func (idleCell) Status() api.CellStatus                                 { return api.CellStatus{} }
func (idleCell) Scale(ctx context.Context, service string, n int) error { return nil }
func (idleCell) Restart(ctx context.Context, service string) error      { return nil }
func (idleCell) UpdateSpec(ctx context.Context, spec []byte) error      { return nil }
func (idleCell) Stop(ctx context.Context) error                         { return nil }

// execProject is a project of five gateways, in the order the engine
// lists them: shop and pay run flows, users runs none, billing's container
// exited, and edge's runs without listening yet.
type execProject struct {
	c         *Client
	shop, pay *journal
}

func newExecProject(t *testing.T) *execProject {
	t.Helper()
	p := &execProject{
		shop: &journal{execs: []api.Execution{
			execution("s3", "place-order", api.ExecutionRunning, 50),
			execution("s2", "place-order", api.ExecutionCompensated, 30),
			execution("s1", "cancel-order", api.ExecutionSucceeded, 10),
		}},
		pay: &journal{execs: []api.Execution{
			execution("p2", "charge", api.ExecutionFailed, 40),
			execution("p1", "charge", api.ExecutionSucceeded, 10),
		}},
	}
	serve := func(execs admin.Executions) string {
		srv, err := admin.NewServer(admin.ServerConfig{Cell: idleCell{}, Events: admin.NewEventBus(1), Token: "tok", Executions: execs})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		t.Cleanup(ts.Close)
		return ts.URL
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	gws := []gateway{
		{cell: "billing", state: "exited", token: "tok"},
		{cell: "edge", state: "running", token: "tok", adminURL: gone.URL},
		{cell: "pay", state: "running", token: "tok", adminURL: serve(p.pay)},
		{cell: "shop", state: "running", token: "tok", adminURL: serve(p.shop)},
		{cell: "users", state: "running", token: "tok", adminURL: serve(nil)},
	}
	p.c = NewClientWithEngine(enginetest.NewFake())
	p.c.listGateways = func(ctx context.Context, project string) ([]gateway, error) {
		if project != "demo" {
			return nil, nil
		}
		return gws, nil
	}
	return p
}

// ids lists the cell/id of each summary.
func ids(list []api.ExecutionSummary) []string {
	out := []string{}
	for _, s := range list {
		out = append(out, s.Cell+"/"+s.ID)
	}
	return out
}

func TestExecutionsAcrossTheProject(t *testing.T) {
	tests := []struct {
		name      string
		cell      string
		filter    api.ExecutionFilter
		want      []string
		wantCalls string // each journal's
	}{
		{
			name:      "every cell, newest first",
			want:      []string{"shop/s3", "pay/p2", "shop/s2", "pay/p1", "shop/s1"},
			wantCalls: `list flow="" failed=false since=0001-01-01T00:00:00Z limit=0`,
		},
		{
			name:      "limited after merging",
			filter:    api.ExecutionFilter{Limit: 3},
			want:      []string{"shop/s3", "pay/p2", "shop/s2"},
			wantCalls: `list flow="" failed=false since=0001-01-01T00:00:00Z limit=3`,
		},
		{
			name:      "the filter reaches each gateway",
			filter:    api.ExecutionFilter{Flow: "charge", Failed: true, Since: execStart},
			want:      []string{"shop/s3", "pay/p2", "shop/s2", "pay/p1", "shop/s1"},
			wantCalls: `list flow="charge" failed=true since=2026-11-22T10:00:00Z limit=0`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newExecProject(t)
			list, err := p.c.Executions(t.Context(), "demo", tt.cell, tt.filter)
			if err != nil {
				t.Fatalf("Executions: %v", err)
			}
			if diff := cmp.Diff(tt.want, ids(list)); diff != "" {
				t.Errorf("executions (-want +got):\n%s", diff)
			}
			for name, j := range map[string]*journal{"shop": p.shop, "pay": p.pay} {
				if diff := cmp.Diff([]string{tt.wantCalls}, j.Calls()); diff != "" {
					t.Errorf("calls of %s (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

func TestExecutionsOfOneCell(t *testing.T) {
	p := newExecProject(t)
	list, err := p.c.Executions(t.Context(), "demo", "pay", api.ExecutionFilter{})
	if err != nil {
		t.Fatalf("Executions: %v", err)
	}
	if diff := cmp.Diff([]string{"pay/p2", "pay/p1"}, ids(list)); diff != "" {
		t.Errorf("executions (-want +got):\n%s", diff)
	}
	if calls := p.shop.Calls(); len(calls) != 0 {
		t.Errorf("another cell's gateway was asked: %q", calls)
	}

	// A cell named is not passed over: why it has nothing is the answer.
	tests := []struct{ cell, want string }{
		{"users", "list executions of users: 404: no executions: the cell of this gateway has no flows"},
		{"billing", "the gateway of cell billing is exited; run `orchestro up`"},
		{"nope", `project demo has no cell "nope" (cells: billing, edge, pay, shop, users)`},
	}
	for _, tt := range tests {
		_, err := p.c.Executions(t.Context(), "demo", tt.cell, api.ExecutionFilter{})
		if err == nil || err.Error() != tt.want {
			t.Errorf("Executions of %s: error %v, want %q", tt.cell, err, tt.want)
		}
	}
	_, err = p.c.Executions(t.Context(), "demo", "edge", api.ExecutionFilter{})
	if !errors.Is(err, admin.ErrUnreachable) {
		t.Errorf("Executions of edge: error %v, want one matching ErrUnreachable", err)
	}
}

func TestExecutionsFailures(t *testing.T) {
	p := newExecProject(t)
	if _, err := p.c.Executions(t.Context(), "other", "", api.ExecutionFilter{}); !errors.Is(err, api.ErrNotRunning) {
		t.Errorf("Executions of a project without gateways: %v, want ErrNotRunning", err)
	}
	p.pay.err = errors.New("journal: disk I/O error")
	_, err := p.c.Executions(t.Context(), "demo", "", api.ExecutionFilter{})
	if want := "list executions of pay: 500: journal: disk I/O error"; err == nil || err.Error() != want {
		t.Errorf("Executions with a failing journal: %v, want %q", err, want)
	}
}

func TestExecution(t *testing.T) {
	p := newExecProject(t)
	ctx := t.Context()
	for _, tt := range []struct{ cell, id, wantCell string }{
		{"", "s2", "shop"},
		{"", "p1", "pay"},
		{"shop", "s2", "shop"},
	} {
		e, err := p.c.Execution(ctx, "demo", tt.cell, tt.id)
		if err != nil {
			t.Fatalf("Execution(%q, %s): %v", tt.cell, tt.id, err)
		}
		want := execution(tt.id, e.Flow, e.State, int(e.Started.Sub(execStart)/time.Second))
		want.Cell = tt.wantCell
		if diff := cmp.Diff(&want, e); diff != "" {
			t.Errorf("Execution(%q, %s) (-want +got):\n%s", tt.cell, tt.id, diff)
		}
	}
	// Not in the cell named (edge, which does not answer, is not asked).
	for _, cell := range []string{"pay", "users"} {
		if e, err := p.c.Execution(ctx, "demo", cell, "s9"); e != nil || err != nil {
			t.Errorf("Execution(%q, s9) = %v, %v; want nil, nil", cell, e, err)
		}
	}
	// A journal that fails may hold it: that is no "not found".
	p.pay.err = errors.New("journal: disk I/O error")
	if _, err := p.c.Execution(ctx, "demo", "", "s2"); err == nil || !strings.Contains(err.Error(), "disk I/O error") {
		t.Errorf("Execution with a failing journal before the right one: %v, want the journal's error", err)
	}
}

// TestExecutionNotFoundWhileAGatewayIsDown checks that "not found" is not
// claimed while a running gateway could not be asked.
func TestExecutionNotFoundWhileAGatewayIsDown(t *testing.T) {
	p := newExecProject(t)
	_, err := p.c.Execution(t.Context(), "demo", "", "s9")
	if !errors.Is(err, admin.ErrUnreachable) || !strings.HasPrefix(err.Error(), "find execution s9: get execution s9 of edge: ") {
		t.Errorf("Execution(s9) with edge unreachable: %v, want find execution s9: … ErrUnreachable", err)
	}
	// Found all the same when another gateway has it.
	if e, err := p.c.Execution(t.Context(), "demo", "", "s1"); err != nil || e == nil || e.Cell != "shop" {
		t.Errorf("Execution(s1) with edge unreachable = %v, %v; want it from shop", e, err)
	}

	gws, _ := p.c.listGateways(t.Context(), "demo")
	p.c.listGateways = func(ctx context.Context, project string) ([]gateway, error) {
		return append(gws[:1:1], gws[2:]...), nil // edge is gone
	}
	if e, err := p.c.Execution(t.Context(), "demo", "", "s9"); e != nil || err != nil {
		t.Errorf("Execution(s9) = %v, %v; want nil, nil once every running gateway answers", e, err)
	}
	if _, err := p.c.RetryExecution(t.Context(), "demo", "", "s9"); err == nil || err.Error() != "retry execution s9: no gateway of project demo has it" {
		t.Errorf("RetryExecution(s9): %v, want no gateway of project demo has it", err)
	}
}

func TestRetryExecution(t *testing.T) {
	p := newExecProject(t)
	ctx := t.Context()
	res, err := p.c.RetryExecution(ctx, "demo", "", "p2")
	if err != nil || res.ID != "p2-retry" {
		t.Fatalf("RetryExecution(p2) = %+v, %v; want p2-retry", res, err)
	}
	if diff := cmp.Diff([]string{"get p2", "retry p2"}, p.pay.Calls()); diff != "" {
		t.Errorf("calls of pay (-want +got):\n%s", diff)
	}
	res, err = p.c.RetryExecution(ctx, "demo", "shop", "s2")
	if err != nil || res.ID != "s2-retry" {
		t.Fatalf("RetryExecution(shop, s2) = %+v, %v; want s2-retry", res, err)
	}
	if diff := cmp.Diff([]string{"retry s2"}, p.shop.Calls()); diff != "" {
		t.Errorf("calls of shop, its cell named (-want +got):\n%s", diff)
	}

	tests := []struct{ cell, id, want string }{
		{"", "s3", "retry execution s3 of shop: 409: execution s3 is running"},
		{"pay", "s2", "retry execution s2 of pay: 404: no execution s2"},
	}
	for _, tt := range tests {
		_, err := p.c.RetryExecution(ctx, "demo", tt.cell, tt.id)
		if err == nil || err.Error() != tt.want {
			t.Errorf("RetryExecution(%q, %s): error %v, want %q", tt.cell, tt.id, err, tt.want)
		}
	}
	var se *admin.StatusError
	if _, err := p.c.RetryExecution(ctx, "demo", "", "s3"); !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Errorf("retry of a running execution: %v, want a 409 StatusError", err)
	}
}
