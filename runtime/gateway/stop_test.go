package gateway

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestControllerStop: Stop returns once a round has taken every replica
// out of rotation, before any of them is stopped, so that down can remove
// the gateway and the replicas at once; the controller goes on stopping
// and removing them, and creates nothing afterwards.
func TestControllerStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testSpec(), "")
		h.step()
		h.step()
		h.check("rotation", []string{"orders-1 available", "orders-2 available"}, h.rotation("orders"))

		returned := make(chan struct{})
		var stopErr error
		// A replica is stopped only once Stop has returned: if Stop
		// waited for the removals, the bubble would deadlock.
		h.eng.SetCallHook(func(method, target string) error {
			if method == "ContainerStop" || method == "ContainerRemove" {
				<-returned
			}
			return nil
		})
		go func() {
			stopErr = h.c.Stop(t.Context())
			close(returned)
		}()
		synctest.Wait()
		select {
		case <-returned:
			t.Fatalf("Stop returned (%v) before a round drained the replicas", stopErr)
		default:
		}

		h.step()
		<-returned
		if stopErr != nil {
			t.Fatalf("stop: %v", stopErr)
		}
		h.eng.SetCallHook(nil)
		h.step()
		h.check("replicas after the stop", []string(nil), h.replicas())

		// A stopped cell creates nothing, whatever it is asked.
		if err := h.c.Scale(t.Context(), "orders", 3); err != nil {
			t.Fatal(err)
		}
		h.eng.ResetCalls()
		h.step()
		h.check("containers changed after the stop", []string(nil), h.changes())
	})
}

// TestControllerStopTimesOut: with no round to drain the replicas, Stop
// gives up when its context ends, saying so.
func TestControllerStopTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testSpec(), "")
		h.step()
		h.step()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := h.c.Stop(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("stop = %v, want the context's deadline", err)
		}
		const want = "stop cell shop: no round ran since the stop was asked: context deadline exceeded"
		if err.Error() != want {
			t.Errorf("stop error = %q, want %q", err, want)
		}
	})
}
