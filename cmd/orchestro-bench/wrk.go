package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wrkResult is what one wrk run measured.
type wrkResult struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64
	// SocketErrors adds up wrk's connect, read, write and timeout errors.
	SocketErrors int64
	// Non2xx counts responses with a status other than 2xx or 3xx.
	Non2xx int64
}

// errors is every failed request wrk saw.
func (r wrkResult) errors() int64 { return r.SocketErrors + r.Non2xx }

// wrkTimeout is wrk's per-request timeout: a request slower than this is
// counted as a timeout error rather than measured.
const wrkTimeout = 5 * time.Second

// runWrk loads url with conns connections for d (whole seconds) and
// returns what wrk measured. Ending ctx stops wrk.
func runWrk(ctx context.Context, bin, url string, conns, threads int, d time.Duration) (wrkResult, error) {
	threads = min(threads, conns) // wrk refuses more threads than connections
	cmd := exec.CommandContext(ctx, bin,
		"-t", strconv.Itoa(threads),
		"-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", int(d/time.Second)),
		"--timeout", fmt.Sprintf("%ds", int(wrkTimeout/time.Second)),
		"--latency", url)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return wrkResult{}, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String() + "\n" + stdout.String())
		return wrkResult{}, fmt.Errorf("wrk %s: %w: %s", url, err, msg)
	}
	res, err := parseWrk(stdout.String())
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w", url, err)
	}
	return res, nil
}

// parseWrk reads the report wrk prints with --latency:
//
//	  Latency Distribution
//	     50%  635.00us
//	     99%    6.10ms
//	  1234567 requests in 10.00s, 150.70MB read
//	  Socket errors: connect 0, read 0, write 0, timeout 3
//	  Non-2xx or 3xx responses: 12
//	Requests/sec: 123456.78
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveP50, haveP99, inDist bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case line == "Latency Distribution":
			inDist = true
			continue
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("parse latency %q: %w", line, err)
			}
			switch f[0] {
			case "50%", "50.000%":
				r.P50, haveP50 = d, true
			case "99%", "99.000%":
				r.P99, haveP99 = d, true
			}
			continue
		}
		inDist = false
		switch {
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("parse %q: %w", line, err)
			}
			r.RPS, haveRPS = v, true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("parse %q: %w", line, err)
			}
			r.Requests = n
		case strings.HasPrefix(line, "Socket errors:"):
			// connect 0, read 0, write 0, timeout 0
			for _, part := range strings.Split(strings.TrimPrefix(line, "Socket errors:"), ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return r, fmt.Errorf("parse %q", line)
				}
				n, err := strconv.ParseInt(kv[1], 10, 64)
				if err != nil {
					return r, fmt.Errorf("parse %q: %w", line, err)
				}
				r.SocketErrors += n
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(f) == 5:
			n, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return r, fmt.Errorf("parse %q: %w", line, err)
			}
			r.Non2xx = n
		}
	}
	if !haveRPS || !haveP50 || !haveP99 {
		return r, fmt.Errorf("no requests/s and latency distribution in wrk's output (was it run with --latency?)")
	}
	return r, nil
}

// parseWrkDuration reads wrk's time format: a number and one of us, ms, s,
// m or h.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		return time.Duration(v * float64(u.unit)), nil
	}
	return 0, fmt.Errorf("duration %q: unknown unit", s)
}
