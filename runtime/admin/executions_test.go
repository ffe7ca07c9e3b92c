package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

func TestServerListExecutions(t *testing.T) {
	all := []api.ExecutionSummary{summaryOf(testExecutions()[0]), summaryOf(testExecutions()[1])}
	tests := []struct {
		name, target string
		wantCall     string
		want         []api.ExecutionSummary
	}{
		{"everything", api.PathExecutions, `list flow="" failed=false since=- limit=0`, all},
		{"one flow", api.PathExecutions + "?flow=place-order", `list flow="place-order" failed=false since=- limit=0`, all},
		{"another flow", api.PathExecutions + "?flow=refund", `list flow="refund" failed=false since=- limit=0`, []api.ExecutionSummary{}},
		{"failed", api.PathExecutions + "?failed=1", `list flow="" failed=true since=- limit=0`, all[1:]},
		{"failed=true", api.PathExecutions + "?failed=true", `list flow="" failed=true since=- limit=0`, all[1:]},
		{"failed=0", api.PathExecutions + "?failed=0", `list flow="" failed=false since=- limit=0`, all},
		{"since", api.PathExecutions + "?since=2026-11-22T10:00:00Z", `list flow="" failed=false since=2026-11-22T10:00:00Z limit=0`, all},
		{"since with an offset and fraction", api.PathExecutions + "?since=2026-11-22T11:00:00.5%2B01:00", `list flow="" failed=false since=2026-11-22T11:00:00.5+01:00 limit=0`, all},
		{"limit", api.PathExecutions + "?limit=20", `list flow="" failed=false since=- limit=20`, all},
		{"unknown parameters are ignored", api.PathExecutions + "?page=2", `list flow="" failed=false since=- limit=0`, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			execs := &fakeExecutions{}
			rec := serve(newExecutionsServer(execs), http.MethodGet, tt.target, "", "")
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var got []api.ExecutionSummary
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %s: %v", rec.Body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("executions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{tt.wantCall}, execs.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServerListExecutionsEmpty checks that an empty journal is [], which
// scripts iterate, rather than null.
func TestServerListExecutionsEmpty(t *testing.T) {
	rec := serve(newExecutionsServer(emptyExecutions{}), http.MethodGet, api.PathExecutions, "", "")
	if rec.Code != http.StatusOK || rec.Body.String() != "[]\n" {
		t.Errorf("GET %s of an empty journal = %d %q, want 200 []", api.PathExecutions, rec.Code, rec.Body)
	}
}

// emptyExecutions is a journal that holds nothing and answers with nil
// values rather than errors.
type emptyExecutions struct{}

func (emptyExecutions) ListExecutions(ctx context.Context, f api.ExecutionFilter) ([]api.ExecutionSummary, error) {
	return nil, nil
}

func (emptyExecutions) GetExecution(ctx context.Context, id string) (*api.Execution, error) {
	return nil, nil
}

func (emptyExecutions) RetryExecution(ctx context.Context, id string) (api.RetryResult, error) {
	return api.RetryResult{}, NotFound(fmt.Errorf("no execution %s", id))
}

func TestServerListExecutionsBadQuery(t *testing.T) {
	tests := []struct{ query, want string }{
		{"failed=yes", `failed must be a boolean, got "yes"`},
		{"since=10m", `since must be an RFC 3339 time such as 2026-11-22T10:00:00Z, got "10m"`},
		{"since=2026-11-22", `since must be an RFC 3339 time such as 2026-11-22T10:00:00Z, got "2026-11-22"`},
		{"limit=-1", `limit must be a non-negative whole number, got "-1"`},
		{"limit=ten", `limit must be a non-negative whole number, got "ten"`},
		{"limit=1.5", `limit must be a non-negative whole number, got "1.5"`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			execs := &fakeExecutions{}
			rec := serve(newExecutionsServer(execs), http.MethodGet, api.PathExecutions+"?"+tt.query, "", "")
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", rec.Code)
			}
			if got := errorBody(t, rec); got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
			if calls := execs.Calls(); len(calls) != 0 {
				t.Errorf("a bad query reached the journal: %q", calls)
			}
		})
	}
}

func TestServerGetExecution(t *testing.T) {
	srv := newExecutionsServer(&fakeExecutions{})
	rec := serve(srv, http.MethodGet, api.PathExecutions+"/e1", "", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	var got api.Execution
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testExecutions()[1], &got); diff != "" {
		t.Errorf("execution (-want +got):\n%s", diff)
	}

	rec = serve(srv, http.MethodGet, api.PathExecutions+"/nope", "", "")
	if rec.Code != http.StatusNotFound {
		t.Fatalf("unknown id: status = %d, want 404", rec.Code)
	}
	if got, want := errorBody(t, rec), "no execution nope"; got != want {
		t.Errorf("unknown id: error = %q, want %q", got, want)
	}

	// A journal that answers neither an execution nor an error.
	rec = serve(newExecutionsServer(emptyExecutions{}), http.MethodGet, api.PathExecutions+"/e1", "", "")
	if rec.Code != http.StatusNotFound || errorBody(t, rec) != "no execution e1" {
		t.Errorf("nil execution: %d %s, want 404 no execution e1", rec.Code, rec.Body)
	}
}

func TestServerRetryExecution(t *testing.T) {
	tests := []struct {
		name, id, token string
		wantCode        int
		wantMsg         string // when not 202
		wantCalls       []string
	}{
		{name: "ended", id: "e1", token: testToken, wantCode: http.StatusAccepted, wantCalls: []string{"retry e1"}},
		{name: "running", id: "e2", token: testToken, wantCode: http.StatusConflict, wantMsg: "execution e2 is running", wantCalls: []string{"retry e2"}},
		{name: "unknown", id: "e9", token: testToken, wantCode: http.StatusNotFound, wantMsg: "no execution e9", wantCalls: []string{"retry e9"}},
		{name: "no token", id: "e1", wantCode: http.StatusUnauthorized, wantMsg: "missing bearer token: this call needs the project token"},
		{name: "wrong token", id: "e1", token: "nope", wantCode: http.StatusUnauthorized, wantMsg: "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			execs := &fakeExecutions{}
			rec := serve(newExecutionsServer(execs), http.MethodPost, api.PathExecutions+"/"+tt.id+"/retry", "", tt.token)
			if rec.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantCode == http.StatusAccepted {
				var got api.RetryResult
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.ID != "e3" {
					t.Errorf("answer %s (%v), want the id e3", rec.Body, err)
				}
				if loc := rec.Header().Get("Location"); loc != api.PathExecutions+"/e3" {
					t.Errorf("Location = %q, want %s/e3", loc, api.PathExecutions)
				}
			} else if got := errorBody(t, rec); got != tt.wantMsg {
				t.Errorf("error = %q, want %q", got, tt.wantMsg)
			}
			if diff := cmp.Diff(tt.wantCalls, execs.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServerExecutionsWithoutFlows checks that a cell without flows says
// so on every execution path, rather than "no such admin endpoint", and
// that the retry still needs the token first.
func TestServerExecutionsWithoutFlows(t *testing.T) {
	srv := newExecutionsServer(nil)
	const want = "no executions: the cell of this gateway has no flows"
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, api.PathExecutions},
		{http.MethodGet, api.PathExecutions + "?failed=yes"},
		{http.MethodGet, api.PathExecutions + "/e1"},
		{http.MethodPost, api.PathExecutions + "/e1/retry"},
	} {
		rec := serve(srv, r.method, r.path, "", testToken)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s %s: status %d, want 404", r.method, r.path, rec.Code)
			continue
		}
		if got := errorBody(t, rec); got != want {
			t.Errorf("%s %s: error %q, want %q", r.method, r.path, got, want)
		}
	}
	if rec := serve(srv, http.MethodPost, api.PathExecutions+"/e1/retry", "", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("retry without a token: status %d, want 401", rec.Code)
	}
}

func TestServerExecutionsMethods(t *testing.T) {
	srv := newExecutionsServer(&fakeExecutions{})
	tests := []struct {
		method, path, wantAllow string
	}{
		{http.MethodPost, api.PathExecutions, "GET, HEAD"},
		{http.MethodDelete, api.PathExecutions + "/e1", "GET, HEAD"},
		{http.MethodGet, api.PathExecutions + "/e1/retry", "POST"},
	}
	for _, tt := range tests {
		rec := serve(srv, tt.method, tt.path, "", testToken)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != tt.wantAllow {
			t.Errorf("%s %s = %d Allow %q, want 405 Allow %q", tt.method, tt.path, rec.Code, rec.Header().Get("Allow"), tt.wantAllow)
		}
	}
}

func TestServerExecutionsErrors(t *testing.T) {
	srv := newExecutionsServer(&fakeExecutions{err: errors.New("journal: read: disk I/O error")})
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, api.PathExecutions},
		{http.MethodGet, api.PathExecutions + "/e1"},
		{http.MethodPost, api.PathExecutions + "/e1/retry"},
	} {
		rec := serve(srv, r.method, r.path, "", testToken)
		if rec.Code != http.StatusInternalServerError || errorBody(t, rec) != "journal: read: disk I/O error" {
			t.Errorf("%s %s = %d %s, want 500 with the journal's error", r.method, r.path, rec.Code, rec.Body)
		}
	}
}

// newExecutionsClient starts a Server whose cell has the flow executions
// execs (nil: none) and returns a client of it for cell "shop".
func newExecutionsClient(t *testing.T, execs Executions, token string) *Client {
	t.Helper()
	ts := httptest.NewServer(newExecutionsServer(execs))
	t.Cleanup(ts.Close)
	c := NewClient(ts.URL, token, ts.Client())
	c.Cell = "shop"
	return c
}

func TestClientExecutionsRoundTrips(t *testing.T) {
	execs := &fakeExecutions{}
	c := newExecutionsClient(t, execs, testToken)
	ctx := t.Context()
	since := time.Date(2026, 11, 22, 11, 0, 0, 500, time.FixedZone("CET", 3600))

	list, err := c.ListExecutions(ctx, api.ExecutionFilter{})
	if err != nil {
		t.Fatalf("ListExecutions: %v", err)
	}
	want := []api.ExecutionSummary{summaryOf(testExecutions()[0]), summaryOf(testExecutions()[1])}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("ListExecutions (-want +got):\n%s", diff)
	}
	if _, err := c.ListExecutions(ctx, api.ExecutionFilter{Flow: "place-order", Failed: true, Since: since, Limit: 5}); err != nil {
		t.Fatalf("ListExecutions with a filter: %v", err)
	}

	e, err := c.GetExecution(ctx, "e1")
	if err != nil {
		t.Fatalf("GetExecution: %v", err)
	}
	if diff := cmp.Diff(testExecutions()[1], e); diff != "" {
		t.Errorf("GetExecution (-want +got):\n%s", diff)
	}

	res, err := c.RetryExecution(ctx, "e1")
	if err != nil || res.ID != "e3" {
		t.Errorf("RetryExecution = %+v, %v; want e3", res, err)
	}

	wantCalls := []string{
		`list flow="" failed=false since=- limit=0`,
		// The time crosses the wire in UTC, to the nanosecond.
		`list flow="place-order" failed=true since=2026-11-22T10:00:00.0000005Z limit=5`,
		"get e1",
		"retry e1",
	}
	if diff := cmp.Diff(wantCalls, execs.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestClientExecutionsErrors(t *testing.T) {
	tests := []struct {
		name     string
		execs    Executions
		token    string
		call     func(ctx context.Context, c *Client) error
		wantCode int
		want     string
	}{
		{
			name: "unknown execution", execs: &fakeExecutions{}, token: testToken,
			call:     func(ctx context.Context, c *Client) error { _, err := c.GetExecution(ctx, "e9"); return err },
			wantCode: http.StatusNotFound, want: "get execution e9 of shop: 404: no execution e9",
		},
		{
			name: "retry while running", execs: &fakeExecutions{}, token: testToken,
			call:     func(ctx context.Context, c *Client) error { _, err := c.RetryExecution(ctx, "e2"); return err },
			wantCode: http.StatusConflict, want: "retry execution e2 of shop: 409: execution e2 is running",
		},
		{
			name: "retry without the token", execs: &fakeExecutions{},
			call:     func(ctx context.Context, c *Client) error { _, err := c.RetryExecution(ctx, "e1"); return err },
			wantCode: http.StatusUnauthorized, want: "retry execution e1 of shop: 401: missing bearer token: this call needs the project token",
		},
		{
			name: "list of a cell without flows", token: testToken,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ListExecutions(ctx, api.ExecutionFilter{})
				return err
			},
			wantCode: http.StatusNotFound, want: "list executions of shop: 404: no executions: the cell of this gateway has no flows",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newExecutionsClient(t, tt.execs, tt.token)
			err := tt.call(t.Context(), c)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tt.wantCode {
				t.Errorf("error carries no *StatusError with code %d: %#v", tt.wantCode, err)
			}
		})
	}
}

// TestClientGetExecutionEscapesTheID checks that an id is one path
// segment, whatever it holds.
func TestClientGetExecutionEscapesTheID(t *testing.T) {
	var got string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.EscapedPath()
		_, _ = w.Write([]byte(`{"id":"a/b"}`))
	}))
	defer ts.Close()
	if _, err := NewClient(ts.URL, "", ts.Client()).GetExecution(t.Context(), "a/b?c"); err != nil {
		t.Fatal(err)
	}
	if want := api.PathExecutions + "/a%2Fb%3Fc"; got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
}
