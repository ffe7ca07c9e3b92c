package gateway

import (
	"context"
	"testing"
	"testing/synctest"
)

// TestControllerTrustsDieEvents: the engine publishes a container's die
// event before its listing shows the exit, so the round the event kicks
// lists the dead replica as running. The controller must believe the
// event: the round takes the replica out of rotation, ends the dials to it
// under way (see proxy.Upstream.Lose) and counts its crash, rather than
// keep it ready until the next resync. (up --wait once
// declared a crash-looping service healthy this way.)
func TestControllerTrustsDieEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := testSpec()
		spec.Cell.Services["orders"].Replicas = 1
		h := newHarness(t, spec, "")
		h.eng.SetListLag(true)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go h.c.watchEngine(ctx)
		synctest.Wait()
		h.step()
		h.step()
		h.check("rotation", []string{"orders-1 available"}, h.rotation("orders"))
		h.events.take()
		synctest.Wait()
		for h.kicked() {
		}

		up := h.c.proxy.Upstreams("orders")[0]
		if err := h.eng.Exit(h.id("orders", 1), 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !h.kicked() {
			t.Fatal("the die event asked for no round")
		}
		h.step()
		h.check("rotation after the die event", []string(nil), h.rotation("orders"))
		if !up.Lost() {
			t.Error("the dead replica's upstream is not lost: dials to it under way go on")
		}
		if st := h.c.Status().Services[0]; st.Ready != 0 {
			t.Errorf("status counts %d ready replicas after the die event, want 0", st.Ready)
		}
		h.check("events of the round", []string{
			"exited orders-1: code 1",
			"removed orders-1: exited with code 1",
			"waiting orders: backing off (1 recent crash), next try in 1s",
		}, h.events.take())
	})
}
