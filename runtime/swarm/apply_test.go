package swarm

import (
	"context"
	"errors"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/swarm"
)

// listingAPI answers ServiceList with one service and counts the calls.
// Any other call of API panics on the nil interface it embeds.
type listingAPI struct {
	API
	listed int
}

func (a *listingAPI) ServiceList(context.Context, swarm.ServiceListOptions) ([]swarm.Service, error) {
	a.listed++
	return []swarm.Service{{ID: "s1", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "p_web_gateway"}}}}, nil
}

// pingingAPI is a listingAPI whose engine also answers pings.
type pingingAPI struct {
	listingAPI
	ping types.Ping
	err  error
}

func (a *pingingAPI) Ping(context.Context) (types.Ping, error) { return a.ping, a.err }

// TestDeployedAsksOnlyWhatMayManage: an engine whose ping says it manages
// no swarm is not asked for services (it would refuse and log two errors
// of its own for each command); one that says it is a manager, or does not
// say, or cannot be pinged, is asked.
func TestDeployedAsksOnlyWhatMayManage(t *testing.T) {
	status := func(state swarm.LocalNodeState, manager bool) types.Ping {
		return types.Ping{APIVersion: "1.47", SwarmStatus: &swarm.Status{NodeState: state, ControlAvailable: manager}}
	}
	tests := []struct {
		name  string
		api   interface{ calls() int }
		asked bool
	}{
		{"no swarm", &pingingAPI{ping: status(swarm.LocalNodeStateInactive, false)}, false},
		{"a worker", &pingingAPI{ping: status(swarm.LocalNodeStateActive, false)}, false},
		{"leaving a swarm", &pingingAPI{ping: status(swarm.LocalNodeStatePending, false)}, false},
		{"a manager", &pingingAPI{ping: status(swarm.LocalNodeStateActive, true)}, true},
		{"an engine older than API 1.42", &pingingAPI{ping: types.Ping{APIVersion: "1.41"}}, true},
		{"a failed ping", &pingingAPI{err: errors.New("connection reset")}, true},
		{"a connection that cannot ping", &listingAPI{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			services, err := Deployed(context.Background(), tt.api.(API), "p")
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if tt.asked {
				want = 1
			}
			if got := tt.api.calls(); got != want {
				t.Errorf("ServiceList called %d times, want %d", got, want)
			}
			if len(services) != want {
				t.Errorf("Deployed returned %d services, want %d", len(services), want)
			}
		})
	}
}

func (a *listingAPI) calls() int { return a.listed }
