package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/orchestro/orchestro/runtime/api"
)

func TestDown(t *testing.T) {
	brokenSpec := strings.Replace(testCell, "port: 8081", "port: 99999", 1)
	tests := []struct {
		name     string
		files    map[string]string
		args     []string
		downErr  error
		wantCode int
		wantCall string
		wantErr  string // stderr, exactly
	}{
		{
			name:     "defaults",
			args:     []string{"down"},
			wantCall: "Down demo volumes=false timeout=10s progress=true",
			wantErr:  "✔ project demo is down\n",
		},
		{
			name:     "volumes and timeout",
			args:     []string{"down", "-v", "--timeout", "3s"},
			wantCall: "Down demo volumes=true timeout=3s progress=true",
			wantErr:  "✔ project demo is down\n",
		},
		{
			name:     "project flag",
			args:     []string{"down", "-p", "other"},
			wantCall: "Down other volumes=false timeout=10s progress=true",
			wantErr:  "✔ project other is down\n",
		},
		{
			name:     "nothing to remove",
			args:     []string{"down"},
			downErr:  fmt.Errorf("list containers: %w", api.ErrNotRunning),
			wantCall: "Down demo volumes=false timeout=10s progress=true",
			wantErr:  "project demo is not running: nothing to remove\n",
		},
		{
			// The spec was broken after up: down still finds the project,
			// and says nothing about the spec.
			name:     "invalid spec",
			files:    map[string]string{"cell.yaml": brokenSpec},
			args:     []string{"down"},
			wantCall: "Down demo volumes=false timeout=10s progress=true",
			wantErr:  "✔ project demo is down\n",
		},
		{
			name:     "runtime failure",
			args:     []string{"down"},
			downErr:  errors.New("remove network demo_shop: network has active endpoints"),
			wantCode: ExitFailure,
			wantCall: "Down demo volumes=false timeout=10s progress=true",
			wantErr:  "error: down demo: remove network demo_shop: network has active endpoints\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.files)
			h.be.downErr = tt.downErr
			if code := h.run(t.Context(), tt.args...); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			h.wantCalls("connect", tt.wantCall)
			if got := h.errOut.String(); got != tt.wantErr {
				t.Errorf("stderr = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

// TestDownInvalidProjectName checks that a spec whose problems include the
// project name itself is reported, since no name can be trusted.
func TestDownInvalidProjectName(t *testing.T) {
	h := newHarness(t, map[string]string{
		"orchestro.yaml": "project: Demo_1\ncells: [cell.yaml]\n",
		"cell.yaml":      testCell,
	})
	if code := h.run(t.Context(), "down"); code != ExitUsage {
		t.Errorf("exit code = %d, want %d", code, ExitUsage)
	}
	if want := `invalid project name "Demo_1"`; !strings.Contains(h.errOut.String(), want) {
		t.Errorf("stderr does not contain %q:\n%s", want, h.errOut)
	}
	h.wantCalls()
}
