package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

func TestMergeOutput(t *testing.T) {
	at := func(s int) string {
		return time.Date(2026, 11, 22, 10, 0, s, 0, time.UTC).Format(time.RFC3339Nano)
	}
	tm := func(s int) time.Time { return time.Date(2026, 11, 22, 10, 0, s, 0, time.UTC) }
	tests := []struct {
		name           string
		stdout, stderr string
		n              int
		want           []api.ExitedLine
	}{
		{name: "no output", n: 50},
		{
			name:   "stdout and stderr merged in time order",
			stdout: at(1) + " listening\n" + at(3) + " bye\n",
			stderr: at(2) + " panic: boom\n",
			n:      50,
			want: []api.ExitedLine{
				{Time: tm(1), Text: "listening"},
				{Time: tm(2), Stderr: true, Text: "panic: boom"},
				{Time: tm(3), Text: "bye"},
			},
		},
		{
			name:   "the last n are kept",
			stdout: at(1) + " one\n" + at(2) + " two\n" + at(3) + " three\n",
			n:      2,
			want:   []api.ExitedLine{{Time: tm(2), Text: "two"}, {Time: tm(3), Text: "three"}},
		},
		{
			name:   "a last line without a newline, an empty line and CRLF",
			stdout: at(1) + " \r\n" + at(2) + " last words",
			n:      50,
			want:   []api.ExitedLine{{Time: tm(1), Text: ""}, {Time: tm(2), Text: "last words"}},
		},
		{
			name:   "lines without a timestamp are kept whole",
			stdout: "plain line\nanother one\n",
			n:      50,
			want:   []api.ExitedLine{{Text: "plain line"}, {Text: "another one"}},
		},
		{
			name:   "a long line is cut",
			stdout: at(1) + " " + strings.Repeat("x", maxKeptLine+10) + "\n",
			n:      50,
			want:   []api.ExitedLine{{Time: tm(1), Text: strings.Repeat("x", maxKeptLine) + "…"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeOutput(tt.stdout, tt.stderr, tt.n)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mergeOutput (-want +got):\n%s", diff)
			}
		})
	}
}

// TestControllerKeepsExitedOutput crashes a replica again and again: each
// time, the end of its output is kept before its container is removed,
// for the latest keptExited replicas, and status says how it failed.
func TestControllerKeepsExitedOutput(t *testing.T) {
	spec := testSpec()
	spec.Cell.Services["orders"].Replicas = 1
	h := newHarness(t, spec, "")
	h.step()
	var ids []string
	for i := range keptExited + 2 {
		h.step()
		id := h.id("orders", 1)
		ids = append(ids, id)
		var out strings.Builder
		for l := range keptLines + 5 {
			fmt.Fprintf(&out, "crash %d line %d\n", i, l)
		}
		if err := h.eng.SetLogs(id, out.String(), "fatal: crash "+strconv.Itoa(i)+"\n"); err != nil {
			t.Fatal(err)
		}
		if err := h.eng.Exit(id, 10+i); err != nil {
			t.Fatal(err)
		}
		h.step()
		h.clock.Advance(maxCrashDelay)
	}
	st := h.c.Status().Services[0]
	if len(st.Exited) != keptExited {
		t.Fatalf("kept %d exited replicas, want %d", len(st.Exited), keptExited)
	}
	for j, ex := range st.Exited {
		i := len(ids) - keptExited + j
		h.check(fmt.Sprintf("exited replica %d", j), []any{"demo-shop-orders-1", 1, ids[i], 10 + i, ""},
			[]any{ex.Name, ex.Replica, ex.ContainerID, ex.ExitCode, ex.Error})
		if len(ex.Lines) != keptLines {
			t.Errorf("exited replica %d kept %d lines, want %d", j, len(ex.Lines), keptLines)
			continue
		}
		// The fake's output has no timestamps: stdout, then stderr.
		h.check(fmt.Sprintf("last lines of exited replica %d", j), []api.ExitedLine{
			{Text: fmt.Sprintf("crash %d line %d", i, keptLines+3)},
			{Text: fmt.Sprintf("crash %d line %d", i, keptLines+4)},
			{Stderr: true, Text: fmt.Sprintf("fatal: crash %d", i)},
		}, ex.Lines[keptLines-3:])
	}
	code := 10 + len(ids) - 1
	h.check("failures, last exit code", []any{len(ids), &code, ""}, []any{st.Failures, st.LastExitCode, st.LastError})
}

// TestControllerStartFailureStatus: a replica that cannot start puts its
// service in crashloop once the streak is long enough, with the engine's
// error, and the service stays in crashloop while the next try runs.
func TestControllerStartFailureStatus(t *testing.T) {
	spec := testSpec()
	spec.Cell.Services["orders"].Replicas = 1
	h := newHarness(t, spec, "")
	startErr := `exec: "/nope": stat /nope: no such file or directory`
	h.eng.SetError("ContainerStart", fmt.Errorf("%s", startErr))
	wantErr := "start replica demo-shop-orders-1: " + startErr

	type view struct {
		Health   string
		Failures int
		Error    string
		NextTry  time.Duration
	}
	status := func() view {
		st := h.c.Status().Services[0]
		v := view{Health: st.Health, Failures: st.Failures, Error: st.LastError}
		if !st.NextTry.IsZero() {
			v.NextTry = st.NextTry.Sub(h.clock.Now())
		}
		if st.LastExitCode != nil {
			t.Errorf("a failed start reports exit code %d", *st.LastExitCode)
		}
		return v
	}
	h.step()
	h.check("after the first failure", view{Health: "starting", Failures: 1, Error: wantErr, NextTry: time.Second}, status())
	h.clock.Advance(time.Second)
	h.step()
	h.check("after the second failure", view{Health: "starting", Failures: 2, Error: wantErr, NextTry: 2 * time.Second}, status())
	h.clock.Advance(2 * time.Second)
	h.step()
	h.check("after the third failure", view{Health: "crashloop", Failures: 3, Error: wantErr, NextTry: 4 * time.Second}, status())
	h.clock.Advance(4 * time.Second)
	h.check("as the next try is due", view{Health: "crashloop", Failures: 3, Error: wantErr}, status())
	h.step()
	h.check("after the fourth failure", view{Health: "crashloop", Failures: 4, Error: wantErr, NextTry: 8 * time.Second}, status())

	// Each replica that never started is kept, saying so.
	exited := h.c.Status().Services[0].Exited
	if len(exited) == 0 {
		t.Fatal("no replica that never started was kept")
	}
	for _, ex := range exited {
		h.check("kept replica that never started", []any{"demo-shop-orders-1", "never started", 0}, []any{ex.Name, ex.Error, len(ex.Lines)})
	}

	// Once a replica starts and is ready, the service is healthy again.
	h.eng.SetError("ContainerStart", nil)
	h.clock.Advance(8 * time.Second)
	h.step()
	h.step()
	if got := h.c.Status().Services[0].Health; got != "healthy" {
		t.Errorf("health once a replica runs = %q, want healthy", got)
	}
}
