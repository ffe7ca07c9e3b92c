package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
)

// This file tests Server, the proxy's own HTTP/1 front end, mostly by
// sending it exact bytes over TCP and comparing what backends and clients
// see with what an http.Server running the same Proxy produces.

// svFront is a Server serving on 127.0.0.1.
type svFront struct {
	s    *Server
	addr string
	done chan struct{} // closed when Serve returns
	err  error         // what Serve returned, once done is closed
}

// svStart serves p with a Server on a fresh listener; the Server is closed
// when the test ends, and Serve must then return http.ErrServerClosed.
func svStart(t testing.TB, p *Proxy, opts ServerOptions) *svFront {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &svFront{s: NewServer(p, opts), addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		f.err = f.s.Serve(ln)
		close(f.done)
	}()
	t.Cleanup(func() {
		f.s.Close()
		if err := f.wait(); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return f
}

// wait returns Serve's result, waiting up to 5 seconds for it.
func (f *svFront) wait() error {
	select {
	case <-f.done:
		return f.err
	case <-time.After(5 * time.Second):
		return errors.New("Serve did not return")
	}
}

// counts returns the Server's counters.
func (f *svFront) counts() (fast, handedOff uint64) {
	return f.s.FastRequests(), f.s.HandedOff()
}

// wantCounts checks how the counters moved since before.
func (f *svFront) wantCounts(t *testing.T, fast0, hand0, fast, hand uint64) {
	t.Helper()
	f1, h1 := f.counts()
	if f1-fast0 != fast || h1-hand0 != hand {
		t.Errorf("FastRequests +%d, HandedOff +%d; want +%d, +%d", f1-fast0, h1-hand0, fast, hand)
	}
}

// svProxy returns a Proxy for cell without records, with the given
// replicas.
func svProxy(t testing.TB, cell *cellspec.Cell, ups map[string][]*Upstream) *Proxy {
	t.Helper()
	p, err := New(cell, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for svc, list := range ups {
		p.SetUpstreams(svc, list)
	}
	t.Cleanup(p.CloseIdleConnections)
	return p
}

// svCell is the cell of most tests: /orders and /api (stripped) lead to
// orders, /empty to a service without replicas, /raw to raw.
func svCell(timeout time.Duration, retries int) *cellspec.Cell {
	return shopCell(
		cellspec.Route{Path: "/orders", Service: "orders", Timeout: cellspec.Duration(timeout), Retries: retries},
		cellspec.Route{Path: "/api", Service: "orders", StripPrefix: true, Timeout: cellspec.Duration(timeout), Retries: retries},
		cellspec.Route{Path: "/empty", Service: "empty"},
		cellspec.Route{Path: "/raw", Service: "raw", Timeout: cellspec.Duration(timeout)},
	)
}

// svUp is a replica of service orders at addr.
func svUp(id string, replica int, addr string) *Upstream {
	return &Upstream{ID: id, Service: "orders", Replica: replica, Name: id, Addr: addr}
}

// svReq builds a request head from its lines.
func svReq(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// svConn is a raw client connection.
type svConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// svDial connects to addr. Every read and write on the connection must end
// within 10 seconds, so a broken server fails the test rather than hanging
// it.
func svDial(t *testing.T, addr string) *svConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &svConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *svConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write request: %v", err)
	}
}

// read reads the answer to a request with the given method, body
// included.
func (c *svConn) read(method string) (*http.Response, string, error) {
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), err
}

func (c *svConn) mustRead(method string) (*http.Response, string) {
	c.t.Helper()
	resp, body, err := c.read(method)
	if err != nil {
		c.t.Fatalf("read answer: %v (body so far %q)", err, body)
	}
	return resp, body
}

// do sends a raw request and reads its answer.
func (c *svConn) do(method, raw string) (*http.Response, string) {
	c.t.Helper()
	c.send(raw)
	return c.mustRead(method)
}

// get sends a plain GET of path and wants a 200.
func (c *svConn) get(path string) string {
	c.t.Helper()
	resp, body := c.do("GET", svReq("GET "+path+" HTTP/1.1", "Host: shop.local"))
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %s %q", path, resp.Status, body)
	}
	return body
}

// waitClosed reports whether the server closes the connection within 3
// seconds, sending nothing more.
func (c *svConn) waitClosed() error {
	_ = c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var buf [256]byte
	n, err := c.br.Read(buf[:])
	switch {
	case n > 0:
		return fmt.Errorf("connection not closed: got %q", buf[:n])
	case err == io.EOF, errors.Is(err, syscall.ECONNRESET):
		return nil
	}
	return fmt.Errorf("connection not closed: %v", err)
}

// svSeen is what a backend received.
type svSeen struct {
	Method, Path, RawPath, RawQuery, Host, Proto string
	ContentLength                                int64
	TransferEncoding                             []string
	Header                                       http.Header
	Body                                         string
	RequestURI                                   string // compared apart
}

func svCapture(r *http.Request) svSeen {
	body, _ := io.ReadAll(r.Body)
	return svSeen{
		Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
		Host: r.Host, Proto: r.Proto, ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		Header: r.Header.Clone(), Body: string(body), RequestURI: r.RequestURI,
	}
}

// svExchange is one request's outcome, as the backend, the client and the
// record saw it.
type svExchange struct {
	seen svSeen
	resp *http.Response
	body string
	rec  RequestRecord
}

const svTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"

func TestServerMatchesNetHTTP(t *testing.T) {
	seen := make(chan svSeen, 16)
	b := startBackend(t, "orders-1", func(w http.ResponseWriter, r *http.Request) {
		seen <- svCapture(r)
		h := w.Header()
		h.Set("X-Backend", "yes")
		h["X-Multi"] = []string{"a", "b"}
		h.Set("Connection", "X-Internal")
		h.Set("X-Internal", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello %s %s?%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery)
	})
	hs := start(t, svCell(0, 2), Options{}, map[string][]*Upstream{"orders": {b.up}})
	fast := svStart(t, hs.p, ServerOptions{})
	std := hs.front.Listener.Addr().String()

	manyFields := []string{"GET /orders/many HTTP/1.1", "Host: shop.local"}
	for i := range maxFastHeaders + 2 {
		manyFields = append(manyFields, fmt.Sprintf("X-F%d: %d", i, i))
	}

	tests := []struct {
		name      string
		req       string
		method    string // for reading the answer; "" means GET
		fast      bool   // served on the fast path
		wantClose bool   // the connection ends after the answer
		reqID     string // the client's X-Request-Id
		trace     string // the client's valid traceparent
	}{
		{name: "plain GET", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "User-Agent: raw/1", "Accept: */*"), fast: true},
		{name: "no User-Agent", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local"), fast: true},
		{name: "empty User-Agent", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "User-Agent:"), fast: true},
		{name: "two User-Agents", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "User-Agent: first", "User-Agent: second"), fast: true},
		{name: "query", req: svReq("GET /orders/items?a=1&b=x%20y&c HTTP/1.1", "Host: shop.local"), fast: true},
		{name: "empty query", req: svReq("GET /orders/items? HTTP/1.1", "Host: shop.local"), fast: true},
		{name: "odd query bytes", req: svReq("GET /orders/items?q=a|b{c}^`\"'<>\\[] HTTP/1.1", "Host: shop.local"), fast: true},
		{name: "path with sub-delims", req: svReq("GET /orders/a(b)!*'@c:d;e,f=g+h$i&j~k HTTP/1.1", "Host: shop.local"), fast: true},
		{name: "HEAD", req: svReq("HEAD /orders/items HTTP/1.1", "Host: shop.local"), method: "HEAD", fast: true},
		{name: "DELETE", req: svReq("DELETE /orders/items/7 HTTP/1.1", "Host: shop.local"), method: "DELETE", fast: true},
		{name: "POST Content-Length 0", req: svReq("POST /orders/items HTTP/1.1", "Host: shop.local", "Content-Length: 0"), method: "POST", fast: true},
		{name: "PUT Content-Length 0", req: svReq("PUT /orders/items/7 HTTP/1.1", "Host: shop.local", "Content-Length: 0"), method: "PUT", fast: true},
		{name: "GET Content-Length 0", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "Content-Length: 0"), fast: true},
		{name: "OPTIONS", req: svReq("OPTIONS /orders/items HTTP/1.1", "Host: shop.local"), method: "OPTIONS", fast: true},
		{name: "X-Forwarded-For appended", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "X-Forwarded-For: 203.0.113.9", "X-Forwarded-For: 198.51.100.7, 192.0.2.1"), fast: true},
		{name: "client forwarding fields replaced", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example"), fast: true},
		{name: "X-Request-Id given", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "X-Request-Id: req-42"), fast: true, reqID: "req-42"},
		{name: "valid traceparent", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "Traceparent: "+svTrace), fast: true, trace: svTrace},
		{name: "invalid traceparent", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "Traceparent: 00-zz"), fast: true},
		{name: "two traceparents", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "Traceparent: "+svTrace, "Traceparent: "+svTrace), fast: true},
		{name: "Connection close", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "Connection: close"), fast: true, wantClose: true},
		{name: "Connection keep-alive", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "Connection: keep-alive"), fast: true},
		{name: "HTTP/1.0", req: svReq("GET /orders/items HTTP/1.0", "Host: shop.local"), fast: true, wantClose: true},
		{name: "HTTP/1.0 keep-alive", req: svReq("GET /orders/items HTTP/1.0", "Host: shop.local", "Connection: keep-alive"), fast: true},
		{name: "HTTP/1.0 HEAD keep-alive", req: svReq("HEAD /orders/items HTTP/1.0", "Host: shop.local", "Connection: Keep-Alive"), method: "HEAD", fast: true},
		{name: "hop-by-hop fields", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "Keep-Alive: timeout=5", "Proxy-Authorization: Basic eDp5",
			"Proxy-Connection: keep-alive", "Te: trailers, deflate"), fast: true},
		{name: "Te without trailers", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "Te: gzip"), fast: true},
		{name: "repeated fields", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "Accept: text/html", "Cache-Control: no-cache",
			"Accept: application/json", "X-Multi: 1", "x-multi: 2"), fast: true},
		{name: "odd case names", req: svReq("GET /orders/items HTTP/1.1", "hOsT: shop.local", "uSeR-aGeNt: odd", "x-rEqUeSt-iD: odd-7",
			"TRACEPARENT: "+svTrace, "x-forwarded-FOR: 203.0.113.9", "x-CUSTOM-header:   padded value\t ", "CONNECTION: keep-alive"), fast: true, reqID: "odd-7", trace: svTrace},
		{name: "Idempotency-Key and Date", req: svReq("POST /orders/items HTTP/1.1", "Host: shop.local", "Idempotency-Key: k1",
			"Date: Mon, 02 Jan 2006 15:04:05 GMT", "Content-Length: 0"), method: "POST", fast: true},
		{name: "strip prefix", req: svReq("GET /api/items?q=1 HTTP/1.1", "Host: shop.local"), fast: true},
		{name: "strip prefix to root", req: svReq("GET /api HTTP/1.1", "Host: shop.local"), fast: true},
		{name: "route prefix itself", req: svReq("GET /orders HTTP/1.1", "Host: shop.local"), fast: true},
		{name: "host with port", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local:8081"), fast: true},

		// Not fast: handed to net/http.
		{name: "Connection names a field", req: svReq("GET /orders/items HTTP/1.1", "Host: shop.local", "Connection: X-Hop", "X-Hop: 1")},
		{name: "HTTP/1.0 without Host", req: svReq("GET /orders/items HTTP/1.0"), wantClose: true},
		{name: "absolute-form target", req: svReq("GET http://shop.local/orders/items HTTP/1.1", "Host: shop.local")},
		{name: "escaped path", req: svReq("GET /orders/a%2Fb%20c HTTP/1.1", "Host: shop.local")},
		{name: "many fields", req: svReq(manyFields...)},
	}

	// exchange runs one test request against addr and a follow-up GET on
	// the same connection unless the connection is to close.
	exchange := func(t *testing.T, addr, raw, method string, wantClose bool) svExchange {
		t.Helper()
		c := svDial(t, addr)
		c.send(raw)
		var x svExchange
		x.resp, x.body = c.mustRead(method)
		select {
		case x.seen = <-seen:
		case <-time.After(5 * time.Second):
			t.Fatal("the backend got no request")
		}
		x.rec = hs.record(t)
		if wantClose {
			if err := c.waitClosed(); err != nil {
				t.Error(err)
			}
			if !x.resp.Close {
				t.Error("answer does not say the connection closes")
			}
			return x
		}
		if x.resp.Close {
			t.Errorf("answer closes the connection: %v", x.resp.Header)
		}
		if got := c.get("/orders/follow"); !strings.Contains(got, "/orders/follow") {
			t.Errorf("follow-up on the same connection: %q", got)
		}
		<-seen
		hs.record(t)
		return x
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			want := exchange(t, std, tt.req, method, tt.wantClose)
			fast0, hand0 := fast.counts()
			got := exchange(t, fast.addr, tt.req, method, tt.wantClose)
			switch {
			case tt.fast && tt.wantClose:
				fast.wantCounts(t, fast0, hand0, 1, 0)
			case tt.fast:
				fast.wantCounts(t, fast0, hand0, 2, 0)
			default:
				fast.wantCounts(t, fast0, hand0, 0, 1)
			}
			if want.resp.StatusCode != http.StatusOK {
				t.Fatalf("net/http path answered %s %q", want.resp.Status, want.body)
			}
			svCompare(t, tt.reqID, tt.trace, want, got)
		})
	}
}

// svCompare compares what the net/http path (want) and the Server (got)
// did with the same request. Request IDs and traceparents are random and
// are checked for consistency instead.
func svCompare(t *testing.T, reqID, trace string, want, got svExchange) {
	t.Helper()
	type ids struct{ id, tp string }
	split := func(x *svExchange) ids {
		h := x.seen.Header
		v := ids{h.Get("X-Request-Id"), h.Get("Traceparent")}
		if n := len(h["X-Request-Id"]); n != 1 {
			t.Errorf("backend got %d X-Request-Id fields", n)
		}
		if n := len(h["Traceparent"]); n != 1 {
			t.Errorf("backend got %d Traceparent fields", n)
		}
		h = h.Clone()
		delete(h, "X-Request-Id")
		delete(h, "Traceparent")
		x.seen.Header = h
		return v
	}
	wantIDs, gotIDs := split(&want), split(&got)

	if want.seen.RequestURI != got.seen.RequestURI {
		t.Logf("request target differs: net/http path sent %q, Server sent %q", want.seen.RequestURI, got.seen.RequestURI)
	}
	want.seen.RequestURI, got.seen.RequestURI = "", ""
	if diff := cmp.Diff(want.seen, got.seen); diff != "" {
		t.Errorf("backend request mismatch (-net/http +Server):\n%s", diff)
	}

	for _, x := range []struct {
		who string
		v   ids
		ex  *svExchange
	}{{"net/http", wantIDs, &want}, {"Server", gotIDs, &got}} {
		if x.v.id == "" || (reqID != "" && x.v.id != reqID) {
			t.Errorf("%s: backend got X-Request-Id %q, want %q", x.who, x.v.id, reqID)
		}
		if rid := x.ex.resp.Header.Get("X-Request-Id"); rid != x.v.id || x.ex.rec.RequestID != x.v.id {
			t.Errorf("%s: client got X-Request-Id %q, record %q, backend %q", x.who, rid, x.ex.rec.RequestID, x.v.id)
		}
		tp := x.v.tp
		if !validTraceparent(tp) {
			t.Errorf("%s: backend got traceparent %q", x.who, tp)
			continue
		}
		if trace != "" {
			if traceID(tp) != traceID(trace) || tp[53:] != trace[53:] || spanID(tp) == spanID(trace) {
				t.Errorf("%s: traceparent %q does not continue %q", x.who, tp, trace)
			}
		} else if tp[53:] != "01" || traceID(tp) == traceID(svTrace) {
			t.Errorf("%s: traceparent %q, want a new sampled trace", x.who, tp)
		}
		if x.ex.rec.TraceID != traceID(tp) || x.ex.rec.SpanID != spanID(tp) {
			t.Errorf("%s: record trace %q span %q, traceparent %q", x.who, x.ex.rec.TraceID, x.ex.rec.SpanID, tp)
		}
		if !strings.HasPrefix(x.ex.rec.Remote, "127.0.0.1:") {
			t.Errorf("%s: record Remote %q", x.who, x.ex.rec.Remote)
		}
	}
	if reqID == "" && wantIDs.id == gotIDs.id {
		t.Errorf("both paths generated request ID %q", gotIDs.id)
	}

	type answer struct {
		Status           int
		Proto            string
		Header           http.Header
		ContentLength    int64
		TransferEncoding []string
		Close            bool
		Body             string
		Trailer          http.Header
	}
	norm := func(x svExchange) answer {
		h := x.resp.Header.Clone()
		delete(h, "Date")
		delete(h, "X-Request-Id")
		if x.resp.ProtoMinor == 0 && x.resp.Close && h.Get("Connection") == "close" {
			// HTTP/1.0 closes by default: net/http does not say so, the
			// Server does. Both are right; resp.Close is compared.
			delete(h, "Connection")
		}
		return answer{x.resp.StatusCode, x.resp.Proto, h, x.resp.ContentLength, x.resp.TransferEncoding, x.resp.Close, x.body, x.resp.Trailer}
	}
	if diff := cmp.Diff(norm(want), norm(got)); diff != "" {
		t.Errorf("client answer mismatch (-net/http +Server):\n%s", diff)
	}

	normRec := func(r RequestRecord) RequestRecord {
		r.Time, r.Duration, r.RequestID, r.TraceID, r.SpanID, r.Remote = time.Time{}, 0, "", "", "", ""
		return r
	}
	if diff := cmp.Diff(normRec(want.rec), normRec(got.rec)); diff != "" {
		t.Errorf("record mismatch (-net/http +Server):\n%s", diff)
	}
}

// svEcho answers with the method, escaped path and body it got, and the
// length of its X-Big field.
func svEcho(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Big-Len", strconv.Itoa(len(r.Header.Get("X-Big"))))
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.EscapedPath(), body)
}

func TestServerHandsOff(t *testing.T) {
	b := startBackend(t, "orders-1", svEcho)
	p := svProxy(t, svCell(0, 2), map[string][]*Upstream{"orders": {b.up}})
	f := svStart(t, p, ServerOptions{})
	big := strings.Repeat("b", 10<<10)

	tests := []struct {
		name       string
		req        string
		method     string
		wantStatus int
		wantBody   string // "" skips the check
		check      func(t *testing.T, resp *http.Response, body string)
	}{
		{
			name:       "POST with a body",
			req:        svReq("POST /orders/echo HTTP/1.1", "Host: shop.local", "Content-Length: 11") + "hello world",
			method:     "POST",
			wantStatus: 200,
			wantBody:   "POST /orders/echo hello world",
		},
		{
			name:       "PUT with a body",
			req:        svReq("PUT /api/echo HTTP/1.1", "Host: shop.local", "Content-Length: 3") + "abc",
			method:     "PUT",
			wantStatus: 200,
			wantBody:   "PUT /echo abc",
		},
		{
			name: "chunked request body",
			req: svReq("POST /orders/echo HTTP/1.1", "Host: shop.local", "Transfer-Encoding: chunked") +
				"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
			method:     "POST",
			wantStatus: 200,
			wantBody:   "POST /orders/echo hello world",
		},
		{
			name:       "escaped slash",
			req:        svReq("GET /orders/a%2Fb HTTP/1.1", "Host: shop.local"),
			wantStatus: 200,
			wantBody:   "GET /orders/a%2Fb ",
		},
		{
			name:       "escaped slash under a stripped prefix",
			req:        svReq("GET /api/a%2Fb HTTP/1.1", "Host: shop.local"),
			wantStatus: 200,
			wantBody:   "GET /a%2Fb ",
		},
		{
			name:       "no route",
			req:        svReq("GET /nowhere HTTP/1.1", "Host: shop.local"),
			wantStatus: http.StatusNotFound,
			check: func(t *testing.T, resp *http.Response, body string) {
				if !strings.Contains(body, "no route") || resp.Header.Get("X-Request-Id") == "" {
					t.Errorf("404 body %q, header %v", body, resp.Header)
				}
			},
		},
		{
			name:       "no replica",
			req:        svReq("GET /empty/x HTTP/1.1", "Host: shop.local"),
			wantStatus: http.StatusServiceUnavailable,
			check: func(t *testing.T, resp *http.Response, body string) {
				if resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "no healthy replica") {
					t.Errorf("503 body %q, Retry-After %q", body, resp.Header.Get("Retry-After"))
				}
			},
		},
		{
			name:       "malformed request line",
			req:        "GARBAGE\r\n\r\n",
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "malformed header line",
			req:        svReq("GET /orders/x HTTP/1.1", "Host: shop.local", "no colon here"),
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "two Host fields",
			req:        svReq("GET /orders/x HTTP/1.1", "Host: a.example", "Host: b.example"),
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "head over 8 KiB",
			req:        svReq("GET /orders/big HTTP/1.1", "Host: shop.local", "X-Big: "+big),
			wantStatus: 200,
			wantBody:   "GET /orders/big ",
			check: func(t *testing.T, resp *http.Response, body string) {
				if got := resp.Header.Get("X-Big-Len"); got != strconv.Itoa(len(big)) {
					t.Errorf("backend got X-Big of %s bytes, want %d", got, len(big))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			fast0, hand0 := f.counts()
			c := svDial(t, f.addr)
			resp, body := c.do(method, tt.req)
			if resp.StatusCode != tt.wantStatus || (tt.wantBody != "" && body != tt.wantBody) {
				t.Errorf("got %s %q, want %d %q", resp.Status, body, tt.wantStatus, tt.wantBody)
			}
			if tt.check != nil {
				tt.check(t, resp, body)
			}
			f.wantCounts(t, fast0, hand0, 0, 1)
		})
	}

	t.Run("Expect 100-continue", func(t *testing.T) {
		fast0, hand0 := f.counts()
		c := svDial(t, f.addr)
		c.send(svReq("POST /orders/echo HTTP/1.1", "Host: shop.local", "Content-Length: 5", "Expect: 100-continue"))
		resp, _ := c.mustRead("POST")
		if resp.StatusCode != http.StatusContinue {
			t.Fatalf("got %s before the body, want 100 Continue", resp.Status)
		}
		c.send("hello")
		resp, body := c.mustRead("POST")
		if resp.StatusCode != 200 || body != "POST /orders/echo hello" {
			t.Errorf("got %s %q", resp.Status, body)
		}
		f.wantCounts(t, fast0, hand0, 0, 1)
	})

	t.Run("WebSocket-style upgrade", func(t *testing.T) {
		ws := startBackend(t, "ws", upgradeEcho)
		p := svProxy(t, shopCell(), map[string][]*Upstream{"orders": {ws.up}})
		f := svStart(t, p, ServerOptions{})
		c := svDial(t, f.addr)
		c.send(svReq("GET /orders/ws HTTP/1.1", "Host: shop.local", "Connection: Upgrade", "Upgrade: echo"))
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" || resp.Header.Get("X-Backend") != "ws" {
			t.Fatalf("got %s %v", resp.Status, resp.Header)
		}
		for _, msg := range []string{"hello", "world"} {
			c.send(msg)
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(c.br, buf); err != nil {
				t.Fatal(err)
			}
			if string(buf) != msg {
				t.Errorf("echo %q, want %q", buf, msg)
			}
		}
		f.wantCounts(t, 0, 0, 0, 1)
	})
}

// svLarge returns a 5 MiB body of pseudo-random bytes.
var svLarge = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 5<<20)
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
})

func TestServerResponseShapes(t *testing.T) {
	sseNext := make(chan struct{})
	b := startBackend(t, "orders-1", func(w http.ResponseWriter, r *http.Request) {
		fl := w.(http.Flusher)
		switch strings.TrimPrefix(r.URL.Path, "/orders/") {
		case "len":
			w.Header().Set("Content-Length", "11")
			io.WriteString(w, "hello world")
		case "chunks":
			for i := range 5 {
				fmt.Fprintf(w, "part %d;", i)
				fl.Flush()
			}
		case "trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "abc")
			fl.Flush()
			io.WriteString(w, "def")
			w.Header().Set("X-Sum", "42")
		case "sse":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			fl.Flush()
			select {
			case <-sseNext:
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Second):
				return
			}
			io.WriteString(w, "data: 2\n\n")
		case "large":
			w.Header().Set("Content-Length", strconv.Itoa(len(svLarge())))
			w.Write(svLarge())
		case "large-chunked":
			for rest := svLarge(); len(rest) > 0; {
				n := min(len(rest), 100_000)
				w.Write(rest[:n])
				fl.Flush()
				rest = rest[n:]
			}
		case "bighead":
			w.Header().Set("X-Big", strings.Repeat("h", 10<<10))
			io.WriteString(w, "ok")
		case "early":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "final")
		case "204":
			w.WriteHeader(http.StatusNoContent)
		case "304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "abort":
			io.WriteString(w, "partial")
			fl.Flush()
			panic(http.ErrAbortHandler)
		default:
			fmt.Fprintf(w, "hello %s", r.URL.Path)
		}
	})
	// raw answers with a 100-byte Content-Length, sends 10 bytes and
	// hangs up.
	raw := startRaw(t, func(n int64, c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
	})
	p := svProxy(t, svCell(0, 2), map[string][]*Upstream{
		"orders": {b.up},
		"raw":    {{ID: "raw-1", Service: "raw", Replica: 1, Addr: raw.addr()}},
	})
	f := svStart(t, p, ServerOptions{})

	// Each subtest makes its requests on the fast path.
	run := func(name string, nFast uint64, fn func(t *testing.T, c *svConn)) {
		t.Run(name, func(t *testing.T) {
			fast0, hand0 := f.counts()
			fn(t, svDial(t, f.addr))
			f.wantCounts(t, fast0, hand0, nFast, 0)
		})
	}
	get := func(path, proto string, extra ...string) string {
		return svReq(append([]string{"GET " + path + " " + proto, "Host: shop.local"}, extra...)...)
	}

	run("Content-Length body", 1, func(t *testing.T, c *svConn) {
		resp, body := c.do("GET", get("/orders/len", "HTTP/1.1"))
		if resp.StatusCode != 200 || resp.ContentLength != 11 || body != "hello world" || resp.TransferEncoding != nil {
			t.Errorf("got %s length %d TE %v %q", resp.Status, resp.ContentLength, resp.TransferEncoding, body)
		}
	})
	run("unknown length to HTTP/1.1 is chunked", 2, func(t *testing.T, c *svConn) {
		resp, body := c.do("GET", get("/orders/chunks", "HTTP/1.1"))
		if resp.StatusCode != 200 || body != "part 0;part 1;part 2;part 3;part 4;" ||
			!slices.Equal(resp.TransferEncoding, []string{"chunked"}) || resp.Close {
			t.Errorf("got %s TE %v close %v %q", resp.Status, resp.TransferEncoding, resp.Close, body)
		}
		c.get("/orders/after")
	})
	run("unknown length to HTTP/1.0 is close-delimited", 1, func(t *testing.T, c *svConn) {
		resp, body := c.do("GET", get("/orders/chunks", "HTTP/1.0", "Connection: keep-alive"))
		if resp.StatusCode != 200 || body != "part 0;part 1;part 2;part 3;part 4;" ||
			resp.TransferEncoding != nil || !resp.Close || resp.ProtoMinor != 0 {
			t.Errorf("got %s %s TE %v close %v %q", resp.Proto, resp.Status, resp.TransferEncoding, resp.Close, body)
		}
		if err := c.waitClosed(); err != nil {
			t.Error(err)
		}
	})
	run("trailers", 2, func(t *testing.T, c *svConn) {
		resp, body := c.do("GET", get("/orders/trailer", "HTTP/1.1", "Te: trailers"))
		if resp.StatusCode != 200 || body != "abcdef" || resp.Trailer.Get("X-Sum") != "42" {
			t.Errorf("got %s %q, trailer %v", resp.Status, body, resp.Trailer)
		}
		c.get("/orders/after")
	})
	run("server-sent events stream", 1, func(t *testing.T, c *svConn) {
		c.send(get("/orders/sse", "HTTP/1.1"))
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("got %s %v", resp.Status, resp.Header)
		}
		br := bufio.NewReader(resp.Body)
		// The backend sends the second event only once the first has been
		// read here, so a proxy that buffers never gets past this line.
		if line := readLine(t, br); line != "data: 1" {
			t.Fatalf("first event %q", line)
		}
		readLine(t, br)
		close(sseNext)
		if line := readLine(t, br); line != "data: 2" {
			t.Fatalf("second event %q", line)
		}
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "\n" {
			t.Errorf("end of stream: %q, %v", rest, err)
		}
	})
	for _, path := range []string{"/orders/large", "/orders/large-chunked"} {
		run("5 MiB body "+path, 2, func(t *testing.T, c *svConn) {
			resp, body := c.do("GET", get(path, "HTTP/1.1"))
			if resp.StatusCode != 200 || sha256.Sum256([]byte(body)) != sha256.Sum256(svLarge()) {
				t.Errorf("got %s, %d bytes, want %d intact", resp.Status, len(body), len(svLarge()))
			}
			c.get("/orders/after")
		})
	}
	run("response head over 4 KiB", 2, func(t *testing.T, c *svConn) {
		resp, body := c.do("GET", get("/orders/bighead", "HTTP/1.1"))
		if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("X-Big") != strings.Repeat("h", 10<<10) {
			t.Errorf("got %s %q, X-Big of %d bytes", resp.Status, body, len(resp.Header.Get("X-Big")))
		}
		c.get("/orders/after")
	})
	run("103 Early Hints then 200", 2, func(t *testing.T, c *svConn) {
		c.send(get("/orders/early", "HTTP/1.1"))
		resp, body := c.mustRead("GET")
		for resp.StatusCode >= 100 && resp.StatusCode < 200 {
			resp, body = c.mustRead("GET")
		}
		if resp.StatusCode != 200 || body != "final" {
			t.Errorf("final answer %s %q", resp.Status, body)
		}
		c.get("/orders/after")
	})
	for _, code := range []int{204, 304} {
		run(fmt.Sprintf("%d has no body", code), 2, func(t *testing.T, c *svConn) {
			resp, body := c.do("GET", get(fmt.Sprintf("/orders/%d", code), "HTTP/1.1"))
			if resp.StatusCode != code || body != "" || resp.TransferEncoding != nil {
				t.Errorf("got %s TE %v %q", resp.Status, resp.TransferEncoding, body)
			}
			// A body, or a chunked terminator, would spoil the next answer.
			c.get("/orders/after")
		})
	}
	run("HEAD has headers and no body", 2, func(t *testing.T, c *svConn) {
		resp, body := c.do("HEAD", svReq("HEAD /orders/len HTTP/1.1", "Host: shop.local"))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "11" || body != "" {
			t.Errorf("got %s %v %q", resp.Status, resp.Header, body)
		}
		c.get("/orders/after")
	})
	run("replica hangs up mid-body (Content-Length)", 1, func(t *testing.T, c *svConn) {
		c.send(get("/raw/x", "HTTP/1.1"))
		resp, body, err := c.read("GET")
		if err == nil {
			t.Fatalf("got a complete answer %v %q, want a truncated one", resp.Status, body)
		}
		if resp == nil || resp.StatusCode != 200 || body != "0123456789" || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("got %v, %q, %v; want 200, the 10 bytes sent and an unexpected EOF", resp, body, err)
		}
	})
	run("replica hangs up mid-body (chunked)", 1, func(t *testing.T, c *svConn) {
		c.send(get("/orders/abort", "HTTP/1.1"))
		resp, body, err := c.read("GET")
		if err == nil {
			t.Fatalf("got a complete answer %v %q, want a truncated one", resp.Status, body)
		}
		if resp == nil || resp.StatusCode != 200 || body != "partial" {
			t.Errorf("got %v, %q, %v; want 200 and the part sent", resp, body, err)
		}
	})
}

func TestServerKeepAliveAndPipelining(t *testing.T) {
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s%s", r.Method, r.URL.Path, body)
	})
	p := svProxy(t, shopCell(), map[string][]*Upstream{"orders": {svUp("a", 1, srv.Listener.Addr().String())}})
	f := svStart(t, p, ServerOptions{})

	t.Run("100 sequential requests", func(t *testing.T) {
		fast0, hand0 := f.counts()
		c := svDial(t, f.addr)
		for i := range 100 {
			path := fmt.Sprintf("/orders/%d", i)
			if got := c.get(path); got != "GET "+path {
				t.Fatalf("request %d: %q", i, got)
			}
		}
		f.wantCounts(t, fast0, hand0, 100, 0)
		if n := srv.accepts(); n != 1 {
			t.Errorf("backend accepted %d connections, want 1", n)
		}
	})
	t.Run("two pipelined requests", func(t *testing.T) {
		fast0, hand0 := f.counts()
		c := svDial(t, f.addr)
		c.send(svReq("GET /orders/first HTTP/1.1", "Host: shop.local") + svReq("GET /orders/second HTTP/1.1", "Host: shop.local"))
		for _, want := range []string{"GET /orders/first", "GET /orders/second"} {
			if resp, body := c.mustRead("GET"); resp.StatusCode != 200 || body != want {
				t.Errorf("got %s %q, want %q", resp.Status, body, want)
			}
		}
		f.wantCounts(t, fast0, hand0, 2, 0)
	})
	t.Run("pipelined GET then POST with a body", func(t *testing.T) {
		fast0, hand0 := f.counts()
		c := svDial(t, f.addr)
		c.send(svReq("GET /orders/first HTTP/1.1", "Host: shop.local") +
			svReq("POST /orders/second HTTP/1.1", "Host: shop.local", "Content-Length: 4") + "body" +
			svReq("GET /orders/third HTTP/1.1", "Host: shop.local"))
		for _, want := range []string{"GET /orders/first", "POST /orders/secondbody", "GET /orders/third"} {
			if resp, body := c.mustRead("GET"); resp.StatusCode != 200 || body != want {
				t.Errorf("got %s %q, want %q", resp.Status, body, want)
			}
		}
		f.wantCounts(t, fast0, hand0, 1, 1)
	})
	t.Run("head sent a byte at a time", func(t *testing.T) {
		fast0, hand0 := f.counts()
		c := svDial(t, f.addr)
		for _, b := range []byte(svReq("GET /orders/slow HTTP/1.1", "Host: shop.local")) {
			c.send(string([]byte{b}))
		}
		if resp, body := c.mustRead("GET"); resp.StatusCode != 200 || body != "GET /orders/slow" {
			t.Errorf("got %s %q", resp.Status, body)
		}
		f.wantCounts(t, fast0, hand0, 1, 0)
	})
}

func TestServerFailures(t *testing.T) {
	slowHandler := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slow")
	}
	tests := []struct {
		name       string
		first      http.HandlerFunc // nil: a replica nothing listens on
		timeout    time.Duration
		method     string
		wantStatus int
		wantBody   string
		wantFirst  int64 // requests the first replica gets
	}{
		{name: "dead replica, GET", method: "GET", wantStatus: 200, wantBody: "live"},
		{name: "dead replica, POST", method: "POST", wantStatus: 200, wantBody: "live"},
		{name: "timeout, GET retried", first: slowHandler, timeout: 300 * time.Millisecond, method: "GET", wantStatus: 200, wantBody: "live", wantFirst: 1},
		{name: "timeout, POST not retried", first: slowHandler, timeout: 300 * time.Millisecond, method: "POST", wantStatus: 504, wantFirst: 1},
		{name: "503, GET retried", first: status(503), method: "GET", wantStatus: 200, wantBody: "live", wantFirst: 1},
		{name: "503, POST not retried", first: status(503), method: "POST", wantStatus: 503, wantFirst: 1},
		{name: "hang-up before the answer, GET retried", first: hangUp, method: "GET", wantStatus: 200, wantBody: "live", wantFirst: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var first *backend
			firstUp := svUp("first", 1, refusedAddr(t))
			if tt.first != nil {
				first = startBackend(t, "first", tt.first)
				firstUp = svUp("first", 1, first.up.Addr)
			}
			live := startBackend(t, "live", ok("live"))
			// Round robin starts at the first replica.
			ups := []*Upstream{firstUp, svUp("live", 2, live.up.Addr)}
			p := svProxy(t, svCell(tt.timeout, 1), map[string][]*Upstream{"orders": ups})
			f := svStart(t, p, ServerOptions{})
			c := svDial(t, f.addr)
			req := svReq(tt.method+" /orders/x HTTP/1.1", "Host: shop.local")
			if tt.method == "POST" {
				req = svReq(tt.method+" /orders/x HTTP/1.1", "Host: shop.local", "Content-Length: 0")
			}
			start := time.Now()
			resp, body := c.do(tt.method, req)
			if resp.StatusCode != tt.wantStatus || (tt.wantBody != "" && body != tt.wantBody) {
				t.Errorf("got %s %q, want %d %q", resp.Status, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == 504 && !strings.Contains(body, "no response within 300ms") {
				t.Errorf("504 body %q", body)
			}
			if d := time.Since(start); tt.timeout > 0 && d > 1500*time.Millisecond {
				t.Errorf("answer took %v with a %v timeout", d, tt.timeout)
			}
			if first != nil {
				if got := first.hits.Load(); got != tt.wantFirst {
					t.Errorf("first replica got %d requests, want %d", got, tt.wantFirst)
				}
			}
			wantLive := int64(0)
			if tt.wantBody == "live" {
				wantLive = 1
			}
			if got := live.hits.Load(); got != wantLive {
				t.Errorf("live replica got %d requests, want %d", got, wantLive)
			}
			// More GETs on the same connection all succeed.
			for range 3 {
				if got := c.get("/orders/more"); got != "live" && got != "slow" {
					t.Errorf("later GET: %q", got)
				}
			}
			f.wantCounts(t, 0, 0, 4, 0)
		})
	}
}

func TestServerShutdown(t *testing.T) {
	setup := func(t *testing.T, h http.HandlerFunc) *svFront {
		b := startBackend(t, "orders-1", h)
		p := svProxy(t, shopCell(), map[string][]*Upstream{"orders": {b.up}})
		return svStart(t, p, ServerOptions{})
	}
	shutdown := func(t *testing.T, f *svFront) time.Duration {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := f.s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		d := time.Since(start)
		if err := f.wait(); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
		if c, err := net.DialTimeout("tcp", f.addr, time.Second); err == nil {
			c.Close()
			t.Error("the listener still accepts after Shutdown")
		}
		return d
	}

	for _, tt := range []struct {
		name string
		req  string
		fast bool
	}{
		{"fast path", svReq("GET /orders/x HTTP/1.1", "Host: shop.local"), true},
		{"handed off", svReq("POST /orders/x HTTP/1.1", "Host: shop.local", "Content-Length: 2") + "hi", false},
	} {
		t.Run("idle connection, "+tt.name, func(t *testing.T) {
			f := setup(t, echoBody)
			c := svDial(t, f.addr)
			if resp, _ := c.do("GET", tt.req); resp.StatusCode != 200 {
				t.Fatalf("got %s", resp.Status)
			}
			if d := shutdown(t, f); d > time.Second {
				t.Errorf("Shutdown took %v with only an idle connection", d)
			}
			if err := c.waitClosed(); err != nil {
				t.Error(err)
			}
		})

		t.Run("request in flight, "+tt.name, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			var finished atomic.Bool
			f := setup(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				arrived <- struct{}{}
				time.Sleep(300 * time.Millisecond) // the request's work
				finished.Store(true)
				io.WriteString(w, "done")
			})
			fast0, hand0 := f.counts()
			c := svDial(t, f.addr)
			c.send(tt.req)
			select {
			case <-arrived:
			case <-time.After(5 * time.Second):
				t.Fatal("the request did not reach the backend")
			}
			shutdown(t, f)
			if !finished.Load() {
				t.Error("Shutdown returned before the request in flight finished")
			}
			resp, body, err := c.read("GET")
			if err != nil || resp.StatusCode != 200 || body != "done" {
				t.Fatalf("client got %v %q, %v; want the full answer", resp, body, err)
			}
			if !resp.Close {
				t.Error("the answer during Shutdown does not say the connection closes")
			}
			if err := c.waitClosed(); err != nil {
				t.Error(err)
			}
			if tt.fast {
				f.wantCounts(t, fast0, hand0, 1, 0)
			} else {
				f.wantCounts(t, fast0, hand0, 0, 1)
			}
		})
	}
}

func TestServerTimeouts(t *testing.T) {
	b := startBackend(t, "orders-1", ok("ok"))
	p := svProxy(t, shopCell(), map[string][]*Upstream{"orders": {b.up}})
	f := svStart(t, p, ServerOptions{IdleTimeout: 100 * time.Millisecond, ReadHeaderTimeout: 100 * time.Millisecond})

	t.Run("idle connection closed after IdleTimeout", func(t *testing.T) {
		c := svDial(t, f.addr)
		c.get("/orders/x")
		if err := c.waitClosed(); err != nil {
			t.Error(err)
		}
	})
	t.Run("partial head closed after ReadHeaderTimeout", func(t *testing.T) {
		c := svDial(t, f.addr)
		c.send("GET /orders/x HTTP/1.1\r\nHost: sh")
		_ = c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.ReadAll(c.br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("connection not closed: %v", err)
		}
	})
}

func TestServerStalePooledConnection(t *testing.T) {
	t.Run("replica closes after each answer", func(t *testing.T) {
		raw := startRaw(t, oneShot)
		p := svProxy(t, shopCell(), map[string][]*Upstream{"orders": {svUp("a", 1, raw.addr())}})
		f := svStart(t, p, ServerOptions{})
		c := svDial(t, f.addr)
		for i, m := range []string{"GET", "GET", "POST"} {
			// The replica has closed the connection it answered on, as
			// one whose idle timeout passed long ago: the pool must see
			// it. (Racing its close is the race every HTTP/1.1 client
			// has, and a POST that meets it is not sent twice.)
			raw.waitClosed(t, int64(i))
			req := svReq(m+" /orders/x HTTP/1.1", "Host: shop.local")
			if m == "POST" {
				req = svReq(m+" /orders/x HTTP/1.1", "Host: shop.local", "Content-Length: 0")
			}
			resp, body := c.do(m, req)
			if want := fmt.Sprintf("conn %d: %s \"\"", i+1, m); resp.StatusCode != 200 || body != want {
				t.Errorf("request %d: got %s %q, want 200 %q", i+1, resp.Status, body, want)
			}
		}
		if n := raw.accepts.Load(); n != 3 {
			t.Errorf("replica accepted %d connections, want 3", n)
		}
		f.wantCounts(t, 0, 0, 3, 0)
	})
	t.Run("replica disables keep-alives", func(t *testing.T) {
		b := startBackend(t, "orders-1", ok("ok"))
		p := svProxy(t, shopCell(), map[string][]*Upstream{"orders": {b.up}})
		f := svStart(t, p, ServerOptions{})
		c := svDial(t, f.addr)
		c.get("/orders/1")
		b.srv.Config.SetKeepAlivesEnabled(false)
		for i := range 3 {
			if got := c.get(fmt.Sprintf("/orders/%d", i+2)); got != "ok" {
				t.Errorf("request %d: %q", i+2, got)
			}
		}
		f.wantCounts(t, 0, 0, 4, 0)
	})
}

// The route's timeout bounds a try up to the answer's head; the body that
// follows may take as long as it takes (see Proxy.try). The fast path sets
// a read deadline on the replica's connection for the head: it must not
// cut the body short, nor stay on the connection once it is pooled.
func TestServerRouteTimeoutCoversHeadOnly(t *testing.T) {
	const timeout = 250 * time.Millisecond
	t.Run("slow body", func(t *testing.T) {
		b := startBackend(t, "orders-1", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "part1,")
			w.(http.Flusher).Flush()
			select {
			case <-time.After(3 * timeout): // the body outlasts the timeout
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "part2")
		})
		hs := start(t, svCell(timeout, 0), Options{}, map[string][]*Upstream{"orders": {b.up}})
		f := svStart(t, hs.p, ServerOptions{})
		for _, front := range []struct{ name, addr string }{{"net/http", hs.front.Listener.Addr().String()}, {"Server", f.addr}} {
			c := svDial(t, front.addr)
			c.send(svReq("GET /orders/stream HTTP/1.1", "Host: shop.local"))
			resp, body, err := c.read("GET")
			if err != nil || resp.StatusCode != 200 || body != "part1,part2" {
				t.Errorf("%s: got %v %q, %v; want 200 \"part1,part2\"", front.name, resp, body, err)
			}
			rec := hs.record(t)
			if rec.Error != "" {
				t.Errorf("%s: record error %q", front.name, rec.Error)
			}
		}
		f.wantCounts(t, 0, 0, 1, 0)
	})
	// A fast-path request leaves its replica connection in the pool; the
	// next request, once the route's timeout has passed, takes it.
	for _, next := range []struct {
		name, method, req, want string
		viaNetHTTP              bool
	}{
		{"pooled connection, then GET through http.Server", "GET", svReq("GET /orders/b HTTP/1.1", "Host: shop.local"), "GET /orders/b ", true},
		{"pooled connection, then POST with a body through Server", "POST", svReq("POST /orders/b HTTP/1.1", "Host: shop.local", "Content-Length: 2") + "hi", "POST /orders/b hi", false},
		{"pooled connection, then GET through Server", "GET", svReq("GET /orders/b HTTP/1.1", "Host: shop.local"), "GET /orders/b ", false},
	} {
		t.Run(next.name, func(t *testing.T) {
			t.Parallel()
			b := startBackend(t, "orders-1", svEcho)
			hs := start(t, svCell(timeout, 0), Options{}, map[string][]*Upstream{"orders": {b.up}})
			f := svStart(t, hs.p, ServerOptions{})
			svDial(t, f.addr).get("/orders/a")
			hs.record(t)
			time.Sleep(2 * timeout)
			addr := f.addr
			if next.viaNetHTTP {
				addr = hs.front.Listener.Addr().String()
			}
			resp, body := svDial(t, addr).do(next.method, next.req)
			rec := hs.record(t)
			if resp.StatusCode != 200 || body != next.want {
				t.Errorf("got %s %q (record error %q), want 200 %q", resp.Status, body, rec.Error, next.want)
			}
			if got := b.hits.Load(); got != 2 {
				t.Errorf("backend got %d requests, want 2", got)
			}
			if !b.up.EjectedUntil().IsZero() {
				t.Errorf("replica ejected until %v", b.up.EjectedUntil())
			}
		})
	}
}

// Replicas' answers that net/http's transport takes must reach the client
// through the Server as they do through an http.Server: the fast path may
// parse a head its own way, but not refuse one the net/http path relays.
func TestServerRelaysUnusualResponseHeads(t *testing.T) {
	many := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	for i := range maxFastHeaders + 6 {
		many += fmt.Sprintf("X-F%d: %d\r\n", i, i)
	}
	many += "\r\nok"
	tests := []struct {
		name   string
		answer string
		close  bool // the replica closes the connection after answering
	}{
		{name: "more than maxFastHeaders fields", answer: many},
		{name: "two Connection fields", answer: "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\nok"},
		{name: "Connection naming a field", answer: "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\nok"},
		{name: "status line without reason", answer: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"},
		{name: "unknown status with a reason", answer: "HTTP/1.1 299 Odd\r\nContent-Length: 2\r\n\r\nok"},
		{name: "empty field value", answer: "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 2\r\n\r\nok"},
		{name: "repeated identical Content-Length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"},
		{name: "chunked with Content-Length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{name: "chunk extension", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;name=value\r\nok\r\n0\r\n\r\n"},
		{name: "HTTP/1.0 close-delimited", answer: "HTTP/1.0 200 OK\r\nX-Old: 1\r\n\r\nclose-delimited body", close: true},
		{name: "HTTP/1.1 close-delimited", answer: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nclose-delimited body", close: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := startRaw(t, func(n int64, c net.Conn) {
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, tt.answer); err != nil || tt.close {
						return
					}
				}
			})
			up := &Upstream{ID: "raw-1", Service: "raw", Replica: 1, Addr: raw.addr()}
			hs := start(t, svCell(0, 0), Options{}, map[string][]*Upstream{"raw": {up}})
			f := svStart(t, hs.p, ServerOptions{})
			type answer struct {
				Status           int
				Header           http.Header
				ContentLength    int64
				TransferEncoding []string
				Body             string
			}
			var (
				got     [2]answer
				reasons [2]string
			)
			for i, addr := range []string{hs.front.Listener.Addr().String(), f.addr} {
				c := svDial(t, addr)
				c.send(svReq("GET /raw/x HTTP/1.1", "Host: shop.local"))
				resp, body, err := c.read("GET")
				if err != nil {
					t.Fatalf("front %d: %v", i, err)
				}
				h := resp.Header.Clone()
				delete(h, "Date")
				delete(h, "X-Request-Id")
				got[i] = answer{resp.StatusCode, h, resp.ContentLength, resp.TransferEncoding, body}
				reasons[i] = resp.Status
				hs.record(t)
			}
			if got[0].Status != 200 && got[0].Status != 299 {
				t.Fatalf("net/http path answered %s %q", reasons[0], got[0].Body)
			}
			if reasons[0] != reasons[1] {
				t.Logf("status lines differ: net/http %q, Server %q", reasons[0], reasons[1])
			}
			// The replica sent no Content-Type: net/http sniffs one, the
			// Server relays the answer as it is.
			if got[1].Header.Get("Content-Type") == "" && got[0].Header.Get("Content-Type") != "" {
				t.Logf("net/http added Content-Type %q", got[0].Header.Get("Content-Type"))
				delete(got[0].Header, "Content-Type")
			}
			if diff := cmp.Diff(got[0], got[1]); diff != "" {
				t.Errorf("answer mismatch (-net/http +Server):\n%s", diff)
			}
			if !up.EjectedUntil().IsZero() {
				t.Errorf("replica ejected until %v", up.EjectedUntil())
			}
			f.wantCounts(t, 0, 0, 1, 0)
		})
	}
}

func TestServerHoldsForScaleFromZero(t *testing.T) {
	b := startBackend(t, "orders-1", ok("woke"))
	var woken atomic.Int32
	p, err := New(shopCell(), Options{Wake: func(svc string) bool { woken.Add(1); return svc == "orders" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.CloseIdleConnections)
	f := svStart(t, p, ServerOptions{})
	answer := svHeldGET(t, p, f.addr)
	p.SetUpstreams("orders", []*Upstream{b.up})
	answer("woke")
	if woken.Load() != 1 {
		t.Errorf("Wake called %d times, want 1", woken.Load())
	}
	f.wantCounts(t, 0, 0, 0, 1)
}

func TestServerCustomTransportHandsOffAll(t *testing.T) {
	b := startBackend(t, "orders-1", ok("ok"))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	p, err := New(shopCell(), Options{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	p.SetUpstreams("orders", []*Upstream{b.up})
	f := svStart(t, p, ServerOptions{})
	c := svDial(t, f.addr)
	for range 3 {
		if got := c.get("/orders/x"); got != "ok" {
			t.Errorf("got %q", got)
		}
	}
	f.wantCounts(t, 0, 0, 0, 1)
}

// svBenchBackend is a minimal replica: it answers every request head with
// a fixed 5-byte answer, without allocating.
func svBenchBackend(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
				br := bufio.NewReaderSize(c, 8<<10)
				for {
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			})
		}
	})
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// svBenchGets sends GETs over one keep-alive connection to addr, reading
// each answer by hand so that the client allocates nothing.
func svBenchGets(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /orders/42 HTTP/1.1\r\nHost: shop.local\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 16<<10)
	readAnswer := func() error {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
			return fmt.Errorf("status line %q", line)
		}
		n := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return err
			}
			if len(line) <= 2 {
				break
			}
			const cl = "content-length:"
			if len(line) > len(cl) && eqFold(line[:len(cl)], cl) {
				n = 0
				for _, ch := range bytes.TrimSpace(line[len(cl):]) {
					n = n*10 + int(ch-'0')
				}
			}
		}
		if n < 0 {
			return errors.New("answer without Content-Length")
		}
		_, err = br.Discard(n)
		return err
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := readAnswer(); err != nil {
			b.Fatal(err)
		}
	}
}

func svBenchProxy(b *testing.B) *Proxy {
	b.Helper()
	addr := svBenchBackend(b)
	return svProxy(b, shopCell(), map[string][]*Upstream{"orders": {svUp("a", 1, addr)}})
}

// BenchmarkServerFastPath measures a plain GET through Server, client and
// replica included; both are written not to allocate, so allocs/op is the
// gateway's. Compare with BenchmarkServerNetHTTP.
func BenchmarkServerFastPath(b *testing.B) {
	p := svBenchProxy(b)
	f := svStart(b, p, ServerOptions{})
	svBenchGets(b, f.addr)
	if f.s.HandedOff() != 0 {
		b.Errorf("%d connections handed off", f.s.HandedOff())
	}
}

// BenchmarkServerNetHTTP is BenchmarkServerFastPath through an http.Server
// with the Proxy as its handler.
func BenchmarkServerNetHTTP(b *testing.B) {
	p := svBenchProxy(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: p}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	svBenchGets(b, ln.Addr().String())
}

// TestServerClientLeavesStream checks that a client closing its connection
// in the middle of a quiet stream ends the replica's request, as net/http's
// background read does, rather than holding the replica until it writes.
func TestServerClientLeavesStream(t *testing.T) {
	for _, tc := range []struct{ name, proto string }{
		{"chunked to HTTP/1.1", "HTTP/1.1"},
		{"close-delimited to HTTP/1.0", "HTTP/1.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ended := make(chan struct{})
			b := startBackend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
				defer close(ended)
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: 1\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			})
			p := svProxy(t, shopCell(), map[string][]*Upstream{"orders": {b.up}})
			f := svStart(t, p, ServerOptions{})
			c := svDial(t, f.addr)
			c.send("GET /orders/events " + tc.proto + "\r\nHost: shop\r\n\r\n")
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if line := readLine(t, bufio.NewReader(resp.Body)); line != "data: 1" {
				t.Fatalf("first event %q", line)
			}
			c.c.Close()
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatal("the replica's request did not end after the client left")
			}
			deadline := time.Now().Add(5 * time.Second)
			for b.up.Inflight() != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("replica still has %d requests in flight", b.up.Inflight())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if fast, _ := f.counts(); fast != 1 {
				t.Errorf("fast requests %d, want 1", fast)
			}
		})
	}
}

// On the fast path too, a GET whose only replica refuses the connection
// waits for the replacement instead of failing.
func TestServerHoldsAfterARefusedConnection(t *testing.T) {
	b := startBackend(t, "orders-2", ok("replacement"))
	dead := httptest.NewServer(http.NotFoundHandler())
	deadUp := &Upstream{ID: "dead", Service: "orders", Replica: 1, Addr: strings.TrimPrefix(dead.URL, "http://")}
	dead.Close()
	p, err := New(shopCell(), Options{Wake: func(svc string) bool { return svc == "orders" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.CloseIdleConnections)
	p.SetUpstreams("orders", []*Upstream{deadUp})
	f := svStart(t, p, ServerOptions{})
	answer := svHeldGET(t, p, f.addr)
	p.SetUpstreams("orders", []*Upstream{deadUp, b.up})
	answer("replacement")
	f.wantCounts(t, 0, 0, 1, 0)
}

// svHeldGET sends GET /orders/x to the server at addr and waits until the
// proxy holds it, failing if it is answered first. The function it returns
// checks that the held request is then answered 200 with body want.
func svHeldGET(t *testing.T, p *Proxy, addr string) func(want string) {
	t.Helper()
	type answer struct {
		resp *http.Response
		body string
		err  error
	}
	got := make(chan answer, 1)
	c := svDial(t, addr)
	c.send(svReq("GET /orders/x HTTP/1.1", "Host: shop.local"))
	go func() {
		resp, body, err := c.read("GET")
		got <- answer{resp, body, err}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for p.Held() == 0 {
		select {
		case a := <-got:
			t.Fatalf("the request ended without waiting: %v %q %v", a.resp, a.body, a.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the request was not held")
		}
		time.Sleep(time.Millisecond)
	}
	return func(want string) {
		t.Helper()
		select {
		case a := <-got:
			if a.err != nil || a.resp.StatusCode != 200 || a.body != want {
				t.Fatalf("held request: %v %q %v", a.resp, a.body, a.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the held request was not answered")
		}
	}
}
