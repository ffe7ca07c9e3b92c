package gateway

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// TestControllerStop: Stop returns once a round has taken every replica
// out of rotation. The replicas are then the caller's to remove (down
// removes them with the gateway): the gateway neither stops nor removes
// them, so that two clients never write one container at once, and it
// creates nothing afterwards.
func TestControllerStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testSpec(), "")
		h.step()
		h.step()
		h.check("rotation", []string{"orders-1 available", "orders-2 available"}, h.rotation("orders"))
		before := h.replicas()

		returned := make(chan struct{})
		var stopErr error
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

		h.eng.ResetCalls()
		h.step()
		<-returned
		if stopErr != nil {
			t.Fatalf("stop: %v", stopErr)
		}
		h.step()
		h.check("rotation after the stop", []string{"orders-1 draining", "orders-2 draining"}, h.rotation("orders"))
		h.check("replicas after the stop", before, h.replicas())
		h.check("containers changed by the stop", []string(nil), h.changes())
		// Its status says so, for up to replace it should down not finish.
		st := h.c.Status()
		h.check("gateway state after the stop", api.GatewayStopping, st.Gateway)
		h.check("health of orders after the stop", "stopped", st.Services[0].Health)

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
