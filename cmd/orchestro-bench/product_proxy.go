package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/orchestro/orchestro/runtime/engine"
)

// Process groups whose CPU time the data-path comparison reads around each
// measurement.
const (
	// cpuGateway is the gateway container's process (`orchestro
	// gateway`), all its threads: /proc/<pid>/stat of a thread group
	// counts every thread, live or exited.
	cpuGateway = "gateway"
	// cpuShim is the containerd-shim that is the gateway process's
	// parent, without its children (the gateway).
	cpuShim = "containerd-shim"
	// cpuDockerProxy is Docker's userland proxy for the gateway's
	// published port, which carries every connection of the gateway
	// target (not gateway-direct's) into the container; absent when the
	// engine runs without it.
	cpuDockerProxy = "docker-proxy"
	// cpuDockerd is every process named dockerd, without its children
	// (containerd, the docker-proxies). It copies the containers' stdout
	// to their logs: the gateway's access log goes through it.
	cpuDockerd = "dockerd"
	// cpuNginx is nginx's master and workers.
	cpuNginx = "nginx"
	// cpuReplicas is the three replica containers' processes, the same
	// work behind either proxy.
	cpuReplicas = "replicas"
)

// cpuGroups is the order the report lists the groups in.
var cpuGroups = []string{cpuGateway, cpuShim, cpuDockerProxy, cpuDockerd, cpuNginx, cpuReplicas}

// Targets of the data-path comparison.
const (
	// proxyGateway is the gateway container at its published port on
	// 127.0.0.1, as users reach it: through docker-proxy on an engine
	// with the userland proxy (the default), through the kernel's DNAT
	// on one with "userland-proxy": false.
	proxyGateway = "gateway"
	// proxyGatewayDirect is the same container at its own address on the
	// cell network and its container port (the same number as the
	// published one), with no docker-proxy in between: what the host
	// gets when the engine forwards in the kernel, and the footing nginx
	// is on, which reaches the replicas at their addresses.
	proxyGatewayDirect = "gateway-direct"
	// proxyNginx is nginx on the host, in front of the same replicas.
	proxyNginx = "nginx"
)

// proxyTargets are the targets in the order the report lists them.
var proxyTargets = []string{proxyGateway, proxyGatewayDirect, proxyNginx}

// gatewayTargets are the targets that reach the gateway container, each
// compared with nginx.
var gatewayTargets = []string{proxyGateway, proxyGatewayDirect}

// proxyOrder is the order wrk loads the targets in a round: proxyTargets
// rotated by one each round, so each goes first in turn (and each follows
// each other) and drift on the machine favours none.
func proxyOrder(round int) []string {
	n := len(proxyTargets)
	out := make([]string, n)
	for i := range n {
		out[i] = proxyTargets[(round+i)%n]
	}
	return out
}

// cpuCounter reads the CPU time a process group has used so far.
type cpuCounter func() (time.Duration, error)

// sumCPU reads the CPU time of each pid with read and adds them up.
func sumCPU(read func(int) (time.Duration, error), pids []int) cpuCounter {
	return func() (time.Duration, error) {
		if len(pids) == 0 {
			return 0, fmt.Errorf("no process")
		}
		var total time.Duration
		for _, pid := range pids {
			d, err := read(pid)
			if err != nil {
				return 0, err
			}
			total += d
		}
		return total, nil
	}
}

// readCPU reads every counter; a group that cannot be read is left out.
func readCPU(counters map[string]cpuCounter) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, read := range counters {
		if d, err := read(); err == nil {
			out[name] = d
		}
	}
	return out
}

// runProxy starts the web cell alone (three replicas behind its gateway),
// puts nginx on the host in front of the same three containers, and loads
// the gateway at its published port, the gateway at its container address
// and nginx with wrk, in rounds that rotate who goes first.
func (e *productEnv) runProxy(ctx context.Context, port int) (*proxyReport, error) {
	cell := *e.orchestro
	cell.base = []string{"-p", productProject, "-f", filepath.Join(e.o.dir, productProxyCellFile)}
	e.progress("proxy: %s up -d --wait with the %s cell alone, untimed", productProject, productProxyCell)
	if _, err := cell.run(ctx, "up", "-d", "--wait"); err != nil {
		return nil, err
	}

	replicas, replicaPIDs, err := e.proxyReplicas(ctx)
	if err != nil {
		return nil, err
	}
	gwName := engine.GatewayName(productProject, productProxyCell)
	gw, err := e.eng.ContainerInspect(ctx, gwName)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", gwName, err)
	}
	if gw.State == nil || gw.State.Pid == 0 {
		return nil, fmt.Errorf("inspect %s: no process: is it running?", gwName)
	}
	// The gateway's address on its cell network, as the replicas' are
	// found; it listens on the cell's gateway port, which is published at
	// the same number.
	netName := engine.NetworkName(productProject, productProxyCell)
	var gwIP string
	if gw.NetworkSettings != nil {
		if ep := gw.NetworkSettings.Networks[netName]; ep != nil {
			gwIP = ep.IPAddress
		}
	}
	if gwIP == "" {
		return nil, fmt.Errorf("gateway %s has no address on network %s", gwName, netName)
	}
	gwPID := gw.State.Pid
	shimPID, err := parentPID(gwPID)
	if err != nil {
		return nil, fmt.Errorf("find the containerd-shim of %s: %w", gwName, err)
	}
	proxies := dockerProxyPIDs("127.0.0.1", port)
	dockerds := pidsByComm("dockerd")

	dir, err := os.MkdirTemp("", "orchestro-bench-product-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ngx, ngxAddr, err := startNginx(ctx, e.tools.nginx, dir, replicas)
	if err != nil {
		return nil, err
	}
	defer ngx.stop()

	targets := map[string]*target{
		proxyGateway:       {name: proxyGateway, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))},
		proxyGatewayDirect: {name: proxyGatewayDirect, addr: net.JoinHostPort(gwIP, strconv.Itoa(port))},
		proxyNginx:         {name: proxyNginx, addr: ngxAddr, proc: ngx},
	}
	proxyCPU := sumCPU(ownCPU, proxies)
	if len(proxies) == 0 {
		// An engine without the userland proxy forwards the port in the
		// kernel: no process, no CPU of its own to count.
		proxyCPU = func() (time.Duration, error) { return 0, nil }
	}
	counters := map[string]cpuCounter{
		cpuGateway:     sumCPU(ownCPU, []int{gwPID}),
		cpuShim:        sumCPU(ownCPU, []int{shimPID}),
		cpuDockerProxy: proxyCPU,
		cpuDockerd:     sumCPU(ownCPU, dockerds),
		cpuNginx:       sumCPU(processCPU, []int{ngx.pid()}),
		cpuReplicas:    sumCPU(ownCPU, replicaPIDs),
	}
	r := &proxyReport{
		AccessLog:       e.o.accessLog,
		Rounds:          e.o.rounds,
		DurationSeconds: int(e.o.duration / time.Second),
		Connections:     e.o.conns,
		Threads:         e.o.threads,
		Replicas:        replicas,
		Network:         netName,
		UserlandProxy:   len(proxies) > 0,
		NginxKeepalive:  nginxKeepalive,
		Processes: map[string]string{
			cpuGateway:     fmt.Sprintf("pid %d (%s, container %s)", gwPID, processComm(gwPID), gwName),
			cpuShim:        fmt.Sprintf("pid %d (%s)", shimPID, processComm(shimPID)),
			cpuDockerProxy: fmtPIDs(proxies),
			cpuDockerd:     fmtPIDs(dockerds),
			cpuNginx:       fmt.Sprintf("master pid %d and its workers", ngx.pid()),
			cpuReplicas:    fmtPIDs(replicaPIDs),
		},
	}
	index := map[string]int{}
	for _, name := range proxyTargets {
		index[name] = len(r.Targets)
		r.Targets = append(r.Targets, proxyTarget{Name: name, URL: targets[name].url(), PathProcesses: pathGroups(name)})
	}
	e.progress("proxy: gateway %s and %s (pid %d, shim %d, docker-proxy %v, dockerd %v); nginx %s; replicas %v",
		targets[proxyGateway].url(), targets[proxyGatewayDirect].url(), gwPID, shimPID, proxies, dockerds, targets[proxyNginx].url(), replicas)

	for _, name := range proxyTargets {
		if err := checkTarget(ctx, targets[name]); err != nil {
			return nil, err
		}
	}
	if e.o.warmup > 0 {
		for _, name := range proxyTargets {
			e.progress("warm-up %-14s %d connections, %s", name, e.o.conns, e.o.warmup)
			if _, err := runWrk(ctx, e.tools.wrk, targets[name].url(), e.o.conns, e.o.threads, e.o.warmup); err != nil {
				return nil, err
			}
		}
	}
	for round := range e.o.rounds {
		for _, name := range proxyOrder(round) {
			t := targets[name]
			cpu0 := readCPU(counters)
			res, err := runWrk(ctx, e.tools.wrk, t.url(), e.o.conns, e.o.threads, e.o.duration)
			cpu1 := readCPU(counters)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round+1, name, err)
			}
			if t.proc != nil && t.proc.exited() {
				return nil, t.proc.exitError()
			}
			pr := proxyRound{
				Round:      round + 1,
				RPS:        res.RPS,
				P50Ms:      ms(res.P50),
				P99Ms:      ms(res.P99),
				Requests:   res.Requests,
				Errors:     res.errors(),
				CPUSeconds: map[string]float64{},
			}
			for g, d1 := range cpu1 {
				if d0, ok := cpu0[g]; ok {
					pr.CPUSeconds[g] = (d1 - d0).Seconds()
				}
			}
			rt := &r.Targets[index[name]]
			rt.Rounds = append(rt.Rounds, pr)
			e.progress("round %d/%d  %4d conns  %-14s %9.0f req/s  p50 %-8s p99 %-8s%s",
				round+1, e.o.rounds, e.o.conns, name, res.RPS, fmtDur(res.P50), fmtDur(res.P99), errNote(sample{wrkResult: res}))
		}
	}
	return r, nil
}

// proxyReplicas returns the addresses of the web cell's replicas on their
// cell network, ordered by replica number, and their processes.
func (e *productEnv) proxyReplicas(ctx context.Context) ([]string, []int, error) {
	cs, err := e.eng.ContainerList(ctx, container.ListOptions{Filters: orchestroFilter(
		engine.LabelRole+"="+engine.RoleReplica, engine.LabelCell+"="+productProxyCell)})
	if err != nil {
		return nil, nil, fmt.Errorf("list the replicas of cell %s: %w", productProxyCell, err)
	}
	if len(cs) != productProxyReplicas {
		return nil, nil, fmt.Errorf("cell %s runs %d replicas, want %d", productProxyCell, len(cs), productProxyReplicas)
	}
	slices.SortFunc(cs, func(a, b container.Summary) int {
		x, _ := strconv.Atoi(a.Labels[engine.LabelReplica])
		y, _ := strconv.Atoi(b.Labels[engine.LabelReplica])
		return x - y
	})
	netName := engine.NetworkName(productProject, productProxyCell)
	var addrs []string
	var pids []int
	for _, c := range cs {
		name := engine.ContainerName(c.Names)
		var ip string
		if c.NetworkSettings != nil {
			if ep := c.NetworkSettings.Networks[netName]; ep != nil {
				ip = ep.IPAddress
			}
		}
		if ip == "" {
			return nil, nil, fmt.Errorf("replica %s has no address on network %s", name, netName)
		}
		addrs = append(addrs, fmt.Sprintf("%s:%d", ip, productReplicaPort))
		in, err := e.eng.ContainerInspect(ctx, c.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("inspect replica %s: %w", name, err)
		}
		if in.State != nil && in.State.Pid != 0 {
			pids = append(pids, in.State.Pid)
		}
	}
	return addrs, pids, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtPIDs(pids []int) string {
	if len(pids) == 0 {
		return "none found"
	}
	return fmt.Sprintf("pid %v", pids)
}

// dockerProxyTarget reads the host address a docker-proxy command line
// forwards from:
//
//	/usr/sbin/docker-proxy -proto tcp -host-ip 127.0.0.1 -host-port 18580 -container-ip 192.168.224.2 -container-port 18580
func dockerProxyTarget(args []string) (hostIP string, hostPort int, ok bool) {
	if len(args) == 0 || filepath.Base(args[0]) != "docker-proxy" {
		return "", 0, false
	}
	for i := 1; i+1 < len(args); i++ {
		switch args[i] {
		case "-host-ip":
			hostIP = args[i+1]
		case "-host-port":
			if p, err := strconv.Atoi(args[i+1]); err == nil {
				hostPort = p
			}
		}
	}
	return hostIP, hostPort, hostIP != "" && hostPort > 0
}
