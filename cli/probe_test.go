package cli

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestProbeCommand runs the hidden probe command through the whole command
// line: its exit code passes through, it prints one line only when the
// check fails, and it never reads a spec or reaches the engine.
func TestProbeCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "not here", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr; empty: stderr must be empty
	}{
		{"healthy", []string{"probe", "http", port, "/healthz", "2s"}, 0, ""},
		{"tcp", []string{"probe", "tcp", port}, 0, ""},
		{"unhealthy", []string{"probe", "http", port, "/other"}, 1, "probe: GET http://127.0.0.1:" + port + "/other: status 503 Service Unavailable: not here\n"},
		{"bad arguments exit 1, not 2", []string{"probe", "http"}, 1, "probe: http takes 2 or 3 arguments, got 0"},
		{"global flag before the verb", []string{"--no-color", "probe", "tcp", port}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No spec in the directory: the probe must not look for one.
			h := newHarness(t, map[string]string{})
			if code := h.run(t.Context(), tt.args...); code != tt.code {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", code, tt.code, h.errOut)
			}
			got := h.errOut.String()
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("stderr = %q, want %q", got, tt.want)
			}
			if strings.Count(got, "\n") > 1 {
				t.Errorf("stderr has more than one line: %q", got)
			}
			if h.out.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", h.out)
			}
			h.wantCalls()
		})
	}
}

// TestProbeCommandHidden: the probe is for containers, not for users.
func TestProbeCommandHidden(t *testing.T) {
	h := newHarness(t, nil)
	if code := h.run(t.Context(), "--help"); code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	if strings.Contains(h.out.String(), "probe") {
		t.Errorf("--help lists the hidden probe command:\n%s", h.out)
	}
}
