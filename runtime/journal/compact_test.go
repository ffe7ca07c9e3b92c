package journal

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/flow"
)

func TestShouldCompact(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		file, live int64
		want       bool
	}{
		{10 * mib, 1 * mib, false},   // small: not worth it
		{100 * mib, 60 * mib, false}, // mostly live
		{100 * mib, 50 * mib, false}, // exactly twice
		{100 * mib, 49 * mib, true},
		{65 * mib, 0, true},
		{64 * mib, 0, false},
	}
	for _, tt := range tests {
		if got := shouldCompact(tt.file, tt.live, defaultCompactAbove); got != tt.want {
			t.Errorf("shouldCompact(%d MiB, %d MiB) = %v, want %v", tt.file/mib, tt.live/mib, got, tt.want)
		}
	}
}

// TestCompaction bloats a journal (many executions unfinished at once,
// then ended and dropped by retention) and checks that Open compacts it
// and keeps its data.
func TestCompaction(t *testing.T) {
	path := tempPath(t)
	s := open(t, path, Options{Retain: 2})
	body := make([]byte, 32<<10)
	const n = 300
	for i := range n {
		id := fmt.Sprintf("e%03d", i)
		s.Begin(beginRec(id, "f", t0.Add(time.Duration(i)*time.Second)))
		s.Step(id, &flow.StepRecord{Step: "big", State: flow.StepSucceeded, Body: body})
	}
	s.Begin(beginRec("open", "f", t0))
	wait(t, s.Intent("open", "step"))
	for i := range n {
		s.End(fmt.Sprintf("e%03d", i), endRec(flow.Succeeded, t0))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	// A leftover of an interrupted compaction is removed.
	if err := os.WriteFile(path+compactSuffix, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}

	var logs []string
	s = open(t, path, Options{Retain: 2, compactAbove: 1 << 20, Logf: func(f string, a ...any) {
		logs = append(logs, fmt.Sprintf(f, a...))
	}})
	after := fileSize(t, path)
	if after*4 > before {
		t.Errorf("file of %d bytes compacted to %d", before, after)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "compacted") {
		t.Errorf("logs: %q", logs)
	}
	if _, err := os.Stat(path + compactSuffix); !os.IsNotExist(err) {
		t.Errorf("leftover: %v", err)
	}
	t.Logf("%d bytes compacted to %d", before, after)

	// The data is whole, and the journal goes on.
	list, err := s.List(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].ID != "e299" || list[1].ID != "e298" {
		t.Errorf("executions after compaction: %+v", list)
	}
	x, err := s.Get("e299")
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Steps) != 1 || len(x.Steps[0].Body) != len(body) {
		t.Errorf("steps after compaction: %+v", x.Steps)
	}
	un, err := s.Unfinished()
	if err != nil || len(un) != 1 || un[0].Begin.ID != "open" {
		t.Errorf("unfinished after compaction: %v, %v", un, err)
	}
	wait(t, s.End("open", endRec(flow.Succeeded, t0)))

	// Opened again, the file is no longer worth compacting.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logs = nil
	open(t, path, Options{compactAbove: 1 << 20, Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	if len(logs) != 0 {
		t.Errorf("second open: %q", logs)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
