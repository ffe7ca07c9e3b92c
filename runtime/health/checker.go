package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// Checker performs one health check. It returns nil when the target is
// healthy and otherwise an error whose message says why, for events and
// the dashboard. It must return promptly once ctx is done.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckerFunc adapts a function to the Checker interface.
type CheckerFunc func(ctx context.Context) error

// Check calls f(ctx).
func (f CheckerFunc) Check(ctx context.Context) error { return f(ctx) }

// Execer runs a command inside a running container. The controller
// implements it with the Docker exec API; the package declares it so that
// health depends on no Docker client.
//
// Exec returns the command's exit code and its combined output. err is for
// a failure to run the command at all, not for a non-zero exit.
type Execer interface {
	Exec(ctx context.Context, containerID string, cmd []string) (exitCode int, output string, err error)
}

// NewChecker returns the checker for the health check h of a replica.
// addr is the replica's host:port (as built by net.JoinHostPort) for HTTP
// and TCP checks; containerID and ex serve exec checks. Each checker is
// bounded by h's timeout. An exec check with a nil ex fails every time,
// saying so, rather than passing unchecked. NewChecker returns nil when h is nil or names no
// check: such a replica has no checker, and its Tracker stays in StateNone.
func NewChecker(h *cellspec.Health, addr string, containerID string, ex Execer) Checker {
	if h == nil {
		return nil
	}
	timeout := timeoutOf(h)
	switch h.Kind() {
	case "http":
		path := h.HTTP
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		return &HTTPChecker{URL: "http://" + addr + path, Timeout: timeout}
	case "tcp":
		return &TCPChecker{Addr: addr, Timeout: timeout}
	case "exec":
		return &ExecChecker{Execer: ex, ContainerID: containerID, Cmd: h.Exec, Timeout: timeout}
	}
	return nil
}

// probeClient is shared by every HTTP check that brings no client of its
// own. Keep-alives are off: replicas come and go and a new one may reuse an
// old one's address, so each check opens a fresh connection, which is also
// what proves the replica accepts connections, and no pool of idle
// connections grows with the number of replicas. Its settings never change
// after creation.
var probeClient = &http.Client{
	Transport: &http.Transport{
		// Replica addresses are on the cell network; an HTTP_PROXY from
		// the environment must not be used to reach them.
		Proxy:                  nil,
		DialContext:            (&net.Dialer{}).DialContext,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	},
	// A redirect is a healthy answer in itself; following it could probe
	// some other server.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// HTTPChecker passes when a GET of URL answers with a 2xx or 3xx status.
// Redirects are not followed.
type HTTPChecker struct {
	URL string
	// Timeout bounds the whole request; zero means only ctx bounds it.
	Timeout time.Duration
	// Client sends the request; nil means a shared client without
	// keep-alives.
	Client *http.Client
}

// maxExcerpt bounds how much of a failing response's body, or of a failing
// command's output, is quoted in an error.
const maxExcerpt = 200

// Check sends one GET request.
func (c *HTTPChecker) Check(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", c.URL, err)
	}
	req.Header.Set("User-Agent", "orchestro-health")
	client := c.Client
	if client == nil {
		client = probeClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("GET %s: %s", c.URL, timedOut(c.Timeout))
		}
		return unwrapURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		// Drain a little so the server does not see a reset mid-write.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if line := bodyExcerpt(string(body)); line != "" {
		return fmt.Errorf("GET %s: status %s: %s", c.URL, resp.Status, line)
	}
	return fmt.Errorf("GET %s: status %s", c.URL, resp.Status)
}

// unwrapURLError turns the client's `Get "url": cause` into the same
// `GET url: cause` shape as the other messages.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("GET %s: %w", ue.URL, ue.Err)
	}
	return err
}

// TCPChecker passes when a TCP connection to Addr can be opened.
type TCPChecker struct {
	Addr string
	// Timeout bounds the dial; zero means only ctx bounds it.
	Timeout time.Duration
}

// Check dials Addr once and closes the connection at once.
func (c *TCPChecker) Check(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx, c.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("dial tcp %s: %s", c.Addr, timedOut(c.Timeout))
		}
		// The dialer's error already reads "dial tcp addr: cause".
		return err
	}
	return conn.Close()
}

// ExecChecker passes when Cmd, run inside the container, exits with 0.
type ExecChecker struct {
	Execer      Execer
	ContainerID string
	Cmd         []string
	// Timeout bounds the run; zero means only ctx bounds it. Whether the
	// command is killed inside the container when it expires is up to the
	// Execer.
	Timeout time.Duration
}

// Check runs Cmd once. A non-zero exit is reported with the last line of
// the command's output.
func (c *ExecChecker) Check(ctx context.Context) error {
	if c.Execer == nil {
		return fmt.Errorf("exec %s: no exec support", shellQuote(c.Cmd))
	}
	ctx, cancel := withTimeout(ctx, c.Timeout)
	defer cancel()
	code, out, err := c.Execer.Exec(ctx, c.ContainerID, c.Cmd)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("exec %s: %s", shellQuote(c.Cmd), timedOut(c.Timeout))
		}
		return fmt.Errorf("exec %s: %w", shellQuote(c.Cmd), err)
	}
	if code == 0 {
		return nil
	}
	if line := lastLine(out); line != "" {
		return fmt.Errorf("exec %s: exit code %d: %s", shellQuote(c.Cmd), code, line)
	}
	return fmt.Errorf("exec %s: exit code %d", shellQuote(c.Cmd), code)
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func timedOut(d time.Duration) string {
	if d <= 0 {
		return "timed out"
	}
	return "timed out after " + d.String()
}

// lastLine returns the last non-blank line of s, trimmed and cut to
// maxExcerpt bytes: the line a failing check usually ends with is the
// one that says why.
// bodyExcerpt quotes a failing answer's body: a JSON one whole, on one
// line (its last line alone is a lone brace), else its last line.
func bodyExcerpt(s string) string {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "[") {
		return lastLine(s)
	}
	one := strings.Join(strings.Fields(t), " ")
	if len(one) > maxExcerpt {
		one = strings.ToValidUTF8(one[:maxExcerpt], "") + "…"
	}
	return one
}

func lastLine(s string) string {
	var last string
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0 && last == ""; i-- {
		last = strings.TrimSpace(lines[i])
	}
	if len(last) > maxExcerpt {
		last = strings.ToValidUTF8(last[:maxExcerpt], "") + "…"
	}
	return last
}

// shellQuote renders a command for messages, quoting only the words that
// need it.
func shellQuote(cmd []string) string {
	words := make([]string, len(cmd))
	for i, w := range cmd {
		if w == "" || strings.ContainsAny(w, " \t\n'\"\\$`") {
			w = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		words[i] = w
	}
	return strings.Join(words, " ")
}
