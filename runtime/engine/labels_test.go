package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNames(t *testing.T) {
	got := []string{
		NetworkName("demo", "shop"),
		MeshNetworkName("demo"),
		GatewayName("demo", "shop"),
		ReplicaName("demo", "shop", "orders", 3),
		VolumeName("demo", "data"),
		KeeperName("demo"),
	}
	want := []string{"demo_shop", "demo_mesh", "demo-shop-gateway", "demo-shop-orders-3", "demo_data", "demo-keeper"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

func TestReplicaLabels(t *testing.T) {
	want := map[string]string{
		"io.orchestro.project":     "demo",
		"io.orchestro.cell":        "shop",
		"io.orchestro.service":     "orders",
		"io.orchestro.replica":     "2",
		"io.orchestro.role":        "replica",
		"io.orchestro.config-hash": "abc",
	}
	if diff := cmp.Diff(want, ReplicaLabels("demo", "shop", "orders", 2, "abc")); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}
