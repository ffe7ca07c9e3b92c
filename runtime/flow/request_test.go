package flow

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/orchestro/orchestro/cellspec"
)

func mustTemplate(t *testing.T, v any) *cellspec.Template {
	t.Helper()
	tp, errs := cellspec.CompileTemplate(v, nil)
	if len(errs) > 0 {
		t.Fatalf("compile %v: %v", v, errs[0])
	}
	return tp
}

func mustTemplates(t *testing.T, m map[string]any) map[string]*cellspec.Template {
	if m == nil {
		return nil
	}
	out := map[string]*cellspec.Template{}
	for k, v := range m {
		out[k] = mustTemplate(t, v)
	}
	return out
}

func TestBuildRequest(t *testing.T) {
	const inputTrace = "0af7651916cd43dd8448eb211c80319c"
	tests := []struct {
		name         string
		call         string
		headers      map[string]any
		query        map[string]any
		body         any
		compensation bool
		want         *Request // Traceparent is checked apart
		wantErr      string
	}{
		{
			name: "defaults",
			call: "GET svc /a",
			want: &Request{Method: "GET", Target: "svc", Path: "/a", Header: http.Header{
				"Idempotency-Key": {"f1-a"}, "X-Request-Id": {"req-1"},
			}},
		},
		{
			name: "compensation", call: "DELETE inventory /reservations/${{ a.body.id }}", compensation: true,
			want: &Request{Method: "DELETE", Target: "inventory", Path: "/reservations/r%2F1", Compensation: true, Header: http.Header{
				"Idempotency-Key": {"f1-a-compensate"}, "X-Request-Id": {"req-1"},
			}},
		},
		{
			name: "own Idempotency-Key, any case; X-Request-ID and traceparent are the engine's",
			call: "POST payments /charges",
			headers: map[string]any{
				"idempotency-key": "${{ flow.id }}-pay", "x-request-id": "mine", "traceparent": "mine", "X-User": `${{ input.headers["x-user"] }}`,
				"Accept": "${{ input.headers.accept }}",
			},
			want: &Request{Method: "POST", Target: "payments", Path: "/charges", Header: http.Header{
				"Idempotency-Key": {"f1-pay"}, "X-Request-Id": {"req-1"}, "X-User": {"u-42"}, "Accept": {"text/html, application/json"},
			}},
		},
		{
			name: "Idempotency-Key removed; empty headers left out",
			call: "POST svc /a", headers: map[string]any{"Idempotency-Key": "", "X-Empty": "${{ input.headers[\"x-missing\"] }}"},
			want: &Request{Method: "POST", Target: "svc", Path: "/a", Header: http.Header{"X-Request-Id": {"req-1"}}},
		},
		{
			name: "expression values escaped in the path, written text kept",
			call: `GET cell:users /discounts/${{ input.headers["x-user"] }}/v${{ 1 + 1 }}/${{ "a/b?c=d#e f" }}?x=1`,
			want: &Request{Method: "GET", Target: "cell:users", Path: "/discounts/u-42/v2/a%2Fb%3Fc=d%23e%20f?x=1", Header: http.Header{
				"Idempotency-Key": {"f1-a"}, "X-Request-Id": {"req-1"},
			}},
		},
		{
			name:    "empty path value",
			call:    "DELETE svc /reservations/${{ a.body.missing }}",
			wantErr: "path: expression ${{ a.body.missing }}: is empty in the call's path",
		},
		{
			name:    "dot-dot path value",
			call:    `GET svc /users/${{ ".." }}/admin`,
			wantErr: `path: expression ${{ ".." }}: is ".." in the call's path`,
		},
		{
			name: "query merged with the path's, encoded, lists repeated, empty left out",
			call: "GET svc /search?sort=asc",
			query: map[string]any{
				"q": "${{ path.order }} & more", "coupon": "${{ input.query.coupon }}", "n": "${{ [1, 2] }}",
				"none": "${{ input.query.missing }}", "a b": "c",
			},
			want: &Request{Method: "GET", Target: "svc", Path: "/search?sort=asc&a+b=c&coupon=SPRING&n=1&n=2&q=o-7+%26+more", Header: http.Header{
				"Idempotency-Key": {"f1-a"}, "X-Request-Id": {"req-1"},
			}},
		},
		{
			name: "query without one in the path",
			call: "GET svc /search", query: map[string]any{"q": "x"},
			want: &Request{Method: "GET", Target: "svc", Path: "/search?q=x", Header: http.Header{
				"Idempotency-Key": {"f1-a"}, "X-Request-Id": {"req-1"},
			}},
		},
		{
			name: "JSON body keeps types",
			call: "POST svc /a", body: map[string]any{"order": "${{ path.order }}", "items": "${{ input.body.items }}", "total": "${{ input.body.total }}"},
			want: &Request{Method: "POST", Target: "svc", Path: "/a", Body: []byte(`{"items":[{"qty":2,"sku":"A"}],"order":"o-7","total":120}`), Header: http.Header{
				"Idempotency-Key": {"f1-a"}, "X-Request-Id": {"req-1"}, "Content-Type": {"application/json"},
			}},
		},
		{
			name: "number body is JSON",
			call: "POST svc /a", body: "${{ input.body.total * 2 }}",
			want: &Request{Method: "POST", Target: "svc", Path: "/a", Body: []byte(`240`), Header: http.Header{
				"Idempotency-Key": {"f1-a"}, "X-Request-Id": {"req-1"}, "Content-Type": {"application/json"},
			}},
		},
		{
			name: "text body",
			call: "POST svc /a", body: "order ${{ path.order }}",
			want: &Request{Method: "POST", Target: "svc", Path: "/a", Body: []byte(`order o-7`), Header: http.Header{
				"Idempotency-Key": {"f1-a"}, "X-Request-Id": {"req-1"}, "Content-Type": {"text/plain; charset=utf-8"},
			}},
		},
		{
			name: "literal body, own Content-Type",
			call: "POST svc /a", body: map[string]any{"a": 1.0}, headers: map[string]any{"content-type": "application/vnd.x+json"},
			want: &Request{Method: "POST", Target: "svc", Path: "/a", Body: []byte(`{"a":1}`), Header: http.Header{
				"Idempotency-Key": {"f1-a"}, "X-Request-Id": {"req-1"}, "Content-Type": {"application/vnd.x+json"},
			}},
		},
		{
			name: "null body is no body",
			call: "POST svc /a", body: "${{ input.body.missing }}",
			want: &Request{Method: "POST", Target: "svc", Path: "/a", Header: http.Header{
				"Idempotency-Key": {"f1-a"}, "X-Request-Id": {"req-1"},
			}},
		},
		{
			name:    "header value with a line break",
			call:    "GET svc /a",
			headers: map[string]any{"X-Evil": "${{ \"a\\r\\nX-Admin: yes\" }}"},
			wantErr: `header X-Evil: value "a\r\nX-Admin: yes" holds a control character`,
		},
		{
			name:    "body expression error",
			call:    "POST svc /a",
			body:    map[string]any{"n": "${{ nope.n }}"},
			wantErr: "body: expression ${{ nope.n }}: cannot fetch n from <nil>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call, errs := cellspec.ParseCall(tt.call, nil)
			if len(errs) > 0 {
				t.Fatal(errs[0])
			}
			var body *cellspec.Template
			if tt.body != nil {
				body = mustTemplate(t, tt.body)
			}
			suffix := ""
			if tt.compensation {
				suffix = "-compensate"
			}
			plan := newCallPlan(call, mustTemplates(t, tt.headers), mustTemplates(t, tt.query), body, suffix)
			in := testInput()
			env := newEnv(in, in.ID, "place-order", t0, 1, envNeeds{input: true, path: true, flow: true})
			env["a"] = map[string]any{"body": map[string]any{"id": "r/1"}}
			id := &callIdentity{flowName: "place-order", flowID: "f1", requestID: "req-1", trace: newTraceContext(in.Traceparent), maxBody: 4096}

			got, err := buildRequest(env, &plan, id, "a", tt.compensation)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tp := got.Header.Get("Traceparent")
			if traceID, flags, ok := parseTraceparent(tp); !ok || traceID != inputTrace || flags != "01" || tp == in.Traceparent {
				t.Errorf("traceparent %q is not a child span of %q", tp, in.Traceparent)
			}
			got.Header.Del("Traceparent")
			want := *tt.want
			want.Flow, want.Step, want.MaxBody = "place-order", "a", 4096
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWithNewSpan(t *testing.T) {
	tc := newTraceContext("")
	req := &Request{Method: "GET", Header: http.Header{"Traceparent": {tc.child()}, "X-A": {"1"}}}
	next := withNewSpan(req, tc)
	a, b := req.Header.Get("Traceparent"), next.Header.Get("Traceparent")
	if a == b || a[:35] != b[:35] {
		t.Errorf("traceparents %q and %q: want the same trace, another span", a, b)
	}
	next.Header.Set("X-A", "2")
	if req.Header.Get("X-A") != "1" {
		t.Error("the next try's header is shared with the first's")
	}
}

func TestTraceContext(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		trace string // "" for a new trace
		flags string
	}{
		{name: "valid", in: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", trace: "0af7651916cd43dd8448eb211c80319c", flags: "01"},
		{name: "not sampled", in: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", trace: "0af7651916cd43dd8448eb211c80319c", flags: "00"},
		{name: "later version with more fields", in: "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what", trace: "0af7651916cd43dd8448eb211c80319c", flags: "01"},
		{name: "none", in: ""},
		{name: "version ff", in: "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{name: "version 00 too long", in: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x"},
		{name: "upper case", in: "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"},
		{name: "zero trace id", in: "00-00000000000000000000000000000000-b7ad6b7169203331-01"},
		{name: "zero parent id", in: "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"},
		{name: "short", in: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01"},
		{name: "bad separator", in: "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTraceContext(tt.in)
			a, b := tc.child(), tc.child()
			for _, tp := range []string{a, b} {
				traceID, flags, ok := parseTraceparent(tp)
				if !ok || len(tp) != 55 || !strings.HasPrefix(tp, "00-") {
					t.Fatalf("child %q is not a version 00 traceparent", tp)
				}
				if tt.trace != "" && (traceID != tt.trace || flags != tt.flags) {
					t.Errorf("child %q: want trace %s, flags %s", tp, tt.trace, tt.flags)
				}
			}
			if a[:35] != b[:35] || a[36:52] == b[36:52] {
				t.Errorf("children %q and %q: want one trace, two spans", a, b)
			}
			if tt.trace == "" && tc.flags != "01" {
				t.Errorf("new trace flags %q, want 01", tc.flags)
			}
		})
	}
}

func TestAppendQuery(t *testing.T) {
	tests := []struct{ path, query, want string }{
		{"/a", "", "/a"},
		{"/a", "b=1", "/a?b=1"},
		{"/a?", "b=1", "/a?b=1"},
		{"/a?x=0", "b=1", "/a?x=0&b=1"},
		{"/a?x=0", "", "/a?x=0"},
	}
	for _, tt := range tests {
		if got := appendQuery(tt.path, tt.query); got != tt.want {
			t.Errorf("appendQuery(%q, %q) = %q, want %q", tt.path, tt.query, got, tt.want)
		}
	}
}

func TestValidHeaderValue(t *testing.T) {
	for v, want := range map[string]bool{"": true, "a b\tc": true, "é": true, "a\r\nb": false, "a\nb": false, "a\x00": false, "a\x7f": false} {
		if got := validHeaderValue(v); got != want {
			t.Errorf("validHeaderValue(%q) = %v, want %v", v, got, want)
		}
	}
}
