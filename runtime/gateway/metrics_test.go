package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine/enginetest"
	"github.com/orchestro/orchestro/runtime/proxy"
)

func testSpec() *api.GatewaySpec {
	cell := &cellspec.Cell{
		Name:    "shop",
		Gateway: cellspec.Gateway{Port: 8081, Balance: cellspec.BalanceRoundRobin, Routes: []cellspec.Route{{Path: "/orders", Service: "orders", Timeout: cellspec.Duration(time.Second), Retries: 2}}},
		Services: map[string]*cellspec.Service{
			"orders": {Name: "orders", Image: "orders:1", Port: 8080, Replicas: 2, Restart: cellspec.RestartAlways},
		},
	}
	return &api.GatewaySpec{Project: "demo", Cell: cell, Images: map[string]api.ServiceImage{"orders": {Ref: "orders:1", ID: "sha256:1"}}}
}

func TestMetricsPassPromlint(t *testing.T) {
	spec := testSpec()
	px, err := proxy.New(spec.Cell, proxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctrl := NewController(enginetest.NewFake(), spec, px, admin.NewEventBus(0), "")
	m := newMetrics("shop")
	m.observe(&proxy.RequestRecord{Method: "GET", Route: "/orders", Service: "orders", Status: 200, Duration: 3 * time.Millisecond, Tries: 2})
	m.observe(&proxy.RequestRecord{Method: "BREW", Service: "", Status: 404})
	m.healthResult("orders", 1, true)
	px.SetUpstreams("orders", []*proxy.Upstream{{ID: "a", Service: "orders", Replica: 1, Addr: "127.0.0.1:1"}})

	rec := httptest.NewRecorder()
	m.handler(ctrl, px).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{
		`orchestro_http_requests_total{cell="shop",code="2xx",method="GET",route="/orders",service="orders"} 1`,
		`orchestro_http_requests_total{cell="shop",code="4xx",method="OTHER",route="none",service=""} 1`,
		`orchestro_http_retries_total{cell="shop",route="/orders",service="orders"} 1`,
		`orchestro_service_replicas_desired{cell="shop",service="orders"} 2`,
		`orchestro_replica_tries_total{cell="shop",replica="1",service="orders"} 0`,
		`orchestro_gateway_panic{cell="shop",service="orders"} 0`,
		`orchestro_health_checks_total{cell="shop",replica="1",result="success",service="orders"} 1`,
		`go_build_info`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
