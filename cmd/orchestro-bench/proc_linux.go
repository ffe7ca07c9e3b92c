//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysProcAttr puts a child in a process group of its own, so a Ctrl-C at
// the terminal reaches only the tool, which then stops its children in
// order. Pdeathsig is the safety net for a tool that is killed outright:
// SIGTERM rather than SIGKILL, so that nginx's master stops its workers
// before it exits.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// signalGroup sends sig to the process group led by pid (nginx's workers
// are in its master's group).
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// processCPU returns the user plus system CPU time used so far by pid and
// its live children (nginx's workers), from /proc.
func processCPU(pid int) (time.Duration, error) {
	ticks, err := statTicks(pid)
	if err != nil {
		return 0, err
	}
	for _, c := range childPIDs(pid) {
		if t, err := statTicks(c); err == nil {
			ticks += t
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// statTicks reads utime+stime from /proc/<pid>/stat.
func statTicks(pid int) (int64, error) {
	// utime and stime are fields 14 and 15 of stat.
	f, err := statFields(pid, 15, "cpu time")
	if err != nil {
		return 0, err
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("read cpu time of pid %d: malformed stat", pid)
	}
	return utime + stime, nil
}

// statFields reads /proc/<pid>/stat and returns its fields from the third
// (the state) on, so that field n of stat is the (n-3)th; it holds at
// least up to field n. what names the reading in errors.
func statFields(pid, n int, what string) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, fmt.Errorf("read %s of pid %d: %w", what, pid, err)
	}
	// The command name is in parentheses and may hold spaces: the
	// fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("read %s of pid %d: malformed stat", what, pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < n-2 {
		return nil, fmt.Errorf("read %s of pid %d: malformed stat", what, pid)
	}
	return f, nil
}

// childPIDs lists the live children of pid.
func childPIDs(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// peakRSS returns the peak resident set size of pid (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read peak rss of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read peak rss of pid %d: %w", pid, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("read peak rss of pid %d: no VmHWM in status", pid)
}

// kernelRelease returns the running kernel's release, or "".
func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// loadAverage returns the one-minute load average, or "".
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return ""
}
