package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestAutoscaleE2E runs testdata/autoscale: an in-flight target under a
// load step, a CPU target under CPU-bound requests, and a service that
// scales to zero and wakes on the next request. Figures are logged, not
// asserted; failed requests are.
func TestAutoscaleE2E(t *testing.T) {
	spec, err := filepath.Abs(filepath.Join("..", "..", "testdata", "autoscale", "cell.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := newProject(t, "scale", spec, "SCALING_PORT")
	if _, stderr, code := p.run(t, "up", "-d", "--wait", "--wait-timeout", "3m"); code != 0 {
		t.Fatalf("up -d --wait exited %d:\n%s", code, stderr)
	}
	base := p.url("SCALING_PORT")

	t.Run("inflight", func(t *testing.T) {
		// 10 clients on requests that take a second: 10 in flight
		// against a target of 2 per replica, so the service wants 4.
		start := time.Now()
		load := gwStartLoad(t, base+"/slow/?sleep=1s", 10, 12*time.Second)
		took, ok, why := eventually(20*time.Second, 100*time.Millisecond, func() (bool, string) {
			s := gwService(t, p, "scaling", "slow")
			return s.Ready >= 3, formatCount(s)
		})
		if !ok {
			t.Fatalf("slow did not reach 3 ready replicas: %s", why)
		}
		t.Logf("slow: 3 replicas ready %.1fs after the load started (goal ≤ 5s)", took.Seconds())
		res := load.wait()
		t.Logf("under load: %s", res)
		gwCheckNoFailures(t, "scale out", res)

		// Idle again: back to min after scale_down_after (10s), draining
		// first, with light traffic still flowing.
		trickle := gwStartLoad(t, base+"/slow/", 1, 40*time.Second)
		took, ok, why = eventually(45*time.Second, 250*time.Millisecond, func() (bool, string) {
			s := gwService(t, p, "scaling", "slow")
			return s.Desired == 1 && len(s.Replicas) == 1, formatCount(s)
		})
		res = trickle.stop()
		if !ok {
			t.Fatalf("slow did not return to 1 replica: %s", why)
		}
		t.Logf("slow: back to 1 replica %.1fs after the load stopped (scale_down_after 10s); whole step %.1fs", took.Seconds(), time.Since(start).Seconds())
		t.Logf("while scaling in: %s", res)
		gwCheckNoFailures(t, "scale in", res)
	})

	t.Run("cpu", func(t *testing.T) {
		// Each request burns 200ms of CPU; four clients keep the one
		// replica far above its 50% target.
		load := gwStartLoad(t, base+"/burn/?burn=200ms", 4, 30*time.Second)
		took, ok, why := eventually(30*time.Second, 250*time.Millisecond, func() (bool, string) {
			s := gwService(t, p, "scaling", "burn")
			return s.Desired >= 2, formatCount(s)
		})
		res := load.stop()
		if !ok {
			t.Fatalf("burn did not scale out on CPU: %s", why)
		}
		t.Logf("burn: scaled out %.1fs after CPU load started; %s", took.Seconds(), res)
		gwCheckNoFailures(t, "cpu", res)
	})

	t.Run("scale to zero", func(t *testing.T) {
		took, ok, why := eventually(40*time.Second, 250*time.Millisecond, func() (bool, string) {
			s := gwService(t, p, "scaling", "lazy")
			return s.Desired == 0 && len(s.Replicas) == 0, formatCount(s)
		})
		if !ok {
			t.Fatalf("lazy did not scale to zero: %s", why)
		}
		t.Logf("lazy: at zero replicas after %.1fs idle in this subtest", took.Seconds())
		start := time.Now()
		reply, code, err := get(base + "/lazy/wake")
		if err != nil || code != 200 {
			t.Fatalf("first request after zero: %d %v", code, err)
		}
		t.Logf("lazy: woke from zero and answered in %s (goal ≤ 2s), from %s", time.Since(start).Round(time.Millisecond), reply.Hostname)
	})
}

func formatCount(s psService) string {
	return fmt.Sprintf("%s: %d ready, %d desired, %d replicas", s.Service, s.Ready, s.Desired, len(s.Replicas))
}
