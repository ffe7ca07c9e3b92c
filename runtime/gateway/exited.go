package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/orchestro/orchestro/runtime/api"
)

// The output of replicas that exited. Their containers are removed at once
// (and replaced), taking their logs with them, so the gateway reads the end
// of the output first and keeps it, for `logs` and status.
const (
	// keptLines is how many of its last lines an exited replica keeps.
	keptLines = 50
	// keptExited is how many exited replicas a service keeps, the latest.
	keptExited = 3
	// maxKeptLine bounds one kept line, in bytes.
	maxKeptLine = 4 << 10
	// outputTimeout bounds reading one exited replica's output, so an
	// engine that does not answer does not hold up the round.
	outputTimeout = 5 * time.Second
)

// keepExited reads the last lines of a replica that exited (or never
// started) before the removal op takes its container away, and keeps them
// with how it ended. A failure to read is kept as the replica's entry with
// no lines: how it ended is worth keeping still.
func (c *Controller) keepExited(ctx context.Context, op Op) {
	c.mu.Lock()
	r := c.replicas[op.ID]
	var ex api.ExitedReplica
	if r != nil {
		ex = api.ExitedReplica{Name: r.name, Replica: r.n, ContainerID: r.id, ExitCode: r.exitCode}
	}
	c.mu.Unlock()
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, outputTimeout)
	defer cancel()
	if op.Cause == CauseNeverStarted {
		ex.Error = "never started"
		if ins, err := c.eng.ContainerInspect(ctx, op.ID); err == nil && ins.ContainerJSONBase != nil && ins.State != nil && ins.State.Error != "" {
			ex.Error = ins.State.Error
		}
	}
	lines, err := c.lastOutput(ctx, op.ID)
	if err != nil {
		lines = []api.ExitedLine{{Stderr: true, Text: fmt.Sprintf("(orchestro: the output could not be read: %v)", err)}}
	}
	ex.Lines = lines
	c.mu.Lock()
	ex.Removed = c.now()
	c.exited[op.Service] = keepLatest(c.exited[op.Service], ex, keptExited)
	c.mu.Unlock()
}

// keepLatest appends ex to kept and drops the oldest entries beyond n.
func keepLatest(kept []api.ExitedReplica, ex api.ExitedReplica, n int) []api.ExitedReplica {
	kept = append(kept, ex)
	if len(kept) > n {
		kept = slices.Clone(kept[len(kept)-n:])
	}
	return kept
}

// lastOutput reads the last keptLines lines of a container's output,
// stdout and stderr merged in time order.
func (c *Controller) lastOutput(ctx context.Context, id string) ([]api.ExitedLine, error) {
	rc, err := c.eng.ContainerLogs(ctx, id, container.LogsOptions{
		ShowStdout: true, ShowStderr: true, Timestamps: true, Tail: strconv.Itoa(keptLines),
	})
	if err != nil {
		return nil, fmt.Errorf("logs of %s: %w", shortID(id), err)
	}
	defer rc.Close()
	var stdout, stderr bytes.Buffer
	// The tail is at most keptLines lines; the limit only guards against
	// an engine that sends more.
	if _, err := stdcopy.StdCopy(&stdout, &stderr, io.LimitReader(rc, keptLines*maxKeptLine*2)); err != nil {
		return nil, fmt.Errorf("logs of %s: %w", shortID(id), err)
	}
	return mergeOutput(stdout.String(), stderr.String(), keptLines), nil
}

// mergeOutput splits the engine's timestamped stdout and stderr into lines,
// merges them in time order and keeps the last n. It is a pure function.
func mergeOutput(stdout, stderr string, n int) []api.ExitedLine {
	var lines []api.ExitedLine
	split := func(s string, isErr bool) {
		for l := range strings.Lines(s) {
			l = strings.TrimRight(l, "\r\n")
			t, text := splitTimestamp(l)
			if len(text) > maxKeptLine {
				text = text[:maxKeptLine] + "…"
			}
			lines = append(lines, api.ExitedLine{Time: t, Stderr: isErr, Text: text})
		}
	}
	split(stdout, false)
	split(stderr, true)
	slices.SortStableFunc(lines, func(a, b api.ExitedLine) int { return a.Time.Compare(b.Time) })
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// splitTimestamp separates the RFC 3339 timestamp the engine puts before
// each line; a line without one keeps its text whole and a zero time.
func splitTimestamp(l string) (time.Time, string) {
	ts, text, ok := strings.Cut(l, " ")
	if !ok {
		ts, text = l, ""
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, l
	}
	return t, text
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
