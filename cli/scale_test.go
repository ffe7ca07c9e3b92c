package cli

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScale(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		args      []string
		scaleErr  map[string]error
		wantCode  int
		wantCalls []string
		wantErr   string
	}{
		{
			name:      "one",
			args:      []string{"scale", "shop/orders=4"},
			wantCalls: []string{"connect", "Scale demo shop/orders 4"},
			wantErr:   "scaled shop/orders to 4\n",
		},
		{
			name:      "several, to zero",
			args:      []string{"scale", "shop/orders=3", "shop/db=0"},
			wantCalls: []string{"connect", "Scale demo shop/orders 3", "Scale demo shop/db 0"},
			wantErr:   "scaled shop/orders to 3\nscaled shop/db to 0\n",
		},
		{
			// Without a spec there is nothing to check against: the
			// gateway has the last word.
			name:      "no spec",
			files:     map[string]string{},
			args:      []string{"-p", "demo", "scale", "users/accounts=2"},
			wantCalls: []string{"connect", "Scale demo users/accounts 2"},
			wantErr:   "scaled users/accounts to 2\n",
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
			wantErr:   "scaled shop/orders to 3\nerror: scale shop/catalog: gateway shop: project is not running\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.files)
			h.be.scaleErr = tt.scaleErr
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
		wantCode   int
		wantCall   string
		wantErr    string
	}{
		{
			name:     "service",
			args:     []string{"restart", "shop/orders"},
			wantCall: `Restart demo cell="shop" service="orders"`,
			wantErr:  "restarted shop/orders\n",
		},
		{
			name:     "cell",
			args:     []string{"restart", "shop"},
			wantCall: `Restart demo cell="shop" service=""`,
			wantErr:  "restarted every service of shop\n",
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
			h.be.restartErr = tt.restartErr
			if code := h.run(t.Context(), tt.args...); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			h.wantCalls("connect", tt.wantCall)
			if diff := cmp.Diff(tt.wantErr, h.errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}
