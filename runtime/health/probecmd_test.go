package health

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// localPort starts an HTTP server on 127.0.0.1, where the probe looks, and
// returns its port.
func localPort(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

func TestProbeMain(t *testing.T) {
	var gotPath, gotQuery string
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	port := localPort(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			gotPath, gotQuery = r.URL.Path, r.URL.RawQuery
			w.WriteHeader(http.StatusNoContent)
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/sick":
			http.Error(w, "database down\n", http.StatusServiceUnavailable)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	_, closed, err := net.SplitHostPort(closedPort(t))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		code int
		want string // stderr, a substring; empty means no output at all
	}{
		{"http healthy", []string{"http", port, "/healthz"}, 0, ""},
		{"http path without slash", []string{"http", port, "healthz?full=1", "2s"}, 0, ""},
		{"http redirect is healthy", []string{"http", port, "/moved"}, 0, ""},
		{"http 503", []string{"http", port, "/sick"}, 1, "probe: GET http://127.0.0.1:" + port + "/sick: status 503 Service Unavailable: database down\n"},
		{"http 404", []string{"http", port, "/nothing"}, 1, "status 404 Not Found"},
		{"http timeout", []string{"http", port, "/slow", "150ms"}, 1, "timed out after 150ms"},
		{"http timeout in seconds", []string{"http", port, "/sick", "1"}, 1, "status 503"},
		{"http refused", []string{"http", closed, "/healthz"}, 1, "connection refused"},
		{"tcp open", []string{"tcp", port}, 0, ""},
		{"tcp open with timeout", []string{"tcp", port, "500ms"}, 0, ""},
		{"tcp refused", []string{"tcp", closed}, 1, "dial tcp 127.0.0.1:" + closed + ": connect: connection refused"},

		{"no arguments", nil, 1, "probe: no check given; usage: orchestro probe http PORT PATH [TIMEOUT]"},
		{"unknown kind", []string{"udp", "53"}, 1, `probe: unknown check "udp"; usage:`},
		{"http without path", []string{"http", port}, 1, "http takes 2 or 3 arguments, got 1"},
		{"tcp too many", []string{"tcp", port, "1s", "extra"}, 1, "tcp takes 1 or 2 arguments, got 3"},
		{"bad port", []string{"tcp", "http"}, 1, `port "http" is not a number from 1 to 65535`},
		{"port zero", []string{"tcp", "0"}, 1, `port "0" is not a number from 1 to 65535`},
		{"port too big", []string{"http", "70000", "/"}, 1, `port "70000" is not a number from 1 to 65535`},
		{"bad timeout", []string{"tcp", port, "soon"}, 1, `timeout "soon" is not a duration such as 2s or 500ms`},
		{"zero timeout", []string{"tcp", port, "0s"}, 1, `timeout "0s" must be positive`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			start := time.Now()
			code := ProbeMain(tt.args, &stderr)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d; stderr %q", code, tt.code, stderr.String())
			}
			got := stderr.String()
			if tt.want == "" {
				if got != "" {
					t.Errorf("stderr = %q, want nothing", got)
				}
			} else {
				if !strings.Contains(got, tt.want) {
					t.Errorf("stderr = %q, want it to contain %q", got, tt.want)
				}
				if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
					t.Errorf("stderr = %q, want exactly one line", got)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the probe took %s", d)
			}
		})
	}
	if gotPath != "/healthz" || gotQuery != "full=1" {
		t.Errorf("last healthy request was %s?%s, want /healthz?full=1", gotPath, gotQuery)
	}
}

func TestProbeMainDefaultTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	port := localPort(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	var stderr bytes.Buffer
	start := time.Now()
	if code := ProbeMain([]string{"http", port, "/"}, &stderr); code != 1 {
		t.Fatalf("exit code = %d, want 1", code)
	}
	took := time.Since(start)
	if !strings.Contains(stderr.String(), "timed out after 1s") || took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("a hanging server: %q after %s, want a timeout after the default 1s", stderr.String(), took)
	}
}
