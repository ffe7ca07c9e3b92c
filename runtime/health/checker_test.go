package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/internal/testnet"
)

func TestNewChecker(t *testing.T) {
	ex := &fakeExecer{}
	tests := []struct {
		name   string
		health *cellspec.Health
		want   Checker
	}{
		{name: "nil", health: nil, want: nil},
		{name: "no check", health: &cellspec.Health{Retries: 3}, want: nil},
		{
			name:   "http",
			health: &cellspec.Health{HTTP: "/healthz", Timeout: cellspec.Duration(3 * time.Second)},
			want:   &HTTPChecker{URL: "http://10.1.2.3:8080/healthz", Timeout: 3 * time.Second},
		},
		{
			name:   "http path without a slash, default timeout",
			health: &cellspec.Health{HTTP: "ready?deep=1"},
			want:   &HTTPChecker{URL: "http://10.1.2.3:8080/ready?deep=1", Timeout: time.Second},
		},
		{
			name:   "tcp",
			health: &cellspec.Health{TCP: true, Timeout: cellspec.Duration(500 * time.Millisecond)},
			want:   &TCPChecker{Addr: "10.1.2.3:8080", Timeout: 500 * time.Millisecond},
		},
		{
			name:   "exec",
			health: &cellspec.Health{Exec: []string{"pg_isready", "-q"}},
			want:   &ExecChecker{Execer: ex, ContainerID: "c0ffee", Cmd: []string{"pg_isready", "-q"}, Timeout: time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewChecker(tt.health, "10.1.2.3:8080", "c0ffee", ex)
			// The Execer is compared by identity, not by content.
			opt := cmp.Comparer(func(a, b Execer) bool { return a == b })
			if diff := cmp.Diff(tt.want, got, opt); diff != "" {
				t.Errorf("NewChecker() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHTTPChecker(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /no-content", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "checking db\ndb down", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /fail-json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "{\n  \"status\": \"down\",\n  \"db\": \"unreachable\"\n}\n")
	})
	mux.HandleFunc("GET /fail-quietly", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) {
		// Following this would fail: nothing listens on port 1.
		http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusMovedPermanently)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	tests := []struct {
		path    string
		wantErr string // "" means healthy
	}{
		{path: "/ok"},
		{path: "/no-content"},
		{path: "/moved"},
		{path: "/fail", wantErr: "GET http://" + addr + "/fail: status 500 Internal Server Error: db down"},
		{path: "/fail-json", wantErr: "GET http://" + addr + "/fail-json: status 503 Service Unavailable: { \"status\": \"down\", \"db\": \"unreachable\" }"},
		{path: "/fail-quietly", wantErr: "GET http://" + addr + "/fail-quietly: status 503 Service Unavailable"},
		{path: "/missing", wantErr: "GET http://" + addr + "/missing: status 404 Not Found: 404 page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c := NewChecker(&cellspec.Health{HTTP: tt.path, Timeout: cellspec.Duration(5 * time.Second)}, addr, "", nil)
			checkErr(t, c.Check(t.Context()), tt.wantErr)
		})
	}
}

func TestHTTPCheckerTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first, so Close does not wait on the handler

	c := &HTTPChecker{URL: srv.URL + "/slow", Timeout: 50 * time.Millisecond}
	err := c.Check(t.Context())
	checkErr(t, err, "GET "+srv.URL+"/slow: timed out after 50ms")
}

func TestHTTPCheckerRefused(t *testing.T) {
	addr := closedPort(t)
	c := &HTTPChecker{URL: "http://" + addr + "/healthz", Timeout: 5 * time.Second}
	err := c.Check(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "GET http://"+addr+"/healthz: dial tcp") {
		t.Errorf("Check() = %v, want a dial error naming the URL", err)
	}
}

// Each check must open its own connection: a pooled connection could
// outlive the replica it was opened to.
func TestHTTPCheckerNoKeepAlive(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c := &HTTPChecker{URL: srv.URL, Timeout: 5 * time.Second}
	for range 3 {
		if err := c.Check(t.Context()); err != nil {
			t.Fatalf("Check() = %v", err)
		}
	}
	if got := conns.Load(); got != 3 {
		t.Errorf("3 checks opened %d connections, want 3", got)
	}
}

func TestTCPChecker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	t.Run("listening", func(t *testing.T) {
		c := NewChecker(&cellspec.Health{TCP: true}, ln.Addr().String(), "", nil)
		checkErr(t, c.Check(t.Context()), "")
	})
	t.Run("closed port", func(t *testing.T) {
		addr := closedPort(t)
		c := NewChecker(&cellspec.Health{TCP: true}, addr, "", nil)
		err := c.Check(t.Context())
		if err == nil || !strings.HasPrefix(err.Error(), "dial tcp "+addr+":") {
			t.Errorf("Check() = %v, want a dial error naming %s", err, addr)
		}
	})
}

func TestExecChecker(t *testing.T) {
	errDaemon := errors.New("daemon gone")
	tests := []struct {
		name    string
		code    int
		output  string
		err     error
		wantErr string
	}{
		{name: "exit 0", code: 0, output: "accepting connections\n"},
		{name: "exit 0 ignores output", code: 0, output: "warning: slow\n"},
		{
			name:    "non-zero exit names the last line",
			code:    2,
			output:  "checking\n  no response from db  \n\n",
			wantErr: "exec pg_isready -h 'my db': exit code 2: no response from db",
		},
		{name: "non-zero exit without output", code: 1, wantErr: "exec pg_isready -h 'my db': exit code 1"},
		{name: "exec failure", err: errDaemon, wantErr: "exec pg_isready -h 'my db': daemon gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := &fakeExecer{code: tt.code, output: tt.output, err: tt.err}
			cmd := []string{"pg_isready", "-h", "my db"}
			c := NewChecker(&cellspec.Health{Exec: cmd}, "", "c0ffee", ex)
			err := c.Check(t.Context())
			checkErr(t, err, tt.wantErr)
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("Check() = %v, does not wrap %v", err, tt.err)
			}
			want := []execCall{{containerID: "c0ffee", cmd: cmd}}
			if diff := cmp.Diff(want, ex.calls, cmp.AllowUnexported(execCall{})); diff != "" {
				t.Errorf("Exec calls mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExecCheckerLongLine(t *testing.T) {
	ex := &fakeExecer{code: 1, output: strings.Repeat("é", 150)}
	err := (&ExecChecker{Execer: ex, Cmd: []string{"check"}}).Check(t.Context())
	msg := strings.TrimPrefix(err.Error(), "exec check: exit code 1: ")
	if !strings.HasSuffix(msg, "…") || len(msg) > maxExcerpt+len("…") {
		t.Errorf("long output quoted as %q (%d bytes), want at most %d bytes and an ellipsis", msg, len(msg), maxExcerpt)
	}
}

func TestExecCheckerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &fakeExecer{block: true}
		c := NewChecker(&cellspec.Health{Exec: []string{"sleep", "60"}, Timeout: cellspec.Duration(3 * time.Second)}, "", "c0ffee", ex)
		start := time.Now()
		checkErr(t, c.Check(t.Context()), "exec sleep 60: timed out after 3s")
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("check took %s, want 3s", got)
		}
	})
}

func TestExecCheckerWithoutExecer(t *testing.T) {
	c := NewChecker(&cellspec.Health{Exec: []string{"true"}}, "", "c0ffee", nil)
	checkErr(t, c.Check(t.Context()), "exec true: no exec support")
}

type execCall struct {
	containerID string
	cmd         []string
}

// fakeExecer answers every Exec with fixed values, or blocks until the
// context is done.
type fakeExecer struct {
	code   int
	output string
	err    error
	block  bool
	calls  []execCall
}

func (f *fakeExecer) Exec(ctx context.Context, containerID string, cmd []string) (int, string, error) {
	f.calls = append(f.calls, execCall{containerID: containerID, cmd: cmd})
	if f.block {
		<-ctx.Done()
		return -1, "", ctx.Err()
	}
	return f.code, f.output, f.err
}

// closedPort returns a 127.0.0.1 address that refuses connections until t
// ends (see testnet.RefusedAddr).
func closedPort(t *testing.T) string { return testnet.RefusedAddr(t) }

// checkErr fails t unless err's message is want, or err is nil when want
// is empty.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("Check() = %v, want healthy", err)
	case want != "" && err == nil:
		t.Errorf("Check() = nil, want %q", want)
	case want != "" && err.Error() != want:
		t.Errorf("Check() = %q, want %q", err, want)
	}
}
