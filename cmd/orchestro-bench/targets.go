package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// installHint is how to get the external tools on Debian and Ubuntu. The
// tool never installs anything itself.
const installHint = "apt-get install -y nginx haproxy wrk"

// tools are the external programs a run uses; empty when not needed.
type tools struct {
	wrk, nginx, haproxy string
}

// findTools locates wrk and the proxies the selected targets need. nginx
// and HAProxy live in /usr/sbin, which is not on every user's PATH.
func findTools(targets []string) (tools, error) {
	var t tools
	var missing []string
	look := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		missing = append(missing, name)
		return ""
	}
	t.wrk = look("wrk")
	for _, name := range targets {
		switch name {
		case targetNginx:
			t.nginx = look("nginx")
		case targetHAProxy:
			t.haproxy = look("haproxy")
		}
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("%s not found on PATH, in /usr/sbin or in /usr/local/sbin; install with: %s",
			strings.Join(missing, ", "), installHint)
	}
	return t, nil
}

// toolVersion runs a tool's version flag and returns the first line it
// prints (nginx prints to stderr, wrk exits 1 after its usage).
func toolVersion(ctx context.Context, bin string, arg string) string {
	if bin == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, arg).CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	// Drop the project URL and copyright HAProxy and wrk append.
	line, _, _ = strings.Cut(line, " - http")
	line, _, _ = strings.Cut(line, " Copyright")
	return strings.TrimSpace(line)
}

// child is a process the tool started and must stop.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stdin   *os.File      // closing it tells our own re-executed children to exit
	stdout  *bufio.Reader // nil unless the child's stdout was captured
	stdoutR *os.File
	done    chan struct{} // closed when the process has exited
	err     error         // the exit status, valid once done is closed
}

// startChild starts prog in its own process group with its stderr (and
// stdout, unless captured) in dir/<name>.log. Our own children watch their
// standard input and exit when it closes, which happens however the tool
// ends.
func startChild(dir, name string, captureStdout bool, prog string, args ...string) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer stdinR.Close()
	cmd := exec.Command(prog, args...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, logf, logf
	c := &child{name: name, cmd: cmd, logPath: logPath, stdin: stdinW, done: make(chan struct{})}
	var stdoutW *os.File
	if captureStdout {
		if c.stdoutR, stdoutW, err = os.Pipe(); err != nil {
			stdinW.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		c.stdout = bufio.NewReader(c.stdoutR)
		cmd.Stdout = stdoutW
	}
	err = cmd.Start()
	if stdoutW != nil {
		stdoutW.Close()
	}
	if err != nil {
		stdinW.Close()
		if c.stdoutR != nil {
			c.stdoutR.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// pid returns the child's process ID.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the child's log, for error messages.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	b = bytes.TrimSpace(b)
	lines := strings.Split(string(b), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return strings.Join(lines, "\n")
}

// exitError describes a child that ended before it should have.
func (c *child) exitError() error {
	status := "with status 0"
	if c.err != nil {
		status = c.err.Error()
	}
	return fmt.Errorf("%s exited unexpectedly (%s); its output:\n%s", c.name, status, c.logTail())
}

// readyLine waits for the "ready FIELD..." line a re-executed child prints
// once it serves, and returns the fields.
func (c *child) readyLine(timeout time.Duration) ([]string, error) {
	type line struct {
		s   string
		err error
	}
	ch := make(chan line, 1)
	// Ends when the line arrives or the pipe closes, at the latest when
	// stop closes it.
	go func() {
		s, err := c.stdout.ReadString('\n')
		ch <- line{s, err}
	}()
	select {
	case l := <-ch:
		f := strings.Fields(l.s)
		switch {
		case l.err != nil:
			// The child closed its stdout: it is exiting.
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
			}
			return nil, c.exitError()
		case len(f) < 1 || f[0] != "ready":
			return nil, fmt.Errorf("%s: unexpected output %q", c.name, l.s)
		}
		return f[1:], nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("%s not ready after %s; its output:\n%s", c.name, timeout, c.logTail())
	}
}

// stop ends the child and its process group: SIGTERM, then SIGKILL after
// a grace period. It is safe to call more than once.
func (c *child) stop() {
	if c.stdin != nil {
		_ = c.stdin.Close()
		c.stdin = nil
	}
	if !c.exited() {
		_ = signalGroup(c.pid(), syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = signalGroup(c.pid(), syscall.SIGKILL)
			<-c.done
		}
	}
	if c.stdoutR != nil {
		_ = c.stdoutR.Close()
		c.stdoutR = nil
	}
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on
// right now, for servers that cannot report the ephemeral port they got.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// waitListening waits until addr accepts connections, failing early when
// the child exits.
func waitListening(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if c.exited() {
			return c.exitError()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after %s; its output:\n%s", c.name, addr, timeout, c.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startListening starts a server whose configuration names its listen
// address: it picks a free port, writes the configuration and starts the
// program, trying again with another port if the first was taken in
// between.
func startListening(ctx context.Context, dir, name string, write func(addr string) ([]string, error), prog string) (*child, string, error) {
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			return nil, "", err
		}
		args, err := write(addr)
		if err != nil {
			return nil, "", fmt.Errorf("configure %s: %w", name, err)
		}
		c, err := startChild(dir, name, false, prog, args...)
		if err != nil {
			return nil, "", err
		}
		if lastErr = waitListening(ctx, c, addr, 10*time.Second); lastErr == nil {
			return c, addr, nil
		}
		c.stop()
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
	}
	return nil, "", fmt.Errorf("start %s: %w", name, lastErr)
}

// nginxKeepalive is the idle upstream connections each nginx worker keeps:
// at least the peak in flight per worker at the highest connection count
// measured by default, so nginx never closes and reopens upstream
// connections under load.
const nginxKeepalive = 256

// startNginx runs nginx in the foreground in front of the backends, with
// everything it writes under dir.
func startNginx(ctx context.Context, bin, dir string, backends []string) (*child, string, error) {
	dir = filepath.Join(dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("start nginx: %w", err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	return startListening(ctx, dir, "nginx", func(addr string) ([]string, error) {
		if err := os.WriteFile(conf, []byte(nginxConfig(dir, addr, backends)), 0o644); err != nil {
			return nil, err
		}
		return []string{"-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", conf, "-g", "daemon off;"}, nil
	}, bin)
}

// nginxConfig is a reverse proxy in the shape nginx users run in
// production: round robin over an upstream block with keep-alive
// connections, HTTP/1.1 upstream, no access log. keepalive_requests is
// raised on both sides so that nginx does not close connections every
// 1000 requests, which the gateway never does either.
func nginxConfig(dir, addr string, backends []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by orchestro-bench.
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;

    upstream backends {
`, dir)
	for _, a := range backends {
		fmt.Fprintf(&b, "        server %s;\n", a)
	}
	fmt.Fprintf(&b, `        keepalive %d;
        keepalive_requests 1000000;
    }

    server {
        listen %s;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, nginxKeepalive, addr)
	return b.String()
}

// startHAProxy runs HAProxy in the foreground (-db) in front of the
// backends.
func startHAProxy(ctx context.Context, bin, dir string, backends []string) (*child, string, error) {
	dir = filepath.Join(dir, "haproxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("start haproxy: %w", err)
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	return startListening(ctx, dir, "haproxy", func(addr string) ([]string, error) {
		if err := os.WriteFile(conf, []byte(haproxyConfig(addr, backends)), 0o644); err != nil {
			return nil, err
		}
		return []string{"-db", "-f", conf}, nil
	}, bin)
}

// haproxyThreads matches the gateway's GOMAXPROCS on the 2-core machines
// the reference figures come from.
const haproxyThreads = 2

// haproxyConfig is HAProxy in HTTP mode, round robin, reusing idle server
// connections across client connections, without logging.
func haproxyConfig(addr string, backends []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by orchestro-bench.
global
    nbthread %d
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend bench
    bind %s
    default_backend backends

backend backends
    balance roundrobin
`, haproxyThreads, addr)
	for i, a := range backends {
		fmt.Fprintf(&b, "    server backend%d %s\n", i+1, a)
	}
	return b.String()
}
