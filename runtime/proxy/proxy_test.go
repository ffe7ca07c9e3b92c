package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/internal/testnet"
)

// backend is a replica served by httptest on 127.0.0.1.
type backend struct {
	srv  *httptest.Server
	up   *Upstream
	hits atomic.Int64
}

func startBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(b.srv.Close)
	b.up = &Upstream{ID: "id-" + name, Name: name, Addr: b.srv.Listener.Addr().String()}
	return b
}

// refusedAddr returns an address that refuses connections until t ends
// (see testnet.RefusedAddr).
func refusedAddr(t *testing.T) string { return testnet.RefusedAddr(t) }

func ok(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, name)
	}
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(code)
	}
}

// hangUp reads the request, then closes the connection without answering.
func hangUp(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// echoBody answers with the size and digest of the body it received.
func echoBody(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%d %x", len(body), sha256.Sum256(body))
}

func shopCell(routes ...cellspec.Route) *cellspec.Cell {
	if len(routes) == 0 {
		routes = []cellspec.Route{{Path: "/orders", Service: "orders", Retries: 2}}
	}
	return &cellspec.Cell{Name: "shop", Gateway: cellspec.Gateway{Port: 8081, Routes: routes}}
}

type harness struct {
	p       *Proxy
	front   *httptest.Server
	client  *http.Client
	records chan RequestRecord
	ejects  chan string
}

// start runs a proxy for cell in front of the given upstreams, with records
// and ejections collected on channels.
func start(t *testing.T, cell *cellspec.Cell, opts Options, ups map[string][]*Upstream) *harness {
	t.Helper()
	h := &harness{records: make(chan RequestRecord, 100), ejects: make(chan string, 100)}
	opts.OnRequest = func(r *RequestRecord) { h.records <- *r }
	opts.OnEject = func(up *Upstream, reason string, until time.Time) { h.ejects <- up.Name + " " + reason }
	p, err := New(cell, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h.run(t, p, ups)
}

func (h *harness) run(t *testing.T, p *Proxy, ups map[string][]*Upstream) *harness {
	t.Helper()
	h.p = p
	for svc, list := range ups {
		p.SetUpstreams(svc, list)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	h.front = httptest.NewServer(p)
	h.client = &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		h.client.CloseIdleConnections()
		h.front.Close()
		p.CloseIdleConnections()
		cancel()
		<-done
	})
	return h
}

func (h *harness) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s %s: %v", req.Method, req.URL, err)
	}
	return resp, string(body)
}

func (h *harness) request(t *testing.T, method, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.front.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func (h *harness) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	return h.do(t, h.request(t, http.MethodGet, path, nil))
}

// record waits for the next request record.
func (h *harness) record(t *testing.T) RequestRecord {
	t.Helper()
	select {
	case r := <-h.records:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request record")
	}
	return RequestRecord{}
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	const n = 20
	var bs []*backend
	var ups []*Upstream
	for i := range 3 {
		b := startBackend(t, fmt.Sprintf("orders-%d", i+1), ok("x"))
		bs = append(bs, b)
		ups = append(ups, b.up)
	}
	h := start(t, shopCell(), Options{}, map[string][]*Upstream{"orders": ups})
	for range 3 * n {
		if resp, _ := h.get(t, "/orders/1"); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	for _, b := range bs {
		if got := b.hits.Load(); got != n {
			t.Errorf("%s got %d requests, want %d", b.up.Name, got, n)
		}
		if got := b.up.Served(); got != n {
			t.Errorf("%s Served() = %d, want %d", b.up.Name, got, n)
		}
		if got := b.up.Inflight(); got != 0 {
			t.Errorf("%s Inflight() = %d, want 0", b.up.Name, got)
		}
	}
}

func TestLeastRequestEndToEnd(t *testing.T) {
	b := startBackend(t, "orders-1", ok("x"))
	cell := shopCell()
	cell.Gateway.Balance = cellspec.BalanceLeastRequest
	h := start(t, cell, Options{}, map[string][]*Upstream{"orders": {b.up}})
	if resp, body := h.get(t, "/orders"); resp.StatusCode != http.StatusOK || body != "x" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if _, err := New(&cellspec.Cell{Name: "bad", Gateway: cellspec.Gateway{Balance: "random"}}, Options{}); err == nil {
		t.Error("New accepted an unknown balance policy")
	}
}

func TestRetries(t *testing.T) {
	small := strings.Repeat("0123456789abcdef", 4<<10) // 64 KiB
	large := strings.Repeat("x", MaxRetryBody+1)
	tests := []struct {
		name      string
		first     http.HandlerFunc // nil: connection refused
		method    string
		header    http.Header
		body      string
		chunked   bool // hide the length from the proxy
		retries   int
		want      int    // status the client sees
		wantBody  string // when not empty
		wantTries int
		wantEject string
		// the second replica's hits
		wantSecond int64
	}{
		{
			name: "GET retried after connection closed", first: hangUp, method: "GET",
			retries: 2, want: 200, wantBody: "second", wantTries: 2, wantSecond: 1,
		},
		{
			name: "GET retried after 503", first: status(503), method: "GET",
			retries: 2, want: 200, wantBody: "second", wantTries: 2, wantSecond: 1,
		},
		{
			name: "GET not retried with retries 0", first: status(503), method: "GET",
			retries: 0, want: 503, wantTries: 1,
		},
		{
			name: "GET not retried after 500", first: status(500), method: "GET",
			retries: 2, want: 500, wantTries: 1,
		},
		{
			name: "POST not retried after 503", first: status(503), method: "POST", body: "order",
			retries: 2, want: 503, wantTries: 1,
		},
		{
			name: "POST with Idempotency-Key retried after 503", first: status(503), method: "POST", body: "order",
			header: http.Header{"Idempotency-Key": {"k1"}}, retries: 2, want: 200, wantTries: 2, wantSecond: 1,
		},
		{
			name: "POST retried when connection refused", first: nil, method: "POST", body: "order",
			retries: 2, want: 200, wantBody: "5 " + digest("order"), wantTries: 2, wantSecond: 1,
			wantEject: "first " + EjectConnectFailure,
		},
		{
			// The replica may have acted on it before the connection broke.
			name: "POST not retried when the connection broke after it was sent", first: hangUp, method: "POST", body: small,
			retries: 2, want: 502, wantTries: 1,
		},
		{
			name: "POST with Idempotency-Key retried when the connection broke", first: hangUp, method: "POST", body: small,
			header: http.Header{"Idempotency-Key": {"k1"}}, retries: 2, want: 200,
			wantBody: fmt.Sprintf("%d %s", len(small), digest(small)), wantTries: 2, wantSecond: 1,
		},
		{
			name: "PUT with a chunked body buffered and retried", first: hangUp, method: "PUT", body: small, chunked: true,
			retries: 2, want: 200, wantBody: fmt.Sprintf("%d %s", len(small), digest(small)), wantTries: 2, wantSecond: 1,
		},
		{
			name: "large body streamed, not retried", first: hangUp, method: "PUT", body: large,
			retries: 2, want: 502, wantTries: 1,
		},
		{
			name: "large chunked body streamed, not retried", first: hangUp, method: "PUT", body: large, chunked: true,
			retries: 2, want: 502, wantTries: 1,
		},
		{
			name: "large body retried when connection refused", first: nil, method: "PUT", body: large,
			retries: 2, want: 200, wantBody: fmt.Sprintf("%d %s", len(large), digest(large)), wantTries: 2, wantSecond: 1,
			wantEject: "first " + EjectConnectFailure,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := &Upstream{ID: "id-first", Name: "first", Addr: refusedAddr(t)}
			var firstHits func() int64
			if tt.first != nil {
				b := startBackend(t, "first", tt.first)
				first, firstHits = b.up, b.hits.Load
			}
			secondHandler := ok("second")
			if tt.body != "" {
				secondHandler = echoBody
			}
			second := startBackend(t, "second", secondHandler)
			cell := shopCell(cellspec.Route{Path: "/orders", Service: "orders", Retries: tt.retries})
			h := start(t, cell, Options{}, map[string][]*Upstream{"orders": {first, second.up}})

			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // unknown length: sent chunked
				}
			}
			req := h.request(t, tt.method, "/orders", body)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, got := h.do(t, req)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d (body %q)", resp.StatusCode, tt.want, got)
			}
			if tt.wantBody != "" && got != tt.wantBody {
				t.Errorf("body %q, want %q", got, tt.wantBody)
			}
			rec := h.record(t)
			if rec.Tries != tt.wantTries || rec.Status != tt.want {
				t.Errorf("record has %d tries, status %d; want %d, %d", rec.Tries, rec.Status, tt.wantTries, tt.want)
			}
			if got := second.hits.Load(); got != tt.wantSecond {
				t.Errorf("second replica got %d requests, want %d", got, tt.wantSecond)
			}
			if firstHits != nil && firstHits() != 1 {
				t.Errorf("first replica got %d requests, want 1", firstHits())
			}
			var eject string
			select {
			case eject = <-h.ejects:
			default:
			}
			if eject != tt.wantEject {
				t.Errorf("ejection %q, want %q", eject, tt.wantEject)
			}
		})
	}
}

func digest(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }

func TestTryTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	tests := []struct {
		method string
		want   int
	}{
		{http.MethodGet, http.StatusOK},
		{http.MethodPost, http.StatusGatewayTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			first := startBackend(t, "first", slow)
			second := startBackend(t, "second", ok("second"))
			cell := shopCell(cellspec.Route{Path: "/orders", Service: "orders", Retries: 1, Timeout: cellspec.Duration(250 * time.Millisecond)})
			h := start(t, cell, Options{}, map[string][]*Upstream{"orders": {first.up, second.up}})
			resp, body := h.do(t, h.request(t, tt.method, "/orders", strings.NewReader("x")))
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d (body %q)", resp.StatusCode, tt.want, body)
			}
			if got := first.up.Fails(); got != 1 {
				t.Errorf("first replica has %d failures, want 1", got)
			}
		})
	}
}

func TestPassiveHealthEjectsAndReadmits(t *testing.T) {
	clock := newFakeClock()
	var failing atomic.Bool
	failing.Store(true)
	b1 := startBackend(t, "orders-1", func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "orders-1")
	})
	b2 := startBackend(t, "orders-2", ok("orders-2"))
	h := start(t, shopCell(), Options{Now: clock.Now, Outlier: Outlier{Consecutive5xx: 3}},
		map[string][]*Upstream{"orders": {b1.up, b2.up}})
	var got []string
	for range 8 {
		resp, body := h.get(t, "/orders")
		if resp.StatusCode != http.StatusOK {
			body = resp.Status
		}
		got = append(got, body)
	}
	// Round robin: orders-1 answers 500 every other request; its third in
	// a row ejects it, and orders-2 takes everything.
	want := []string{"500 Internal Server Error", "orders-2", "500 Internal Server Error", "orders-2",
		"500 Internal Server Error", "orders-2", "orders-2", "orders-2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers mismatch (-want +got):\n%s", diff)
	}
	if want := clock.Now().Add(30 * time.Second); !b1.up.EjectedUntil().Equal(want) {
		t.Errorf("ejected until %s, want %s", b1.up.EjectedUntil(), want)
	}
	if got := <-h.ejects; got != "orders-1 "+EjectConsecutive5xx {
		t.Errorf("ejection %q", got)
	}
	failing.Store(false)
	clock.Advance(30 * time.Second)
	got = nil
	for range 2 {
		_, body := h.get(t, "/orders")
		got = append(got, body)
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"orders-1", "orders-2"}, got); diff != "" {
		t.Errorf("after the ejection (-want +got):\n%s", diff)
	}
}

func TestEjectionNeverTakesTheService(t *testing.T) {
	// Three replicas that all refuse connections: the first refusal
	// ejects one (50% of three rounds down to one), the others stay,
	// and requests keep trying them.
	var ups []*Upstream
	for i := range 3 {
		ups = append(ups, &Upstream{ID: fmt.Sprint("r", i), Name: fmt.Sprint("r", i), Addr: refusedAddr(t)})
	}
	h := start(t, shopCell(), Options{}, map[string][]*Upstream{"orders": ups})
	for range 5 {
		if resp, _ := h.get(t, "/orders"); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want 502", resp.StatusCode)
		}
	}
	ejected := 0
	for _, u := range ups {
		if !u.EjectedUntil().IsZero() {
			ejected++
		}
	}
	if ejected != 1 {
		t.Errorf("%d of 3 replicas ejected, want 1", ejected)
	}
}

func TestPanicMode(t *testing.T) {
	clock := newFakeClock()
	b := []*backend{startBackend(t, "o1", ok("o1")), startBackend(t, "o2", ok("o2")), startBackend(t, "o3", ok("o3"))}
	type change struct {
		panicking          bool
		healthy, available int
	}
	var changes []change
	var mu sync.Mutex
	h := start(t, shopCell(), Options{Now: clock.Now, OnPanic: func(service string, panicking bool, healthy, available int) {
		mu.Lock()
		changes = append(changes, change{panicking, healthy, available})
		mu.Unlock()
	}}, map[string][]*Upstream{"orders": {b[0].up, b[1].up, b[2].up}})
	// o1 ejected, o2 unhealthy: one of two healthy replicas available,
	// no panic yet; then o3 ejected too: none of two.
	b[0].up.eject(clock.Now(), Outlier{}.withDefaults(), EjectGatewayFailure)
	b[1].up.SetHealthy(false)
	if _, body := h.get(t, "/orders"); body != "o3" {
		t.Errorf("one of two healthy available: got %q, want o3", body)
	}
	b[2].up.eject(clock.Now(), Outlier{}.withDefaults(), EjectGatewayFailure)
	got := map[string]bool{}
	for range 4 {
		_, body := h.get(t, "/orders")
		got[body] = true
	}
	if diff := cmp.Diff(map[string]bool{"o1": true, "o3": true}, got); diff != "" {
		t.Errorf("in panic mode, answers from (-want +got):\n%s", diff)
	}
	if !h.p.Panicking("orders") {
		t.Error("Panicking(orders) = false")
	}
	clock.Advance(time.Hour)
	if _, body := h.get(t, "/orders"); body == "" {
		t.Error("no answer after the ejections ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]change{{true, 2, 0}, {false, 2, 2}}, changes, cmp.AllowUnexported(change{})); diff != "" {
		t.Errorf("panic changes (-want +got):\n%s", diff)
	}
}

func TestProxyAnswers(t *testing.T) {
	unhealthy := &Upstream{ID: "u1", Addr: refusedAddr(t)}
	unhealthy.SetHealthy(false)
	cell := shopCell(
		cellspec.Route{Path: "/orders", Service: "orders"},
		cellspec.Route{Path: "/users", Service: "users"},
	)
	h := start(t, cell, Options{}, map[string][]*Upstream{"orders": {unhealthy}})
	tests := []struct {
		path       string
		want       int
		wantBody   string
		wantHeader http.Header
	}{
		{
			path:       "/orders/1",
			want:       http.StatusServiceUnavailable,
			wantBody:   `no healthy replica of service "orders" in cell "shop"`,
			wantHeader: http.Header{"Retry-After": {"1"}, "Content-Type": {"text/plain; charset=utf-8"}},
		},
		{
			path:       "/users",
			want:       http.StatusServiceUnavailable,
			wantBody:   `no healthy replica of service "users" in cell "shop"`,
			wantHeader: http.Header{"Retry-After": {"1"}},
		},
		{
			path:       "/nowhere",
			want:       http.StatusNotFound,
			wantBody:   `no route for path "/nowhere" in cell "shop"; routes: /orders -> orders; /users -> users`,
			wantHeader: http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := h.get(t, tt.path)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if diff := cmp.Diff(tt.wantBody+"\n", body); diff != "" {
				t.Errorf("body mismatch (-want +got):\n%s", diff)
			}
			for k := range tt.wantHeader {
				if diff := cmp.Diff(tt.wantHeader[k], resp.Header[k]); diff != "" {
					t.Errorf("header %s mismatch (-want +got):\n%s", k, diff)
				}
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the answer")
			}
			if rec := h.record(t); rec.Status != tt.want || rec.Error == "" {
				t.Errorf("record status %d error %q", rec.Status, rec.Error)
			}
		})
	}
}

func TestHeadersReachBackend(t *testing.T) {
	seen := make(chan *http.Request, 1)
	b := startBackend(t, "orders-1", func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Clone(context.Background())
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		fmt.Fprint(w, "ok")
	})
	cell := shopCell(cellspec.Route{Path: "/api", Service: "orders", StripPrefix: true})
	h := start(t, cell, Options{}, map[string][]*Upstream{"orders": {b.up}})
	frontHost := strings.TrimPrefix(h.front.URL, "http://")
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"

	tests := []struct {
		name         string
		header       http.Header
		wantID       string // "" means generated
		wantTrace    string // "" means a new trace
		wantFlags    string
		wantXFF      string
		wantDropped  []string
		wantUpstream string
	}{
		{
			name:      "generated",
			wantFlags: "01",
			wantXFF:   "127.0.0.1",
		},
		{
			name: "propagated",
			header: http.Header{
				"X-Request-Id":    {"req-42"},
				"Traceparent":     {incoming},
				"X-Forwarded-For": {"203.0.113.9"},
			},
			wantID:    "req-42",
			wantTrace: traceID(incoming),
			wantFlags: "00",
			wantXFF:   "203.0.113.9, 127.0.0.1",
		},
		{
			name:      "invalid traceparent replaced",
			header:    http.Header{"Traceparent": {"00-zz"}},
			wantFlags: "01",
			wantXFF:   "127.0.0.1",
		},
		{
			name: "hop-by-hop removed",
			header: http.Header{
				"Connection":          {"X-Hop"},
				"X-Hop":               {"1"},
				"Proxy-Authorization": {"Basic eDp5"},
				"Keep-Alive":          {"timeout=5"},
			},
			wantFlags:   "01",
			wantXFF:     "127.0.0.1",
			wantDropped: []string{"X-Hop", "Proxy-Authorization", "Keep-Alive"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := h.request(t, http.MethodGet, "/api/items?q=1", nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, _ := h.do(t, req)
			got := <-seen
			rec := h.record(t)

			if got.URL.RequestURI() != "/items?q=1" {
				t.Errorf("backend got %q, want /items?q=1", got.URL.RequestURI())
			}
			id := got.Header.Get("X-Request-Id")
			if id == "" || (tt.wantID != "" && id != tt.wantID) {
				t.Errorf("X-Request-Id %q, want %q", id, tt.wantID)
			}
			if resp.Header.Get("X-Request-Id") != id || rec.RequestID != id {
				t.Errorf("response X-Request-Id %q, record %q, backend %q", resp.Header.Get("X-Request-Id"), rec.RequestID, id)
			}
			tp := got.Header.Get("Traceparent")
			if !validTraceparent(tp) || tp[53:] != tt.wantFlags {
				t.Errorf("traceparent %q, want valid with flags %s", tp, tt.wantFlags)
			}
			if tt.wantTrace != "" && traceID(tp) != tt.wantTrace {
				t.Errorf("trace ID %q, want %q", traceID(tp), tt.wantTrace)
			}
			if tt.wantTrace == "" && traceID(tp) == traceID(incoming) {
				t.Error("trace ID reused from an invalid header")
			}
			if tp == incoming || rec.TraceID != traceID(tp) || rec.SpanID != spanID(tp) {
				t.Errorf("traceparent %q, record trace %q span %q", tp, rec.TraceID, rec.SpanID)
			}
			wantFwd := http.Header{
				"X-Forwarded-For":   {tt.wantXFF},
				"X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host":  {frontHost},
			}
			for k, v := range wantFwd {
				if diff := cmp.Diff(v, got.Header[k]); diff != "" {
					t.Errorf("%s mismatch (-want +got):\n%s", k, diff)
				}
			}
			if got.Host != frontHost {
				t.Errorf("Host %q, want the client's %q", got.Host, frontHost)
			}
			for _, k := range tt.wantDropped {
				if v, ok := got.Header[k]; ok {
					t.Errorf("hop-by-hop %s reached the backend: %q", k, v)
				}
			}
			for _, k := range []string{"X-Internal", "Keep-Alive"} {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("hop-by-hop %s reached the client: %q", k, v)
				}
			}
			wantRec := RequestRecord{
				Method: "GET", Host: frontHost, Path: "/api/items", Status: 200, Bytes: 2,
				Route: "/api", Service: "orders", Upstream: b.up.Addr, Replica: "orders-1", Tries: 1,
			}
			gotRec := rec
			gotRec.Time, gotRec.Duration, gotRec.RequestID, gotRec.TraceID, gotRec.SpanID, gotRec.Remote = time.Time{}, 0, "", "", "", ""
			if diff := cmp.Diff(wantRec, gotRec); diff != "" {
				t.Errorf("record mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStreamingFlushes(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
	}{
		{"event stream", "text/event-stream"},
		{"unknown length", "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := make(chan struct{})
			b := startBackend(t, "events", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				for i := range 3 {
					fmt.Fprintf(w, "data: %d\n\n", i)
					w.(http.Flusher).Flush()
					select {
					case <-next:
					case <-r.Context().Done():
						return
					}
				}
			})
			h := start(t, shopCell(), Options{}, map[string][]*Upstream{"orders": {b.up}})
			resp, err := h.client.Do(h.request(t, http.MethodGet, "/orders/events", nil))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			for i := range 3 {
				// The backend sends event i+1 only after the client has read
				// event i, so a proxy that buffers never gets here.
				line := readLine(t, br)
				if want := fmt.Sprintf("data: %d", i); line != want {
					t.Fatalf("event %d: %q, want %q", i, line, want)
				}
				readLine(t, br)
				next <- struct{}{}
			}
		})
	}
}

func readLine(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := br.ReadString('\n')
		ch <- result{strings.TrimSuffix(line, "\n"), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read stream: %v", r.err)
		}
		return r.line
	case <-time.After(5 * time.Second):
		t.Fatal("stream data not delivered: the proxy is buffering")
	}
	return ""
}

// upgradeEcho is a backend that switches to the "echo" protocol and
// echoes bytes until the client closes.
func upgradeEcho(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "echo" || !hasToken(r.Header["Connection"], "upgrade") {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\nX-Backend: ws\r\n\r\n")
	brw.Flush()
	io.Copy(conn, brw) // echo until the client closes
}

func TestUpgradeEcho(t *testing.T) {
	b := startBackend(t, "ws", upgradeEcho)
	h := start(t, shopCell(), Options{}, map[string][]*Upstream{"orders": {b.up}})

	conn, err := net.Dial("tcp", h.front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /orders/ws HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" || resp.Header.Get("X-Backend") != "ws" {
		t.Fatalf("got %s %v", resp.Status, resp.Header)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on the 101")
	}
	for _, msg := range []string{"hello", "world"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != msg {
			t.Errorf("echo %q, want %q", buf, msg)
		}
	}
	conn.Close()
	if rec := h.record(t); rec.Status != http.StatusSwitchingProtocols || rec.Bytes != 10 {
		t.Errorf("record status %d bytes %d, want 101 and 10", rec.Status, rec.Bytes)
	}
	if got := b.up.Inflight(); got != 0 {
		t.Errorf("Inflight() = %d after the connection closed", got)
	}
}

func TestDrainWaitsForInflight(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	slow := startBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		fmt.Fprint(w, "slow")
	})
	other := startBackend(t, "other", ok("other"))
	h := start(t, shopCell(), Options{}, map[string][]*Upstream{"orders": {slow.up, other.up}})

	first := make(chan string, 1)
	req := h.request(t, http.MethodGet, "/orders", nil)
	go func() {
		resp, err := h.client.Do(req)
		if err != nil {
			first <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		first <- string(body)
	}()
	<-arrived

	drained := make(chan error, 1)
	go func() { drained <- h.p.Drain(t.Context(), slow.up.ID) }()

	// While the slow request is in flight, the drain cannot have ended and
	// new requests go elsewhere.
	for !slow.up.Draining() {
		select {
		case err := <-drained:
			t.Fatalf("Drain returned %v with a request in flight", err)
		default:
		}
	}
	for range 3 {
		if _, body := h.get(t, "/orders"); body != "other" {
			t.Errorf("request during drain went to %q", body)
		}
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a request in flight", err)
	default:
	}
	if got := slow.up.Inflight(); got != 1 {
		t.Fatalf("Inflight() = %d, want 1", got)
	}

	close(release)
	if err := <-drained; err != nil {
		t.Errorf("Drain = %v, want nil", err)
	}
	if got := <-first; got != "slow" {
		t.Errorf("in-flight request got %q, want it to finish on the draining replica", got)
	}

	if err := h.p.Drain(t.Context(), "nope"); !errors.Is(err, ErrUnknownUpstream) {
		t.Errorf("Drain of an unknown replica = %v, want ErrUnknownUpstream", err)
	}
}

func TestDrainTimesOut(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	slow := startBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	h := start(t, shopCell(), Options{}, map[string][]*Upstream{"orders": {slow.up}})
	go h.client.Do(h.request(t, http.MethodGet, "/orders", nil))
	<-arrived
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := h.p.Drain(ctx, slow.up.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("Drain = %v, want context.Canceled", err)
	}
}

func TestSetUpstreamsKeepsState(t *testing.T) {
	p, err := New(shopCell(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := &Upstream{ID: "a", Addr: "10.0.0.1:80"}
	b := &Upstream{ID: "b", Addr: "10.0.0.2:80"}
	p.SetUpstreams("orders", []*Upstream{a, b})
	a.served.Store(7)
	p.SetDraining("a")

	a2 := &Upstream{ID: "a", Addr: "10.0.0.1:80"}
	b2 := &Upstream{ID: "b", Addr: "10.0.0.9:80"}
	c := &Upstream{ID: "c", Addr: "10.0.0.3:80"}
	p.SetUpstreams("orders", []*Upstream{a2, b2, c, nil, c})
	got := p.Upstreams("orders")
	if len(got) != 3 || got[0] != a || got[1] != b2 || got[2] != c {
		t.Fatalf("Upstreams = %v, want [a (kept) b2 (new address) c]", ids(got))
	}
	if a.Served() != 7 || !a.Draining() {
		t.Errorf("kept upstream lost its state: served %d draining %v", a.Served(), a.Draining())
	}
	p.SetHealthy("c", false)
	if c.Healthy() {
		t.Error("SetHealthy did not reach c")
	}
	p.SetHealthy("b", false)
	if b2.Healthy() || !b.Healthy() {
		t.Error("SetHealthy reached the replaced upstream instead of the new one")
	}
	p.SetDraining("gone") // ignored
	p.Undrain("a")
	if a.Draining() {
		t.Error("Undrain did not put a back into rotation")
	}
	if p.Upstreams("unknown") != nil {
		t.Error("Upstreams of an unknown service is not nil")
	}
	p.SetUpstreams("orders", nil)
	if got := p.Upstreams("orders"); len(got) != 0 {
		t.Errorf("Upstreams after clearing = %v", ids(got))
	}
}

func TestForward(t *testing.T) {
	seen := make(chan string, 10)
	gw1 := startBackend(t, "users-gw", func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.RequestURI()
		fmt.Fprint(w, "users")
	})
	dead := &Upstream{ID: "dead", Addr: refusedAddr(t)}
	h := &harness{records: make(chan RequestRecord, 100), ejects: make(chan string, 100)}
	p := NewForward("users", []*Upstream{dead, gw1.up}, Options{OnRequest: func(r *RequestRecord) { h.records <- *r }})
	h.run(t, p, nil)

	for _, path := range []string{"/users/1?x=y", "/anything"} {
		resp, body := h.get(t, path)
		if resp.StatusCode != http.StatusOK || body != "users" {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
		if got := <-seen; got != path {
			t.Errorf("gateway got %q, want %q unchanged", got, path)
		}
	}
	if rec := h.record(t); rec.Service != "users" || rec.Tries != 2 {
		t.Errorf("record service %q tries %d, want users and 2 (refused, then retried)", rec.Service, rec.Tries)
	}

	p.SetUpstreams("users", nil)
	resp, body := h.get(t, "/x")
	if resp.StatusCode != http.StatusServiceUnavailable || body != "no healthy gateway of cell \"users\"\n" {
		t.Errorf("no gateways: %d %q", resp.StatusCode, body)
	}
}

func TestRecordsDropWhenFull(t *testing.T) {
	b := startBackend(t, "orders-1", ok("x"))
	p, err := New(shopCell(), Options{OnRequest: func(*RequestRecord) {}, RecordBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	p.SetUpstreams("orders", []*Upstream{b.up})
	for range 3 {
		rr := httptest.NewRecorder()
		p.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/orders", nil))
		if rr.Code != http.StatusOK {
			t.Fatalf("status %d", rr.Code)
		}
	}
	if got := p.DroppedRecords(); got != 2 {
		t.Errorf("DroppedRecords() = %d, want 2 (Run not running, buffer of 1)", got)
	}
	p.CloseIdleConnections()
}

func TestDefaultRoutes(t *testing.T) {
	b := startBackend(t, "orders-1", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.Path) })
	cell := &cellspec.Cell{Name: "shop", Services: map[string]*cellspec.Service{
		"orders": {Name: "orders", Port: 8080},
		"worker": {Name: "worker"},
	}}
	cell.Gateway.Routes = cellspec.DefaultRoutes(cell)
	p, err := New(cell, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseIdleConnections()
	p.SetUpstreams("orders", []*Upstream{b.up})
	if diff := cmp.Diff([]string{"orders"}, p.Router().Services()); diff != "" {
		t.Errorf("default routes mismatch (-want +got):\n%s", diff)
	}
	rr := httptest.NewRecorder()
	p.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/orders/7", nil))
	if rr.Code != http.StatusOK || rr.Body.String() != "/orders/7" {
		t.Errorf("got %d %q", rr.Code, rr.Body.String())
	}
	if p.Upstreams("worker") == nil {
		t.Error("no pool for a service without a route")
	}
}

func TestBodyBufferReuseIsSafe(t *testing.T) {
	// Many concurrent POSTs with distinct bodies: a buffer handed back to
	// the pool too early would mix them up.
	b := startBackend(t, "orders-1", echoBody)
	h := start(t, shopCell(), Options{}, map[string][]*Upstream{"orders": {b.up}})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))
			resp, err := h.client.Post(h.front.URL+"/orders", "text/plain", bytes.NewReader(body))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if want := fmt.Sprintf("%d %s", len(body), digest(string(body))); err != nil || resp.StatusCode != 200 || string(got) != want {
				t.Errorf("request %d: %d %q (%v), want %q", i, resp.StatusCode, got, err, want)
			}
		}()
	}
	wg.Wait()
}
