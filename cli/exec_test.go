package cli

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExec(t *testing.T) {
	const twoSuffixed = `cell: shop
gateway: {port: 8081}
services:
  orders: {image: example/orders:1, port: 8080}
  orders-2: {image: example/orders:2, port: 8080}
`
	tests := []struct {
		name      string
		files     map[string]string
		args      []string
		code      int
		err       error
		wantCode  int
		wantCalls []string
		wantOut   string
		wantErr   string
	}{
		{
			name:      "first running replica",
			args:      []string{"exec", "shop/orders", "--", "ls", "-l"},
			wantCalls: []string{"connect", `Exec demo shop/orders replica=0 tty=false user="" workdir="" env=[] cmd=["ls" "-l"]`},
			wantOut:   "out\n",
		},
		{
			name:      "replica N, flags, and flags after the command are the command's",
			args:      []string{"exec", "-u", "1000", "-w", "/tmp", "-e", "A=1", "shop/orders-2", "env", "-i"},
			wantCalls: []string{"connect", `Exec demo shop/orders replica=2 tty=false user="1000" workdir="/tmp" env=["A=1"] cmd=["env" "-i"]`},
			wantOut:   "out\n",
		},
		{
			name:      "a service whose name ends in -N wins over replica N",
			files:     map[string]string{"cell.yaml": twoSuffixed},
			args:      []string{"exec", "shop/orders-2", "true"},
			wantCalls: []string{"connect", `Exec demo shop/orders-2 replica=0 tty=false user="" workdir="" env=[] cmd=["true"]`},
			wantOut:   "out\n",
		},
		{
			name:      "the gateway",
			args:      []string{"exec", "shop/gateway", "/orchestro", "version"},
			wantCalls: []string{"connect", `Exec demo shop/gateway replica=0 tty=false user="" workdir="" env=[] cmd=["/orchestro" "version"]`},
			wantOut:   "out\n",
		},
		{
			name:      "the command's exit status is orchestro's, with nothing printed",
			args:      []string{"exec", "shop/orders", "false"},
			code:      42,
			wantCode:  42,
			wantCalls: []string{"connect", `Exec demo shop/orders replica=0 tty=false user="" workdir="" env=[] cmd=["false"]`},
			wantOut:   "out\n",
		},
		{
			name:      "the runtime fails",
			args:      []string{"exec", "shop/orders", "ls"},
			err:       errors.New("shop/orders of project demo has no running replica"),
			wantCode:  ExitFailure,
			wantCalls: []string{"connect", `Exec demo shop/orders replica=0 tty=false user="" workdir="" env=[] cmd=["ls"]`},
			wantOut:   "out\n",
			wantErr:   "error: shop/orders of project demo has no running replica\n",
		},
		{
			name:     "no command",
			args:     []string{"exec", "shop/orders"},
			wantCode: ExitUsage,
			wantErr:  "error: exec needs CELL/SERVICE[-N] and a command, got 1 arguments\nRun 'orchestro --help' for usage.\n",
		},
		{
			name:     "no service",
			args:     []string{"exec", "shop", "ls"},
			wantCode: ExitUsage,
			wantErr:  "error: exec \"shop\": no service: write CELL/SERVICE or CELL/SERVICE-N\nRun 'orchestro --help' for usage.\n",
		},
		{
			name:     "unknown service",
			args:     []string{"exec", "shop/ordesr-1", "ls"},
			wantCode: ExitUsage,
			wantErr:  "error: cell shop has no service \"ordesr\"; did you mean \"orders\"?\nRun 'orchestro --help' for usage.\n",
		},
		{
			name:     "a numbered gateway",
			args:     []string{"exec", "shop/gateway-2", "ls"},
			wantCode: ExitUsage,
			wantErr:  "error: shop/gateway-2: a cell has one gateway; write shop/gateway\nRun 'orchestro --help' for usage.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.files)
			h.be.execCode, h.be.execErr, h.be.execOut = tt.code, tt.err, "out\n"
			if code := h.run(t.Context(), tt.args...); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", code, tt.wantCode, h.errOut)
			}
			h.wantCalls(tt.wantCalls...)
			if diff := cmp.Diff(tt.wantOut, h.out.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErr, h.errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}
