package gateway

import (
	"os/exec"
	"strings"
	"testing"
)

// TestGatewayLinksNoCLI guards the layering: a gateway process must not
// link the code that builds images or drives the command line, nor the
// test-only fake engine.
func TestGatewayLinksNoCLI(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := map[string]bool{
		"github.com/orchestro/orchestro/runtime":                   true, // the CLI's backend
		"github.com/orchestro/orchestro/runtime/image":             true,
		"github.com/orchestro/orchestro/runtime/engine/enginetest": true,
		"github.com/orchestro/orchestro/cli":                       true,
		"github.com/orchestro/orchestro/tui":                       true,
	}
	for _, pkg := range strings.Fields(string(out)) {
		if forbidden[pkg] {
			t.Errorf("package gateway depends on %s", pkg)
		}
	}
}
