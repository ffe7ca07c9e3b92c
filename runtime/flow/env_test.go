package flow

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseBody(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		want        any
	}{
		{name: "empty", contentType: "application/json", body: "", want: nil},
		{name: "JSON object", contentType: "application/json; charset=utf-8", body: `{"id": "r-1", "n": 2, "f": 1.5, "ok": true, "l": [1, "a", null]}`,
			want: map[string]any{"id": "r-1", "n": 2, "f": 1.5, "ok": true, "l": []any{1, "a", nil}}},
		{name: "+json", contentType: "application/problem+json", body: `{"status": 409}`, want: map[string]any{"status": 409}},
		{name: "JSON scalar with a JSON type", contentType: "application/json", body: `"text"`, want: "text"},
		{name: "looks like JSON, no type", body: " \n[1, 2]", want: []any{1, 2}},
		{name: "looks like JSON, text type", contentType: "text/plain", body: `{"a": 1}`, want: map[string]any{"a": 1}},
		{name: "number without a JSON type is text", body: `42`, want: "42"},
		{name: "text", contentType: "text/plain", body: "hello", want: "hello"},
		{name: "invalid JSON is text", contentType: "application/json", body: `{"a": `, want: `{"a": `},
		{name: "trailing data is text", contentType: "application/json", body: `{"a": 1} x`, want: `{"a": 1} x`},
		{name: "two values are text", body: `{} {}`, want: `{} {}`},
		{name: "big integers keep their digits", contentType: "application/json", body: `{"id": 1234567890123456789, "huge": 123456789012345678901234567890}`,
			want: map[string]any{"id": 1234567890123456789, "huge": json.Number("123456789012345678901234567890")}},
		{name: "integral numbers are ints", contentType: "application/json", body: `[1e3, 2.0, -0.5, 1e300]`, want: []any{1000, 2, -0.5, 1e300}},
		{name: "integral numbers are ints, exact way", contentType: "application/json", body: `[1e3, 2.0, -0.5, 1e300, 12345678901234567]`,
			want: []any{1000, 2, -0.5, 1e300, 12345678901234567}},
		{name: "out of float64's range", contentType: "application/json", body: `[1e400]`, want: []any{json.Number("1e400")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parseBody(tt.contentType, []byte(tt.body))); diff != "" {
				t.Errorf("parseBody (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewEnv(t *testing.T) {
	in := testInput()
	in.Header.Add("X-User", "u-43")
	env := newEnv(in, "f1", "place-order", t0.Add(1500*time.Millisecond), 3, envNeeds{input: true, path: true, flow: true})
	want := map[string]any{
		"input": map[string]any{
			"method": "POST",
			"path":   "/checkout/o-7",
			"query":  map[string]any{"coupon": "SPRING"},
			"headers": map[string]any{
				"content-type": "application/json",
				"x-user":       "u-42, u-43",
				"accept":       "text/html, application/json",
			},
			"body": map[string]any{"items": []any{map[string]any{"sku": "A", "qty": 2}}, "total": 120},
		},
		"path": map[string]any{"order": "o-7"},
		"flow": map[string]any{"id": "f1", "name": "place-order", "started": "2026-03-01T12:00:01.5Z"},
	}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

func TestStepEnv(t *testing.T) {
	tests := []struct {
		name string
		run  stepRun
		want map[string]any
	}{
		{
			name: "succeeded",
			run: stepRun{state: stateSucceeded, status: 201, tries: 2, body: map[string]any{"id": "r-1"},
				header:  http.Header{"Location": {"/r/1"}, "Set-Cookie": {"a=1", "b=2"}},
				started: t0, took: 1234 * time.Millisecond},
			want: map[string]any{"status": 201, "ok": true, "error": "", "tries": 2, "duration_ms": int64(1234),
				"body": map[string]any{"id": "r-1"}, "headers": map[string]any{"location": "/r/1", "set-cookie": "a=1, b=2"}},
		},
		{
			name: "skipped",
			run:  stepRun{state: stateSkipped, started: t0},
			want: map[string]any{"status": 0, "ok": false, "error": "", "tries": 0, "duration_ms": int64(0), "body": nil, "headers": map[string]any{}},
		},
		{
			name: "failed",
			run:  stepRun{state: stateFailed, status: 500, tries: 1, err: errors.New("answered 500, expected 2xx"), body: map[string]any{"percent": 0}},
			want: map[string]any{"status": 500, "ok": false, "error": "answered 500, expected 2xx", "tries": 1, "duration_ms": int64(0),
				"body": map[string]any{"percent": 0}, "headers": map[string]any{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, stepEnv(&tt.run)); diff != "" {
				t.Errorf("stepEnv (-want +got):\n%s", diff)
			}
		})
	}
}
