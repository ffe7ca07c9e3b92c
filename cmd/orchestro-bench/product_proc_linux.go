//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ownCPU returns the user plus system CPU time used so far by pid alone:
// every thread of its thread group, none of its children (a
// containerd-shim's child is the container it runs; dockerd's are
// containerd and the docker-proxies).
func ownCPU(pid int) (time.Duration, error) {
	ticks, err := statTicks(pid)
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// parentPID reads the parent of pid from /proc/<pid>/stat.
func parentPID(pid int) (int, error) {
	// ppid is field 4 of stat.
	f, err := statFields(pid, 4, "parent")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f[1])
}

// processComm returns the command name of pid, or "".
func processComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// allPIDs lists the processes in /proc.
func allPIDs() []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// pidsByComm lists the processes whose command name is name.
func pidsByComm(name string) []int {
	var out []int
	for _, pid := range allPIDs() {
		if processComm(pid) == name {
			out = append(out, pid)
		}
	}
	return out
}

// dockerProxyPIDs lists the docker-proxy processes that forward
// hostIP:hostPort.
func dockerProxyPIDs(hostIP string, hostPort int) []int {
	var out []int
	for _, pid := range allPIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if ip, port, ok := dockerProxyTarget(args); ok && ip == hostIP && port == hostPort {
			out = append(out, pid)
		}
	}
	return out
}

// machineBusy returns the CPU time the machine's CPUs have spent busy
// since boot, all of them together: user, nice, system, irq and softirq
// time from the first line of /proc/stat (idle, iowait and the time the
// hypervisor took are not the machine's work).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
