package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// crashStatus is a cell with a service whose replica keeps exiting and one
// whose replica cannot start.
func crashStatus() *api.ProjectStatus {
	code := 1
	return &api.ProjectStatus{Project: "demo", Cells: []api.CellStatus{{
		Cell: "shop", Gateway: gatewayRunning, URL: "http://127.0.0.1:8081",
		Services: []api.ServiceStatus{
			{
				Service: "catalog", Image: "example/catalog:2", Desired: 1, Health: "crashloop",
				Failures: 4, LastExitCode: &code, NextTry: testNow.Add(4 * time.Second),
				Replicas: []api.ReplicaStatus{},
				Exited: []api.ExitedReplica{{Name: "demo-shop-catalog-1", Replica: 1, ContainerID: "k1", ExitCode: 1, Removed: testNow,
					Lines: []api.ExitedLine{{Time: testNow.Add(-time.Second), Stderr: true, Text: "panic: no config"}}}},
			},
			{
				Service: "orders", Image: "example/orders:1.4", Desired: 2, Health: "crashloop",
				Failures: 3, LastError: `start replica demo-shop-orders-1: exec: "/nope": stat /nope: no such file or directory`,
				Replicas: []api.ReplicaStatus{},
			},
		},
	}}}
}

func TestPsCrashloop(t *testing.T) {
	t.Run("services", func(t *testing.T) {
		h := newHarness(t, nil)
		h.be.status = crashStatus()
		if code := h.run(t.Context(), "ps"); code != ExitOK {
			t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
		}
		want := "" +
			"CELL   SERVICE   IMAGE                READY   HEALTH                    AUTOSCALE   URL\n" +
			"shop   catalog   example/catalog:2    0/1     crashloop(exit=1)         -           http://127.0.0.1:8081/catalog\n" +
			"shop   orders    example/orders:1.4   0/2     crashloop(start-failed)   -           http://127.0.0.1:8081/orders\n"
		if diff := cmp.Diff(want, h.out.String()); diff != "" {
			t.Errorf("stdout (-want +got):\n%s", diff)
		}
		wantErr := "" +
			"warning: shop/catalog: crashloop, 4 recent failures, next try in 4s; last exit code 1; see orchestro logs shop/catalog\n" +
			`warning: shop/orders: crashloop, 3 recent failures; last start failed: start replica demo-shop-orders-1: exec: "/nope": stat /nope: no such file or directory` + "\n"
		if diff := cmp.Diff(wantErr, h.errOut.String()); diff != "" {
			t.Errorf("stderr (-want +got):\n%s", diff)
		}
	})
	t.Run("replicas", func(t *testing.T) {
		h := newHarness(t, nil)
		h.be.status = crashStatus()
		if code := h.run(t.Context(), "ps", "--replicas"); code != ExitOK {
			t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
		}
		for _, want := range []string{"crashloop(exit=1)", "crashloop(start-failed)"} {
			if !strings.Contains(h.out.String(), want) {
				t.Errorf("ps --replicas does not show %q:\n%s", want, h.out)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		h := newHarness(t, nil)
		h.be.status = crashStatus()
		if code := h.run(t.Context(), "ps", "--json"); code != ExitOK {
			t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
		}
		var st struct {
			Cells []struct {
				Services []struct {
					Service      string          `json:"service"`
					Health       string          `json:"health"`
					Failures     int             `json:"failures"`
					LastExitCode *int            `json:"last_exit_code"`
					LastError    string          `json:"last_error"`
					NextTry      string          `json:"next_try"`
					Exited       json.RawMessage `json:"exited"`
				} `json:"services"`
			} `json:"cells"`
		}
		if err := json.Unmarshal(h.out.Bytes(), &st); err != nil {
			t.Fatalf("decode: %v\n%s", err, h.out)
		}
		s := st.Cells[0].Services
		if s[0].Health != "crashloop" || s[0].Failures != 4 || s[0].LastExitCode == nil || *s[0].LastExitCode != 1 ||
			s[0].NextTry != "2026-11-22T10:00:04Z" || !strings.Contains(string(s[0].Exited), `"text": "panic: no config"`) {
			t.Errorf("catalog in ps --json: %+v", s[0])
		}
		if s[1].Health != "crashloop" || s[1].LastExitCode != nil || !strings.Contains(s[1].LastError, "/nope") {
			t.Errorf("orders in ps --json: %+v", s[1])
		}
	})
}

func TestLogsExitedAndOneReplica(t *testing.T) {
	at := func(ms int) time.Time { return testNow.Add(time.Duration(ms) * time.Millisecond) }
	lines := []api.LogLine{
		{Cell: "shop", Service: "orders", Replica: 1, Time: at(1), Text: "listening on :8080"},
		{Cell: "shop", Service: "orders", Replica: 2, Time: at(2), Text: "config loaded", Exited: "exited 1"},
		{Cell: "shop", Service: "orders", Replica: 2, Time: at(3), Stderr: true, Text: "panic: boom", Exited: "exited 1"},
		{Cell: "shop", Service: "orders", Replica: 2, Time: at(4), Text: "listening on :8080"},
		{Cell: "shop", Service: "catalog", Replica: 1, Time: at(5), Stderr: true, Text: `exec: "/nope": no such file`, Exited: "never started"},
	}
	tests := []struct {
		args []string
		want string
	}{
		{
			args: []string{"logs", "shop/orders-2"},
			want: "" +
				"shop/orders-2 (exited 1) │ config loaded\n" +
				"shop/orders-2 (exited 1) │ panic: boom\n" +
				"shop/orders-2            │ listening on :8080\n",
		},
		{
			args: []string{"logs", "shop"},
			want: "" +
				// The column widens as longer prefixes come.
				"shop/orders-1  │ listening on :8080\n" +
				"shop/orders-2 (exited 1) │ config loaded\n" +
				"shop/orders-2 (exited 1) │ panic: boom\n" +
				"shop/orders-2            │ listening on :8080\n" +
				"shop/catalog-1 (never started) │ exec: \"/nope\": no such file\n",
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h := newHarness(t, nil)
			h.be.logs = lines
			if code := h.run(t.Context(), tt.args...); code != ExitOK {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
			}
			if diff := cmp.Diff(tt.want, h.out.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("a replica of an unknown service", func(t *testing.T) {
		h := newHarness(t, nil)
		if code := h.run(t.Context(), "logs", "shop/nope-2"); code != ExitUsage {
			t.Errorf("exit code = %d, want %d", code, ExitUsage)
		}
	})
}
