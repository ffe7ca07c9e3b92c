package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// serve sends one request to h; an empty token sends no Authorization.
func serve(h http.Handler, method, target, body, token string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if token != "" {
		req.Header.Set(api.TokenHeader, "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// errorBody decodes an api.Error answer, failing the test when the body
// is not one.
func errorBody(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e api.Error
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("answer is not an api.Error: %v", err)
	}
	return e.Error
}

func TestNewServerNeedsEverything(t *testing.T) {
	cell, bus := &fakeCell{}, NewEventBus(1)
	tests := []struct {
		name string
		cfg  ServerConfig
		want string
	}{
		{"no cell", ServerConfig{Events: bus, Token: "t"}, "new admin server: no cell"},
		{"no bus", ServerConfig{Cell: cell, Token: "t"}, "new admin server: no event bus"},
		{"no token", ServerConfig{Cell: cell, Events: bus}, "new admin server: no project token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewServer(tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Errorf("NewServer() error = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := NewServer(ServerConfig{Cell: cell, Events: bus, Token: "t"}); err != nil {
		t.Errorf("NewServer() without metrics or logger: %v", err)
	}
}

func TestServerAuth(t *testing.T) {
	routes := []struct{ method, path, body string }{
		{http.MethodPost, api.PathScale, `{"service":"orders","replicas":3}`},
		{http.MethodPost, api.PathRestart, `{"service":"orders"}`},
		{http.MethodPut, api.PathSpec, `{"cell":"shop"}`},
		{http.MethodPost, api.PathStop, ``},
	}
	tests := []struct {
		name     string
		header   string // the Authorization value; empty sends none
		wantCode int
		wantMsg  string
	}{
		{"no token", "", http.StatusUnauthorized, "missing bearer token: this call needs the project token"},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, "missing bearer token: this call needs the project token"},
		{"other scheme", "Basic " + testToken, http.StatusUnauthorized, "missing bearer token: this call needs the project token"},
		{"wrong token", "Bearer nope", http.StatusUnauthorized, "invalid token"},
		{"token prefix", "Bearer " + testToken[:4], http.StatusUnauthorized, "invalid token"},
		{"token with suffix", "Bearer " + testToken + "x", http.StatusUnauthorized, "invalid token"},
		{"right token", "Bearer " + testToken, http.StatusNoContent, ""},
		{"scheme in lower case", "bearer " + testToken, http.StatusNoContent, ""},
	}
	for _, rt := range routes {
		for _, tt := range tests {
			t.Run(rt.path+"/"+tt.name, func(t *testing.T) {
				cell := &fakeCell{}
				srv := newTestServer(cell, NewEventBus(10))
				var body io.Reader
				if rt.body != "" {
					body = strings.NewReader(rt.body)
				}
				req := httptest.NewRequest(rt.method, rt.path, body)
				if tt.header != "" {
					req.Header.Set(api.TokenHeader, tt.header)
				}
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != tt.wantCode {
					t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantCode, rec.Body)
				}
				if tt.wantCode != http.StatusUnauthorized {
					if len(cell.Calls()) != 1 {
						t.Errorf("cell calls = %q, want one", cell.Calls())
					}
					return
				}
				if got := rec.Header().Get("WWW-Authenticate"); got != "Bearer" {
					t.Errorf("WWW-Authenticate = %q, want Bearer", got)
				}
				if got := errorBody(t, rec); got != tt.wantMsg {
					t.Errorf("error = %q, want %q", got, tt.wantMsg)
				}
				if calls := cell.Calls(); len(calls) != 0 {
					t.Errorf("unauthorized request reached the cell: %q", calls)
				}
			})
		}
	}
}

func TestServerReadsNeedNoToken(t *testing.T) {
	srv := newTestServer(&fakeCell{}, NewEventBus(10))
	for _, path := range []string{api.PathStatus, api.PathEvents, api.PathHealth, api.PathMetrics} {
		if rec := serve(srv, http.MethodGet, path, "", ""); rec.Code != http.StatusOK {
			t.Errorf("GET %s without a token: status %d, want 200", path, rec.Code)
		}
	}
}

func TestServerStatus(t *testing.T) {
	cell := &fakeCell{status: testStatus()}
	rec := serve(newTestServer(cell, NewEventBus(10)), http.MethodGet, api.PathStatus, "", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got api.CellStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testStatus(), got); diff != "" {
		t.Errorf("status mismatch (-want +got):\n%s", diff)
	}
}

func TestServerHealthAndMetrics(t *testing.T) {
	srv := newTestServer(&fakeCell{}, NewEventBus(10))
	tests := []struct {
		method, path string
		wantBody     string
	}{
		{http.MethodGet, api.PathHealth, "ok\n"},
		{http.MethodGet, api.PathMetrics, "metrics\n"},
	}
	for _, tt := range tests {
		rec := serve(srv, tt.method, tt.path, "", "")
		if rec.Code != http.StatusOK || rec.Body.String() != tt.wantBody {
			t.Errorf("%s %s = %d %q, want 200 %q", tt.method, tt.path, rec.Code, rec.Body, tt.wantBody)
		}
	}
}

func TestServerWithoutMetrics(t *testing.T) {
	srv, err := NewServer(ServerConfig{Cell: &fakeCell{}, Events: NewEventBus(1), Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(srv, http.MethodGet, api.PathMetrics, "", "")
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /metrics without a metrics handler: status %d, want 404", rec.Code)
	}
}

func TestServerNotFoundAndMethodNotAllowed(t *testing.T) {
	srv := newTestServer(&fakeCell{}, NewEventBus(10))
	tests := []struct {
		name, method, path string
		wantCode           int
		wantAllow          string
		wantMsg            string
	}{
		{"unknown path", http.MethodGet, "/v1/nope", http.StatusNotFound, "", "no such admin endpoint: /v1/nope"},
		{"root", http.MethodGet, "/", http.StatusNotFound, "", "no such admin endpoint: /"},
		{"trailing slash", http.MethodGet, "/v1/status/", http.StatusNotFound, "", "no such admin endpoint: /v1/status/"},
		{"post status", http.MethodPost, api.PathStatus, http.StatusMethodNotAllowed, "GET, HEAD", "method POST is not allowed on /v1/status (allowed: GET, HEAD)"},
		{"get scale", http.MethodGet, api.PathScale, http.StatusMethodNotAllowed, "POST", "method GET is not allowed on /v1/scale (allowed: POST)"},
		{"post spec", http.MethodPost, api.PathSpec, http.StatusMethodNotAllowed, "PUT", "method POST is not allowed on /v1/spec (allowed: PUT)"},
		{"delete stop", http.MethodDelete, api.PathStop, http.StatusMethodNotAllowed, "POST", "method DELETE is not allowed on /v1/stop (allowed: POST)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(srv, tt.method, tt.path, "", testToken)
			if rec.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if got := errorBody(t, rec); got != tt.wantMsg {
				t.Errorf("error = %q, want %q", got, tt.wantMsg)
			}
		})
	}
}

func TestServerMutations(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		wantCode                 int
		wantMsg                  string // error message when not 204
		wantCalls                []string
	}{
		{
			name: "scale", method: http.MethodPost, path: api.PathScale,
			body:     `{"service":"orders","replicas":3}`,
			wantCode: http.StatusNoContent, wantCalls: []string{"scale orders 3"},
		},
		{
			name: "scale to zero", method: http.MethodPost, path: api.PathScale,
			body:     `{"service":"orders","replicas":0}`,
			wantCode: http.StatusNoContent, wantCalls: []string{"scale orders 0"},
		},
		{
			name: "scale unknown field", method: http.MethodPost, path: api.PathScale,
			body:     `{"service":"orders","replicas":3,"force":true}`,
			wantCode: http.StatusBadRequest, wantMsg: `decode request body: json: unknown field "force"`,
		},
		{
			name: "scale wrong type", method: http.MethodPost, path: api.PathScale,
			body:     `{"service":"orders","replicas":"3"}`,
			wantCode: http.StatusBadRequest, wantMsg: "decode request body: json: cannot unmarshal string into Go struct field ScaleRequest.replicas of type int",
		},
		{
			name: "scale malformed", method: http.MethodPost, path: api.PathScale,
			body:     `{"service":`,
			wantCode: http.StatusBadRequest, wantMsg: "decode request body: unexpected EOF",
		},
		{
			name: "scale two values", method: http.MethodPost, path: api.PathScale,
			body:     `{"service":"orders","replicas":3}{"service":"users","replicas":1}`,
			wantCode: http.StatusBadRequest, wantMsg: "decode request body: more than one JSON value",
		},
		{
			name: "scale trailing garbage", method: http.MethodPost, path: api.PathScale,
			body:     `{"service":"orders","replicas":3} x`,
			wantCode: http.StatusBadRequest, wantMsg: "decode request body: invalid character 'x' looking for beginning of value",
		},
		{
			name: "scale trailing newline", method: http.MethodPost, path: api.PathScale,
			body:     "{\"service\":\"orders\",\"replicas\":3}\n",
			wantCode: http.StatusNoContent, wantCalls: []string{"scale orders 3"},
		},
		{
			name: "scale empty body", method: http.MethodPost, path: api.PathScale,
			wantCode: http.StatusBadRequest, wantMsg: "request body is empty",
		},
		{
			name: "scale no service", method: http.MethodPost, path: api.PathScale,
			body:     `{"replicas":3}`,
			wantCode: http.StatusBadRequest, wantMsg: "service is required",
		},
		{
			name: "scale negative", method: http.MethodPost, path: api.PathScale,
			body:     `{"service":"orders","replicas":-1}`,
			wantCode: http.StatusBadRequest, wantMsg: "replicas must not be negative, got -1",
		},
		{
			name: "scale body too large", method: http.MethodPost, path: api.PathScale,
			body:     `{"service":"` + strings.Repeat("a", maxRequestBody) + `","replicas":1}`,
			wantCode: http.StatusRequestEntityTooLarge, wantMsg: fmt.Sprintf("request body is larger than %d bytes", maxRequestBody),
		},
		{
			name: "restart one", method: http.MethodPost, path: api.PathRestart,
			body:     `{"service":"orders"}`,
			wantCode: http.StatusNoContent, wantCalls: []string{`restart "orders"`},
		},
		{
			name: "restart all", method: http.MethodPost, path: api.PathRestart,
			body:     `{}`,
			wantCode: http.StatusNoContent, wantCalls: []string{`restart ""`},
		},
		{
			name: "restart empty body means all", method: http.MethodPost, path: api.PathRestart,
			wantCode: http.StatusNoContent, wantCalls: []string{`restart ""`},
		},
		{
			name: "restart unknown field", method: http.MethodPost, path: api.PathRestart,
			body:     `{"services":["orders"]}`,
			wantCode: http.StatusBadRequest, wantMsg: `decode request body: json: unknown field "services"`,
		},
		{
			name: "spec", method: http.MethodPut, path: api.PathSpec,
			body:     `{"cell":"shop","gateway":{"port":8081}}`,
			wantCode: http.StatusNoContent, wantCalls: []string{`spec {"cell":"shop","gateway":{"port":8081}}`},
		},
		{
			name: "spec just under the limit", method: http.MethodPut, path: api.PathSpec,
			body:     `"` + strings.Repeat("a", maxSpecBody-2) + `"`,
			wantCode: http.StatusNoContent, wantCalls: []string{`spec "` + strings.Repeat("a", maxSpecBody-2) + `"`},
		},
		{
			name: "spec too large", method: http.MethodPut, path: api.PathSpec,
			body:     `"` + strings.Repeat("a", maxSpecBody) + `"`,
			wantCode: http.StatusRequestEntityTooLarge, wantMsg: "request body is larger than 4194304 bytes",
		},
		{
			name: "spec empty", method: http.MethodPut, path: api.PathSpec,
			wantCode: http.StatusBadRequest, wantMsg: "request body is empty: expected the cell spec as JSON",
		},
		{
			name: "spec not JSON", method: http.MethodPut, path: api.PathSpec,
			body:     "cell: shop\n",
			wantCode: http.StatusBadRequest, wantMsg: "request body is not valid JSON: expected the cell spec as JSON",
		},
		{
			name: "stop", method: http.MethodPost, path: api.PathStop,
			wantCode: http.StatusNoContent, wantCalls: []string{"stop"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cell := &fakeCell{}
			rec := serve(newTestServer(cell, NewEventBus(10)), tt.method, tt.path, tt.body, testToken)
			if rec.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %.200s", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantCode == http.StatusNoContent {
				if rec.Body.Len() != 0 {
					t.Errorf("204 with a body: %q", rec.Body)
				}
			} else if got := errorBody(t, rec); got != tt.wantMsg {
				t.Errorf("error = %q, want %q", got, tt.wantMsg)
			}
			if diff := cmp.Diff(tt.wantCalls, cell.Calls()); diff != "" {
				t.Errorf("cell calls mismatch (-want +got):\n%.2000s", diff)
			}
		})
	}
}

func TestServerCellErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantMsg  string
	}{
		{
			name:     "bad request",
			err:      BadRequest(errors.New("replicas 9 is outside the autoscale bounds 1-4")),
			wantCode: http.StatusBadRequest, wantMsg: "replicas 9 is outside the autoscale bounds 1-4",
		},
		{
			name:     "wrapped bad request",
			err:      fmt.Errorf("scale shop/orders: %w", BadRequest(errors.New("replicas 9 is outside the autoscale bounds 1-4"))),
			wantCode: http.StatusBadRequest, wantMsg: "scale shop/orders: replicas 9 is outside the autoscale bounds 1-4",
		},
		{
			name:     "not found",
			err:      NotFound(errors.New(`no service "nope" in cell shop`)),
			wantCode: http.StatusNotFound, wantMsg: `no service "nope" in cell shop`,
		},
		{
			name:     "other status",
			err:      &StatusError{Code: http.StatusConflict, Err: errors.New("a rolling update is in progress")},
			wantCode: http.StatusConflict, wantMsg: "a rolling update is in progress",
		},
		{
			name:     "status without an error",
			err:      &StatusError{Code: http.StatusServiceUnavailable},
			wantCode: http.StatusServiceUnavailable, wantMsg: "Service Unavailable",
		},
		{
			name:     "status out of range",
			err:      &StatusError{Code: 200, Err: errors.New("odd")},
			wantCode: http.StatusInternalServerError, wantMsg: "odd",
		},
		{
			name:     "plain error",
			err:      errors.New("docker: connection reset"),
			wantCode: http.StatusInternalServerError, wantMsg: "docker: connection reset",
		},
	}
	calls := []struct{ method, path, body string }{
		{http.MethodPost, api.PathScale, `{"service":"orders","replicas":9}`},
		{http.MethodPost, api.PathRestart, `{"service":"orders"}`},
		{http.MethodPut, api.PathSpec, `{}`},
		{http.MethodPost, api.PathStop, ``},
	}
	for _, tt := range tests {
		for _, c := range calls {
			t.Run(tt.name+c.path, func(t *testing.T) {
				srv := newTestServer(&fakeCell{err: tt.err}, NewEventBus(10))
				rec := serve(srv, c.method, c.path, c.body, testToken)
				if rec.Code != tt.wantCode {
					t.Fatalf("status = %d, want %d", rec.Code, tt.wantCode)
				}
				if got := errorBody(t, rec); got != tt.wantMsg {
					t.Errorf("error = %q, want %q", got, tt.wantMsg)
				}
			})
		}
	}
}

// readEvents decodes an NDJSON body, one event per line.
func readEvents(t *testing.T, body string) []api.Event {
	t.Helper()
	var out []api.Event
	for line := range strings.Lines(body) {
		var e api.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func TestServerEventsBacklog(t *testing.T) {
	bus := NewEventBus(10)
	for n := 1; n <= 3; n++ {
		bus.Publish(testEvent(n))
	}
	srv := newTestServer(&fakeCell{}, bus)
	for _, target := range []string{api.PathEvents, api.PathEvents + "?follow=0", api.PathEvents + "?follow=false"} {
		rec := serve(srv, http.MethodGet, target, "", "")
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d", target, rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("GET %s: Content-Type = %q, want application/x-ndjson", target, ct)
		}
		if diff := cmp.Diff(events(1, 3), readEvents(t, rec.Body.String())); diff != "" {
			t.Errorf("GET %s: events mismatch (-want +got):\n%s", target, diff)
		}
	}
	if n := bus.subscribers(); n != 0 {
		t.Errorf("a backlog read left %d subscribers", n)
	}
}

func TestServerEventsEmptyBacklog(t *testing.T) {
	rec := serve(newTestServer(&fakeCell{}, NewEventBus(10)), http.MethodGet, api.PathEvents, "", "")
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("GET events of an empty bus = %d %q, want 200 and no body", rec.Code, rec.Body)
	}
}

func TestServerEventsBadFollow(t *testing.T) {
	rec := serve(newTestServer(&fakeCell{}, NewEventBus(10)), http.MethodGet, api.PathEvents+"?follow=yes", "", "")
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", rec.Code)
	}
	if got, want := errorBody(t, rec), `follow must be a boolean, got "yes"`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

// TestServerEventsFollow runs the handler on a real connection: the
// backlog comes first, a later event arrives live, and when the client
// goes away the handler returns and unsubscribes.
func TestServerEventsFollow(t *testing.T) {
	bus := NewEventBus(10)
	bus.Publish(testEvent(1))
	ts := httptest.NewServer(newTestServer(&fakeCell{}, bus))
	defer ts.Close()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+api.PathEvents+"?follow=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q, want application/x-ndjson", ct)
	}
	lines := bufio.NewReader(resp.Body)
	next := func() api.Event {
		t.Helper()
		line, err := lines.ReadBytes('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		var e api.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		return e
	}
	if diff := cmp.Diff(testEvent(1), next()); diff != "" {
		t.Errorf("backlog event mismatch (-want +got):\n%s", diff)
	}
	// Each read returns only once the server has flushed the line, so
	// this also shows that events are flushed one by one.
	for n := 2; n <= 3; n++ {
		bus.Publish(testEvent(n))
		if diff := cmp.Diff(testEvent(n), next()); diff != "" {
			t.Errorf("live event mismatch (-want +got):\n%s", diff)
		}
	}

	cancel()
	// Close waits for every handler to return; the handler returns only
	// after the bus has dropped its subscription.
	ts.Close()
	if n := bus.subscribers(); n != 0 {
		t.Errorf("%d subscribers left after the client went away, want 0", n)
	}
}

// TestServerEventsFollowEndsOnBusClose shows that closing the bus ends
// follow streams, which is what lets a gateway shut down.
func TestServerEventsFollowEndsOnBusClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := NewEventBus(10)
		bus.Publish(testEvent(1))
		hc := &http.Client{Transport: pipeTransport{newTestServer(&fakeCell{}, bus)}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://gateway.test"+api.PathEvents+"?follow=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		done := make(chan string)
		go func() {
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Errorf("read stream: %v", err)
			}
			done <- string(b)
		}()
		bus.Publish(testEvent(2))
		synctest.Wait()
		bus.Close()
		if diff := cmp.Diff(events(1, 2), readEvents(t, <-done)); diff != "" {
			t.Errorf("events mismatch (-want +got):\n%s", diff)
		}
	})
}
