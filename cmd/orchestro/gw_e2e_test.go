//go:build unix

package main

// End-to-end tests of the gateway's behaviour under steady, bounded load,
// against the real Docker engine: a killed replica and a replica failing its
// health check are taken out of rotation and replaced, scaling, a rolling
// restart and a changed spec lose no request, cells are isolated from each
// other, metrics pass promlint, access logs carry request and trace IDs,
// and the admin API refuses changes without the project token. Run them
// with
//
//	go test -race -v -run TestGateway -count=1 ./cmd/orchestro/
//
// One demo project serves every scenario, in order. Timings are reported
// with t.Logf, not asserted, except that no request may fail.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const (
	// gwClients is the number of concurrent clients of every load.
	gwClients = 4
	// gwSlowClients send requests the replica holds for a while, alongside
	// the main load where replicas go away: their requests are in flight
	// when a replica is killed, drained or stopped.
	gwSlowClients = 2
	gwSlowPath    = "/catalog/?sleep=200ms"
	// The health check of the demo's shop/catalog: every second, and
	// unhealthy after two failures in a row.
	gwHealthInterval = time.Second
	gwHealthRetries  = 2
	// gwHealthSlack is what a replica failing its health check may serve
	// beyond interval × retries: the checks run on their own tick, so the
	// first failing one may come up to an interval late, less the time
	// the check takes.
	gwHealthSlack = time.Second
)

// gwDemoPorts are the variables the demo cells take their gateway ports
// from.
var gwDemoPorts = []string{"SHOP_PORT", "USERS_PORT", "EDGE_PORT", "CHECKOUT_PORT"}

// gwDemoUses is what each demo cell lists under uses.
var gwDemoUses = map[string][]string{"edge": {"shop"}, "shop": {"users"}, "users": nil, "checkout": {"users"}}

// TestGatewayDemo starts one demo project and runs the gateway scenarios on
// it in order; each starts once the project has settled.
func TestGatewayDemo(t *testing.T) {
	begin := time.Now()
	cli := requireDocker(t)
	p := newProject(t, "gw", gwDemoDir(t), gwDemoPorts...)
	t.Logf("project %s, ports %v", p.name, p.ports)

	start := time.Now()
	if _, stderr, code := p.run(t, "up", "-d", "--wait"); code != 0 {
		t.Fatalf("up -d --wait exited %d, want 0:\n%s", code, stderr)
	}
	t.Logf("up -d --wait: %s", time.Since(start).Round(time.Millisecond))

	for _, sc := range []struct {
		name string
		fn   func(*testing.T, *client.Client, *project)
	}{
		{"access-log", testGwAccessLog},
		{"access-log-escaping", testGwAccessLogEscaping},
		{"access-log-follow", testGwAccessLogFollow},
		{"metrics", testGwMetrics},
		{"admin-needs-token", testGwAdminToken},
		{"cells-isolated", testGwIsolation},
		{"kill-replica", testGwKillReplica},
		{"failing-health-check", testGwFailingReplica},
		{"scale-1-5-1", testGwScale},
		{"restart", testGwRestart},
		{"up-changed-env", testGwUpChangedEnv},
		{"flow-checkout", testFlowCheckout},
		{"flow-declined", testFlowDeclined},
		{"flow-transient-503", testFlowTransient},
		{"flow-deadline", testFlowDeadline},
		{"flow-500-concurrent", testFlowConcurrent},
		{"flow-gateway-killed", testFlowGatewayKilled},
		{"flow-500-concurrent-gateway-killed", testFlowConcurrentKill},
		{"flow-async-queued", testFlowAsyncQueued},
	} {
		t.Run(sc.name, func(t *testing.T) {
			if took := gwSettled(t, p, time.Minute); took > time.Second {
				t.Logf("waited %s for the project to settle", took.Round(time.Millisecond))
			}
			start := time.Now()
			sc.fn(t, cli, p)
			t.Logf("%s took %s", sc.name, time.Since(start).Round(time.Millisecond))
		})
	}
	t.Logf("TestGatewayDemo: %s from start to the end of the last scenario (the project's removal follows)",
		time.Since(begin).Round(time.Millisecond))
}

// testGwAccessLog: every access log line of `logs shop/gateway` is JSON with
// the documented fields; a client's X-Request-ID reaches the replica and the
// log, and so does one the gateway generates.
func testGwAccessLog(t *testing.T, _ *client.Client, p *project) {
	ours := "gw-log-" + gwRandHex(6)
	sent := gwEchoGET(t, p.url("SHOP_PORT")+"/catalog/items?color=red", http.Header{"X-Request-Id": {ours}})
	if got := sent.echo.Headers["X-Request-Id"]; got != ours {
		t.Errorf("the replica got X-Request-Id %q, want the client's %q", got, ours)
	}
	if sent.echo.Path != "/items" {
		t.Errorf("the replica got path %q, want /items (the route strips /catalog)", sent.echo.Path)
	}
	t.Logf("the answer to the client carries X-Request-Id %q", sent.header.Get("X-Request-Id"))

	// Without an ID the gateway makes one, and the replica gets it.
	generated := gwEchoGET(t, p.url("SHOP_PORT")+"/catalog/", nil)
	genID := generated.echo.Headers["X-Request-Id"]
	if genID == "" {
		t.Errorf("a request without X-Request-ID reached the replica without one: %v", generated.echo.Headers)
	}

	var access []gwAccessLine
	var other []string
	var mine, gen *gwAccessLine
	_, found, _ := eventually(10*time.Second, 200*time.Millisecond, func() (bool, string) {
		access, other = gwGatewayLog(t, p, "shop")
		mine, gen = nil, nil
		for i := range access {
			switch access[i].str("request_id") {
			case ours:
				mine = &access[i]
			case genID:
				gen = &access[i]
			}
		}
		return mine != nil && (genID == "" || gen != nil), ""
	})
	t.Logf("logs shop/gateway: %d access log lines, %d other lines", len(access), len(other))
	for _, l := range other {
		t.Logf("  not an access log line: %s", l)
	}
	if !found {
		t.Fatalf("no access log line with request_id %q (and %q) in logs shop/gateway", ours, genID)
	}
	for _, l := range access {
		gwCheckAccessFields(t, l)
	}

	t.Logf("our line: %s", mine.raw)
	check := func(field string, got, want any) {
		if got != want {
			t.Errorf("access log line of %s: %s = %v, want %v\n%s", ours, field, got, want, mine.raw)
		}
	}
	check("method", mine.str("method"), "GET")
	check("path", mine.str("path"), "/catalog/items")
	status, _ := mine.num("status")
	check("status", status, 200.0)
	bytesN, _ := mine.num("bytes")
	check("bytes", bytesN, float64(len(sent.body)))
	tries, _ := mine.num("tries")
	check("tries", tries, 1.0)
	check("trace_id", mine.str("trace_id"), traceIDOf(sent.echo.Headers["Traceparent"]))
	// The echo's hostname is its container name, <project>-shop-catalog-N;
	// the log names the replica catalog-N.
	check("replica", mine.str("replica"), strings.TrimPrefix(sent.echo.Hostname, p.name+"-shop-"))
	if gen != nil {
		t.Logf("generated request ID %q reached the replica and the log: %s", genID, gen.raw)
	}
}

// testGwAccessLogEscaping: access log lines stay JSON whatever the client
// puts in the path or the request ID, such as a percent-encoded control
// character or a byte that is not UTF-8 (HTTP allows such bytes in header
// values).
func testGwAccessLogEscaping(t *testing.T, _ *client.Client, p *project) {
	tag := gwRandHex(4)
	cases := []struct{ path, reqID string }{
		{"/catalog/" + tag + "%07bell", "gw-esc-ctl-" + tag},
		{"/catalog/" + tag + "%ff", "gw-esc-path-" + tag},
		{"/catalog/" + tag, "gw-esc-id-" + tag + "-caf\xe9"},
	}
	for _, c := range cases {
		status, _, body, err := gwSend(http.MethodGet, p.url("SHOP_PORT")+c.path, http.Header{"X-Request-Id": {c.reqID}}, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET %s with X-Request-ID %q = %d, %v, want 200:\n%s", c.path, c.reqID, status, err, body)
		}
	}
	var lines []string
	_, ok, why := eventually(10*time.Second, 200*time.Millisecond, func() (bool, string) {
		stdout, stderr, code := p.run(t, "logs", "shop/gateway")
		if code != 0 {
			return false, fmt.Sprintf("logs shop/gateway exited %d: %s", code, stderr)
		}
		lines = nil
		for _, line := range strings.Split(stdout, "\n") {
			if _, text, ok := strings.Cut(line, "│ "); ok && strings.Contains(text, tag) {
				lines = append(lines, text)
			}
		}
		return len(lines) == len(cases), fmt.Sprintf("%d lines mention %s, want %d", len(lines), tag, len(cases))
	})
	if !ok {
		t.Fatalf("logs shop/gateway: %s", why)
	}
	for _, line := range lines {
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Errorf("access log line is not JSON (%v): %s", err, line)
			continue
		}
		if path, _ := fields["path"].(string); !strings.HasPrefix(path, "/catalog/"+tag) {
			t.Errorf("access log path %q, want it to start with /catalog/%s: %s", path, tag, line)
		}
		if id, _ := fields["request_id"].(string); !strings.Contains(id, tag) {
			t.Errorf("access log request_id %q, want one of the IDs sent: %s", id, line)
		}
	}
}

// testGwAccessLogFollow: `logs shop/gateway -f` shows a request's line
// while it runs, the line comes from the access log files on the cell's
// volume, and none goes through the gateway container's own output (the
// engine's log pipe).
func testGwAccessLogFollow(t *testing.T, cli *client.Client, p *project) {
	pr := startProc(t, p.env, p.args("logs", "-f", "--tail", "0", "shop/gateway")...)
	id := "gw-follow-" + gwRandHex(6)
	// The stream may open after the first request: send until its line
	// shows, each with the same ID.
	_, ok, _ := eventually(15*time.Second, 300*time.Millisecond, func() (bool, string) {
		if status, _, _, err := gwSend(http.MethodGet, p.url("SHOP_PORT")+"/catalog/", http.Header{"X-Request-Id": {id}}, nil); err != nil || status != http.StatusOK {
			return false, ""
		}
		return strings.Contains(pr.out.String(), id), ""
	})
	if !ok {
		t.Fatalf("logs -f shop/gateway did not show request %s within 15s:\n%s\n%s", id, pr.out.String(), pr.errb.String())
	}
	pr.signal(syscall.SIGINT)
	if code, ended := pr.wait(5 * time.Second); !ended || code != 0 {
		t.Errorf("logs -f ended by SIGINT: ended %v, exit %d", ended, code)
	}

	ctx := context.Background()
	name := p.name + "-shop-gateway"
	ins, err := cli.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	volume := p.name + "-shop-access-log"
	mounted := false
	for _, m := range ins.Mounts {
		mounted = mounted || m.Name == volume && m.Destination == "/var/log/orchestro"
	}
	if !mounted {
		t.Errorf("gateway %s does not mount volume %s at /var/log/orchestro: %+v", name, volume, ins.Mounts)
	}
	rc, err := cli.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `"request_id"`); n > 0 {
		t.Errorf("the gateway's own output (the engine's log) holds %d access log lines, want none", n)
	}
}

// traceIDOf returns the trace ID of a W3C traceparent, or "".
func traceIDOf(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// gwCheckAccessFields checks that an access log line has every documented
// field, with its type.
func gwCheckAccessFields(t *testing.T, l gwAccessLine) {
	t.Helper()
	for _, k := range []string{"time", "request_id", "trace_id", "method", "path", "replica"} {
		if _, ok := l.fields[k].(string); !ok {
			t.Errorf("access log line lacks the string field %q: %s", k, l.raw)
		}
	}
	for _, k := range []string{"status", "bytes", "duration_ms", "tries"} {
		if _, ok := l.num(k); !ok {
			t.Errorf("access log line lacks the number field %q: %s", k, l.raw)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, l.str("time")); err != nil {
		t.Errorf("access log time %q: %v", l.str("time"), err)
	}
	if l.str("request_id") == "" {
		t.Errorf("access log line with an empty request_id: %s", l.raw)
	}
	if !hex32.MatchString(l.str("trace_id")) {
		t.Errorf("access log trace_id %q is not 32 lower-case hex digits: %s", l.str("trace_id"), l.raw)
	}
	if d, _ := l.num("duration_ms"); d < 0 {
		t.Errorf("access log line with a negative duration: %s", l.raw)
	}
}

// gwAnswer is one answer of the demo services.
type gwAnswer struct {
	header http.Header
	body   []byte
	echo   gwEcho
}

// gwEchoGET sends a GET that must answer 200 with the services' JSON.
func gwEchoGET(t *testing.T, url string, hdr http.Header) gwAnswer {
	t.Helper()
	status, h, body, err := gwSend(http.MethodGet, url, hdr, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s = %d, %v, want 200:\n%s", url, status, err, body)
	}
	a := gwAnswer{header: h, body: body}
	if err := json.Unmarshal(body, &a.echo); err != nil {
		t.Fatalf("GET %s: decode the answer: %v\n%s", url, err, body)
	}
	return a
}

// testGwMetrics: /metrics on the admin port passes promlint and counts the
// requests of every route hit; it is not served on the data port.
func testGwMetrics(t *testing.T, cli *client.Client, p *project) {
	const catalogHits, ordersHits = 5, 3
	before := gwRequestsByRoute(t, cli, p)
	for range catalogHits {
		gwEchoGET(t, p.url("SHOP_PORT")+"/catalog/", nil)
	}
	for range ordersHits {
		gwEchoGET(t, p.url("SHOP_PORT")+"/orders/", nil)
	}

	// Records reach the metrics asynchronously: wait for the counts.
	var after map[string]float64
	var body []byte
	_, ok, why := eventually(5*time.Second, 100*time.Millisecond, func() (bool, string) {
		after, body = gwRequestsByRouteBody(t, cli, p)
		dc, do := after["/catalog"]-before["/catalog"], after["/orders"]-before["/orders"]
		return dc >= catalogHits && do >= ordersHits, fmt.Sprintf("counted %v more for /catalog and %v more for /orders", dc, do)
	})
	if !ok {
		t.Errorf("orchestro_http_requests_total{cell=shop,method=GET,code=2xx} lacks the requests sent: %s\nbefore %v, after %v", why, before, after)
	}
	t.Logf("orchestro_http_requests_total of the shop gateway (GET, 2xx) by route: %v", after)

	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, pr := range problems {
		t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
	}
	t.Logf("/metrics of the shop gateway: %d bytes, %d promlint problems", len(body), len(problems))

	status, _, data, err := gwSend(http.MethodGet, p.url("SHOP_PORT")+"/metrics", nil, nil)
	if err != nil {
		t.Fatalf("GET /metrics on the data port: %v", err)
	}
	if status == http.StatusOK || bytes.Contains(data, []byte("orchestro_http_requests_total")) {
		t.Errorf("GET /metrics on the data port = %d with metrics; the admin API must not be on the data port", status)
	}
}

// gwRequestsByRoute reads orchestro_http_requests_total of the shop gateway
// for GETs answered 2xx, by route.
func gwRequestsByRoute(t *testing.T, cli *client.Client, p *project) map[string]float64 {
	t.Helper()
	m, _ := gwRequestsByRouteBody(t, cli, p)
	return m
}

func gwRequestsByRouteBody(t *testing.T, cli *client.Client, p *project) (map[string]float64, []byte) {
	t.Helper()
	url := gwAdminURL(t, cli, p, "shop") + "/metrics"
	status, hdr, body, err := gwSend(http.MethodGet, url, nil, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s = %d, %v", url, status, err)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET %s: Content-Type %q, want the text exposition format", url, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	out := map[string]float64{}
	mf := fams["orchestro_http_requests_total"]
	if mf == nil {
		return out, body
	}
	for _, m := range mf.GetMetric() {
		l := labelsOf(m)
		if l["cell"] == "shop" && l["method"] == "GET" && l["code"] == "2xx" {
			out[l["route"]] += m.GetCounter().GetValue()
		}
	}
	return out, body
}

// gwRetries reads orchestro_http_retries_total of the shop gateway's
// /catalog route.
func gwRetries(t *testing.T, cli *client.Client, p *project) float64 {
	t.Helper()
	fams := gwMetrics(t, cli, p, "shop")
	total := 0.0
	if mf := fams["orchestro_http_retries_total"]; mf != nil {
		for _, m := range mf.GetMetric() {
			if labelsOf(m)["route"] == "/catalog" {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// gwMetrics scrapes and parses the metrics of a cell's gateway.
func gwMetrics(t *testing.T, cli *client.Client, p *project, cell string) map[string]*dto.MetricFamily {
	t.Helper()
	url := gwAdminURL(t, cli, p, cell) + "/metrics"
	status, _, body, err := gwSend(http.MethodGet, url, nil, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s = %d, %v", url, status, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// testGwAdminToken: the admin API's mutating calls answer 401 without the
// project token or with a wrong one, and change nothing.
func testGwAdminToken(t *testing.T, cli *client.Client, p *project) {
	admin := gwAdminURL(t, cli, p, "shop")
	before := gwService(t, p, "shop", "catalog")
	for _, tc := range []struct {
		name string
		hdr  http.Header
	}{
		{"no token", nil},
		{"wrong token", http.Header{"Authorization": {"Bearer wrong-" + gwRandHex(16)}}},
		{"wrong scheme", http.Header{"Authorization": {"Basic b3JjaGVzdHJvOndyb25n"}}},
	} {
		for _, call := range []struct{ path, body string }{
			{"/v1/scale", `{"service":"catalog","replicas":1}`},
			{"/v1/restart", `{"service":"catalog"}`},
		} {
			hdr := http.Header{"Content-Type": {"application/json"}}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			status, _, body, err := gwSend(http.MethodPost, admin+call.path, hdr, strings.NewReader(call.body))
			if err != nil {
				t.Fatalf("POST %s (%s): %v", call.path, tc.name, err)
			}
			t.Logf("POST %s with %s: %d %s", call.path, tc.name, status, strings.TrimSpace(string(body)))
			if status != http.StatusUnauthorized {
				t.Errorf("POST %s with %s = %d, want 401", call.path, tc.name, status)
			}
		}
	}
	// Had a call gone through, the desired count or the replicas would
	// change within a reconcile (a second).
	time.Sleep(1500 * time.Millisecond)
	after := gwService(t, p, "shop", "catalog")
	if after.Desired != before.Desired {
		t.Errorf("shop/catalog desired %d → %d after refused calls", before.Desired, after.Desired)
	}
	if a, b := replicaIDs(after), replicaIDs(before); !slices.Equal(a, b) {
		t.Errorf("shop/catalog replicas changed after refused calls: %v → %v", b, a)
	}
}

func replicaIDs(s psService) []string {
	var out []string
	for _, r := range s.Replicas {
		out = append(out, r.ContainerID)
	}
	sort.Strings(out)
	return out
}

// testGwIsolation: replicas join only their cell's network; a gateway's
// aliases there are its cell and the cells it uses; from inside the edge
// cell `shop` resolves and answers while `users` does not resolve; and one
// request walks edge → shop → users with its request and trace IDs.
func testGwIsolation(t *testing.T, cli *client.Client, p *project) {
	ctx := context.Background()
	mesh := p.name + "_mesh"
	for _, c := range listContainers(t, cli, p.name) {
		ins, err := cli.ContainerInspect(ctx, c.ID)
		if err != nil {
			t.Fatalf("inspect %s: %v", containerName(c), err)
		}
		cell, role, name := c.Labels[labelCell], c.Labels[labelRole], containerName(c)
		own := p.name + "_" + cell
		var nets []string
		for n := range ins.NetworkSettings.Networks {
			nets = append(nets, n)
		}
		sort.Strings(nets)
		switch role {
		case "replica":
			if !slices.Equal(nets, []string{own}) {
				t.Errorf("replica %s is on networks %v, want only %s", name, nets, own)
			}
		case "gateway":
			wantNets := []string{own, mesh}
			sort.Strings(wantNets)
			if !slices.Equal(nets, wantNets) {
				t.Errorf("gateway %s is on networks %v, want %v", name, nets, wantNets)
			}
			ep := ins.NetworkSettings.Networks[own]
			if ep == nil {
				continue
			}
			// The engine adds the short container ID (and, on newer
			// engines, the name) as aliases of its own.
			var aliases []string
			for _, a := range ep.Aliases {
				if a != ins.ID[:12] && a != name {
					aliases = append(aliases, a)
				}
			}
			sort.Strings(aliases)
			want := append([]string{cell}, gwDemoUses[cell]...)
			sort.Strings(want)
			if !slices.Equal(aliases, want) {
				t.Errorf("gateway %s has aliases %v on %s, want exactly %v (its cell and the cells it uses)", name, aliases, own, want)
			}
			var meshAliases []string
			if m := ins.NetworkSettings.Networks[mesh]; m != nil {
				meshAliases = m.Aliases
			}
			t.Logf("gateway %s: aliases %v on %s, %v on %s", name, aliases, own, meshAliases, mesh)
		}
	}

	// Name resolution from inside the edge cell, checked by a throwaway
	// container of the edge cell's own caller image on the edge network.
	webs := gwReplicas(t, cli, p, "edge", "web")
	if len(webs) == 0 {
		t.Fatal("no edge/web replica")
	}
	ins, err := cli.ContainerInspect(ctx, webs[0].ID)
	if err != nil {
		t.Fatalf("inspect %s: %v", containerName(webs[0]), err)
	}
	img := ins.Config.Image
	shopURL := fmt.Sprintf("http://shop:%d", p.ports["SHOP_PORT"])
	usersURL := fmt.Sprintf("http://users:%d", p.ports["USERS_PORT"])
	usersPortOnShop := fmt.Sprintf("http://shop:%d", p.ports["USERS_PORT"])

	status, body := gwProbe(t, cli, p, "edge", img, shopURL, "/catalog/probe")
	if status != http.StatusOK {
		t.Errorf("from the edge cell, %s/catalog/probe = %d, want 200 (edge uses shop):\n%s", shopURL, status, body)
	} else if e, err := gwDecode(body); err != nil || e.UpstreamStatus != 200 {
		t.Errorf("from the edge cell, %s/catalog/probe: upstream status %d, %v:\n%s", shopURL, e.UpstreamStatus, err, body)
	} else if u, err := e.upstream(); err != nil || u.Service != "catalog" {
		t.Errorf("from the edge cell, %s/catalog/probe reached %q, want catalog (%v)", shopURL, u.Service, err)
	} else {
		t.Logf("from the edge cell, %s answers: served by %s", shopURL, u.Hostname)
	}

	status, body = gwProbe(t, cli, p, "edge", img, usersURL, "/accounts/probe")
	if status == http.StatusOK || !strings.Contains(body, "lookup users") {
		t.Errorf("from the edge cell, %s = %d, want a failed name lookup (edge does not use users):\n%s", usersURL, status, body)
	} else {
		t.Logf("from the edge cell, %s: %d %s", usersURL, status, strings.TrimSpace(body))
	}

	status, body = gwProbe(t, cli, p, "edge", img, usersPortOnShop, "/accounts/probe")
	if status == http.StatusOK || !strings.Contains(body, "connection refused") {
		t.Errorf("from the edge cell, %s = %d, want connection refused (the edge gateway has no egress to users):\n%s", usersPortOnShop, status, body)
	} else {
		t.Logf("from the edge cell, %s: %d %s", usersPortOnShop, status, strings.TrimSpace(body))
	}

	// One request through every cell, followed by its IDs.
	reqID := "gw-chain-" + gwRandHex(6)
	traceID := gwRandHex(16)
	traceparent := "00-" + traceID + "-" + gwRandHex(8) + "-01"
	a := gwEchoGET(t, p.url("EDGE_PORT")+"/", http.Header{"X-Request-Id": {reqID}, "Traceparent": {traceparent}})
	orders, err := a.echo.upstream()
	if err != nil {
		t.Fatalf("edge answer without the orders answer: %v\n%s", err, a.body)
	}
	accounts, err := orders.upstream()
	if err != nil || accounts.Service != "accounts" {
		t.Fatalf("the chain edge → shop → users did not reach accounts (%v):\n%s", err, a.body)
	}
	t.Logf("edge → shop → users: %s → %s → %s", a.echo.Hostname, orders.Hostname, accounts.Hostname)
	if got := accounts.Headers["X-Request-Id"]; got != reqID {
		t.Errorf("accounts got X-Request-Id %q, want %q", got, reqID)
	}
	if got := traceIDOf(accounts.Headers["Traceparent"]); got != traceID {
		t.Errorf("accounts got trace ID %q (traceparent %q), want %q", got, accounts.Headers["Traceparent"], traceID)
	}

	var line *gwAccessLine
	_, ok, _ := eventually(10*time.Second, 200*time.Millisecond, func() (bool, string) {
		access, _ := gwGatewayLog(t, p, "users")
		for i := range access {
			if access[i].str("request_id") == reqID {
				line = &access[i]
				return true, ""
			}
		}
		return false, ""
	})
	if !ok {
		t.Fatalf("no line with request_id %q in logs users/gateway", reqID)
	}
	t.Logf("users gateway access log: %s", line.raw)
	if got := line.str("trace_id"); got != traceID {
		t.Errorf("users gateway logged trace_id %q for request %s, want %q", got, reqID, traceID)
	}
	if got := line.str("path"); got != "/accounts/whoami" {
		t.Errorf("users gateway logged path %q for request %s, want /accounts/whoami", got, reqID)
	}
}

// gwProbe runs a throwaway caller container on a cell's network with the
// given upstream, sends it one request and returns its answer. The
// container carries the project's label, so the project's cleanup removes
// it if this does not.
func gwProbe(t *testing.T, cli *client.Client, p *project, cell, img, upstream, path string) (int, string) {
	t.Helper()
	ctx := context.Background()
	name := p.name + "-probe-" + gwRandHex(4)
	cfg := &container.Config{
		Image:  img,
		Env:    []string{"SERVICE_NAME=probe", "UPSTREAM_URL=" + upstream, "UPSTREAM_PATH=" + path},
		Labels: map[string]string{labelProject: p.name},
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{p.name + "_" + cell: {}}}
	created, err := cli.ContainerCreate(ctx, cfg, &container.HostConfig{}, netCfg, nil, name)
	if err != nil {
		t.Fatalf("create probe container: %v", err)
	}
	defer func() {
		if err := cli.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove probe container %s: %v", name, err)
		}
	}()
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start probe container: %v", err)
	}
	ins, err := cli.ContainerInspect(ctx, created.ID)
	if err != nil {
		t.Fatalf("inspect probe container: %v", err)
	}
	ep := ins.NetworkSettings.Networks[p.name+"_"+cell]
	if ep == nil || ep.IPAddress == "" {
		t.Fatalf("probe container has no address on %s_%s", p.name, cell)
	}
	return gwProbeAsk(t, "http://"+ep.IPAddress+":8080")
}

// gwProbeAsk waits until the probe container at base answers, then has it
// make its call, and returns what it answered.
func gwProbeAsk(t *testing.T, base string) (int, string) {
	t.Helper()
	if _, ok, why := eventually(15*time.Second, 100*time.Millisecond, func() (bool, string) {
		status, _, _, err := gwSend(http.MethodGet, base+"/healthz", nil, nil)
		return err == nil && status == http.StatusOK, fmt.Sprintf("%d, %v", status, err)
	}); !ok {
		t.Fatalf("probe container does not answer: %s", why)
	}
	status, _, body, err := gwSend(http.MethodGet, base+"/probe", nil, nil)
	if err != nil {
		t.Fatalf("GET the probe: %v", err)
	}
	return status, string(body)
}

// testGwKillReplica: a catalog replica killed through the engine under load
// fails no request, and a replacement serves within seconds.
func testGwKillReplica(t *testing.T, cli *client.Client, p *project) {
	ctx := context.Background()
	reps := gwRunning(gwReplicas(t, cli, p, "shop", "catalog"))
	if len(reps) < 2 {
		t.Fatalf("want at least 2 running catalog replicas, have %d", len(reps))
	}
	old := map[string]bool{}
	for _, r := range reps {
		old[r.ID] = true
	}
	victim := reps[len(reps)/2]
	host := containerName(victim)

	retriesBefore := gwRetries(t, cli, p)
	load := gwStartLoad(t, p.url("SHOP_PORT")+"/catalog/", gwClients, 15*time.Second)
	slow := gwStartLoad(t, p.url("SHOP_PORT")+gwSlowPath, gwSlowClients, 15*time.Second)
	time.Sleep(3 * time.Second)
	killed := time.Now()
	if err := cli.ContainerKill(ctx, victim.ID, "SIGKILL"); err != nil {
		t.Fatalf("kill %s: %v", host, err)
	}
	var newID string
	healthy, ok, why := eventually(30*time.Second, 100*time.Millisecond, func() (bool, string) {
		s := gwService(t, p, "shop", "catalog")
		newID = ""
		for _, r := range s.Replicas {
			if r.ContainerID == victim.ID {
				return false, fmt.Sprintf("the killed replica is still listed (%s, %s)", r.State, r.Health)
			}
			if !old[r.ContainerID] && r.Health == "healthy" {
				newID = r.ContainerID
			}
		}
		if newID == "" || s.Ready != len(reps) {
			return false, fmt.Sprintf("%d of %d ready, no healthy replacement yet", s.Ready, len(reps))
		}
		return true, ""
	})
	res, slowRes := load.wait(), slow.wait()
	if !ok {
		t.Errorf("no healthy replacement 30s after the kill of %s: %s", host, why)
	}

	// The replacement may take the killed one's name (and hostname), which
	// is freed only once the killed container is removed: an answer from
	// that hostname after the new container started is the replacement's.
	report := fmt.Sprintf("killed %s (%.12s) at +%s of the load; healthy replacement in ps after %s",
		host, victim.ID, killed.Sub(load.start).Round(time.Millisecond), healthy.Round(time.Millisecond))
	if newID != "" {
		if ins, err := cli.ContainerInspect(ctx, newID); err == nil {
			newHost := strings.TrimPrefix(ins.Name, "/")
			started, _ := time.Parse(time.RFC3339Nano, ins.State.StartedAt)
			report += fmt.Sprintf("; replacement %s (%.12s) started after %s", newHost, newID, started.Sub(killed).Round(time.Millisecond))
			for _, s := range res.Samples {
				if s.host == newHost && s.at.After(started) {
					report += fmt.Sprintf(", first answer through the gateway after %s", s.at.Sub(killed).Round(time.Millisecond))
					break
				}
			}
		}
	}
	t.Log(report)
	t.Logf("answers by replica before the kill: %s", gwHostsLine(res.byHost(time.Time{}, killed)))
	t.Logf("answers by replica after the kill:  %s", gwHostsLine(res.byHost(killed, time.Time{})))
	for _, e := range gwEvents(t, p, "shop", "catalog", killed) {
		t.Logf("  event %s", e)
	}
	t.Logf("tries retried on another replica by the shop gateway (/catalog) during the load: %.0f", gwRetries(t, cli, p)-retriesBefore)
	gwCheckNoFailures(t, "the kill of a catalog replica", res)
	gwCheckNoFailures(t, "the kill of a catalog replica (slow requests)", slowRes)
}

// gwRunning keeps the running containers.
func gwRunning(list []container.Summary) []container.Summary {
	var out []container.Summary
	for _, c := range list {
		if c.State == "running" {
			out = append(out, c)
		}
	}
	return out
}

// testGwFailingReplica: a replica whose health check starts failing leaves
// rotation within interval × retries and is replaced (a new replica
// healthy, the failing one removed), with no failed request.
func testGwFailingReplica(t *testing.T, cli *client.Client, p *project) {
	ctx := context.Background()
	reps := gwRunning(gwReplicas(t, cli, p, "shop", "catalog"))
	if len(reps) < 2 {
		t.Fatalf("want at least 2 running catalog replicas, have %d", len(reps))
	}
	victim := reps[len(reps)-1]
	host := containerName(victim)
	failURL := "http://" + gwAddress(t, victim, p, "shop") + ":8080/admin/fail"

	load := gwStartLoad(t, p.url("SHOP_PORT")+"/catalog/", gwClients, 45*time.Second)
	time.Sleep(2 * time.Second)
	status, _, body, err := gwSend(http.MethodPost, failURL, nil, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST %s = %d, %v:\n%s", failURL, status, err, body)
	}
	failed := time.Now()

	var left time.Duration
	var leftAs string
	replaced, ok, why := eventually(30*time.Second, 100*time.Millisecond, func() (bool, string) {
		s := gwService(t, p, "shop", "catalog")
		listed := false
		for _, r := range s.Replicas {
			if r.ContainerID != victim.ID {
				continue
			}
			listed = true
			if left == 0 && r.Health != "healthy" {
				left, leftAs = time.Since(failed), r.Health
			}
		}
		if !listed {
			if left == 0 {
				left, leftAs = time.Since(failed), "gone"
			}
		} else {
			return false, "the failing replica is still listed"
		}
		if _, err := cli.ContainerInspect(ctx, victim.ID); !cerrdefs.IsNotFound(err) {
			return false, fmt.Sprintf("the failing replica's container still exists (%v)", err)
		}
		if s.Ready != len(reps) || len(s.Replicas) != len(reps) {
			return false, fmt.Sprintf("%d ready, %d replicas, want %d", s.Ready, len(s.Replicas), len(reps))
		}
		return true, ""
	})
	if !ok {
		t.Errorf("%s was not replaced within 30s of failing its health check: %s", host, why)
	}
	time.Sleep(2 * time.Second) // serve a while on the new set
	res := load.stop()

	budget := gwHealthInterval * gwHealthRetries
	var servedBefore int
	var last time.Time
	for _, s := range res.Samples {
		if s.host != host {
			continue
		}
		if s.at.Before(failed) {
			servedBefore++
		}
		last = s.at
	}
	t.Logf("%s (%.12s) fails its health check from +%s of the load", host, victim.ID, failed.Sub(load.start).Round(time.Millisecond))
	t.Logf("its last answer through the gateway came %s after (interval × retries = %s); ps showed it %s after %s; replaced (new replica healthy, failing one removed) after %s",
		last.Sub(failed).Round(time.Millisecond), budget, leftAs, left.Round(time.Millisecond), replaced.Round(time.Millisecond))
	t.Logf("answers by replica before the failure: %s", gwHostsLine(res.byHost(time.Time{}, failed)))
	t.Logf("answers by replica after the failure:  %s", gwHostsLine(res.byHost(failed, time.Time{})))
	t.Logf("answers by replica after interval × retries + %s: %s", gwHealthSlack, gwHostsLine(res.byHost(failed.Add(budget+gwHealthSlack), time.Time{})))
	for _, e := range gwEvents(t, p, "shop", "catalog", failed) {
		t.Logf("  event %s", e)
	}
	if servedBefore == 0 {
		t.Errorf("%s served nothing before it failed: the test proves nothing", host)
	}
	if late := last.Sub(failed); late > budget+gwHealthSlack {
		t.Errorf("the gateway still routed to %s %s after its health check started failing, want within interval × retries (%s, +%s slack)",
			host, late.Round(time.Millisecond), budget, gwHealthSlack)
	}
	gwCheckNoFailures(t, "a catalog replica failing its health check", res)
}

// testGwScale: scale shop/catalog to 1, 5 and 1 under load; every step
// settles, the new replicas serve, and no request fails.
func testGwScale(t *testing.T, cli *client.Client, p *project) {
	load := gwStartLoad(t, p.url("SHOP_PORT")+"/catalog/", gwClients, 60*time.Second)
	slow := gwStartLoad(t, p.url("SHOP_PORT")+gwSlowPath, gwSlowClients, 60*time.Second)
	for _, n := range []int{1, 5, 1} {
		start := time.Now()
		if _, stderr, code := p.run(t, "scale", fmt.Sprintf("shop/catalog=%d", n)); code != 0 {
			t.Fatalf("scale shop/catalog=%d exited %d:\n%s", n, code, stderr)
		}
		_, ok, why := gwServiceAt(t, p, "shop", "catalog", n, nil, 30*time.Second)
		settled := time.Now()
		if !ok {
			t.Fatalf("shop/catalog did not settle at %d within 30s: %s", n, why)
		}
		time.Sleep(1500 * time.Millisecond)
		hosts := load.result().byHost(settled, time.Time{})
		t.Logf("scale shop/catalog=%d: settled after %s; answers in the next 1.5s: %s",
			n, settled.Sub(start).Round(time.Millisecond), gwHostsLine(hosts))
		if len(hosts) != n {
			t.Errorf("after scaling to %d, %d replicas answered (%s), want %d", n, len(hosts), gwHostsLine(hosts), n)
		}
	}
	gwCheckNoFailures(t, "scale shop/catalog 1 → 5 → 1", load.stop())
	gwCheckNoFailures(t, "scale shop/catalog 1 → 5 → 1 (slow requests)", slow.stop())

	// Back to the spec's count for the next scenarios.
	if _, stderr, code := p.run(t, "scale", "shop/catalog=3"); code != 0 {
		t.Fatalf("scale shop/catalog=3 exited %d:\n%s", code, stderr)
	}
	if _, ok, why := gwServiceAt(t, p, "shop", "catalog", 3, nil, 30*time.Second); !ok {
		t.Fatalf("shop/catalog did not settle at 3: %s", why)
	}
}

// testGwRestart: `restart shop/catalog` replaces every replica under load
// with no failed request.
func testGwRestart(t *testing.T, cli *client.Client, p *project) {
	old := map[string]bool{}
	for _, c := range gwRunning(gwReplicas(t, cli, p, "shop", "catalog")) {
		old[c.ID] = true
	}
	load := gwStartLoad(t, p.url("SHOP_PORT")+"/catalog/", gwClients, 60*time.Second)
	slow := gwStartLoad(t, p.url("SHOP_PORT")+gwSlowPath, gwSlowClients, 60*time.Second)
	time.Sleep(time.Second)
	start := time.Now()
	if _, stderr, code := p.run(t, "restart", "shop/catalog"); code != 0 {
		t.Fatalf("restart shop/catalog exited %d:\n%s", code, stderr)
	}
	took, ok, why := gwServiceAt(t, p, "shop", "catalog", len(old), old, 60*time.Second)
	if !ok {
		t.Errorf("shop/catalog was not restarted within 60s: %s", why)
	}
	time.Sleep(time.Second)
	res := load.stop()
	t.Logf("restart shop/catalog (%d replicas): every replica new and healthy after %s", len(old), took.Round(time.Millisecond))
	t.Logf("answers by replica during and after the restart: %s", gwHostsLine(res.byHost(start, time.Time{})))
	gwCheckNoFailures(t, "restart shop/catalog", res)
	gwCheckNoFailures(t, "restart shop/catalog (slow requests)", slow.stop())
}

// testGwUpChangedEnv: `up -d` with a changed env for catalog rolls its
// replicas under load with no failed request, and leaves the rest alone.
func testGwUpChangedEnv(t *testing.T, cli *client.Client, p *project) {
	ctx := context.Background()
	rev := gwRandHex(4)
	dir := gwChangedDemo(t, "GW_E2E_REVISION", rev)
	old := map[string]bool{}
	for _, c := range gwReplicas(t, cli, p, "shop", "catalog") {
		old[c.ID] = true
	}
	others := map[string]string{}
	for name, id := range ids(t, cli, p.name, labelRole+"=replica") {
		if !old[id] {
			others[name] = id
		}
	}

	load := gwStartLoad(t, p.url("SHOP_PORT")+"/catalog/", gwClients, 60*time.Second)
	slow := gwStartLoad(t, p.url("SHOP_PORT")+gwSlowPath, gwSlowClients, 60*time.Second)
	time.Sleep(time.Second)
	start := time.Now()
	_, stderr, code := run(t, p.env, "-f", dir, "-p", p.name, "up", "-d", "--wait")
	upTook := time.Since(start)
	if code != 0 {
		t.Fatalf("up -d --wait with a changed env exited %d:\n%s", code, stderr)
	}
	took, ok, why := gwServiceAt(t, p, "shop", "catalog", 3, old, 60*time.Second)
	if !ok {
		t.Errorf("shop/catalog did not roll within 60s: %s", why)
	}
	time.Sleep(time.Second)
	res := load.stop()
	t.Logf("up -d --wait with a changed env returned after %s; every catalog replica new and healthy after %s",
		upTook.Round(time.Millisecond), took.Round(time.Millisecond))
	t.Logf("answers by replica during and after the roll: %s", gwHostsLine(res.byHost(start, time.Time{})))
	gwCheckNoFailures(t, "up -d with a changed env for shop/catalog", res)
	gwCheckNoFailures(t, "up -d with a changed env for shop/catalog (slow requests)", slow.stop())

	want := "GW_E2E_REVISION=" + rev
	for _, c := range gwReplicas(t, cli, p, "shop", "catalog") {
		ins, err := cli.ContainerInspect(ctx, c.ID)
		if err != nil {
			t.Errorf("inspect %s: %v", containerName(c), err)
			continue
		}
		if !slices.Contains(ins.Config.Env, want) {
			t.Errorf("catalog replica %s lacks %s", containerName(c), want)
		}
	}
	after := map[string]string{}
	for name, id := range ids(t, cli, p.name, labelRole+"=replica") {
		if _, isOther := others[name]; isOther {
			after[name] = id
		}
	}
	if same, diff := sameIDs(others, after); !same {
		t.Errorf("replicas other than shop/catalog changed: %s", diff)
	}
}

// gwRandHex returns n random bytes in hex.
func gwRandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// gwDecode decodes a demo service's answer.
func gwDecode(body string) (gwEcho, error) {
	var e gwEcho
	err := json.Unmarshal([]byte(body), &e)
	return e, err
}
