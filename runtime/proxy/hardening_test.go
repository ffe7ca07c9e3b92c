package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
)

// This file holds the data plane's hardening tests: raw client bytes in,
// and what every replica received and every client got back, checked
// exactly, on both request paths of a Server.

// hdPaths are the two ways a Server serves a request: its own fast path
// where the request allows it (net/http for the rest), and net/http for
// every request.
var hdPaths = []struct {
	name string
	opts ServerOptions
}{
	{"fast", ServerOptions{}},
	{"nethttp", ServerOptions{DisableFastPath: true}},
}

// hdCell routes every path to service orders, unstripped.
func hdCell(retries int) *cellspec.Cell {
	return shopCell(cellspec.Route{Path: "/", Service: "orders", Timeout: cellspec.Duration(5 * time.Second), Retries: retries})
}

// hdLog is what a replica received, in order.
type hdLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *hdLog) add(s string) {
	l.mu.Lock()
	l.seen = append(l.seen, s)
	l.mu.Unlock()
}

func (l *hdLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

// TestSurplusAnswerNeverReachesAnotherClient covers a replica that writes
// more than the one answer asked for. Whatever it wrote past that answer
// must not become the answer of a later request on the same pooled
// connection.
func TestSurplusAnswerNeverReachesAnotherClient(t *testing.T) {
	const (
		fake = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
		// A request in the body of another, which a replica that does not
		// read bodies takes as the next request.
		inner = "GET /slow/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	)
	tests := []struct {
		name  string
		first string // the raw request that provokes the surplus
		// method of the first request, to read its answer
		method    string
		wantFirst string
		wantSeen  []string
	}{
		{
			name:      "replica ignores the request body",
			first:     svReq("POST /x HTTP/1.1", "Host: shop.local", fmt.Sprintf("Content-Length: %d", len(inner))) + inner,
			method:    "POST",
			wantFirst: "x",
			wantSeen:  []string{"POST /x", "GET /slow/smuggled", "GET /a", "GET /b", "GET /c"},
		},
		{
			name:      "body after a HEAD answer",
			first:     svReq("HEAD /head HTTP/1.1", "Host: shop.local"),
			method:    "HEAD",
			wantFirst: "",
			wantSeen:  []string{"HEAD /head", "GET /a", "GET /b", "GET /c"},
		},
		{
			name:      "body longer than its Content-Length",
			first:     svReq("GET /long HTTP/1.1", "Host: shop.local"),
			method:    "GET",
			wantFirst: "ok",
			wantSeen:  []string{"GET /long", "GET /a", "GET /b", "GET /c"},
		},
	}
	for _, path := range hdPaths {
		for _, tt := range tests {
			t.Run(path.name+"/"+tt.name, func(t *testing.T) {
				var log hdLog
				surplus := make(chan struct{}, 1)
				srv := startRaw(t, func(_ int64, c net.Conn) {
					br := bufio.NewReader(c)
					for {
						req, err := http.ReadRequest(br)
						if err != nil {
							return
						}
						log.add(req.Method + " " + req.URL.Path)
						switch req.URL.Path {
						case "/x":
							// The body stays unread: its bytes are read as
							// the next request.
							fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
						case "/slow/smuggled":
							time.Sleep(60 * time.Millisecond)
							fmt.Fprint(c, fake)
							surplus <- struct{}{}
						case "/head":
							fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
							time.Sleep(30 * time.Millisecond)
							fmt.Fprint(c, fake)
							surplus <- struct{}{}
						case "/long":
							fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
							time.Sleep(30 * time.Millisecond)
							fmt.Fprint(c, fake)
							surplus <- struct{}{}
						default:
							io.Copy(io.Discard, req.Body)
							name := strings.TrimPrefix(req.URL.Path, "/")
							fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(name), name)
						}
					}
				})
				p := svProxy(t, hdCell(2), map[string][]*Upstream{"orders": {svUp("o1", 1, srv.addr())}})
				f := svStart(t, p, path.opts)

				c := svDial(t, f.addr)
				resp, body := c.do(tt.method, tt.first)
				if resp.StatusCode != http.StatusOK || body != tt.wantFirst {
					t.Fatalf("first request: %s %q, want 200 %q", resp.Status, body, tt.wantFirst)
				}
				select {
				case <-surplus:
				case <-time.After(5 * time.Second):
					t.Fatal("the replica never wrote its surplus answer")
				}
				time.Sleep(20 * time.Millisecond) // for the surplus to reach the gateway
				var got []string
				for _, name := range []string{"a", "b", "c"} {
					got = append(got, svDial(t, f.addr).get("/"+name))
				}
				if diff := cmp.Diff([]string{"a", "b", "c"}, got); diff != "" {
					t.Errorf("answers of later clients (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantSeen, log.get()); diff != "" {
					t.Errorf("requests the replica received (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// crashReplica is a replica whose handler crashes on /boom (net/http
// recovers the panic and closes the connection without an answer), and
// that counts every run of it.
type crashReplica struct {
	*backend
	booms atomic.Int64
}

func startCrashReplica(t *testing.T, name string) *crashReplica {
	r := &crashReplica{}
	r.backend = startBackend(t, name, func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		if strings.HasPrefix(req.URL.Path, "/boom") {
			r.booms.Add(1)
			panic(http.ErrAbortHandler)
		}
		fmt.Fprint(w, name)
	})
	r.srv.Config.ErrorLog = nil
	r.up.Service = "orders"
	return r
}

// TestCrashingRequestRunsOnceAndHarmsNoOne sends one request that crashes
// its replica's handler. A non-idempotent one runs at most once, whether
// the connection it went on was pooled or not; an idempotent one at most
// once per replica try. The client gets 502, and no replica is ejected for
// it: other clients keep getting answers from every replica.
func TestCrashingRequestRunsOnceAndHarmsNoOne(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		method   string
		maxBooms int64
	}{
		{"POST without a body", svReq("POST /boom HTTP/1.1", "Host: shop.local", "Content-Length: 0"), "POST", 1},
		{"POST with a body", svReq("POST /boom HTTP/1.1", "Host: shop.local", "Content-Length: 5") + "order", "POST", 1},
		{"PATCH with a body", svReq("PATCH /boom HTTP/1.1", "Host: shop.local", "Content-Length: 5") + "order", "PATCH", 1},
		// Retried on each of the 3 replicas (retries 2), and re-sent on
		// a fresh connection to a replica when the pooled one broke.
		{"GET", svReq("GET /boom HTTP/1.1", "Host: shop.local"), "GET", 6},
	}
	for _, path := range hdPaths {
		for _, tt := range tests {
			t.Run(path.name+"/"+tt.name, func(t *testing.T) {
				reps := []*crashReplica{startCrashReplica(t, "o1"), startCrashReplica(t, "o2"), startCrashReplica(t, "o3")}
				var ups []*Upstream
				for _, r := range reps {
					ups = append(ups, r.up)
				}
				p := svProxy(t, hdCell(2), map[string][]*Upstream{"orders": ups})
				f := svStart(t, p, path.opts)
				// Warm a pooled connection to every replica.
				c := svDial(t, f.addr)
				for range reps {
					c.get("/ok")
				}

				resp, body := svDial(t, f.addr).do(tt.method, tt.raw)
				if resp.StatusCode != http.StatusBadGateway {
					t.Errorf("crashing request: %s %q, want 502", resp.Status, body)
				}
				var booms int64
				for _, r := range reps {
					booms += r.booms.Load()
				}
				if booms < 1 || booms > tt.maxBooms {
					t.Errorf("the crashing request ran %d times, want 1 to %d", booms, tt.maxBooms)
				}

				// Six other clients, at once.
				var wg sync.WaitGroup
				answers := make([]string, 6)
				for i := range answers {
					wg.Go(func() {
						resp, _, err := func() (*http.Response, string, error) {
							c, err := net.Dial("tcp", f.addr)
							if err != nil {
								return nil, "", err
							}
							defer c.Close()
							_ = c.SetDeadline(time.Now().Add(10 * time.Second))
							fmt.Fprint(c, svReq("GET /ok HTTP/1.1", "Host: shop.local"))
							resp, err := http.ReadResponse(bufio.NewReader(c), nil)
							if err != nil {
								return nil, "", err
							}
							b, err := io.ReadAll(resp.Body)
							return resp, string(b), err
						}()
						switch {
						case err != nil:
							answers[i] = err.Error()
						case resp.StatusCode != http.StatusOK:
							answers[i] = resp.Status
						default:
							answers[i] = "ok"
						}
					})
				}
				wg.Wait()
				if diff := cmp.Diff([]string{"ok", "ok", "ok", "ok", "ok", "ok"}, answers); diff != "" {
					t.Errorf("other clients (-want +got):\n%s", diff)
				}
				for _, u := range p.Upstreams("orders") {
					if !u.EjectedUntil().IsZero() {
						t.Errorf("replica %s ejected until %s", u, u.EjectedUntil())
					}
				}
			})
		}
	}
}

// TestConnectRefused checks that CONNECT never opens a tunnel through the
// data port, and that a protocol switch the replica declines leaves an
// ordinary HTTP exchange.
func TestConnectRefused(t *testing.T) {
	for _, path := range hdPaths {
		t.Run(path.name, func(t *testing.T) {
			var log hdLog
			b := startBackend(t, "o1", func(w http.ResponseWriter, r *http.Request) {
				log.add(r.Method + " " + r.URL.Path)
				io.Copy(io.Discard, r.Body)
				fmt.Fprint(w, "plain")
			})
			p := svProxy(t, hdCell(2), map[string][]*Upstream{"orders": {b.up}})
			f := svStart(t, p, path.opts)

			for _, raw := range []string{
				svReq("CONNECT shop.local:443 HTTP/1.1", "Host: shop.local:443"),
				svReq("CONNECT /orders HTTP/1.1", "Host: shop.local"),
			} {
				c := svDial(t, f.addr)
				resp, body := c.do("CONNECT", raw)
				if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
					t.Errorf("%q: %s (Allow %q) %q, want 405 with Allow", strings.SplitN(raw, "\r\n", 2)[0], resp.Status, resp.Header.Get("Allow"), body)
				}
			}
			// An upgrade the replica declines: a plain answer, and the
			// connection carries the next request as HTTP.
			c := svDial(t, f.addr)
			resp, body := c.do("GET", svReq("GET /ws HTTP/1.1", "Host: shop.local", "Connection: Upgrade", "Upgrade: websocket"))
			if resp.StatusCode != http.StatusOK || body != "plain" {
				t.Errorf("declined upgrade: %s %q, want 200 %q", resp.Status, body, "plain")
			}
			if got := c.get("/after"); got != "plain" {
				t.Errorf("request after a declined upgrade: %q", got)
			}
			if diff := cmp.Diff([]string{"GET /ws", "GET /after"}, log.get()); diff != "" {
				t.Errorf("requests the replica received (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAmbiguousFramingClosesConnection covers RFC 9112 section 6.1: after
// answering a request that had Transfer-Encoding together with
// Content-Length, or Transfer-Encoding on HTTP/1.0, the connection closes,
// however many requests came before it on the connection.
func TestAmbiguousFramingClosesConnection(t *testing.T) {
	chunkedOrder := "5\r\norder\r\n0\r\n\r\n"
	tests := []struct {
		name   string
		before []string // requests answered first on the same connection
		raw    string
	}{
		{"TE and CL", nil, svReq("POST /a HTTP/1.1", "Host: shop.local", "Transfer-Encoding: chunked", "Content-Length: 22") + chunkedOrder},
		{"CL and TE", nil, svReq("POST /a HTTP/1.1", "Host: shop.local", "Content-Length: 3", "Transfer-Encoding: chunked") + chunkedOrder},
		{"TE on HTTP/1.0", nil, svReq("POST /a HTTP/1.0", "Host: shop.local", "Connection: keep-alive", "Transfer-Encoding: chunked") + chunkedOrder},
		{"TE and CL on HTTP/1.0", nil, svReq("POST /a HTTP/1.0", "Host: shop.local", "Connection: keep-alive", "Transfer-Encoding: chunked", fmt.Sprintf("Content-Length: %d", len(chunkedOrder))) + chunkedOrder},
		{"TE and CL after other requests", []string{
			svReq("GET /b HTTP/1.1", "Host: shop.local"),
			svReq("POST /c HTTP/1.1", "Host: shop.local", "Content-Length: 5") + "order",
			svReq("POST /d HTTP/1.1", "Host: shop.local", "Transfer-Encoding: chunked") + chunkedOrder,
		}, svReq("POST /a HTTP/1.1", "Host: shop.local", "Transfer-Encoding: chunked", "Content-Length: 22") + chunkedOrder},
	}
	for _, path := range hdPaths {
		for _, tt := range tests {
			t.Run(path.name+"/"+tt.name, func(t *testing.T) {
				b := startBackend(t, "o1", echoBody)
				p := svProxy(t, hdCell(2), map[string][]*Upstream{"orders": {b.up}})
				f := svStart(t, p, path.opts)
				c := svDial(t, f.addr)
				for _, raw := range tt.before {
					resp, body := c.do(strings.SplitN(raw, " ", 2)[0], raw)
					if resp.StatusCode != http.StatusOK || resp.Close {
						t.Fatalf("request before: %s close=%v %q", resp.Status, resp.Close, body)
					}
				}
				resp, body := c.do("POST", tt.raw)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("answer: %s %q, want 200", resp.Status, body)
				}
				if !resp.Close {
					t.Errorf("answer without Connection: close")
				}
				if err := c.waitClosed(); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// TestAmbiguousFramingPipelined sends requests in one write: the
// connection closes after the answer to the ambiguous one, not before.
func TestAmbiguousFramingPipelined(t *testing.T) {
	raw := svReq("GET /b HTTP/1.1", "Host: shop.local") +
		svReq("POST /c HTTP/1.1", "Host: shop.local", "Content-Length: 5") + "order" +
		svReq("POST /a HTTP/1.1", "Host: shop.local", "Transfer-Encoding: chunked", "Content-Length: 3") + "5\r\norder\r\n0\r\n\r\n" +
		svReq("GET /never HTTP/1.1", "Host: shop.local")
	for _, path := range hdPaths {
		t.Run(path.name, func(t *testing.T) {
			var log hdLog
			b := startBackend(t, "o1", func(w http.ResponseWriter, r *http.Request) {
				log.add(r.Method + " " + r.URL.Path)
				echoBody(w, r)
			})
			p := svProxy(t, hdCell(2), map[string][]*Upstream{"orders": {b.up}})
			f := svStart(t, p, path.opts)
			c := svDial(t, f.addr)
			c.send(raw)
			var closes []bool
			for _, m := range []string{"GET", "POST", "POST"} {
				resp, body := c.mustRead(m)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %s %q", m, resp.Status, body)
				}
				closes = append(closes, resp.Close)
			}
			if diff := cmp.Diff([]bool{false, false, true}, closes); diff != "" {
				t.Errorf("Connection: close on the answers (-want +got):\n%s", diff)
			}
			if err := c.waitClosed(); err != nil {
				t.Error(err)
			}
			if diff := cmp.Diff([]string{"GET /b", "POST /c", "POST /a"}, log.get()); diff != "" {
				t.Errorf("requests the replica received (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEmptyRoutesMeansNoRoutes: `routes: []` is no routes, not the
// default ones.
func TestEmptyRoutesMeansNoRoutes(t *testing.T) {
	b := startBackend(t, "o1", ok("o1"))
	cell := &cellspec.Cell{Name: "shop", Gateway: cellspec.Gateway{Port: 8081, Routes: []cellspec.Route{}},
		Services: map[string]*cellspec.Service{"orders": {Name: "orders", Port: 8080}}}
	p, err := New(cell, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.CloseIdleConnections)
	p.SetUpstreams("orders", []*Upstream{b.up})
	for _, path := range hdPaths {
		t.Run(path.name, func(t *testing.T) {
			f := svStart(t, p, path.opts)
			resp, body := svDial(t, f.addr).do("GET", svReq("GET /orders/1 HTTP/1.1", "Host: shop.local"))
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET /orders/1 with no routes: %s %q, want 404", resp.Status, body)
			}
		})
	}
	if got := b.hits.Load(); got != 0 {
		t.Errorf("the replica received %d requests, want 0", got)
	}
}

// TestHeaderTimeouts checks that a connection's first request is bounded
// by the header timeout from the accept, as net/http bounds it, and that a
// head the fast path gives up to net/http (one longer than its buffer)
// keeps only the time left rather than starting a new timeout.
func TestHeaderTimeouts(t *testing.T) {
	const rht = 1500 * time.Millisecond
	longField := "X-Long: " + strings.Repeat("a", 9<<10) + "\r\n"
	tests := []struct {
		name string
		send func(c net.Conn)
	}{
		{"a new connection that sends nothing", func(net.Conn) {}},
		{"a head that trickles in and outgrows the buffer", func(c net.Conn) {
			fmt.Fprint(c, "GET /orders HTTP/1.1\r\nHost: shop.local\r\n")
			time.Sleep(1200 * time.Millisecond)
			fmt.Fprint(c, longField)
		}},
	}
	for _, path := range hdPaths {
		for _, tt := range tests {
			t.Run(path.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				b := startBackend(t, "o1", ok("o1"))
				p := svProxy(t, hdCell(2), map[string][]*Upstream{"orders": {b.up}})
				opts := path.opts
				opts.ReadHeaderTimeout, opts.IdleTimeout = rht, time.Minute
				f := svStart(t, p, opts)
				c, err := net.Dial("tcp", f.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				start := time.Now()
				tt.send(c)
				_ = c.SetReadDeadline(start.Add(10 * time.Second))
				got, _ := io.ReadAll(c)
				took := time.Since(start)
				// The server closes without an answer (the fast path) or
				// after a 408 or 400 (net/http); either way within the
				// header timeout, not a new one nor the idle timeout.
				if took < rht-100*time.Millisecond || took > rht+600*time.Millisecond {
					t.Errorf("connection closed after %s (answer %.40q), want about %s", took.Round(10*time.Millisecond), got, rht)
				}
				if b.hits.Load() != 0 {
					t.Errorf("the replica received %d requests", b.hits.Load())
				}
			})
		}
	}
}
