package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// callCell has a routed service and one no route leads to: calls name a
// service, whatever the routes say.
func callCell() *cellspec.Cell {
	c := shopCell()
	c.Services = map[string]*cellspec.Service{"orders": {Name: "orders"}, "inventory": {Name: "inventory"}}
	return c
}

func TestCallGoesThroughTheRequestPath(t *testing.T) {
	var got atomic.Value
	inv := startBackend(t, "inv-1", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.Store(fmt.Sprintf("%s %s %s %s %q", r.Method, r.URL.RequestURI(), r.Header.Get("Idempotency-Key"), r.Header.Get("Content-Type"), body))
		w.Header().Set("X-Reservation", "r1")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"r1"}`)
	})
	h := start(t, callCell(), Options{}, map[string][]*Upstream{"inventory": {inv.up}})

	hdr := http.Header{"Idempotency-Key": {"f1-reserve"}, "Content-Type": {"application/json"}, "X-Request-Id": {"req-7"}}
	resp, err := h.p.Call(t.Context(), &CallRequest{Service: "inventory", Method: "POST", Path: "/reservations?order=o%201", Header: hdr, Body: []byte(`{"n":1}`), Route: "flow:checkout", Flow: "checkout", Step: "reserve"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || string(resp.Body) != `{"id":"r1"}` || resp.Header.Get("X-Reservation") != "r1" || resp.Replica != "inv-1" {
		t.Errorf("answer %d %q %v from %s", resp.Status, resp.Body, resp.Header, resp.Replica)
	}
	if want := `POST /reservations?order=o%201 f1-reserve application/json "{\"n\":1}"`; got.Load() != want {
		t.Errorf("replica saw %v, want %s", got.Load(), want)
	}
	rec := h.record(t)
	if rec.Route != "flow:checkout" || rec.Step != "reserve" || rec.Service != "inventory" || rec.Status != 201 || rec.Tries != 1 || rec.RequestID != "req-7" || rec.Path != "/reservations" || rec.Replica != "inv-1" {
		t.Errorf("record %+v", rec)
	}
}

func TestCallMovesPastDeadReplicasOnly(t *testing.T) {
	var posts atomic.Int64
	crash := startBackend(t, "inv-1", func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		hangUp(w, r)
	})
	dead := &Upstream{ID: "dead", Name: "inv-0", Addr: refusedAddr(t)}
	h := start(t, callCell(), Options{}, map[string][]*Upstream{"inventory": {dead, crash.up}})

	// Round robin starts at the dead replica: the dial fails, the call
	// moves to the next one within the same try. That one takes the
	// request and hangs up: the request may have taken effect, so the
	// error is returned, not retried.
	_, err := h.p.Call(t.Context(), &CallRequest{Service: "inventory", Method: "POST", Path: "/reservations", Body: []byte("x")})
	if err == nil || errors.Is(err, ErrNotSent) {
		t.Fatalf("err = %v, want a failure that is not ErrNotSent", err)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("the replica got %d requests, want 1", n)
	}
	if rec := h.record(t); rec.Tries != 2 || rec.Status != http.StatusBadGateway || rec.Replica != "inv-1" {
		t.Errorf("record %+v", rec)
	}
}

func TestCallWithoutReplica(t *testing.T) {
	h := start(t, callCell(), Options{}, map[string][]*Upstream{"inventory": {{ID: "dead", Name: "inv-0", Addr: refusedAddr(t)}}})
	_, err := h.p.Call(t.Context(), &CallRequest{Service: "inventory", Method: "GET", Path: "/"})
	if !errors.Is(err, ErrNotSent) {
		t.Fatalf("err = %v, want ErrNotSent", err)
	}
	if rec := h.record(t); rec.Status != http.StatusServiceUnavailable {
		t.Errorf("record %+v", rec)
	}
	_, err = h.p.Call(t.Context(), &CallRequest{Service: "nope", Method: "GET", Path: "/"})
	if !errors.Is(err, ErrNotSent) || !strings.Contains(err.Error(), `no service "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestCallAnswersAreNotRetried(t *testing.T) {
	b := startBackend(t, "inv-1", status(http.StatusServiceUnavailable))
	h := start(t, callCell(), Options{}, map[string][]*Upstream{"inventory": {b.up}})
	resp, err := h.p.Call(t.Context(), &CallRequest{Service: "inventory", Method: "GET", Path: "/"})
	if err != nil || resp.Status != 503 || b.hits.Load() != 1 {
		t.Fatalf("resp %+v, err %v, hits %d", resp, err, b.hits.Load())
	}
}

func TestCallBodyLimit(t *testing.T) {
	b := startBackend(t, "inv-1", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, strings.Repeat("x", 100)) })
	h := start(t, callCell(), Options{}, map[string][]*Upstream{"inventory": {b.up}})
	if _, err := h.p.Call(t.Context(), &CallRequest{Service: "inventory", Method: "GET", Path: "/", MaxBody: 99}); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("err = %v, want ErrBodyTooLarge", err)
	}
	resp, err := h.p.Call(t.Context(), &CallRequest{Service: "inventory", Method: "GET", Path: "/", MaxBody: 100})
	if err != nil || len(resp.Body) != 100 {
		t.Fatalf("resp %v, err %v", resp, err)
	}
}

func TestCallEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	b := startBackend(t, "inv-1", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	h := start(t, callCell(), Options{}, map[string][]*Upstream{"inventory": {b.up}})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := h.p.Call(ctx, &CallRequest{Service: "inventory", Method: "GET", Path: "/"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

// flowStub intercepts POST /checkout/...
type flowStub struct{ served atomic.Int64 }

func (f *flowStub) Intercepts(method, path string) bool {
	return method == "POST" && strings.HasPrefix(path, "/checkout/")
}

func (f *flowStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.served.Add(1)
	fmt.Fprintf(w, "flow %s", r.URL.Path)
}

func TestInterceptorOnBothPaths(t *testing.T) {
	b := startBackend(t, "orders-1", ok("orders"))
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			p := svProxy(t, shopCell(cellspec.Route{Path: "/", Service: "orders"}), map[string][]*Upstream{"orders": {b.up}})
			stub := &flowStub{}
			p.SetInterceptor(stub)
			f := svStart(t, p, ServerOptions{DisableFastPath: !fast})
			c := svDial(t, f.addr)
			// A POST without a body would take the fast path.
			if _, body := c.do("POST", svReq("POST /checkout/o1 HTTP/1.1", "Host: x", "Content-Length: 0")); body != "flow /checkout/o1" {
				t.Errorf("POST /checkout/o1 answered %q", body)
			}
			if _, body := c.do("GET", svReq("GET /checkout/o1 HTTP/1.1", "Host: x")); body != "orders" {
				t.Errorf("GET /checkout/o1 answered %q, want the route's", body)
			}
			p.SetInterceptor(nil)
			if _, body := c.do("POST", svReq("POST /checkout/o1 HTTP/1.1", "Host: x", "Content-Length: 0")); body != "orders" {
				t.Errorf("without the interceptor: %q", body)
			}
			if stub.served.Load() != 1 {
				t.Errorf("interceptor served %d", stub.served.Load())
			}
		})
	}
}
