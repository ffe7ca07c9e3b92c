package gateway

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTrafficStats(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	st := newTrafficStats()
	// 100 requests a second for 10 seconds: 98 fast, one slow, one failing.
	for s := range 10 {
		at := t0.Add(time.Duration(s) * time.Second)
		for i := range 100 {
			d, code := 2*time.Millisecond, 200
			switch i {
			case 0:
				d = 300 * time.Millisecond
			case 1:
				code = 503
			}
			st.observe("orders", at, code, d)
		}
	}
	got := st.read("orders", t0.Add(10*time.Second))
	want := Traffic{RPS: 100, ErrorRate: 0.01, P50: 3200 * time.Microsecond, P99: 3200 * time.Microsecond, Requests: 1000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("traffic (-want +got):\n%s", diff)
	}
	// The slow tail shows at p99 once it is more than 1%.
	for i := range 20 {
		st.observe("orders", t0.Add(9*time.Second), 200, time.Duration(i+300)*time.Millisecond)
	}
	if got := st.read("orders", t0.Add(10*time.Second)).P99; got < 300*time.Millisecond {
		t.Errorf("p99 = %s, want the slow tail", got)
	}
	// Old seconds fall out of the window.
	if got := st.read("orders", t0.Add(30*time.Second)); got != (Traffic{}) {
		t.Errorf("after the window: %+v, want zero", got)
	}
	if got := st.read("nothing", t0); got != (Traffic{}) {
		t.Errorf("unknown service: %+v", got)
	}
}
