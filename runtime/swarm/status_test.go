package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/swarm"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/engine"
)

// TestGatewaysAdminPort: a gateway task publishes its ports on the node's
// every address, so its status lists each port twice, the IPv4 binding
// first and the IPv6 one next, and the engine may give the two different
// host ports. The admin URL is the binding of the node address's family:
// another port may be another gateway's, whose answer would be taken for
// this one's.
func TestGatewaysAdminPort(t *testing.T) {
	task := func(node string) swarm.Task {
		return swarm.Task{ID: "t-" + node, ServiceID: "gw", NodeID: node, Status: swarm.TaskStatus{
			State: swarm.TaskStateRunning,
			PortStatus: swarm.PortStatus{Ports: []swarm.PortConfig{
				{Protocol: "tcp", TargetPort: 8081, PublishedPort: 8081, PublishMode: swarm.PortConfigPublishModeHost},
				{Protocol: "tcp", TargetPort: 8081, PublishedPort: 8081, PublishMode: swarm.PortConfigPublishModeHost},
				{Protocol: "tcp", TargetPort: 7700, PublishedPort: 32799, PublishMode: swarm.PortConfigPublishModeHost},
				{Protocol: "tcp", TargetPort: 7700, PublishedPort: 32797, PublishMode: swarm.PortConfigPublishModeHost},
			}},
		}}
	}
	snap := &Snapshot{
		Project: "demo",
		Services: []swarm.Service{{ID: "gw", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Labels: map[string]string{
			engine.LabelRole: engine.RoleGateway, engine.LabelCell: "shop", engine.LabelAdminPort: "7700",
		}}}}},
		Tasks: map[string][]swarm.Task{"gw": {task("local"), task("v6")}},
		Nodes: map[string]swarm.Node{
			"local": {ID: "local", Description: swarm.NodeDescription{Hostname: "one"}},
			"v6":    {ID: "v6", Description: swarm.NodeDescription{Hostname: "two"}, Status: swarm.NodeStatus{Addr: "fd00::2"}},
		},
		Local: "local",
	}
	got := snap.Gateways()
	want := []Gateway{
		{Cell: "shop", Task: "t-local", Node: "one", AdminURL: "http://127.0.0.1:32799", Port: 8081, Host: "127.0.0.1"},
		{Cell: "shop", Task: "t-v6", Node: "two", AdminURL: "http://[fd00::2]:32797", Port: 8081, Host: "fd00::2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gateways (-want +got):\n%s", diff)
	}
}
