package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/orchestro/orchestro/cellspec"
)

func BenchmarkRouterMatch(b *testing.B) {
	var routes []cellspec.Route
	for _, svc := range []string{"orders", "users", "payments", "catalog", "search", "cart", "auth", "admin"} {
		routes = append(routes, cellspec.Route{Path: "/" + svc, Service: svc, StripPrefix: true})
	}
	routes = append(routes, cellspec.Route{Path: "/", Service: "web"})
	rt := NewRouter(routes)
	for _, path := range []string{"/orders/42/items", "/admin", "/static/app.js"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r, _ := rt.Match(path); r == nil {
					b.Fatal("no match")
				}
			}
		})
	}
}

func BenchmarkSelect(b *testing.B) {
	clock := newFakeClock()
	pool := fabricate(clock,
		upstreamState{id: "a"}, upstreamState{id: "b", ejected: true}, upstreamState{id: "c"},
		upstreamState{id: "d", inflight: 3}, upstreamState{id: "e"}, upstreamState{id: "f", unhealthy: true},
	)
	selectors := map[string]Selector{
		"round_robin":   &RoundRobin{},
		"least_request": &LeastRequest{},
	}
	for name, s := range selectors {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]*Upstream, 0, 8)
			for b.Loop() {
				cands, _ := appendCandidates(buf, pool, nil, clock.Now)
				if s.Select(cands, nil) == nil {
					b.Fatal("nothing selected")
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]*Upstream, 0, 8)
				for pb.Next() {
					cands, _ := appendCandidates(buf, pool, nil, clock.Now)
					s.Select(cands, nil)
				}
			})
		})
	}
}

// benchProxy runs a proxy in front of one small-response backend.
func benchProxy(b *testing.B) (*Proxy, *httptest.Server) {
	b.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	}))
	b.Cleanup(backend.Close)
	p, err := New(shopCell(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.CloseIdleConnections)
	p.SetUpstreams("orders", []*Upstream{{ID: "1", Addr: backend.Listener.Addr().String()}})
	return p, backend
}

// discardWriter is a ResponseWriter that costs nothing, so the benchmark
// measures the proxy and its upstream round trip only.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP calls the handler directly: proxy work plus the
// upstream round trip over a pooled connection, without a client.
func BenchmarkServeHTTP(b *testing.B) {
	p, _ := benchProxy(b)
	req := httptest.NewRequest(http.MethodGet, "/orders/42", nil)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		p.ServeHTTP(w, req)
	}
}

// BenchmarkEndToEnd sends requests through a real listener: client, proxy
// and backend all on 127.0.0.1.
func BenchmarkEndToEnd(b *testing.B) {
	p, _ := benchProxy(b)
	front := httptest.NewServer(p)
	b.Cleanup(front.Close)
	for _, parallel := range []bool{false, true} {
		b.Run(fmt.Sprintf("parallel=%v", parallel), func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
			b.Cleanup(client.CloseIdleConnections)
			get := func() {
				resp, err := client.Get(front.URL + "/orders/42")
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.ReportAllocs()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						get()
					}
				})
				return
			}
			for b.Loop() {
				get()
			}
		})
	}
}

func BenchmarkServeHTTPPost(b *testing.B) {
	p, _ := benchProxy(b)
	body := strings.Repeat("x", 4096)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body))
		p.ServeHTTP(w, req)
	}
}

// cannedTransport answers every request with the same response object, so
// a benchmark through it counts the proxy's own work and allocations only.
// It is not safe for concurrent use.
type cannedTransport struct {
	resp http.Response
	body strings.Reader
}

func (c *cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.body.Reset("hello")
	c.resp.Body = io.NopCloser(&c.body)
	return &c.resp, nil
}

// BenchmarkServeHTTPProxyOnly measures the proxy alone: routing, selection,
// headers, IDs, the try's context and timer, and the response copy.
func BenchmarkServeHTTPProxyOnly(b *testing.B) {
	ct := &cannedTransport{resp: http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Length": {"5"}, "Content-Type": {"text/plain"}},
		ContentLength: 5,
	}}
	p, err := New(shopCell(), Options{Transport: ct})
	if err != nil {
		b.Fatal(err)
	}
	p.SetUpstreams("orders", []*Upstream{{ID: "1", Addr: "127.0.0.1:1"}, {ID: "2", Addr: "127.0.0.1:2"}})
	req := httptest.NewRequest(http.MethodGet, "/orders/42", nil)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		p.ServeHTTP(w, req)
	}
}
