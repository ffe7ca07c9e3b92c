package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLostReplicaEndsItsDials: a dial to a replica whose container is
// gone hangs (nothing answers for its address on the bridge); when the
// controller says the replica is lost, the dials to it under way end at
// once and their requests go to another replica, a POST too, since none of
// it was sent. Both request paths: the Server's fast path and ServeHTTP.
func TestLostReplicaEndsItsDials(t *testing.T) {
	for _, path := range []string{"fast path", "ServeHTTP"} {
		t.Run(path, func(t *testing.T) {
			live := startBackend(t, "live", ok("live"))
			gone := svUp("gone", 1, "gone.invalid:80")
			// Round robin starts at the first replica; the route's timeout
			// is far longer than the test waits.
			p := svProxy(t, svCell(time.Minute, 1), map[string][]*Upstream{"orders": {gone, svUp("live", 2, live.up.Addr)}})
			dialing := make(chan struct{})
			cause := make(chan error, 1)
			tr := p.transport.(*upstreamTransport)
			real := tr.dial
			tr.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if addr != gone.Addr {
					return real(ctx, network, addr)
				}
				close(dialing)
				<-ctx.Done()
				cause <- context.Cause(ctx)
				return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
			}

			type answer struct {
				status int
				body   string
				err    error
			}
			done := make(chan answer, 1)
			go func() {
				var a answer
				if path == "fast path" {
					f := svStart(t, p, ServerOptions{})
					resp, err := http.Post("http://"+f.addr+"/orders/x", "text/plain", strings.NewReader("order"))
					if err != nil {
						done <- answer{err: err}
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					a = answer{status: resp.StatusCode, body: string(b)}
				} else {
					rec := httptest.NewRecorder()
					p.ServeHTTP(rec, httptest.NewRequest("POST", "http://shop.local/orders/x", strings.NewReader("order")))
					a = answer{status: rec.Code, body: rec.Body.String()}
				}
				done <- a
			}()

			select {
			case <-dialing:
			case a := <-done:
				t.Fatalf("answered %d %q %v before dialing the lost replica", a.status, a.body, a.err)
			}
			gone.Lose()
			var a answer
			select {
			case a = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("no answer 30s after the replica was lost: its dial went on")
			}
			if a.err != nil || a.status != 200 || a.body != "live" {
				t.Errorf("got %d %q %v, want 200 from the live replica", a.status, a.body, a.err)
			}
			if err := <-cause; !errors.Is(err, errReplicaGone) {
				t.Errorf("the dial ended with %v, want %v", err, errReplicaGone)
			}
			if !gone.Lost() || gone.Available(time.Now()) {
				t.Errorf("lost replica: Lost %v, Available %v; want true, false", gone.Lost(), gone.Available(time.Now()))
			}
			// A lost upstream is not taken back: the same replica set
			// again starts fresh.
			again := svUp("gone", 1, "gone.invalid:80")
			p.SetUpstreams("orders", []*Upstream{again})
			if got := p.Upstreams("orders")[0]; got != again {
				t.Errorf("SetUpstreams kept the lost upstream")
			}
		})
	}
}
