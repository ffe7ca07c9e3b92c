//go:build unix

package main

// Helpers of the gateway-behaviour tests (gw_e2e_test.go): a bounded load
// generator that classifies every failed request, and small readers of
// what the gateways expose (replica addresses, the admin port, access
// logs, events). The harness itself (the binary, the engine client, the
// project and its cleanup) is in e2e_helpers_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

// labelAdminPort names, on a gateway container, the container port of its
// admin API.
const labelAdminPort = "io.orchestro.admin-port"

// Bounds of every load a test starts: whatever the test does, a load never
// runs longer or sends more than this.
const (
	gwLoadMaxDuration = 90 * time.Second
	gwLoadMaxRequests = 60000
	// gwLoadPace is each client's pause between two requests: it keeps the
	// load steady and modest (a few hundred requests per second).
	gwLoadPace = 5 * time.Millisecond
	// gwMaxExamples is how many failures of each class a load keeps to
	// show in a test failure.
	gwMaxExamples = 5
)

// gwSample is one successful answer: when it arrived and which replica
// (the echo service's hostname, its container name) sent it.
type gwSample struct {
	at   time.Time
	host string
}

// gwLoad is steady, bounded load on one URL: a fixed number of clients,
// each sending GETs one after another until the load is stopped, its
// duration is up or the request budget is spent.
type gwLoad struct {
	url     string
	clients int
	start   time.Time
	stopc   chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	hc      *http.Client

	mu       sync.Mutex
	end      time.Time
	requests int
	ok       int
	conn     int
	status5  int
	other    int
	examples map[string][]string
	samples  []gwSample
}

// gwLoadResult is what a load saw.
type gwLoadResult struct {
	Clients  int
	Duration time.Duration
	Requests int
	OK       int
	// Failed requests by class: no answer (connection refused, reset,
	// timeout), a 5xx answer, and anything else (another non-2xx status,
	// or a 2xx whose body is not the service's JSON).
	ConnErrors int
	Status5xx  int
	Other      int
	// Examples holds the first failures of each class, with their time
	// relative to the start of the load.
	Examples map[string][]string
	Samples  []gwSample
}

// Failed counts the failed requests of every class.
func (r gwLoadResult) Failed() int { return r.ConnErrors + r.Status5xx + r.Other }

func (r gwLoadResult) String() string {
	rate := 0.0
	if r.Duration > 0 {
		rate = float64(r.Requests) / r.Duration.Seconds()
	}
	return fmt.Sprintf("%d clients for %s: %d requests (%.0f/s), %d ok, %d failed (connection error %d, 5xx %d, other %d)",
		r.Clients, r.Duration.Round(10*time.Millisecond), r.Requests, rate, r.OK, r.Failed(), r.ConnErrors, r.Status5xx, r.Other)
}

// failures describes the example failures, one per line.
func (r gwLoadResult) failures() string {
	var lines []string
	for _, class := range []string{"connection error", "5xx", "other"} {
		for _, e := range r.Examples[class] {
			lines = append(lines, class+": "+e)
		}
	}
	return strings.Join(lines, "\n  ")
}

// byHost counts the answers of each replica among the samples taken in
// [from, to); a zero bound is open.
func (r gwLoadResult) byHost(from, to time.Time) map[string]int {
	out := map[string]int{}
	for _, s := range r.Samples {
		if (!from.IsZero() && s.at.Before(from)) || (!to.IsZero() && !s.at.Before(to)) {
			continue
		}
		out[s.host]++
	}
	return out
}

// gwHostsLine renders byHost as "name=count ..." sorted by name.
func gwHostsLine(counts map[string]int) string {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", n, counts[n]))
	}
	return strings.Join(parts, " ")
}

// gwStartLoad starts clients concurrent clients sending GETs to url for at
// most d (and never more than gwLoadMaxDuration or gwLoadMaxRequests). The
// test's cleanup stops it if the test does not.
func gwStartLoad(t *testing.T, url string, clients int, d time.Duration) *gwLoad {
	t.Helper()
	d = min(d, gwLoadMaxDuration)
	l := &gwLoad{
		url:      url,
		clients:  clients,
		start:    time.Now(),
		stopc:    make(chan struct{}),
		examples: map[string][]string{},
		// Keep-alive connections to the gateway, as a real client keeps
		// them; the gateway is never restarted under this load.
		hc: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: clients, IdleConnTimeout: 30 * time.Second},
		},
	}
	deadline := l.start.Add(d)
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.client(deadline)
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *gwLoad) client(deadline time.Time) {
	for time.Now().Before(deadline) {
		select {
		case <-l.stopc:
			return
		default:
		}
		if !l.one() {
			return
		}
		select {
		case <-l.stopc:
			return
		case <-time.After(gwLoadPace):
		}
	}
}

// one sends one request and records its outcome; it returns false when
// the request budget is spent.
func (l *gwLoad) one() bool {
	l.mu.Lock()
	if l.requests >= gwLoadMaxRequests {
		l.mu.Unlock()
		return false
	}
	l.requests++
	l.mu.Unlock()

	sent := time.Now()
	class, detail, host := l.get()
	at := time.Now()

	l.mu.Lock()
	defer l.mu.Unlock()
	switch class {
	case "":
		l.ok++
		l.samples = append(l.samples, gwSample{at: at, host: host})
		return true
	case "connection error":
		l.conn++
	case "5xx":
		l.status5++
	default:
		l.other++
	}
	if len(l.examples[class]) < gwMaxExamples {
		l.examples[class] = append(l.examples[class],
			fmt.Sprintf("at +%s: %s", sent.Sub(l.start).Round(time.Millisecond), detail))
	}
	return true
}

// get sends one GET and classifies it: "" for a 2xx carrying the echo
// service's JSON, else the failure class and what happened.
func (l *gwLoad) get() (class, detail, host string) {
	resp, err := l.hc.Get(l.url)
	if err != nil {
		return "connection error", err.Error(), ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case err != nil:
		return "connection error", fmt.Sprintf("status %d, read body: %v", resp.StatusCode, err), ""
	case resp.StatusCode >= 500:
		return "5xx", fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body))), ""
	case resp.StatusCode/100 != 2:
		return "other", fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body))), ""
	}
	var r struct {
		Hostname string `json:"hostname"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Hostname == "" {
		return "other", fmt.Sprintf("status %d, not the service's JSON: %q", resp.StatusCode, body), ""
	}
	return "", "", r.Hostname
}

// stop ends the load now and returns what it saw.
func (l *gwLoad) stop() gwLoadResult {
	l.once.Do(func() {
		close(l.stopc)
		l.wg.Wait()
		l.hc.CloseIdleConnections()
		l.mu.Lock()
		l.end = time.Now()
		l.mu.Unlock()
	})
	return l.result()
}

// wait lets the load run its course and returns what it saw.
func (l *gwLoad) wait() gwLoadResult {
	l.wg.Wait()
	return l.stop()
}

// result is what the load saw so far, or in all once it has stopped.
func (l *gwLoad) result() gwLoadResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.end
	if end.IsZero() {
		end = time.Now()
	}
	ex := map[string][]string{}
	for k, v := range l.examples {
		ex[k] = append([]string(nil), v...)
	}
	return gwLoadResult{
		Clients: l.clients, Duration: end.Sub(l.start),
		Requests: l.requests, OK: l.ok, ConnErrors: l.conn, Status5xx: l.status5, Other: l.other,
		Examples: ex, Samples: append([]gwSample(nil), l.samples...),
	}
}

// gwCheckNoFailures reports the load and fails the test when any request
// failed.
func gwCheckNoFailures(t *testing.T, what string, r gwLoadResult) {
	t.Helper()
	t.Logf("load during %s: %s", what, r)
	if r.Failed() > 0 {
		t.Errorf("%d requests failed during %s, want 0:\n  %s", r.Failed(), what, r.failures())
	}
	if r.OK == 0 {
		t.Errorf("no request succeeded during %s: the load proves nothing", what)
	}
}

// gwDemoDir is the demo project of the repository.
func gwDemoDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// echoCellFile writes spec, a cell file in which ECHO_DIR stands for the
// demo's echo service, into a temporary directory and returns its path.
func echoCellFile(t *testing.T, spec string) string {
	t.Helper()
	spec = strings.ReplaceAll(spec, "ECHO_DIR", filepath.Join(gwDemoDir(t), "services", "echo"))
	file := filepath.Join(t.TempDir(), "cell.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// gwChangedDemo writes a copy of the demo project whose build paths point
// back at the repository's services and whose shop/catalog has one more
// environment variable, name=value, and returns its directory.
func gwChangedDemo(t *testing.T, name, value string) string {
	t.Helper()
	src := gwDemoDir(t)
	dst := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dst, "cells"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(src, "orchestro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "orchestro.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cells, err := filepath.Glob(filepath.Join(src, "cells", "*.yaml"))
	if err != nil || len(cells) == 0 {
		t.Fatalf("demo cells: %v (%d files)", err, len(cells))
	}
	services := filepath.Join(src, "services") + "/"
	for _, f := range cells {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(data), "../services/", services)
		if filepath.Base(f) == "shop.yaml" {
			const anchor = "      SERVICE_NAME: catalog\n"
			if strings.Count(s, anchor) != 1 {
				t.Fatalf("shop.yaml has no single %q line to add the variable after", strings.TrimSpace(anchor))
			}
			s = strings.Replace(s, anchor, fmt.Sprintf("%s      %s: %q\n", anchor, name, value), 1)
		}
		if err := os.WriteFile(filepath.Join(dst, "cells", filepath.Base(f)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// gwReplicas lists the replica containers of one service, all states.
func gwReplicas(t *testing.T, cli *client.Client, p *project, cell, service string) []container.Summary {
	t.Helper()
	list := listContainers(t, cli, p.name, labelRole+"=replica", labelCell+"="+cell, labelService+"="+service)
	sort.Slice(list, func(i, j int) bool { return containerName(list[i]) < containerName(list[j]) })
	return list
}

// gwAddress is a container's IP address on its cell's network.
func gwAddress(t *testing.T, c container.Summary, p *project, cell string) string {
	t.Helper()
	if c.NetworkSettings != nil {
		if n := c.NetworkSettings.Networks[p.name+"_"+cell]; n != nil && n.IPAddress != "" {
			return n.IPAddress
		}
	}
	t.Fatalf("container %s has no address on network %s_%s", containerName(c), p.name, cell)
	return ""
}

// gwGateway inspects the gateway container of a cell.
func gwGateway(t *testing.T, cli *client.Client, p *project, cell string) container.InspectResponse {
	t.Helper()
	list := listContainers(t, cli, p.name, labelRole+"=gateway", labelCell+"="+cell)
	if len(list) != 1 {
		t.Fatalf("want one gateway container of cell %s, have %d", cell, len(list))
	}
	ins, err := cli.ContainerInspect(context.Background(), list[0].ID)
	if err != nil {
		t.Fatalf("inspect the gateway of %s: %v", cell, err)
	}
	return ins
}

// gwAdminURL finds a cell's admin API on the host: the gateway container
// names its admin container port in a label, and the engine knows which
// host port that port is published on.
func gwAdminURL(t *testing.T, cli *client.Client, p *project, cell string) string {
	t.Helper()
	ins := gwGateway(t, cli, p, cell)
	port := ins.Config.Labels[labelAdminPort]
	if port == "" {
		t.Fatalf("the gateway of %s has no %s label", cell, labelAdminPort)
	}
	var bindings []nat.PortBinding
	if ins.NetworkSettings != nil {
		bindings = ins.NetworkSettings.Ports[nat.Port(port+"/tcp")]
	}
	if len(bindings) == 0 {
		t.Fatalf("the admin port %s of the gateway of %s is not published", port, cell)
	}
	b := bindings[0]
	if b.HostIP != "127.0.0.1" {
		t.Errorf("the admin port of the gateway of %s is published on %s, want 127.0.0.1 only", cell, b.HostIP)
	}
	return "http://" + net.JoinHostPort("127.0.0.1", b.HostPort)
}

// gwSend sends one request and returns its status, headers and body.
func gwSend(method, url string, hdr http.Header, body io.Reader) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, resp.Header, data, err
}

// gwEcho is the echo service's answer, and the caller service's answer
// wrapped around its upstream's.
type gwEcho struct {
	Service        string            `json:"service"`
	Hostname       string            `json:"hostname"`
	Path           string            `json:"path"`
	Headers        map[string]string `json:"headers"`
	UpstreamStatus int               `json:"upstream_status"`
	Upstream       json.RawMessage   `json:"upstream"`
}

// upstream decodes the nested answer of a caller service.
func (e gwEcho) upstream() (gwEcho, error) {
	var u gwEcho
	if len(e.Upstream) == 0 {
		return u, errors.New("no upstream answer")
	}
	err := json.Unmarshal(e.Upstream, &u)
	return u, err
}

// gwAccessLine is one access log line of a gateway, with the raw fields
// kept to check their presence and types.
type gwAccessLine struct {
	raw    string
	fields map[string]any
}

func (l gwAccessLine) str(k string) string {
	s, _ := l.fields[k].(string)
	return s
}

func (l gwAccessLine) num(k string) (float64, bool) {
	n, ok := l.fields[k].(float64)
	return n, ok
}

// gwGatewayLog runs `logs CELL/gateway` and returns the access log lines
// (JSON objects with a request_id) and every other line.
func gwGatewayLog(t *testing.T, p *project, cell string) (access []gwAccessLine, other []string) {
	t.Helper()
	stdout, stderr, code := p.run(t, "logs", cell+"/gateway")
	if code != 0 {
		t.Fatalf("logs %s/gateway exited %d:\n%s", cell, code, stderr)
	}
	for _, line := range strings.Split(strings.TrimRight(stdout, "\n"), "\n") {
		if line == "" {
			continue
		}
		// "shop/gateway │ {...}": the prefix is padded, the text follows
		// the first bar.
		_, text, ok := strings.Cut(line, "│ ")
		if !ok {
			other = append(other, line)
			continue
		}
		var fields map[string]any
		if json.Unmarshal([]byte(text), &fields) != nil {
			other = append(other, line)
			continue
		}
		if _, ok := fields["request_id"]; !ok {
			other = append(other, line)
			continue
		}
		access = append(access, gwAccessLine{raw: text, fields: fields})
	}
	return access, other
}

// gwEvents returns the controller events of one service since a time, as
// "time service-replica type: message" lines, for the test's report.
func gwEvents(t *testing.T, p *project, cell, service string, since time.Time) []string {
	t.Helper()
	stdout, _, code := p.run(t, "events", "--json")
	if code != 0 {
		return nil
	}
	var out []string
	for _, line := range strings.Split(stdout, "\n") {
		var e struct {
			Time    time.Time `json:"time"`
			Cell    string    `json:"cell"`
			Service string    `json:"service"`
			Replica string    `json:"replica"`
			Type    string    `json:"type"`
			Message string    `json:"message"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Cell != cell || e.Service != service {
			continue
		}
		// Event times may be rounded to the second by the gateway.
		if e.Time.Before(since.Add(-time.Second)) {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s-%s %s: %s", e.Time.Format("15:04:05.000"), e.Service, e.Replica, e.Type, e.Message))
	}
	return out
}

// gwService returns one service from `ps --json`, failing the test when it
// is missing.
func gwService(t *testing.T, p *project, cell, service string) psService {
	t.Helper()
	s, ok := p.ps(t).service(cell, service)
	if !ok {
		t.Fatalf("ps --json has no %s/%s", cell, service)
	}
	return s
}

// gwSettled waits until every service of the project has its desired
// replicas, all ready, and returns how long that took.
func gwSettled(t *testing.T, p *project, d time.Duration) time.Duration {
	t.Helper()
	took, ok, why := eventually(d, 200*time.Millisecond, func() (bool, string) { return p.ps(t).settled() })
	if !ok {
		t.Fatalf("the project did not settle within %s: %s", d, why)
	}
	return took
}

// gwServiceAt waits until a service has exactly n replicas, all healthy
// and ready, none of them in old, and returns how long that took.
func gwServiceAt(t *testing.T, p *project, cell, service string, n int, old map[string]bool, d time.Duration) (time.Duration, bool, string) {
	t.Helper()
	return eventually(d, 100*time.Millisecond, func() (bool, string) {
		s := gwService(t, p, cell, service)
		if s.Desired != n || s.Ready != n || len(s.Replicas) != n {
			return false, fmt.Sprintf("%d desired, %d ready, %d replicas; want %d", s.Desired, s.Ready, len(s.Replicas), n)
		}
		for _, r := range s.Replicas {
			if r.Health != "healthy" {
				return false, fmt.Sprintf("replica %s is %s", r.Name, r.Health)
			}
			if old[r.ContainerID] {
				return false, fmt.Sprintf("replica %s (%.12s) is still the old container", r.Name, r.ContainerID)
			}
		}
		return true, ""
	})
}
