package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// fakeAccessLog answers every read with its lines, and records the query.
type fakeAccessLog struct {
	lines []string
	got   chan api.AccessLogQuery
}

func (f *fakeAccessLog) Read(ctx context.Context, q api.AccessLogQuery, emit func([]byte) error) error {
	f.got <- q
	for _, l := range f.lines {
		if err := emit([]byte(l + "\n")); err != nil {
			return err
		}
	}
	if q.Follow {
		<-ctx.Done()
	}
	return nil
}

func newAccessLogServer(al AccessLog) *Server {
	s, err := NewServer(ServerConfig{Cell: &fakeCell{}, Events: NewEventBus(1), Token: testToken, AccessLog: al})
	if err != nil {
		panic(err)
	}
	return s
}

func TestServerAccessLog(t *testing.T) {
	since := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	al := &fakeAccessLog{lines: []string{`{"n":1}`, `{"n":2}`}, got: make(chan api.AccessLogQuery, 1)}
	ts := httptest.NewServer(newAccessLogServer(al))
	defer ts.Close()
	c := NewClient(ts.URL, testToken, ts.Client())

	var got []string
	q := api.AccessLogQuery{Tail: 10, Since: since}
	if err := c.AccessLog(context.Background(), q, func(l []byte) { got = append(got, string(l)) }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(al.lines, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(q, <-al.got); diff != "" {
		t.Errorf("query the log got (-sent +got):\n%s", diff)
	}

	// A follow stream sends lines as they come, and ends with ctx.
	ctx, cancel := context.WithCancel(context.Background())
	lines := make(chan string, 2)
	done := make(chan error, 1)
	go func() {
		done <- c.AccessLog(ctx, api.AccessLogQuery{Tail: -1, Follow: true}, func(l []byte) { lines <- string(l) })
	}()
	for _, want := range al.lines {
		if l := <-lines; l != want {
			t.Errorf("followed line %q, want %q", l, want)
		}
	}
	if q := <-al.got; !q.Follow || q.Tail != -1 {
		t.Errorf("follow query = %+v", q)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("a follow ended by its context: %v", err)
	}
}

func TestServerAccessLogRefusals(t *testing.T) {
	withLog := newAccessLogServer(&fakeAccessLog{got: make(chan api.AccessLogQuery, 1)})
	tests := []struct {
		name  string
		s     *Server
		query string
		token string
		code  int
		msg   string
	}{
		{"no token", withLog, "", "", http.StatusUnauthorized, "missing bearer token: this call needs the project token"},
		{"bad tail", withLog, "?tail=-3", testToken, http.StatusBadRequest, `tail must be a non-negative whole number, got "-3"`},
		{"bad since", withLog, "?since=yesterday", testToken, http.StatusBadRequest, `since must be an RFC 3339 time such as 2026-11-22T10:00:00Z, got "yesterday"`},
		{"bad follow", withLog, "?follow=maybe", testToken, http.StatusBadRequest, `follow must be a boolean, got "maybe"`},
		{"no file", newAccessLogServer(nil), "", testToken, http.StatusNotFound, ErrNoAccessLogFile.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(tt.s, http.MethodGet, api.PathAccessLog+tt.query, "", tt.token)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d", rec.Code, tt.code)
			}
			if msg := errorBody(t, rec); msg != tt.msg {
				t.Errorf("error %q, want %q", msg, tt.msg)
			}
		})
	}
}

// TestClientNoAccessLogFile: the 404 of a gateway without files, and of
// one older than the endpoint, both read as "no file".
func TestClientNoAccessLogFile(t *testing.T) {
	for _, s := range []http.Handler{
		newAccessLogServer(nil),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no such admin endpoint: %s", r.URL.Path))
		}),
	} {
		ts := httptest.NewServer(s)
		err := NewClient(ts.URL, testToken, ts.Client()).AccessLog(context.Background(), api.AccessLogQuery{Tail: -1}, func([]byte) {})
		ts.Close()
		if !IsNoAccessLogFile(err) {
			t.Errorf("IsNoAccessLogFile(%v) = false", err)
		}
	}
}
