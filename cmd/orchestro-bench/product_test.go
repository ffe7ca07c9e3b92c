package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProductOrders(t *testing.T) {
	var cli, proxy []string
	for round := range 4 {
		cli = append(cli, strings.Join(cliOrder(round), ","))
		proxy = append(proxy, strings.Join(proxyOrder(round), ","))
	}
	if diff := cmp.Diff([]string{"orchestro,compose", "compose,orchestro", "orchestro,compose", "compose,orchestro"}, cli); diff != "" {
		t.Errorf("cliOrder mismatch (-want +got):\n%s", diff)
	}
	// Each target goes first in turn.
	want := []string{"gateway,gateway-direct,nginx", "gateway-direct,nginx,gateway", "nginx,gateway,gateway-direct", "gateway,gateway-direct,nginx"}
	if diff := cmp.Diff(want, proxy); diff != "" {
		t.Errorf("proxyOrder mismatch (-want +got):\n%s", diff)
	}
}

func TestRatiosAndStats(t *testing.T) {
	// A round where either side measured nothing has no ratio.
	got := ratios([]float64{2, 3, 0, 8}, []float64{1, 2, 5, 0})
	if diff := cmp.Diff([]float64{2, 1.5}, got); diff != "" {
		t.Errorf("ratios mismatch (-want +got):\n%s", diff)
	}
	if s := summarizeValues(nil); s != nil {
		t.Errorf("summarizeValues(nil) = %+v, want nil", s)
	}
	if diff := cmp.Diff(&stat{Median: 3, Min: 1, Max: 9}, summarizeValues([]float64{9, 1, 3})); diff != "" {
		t.Errorf("summarizeValues mismatch (-want +got):\n%s", diff)
	}
}

func TestDockerProxyTarget(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		ip     string
		port   int
		wantOK bool
	}{
		{"docker-proxy", strings.Fields("/usr/sbin/docker-proxy -proto tcp -host-ip 127.0.0.1 -host-port 18580 -container-ip 192.168.224.2 -container-port 18580"), "127.0.0.1", 18580, true},
		{"ipv6", strings.Fields("docker-proxy -proto tcp -host-ip :: -host-port 80 -container-ip 172.17.0.2 -container-port 80"), "::", 80, true},
		{"another program", strings.Fields("/usr/bin/socat -host-ip 127.0.0.1 -host-port 1"), "", 0, false},
		{"no port", strings.Fields("docker-proxy -host-ip 127.0.0.1 -host-port"), "127.0.0.1", 0, false},
		{"empty", nil, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip, port, ok := dockerProxyTarget(tt.args)
			if ok != tt.wantOK || (ok && (ip != tt.ip || port != tt.port)) {
				t.Errorf("dockerProxyTarget = %q, %d, %v; want %q, %d, %v", ip, port, ok, tt.ip, tt.port, tt.wantOK)
			}
		})
	}
}

func TestCheckComposeVersion(t *testing.T) {
	tests := []struct {
		version string
		wantErr bool
	}{
		{"Docker Compose version v5.6.0", false},
		{"Docker Compose version v2.27.0", false},
		{"Docker Compose version 2.20.2+ds1-0ubuntu1~22.04.1", false},
		{"docker-compose version 1.29.2, build unknown", true},
		{"", true},
	}
	for _, tt := range tests {
		if err := checkComposeVersion(tt.version); (err != nil) != tt.wantErr {
			t.Errorf("checkComposeVersion(%q) = %v, want error %v", tt.version, err, tt.wantErr)
		}
	}
}

func TestParseProductFlagsRejects(t *testing.T) {
	for _, args := range [][]string{
		{"-rounds", "0"},
		{"-duration", "1500ms"},
		{"-parts", "cli,bogus"},
		{"-conns", "0"},
		{"extra"},
	} {
		if _, err := parseProductFlags(args, io.Discard); err == nil {
			t.Errorf("parseProductFlags(%q) succeeded, want an error", args)
		}
	}
}

func TestTailLines(t *testing.T) {
	if got := tailLines("a\nb\nc\n", 2); got != "b\nc" {
		t.Errorf("tailLines = %q, want %q", got, "b\nc")
	}
}

// testProductReport is a report with round figures, as a run fills it.
func testProductReport() *productReport {
	gwRound := func(round int, rps float64) proxyRound {
		return proxyRound{Round: round, RPS: rps, P50Ms: 4, P99Ms: 20, Requests: int64(rps * 10),
			CPUSeconds: map[string]float64{
				cpuGateway: rps * 10 * 50e-6, cpuShim: 0, cpuDockerProxy: rps * 10 * 20e-6,
				cpuDockerd: rps * 10 * 5e-6, cpuNginx: 0, cpuReplicas: rps * 10 * 10e-6,
			}}
	}
	// Without docker-proxy on the way, the gateway serves more for the
	// same CPU per request; docker-proxy is idle.
	directRound := func(round int, rps float64) proxyRound {
		return proxyRound{Round: round, RPS: rps, P50Ms: 3, P99Ms: 15, Requests: int64(rps * 10),
			CPUSeconds: map[string]float64{
				cpuGateway: rps * 10 * 50e-6, cpuShim: rps * 10 * 1e-6, cpuDockerProxy: 0,
				cpuDockerd: rps * 10 * 3e-6, cpuNginx: 0, cpuReplicas: rps * 10 * 10e-6,
			}}
	}
	ngxRound := func(round int, rps float64) proxyRound {
		return proxyRound{Round: round, RPS: rps, P50Ms: 2, P99Ms: 10, Requests: int64(rps * 10),
			// The engine's processes could not be read in this round.
			CPUSeconds: map[string]float64{cpuGateway: 0, cpuNginx: rps * 10 * 25e-6, cpuReplicas: rps * 10 * 10e-6}}
	}
	return &productReport{
		Machine: productMachine{CPUs: 2, Kernel: "6.1.0", Go: "go1.26.8", Docker: "20.10.24", Orchestro: "orchestro dev",
			Compose: "Docker Compose version v5.6.0", Nginx: "nginx version: nginx/1.22.1", Wrk: "wrk 4.1.0", LoadStart: "1.00", LoadEnd: "2.00"},
		CLI: &cliReport{
			Rounds:             2,
			CPUs:               2,
			OrchestroFootprint: cliFootprint{Containers: 11, Replicas: 7, Networks: 4},
			ComposeFootprint:   cliFootprint{Containers: 7, Replicas: 7, Networks: 1},
			Steps: []cliStepReport{
				{Step: "up -d --wait (cold)", Orchestro: "orchestro up -d --wait", Compose: "docker compose up -d --wait",
					OrchestroSeconds: []float64{12, 14}, ComposeSeconds: []float64{4, 3.5},
					OrchestroCPUSeconds: []float64{24, 21}, ComposeCPUSeconds: []float64{4, 3.5}},
				{Step: "ps", Orchestro: "orchestro ps", Compose: "docker compose ps",
					OrchestroSeconds: []float64{0.05, 0.06}, ComposeSeconds: []float64{0.1, 0.12},
					OrchestroCPUSeconds: []float64{0.05, 0.06}, ComposeCPUSeconds: []float64{0.1, 0.12}},
				{Step: "down", Orchestro: "orchestro down --timeout 1s", Compose: "docker compose down -t 1",
					OrchestroSeconds: []float64{5, 6}, ComposeSeconds: []float64{2, 3},
					OrchestroCPUSeconds: []float64{5, 6}, ComposeCPUSeconds: []float64{2, 3}},
			},
		},
		Proxy: &proxyReport{
			Rounds: 2, DurationSeconds: 10, Connections: 64, Threads: 2,
			Replicas: []string{"10.0.0.3:8080", "10.0.0.4:8080", "10.0.0.5:8080"},
			Network:  "orchestro-bench_web", UserlandProxy: true, NginxKeepalive: 256,
			Processes: map[string]string{cpuGateway: "pid 10", cpuShim: "pid 9", cpuDockerProxy: "pid [8]",
				cpuDockerd: "pid [7]", cpuNginx: "master pid 20", cpuReplicas: "pid [11 12 13]"},
			Targets: []proxyTarget{
				{Name: proxyGateway, URL: "http://127.0.0.1:40001/", PathProcesses: pathGroups(proxyGateway),
					Rounds: []proxyRound{gwRound(1, 10000), gwRound(2, 12000)}},
				{Name: proxyGatewayDirect, URL: "http://10.0.0.2:40001/", PathProcesses: pathGroups(proxyGatewayDirect),
					Rounds: []proxyRound{directRound(1, 16000), directRound(2, 16000)}},
				{Name: proxyNginx, URL: "http://127.0.0.1:40002/", PathProcesses: pathGroups(proxyNginx),
					Rounds: []proxyRound{ngxRound(1, 20000), ngxRound(2, 20000)}},
			},
		},
	}
}

func TestProductReportWrite(t *testing.T) {
	r := testProductReport()
	r.summarize()
	var b bytes.Buffer
	r.write(&b)
	want := `orchestro-bench product: orchestro as users run it, against docker compose and nginx, on this machine's Docker engine
machine    2 CPUs, Linux 6.1.0, go1.26.8; Docker Engine 20.10.24; 1-minute load average 1.00 at start, 2.00 at end
orchestro  orchestro dev
compose    Docker Compose version v5.6.0
nginx      nginx version: nginx/1.22.1
wrk        wrk 4.1.0

CLI: the same 7 replicas (images present, no health checks), 2 rounds, who goes first alternating
  orchestro  project orchestro-bench: 7 replicas in 3 cells; 11 containers (the replicas, a gateway per cell, the keeper), 4 networks
  compose    project orchestro-bench-compose: 7 replicas of 3 services; 7 containers, 1 network
  wall time of each command, median [min – max]; the ratio is paired within each round

  step                  orchestro               docker compose          orchestro/compose
  up -d --wait (cold)   13.0s [12.0s – 14.0s]   3.75s [3.50s – 4.00s]   3.50 [3.00 – 4.00]
  ps                    55ms [50ms – 60ms]      110ms [100ms – 120ms]   0.50 [0.50 – 0.50]
  down                  5.50s [5.00s – 6.00s]   2.50s [2.00s – 3.00s]   2.25 [2.00 – 2.50]
  (down is ` + "`orchestro down --timeout 1s` and `docker compose down -t 1`" + `)

  CPU the whole machine spent while each command ran (the CLI, the engine, the containers), median [min – max],
  and how busy that kept its 2 CPUs (median)

  step                  orchestro               busy    docker compose          busy    orchestro/compose
  up -d --wait (cold)   22.5s [21.0s – 24.0s]   87.5%   3.75s [3.50s – 4.00s]   50.0%   6.00 [6.00 – 6.00]
  ps                    55ms [50ms – 60ms]      50.0%   110ms [100ms – 120ms]   50.0%   0.50 [0.50 – 0.50]
  down                  5.50s [5.00s – 6.00s]   50.0%   2.50s [2.00s – 3.00s]   50.0%   2.25 [2.00 – 2.50]

Data path: the gateway container, at its published port and at its own address, against nginx on the host, in front of the same 3 replica containers
  replicas        10.0.0.3:8080 10.0.0.4:8080 10.0.0.5:8080 (web/frontend, on network orchestro-bench_web)
  gateway         http://127.0.0.1:40001/: its published port, through docker-proxy into the container
  gateway-direct  http://10.0.0.2:40001/: the container's own address on network orchestro-bench_web, no docker-proxy
  nginx           http://127.0.0.1:40002/: on the host, worker_processes auto, round robin, upstream keepalive 256, access_log off
  gateway is what users get on this engine by default (userland proxy); gateway-direct what they get with "userland-proxy": false (kernel forwarding), on equal footing with nginx
  wrk -t2 -c64, 2 rounds × 10s, each target going first in turn; median [min – max]

  target           req/s                   p50                        p99                        errors
  gateway          11000 [10000 – 12000]   4.00ms [4.00ms – 4.00ms]   20.0ms [20.0ms – 20.0ms]   0
  gateway-direct   16000 [16000 – 16000]   3.00ms [3.00ms – 3.00ms]   15.0ms [15.0ms – 15.0ms]   0
  nginx            20000 [20000 – 20000]   2.00ms [2.00ms – 2.00ms]   10.0ms [10.0ms – 10.0ms]   0

  CPU per request, µs (median of rounds)   during gateway's   during gateway-direct's   during nginx's   processes
  gateway process, all threads             50.0               50.0                      0.0              pid 10
  its containerd-shim                      0.0                1.0                       -                pid 9
  docker-proxy of its port                 20.0               0.0                       -                pid [8]
  dockerd                                  5.0                3.0                       -                pid [7]
  nginx, master and workers                0.0                0.0                       25.0             master pid 20
  the replicas                             10.0               10.0                      10.0             pid [11 12 13]
  path: what every request goes through    75.0               54.0                      25.0             (paths below)
  (paths: gateway = gateway process + shim + docker-proxy + dockerd; gateway-direct = gateway process + shim + dockerd; nginx = nginx)

  over nginx, paired within each round   req/s                p50                  p99                  CPU/request, gateway process   CPU/request, path
  gateway/nginx                          0.55 [0.50 – 0.60]   2.00 [2.00 – 2.00]   2.00 [2.00 – 2.00]   2.00 [2.00 – 2.00]             3.00 [3.00 – 3.00]
  gateway-direct/nginx                   0.80 [0.80 – 0.80]   1.50 [1.50 – 1.50]   1.50 [1.50 – 1.50]   2.00 [2.00 – 2.00]             2.16 [2.16 – 2.16]

  engine CPU while the gateway serves, % of the gateway's own   dockerd + shim (goal: under 10%)   docker-proxy, apart
  during gateway's rounds                                       10.0% [10.0% – 10.0%]              40.0% [40.0% – 40.0%]
  during gateway-direct's rounds                                8.0% [8.0% – 8.0%]                 0.0% [0.0% – 0.0%]
  (dockerd during nginx's rounds is the engine's other work on this machine: background, not nginx's)
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("report mismatch (-want +got):\n%s", diff)
	}
}

func TestProductReportJSON(t *testing.T) {
	r := testProductReport()
	r.summarize()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	type vsNginx struct {
		RPS     stat `json:"ratio_rps"`
		P50     stat `json:"ratio_p50"`
		P99     stat `json:"ratio_p99"`
		CPU     stat `json:"ratio_cpu_per_request"`
		PathCPU stat `json:"ratio_path_cpu_per_request"`
	}
	type summary struct {
		CPU         map[string]stat `json:"cpu_per_request_us"`
		PathCPU     stat            `json:"path_cpu_per_request_us"`
		Engine      *stat           `json:"engine_cpu_percent_of_gateway"`
		DockerProxy *stat           `json:"docker_proxy_cpu_percent_of_gateway"`
		VsNginx     *vsNginx        `json:"vs_nginx"`
	}
	var got struct {
		Proxy struct {
			Targets []struct {
				Name          string   `json:"name"`
				URL           string   `json:"url"`
				PathProcesses []string `json:"path_processes"`
			} `json:"targets"`
			Summary struct {
				Targets map[string]summary `json:"targets"`
			} `json:"summary"`
		} `json:"proxy"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range got.Proxy.Targets {
		names = append(names, tg.Name+" "+tg.URL+" "+strings.Join(tg.PathProcesses, "+"))
	}
	wantNames := []string{
		"gateway http://127.0.0.1:40001/ gateway+containerd-shim+docker-proxy+dockerd",
		"gateway-direct http://10.0.0.2:40001/ gateway+containerd-shim+dockerd",
		"nginx http://127.0.0.1:40002/ nginx",
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("targets mismatch (-want +got):\n%s", diff)
	}
	gw, direct, ngx := got.Proxy.Summary.Targets[proxyGateway], got.Proxy.Summary.Targets[proxyGatewayDirect], got.Proxy.Summary.Targets[proxyNginx]
	if gw.VsNginx == nil || direct.VsNginx == nil || gw.Engine == nil || direct.Engine == nil || gw.DockerProxy == nil || direct.DockerProxy == nil {
		t.Fatalf("a gateway target's summary lacks its ratios or engine shares: %s", b)
	}
	if ngx.VsNginx != nil || ngx.Engine != nil || ngx.DockerProxy != nil {
		t.Errorf("nginx's summary has ratios or engine shares: %+v", ngx)
	}
	round := func(v stat) stat {
		r := func(x float64) float64 { return float64(int(x*1000+0.5)) / 1000 }
		return stat{Median: r(v.Median), Min: r(v.Min), Max: r(v.Max)}
	}
	for name, tt := range map[string]struct{ got, want stat }{
		"gateway rps":            {gw.VsNginx.RPS, stat{Median: 0.55, Min: 0.5, Max: 0.6}},
		"gateway p99":            {gw.VsNginx.P99, stat{Median: 2, Min: 2, Max: 2}},
		"gateway cpu":            {gw.VsNginx.CPU, stat{Median: 2, Min: 2, Max: 2}},
		"gateway path":           {gw.VsNginx.PathCPU, stat{Median: 3, Min: 3, Max: 3}},
		"gateway engine":         {*gw.Engine, stat{Median: 10, Min: 10, Max: 10}},
		"gateway docker-proxy":   {*gw.DockerProxy, stat{Median: 40, Min: 40, Max: 40}},
		"gateway cpu of gateway": {gw.CPU[cpuGateway], stat{Median: 50, Min: 50, Max: 50}},
		"direct rps":             {direct.VsNginx.RPS, stat{Median: 0.8, Min: 0.8, Max: 0.8}},
		"direct p50":             {direct.VsNginx.P50, stat{Median: 1.5, Min: 1.5, Max: 1.5}},
		"direct cpu":             {direct.VsNginx.CPU, stat{Median: 2, Min: 2, Max: 2}},
		"direct path":            {direct.VsNginx.PathCPU, stat{Median: 2.16, Min: 2.16, Max: 2.16}},
		"direct path cpu":        {direct.PathCPU, stat{Median: 54, Min: 54, Max: 54}},
		"direct engine":          {*direct.Engine, stat{Median: 8, Min: 8, Max: 8}},
		"direct docker-proxy":    {*direct.DockerProxy, stat{Median: 0, Min: 0, Max: 0}},
		"nginx path cpu":         {ngx.PathCPU, stat{Median: 25, Min: 25, Max: 25}},
	} {
		if diff := cmp.Diff(tt.want, round(tt.got)); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
		}
	}
}
