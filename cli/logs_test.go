package cli

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// testLogs are lines of two cells, a gateway access log among them.
func testLogs() []api.LogLine {
	at := func(ms int) time.Time { return testNow.Add(time.Duration(ms) * time.Millisecond) }
	return []api.LogLine{
		{Cell: "shop", Service: "orders", Replica: 1, Time: at(1), Text: "listening on :8080\n"},
		{Cell: "shop", Service: "gateway", Time: at(2), Text: `GET /orders 200 1.2ms req=7f3a`},
		{Cell: "users", Service: "accounts", Replica: 1, Time: at(3), Text: "ready"},
		{Cell: "shop", Service: "orders", Replica: 2, Time: at(4), Stderr: true, Text: "slow query\ntook 2s\n"},
		{Cell: "shop", Service: "catalog", Replica: 1, Time: at(1500), Text: "loaded 12 items"},
	}
}

func TestLogs(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCall string
		golden   string
	}{
		{
			name:     "everything",
			args:     []string{"logs"},
			wantCall: `Logs demo cell="" service="" follow=false tail=-1 since=-`,
			golden:   "logs.stdout",
		},
		{
			name:     "timestamps",
			args:     []string{"logs", "-t"},
			wantCall: `Logs demo cell="" service="" follow=false tail=-1 since=-`,
			golden:   "logs_timestamps.stdout",
		},
		{
			name:     "one service",
			args:     []string{"logs", "shop/orders", "--tail", "5", "--since", "10m", "-f"},
			wantCall: `Logs demo cell="shop" service="orders" follow=true tail=5 since=2026-11-22T09:50:00Z`,
			golden:   "logs_service.stdout",
		},
		{
			name:     "one cell",
			args:     []string{"logs", "shop", "--since", "2026-11-22T09:00:00+01:00", "--tail", "0"},
			wantCall: `Logs demo cell="shop" service="" follow=false tail=0 since=2026-11-22T08:00:00Z`,
			golden:   "logs_cell.stdout",
		},
		{
			name:     "gateway access log",
			args:     []string{"logs", "shop/gateway"},
			wantCall: `Logs demo cell="shop" service="gateway" follow=false tail=-1 since=-`,
			golden:   "logs_gateway.stdout",
		},
		{
			name:     "file flag before the verb",
			args:     []string{"-f", "cell.yaml", "logs", "-f"},
			wantCall: `Logs demo cell="" service="" follow=true tail=-1 since=-`,
			golden:   "logs.stdout",
		},
		{
			name:     "file flag spelt out",
			args:     []string{"logs", "--file", "cell.yaml", "-f"},
			wantCall: `Logs demo cell="" service="" follow=true tail=-1 since=-`,
			golden:   "logs.stdout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.be.logs = testLogs()
			if code := h.run(t.Context(), tt.args...); code != ExitOK {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
			}
			h.wantCalls("connect", tt.wantCall)
			golden(t, tt.golden, h.out.String())
			if h.errOut.Len() != 0 {
				t.Errorf("stderr = %q, want nothing", h.errOut)
			}
		})
	}
}

func TestLogsFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.be.logsErr = fmt.Errorf("find containers: %w", api.ErrNotRunning)
	if code := h.run(t.Context(), "logs"); code != ExitFailure {
		t.Errorf("exit code = %d, want %d", code, ExitFailure)
	}
	if want := "error: logs of demo: find containers: project is not running\n"; h.errOut.String() != want {
		t.Errorf("stderr = %q, want %q", h.errOut, want)
	}
}

func TestLogPrefix(t *testing.T) {
	tests := []struct {
		cell, service string
		replica       int
		want          string
	}{
		{"shop", "orders", 1, "shop/orders-1"},
		{"shop", "orders", 12, "shop/orders-12"},
		{"shop", "gateway", 0, "shop/gateway"},
	}
	for _, tt := range tests {
		if got := logPrefix(tt.cell, tt.service, tt.replica); got != tt.want {
			t.Errorf("logPrefix(%q, %q, %d) = %q, want %q", tt.cell, tt.service, tt.replica, got, tt.want)
		}
	}
}

// TestLogPrinterColor checks one colour per prefix, the same one for every
// line of a prefix.
func TestLogPrinterColor(t *testing.T) {
	var b strings.Builder
	lp := newLogPrinter(&b, true, false, nil)
	for _, l := range []api.LogLine{
		{Cell: "shop", Service: "orders", Replica: 1, Text: "a"},
		{Cell: "shop", Service: "orders", Replica: 2, Text: "b"},
		{Cell: "shop", Service: "orders", Replica: 1, Text: "c"},
	} {
		lp.Print(l)
	}
	want := "\x1b[38;5;6mshop/orders-1 │\x1b[0m a\n" +
		"\x1b[38;5;5mshop/orders-2 │\x1b[0m b\n" +
		"\x1b[38;5;6mshop/orders-1 │\x1b[0m c\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// TestLogPrinterConcurrent checks that lines printed from many goroutines
// come out whole.
func TestLogPrinterConcurrent(t *testing.T) {
	var b lockedBuilder
	lp := newLogPrinter(&b, false, true, []string{"shop/orders-10"})
	var wg sync.WaitGroup
	for r := 1; r <= 8; r++ {
		wg.Go(func() {
			for i := range 100 {
				lp.Print(api.LogLine{Cell: "shop", Service: "orders", Replica: r, Time: testNow, Text: fmt.Sprintf("line %d of %d\n", i, r)})
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("got %d lines, want 800", len(lines))
	}
	re := regexp.MustCompile(`^shop/orders-(\d)  │ 2026-11-22T10:00:00Z line \d+ of (\d)$`)
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil || m[1] != m[2] {
			t.Fatalf("mangled line %q", l)
		}
	}
}

// lockedBuilder is a strings.Builder safe for concurrent use, like a real
// stdout: what the test checks is that the printer writes whole lines and,
// under the race detector, guards its own state.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedBuilder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuilder) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestParseSince(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", time.Time{}, false},
		{"90s", testNow.Add(-90 * time.Second), false},
		{"1h30m", testNow.Add(-90 * time.Minute), false},
		{"2026-11-22T09:00:00Z", testNow.Add(-time.Hour), false},
		{"2026-11-22T09:00:00.5Z", testNow.Add(-time.Hour + 500*time.Millisecond), false},
		{"-1m", time.Time{}, true},
		{"2026-11-22", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, testNow)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
