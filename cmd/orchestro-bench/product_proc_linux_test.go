//go:build linux

package main

import (
	"testing"
	"time"
)

// TestMachineBusy: the machine's busy time is read from /proc/stat and
// grows while this test keeps a CPU busy.
func TestMachineBusy(t *testing.T) {
	before, err := machineBusy()
	if err != nil {
		t.Fatal(err)
	}
	if before <= 0 {
		t.Fatalf("busy since boot %s, want more than nothing", before)
	}
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := machineBusy()
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("busy time went from %s to %s over 100ms of spinning, want it to grow", before, after)
	}
}
