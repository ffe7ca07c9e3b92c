package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

func TestScale(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		args      []string
		scaleErr  map[string]error
		waitErr   error
		wantCode  int
		wantCalls []string
		wantErr   string
	}{
		{
			name:      "one",
			args:      []string{"scale", "shop/orders=4"},
			wantCalls: []string{"connect", "Scale demo shop/orders 4"},
			wantErr:   "requested shop/orders: 4 replicas\n",
		},
		{
			name:      "several, to zero",
			args:      []string{"scale", "shop/orders=3", "shop/db=0"},
			wantCalls: []string{"connect", "Scale demo shop/orders 3", "Scale demo shop/db 0"},
			wantErr:   "requested shop/orders: 3 replicas\nrequested shop/db: 0 replicas\n",
		},
		{
			// Without a spec there is nothing to check against: the
			// gateway has the last word.
			name:      "no spec",
			files:     map[string]string{},
			args:      []string{"-p", "demo", "scale", "users/accounts=2"},
			wantCalls: []string{"connect", "Scale demo users/accounts 2"},
			wantErr:   "requested users/accounts: 2 replicas\n",
		},
		{
			name:      "--wait",
			args:      []string{"scale", "--wait", "--wait-timeout", "30s", "shop/orders=3", "shop/db=1"},
			wantCalls: []string{"connect", "Scale demo shop/orders 3", "Scale demo shop/db 1", "Wait demo shop/orders,shop/db timeout=30s"},
			wantErr:   "requested shop/orders: 3 replicas\nrequested shop/db: 1 replica\nscaled shop/orders to 3\nscaled shop/db to 1\n",
		},
		{
			name:      "--wait that gives up",
			args:      []string{"scale", "--wait", "shop/orders=3"},
			waitErr:   fmt.Errorf("%w after 2m0s: shop/orders (1/3 ready, starting)", api.ErrWaitTimeout),
			wantCode:  ExitUnhealthy,
			wantCalls: []string{"connect", "Scale demo shop/orders 3", "Wait demo shop/orders timeout=2m0s"},
			wantErr:   "requested shop/orders: 3 replicas\nerror: timed out waiting for the project to be healthy after 2m0s: shop/orders (1/3 ready, starting)\n",
		},
		{
			// Checked before anything is scaled, as a usage error.
			name:     "beyond the autoscale bounds",
			args:     []string{"scale", "shop/catalog=2", "shop/orders=9"},
			wantCode: ExitUsage,
			wantErr:  "error: scale shop/orders=9: outside the autoscale bounds of shop/orders, 1 to 4 (autoscale.min and autoscale.max in its cell file)\nRun 'orchestro --help' for usage.\n",
		},
		{
			name:      "gateway refuses",
			args:      []string{"scale", "shop/orders=3", "shop/catalog=2", "shop/db=1"},
			scaleErr:  map[string]error{"shop/catalog": errors.New("gateway shop: project is not running")},
			wantCode:  ExitFailure,
			wantCalls: []string{"connect", "Scale demo shop/orders 3", "Scale demo shop/catalog 2"},
			wantErr:   "requested shop/orders: 3 replicas\nerror: scale shop/catalog: gateway shop: project is not running\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.files)
			h.be.scaleErr, h.be.waitErr = tt.scaleErr, tt.waitErr
			if code := h.run(t.Context(), tt.args...); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			h.wantCalls(tt.wantCalls...)
			if diff := cmp.Diff(tt.wantErr, h.errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseScaleArgs(t *testing.T) {
	got, err := parseScaleArgs([]string{"shop/orders=10", "users/accounts=0"})
	if err != nil {
		t.Fatal(err)
	}
	want := []scaleTarget{
		{Ref: serviceRef{Cell: "shop", Service: "orders"}, Replicas: 10},
		{Ref: serviceRef{Cell: "users", Service: "accounts"}, Replicas: 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}

func TestRestart(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		restartErr error
		waitErr    error
		wantCode   int
		wantCall   string
		wantWait   string
		wantErr    string
	}{
		{
			name:     "service",
			args:     []string{"restart", "shop/orders"},
			wantCall: `Restart demo cell="shop" service="orders"`,
			wantErr:  "requested a rolling restart of shop/orders\n",
		},
		{
			name:     "cell",
			args:     []string{"restart", "shop"},
			wantCall: `Restart demo cell="shop" service=""`,
			wantErr:  "requested a rolling restart of every service of shop\n",
		},
		{
			name:     "--wait",
			args:     []string{"restart", "--wait", "shop/orders"},
			wantCall: `Restart demo cell="shop" service="orders"`,
			wantWait: "Wait demo shop/orders timeout=2m0s",
			wantErr:  "requested a rolling restart of shop/orders\nrestarted shop/orders\n",
		},
		{
			name:     "--wait on a cell, which fails",
			args:     []string{"restart", "--wait", "--wait-timeout", "1m", "shop"},
			waitErr:  fmt.Errorf("%w: shop/orders cannot start: no such image", api.ErrUnhealthy),
			wantCode: ExitUnhealthy,
			wantCall: `Restart demo cell="shop" service=""`,
			wantWait: "Wait demo shop/ timeout=1m0s",
			wantErr:  "requested a rolling restart of every service of shop\nerror: service is unhealthy: shop/orders cannot start: no such image\n",
		},
		{
			name:       "unhealthy",
			args:       []string{"restart", "shop/orders"},
			restartErr: errors.New("replica shop/orders-3 did not become healthy: service is unhealthy"),
			wantCode:   ExitFailure,
			wantCall:   `Restart demo cell="shop" service="orders"`,
			wantErr:    "error: restart shop/orders: replica shop/orders-3 did not become healthy: service is unhealthy\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.be.restartErr, h.be.waitErr = tt.restartErr, tt.waitErr
			if code := h.run(t.Context(), tt.args...); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			if tt.wantWait != "" {
				h.wantCalls("connect", tt.wantCall, tt.wantWait)
			} else {
				h.wantCalls("connect", tt.wantCall)
			}
			if diff := cmp.Diff(tt.wantErr, h.errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}
