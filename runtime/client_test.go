package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
)

// TestGatewaysReadEachTokenOnce: gateways finds each gateway's admin
// address in the engine's listing and its token in its environment, which
// it reads once per container: the calls that poll cost one listing, and a
// new container (a recreated gateway) is inspected again.
func TestGatewaysReadEachTokenOnce(t *testing.T) {
	ctx := context.Background()
	eng := enginetest.NewFake()
	eng.AddImage("gw:1", nil)
	mkGateway := func(cell, token, port string) {
		t.Helper()
		resp, err := eng.ContainerCreate(ctx, &container.Config{
			Image: "gw:1",
			Env:   []string{api.EnvToken + "=" + token},
			Labels: map[string]string{
				engine.LabelProject: "demo", engine.LabelCell: cell, engine.LabelRole: engine.RoleGateway,
				engine.LabelAdminPort: "7700",
			},
		}, &container.HostConfig{PortBindings: nat.PortMap{
			"7700/tcp":              {{HostIP: "127.0.0.1"}},
			nat.Port(port + "/tcp"): {{HostIP: "127.0.0.1", HostPort: port}},
		}}, nil, nil, engine.GatewayName("demo", cell))
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mkGateway("shop", "secret", "8081")
	mkGateway("users", "secret", "8082")
	c := NewClientWithEngine(eng)
	inspects := func() int {
		return len(slices.DeleteFunc(eng.Calls(), func(call string) bool { return !strings.HasPrefix(call, "ContainerInspect") }))
	}
	type found struct {
		Cell, State, Token, AdminURL string
		Port                         int
	}
	view := func(gws []gateway) []found {
		var out []found
		for _, g := range gws {
			out = append(out, found{g.cell, g.state, g.token, g.adminURL, g.port})
		}
		return out
	}

	for round := 1; round <= 2; round++ {
		gws, err := c.gateways(ctx, "demo")
		if err != nil {
			t.Fatal(err)
		}
		want := []found{
			{"shop", "running", "secret", "http://127.0.0.1:32768", 8081},
			{"users", "running", "secret", "http://127.0.0.1:32769", 8082},
		}
		if diff := cmp.Diff(want, view(gws)); diff != "" {
			t.Errorf("round %d: gateways (-want +got):\n%s", round, diff)
		}
	}
	if n := inspects(); n != 2 {
		t.Errorf("two listings of two gateways inspected %d times, want 2 (once per container)", n)
	}

	// A recreated gateway is a new container: its token is read anew.
	eng.ResetCalls()
	if err := eng.ContainerRemove(ctx, engine.GatewayName("demo", "users"), container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	mkGateway("users", "other", "8082")
	gws, err := c.gateways(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if len(gws) != 2 || gws[1].token != "other" || gws[1].adminURL != "http://127.0.0.1:32770" {
		t.Errorf("after the users gateway was recreated: %+v", view(gws))
	}
	if n := inspects(); n != 1 {
		t.Errorf("a listing after one gateway was recreated inspected %d times, want 1", n)
	}
}

// TestGatewayAdminOnTwoFamilies: a port published on every address (the
// swarm target's gateways) is bound twice, on 0.0.0.0 and on ::, and the
// engine may give the two bindings different host ports. The admin API is
// reached at 127.0.0.1, so at the IPv4 binding's port, whatever the order
// the engine lists them in.
func TestGatewayAdminOnTwoFamilies(t *testing.T) {
	for _, order := range [][]string{{"0.0.0.0", "::"}, {"::", "0.0.0.0"}} {
		t.Run(strings.Join(order, " then "), func(t *testing.T) {
			ctx := t.Context()
			eng := enginetest.NewFake()
			eng.AddImage("gw:1", nil)
			var admin []nat.PortBinding
			for _, ip := range order {
				admin = append(admin, nat.PortBinding{HostIP: ip})
			}
			resp, err := eng.ContainerCreate(ctx, &container.Config{
				Image: "gw:1",
				Labels: map[string]string{
					engine.LabelProject: "demo", engine.LabelCell: "shop", engine.LabelRole: engine.RoleGateway,
					engine.LabelAdminPort: "7700",
				},
			}, &container.HostConfig{PortBindings: nat.PortMap{"7700/tcp": admin}}, nil, nil, engine.GatewayName("demo", "shop"))
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
				t.Fatal(err)
			}
			ins, err := eng.ContainerInspect(ctx, resp.ID)
			if err != nil {
				t.Fatal(err)
			}
			var v4 string
			for _, b := range ins.NetworkSettings.Ports["7700/tcp"] {
				if b.HostIP == "0.0.0.0" {
					v4 = b.HostPort
				}
			}
			gws, err := NewClientWithEngine(eng).gateways(ctx, "demo")
			if err != nil {
				t.Fatal(err)
			}
			if want := "http://127.0.0.1:" + v4; len(gws) != 1 || gws[0].adminURL != want {
				t.Errorf("admin URL = %+v, want %s", gws, want)
			}
		})
	}
}

// TestStatusRefusesAnotherCellsAnswer: should the address read for a
// cell's gateway be another gateway's (a port that changed hands, a
// binding of the wrong family), its answer is not shown as this cell's.
func TestStatusRefusesAnotherCellsAnswer(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.CellStatus{Cell: "users", Gateway: "running", SpecHash: "h", Services: []api.ServiceStatus{}})
	}))
	defer other.Close()
	_, port, err := net.SplitHostPort(other.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	eng := enginetest.NewFake()
	eng.AddImage("gw:1", nil)
	resp, err := eng.ContainerCreate(ctx, &container.Config{
		Image: "gw:1",
		Labels: map[string]string{
			engine.LabelProject: "demo", engine.LabelCell: "shop", engine.LabelRole: engine.RoleGateway,
			engine.LabelAdminPort: "7700",
		},
	}, &container.HostConfig{PortBindings: nat.PortMap{"7700/tcp": {{HostIP: "127.0.0.1", HostPort: port}}}}, nil, nil, engine.GatewayName("demo", "shop"))
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := NewClientWithEngine(eng).Status(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`the gateway at http://127.0.0.1:%s answered for cell "users", not "shop"`, port)
	if len(st.Cells) != 1 || st.Cells[0].Cell != "shop" || st.Cells[0].Gateway != "down" || st.Cells[0].Error != want {
		t.Errorf("status = %+v, want cell shop down: %s", st.Cells, want)
	}
}
