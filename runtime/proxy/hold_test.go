package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

func TestHoldWhileAReplicaStarts(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "woke") }))
	defer be.Close()
	var woken atomic.Int32
	h := start(t, shopCell(), Options{Wake: func(svc string) bool { woken.Add(1); return svc == "orders" }}, nil)

	type answer struct {
		code int
		body string
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := h.client.Get(h.front.URL + "/orders/x")
		if err != nil {
			got <- answer{code: -1, body: err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- answer{resp.StatusCode, string(b)}
	}()
	// The request waits; a replica comes up; the request goes through.
	for h.p.Held() == 0 {
		time.Sleep(time.Millisecond)
	}
	h.p.SetUpstreams("orders", []*Upstream{{ID: "a", Service: "orders", Replica: 1, Addr: strings.TrimPrefix(be.URL, "http://")}})
	a := <-got
	if a.code != 200 || a.body != "woke" {
		t.Fatalf("held request: %d %q", a.code, a.body)
	}
	if woken.Load() != 1 {
		t.Errorf("wake called %d times, want 1", woken.Load())
	}
}

func TestHoldTimesOut(t *testing.T) {
	h := start(t, shopCell(), Options{Wake: func(string) bool { return true }, HoldTimeout: 50 * time.Millisecond}, nil)
	resp, err := h.client.Get(h.front.URL + "/orders/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestSetRoutes(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }))
	defer be.Close()
	up := &Upstream{ID: "a", Service: "orders", Replica: 1, Addr: strings.TrimPrefix(be.URL, "http://")}
	h := start(t, shopCell(), Options{}, map[string][]*Upstream{"orders": {up}})
	get := func(path string) (int, string) {
		resp, err := h.client.Get(h.front.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/shop/x"); code != http.StatusNotFound {
		t.Fatalf("before SetRoutes: /shop/x got %d, want 404", code)
	}
	cell := shopCell(cellspec.Route{Path: "/shop", Service: "orders", StripPrefix: true, Retries: 1})
	cell.Gateway.Balance = cellspec.BalanceLeastRequest
	if err := h.p.SetRoutes(cell); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/shop/x"); code != 200 || body != "/x" {
		t.Fatalf("after SetRoutes: /shop/x got %d %q, want 200 \"/x\"", code, body)
	}
	if got := h.p.Upstreams("orders"); len(got) != 1 || got[0] != up {
		t.Fatalf("replicas not kept across SetRoutes: %v", got)
	}
	if up.Served() != 1 {
		t.Errorf("served = %d, want 1", up.Served())
	}
}

// A request whose only replica refuses the connection (killed a moment
// ago, its exit not yet seen) waits for the replica the controller is
// starting instead of failing: it never reached any replica.
func TestHoldAfterARefusedConnection(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "replacement") }))
	defer be.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()
	h := start(t, shopCell(), Options{Wake: func(svc string) bool { return svc == "orders" }}, nil)
	h.p.SetUpstreams("orders", []*Upstream{{ID: "dead", Service: "orders", Replica: 1, Addr: deadAddr}})

	type answer struct {
		code int
		body string
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := h.client.Post(h.front.URL+"/orders/x", "text/plain", strings.NewReader("order"))
		if err != nil {
			got <- answer{code: -1, body: err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- answer{resp.StatusCode, string(b)}
	}()
	for h.p.Held() == 0 {
		select {
		case a := <-got:
			t.Fatalf("the request ended without waiting: %d %q", a.code, a.body)
		case <-time.After(time.Millisecond):
		}
	}
	h.p.SetUpstreams("orders", []*Upstream{
		{ID: "dead", Service: "orders", Replica: 1, Addr: deadAddr},
		{ID: "new", Service: "orders", Replica: 2, Addr: strings.TrimPrefix(be.URL, "http://")},
	})
	if a := <-got; a.code != 200 || a.body != "replacement" {
		t.Fatalf("request after a refused connection: %d %q, want 200 from the replacement", a.code, a.body)
	}
}
