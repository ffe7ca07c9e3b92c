package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// exitedCell is the admin.Cell of a fake gateway whose status holds
// replicas that exited.
type exitedCell struct {
	idleCell
	st api.CellStatus
}

func (c exitedCell) Status() api.CellStatus { return c.st }

func TestLogsOfExitedReplicas(t *testing.T) {
	at := func(s int) time.Time { return execStart.Add(time.Duration(s) * time.Second) }
	st := api.CellStatus{Cell: "shop", Services: []api.ServiceStatus{
		{Service: "catalog", Exited: []api.ExitedReplica{
			{Name: "demo-shop-catalog-2", Replica: 2, ContainerID: "c2", ExitCode: 1, Removed: at(10), Lines: []api.ExitedLine{
				{Time: at(1), Text: "listening on :8080"},
				{Time: at(2), Stderr: true, Text: "panic: boom"},
			}},
			{Name: "demo-shop-catalog-1", Replica: 1, ContainerID: "c1", ExitCode: 137, Removed: at(20)},
			{Name: "demo-shop-catalog-3", Replica: 3, ContainerID: "c3", Error: `exec: "/nope": no such file`, Removed: at(30)},
		}},
		{Service: "orders", Exited: []api.ExitedReplica{
			{Name: "demo-shop-orders-1", Replica: 1, ContainerID: "o1", ExitCode: 2, Removed: at(5), Lines: []api.ExitedLine{{Text: "bad config"}}},
		}},
	}}
	srv, err := admin.NewServer(admin.ServerConfig{Cell: exitedCell{st: st}, Events: admin.NewEventBus(1), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	c := NewClientWithEngine(enginetest.NewFake())
	c.listGateways = func(ctx context.Context, project string) ([]gateway, error) {
		return []gateway{{cell: "shop", state: "running", token: "tok", adminURL: ts.URL}}, nil
	}
	line := func(l api.LogLine) string {
		return fmt.Sprintf("%s %s/%s-%d (%s) stderr=%t %s", l.Time.Format("15:04:05"), l.Cell, l.Service, l.Replica, l.Exited, l.Stderr, l.Text)
	}
	tests := []struct {
		name string
		opts api.LogOptions
		want []string
	}{
		{
			name: "the whole project",
			opts: api.LogOptions{Tail: -1},
			want: []string{
				"10:00:01 shop/catalog-2 (exited 1) stderr=false listening on :8080",
				"10:00:02 shop/catalog-2 (exited 1) stderr=true panic: boom",
				"10:00:05 shop/orders-1 (exited 2) stderr=false bad config",
				"10:00:20 shop/catalog-1 (exited 137) stderr=true (no output)",
				`10:00:30 shop/catalog-3 (never started) stderr=true exec: "/nope": no such file`,
			},
		},
		{
			name: "one replica, last line",
			opts: api.LogOptions{Cell: "shop", Service: "catalog", Replica: 2, Tail: 1},
			want: []string{"10:00:02 shop/catalog-2 (exited 1) stderr=true panic: boom"},
		},
		{
			name: "since",
			opts: api.LogOptions{Cell: "shop", Service: "catalog", Tail: -1, Since: at(15)},
			want: []string{
				"10:00:20 shop/catalog-1 (exited 137) stderr=true (no output)",
				`10:00:30 shop/catalog-3 (never started) stderr=true exec: "/nope": no such file`,
			},
		},
		{
			name: "tail 0",
			opts: api.LogOptions{Tail: 0},
		},
		{
			name: "the gateway's access log has none",
			opts: api.LogOptions{Cell: "shop", Service: "gateway", Tail: -1},
		},
		{
			name: "another cell has none",
			opts: api.LogOptions{Cell: "users", Tail: -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := c.Logs(t.Context(), "demo", tt.opts, func(l api.LogLine) { got = append(got, line(l)) })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Logs (-want +got):\n%s", strings.TrimSpace(diff))
			}
		})
	}
}

// TestLogsOfProjectNotRunning: logs of a project without a container
// says so rather than print nothing.
func TestLogsOfProjectNotRunning(t *testing.T) {
	c := NewClientWithEngine(enginetest.NewFake())
	err := c.Logs(t.Context(), "nothing", api.LogOptions{Tail: -1}, func(api.LogLine) { t.Error("a line") })
	if !errors.Is(err, api.ErrNotRunning) || !strings.Contains(err.Error(), "project nothing has no containers") {
		t.Errorf("Logs of a project with no containers: %v", err)
	}
}

// TestLogsOfReplicaRemovedWhileRead: a crashing replica its gateway
// replaces may go between the listing and the reading of its log. logs
// then shows the output its gateway kept, instead of failing on (or, with
// --follow, keeping quiet about) a container that is no more.
func TestLogsOfReplicaRemovedWhileRead(t *testing.T) {
	for _, follow := range []bool{false, true} {
		t.Run(fmt.Sprintf("follow=%t", follow), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			eng := enginetest.NewFake()
			eng.AddImage("img:1", nil)
			resp, err := eng.ContainerCreate(ctx, &container.Config{Image: "img:1", Labels: engine.ReplicaLabels("demo", "shop", "catalog", 1, "h")},
				&container.HostConfig{}, nil, nil, "demo-shop-catalog-1")
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
				t.Fatal(err)
			}
			eng.SetCallHook(func(method, _ string) error {
				if method == "ContainerLogs" {
					_ = eng.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
				}
				return nil
			})
			at := execStart.Add(time.Second)
			st := api.CellStatus{Cell: "shop", Services: []api.ServiceStatus{{Service: "catalog", Exited: []api.ExitedReplica{
				{Name: "demo-shop-catalog-1", Replica: 1, ContainerID: resp.ID, ExitCode: 1, Removed: at,
					Lines: []api.ExitedLine{{Time: at, Stderr: true, Text: "crasher: no config, giving up"}}},
			}}}}
			srv, err := admin.NewServer(admin.ServerConfig{Cell: exitedCell{st: st}, Events: admin.NewEventBus(1), Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(srv)
			t.Cleanup(ts.Close)
			c := NewClientWithEngine(eng)
			c.listGateways = func(ctx context.Context, project string) ([]gateway, error) {
				return []gateway{{cell: "shop", state: "running", token: "tok", adminURL: ts.URL}}, nil
			}
			lines := make(chan string, 10)
			done := make(chan error, 1)
			go func() {
				done <- c.Logs(ctx, "demo", api.LogOptions{Cell: "shop", Service: "catalog", Tail: -1, Follow: follow}, func(l api.LogLine) {
					lines <- fmt.Sprintf("%s/%s-%d (%s) %s", l.Cell, l.Service, l.Replica, l.Exited, l.Text)
				})
			}()
			want := "shop/catalog-1 (exited 1) crasher: no config, giving up"
			// Without follow, Logs hands the line and returns: both may be
			// ready when the select runs, and the line, sent first, is
			// then in the channel already.
			var got string
			var logsErr error
			ended := false
			select {
			case got = <-lines:
			case logsErr = <-done:
				ended = true
				select {
				case got = <-lines:
				default:
					t.Fatalf("logs of a replica removed while read ended with no line: %v", logsErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no line in 10s")
			}
			if got != want {
				t.Errorf("line %q, want %q", got, want)
			}
			cancel()
			if !ended {
				logsErr = <-done
			}
			if logsErr != nil {
				t.Errorf("logs: %v", logsErr)
			}
			close(lines)
			for l := range lines {
				t.Errorf("one more line: %q", l)
			}
		})
	}
}
