package runtime

import (
	"context"
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
