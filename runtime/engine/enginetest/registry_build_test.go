package enginetest

import (
	"os"
	"testing"
)

// TestRegistryBuilds builds (or finds) the test registry's binary. CI runs
// it alone before the suite, so that the suite's tests do not compile the
// registry while the end-to-end tests measure load they cause.
func TestRegistryBuilds(t *testing.T) {
	bin := registryBinary(t)
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("registry binary %s: %v", bin, err)
	}
}
