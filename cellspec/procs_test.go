package cellspec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGatewayProcs(t *testing.T) {
	c, _, err := LoadCell("cell.yaml", []byte(accessLogCellFile("procs: 3")), MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.Procs != 3 {
		t.Errorf("procs = %d, want 3", c.Gateway.Procs)
	}
	c, _, err = LoadCell("cell.yaml", []byte(accessLogCellFile("balance: round_robin")), MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.Procs != 0 {
		t.Errorf("procs left out = %d, want 0 (Go's choice)", c.Gateway.Procs)
	}
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"procs: 0", []string{`cell.yaml:4:10: gateway.procs: procs must be between 1 and 1024, not 0 (leave it out for every CPU)`}},
		{"procs: 4096", []string{`cell.yaml:4:10: gateway.procs: procs must be between 1 and 1024, not 4096 (leave it out for every CPU)`}},
		{"procs: many", []string{`cell.yaml:4:10: gateway.procs: must be an integer, not "many"`}},
	} {
		t.Run(tt.line, func(t *testing.T) {
			_, _, err := LoadCell("cell.yaml", []byte(accessLogCellFile(tt.line)), MapEnv(nil))
			if diff := cmp.Diff(tt.want, problemLines(t, err, "")); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
